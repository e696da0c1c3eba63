"""linuxnet.netns.port_publish (and `publish` in linuxnet.netns.network) against the real kernel,
with real traffic to services the tests start inside namespaces.

The managed host (the `host` fixture) has an uplink, up0 10.255.0.2/24, to a namespace standing for
another host on its network (CLIENT, 10.255.0.1), and a bridge network of three namespaces on br0
(172.30.0.0/24, .11 .12 .13) with forwarding on and scoped to that subnet (the safe router).
Services answer with their namespace's name, so that a reply proves where the connection went.
"""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from test_network import UPLINK, UPLINK_GW, bridge_network

HOST_IP = UPLINK.split('/')[0]

SERVER = r'''
import os, socket, sys
proto, port, name = sys.argv[1], int(sys.argv[2]), sys.argv[3]
family = socket.AF_INET6 if len(sys.argv) > 4 else socket.AF_INET
if proto == 'tcp':
    s = socket.socket(family, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(('::' if family == socket.AF_INET6 else '0.0.0.0', port))
    s.listen(16)
    print('ready', flush=True)
    while True:
        c, peer = s.accept()
        c.sendall(('%s %s\n' % (name, peer[0])).encode())
        c.close()
else:
    s = socket.socket(family, socket.SOCK_DGRAM)
    s.bind(('::' if family == socket.AF_INET6 else '0.0.0.0', port))
    print('ready', flush=True)
    while True:
        data, peer = s.recvfrom(2048)
        s.sendto(('%s %s\n' % (name, peer[0])).encode(), peer)
'''

CLIENT = r'''
import socket, sys
proto, address, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
sport = int(sys.argv[4]) if len(sys.argv) > 4 else 0
family = socket.AF_INET6 if ':' in address else socket.AF_INET
s = socket.socket(family, socket.SOCK_STREAM if proto == 'tcp' else socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
if sport:
    s.bind(('', sport))
s.settimeout(2)
try:
    if proto == 'tcp':
        s.connect((address, port))
        print(s.recv(200).decode().strip())
    else:
        s.sendto(b'hello', (address, port))
        print(s.recvfrom(200)[0].decode().strip())
except (socket.timeout, OSError) as exc:
    print('ERROR %s' % exc.__class__.__name__)
'''


def ask(ns, proto, address, port, sport=None):
    """What the service at address:port answers to a client in namespace `ns` (None: the managed
    host itself), or 'ERROR ...'."""
    argv = [sys.executable, '-c', CLIENT, proto, address, str(port)] + ([str(sport)] if sport else [])
    return subprocess.run(['ip', 'netns', 'exec', ns] + argv, stdout=subprocess.PIPE, universal_newlines=True,
                          check=False, timeout=30).stdout.strip()


class Services(object):
    """Servers the test starts in namespaces, ended by their PID."""

    def __init__(self):
        self.procs = []

    def start(self, ns, proto, port, name=None, ipv6=False):
        argv = ['ip', 'netns', 'exec', ns, sys.executable, '-u', '-c', SERVER, proto, str(port), name or ns]
        proc = subprocess.Popen(argv + (['6'] if ipv6 else []), stdout=subprocess.PIPE, universal_newlines=True)
        self.procs.append(proc)
        assert proc.stdout.readline().strip() == 'ready'
        return proc

    def stop(self):
        for proc in self.procs:
            proc.kill()
            proc.wait()


@pytest.fixture
def services():
    made = Services()
    yield made
    made.stop()


@pytest.fixture
def net(host):
    """The managed host's network: uplink to CLIENT, the bridge network, forwarding scoped to it.
    Returns (client namespace, [app1, app2, app3])."""
    client = host.ns('inet')
    subprocess.check_call(['ip', 'netns', 'add', client])
    subprocess.check_call(['ip', '-n', client, 'link', 'set', 'lo', 'up'])
    host.sh('ip link add up0 type veth peer name eth0 netns %s && ip addr add %s dev up0 && ip link set up0 up'
            % (client, UPLINK))
    subprocess.check_call(['ip', '-n', client, 'addr', 'add', UPLINK_GW + '/24', 'dev', 'eth0'])
    subprocess.check_call(['ip', '-n', client, 'link', 'set', 'eth0', 'up'])
    names, spec = bridge_network(host, 3)
    spec['forwarding'] = [{'ipv4': True, 'restrict_to': ['172.30.0.0/24']}]
    host.ok('network', spec)
    return client, names


def rules(host):
    """What publishing may change on the host: its ruleset and route_localnet of each interface."""
    return host.sh('nft list ruleset; grep -H . /proc/sys/net/ipv4/conf/*/route_localnet')


def test_published_tcp_and_udp_reach_their_services_from_everywhere(host, net, services):
    client, (app1, app2, app3) = net
    services.start(app1, 'tcp', 80)
    services.start(app2, 'udp', 53)
    args = {'ports': [{'host_port': 8080, 'target_netns': app1, 'target_port': 80},
                      {'host_port': 5353, 'protocol': 'udp', 'target': '172.30.0.12', 'target_port': 53}]}
    before = rules(host)
    check = host.ok('port_publish', args, check=True)
    assert check['changed'] and rules(host) == before
    real = host.ok('port_publish', args)
    assert real['actions'] == check['actions'] and real['diff'] == check['diff']
    assert [p['target'] for p in real['ports']] == ['172.30.0.11', '172.30.0.12']
    # another host, through the host's address: the service sees the client's own address
    assert ask(client, 'tcp', HOST_IP, 8080) == '%s %s' % (app1, UPLINK_GW)
    assert ask(client, 'udp', HOST_IP, 5353) == '%s %s' % (app2, UPLINK_GW)
    # a sibling through the host's address and through the bridge's (hairpin): masqueraded to the bridge
    assert ask(app3, 'tcp', HOST_IP, 8080) == '%s 172.30.0.1' % app1
    assert ask(app3, 'tcp', '172.30.0.1', 8080) == '%s 172.30.0.1' % app1
    assert ask(app3, 'udp', HOST_IP, 5353) == '%s 172.30.0.1' % app2
    # the target itself through the host (self-hairpin)
    assert ask(app1, 'tcp', HOST_IP, 8080) == '%s 172.30.0.1' % app1
    # the host itself (chain output)
    assert ask(host.name, 'tcp', HOST_IP, 8080).startswith(app1)
    # not opted in: 127.0.0.1 stays the host's own (nothing listens there)
    assert ask(host.name, 'tcp', '127.0.0.1', 8080).startswith('ERROR')
    again = host.ok('port_publish', args)
    assert not again['changed'] and again['actions'] == [], again['actions']
    info = host.ok('netns_info', {})
    assert sorted((p['protocol'], p['host_port'], p['target'], p['target_port']) for p in info['host']['published']) == [
        ('tcp', 8080, '172.30.0.11', 80), ('udp', 5353, '172.30.0.12', 53)]
    gone = dict(args, ports=[dict(p, state='absent') for p in args['ports']])
    check = host.ok('port_publish', gone, check=True)
    real = host.ok('port_publish', gone)
    assert real['changed'] and real['actions'] == check['actions']
    assert 'linuxnet:pub' not in host.sh('nft list ruleset')
    assert ask(client, 'tcp', HOST_IP, 8080).startswith('ERROR')
