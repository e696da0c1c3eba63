"""The tutorial end to end, as a playbook, with real traffic: ns1 reaches an "internet" namespace
through the host, and the internet side sees the host's uplink address, not 10.0.0.2 (MASQUERADE).

Then the same playbook under --check --diff on a fresh host: it predicts every task of the real run
(the tasks after the first assume what the earlier ones make, and say so), and a real run of a task
without what an earlier task makes still refuses.

Topology (all inside the sandbox; the "host" is a fresh namespace):
  ns1 [veth-ns1 10.0.0.2] == [veth-host 10.0.0.1] host [up0 203.0.113.2] == [eth0 203.0.113.1] inet
  inet also holds 198.51.100.10 (the "internet" server), and has no route back to 10.0.0.0/24.
"""
import json
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


# Each task's result as a JSON line (the default callback prints a result only with -v, in prose).
RECORDER = r'''
import json, os
from ansible.plugins.callback import CallbackBase

class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "task_results"
    CALLBACK_NEEDS_ENABLED = True

    def _record(self, result, failed):
        r = result._result
        with open(os.environ["TASK_RESULTS"], "a") as out:
            out.write(json.dumps({"task": result._task.get_name(), "failed": failed, "changed": bool(r.get("changed")),
                                  "actions": r.get("actions"), "msg": r.get("msg"), "diff": r.get("diff"),
                                  "warnings": [str(w) for w in r.get("warnings") or ()]}) + "\n")

    def v2_runner_on_ok(self, result):
        self._record(result, False)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._record(result, True)
'''
TASKS = ['Namespace ns1, with lo up (a new namespace has lo down)',
         'Veth pair veth-host (10.0.0.1/24) <-> veth-ns1 (10.0.0.2/24, in ns1), both ends up',
         'Default route in ns1 via the host end', 'Forwarding on the host', 'MASQUERADE of 10.0.0.0/24 out the uplink']


def recorded(collections_dir, host, tmp_path, name, *args):
    """(return code, [each task's result]) of the tutorial playbook run on `host` with `args`."""
    plugins = tmp_path / 'callback_plugins'
    plugins.mkdir(exist_ok=True)
    (plugins / 'task_results.py').write_text(RECORDER)
    results = tmp_path / (name + '.jsonl')
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(collections_dir), ANSIBLE_NOCOLOR='1',
               ANSIBLE_PYTHON_INTERPRETER=sys.executable, ANSIBLE_LOCALHOST_WARNING='0',
               ANSIBLE_CALLBACK_PLUGINS=str(plugins), ANSIBLE_CALLBACKS_ENABLED='task_results',
               TASK_RESULTS=str(results))
    out = subprocess.run(['nsenter', '--net=/run/netns/' + host, 'ansible-playbook', '-i', 'localhost,', '-c', 'local',
                          os.path.join(REPO, 'playbooks', 'tutorial.yml'), '-e', 'tutorial_uplink=up0'] + list(args),
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, env=env, check=False)
    tasks = [json.loads(line) for line in results.read_text().splitlines()] if results.exists() else []
    return out.returncode, tasks, out.stdout


def host_state(host):
    """What the tutorial could change: the host's links, addresses, routes, ruleset, forwarding, and
    the namespaces there are."""
    def run(*cmd):
        return subprocess.check_output(['ip', 'netns', 'exec', host] + list(cmd), universal_newlines=True)
    # IPv4 only: the kernel settles up0's IPv6 link-local address and route on its own meanwhile
    return {'links': run('ip', '-d', 'link', 'show'), 'addresses': run('ip', '-4', 'address', 'show'),
            'routes': run('ip', '-4', 'route', 'show', 'table', 'all'), 'nft': run('nft', 'list', 'ruleset'),
            'forwarding': run('cat', '/proc/sys/net/ipv4/ip_forward'), 'netns': sorted(os.listdir('/run/netns'))}


def test_tutorial_checked_on_a_fresh_host_predicts_the_real_run(internet, collections_dir, tmp_path):
    host, _inet = internet
    fresh = host_state(host)
    code, checked, output = recorded(collections_dir, host, tmp_path, 'check', '--check', '--diff')
    assert code == 0, output
    assert host_state(host) == fresh, 'check mode changed the host'
    assert [task['task'] for task in checked] == TASKS, output
    assert all(task['changed'] and not task['failed'] for task in checked), output
    assert [task['warnings'] for task in checked] == [
        [],
        ["check mode: netns ns1 does not exist; assumed created by an earlier task (peer.netns='ns1')"],
        ["check mode: netns ns1 does not exist; assumed created by an earlier task (netns='ns1')",
         'check mode: gateway 10.0.0.1 is not in any subnet connected in netns ns1 (connected: none); assumed an '
         "earlier task adds an address in its subnet (gateway='10.0.0.1')"],
        [], [],
    ]

    code, real, output = recorded(collections_dir, host, tmp_path, 'real', '--diff')
    assert code == 0, output
    assert [task['task'] for task in real] == TASKS
    assert all(task['changed'] and not task['failed'] and not task['warnings'] for task in real), output
    # task by task, the real run does what check mode said it would, and its diff is the predicted one
    for predicted, done in zip(checked, real):
        assert done['actions'] == predicted['actions'], done['task']
        assert done['diff'] == predicted['diff'], done['task']
    assert host_state(host) != fresh


def test_a_real_run_of_a_task_without_what_an_earlier_task_makes_refuses(internet, collections_dir, tmp_path):
    host, _inet = internet
    fresh = host_state(host)
    code, tasks, output = recorded(collections_dir, host, tmp_path, 'real', '--diff', '--start-at-task', TASKS[1])
    assert code != 0, output
    assert [(task['task'], task['failed'], task['changed']) for task in tasks] == [(TASKS[1], True, False)], output
    assert tasks[0]['msg'] == ("peer.netns='ns1': network namespace 'ns1' does not exist; create it first with "
                               'linuxnet.netns.netns')
    assert host_state(host) == fresh


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
