"""The role's published ports (bridge_network_publish), on the lab fleet over SSH: lab1 publishes its
port 8080 to port 80 of its first namespace, where the test runs a tiny TCP server that answers
with its namespace's name and the client's address; lab2 connects to lab1's own address and gets
that answer, with its own address in it (DNAT, no masquerade from another host). playbooks/verify.yml
checks the same port from lab2, and fails when the reply is not the one named; the topology picture
draws it. A re-run changes nothing; the teardown leaves no rule of ours."""
import json
import os
import subprocess
import sys

import pytest

from ansible_collections.linuxnet.netns.plugins.filter import topology

pytestmark = pytest.mark.skipif(os.environ.get('LINUXNET_SANDBOX') != '1',
                                reason='the lab changes networking: run inside tests/sandbox.sh')

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LAB_PY = os.path.join(REPO, 'tests', 'lab', 'lab.py')
LAB1, LAB2 = '192.0.2.11', '192.0.2.12'

SERVER = r'''
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('0.0.0.0', int(sys.argv[1])))
s.listen(16)
print('ready', flush=True)
while True:
    c, peer = s.accept()
    c.sendall(('%s %s\n' % (sys.argv[2], peer[0])).encode())
    c.close()
'''

CLIENT = r'''
import socket, sys
try:
    s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3)
    print(s.recv(200).decode().strip())
except OSError as exc:
    print('ERROR %s' % exc.__class__.__name__)
'''


def playbook(lab, name, *args):
    return lab.ansible('ansible-playbook', os.path.join(REPO, 'playbooks', name),
                       '-e', 'bridge_network_namespaces=2', *args)


def recap(out, host):
    line = [row for row in out.splitlines() if row.startswith(host + ' ') and 'changed=' in row]
    assert line, out
    return dict(field.split('=') for field in line[-1].split() if '=' in field)


def test_a_published_port_reaches_the_namespace_from_another_host(make_lab, tmp_path):
    lab = make_lab(2)
    # bridge_network_publish for lab1 alone, as host variables (a second inventory)
    published = tmp_path / 'publish.yml'
    published.write_text('all:\n  hosts:\n    lab1:\n      bridge_network_publish:\n'
                         '        - {host_port: 8080, namespace: 1, target_port: 80, protocol: tcp, localhost: false}\n')
    inventory = ('-i', str(published))
    out = playbook(lab, 'site.yml', *inventory).stdout
    assert recap(out, 'lab1')['failed'] == '0', out
    assert 'linuxnet:pub tcp 0.0.0.0:8080' in lab.on('lab1', 'nft', 'list', 'ruleset', check=True).stdout
    assert 'linuxnet:pub' not in lab.on('lab2', 'nft', 'list', 'ruleset', check=True).stdout

    # the service, in lab1's lnns1 (lab.py exec, nsenter and ip netns exec each exec: the PID is the server's)
    server = subprocess.Popen([sys.executable, LAB_PY, 'exec', '--dir', str(lab.state), 'lab1', '--',
                               'ip', 'netns', 'exec', 'lnns1', 'python3', '-u', '-c', SERVER, '80', 'lnns1'],
                              stdout=subprocess.PIPE, universal_newlines=True)
    try:
        assert server.stdout.readline().strip() == 'ready'
        answer = lab.on('lab2', 'python3', '-c', CLIENT, LAB1, '8080', check=True).stdout.strip()
        assert answer == 'lnns1 %s' % LAB2, answer
        # hairpin: a sibling namespace and the target itself, through lab1's address (masqueraded to the gateway)
        for ns in ('lnns2', 'lnns1'):
            answer = lab.on('lab1', 'ip', 'netns', 'exec', ns, 'python3', '-c', CLIENT, LAB1, '8080', check=True)
            assert answer.stdout.startswith('lnns1 10.200.') and answer.stdout.strip().endswith('.1'), (ns, answer.stdout)
        # nothing listens on lab2's 8080: the answer above came through lab1's rule
        assert lab.on('lab1', 'python3', '-c', CLIENT, LAB2, '8080', check=True).stdout.startswith('ERROR')

        check = {'bridge_network_verify_published': [{'host': 'lab1', 'port': 8080, 'expect': 'lnns1 %s' % LAB2}],
                 'bridge_network_verify_published_timeout': 3}
        out = playbook(lab, 'verify.yml', *inventory, '-e', json.dumps(check)).stdout
        assert 'every published port answered (1)' in out, out
        # the check can fail: another reply than the one named
        wrong = dict(check, bridge_network_verify_published=[{'host': 'lab1', 'port': 8080, 'expect': 'lnns2'}])
        failed = lab.run([os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'), '-i', lab.inventory,
                          *inventory, os.path.join(REPO, 'playbooks', 'verify.yml'),
                          '-e', 'bridge_network_namespaces=2', '-e', json.dumps(wrong)], check=False)
        assert failed.returncode != 0 and 'lab1:8080 from lab2: Timeout when waiting for search string' \
            in failed.stdout, failed.stdout
    finally:
        server.kill()
        server.wait()

    # the picture (diagram.yml's filter) of what netns_info reads on lab1: the port, to lnns1's eth0
    info = lab.ansible('ansible', 'lab1', '-m', 'linuxnet.netns.netns_info').stdout
    info = json.loads(info[info.index('{'):])
    assert [(p['protocol'], p['host_port'], p['target_port']) for p in info['host']['published']] == [('tcp', 8080, 80)]
    dot = topology.topology_dot(info, name='lab1')
    assert '"lab1||published tcp :8080" -- "lab1|lnns1|eth0"' in dot and 'published tcp 8080\\n-> lnns1:80' in dot
    # its rules (DNAT, the hairpin masquerade) are drawn as the port, not again as rules or MASQUERADE notes
    assert 'pub-nat' in json.dumps(info['nat']) and 'dnat' not in dot and 'masquerade tcp' not in dot

    again = playbook(lab, 'site.yml', *inventory).stdout
    assert recap(again, 'lab1')['changed'] == '0' and recap(again, 'lab2')['changed'] == '0', again

    out = playbook(lab, 'teardown.yml').stdout
    assert recap(out, 'lab1')['failed'] == '0', out
    ruleset = lab.on('lab1', 'nft', 'list', 'ruleset', check=True).stdout
    assert 'linuxnet:pub' not in ruleset and 'linuxnet' not in ruleset, ruleset
