"""linuxnet.netns.port_publish (and `publish` in linuxnet.netns.network) against the real kernel,
with real traffic to services the tests start inside namespaces.

The managed host (the `host` fixture) has an uplink, up0 10.255.0.2/24, to a namespace standing for
another host on its network (CLIENT, 10.255.0.1), and a bridge network of three namespaces on br0
(172.30.0.0/24, .11 .12 .13) with forwarding on and scoped to that subnet (the safe router).
Services answer with their namespace's name, so that a reply proves where the connection went.
"""
import subprocess
import sys
import time

import pytest

from test_deletion import warning_texts
from test_network import UPLINK, UPLINK_GW, bridge_network

HOST_IP = UPLINK.split('/', maxsplit=1)[0]

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
    spec['masquerade'] = [{'source': '172.30.0.0/24', 'out_interface': 'up0'}]
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


def test_many_ports_are_told_a_line_a_group_and_a_line_each_check_mode_the_same(host, net):
    """Past 100 rules of ports in a transaction `actions` tells them a line for each chain's kind of
    rule; past 100 items port_publish returns each port as a line (port_lines) - the same in check
    mode and in the real run, and through network as well."""
    _client, apps = net
    ports = [{'host_port': 20000 + i, 'target_netns': apps[i % 3], 'target_port': 80 + i // 3} for i in range(150)]
    check = host.ok('port_publish', {'ports': ports}, check=True)
    real = host.ok('port_publish', {'ports': ports})
    assert real['actions'] == check['actions'] and real['diff'] == check['diff'] and real['changed']
    assert 'ports' not in real and real['port_lines'] == check['port_lines']
    assert real['port_lines'][:2] == ['tcp *:20000 -> 172.30.0.11:80 (target_netns %s)' % apps[0],
                                      'tcp *:20001 -> 172.30.0.12:80 (target_netns %s)' % apps[1]]
    assert len(real['port_lines']) == 150 and real['port_lines'][-1] == 'tcp *:20149 -> 172.30.0.13:129 (target_netns %s)' % apps[2]
    for chain, word in (('prerouting', 'pub'), ('output', 'pub-out')):
        assert 'add 150 rules inet linuxnet_netns %s: linuxnet:%s tcp 0.0.0.0:20000-20149 in the host' % (chain, word) \
            in real['actions']
        # what the line counts is in the kernel, and each rule in the diff
        assert host.sh('nft list chain inet linuxnet_netns %s' % chain).count('comment "linuxnet:%s tcp ' % word) == 150
        assert len([rule for rule in real['diff']['after']['published ports (host)']['chains'][chain]['rules']
                    if 'linuxnet:%s tcp' % word in rule]) == 150
    # the rules the ports share, a line each
    assert len([line for line in real['actions'] if 'comment "linuxnet:pub-fwd-' in line]) == 3 * 2
    again = host.ok('port_publish', {'ports': ports})
    assert not again['changed'] and again['actions'] == []
    # a hundred of them go, through network
    gone = {'publish': [dict(port, state='absent') for port in ports[:100]]}
    check = host.ok('network', gone, check=True)
    real = host.ok('network', gone)
    assert real['actions'] == check['actions'] and real['changed']
    for chain, word in (('prerouting', 'pub'), ('output', 'pub-out')):
        assert 'delete 100 rules inet linuxnet_netns %s (state absent): linuxnet:%s tcp 0.0.0.0:20000-20099 in the host' % (
            chain, word) in real['actions']
        assert host.sh('nft list chain inet linuxnet_netns %s' % chain).count('comment "linuxnet:%s tcp ' % word) == 50
    # a hundred items or fewer: the states as before
    rest = host.ok('port_publish', {'ports': [dict(port, state='absent') for port in ports[100:]]})
    assert 'port_lines' not in rest and [p['state'] for p in rest['ports']] == ['absent'] * 50
    assert 'linuxnet:pub' not in host.sh('nft list ruleset')


def test_localhost_is_opt_in_and_ipv4_only(host, net, services):
    _client, (app1, _app2, _app3) = net
    services.start(app1, 'tcp', 80)
    args = {'host_port': 8080, 'target_netns': app1, 'target_port': 80, 'localhost': True}
    check = host.ok('port_publish', args, check=True)
    assert any('route_localnet = 1' in line for line in check['actions'])
    real = host.ok('port_publish', args)
    assert real['actions'] == check['actions']
    assert host.sh('cat /proc/sys/net/ipv4/conf/br0/route_localnet').strip() == '1'
    # the host's 127.0.0.1, masqueraded to its address on the bridge
    assert ask(host.name, 'tcp', '127.0.0.1', 8080) == '%s 172.30.0.1' % app1
    assert ask(host.name, 'tcp', HOST_IP, 8080).startswith(app1)
    assert not host.ok('port_publish', args)['changed']
    # turned off again: 127.0.0.1:8080 is the host's own once more
    off = host.ok('port_publish', dict(args, localhost=False))
    assert off['changed'] and 'pub-lo' not in host.sh('nft list ruleset')
    assert ask(host.name, 'tcp', '127.0.0.1', 8080).startswith('ERROR')
    assert ask(host.name, 'tcp', HOST_IP, 8080).startswith(app1)


def test_udp_sent_before_the_port_was_published_arrives_after(host, net, services):
    """The stale conntrack case (containernetworking/plugins#123): datagrams to HOST:5353 before the
    rule existed made an entry without the DNAT; the next datagram of the same flow must reach the
    target, not the entry's dead end."""
    client, (_app1, app2, _app3) = net
    services.start(app2, 'udp', 53)
    assert ask(client, 'udp', HOST_IP, 5353, sport=40123).startswith('ERROR')
    args = {'host_port': 5353, 'protocol': 'udp', 'target_netns': app2, 'target_port': 53}
    real = host.ok('port_publish', args)
    assert 'delete the conntrack entries of udp port 5353 (IPv4) in the host' in real['actions']
    assert ask(client, 'udp', HOST_IP, 5353, sport=40123) == '%s %s' % (app2, UPLINK_GW)
    again = host.ok('port_publish', args)
    assert not again['changed'] and again['actions'] == []


def test_published_traffic_passes_a_docker_style_forward_drop(host, net, services):
    client, (app1, _app2, _app3) = net
    services.start(app1, 'tcp', 80)
    host.sh("nft 'add table ip filter; add chain ip filter FORWARD { type filter hook forward priority 0; policy drop; }'")
    # forwarding is scoped to 172.30.0.0/24 and Docker's chain drops: the port is published
    # without its target being in any restrict_to
    host.ok('sysctl_forward', {'ipv4': True, 'restrict_to': ['10.99.0.0/24']})
    assert ask(client, 'tcp', HOST_IP, 8080).startswith('ERROR')
    real = host.ok('port_publish', {'host_port': 8080, 'target_netns': app1, 'target_port': 80})
    assert real['changed']
    docker = host.sh('nft list chain ip filter FORWARD')
    # scoped accepts, at the head of Docker's chain, for what the host translated to the target
    head = docker.split('policy drop;')[1].strip().split('\n')[:2]
    assert sorted(line.strip() for line in head) == [
        'ip daddr 172.30.0.11 ct status dnat accept comment "linuxnet:pub-allow-in 172.30.0.11"',
        'ip saddr 172.30.0.11 ct status dnat accept comment "linuxnet:pub-allow-out 172.30.0.11"']
    assert ask(client, 'tcp', HOST_IP, 8080) == '%s %s' % (app1, UPLINK_GW)
    # a direct connection to the target, not through the published port, is still dropped by ours
    assert ask(client, 'tcp', '172.30.0.11', 80).startswith('ERROR')
    assert not host.ok('port_publish', {'host_port': 8080, 'target_netns': app1, 'target_port': 80})['changed']
    host.ok('port_publish', {'host_port': 8080, 'state': 'absent'})
    assert 'linuxnet:pub' not in host.sh('nft list chain ip filter FORWARD')
    assert 'policy drop' in host.sh('nft list chain ip filter FORWARD')


def test_a_listening_process_is_named_in_a_warning(host, net, services):
    _client, (app1, _app2, _app3) = net
    server = services.start(host.name, 'tcp', 8080, name='hostsvc')
    result = host.ok('port_publish', {'host_port': 8080, 'target_netns': app1, 'target_port': 80})
    warnings = ' '.join(warning_texts(result))
    assert 'tcp port 8080 (IPv4) is in use in the host' in warnings
    assert 'pid ' in warnings and 'python' in warnings, warnings
    assert server.pid > 0
    assert not host.ok('port_publish', {'host_port': 8080, 'target_netns': app1, 'target_port': 80}).get('warnings')


REFUSED = [
    ({'ports': [{'host_port': 8080, 'target': '172.30.0.11'}, {'host_port': 8080, 'target': '172.30.0.12'}]},
     'is declared twice'),
    ({'ports': [{'host_port': '8000-8010', 'target': '172.30.0.11'},
                {'host_port': 8005, 'target': '172.30.0.12', 'host_address': HOST_IP}]}, 'is also declared'),
    ({'host_port': '8000-8010', 'target': '172.30.0.11', 'target_port': '80-81'}, 'give ranges of one length'),
    ({'host_port': 8080, 'target_netns': 'nosuchns'}, 'does not exist and the task does not create it'),
    ({'host_port': 8080, 'target': 'fd00::2', 'localhost': True}, 'is IPv4 only'),
    ({'host_port': 8080, 'target': '172.30.0.11', 'host_address': '127.0.0.1'}, 'set localhost: true'),
    ({'host_port': 70000, 'target': '172.30.0.11'}, 'is outside 1..65535'),
    ({'host_port': 8080, 'target': '10.99.0.7', 'localhost': True}, 'is not on a network of the host'),
    ({'host_port': 8080}, 'give exactly one'),
]


@pytest.mark.parametrize('args, message', REFUSED, ids=[str(i) for i in range(len(REFUSED))])
def test_conflicts_and_bad_input_are_refused_before_any_change(host, net, args, message):
    host.ok('port_publish', {'host_port': 9090, 'target': '172.30.0.13', 'target_port': 90})
    before = rules(host)
    result = host.module('port_publish', args)
    assert result.get('failed') and message in result['msg'], result.get('msg')
    assert rules(host) == before


def test_a_port_published_to_another_target_is_refused_unless_replaced(host, net, services):
    _client, (app1, app2, _app3) = net
    services.start(app1, 'tcp', 80)
    services.start(app2, 'tcp', 80)
    host.ok('port_publish', {'host_port': 8080, 'target_netns': app1, 'target_port': 80})
    before = rules(host)
    refused = host.module('port_publish', {'host_port': 8080, 'target_netns': app2, 'target_port': 80})
    assert refused.get('failed') and 'already published to 172.30.0.11:80' in refused['msg'], refused['msg']
    assert rules(host) == before
    # the same port on one address of the host overlaps the published one on all of them
    refused = host.module('port_publish', {'host_port': 8080, 'target_netns': app2, 'target_port': 80,
                                           'host_address': HOST_IP})
    assert refused.get('failed') and 'already published' in refused['msg']
    taken = host.ok('port_publish', {'host_port': 8080, 'target_netns': app2, 'target_port': 80, 'replace': True})
    assert taken['changed']
    assert ask(host.name, 'tcp', HOST_IP, 8080).startswith(app2)
    # the same mapping again is no change
    assert not host.ok('port_publish', {'host_port': 8080, 'target_netns': app2, 'target_port': 80})['changed']


def test_network_publishes_to_a_namespace_it_creates_and_purge_takes_only_ours(host, net, services):
    _client, _apps = net
    names, spec = bridge_network(host, 1)
    web = host.ns('web')
    spec = {
        'namespaces': [{'name': web}],
        'pairs': [{'name': host.prefix + 'w', 'master': 'br0',
                   'peer': {'name': 'eth0', 'netns': web, 'addresses': ['172.30.0.50/24']}}],
        'routes': [{'netns': web, 'gateway': '172.30.0.1'}],
        'publish': [{'host_port': 8088, 'target_netns': web, 'target_port': 80},
                    {'host_port': 9099, 'target': '172.30.0.50', 'target_port': 80, 'protocol': 'udp'}],
    }
    check = host.ok('network', spec, check=True)
    real = host.ok('network', spec)
    assert real['actions'] == check['actions'], (real['actions'], check['actions'])
    assert any('set hairpin on' in line for line in real['actions'])
    services.start(web, 'tcp', 80)
    assert ask(web, 'tcp', HOST_IP, 8088) == '%s 172.30.0.1' % web  # itself, through the host
    assert not host.ok('network', spec)['changed']
    # purge: the udp port goes, nothing else (the user's own table stays too)
    host.sh("nft 'add table ip mine; add chain ip mine c { type nat hook prerouting priority -100; }; "
            "add rule ip mine c tcp dport 7777 dnat to 172.30.0.50:80'")
    kept = dict(spec, publish=spec['publish'][:1], purge=True, purge_match={'publish': ['172.30.0.0/24']})
    purged = host.ok('network', kept)
    assert purged['purged'] == ['published port udp 0.0.0.0:9099 -> 172.30.0.50:80 in the host']
    ruleset = host.sh('nft list ruleset')
    assert '9099' not in ruleset and 'linuxnet:pub tcp 0.0.0.0:8088' in ruleset and 'dport 7777' in ruleset


def test_ipv6(host, services):
    client = host.ns('inet6')
    subprocess.check_call(['ip', 'netns', 'add', client])
    host.sh('ip link add up6 type veth peer name eth0 netns %s && ip addr add fd00:ff::2/64 dev up6 nodad '
            '&& ip link set up6 up' % client)
    subprocess.check_call(['ip', '-n', client, 'addr', 'add', 'fd00:ff::1/64', 'dev', 'eth0', 'nodad'])
    subprocess.check_call(['ip', '-n', client, 'link', 'set', 'eth0', 'up'])
    app = host.ns('v6app')
    host.ok('network', {
        'namespaces': [{'name': app}],
        'pairs': [{'name': host.prefix + 'v', 'addresses': ['fd00:1::1/64'],
                   'peer': {'name': 'eth0', 'netns': app, 'addresses': ['fd00:1::2/64']}}],
        'routes': [{'netns': app, 'gateway': 'fd00:1::1'}],
        'forwarding': [{'ipv6': True}],
    })
    services.start(app, 'tcp', 443, ipv6=True)
    args = {'host_port': 8443, 'target_netns': app, 'target_port': 443, 'family': 'ipv6'}
    check = host.ok('port_publish', args, check=True)
    real = host.ok('port_publish', args)
    assert real['actions'] == check['actions'] and real['ports'][0]['target'] == 'fd00:1::2'
    # the link-local addresses of links just up are tentative for a second (DAD), and neighbour
    # discovery between the routers waits for them
    deadline = time.time() + 10
    while time.time() < deadline and any(
            subprocess.run(['ip', '-n', ns, '-6', 'addr', 'show', 'tentative'], stdout=subprocess.PIPE,
                           universal_newlines=True, check=True).stdout.strip() for ns in (host.name, client, app)):
        time.sleep(0.1)
    assert ask(client, 'tcp', 'fd00:ff::2', 8443) == '%s fd00:ff::1' % app
    assert 'dnat ip6 to [fd00:1::2]:443' in host.sh('nft list ruleset')
    assert not host.ok('port_publish', args)['changed']


def test_closed_inbound_keeps_strangers_out_but_lets_in_replies_published_ports_and_allowed(host, net, services):
    """The safe router's inbound scope (sysctl_forward inbound_from): a stranger on the underlay with
    a route to the namespaces via the host no longer reaches them directly."""
    client, (app1, _app2, _app3) = net
    services.start(app1, 'tcp', 80)
    services.start(client, 'tcp', 9000, name='outside')
    subprocess.check_call(['ip', '-n', client, 'route', 'add', '172.30.0.0/24', 'via', HOST_IP])
    assert ask(client, 'tcp', '172.30.0.11', 80) == '%s %s' % (app1, UPLINK_GW), 'control: open as before'
    closed = {'ipv4': True, 'restrict_to': ['172.30.0.0/24'], 'inbound_from': []}
    check = host.ok('sysctl_forward', closed, check=True)
    real = host.ok('sysctl_forward', closed)
    assert real['actions'] == check['actions'] and real['changed']
    assert not host.ok('sysctl_forward', closed)['changed']
    assert ask(client, 'tcp', '172.30.0.11', 80).startswith('ERROR'), 'a stranger reaches a namespace directly'
    # replies to the namespace's own connections (out through the masquerade) come back
    assert ask(app1, 'tcp', UPLINK_GW, 9000) == 'outside %s' % HOST_IP
    # a published port is open to the same stranger
    host.ok('port_publish', {'host_port': 8080, 'target_netns': app1, 'target_port': 80})
    assert ask(client, 'tcp', HOST_IP, 8080) == '%s %s' % (app1, UPLINK_GW)
    # the host itself is not forwarded: it still reaches its namespaces
    assert ask(host.name, 'tcp', '172.30.0.11', 80).startswith(app1)
    # an allowed prefix comes in directly
    host.ok('sysctl_forward', dict(closed, inbound_from=['10.255.0.0/24']))
    assert ask(client, 'tcp', '172.30.0.11', 80) == '%s %s' % (app1, UPLINK_GW)
    # and open again, as before
    host.ok('sysctl_forward', {'ipv4': True, 'restrict_to': ['172.30.0.0/24']})
    assert 'fwd-est' not in host.sh('nft list ruleset')
