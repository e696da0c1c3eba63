"""The tutorial end to end, as a playbook, with real traffic: ns1 reaches an "internet" namespace
through the host, and the internet side sees the host's uplink address, not 10.0.0.2 (MASQUERADE).

Topology (all inside the sandbox; the "host" is a fresh namespace):
  ns1 [veth-ns1 10.0.0.2] == [veth-host 10.0.0.1] host [up0 203.0.113.2] == [eth0 203.0.113.1] inet
  inet also holds 198.51.100.10 (the "internet" server), and has no route back to 10.0.0.0/24.
"""
import os
import re
import subprocess
import sys
import time

import pytest

from conftest import IN_SANDBOX, REPO

SERVER = '198.51.100.10'
SERVER_CODE = r'''
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("198.51.100.10", 8080)); s.listen(5); print("ready", flush=True)
while True:
    c, peer = s.accept(); c.sendall(peer[0].encode() + b"\n"); c.close()
'''
CLIENT_CODE = ('import socket; s = socket.create_connection(("%s", 8080), timeout=3); '
               'print(s.recv(100).decode().strip())' % SERVER)


def sh(*cmd):
    subprocess.check_call(cmd)


@pytest.fixture
def internet(collections_dir, tmp_path):
    if not IN_SANDBOX:
        pytest.skip('integration tests run only inside tests/sandbox.sh')
    host, inet = 'tut-host', 'tut-inet'
    for ns in (host, inet):
        sh('ip', 'netns', 'add', ns)
        sh('ip', '-n', ns, 'link', 'set', 'lo', 'up')
    sh('ip', '-n', host, 'link', 'add', 'up0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', inet)
    sh('ip', '-n', host, 'addr', 'add', '203.0.113.2/24', 'dev', 'up0')
    sh('ip', '-n', host, 'link', 'set', 'up0', 'up')
    sh('ip', '-n', inet, 'addr', 'add', '203.0.113.1/24', 'dev', 'eth0')
    sh('ip', '-n', inet, 'addr', 'add', SERVER + '/32', 'dev', 'lo')
    sh('ip', '-n', inet, 'link', 'set', 'eth0', 'up')
    sh('ip', '-n', host, 'route', 'add', 'default', 'via', '203.0.113.1')
    server = subprocess.Popen(['ip', 'netns', 'exec', inet, sys.executable, '-c', SERVER_CODE],
                              stdout=subprocess.PIPE, universal_newlines=True)
    assert server.stdout.readline().strip() == 'ready'
    yield host, inet
    server.kill()
    server.wait()
    for ns in (host, inet, 'ns1'):
        subprocess.call(['ip', 'netns', 'del', ns], stderr=subprocess.DEVNULL)


def playbook(collections_dir, host):
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(collections_dir), ANSIBLE_NOCOLOR='1',
               ANSIBLE_PYTHON_INTERPRETER=sys.executable, ANSIBLE_LOCALHOST_WARNING='0')
    start = time.time()
    out = subprocess.run(['nsenter', '--net=/run/netns/' + host, 'ansible-playbook', '-i', 'localhost,', '-c', 'local',
                          os.path.join(REPO, 'playbooks', 'tutorial.yml'), '-e', 'tutorial_uplink=up0'],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, env=env, check=False)
    elapsed = time.time() - start
    assert out.returncode == 0, out.stdout
    recap = re.search(r'localhost\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)', out.stdout)
    return int(recap.group(2)), elapsed


def test_tutorial_playbook_with_real_traffic(internet, collections_dir, figures):
    host, inet = internet
    changed, first = playbook(collections_dir, host)
    assert changed == 5
    # ns1 reaches its gateway and, through the host, the internet namespace
    sh('ip', 'netns', 'exec', 'ns1', 'ping', '-c1', '-W2', '10.0.0.1')
    sh('ip', 'netns', 'exec', 'ns1', 'ping', '-c1', '-W2', SERVER)
    seen = subprocess.check_output(['ip', 'netns', 'exec', 'ns1', sys.executable, '-c', CLIENT_CODE],
                                   universal_newlines=True).strip()
    assert seen == '203.0.113.2', 'the internet side saw %s, not the uplink address' % seen
    ruleset = subprocess.check_output(['ip', 'netns', 'exec', host, 'nft', 'list', 'ruleset'], universal_newlines=True)
    assert 'masquerade' in ruleset and 'oifname "up0"' in ruleset
    # lo is up in ns1: a service on 127.0.0.1 works there
    sh('ip', 'netns', 'exec', 'ns1', 'ping', '-c1', '-W2', '127.0.0.1')

    changed_again, rerun = playbook(collections_dir, host)
    assert changed_again == 0
    figures('tutorial playbook: first run %.2f s, re-run %.2f s (changed=0)' % (first, rerun))
