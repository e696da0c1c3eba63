"""Every module against the real kernel: create, identical re-run, check mode, diff, absent, bad input.

Each test runs its modules inside a fresh network namespace (the `host` fixture), once with pip's
pyroute2 and once with Debian's 0.7.2 where it is installed - except the bad input that argument
validation refuses, which runs with pip's only (conftest.pythons_for).
"""
import json
import os
import subprocess

import pytest

from conftest import pythons_for

# a namespace, bridge, interface or connected subnet that is not there: the kernel's state says so
MISSING = ('does not exist', 'create the bridge first', 'not in any subnet connected', 'no such interface')


def reads_state(case):
    return case[1] in MISSING


# ---- netns ---------------------------------------------------------------------------------------------
def test_netns_lifecycle(host):
    names = [host.ns('a'), host.ns('b')]
    spec = {'namespaces': [{'name': names[0]}, {'name': names[1], 'lo_up': False}]}

    predicted = host.ok('netns', spec, check=True)
    assert predicted['changed'] and host.netns_list() == []
    created = host.ok('netns', spec)
    assert created['changed'] and created['actions'] == predicted['actions']
    assert created['diff']['after'] == predicted['diff']['after']
    assert host.netns_list() == sorted(names)
    assert 'UP' in host.links(names[0])['lo']['flags']
    assert 'UP' not in host.links(names[1])['lo']['flags']

    again = host.ok('netns', spec)
    assert not again['changed'] and again['actions'] == []
    assert not host.ok('netns', spec, check=True)['changed']

    removed = host.ok('netns', {'namespaces': [{'name': n, 'state': 'absent'} for n in names]})
    assert removed['changed'] and host.netns_list() == []
    assert not host.ok('netns', {'name': names[0], 'state': 'absent'})['changed']


def test_netns_exact_names(host):
    """An existing `mario2` never stands in for a missing `mario` (community.general.ip_netns does)."""
    host.ok('netns', {'name': host.ns('mario2')})
    result = host.ok('netns', {'name': host.ns('mario')}, check=True)
    assert result['changed'] and result['actions'] == [
        'create netns %s' % host.ns('mario'),
        'mark netns %s as made by linuxnet.netns (alias of its lo)' % host.ns('mario'),
        'set lo up in netns %s' % host.ns('mario')]
    assert not host.ok('netns', {'name': host.ns('mario'), 'state': 'absent'})['changed']
    assert host.netns_list() == [host.ns('mario2')]


def test_netns_absent_takes_host_side_veth(host):
    ns = host.ns('v')
    host.ok('netns', {'name': ns})
    host.ok('veth', {'name': host.prefix + 'h', 'peer': {'name': 'eth0', 'netns': ns}})
    assert host.prefix + 'h' in host.links()
    host.ok('netns', {'name': ns, 'state': 'absent'})
    # the module waits for the kernel's teardown: the host end is gone when it returns
    assert host.prefix + 'h' not in host.links()


def test_netns_absent_with_process_inside(host):
    ns = host.ns('busy')
    host.ok('netns', {'name': ns})
    host.ok('veth', {'name': host.prefix + 'h', 'peer': {'name': 'eth0', 'netns': ns}})
    sleeper = subprocess.Popen(['ip', 'netns', 'exec', ns, 'sleep', '60'])
    try:
        for _attempt in range(100):
            out = subprocess.run(['ip', 'netns', 'pids', ns], stdout=subprocess.PIPE, universal_newlines=True, check=False).stdout
            if out.strip():
                break
        result = host.ok('netns', {'name': ns, 'state': 'absent'})
        assert result['changed']
        pids = result['namespaces'][0]['pids']
        assert pids and all(str(pid) in json.dumps(result.get('warnings')) for pid in pids)
        assert host.prefix + 'h' not in host.links(), 'host-side veth survived a busy namespace'
        assert host.netns_list() == []
    finally:
        sleeper.kill()
        sleeper.wait()


# a name longer than a file name can be is refused by the file system (as test_bad_input.py's
# netns-name-256-chars), the others by validation
@pytest.mark.parametrize('python, name', pythons_for(['a/b', '..', '.', '', 'x y', 'tab\there', 'caf\u00e9', 'n' * 300],
                                                     lambda name: len(name) > 255))
def test_netns_bad_names(host, name):
    result = host.module('netns', {'name': name})
    assert result['failed'] and 'name=' in result['msg']
    assert host.netns_list() == []


# ---- veth ------------------------------------------------------------------------------------------------
def tutorial_pair(host, ns):
    return {'name': host.prefix + 'h', 'addresses': ['10.0.0.1/24'],
            'peer': {'name': host.prefix + 'n', 'netns': ns, 'addresses': ['10.0.0.2/24', 'fd00::2/64'], 'mtu': 1400}}


def test_veth_lifecycle(host):
    ns = host.ns('ns1')
    host.ok('netns', {'name': ns})
    pair = tutorial_pair(host, ns)
    predicted = host.ok('veth', pair, check=True)
    assert predicted['changed'] and host.prefix + 'h' not in host.links()
    created = host.ok('veth', pair)
    assert created['actions'] == predicted['actions']
    assert created['diff'] == predicted['diff']
    hl, nl = host.links()[host.prefix + 'h'], host.links(ns)[host.prefix + 'n']
    assert host.addrs(hl) == ['10.0.0.1/24'] and host.addrs(nl) == ['10.0.0.2/24', 'fd00::2/64']
    assert 'UP' in hl['flags'] and 'UP' in nl['flags'] and nl['mtu'] == 1400 and hl['mtu'] == 1500
    assert hl.get('ifalias') == 'linuxnet.netns' and nl.get('ifalias') == 'linuxnet.netns'
    # one queue each way at both ends, asked for at creation (the kernel's default is one per CPU,
    # lowered to one on the registered device at the cost of an RCU grace period per end)
    assert [(link['num_tx_queues'], link['num_rx_queues']) for link in (hl, nl)] == [(1, 1), (1, 1)]
    assert subprocess.call(['ip', 'netns', 'exec', ns, 'ping', '-c1', '-W2', '10.0.0.1'],
                           stdout=subprocess.DEVNULL) == 0

    again = host.ok('veth', pair)
    assert not again['changed'], again['actions']

    pair['peer']['addresses'] = ['10.0.0.3/24']
    changed = host.ok('veth', pair, check=True)
    assert changed['actions'] == ['remove address 10.0.0.2/24 from %sn in netns %s' % (host.prefix, ns),
                                  'remove address fd00::2/64 from %sn in netns %s' % (host.prefix, ns),
                                  'add address 10.0.0.3/24 to %sn in netns %s' % (host.prefix, ns)]
    assert changed['diff']['before']['veth %s %sn' % (ns, host.prefix)]['addresses'] == ['10.0.0.2/24', 'fd00::2/64']
    assert changed['diff']['after']['veth %s %sn' % (ns, host.prefix)]['addresses'] == ['10.0.0.3/24']
    host.ok('veth', pair)
    assert host.addrs(host.links(ns)[host.prefix + 'n']) == ['10.0.0.3/24']

    gone = host.ok('veth', dict(pair, state='absent'))
    assert gone['changed'] and host.prefix + 'h' not in host.links() and host.prefix + 'n' not in host.links(ns)
    assert not host.ok('veth', dict(pair, state='absent'))['changed']


def _ipv6_of(host, ns, name):
    """disable_ipv6 of an interface and its IPv6 addresses (link-local included), read in its namespace."""
    where = ['ip', 'netns', 'exec', ns] if ns else ['ip', 'netns', 'exec', host.name]
    disabled = subprocess.check_output(where + ['cat', '/proc/sys/net/ipv6/conf/%s/disable_ipv6' % name],
                                       universal_newlines=True).strip()
    addresses = subprocess.check_output(where + ['ip', '-6', '-o', 'addr', 'show', 'dev', name],
                                        universal_newlines=True)
    return disabled, [line.split()[3] for line in addresses.splitlines()]


def test_veth_ipv6_off_on_ipv4_only_ends_and_as_declared(host):
    ns = host.ns('v6')
    host.ok('netns', {'name': ns})
    h, n = host.prefix + 'h', host.prefix + 'n'
    pair = {'name': h, 'addresses': ['10.0.6.1/24'], 'peer': {'name': n, 'netns': ns, 'addresses': ['10.0.6.2/24']}}
    created = host.ok('veth', pair)
    assert 'disable IPv6 on %s in the host' % h in created['actions']
    assert created['pairs'][0]['ipv6'] is False and 'ipv6' not in created['pairs'][0]['peer']
    assert host.ok('veth', pair, check=True)['pairs'][0]['peer']['ipv6'] is True  # as read
    # off before the host end came up: no link-local address was ever made, no IPv6 route points at it;
    # the namespace's end has what the kernel gives
    assert _ipv6_of(host, None, h) == ('1', [])
    disabled, addresses = _ipv6_of(host, ns, n)
    assert disabled == '0' and [a for a in addresses if a.startswith('fe80:')], addresses
    assert host.sh('ip -6 route show table all dev %s' % h).strip() == ''
    assert subprocess.call(['ip', 'netns', 'exec', ns, 'ping', '-c1', '-W2', '10.0.6.1'], stdout=subprocess.DEVNULL) == 0
    assert not host.ok('veth', pair)['changed']

    # on, as declared, on an end that exists: its link-local address comes
    pair['ipv6'] = True
    assert host.ok('veth', pair, check=True)['actions'] == ['enable IPv6 on %s in the host' % h]
    assert host.ok('veth', pair)['actions'] == ['enable IPv6 on %s in the host' % h]
    disabled, addresses = _ipv6_of(host, None, h)
    assert disabled == '0' and [a for a in addresses if a.startswith('fe80:')], addresses
    assert not host.ok('veth', pair)['changed']
    # an IPv6 address given: IPv6 off is refused, and nothing changes
    refused = host.module('veth', dict(pair, ipv6=False, addresses=['10.0.6.1/24', 'fd06::1/64']))
    assert refused['failed'] and 'ipv6' in refused['msg'] and 'fd06::1/64' in refused['msg']
    host.ok('veth', dict(pair, addresses=['10.0.6.1/24', 'fd06::1/64']))
    assert 'fd06::1/64' in _ipv6_of(host, None, h)[1]
    # off again: the kernel drops its IPv6 addresses with it, the diff says so
    off = host.ok('veth', dict(pair, ipv6=False, peer=dict(pair['peer'], ipv6=False)))
    assert off['actions'] == ['disable IPv6 on %s in the host' % h, 'disable IPv6 on %s in netns %s' % (n, ns)]
    assert off['diff']['after']['veth (host) %s' % h]['addresses'] == ['10.0.6.1/24']
    assert _ipv6_of(host, None, h) == ('1', []) and _ipv6_of(host, ns, n) == ('1', [])
    assert subprocess.call(['ip', 'netns', 'exec', ns, 'ping', '-c1', '-W2', '10.0.6.1'], stdout=subprocess.DEVNULL) == 0


def test_veth_conflicts(host):
    ns = host.ns('c')
    host.ok('netns', {'name': ns})
    host.sh('ip link add %sh type bridge' % host.prefix)
    pair = {'name': host.prefix + 'h', 'peer': {'name': 'eth0', 'netns': ns}}
    refused = host.module('veth', pair)
    assert refused['failed'] and 'not as the peer' in refused['msg'] and 'replace: true' in refused['msg']
    assert host.links()[host.prefix + 'h']['linkinfo']['info_kind'] == 'bridge'
    absent = host.module('veth', dict(pair, state='absent'))
    assert absent['failed'] and 'not a veth' in absent['msg']
    replaced = host.ok('veth', dict(pair, replace=True))
    assert replaced['changed'] and host.links()[host.prefix + 'h']['linkinfo']['info_kind'] == 'veth'
    assert not host.ok('veth', pair)['changed']
    # the same name on the other side of another pair is a conflict too
    other = {'name': host.prefix + 'x', 'peer': {'name': 'eth0', 'netns': ns}}
    assert 'not as the peer' in host.module('veth', other)['msg']


def test_veth_both_ends_in_namespaces_and_bridge(host):
    a, b = host.ns('a'), host.ns('b')
    host.ok('netns', {'namespaces': [{'name': a}, {'name': b}]})
    host.ok('bridge', {'name': 'br0', 'netns': a, 'addresses': ['172.30.0.1/24']})
    pairs = {'pairs': [
        {'name': 'p1', 'netns': a, 'master': 'br0', 'peer': {'name': 'eth0', 'netns': b, 'addresses': ['172.30.0.2/24']}},
        {'name': 'x1', 'netns': b, 'peer': {'name': 'x2', 'netns': b}},
    ]}
    host.ok('veth', pairs)
    assert host.links(a)['p1']['master'] == 'br0'
    assert subprocess.call(['ip', 'netns', 'exec', b, 'ping', '-c1', '-W2', '172.30.0.1'], stdout=subprocess.DEVNULL) == 0
    assert not host.ok('veth', pairs)['changed']
    info = host.ok('netns_info', {'netns': [a, b]})
    assert {'name': 'p1', 'netns': a, 'peer': {'name': 'eth0', 'netns': b}} in info['veth_pairs'] or \
        {'name': 'eth0', 'netns': b, 'peer': {'name': 'p1', 'netns': a}} in info['veth_pairs']
    assert {'name': 'br0', 'netns': a, 'ports': ['p1']} in info['bridges']


def test_bridge_ports_without_ipv6_still_bridge_ipv6_between_namespaces(host):
    """A port's own IPv6 is off by default (a port without addresses serves nothing at L3); the
    frames it bridges are no business of its own IPv6, nor of br_netfilter's (loaded here)."""
    a, b = host.ns('a'), host.ns('b')
    host.ok('netns', {'namespaces': [{'name': a}, {'name': b}]})
    host.ok('bridge', {'name': 'br6', 'addresses': ['172.31.0.1/24']})
    pairs = {'pairs': [{'name': host.prefix + str(i), 'master': 'br6', 'peer': {
        'name': 'eth0', 'netns': ns, 'addresses': ['172.31.0.%d/24' % (i + 1), 'fd31::%d/64' % (i + 1)]}}
        for i, ns in ((1, a), (2, b))]}
    made = host.ok('veth', pairs)
    assert ['disable IPv6 on %s%d in the host' % (host.prefix, i) in made['actions'] for i in (1, 2)] == [True, True]
    assert _ipv6_of(host, None, host.prefix + '1') == ('1', [])
    assert subprocess.call(['ip', 'netns', 'exec', a, 'ping', '-6', '-c1', '-W3', 'fd31::3'], stdout=subprocess.DEVNULL) == 0
    assert subprocess.call(['ip', 'netns', 'exec', a, 'ping', '-c1', '-W2', '172.31.0.3'], stdout=subprocess.DEVNULL) == 0
    assert not host.ok('veth', pairs)['changed']


@pytest.mark.parametrize('python, args, fragment', pythons_for([
    ({'name': 'a' * 16, 'peer': {'name': 'b'}}, 'name='),
    ({'name': 'a b', 'peer': {'name': 'b'}}, 'name='),
    ({'name': 'a', 'peer': {'name': 'b/c'}}, 'peer.name='),
    ({'name': 'a', 'peer': {'name': 'b'}, 'addresses': ['10.0.0.1']}, 'addresses[0]='),
    ({'name': 'a', 'peer': {'name': 'b'}, 'addresses': ['10.0.0.0/24']}, 'network address'),
    ({'name': 'a', 'peer': {'name': 'b'}, 'addresses': ['300.0.0.1/24']}, 'addresses[0]='),
    ({'name': 'a', 'peer': {'name': 'a'}}, 'same interface'),
    ({'name': 'a', 'peer': {'name': 'b', 'netns': 'nope-missing'}}, 'does not exist'),
    ({'name': 'a', 'peer': {'name': 'b'}, 'master': 'nobridge'}, 'create the bridge first'),
    ({'name': 'a', 'peer': {'name': 'b'}, 'mtu': 20}, 'mtu='),
    ({'pairs': [{'name': 'a', 'peer': {'name': 'b'}}, {'name': 'a', 'peer': {'name': 'c'}}]}, 'declared twice'),
], reads_state))
def test_veth_bad_input(host, args, fragment):
    before = host.sh('ip -d link; ip addr')
    result = host.module('veth', args)
    assert result['failed'] and fragment in result['msg'], result['msg']
    assert host.sh('ip -d link; ip addr') == before


def test_mtu_range_ends(host):
    """68 and 65535, the ends of the MTU range the docs give (and the kernel takes), on a veth pair's
    two ends and a bridge."""
    pair = {'name': host.prefix + 'm', 'mtu': 65535, 'peer': {'name': host.prefix + 'p', 'mtu': 68}}
    bridge = {'name': host.prefix + 'b', 'mtu': 68}
    host.ok('veth', pair)
    host.ok('bridge', bridge)
    links = host.links()
    assert (links[host.prefix + 'm']['mtu'], links[host.prefix + 'p']['mtu'], links[host.prefix + 'b']['mtu']) == (
        65535, 68, 68)
    assert not host.ok('veth', pair)['changed'] and not host.ok('bridge', bridge)['changed']


# ---- bridge ----------------------------------------------------------------------------------------------
def test_bridge_lifecycle(host):
    spec = {'name': 'br0', 'addresses': ['172.30.0.1/24', 'fd30::1/64'], 'mtu': 9000}
    predicted = host.ok('bridge', spec, check=True)
    assert predicted['changed'] and 'br0' not in host.links()
    created = host.ok('bridge', spec)
    assert created['actions'] == predicted['actions']
    br = host.links()['br0']
    assert br['linkinfo']['info_kind'] == 'bridge' and br['mtu'] == 9000 and host.addrs(br) == ['172.30.0.1/24', 'fd30::1/64']
    assert not host.ok('bridge', spec)['changed']
    host.sh('ip link add lnx-v1 type veth peer name lnx-v2')
    refused = host.module('bridge', {'name': 'lnx-v1', 'state': 'absent'})
    assert refused['failed'] and 'not a bridge' in refused['msg']
    assert host.ok('bridge', dict(spec, state='absent'))['changed']
    assert 'br0' not in host.links()
    assert not host.ok('bridge', dict(spec, state='absent'))['changed']


# ---- routes ----------------------------------------------------------------------------------------------
def test_routes(host):
    ns = host.ns('r')
    host.ok('netns', {'name': ns})
    host.ok('veth', tutorial_pair(host, ns))
    routes = {'routes': [{'netns': ns, 'gateway': '10.0.0.1'},
                         {'netns': ns, 'gateway': 'fd00::1'},
                         {'netns': ns, 'dest': '10.20.0.0/16', 'gateway': '10.0.0.1', 'metric': 100, 'table': 100}]}
    predicted = host.ok('netns_route', routes, check=True)
    assert len(predicted['actions']) == 3
    assert host.ok('netns_route', routes)['actions'] == predicted['actions']
    table = host.sh('ip -n %s route show default; ip -n %s -6 route show default; ip -n %s route show table 100' % (ns, ns, ns))
    assert 'default via 10.0.0.1' in table and 'default via fd00::1' in table and '10.20.0.0/16 via 10.0.0.1' in table
    assert not host.ok('netns_route', routes)['changed']
    # another gateway for the same route replaces it
    host.sh('ip -n %s addr add 10.0.0.9/24 dev %sn' % (ns, host.prefix), check=False)
    moved = host.ok('netns_route', {'netns': ns, 'gateway': '10.0.0.254'})
    assert moved['actions'] == ['replace route %s default via 10.0.0.254' % ns]
    assert moved['diff']['before']['route %s default' % ns]['gateway'] == '10.0.0.1'
    assert host.ok('netns_route', {'netns': ns, 'dest': '10.20.0.0/16', 'metric': 100, 'table': 100, 'state': 'absent'})['changed']
    assert '10.20.0.0' not in host.sh('ip -n %s route show table 100' % ns)


def test_route_documented_values(host):
    """The ends of each range and the special values netns_route documents as accepted, as the
    kernel takes them: IPv6 metric 0 is 1024, table 253 is `default`, 1 and 2^32-1 are tables."""
    ns = host.ns('rv')
    host.ok('netns', {'name': ns})
    host.ok('veth', tutorial_pair(host, ns))
    routes = {'routes': [{'netns': ns, 'dest': 'fd01::/64', 'gateway': 'fd00::1', 'metric': 0},
                         {'netns': ns, 'dest': '10.21.0.0/16', 'gateway': '10.0.0.1', 'table': 253},
                         {'netns': ns, 'dest': '10.22.0.0/16', 'gateway': '10.0.0.1', 'table': 1},
                         {'netns': ns, 'dest': '10.23.0.0/16', 'gateway': '10.0.0.1', 'table': 4294967295,
                          'metric': 4294967295}]}
    made = host.ok('netns_route', routes)
    assert [(r['table'], r['metric']) for r in made['routes']] == [
        (254, 1024), (253, 0), (1, 0), (4294967295, 4294967295)]
    assert 'metric 1024' in host.sh('ip -n %s -6 route show fd01::/64' % ns)
    assert '10.21.0.0/16 via 10.0.0.1' in host.sh('ip -n %s route show table default' % ns)
    assert '10.22.0.0/16 via 10.0.0.1' in host.sh('ip -n %s route show table 1' % ns)
    assert 'metric 4294967295' in host.sh('ip -n %s route show table 4294967295' % ns)
    again = host.ok('netns_route', routes)
    assert not again['changed'] and again['routes'] == made['routes']


def test_route_mark_and_purge(host):
    """Routes carry protocol 76; a route someone else made is never marked or purged, even when a
    declaration matches it; purge deletes only ours, and routes: [] with purge deletes all of ours."""
    ns = host.ns('rp')
    host.ok('netns', {'name': ns})
    host.ok('veth', tutorial_pair(host, ns))
    ours = [{'dest': '10.30.0.0/24', 'gateway': '10.0.0.2'}, {'dest': '10.31.0.0/24', 'gateway': '10.0.0.2'}]
    made = host.ok('netns_route', {'routes': ours + [{'netns': ns, 'gateway': '10.0.0.1'}]})
    assert [r['ours'] for r in made['routes']] == [True, True, True]
    assert 'proto 76' in host.sh('ip route show 10.30.0.0/24') and 'proto 76' in host.sh('ip -n %s route show default' % ns)
    # by hand, with a preferred source the plan does not model; and a daemon's
    host.sh('ip route add 10.32.0.0/24 via 10.0.0.2 src 10.0.0.1 && ip route add 10.33.0.0/24 via 10.0.0.2 proto dhcp')

    for dest in ('10.32.0.0/24', '10.33.0.0/24'):
        matching = host.ok('netns_route', {'dest': dest, 'gateway': '10.0.0.2'})
        assert not matching['changed'] and matching['routes'][0]['ours'] is False, matching
    assert 'src 10.0.0.1' in host.sh('ip route show 10.32.0.0/24') and 'proto 76' not in host.sh('ip route show 10.32.0.0/24')
    # another gateway replaces it: written by us, it is ours from then on
    moved = host.ok('netns_route', {'dest': '10.33.0.0/24', 'gateway': '10.0.0.3'})
    assert moved['actions'] == ['replace route (host) 10.33.0.0/24 via 10.0.0.3'] and moved['routes'][0]['ours']
    assert 'proto 76' in host.sh('ip route show 10.33.0.0/24')

    spec = {'routes': ours[:1], 'purge': True}
    predicted = host.ok('netns_route', spec, check=True)
    assert sorted(predicted['purged']) == ['route (host) 10.31.0.0/24', 'route (host) 10.33.0.0/24']
    done = host.ok('netns_route', spec)
    assert done['actions'] == predicted['actions'] and done['changed']
    table = host.sh('ip route')
    assert '10.30.0.0/24' in table and '10.32.0.0/24' in table and '10.0.0.0/24 dev' in table
    assert '10.31.0.0' not in table and '10.33.0.0' not in table
    # the namespace's route is out of a host-only call's reach
    assert 'default via 10.0.0.1' in host.sh('ip -n %s route show default' % ns)
    assert not host.ok('netns_route', spec)['changed']
    # naming the namespace brings its routes in
    inside = host.ok('netns_route', {'routes': [{'netns': ns, 'dest': '10.50.0.0/24', 'gateway': '10.0.0.1',
                                                 'state': 'absent'}], 'purge': True})
    assert sorted(inside['purged']) == sorted(['route %s default' % ns, 'route (host) 10.30.0.0/24'])
    # an empty list declares none: every route of ours on the host goes, the others stay
    host.ok('netns_route', {'routes': ours})
    emptied = host.ok('netns_route', {'routes': [], 'purge': True})
    assert sorted(emptied['purged']) == ['route (host) 10.30.0.0/24', 'route (host) 10.31.0.0/24']
    assert host.sh('ip route show proto 76') == '' and '10.32.0.0/24' in host.sh('ip route')


@pytest.mark.parametrize('python, args, fragment', pythons_for([
    ({'gateway': '10.0.0.1', 'dest': 'fd00::/64'}, 'gateway='),
    ({'gateway': 'nonsense'}, 'gateway='),
    ({'dest': '10.0.0.1/24', 'gateway': '10.0.0.1'}, 'host bits'),
    ({'dest': '10.1.0.0/16'}, 'both missing'),
    ({'gateway': '10.99.0.1'}, 'not in any subnet connected'),
    ({'gateway': 'fe80::1'}, 'dev='),
    ({'dev': 'nosuchdev'}, 'no such interface'),
    ({'gateway': '10.0.0.1', 'table': 255}, 'table='),
    ({'gateway': '10.0.0.1', 'netns': 'missing-ns'}, 'does not exist'),
], reads_state))
def test_route_bad_input(host, args, fragment):
    before = host.sh('ip route show table all; ip -6 route show table all')
    result = host.module('netns_route', args)
    assert result['failed'] and fragment in result['msg'], result['msg']
    assert host.sh('ip route show table all; ip -6 route show table all') == before


# ---- forwarding ------------------------------------------------------------------------------------------
def test_forwarding(host, tmp_path):
    ns = host.ns('f')
    host.ok('netns', {'name': ns})
    conf = str(tmp_path / 'sysctl.d' / '90-test.conf')
    spec = {'settings': [{'ipv4': True, 'ipv6': True, 'persist': True, 'persist_file': conf},
                         {'netns': ns, 'ipv4': True}]}
    predicted = host.ok('sysctl_forward', spec, check=True)
    assert predicted['changed'] and host.sh('cat /proc/sys/net/ipv4/ip_forward').strip() == '0'
    done = host.ok('sysctl_forward', spec)
    assert done['actions'] == predicted['actions']
    assert host.sh('cat /proc/sys/net/ipv4/ip_forward /proc/sys/net/ipv6/conf/all/forwarding').split() == ['1', '1']
    assert subprocess.check_output(['ip', 'netns', 'exec', ns, 'cat', '/proc/sys/net/ipv4/ip_forward']).strip() == b'1'
    assert 'net.ipv4.ip_forward = 1' in open(conf).read()
    assert not host.ok('sysctl_forward', spec)['changed']
    off = host.ok('sysctl_forward', {'netns': ns, 'ipv4': False})
    assert off['diff']['before'] == {'forwarding %s' % ns: {'net.ipv4.ip_forward': True}}
    # the host's value is its own
    assert host.sh('cat /proc/sys/net/ipv4/ip_forward').strip() == '1'


def test_forwarding_persist_into_a_file_of_the_users(host):
    """persist_file naming a file the collection did not write: only the declared key changes, in
    place, on its line; comments, other keys, order, the file's mode and its symbolic link stay.
    In /etc/sysctl.d, which is the sandbox's own (tests/sandbox.sh)."""
    real = '/etc/sysctl.d/%s-users.conf' % host.prefix
    link = '/etc/sysctl.d/%s-link.conf' % host.prefix
    mine = '# mine\nvm.swappiness = 10\nnet.ipv4.ip_forward=0\n'
    edited = '# mine\nvm.swappiness = 10\nnet.ipv4.ip_forward=1\n'
    try:
        with open(real, 'w') as handle:
            handle.write(mine)
        os.chmod(real, 0o600)
        os.symlink(os.path.basename(real), link)
        spec = {'ipv4': True, 'persist': True, 'persist_file': link}
        predicted = host.ok('sysctl_forward', spec, check=True)
        assert predicted['diff']['before']['file ' + link] == mine
        assert predicted['diff']['after']['file ' + link] == edited
        assert predicted['actions'] == ['set net.ipv4.ip_forward = 1 in the host', 'edit ' + link]
        assert open(real).read() == mine
        done = host.ok('sysctl_forward', spec)
        assert done['actions'] == predicted['actions'] and done['diff'] == predicted['diff']
        assert open(real).read() == edited
        assert os.path.islink(link) and os.stat(real).st_mode & 0o7777 == 0o600
        assert sorted(n for n in os.listdir('/etc/sysctl.d') if n.startswith(host.prefix)) == [
            os.path.basename(link), os.path.basename(real)]  # no temporary file left behind
        again = host.ok('sysctl_forward', spec)
        assert not again['changed'] and again['actions'] == []
        # a key the file does not set yet is appended; ip_forward's line stays as it is
        added = host.ok('sysctl_forward', dict(spec, ipv6=False))
        assert added['actions'] == ['edit ' + link]
        assert open(real).read() == edited + 'net.ipv6.conf.all.forwarding = 0\n'
    finally:
        for path in (link, real):
            if os.path.lexists(path):
                os.unlink(path)


@pytest.mark.parametrize('python, args, fragment', pythons_for([
    ({}, 'both unset'),
    ({'netns': 'x', 'ipv4': True, 'persist': True}, 'host only'),
    ({'ipv4': True, 'persist': True, 'persist_file': 'relative.conf'}, 'persist_file='),
    ({'ipv4': True, 'netns': 'no-such-ns'}, 'does not exist'),
], reads_state))
def test_forwarding_bad_input(host, args, fragment):
    result = host.module('sysctl_forward', args)
    assert result['failed'] and fragment in result['msg'], result['msg']
    assert host.sh('cat /proc/sys/net/ipv4/ip_forward').strip() == '0'


# ---- info ------------------------------------------------------------------------------------------------
def test_info(host):
    ns = host.ns('i')
    host.ok('netns', {'name': ns})
    host.ok('veth', tutorial_pair(host, ns))
    host.ok('netns_route', {'netns': ns, 'gateway': '10.0.0.1'})
    info = host.ok('netns_info', {'netns': [ns]}, check=True)
    assert not info['changed'] and info['namespaces'] == [ns]
    assert info['host']['interfaces'][host.prefix + 'h']['addresses'] == ['10.0.0.1/24']
    assert info['host']['interfaces'][host.prefix + 'h']['ours'] is True
    assert info['netns'][ns]['lo_up'] is True
    assert {'dest': '0.0.0.0/0', 'gateway': '10.0.0.1', 'dev': host.prefix + 'n', 'metric': 0, 'table': 254,
            'ours': True} in info['netns'][ns]['routes']
    # the kernel's connected route is not ours
    assert {'dest': '10.0.0.0/24', 'gateway': None, 'dev': host.prefix + 'n', 'metric': 0, 'table': 254,
            'ours': False} in info['netns'][ns]['routes']
    assert {'name': host.prefix + 'h', 'netns': None, 'peer': {'name': host.prefix + 'n', 'netns': ns}} in info['veth_pairs'] \
        or {'name': host.prefix + 'n', 'netns': ns, 'peer': {'name': host.prefix + 'h', 'netns': None}} in info['veth_pairs']
    missing = host.module('netns_info', {'netns': ['no-such']})
    assert missing['failed'] and 'no-such' in missing['msg']


# ---- nat_masquerade --------------------------------------------------------------------------------------
def test_nat_masquerade(host):
    host.sh('nft add table ip nat; nft add chain ip nat POSTROUTING "{ type nat hook postrouting priority 100; }";'
            ' nft add rule ip nat POSTROUTING oifname \\"eth9\\" masquerade comment \\"users-own\\"')
    theirs = host.sh('nft list table ip nat')
    rules = {'rules': [{'source': '10.0.0.0/24', 'out_interface': 'up0'}, {'source': 'fd00::/64', 'out_interface': 'up0'}]}
    predicted = host.ok('nat_masquerade', rules, check=True)
    assert predicted['changed'] and 'linuxnet_netns' not in host.sh('nft list tables')
    done = host.ok('nat_masquerade', rules)
    assert done['actions'] == predicted['actions'] and done['diff'] == predicted['diff']
    ruleset = host.sh('nft list table inet linuxnet_netns')
    assert 'ip saddr 10.0.0.0/24 oifname "up0" masquerade comment "linuxnet:masq 10.0.0.0/24 up0"' in ruleset
    assert 'ip6 saddr fd00::/64 oifname "up0" masquerade' in ruleset
    assert not host.ok('nat_masquerade', rules)['changed']
    info = host.ok('netns_info', {'routes': False})
    assert {(r['source'], r['out_interface']) for r in info['nat']} == {('10.0.0.0/24', 'up0'), ('fd00::/64', 'up0')}
    one = host.ok('nat_masquerade', {'source': 'fd00::/64', 'out_interface': 'up0', 'state': 'absent'})
    assert one['changed'] and 'fd00::/64' not in host.sh('nft list table inet linuxnet_netns')
    host.ok('nat_masquerade', {'source': '10.0.0.0/24', 'out_interface': 'up0', 'state': 'absent'})
    assert 'linuxnet_netns' not in host.sh('nft list tables')
    assert host.sh('nft list table ip nat') == theirs


@pytest.mark.parametrize('python, args, fragment', pythons_for([
    ({'source': '10.0.0.1/24', 'out_interface': 'eth0'}, 'host bits'),
    ({'source': 'banana', 'out_interface': 'eth0'}, 'source='),
    ({'source': '10.0.0.0/24'}, 'out_interface='),
    ({'source': '10.0.0.0/24', 'out_interface': 'x' * 16}, 'out_interface='),
    ({'source': '10.0.0.0/24', 'out_interface': 'eth0', 'netns': 'no-such'}, 'does not exist'),
    ({'rules': [{'source': '10.0.0.0/24', 'out_interface': 'e'}, {'source': '10.0.0.0/24', 'out_interface': 'e'}]},
     'declared twice'),
], reads_state))
def test_nat_bad_input(host, args, fragment):
    result = host.module('nat_masquerade', args)
    assert result['failed'] and fragment in result['msg'], result['msg']
    assert host.sh('nft list ruleset') == ''


def test_nat_exclude_destinations(host):
    spec = {'source': '10.200.1.0/24', 'out_interface': 'up0', 'exclude_destinations': ['10.200.3.0/24', '10.200.2.0/24']}
    host.ok('nat_masquerade', spec)
    ruleset = host.sh('nft list table inet linuxnet_netns')
    assert 'ip saddr 10.200.1.0/24 ip daddr != 10.200.2.0/24 ip daddr != 10.200.3.0/24 oifname "up0" masquerade' in ruleset
    assert not host.ok('nat_masquerade', spec)['changed']
    info = host.ok('netns_info', {'routes': False})
    assert info['nat'][0]['exclude_destinations'] == ['10.200.2.0/24', '10.200.3.0/24']
    fewer = host.ok('nat_masquerade', dict(spec, exclude_destinations=['10.200.2.0/24']))
    assert fewer['changed'] and host.sh('nft list table inet linuxnet_netns').count('masquerade') == 1
    assert '10.200.3.0' not in host.sh('nft list table inet linuxnet_netns')
    bad = host.module('nat_masquerade', dict(spec, exclude_destinations=['fd00::/64']))
    assert bad['failed'] and 'exclude_destinations[0]=' in bad['msg']


def test_safe_router(host):
    """Forwarding restricted to the managed subnet: our namespace gets through the host, a stranger
    on another of the host's networks does not."""
    ns, inet, stranger = host.ns('app'), host.ns('inet'), host.ns('stranger')
    host.ok('netns', {'namespaces': [{'name': ns}, {'name': inet}, {'name': stranger}]})
    host.ok('veth', {'pairs': [
        {'name': 'vapp', 'addresses': ['10.0.0.1/24'], 'peer': {'name': 'eth0', 'netns': ns, 'addresses': ['10.0.0.2/24']}},
        {'name': 'vinet', 'addresses': ['203.0.113.2/24'], 'peer': {'name': 'eth0', 'netns': inet, 'addresses': ['203.0.113.1/24']}},
        {'name': 'vstr', 'addresses': ['192.0.2.1/24'], 'peer': {'name': 'eth0', 'netns': stranger, 'addresses': ['192.0.2.9/24']}},
    ]})
    host.ok('netns_route', {'routes': [{'netns': ns, 'gateway': '10.0.0.1'}, {'netns': stranger, 'gateway': '192.0.2.1'},
                                       {'netns': inet, 'dest': '10.0.0.0/24', 'gateway': '203.0.113.2'},
                                       {'netns': inet, 'dest': '192.0.2.0/24', 'gateway': '203.0.113.2'}]})
    spec = {'ipv4': True, 'restrict_to': ['10.0.0.0/24']}
    predicted = host.ok('sysctl_forward', spec, check=True)
    done = host.ok('sysctl_forward', spec)
    assert done['actions'] == predicted['actions']
    assert done['actions'].index('set net.ipv4.ip_forward = 1 in the host') == len(done['actions']) - 1
    chain = host.sh('nft list chain inet linuxnet_netns forward')
    assert chain.index('ip saddr 10.0.0.0/24 accept') < chain.index('ip daddr 10.0.0.0/24 accept') < chain.index('drop comment')

    def ping(src):
        return subprocess.call(['ip', 'netns', 'exec', src, 'ping', '-c1', '-W1', '203.0.113.1'], stdout=subprocess.DEVNULL) == 0
    assert ping(ns), 'our namespace cannot get through the host'
    assert not ping(stranger), 'the host routes for a stranger'
    assert not host.ok('sysctl_forward', spec)['changed']
    # widening the scope rewrites the chain in order: the drop stays last
    host.ok('sysctl_forward', {'restrict_to': ['10.0.0.0/24', '192.0.2.0/24']})
    chain = host.sh('nft list chain inet linuxnet_netns forward')
    rules = [line.strip() for line in chain.splitlines() if 'comment "linuxnet:' in line]
    assert len(rules) == 5 and rules[-1].startswith('drop')
    assert ping(stranger)
    host.ok('sysctl_forward', {'restrict_to': []})
    assert 'linuxnet_netns' not in host.sh('nft list tables')


def test_safe_router_with_docker_forward_drop(host):
    """Docker's FORWARD DROP (iptables-nft `ip filter`, DOCKER-USER ending in RETURN) is present: our
    namespace still gets out, through scoped accepts at the head of DOCKER-USER; Docker's own rules stay."""
    ns, inet = host.ns('app'), host.ns('inet')
    host.ok('netns', {'namespaces': [{'name': ns}, {'name': inet}]})
    host.ok('veth', {'pairs': [
        {'name': 'vapp', 'addresses': ['10.0.0.1/24'], 'peer': {'name': 'eth0', 'netns': ns, 'addresses': ['10.0.0.2/24']}},
        {'name': 'vinet', 'addresses': ['203.0.113.2/24'], 'peer': {'name': 'eth0', 'netns': inet, 'addresses': ['203.0.113.1/24']}},
    ]})
    host.ok('netns_route', {'routes': [{'netns': ns, 'gateway': '10.0.0.1'},
                                       {'netns': inet, 'dest': '10.0.0.0/24', 'gateway': '203.0.113.2'}]})
    host.sh('nft add table ip filter; nft add chain ip filter FORWARD "{ type filter hook forward priority 0; policy drop; }";'
            ' nft add chain ip filter DOCKER-USER; nft add rule ip filter FORWARD jump DOCKER-USER;'
            ' nft add rule ip filter DOCKER-USER return')
    docker_before = host.sh('nft list table ip filter')

    def ping():
        return subprocess.call(['ip', 'netns', 'exec', ns, 'ping', '-c1', '-W1', '203.0.113.1'], stdout=subprocess.DEVNULL) == 0
    host.ok('sysctl_forward', {'ipv4': True})
    assert not ping(), 'Docker-style FORWARD DROP should block before we act'
    spec = {'ipv4': True, 'restrict_to': ['10.0.0.0/24']}
    done = host.ok('sysctl_forward', spec)
    assert any('insert rule ip filter DOCKER-USER' in a for a in done['actions'])
    assert ping()
    user_chain = host.sh('nft list chain ip filter DOCKER-USER')
    assert user_chain.index('ip saddr 10.0.0.0/24 accept') < user_chain.index('return')
    assert 'meta nfproto' not in user_chain
    assert not host.ok('sysctl_forward', spec)['changed']
    host.ok('sysctl_forward', {'restrict_to': []})
    assert host.sh('nft list table ip filter') == docker_before
    assert not ping()


def test_purge_removes_only_our_undeclared_objects(host):
    """mario (ours, undeclared) goes; mario2 made with `ip netns add` and the user's bridge stay."""
    mario, mario2, keep = host.ns('mario'), host.ns('mario2'), host.ns('keep')
    host.ok('netns', {'namespaces': [{'name': mario}, {'name': keep}]})
    subprocess.check_call(['ip', 'netns', 'add', mario2])
    host.sh('ip link add userbr type bridge; ip link add uv1 type veth peer name uv2')
    host.ok('bridge', {'bridges': [{'name': 'br-a'}, {'name': 'br-b'}]})
    host.ok('veth', {'pairs': [{'name': 'va', 'peer': {'name': 'eth0', 'netns': keep}},
                               {'name': 'vb', 'peer': {'name': 'eth1', 'netns': keep}}]})
    host.ok('nat_masquerade', {'rules': [{'source': '10.1.0.0/24', 'out_interface': 'up0'},
                                         {'source': '10.2.0.0/24', 'out_interface': 'up0'}]})

    predicted = host.ok('netns', {'name': keep, 'purge': True}, check=True)
    assert predicted['purged'] == ['netns %s' % mario] and host.ns('mario') in host.netns_list()
    done = host.ok('netns', {'name': keep, 'purge': True})
    assert done['actions'] == predicted['actions']
    assert host.netns_list() == sorted([mario2, keep])
    assert not host.ok('netns', {'name': keep, 'purge': True})['changed']

    assert host.ok('bridge', {'name': 'br-a', 'purge': True})['purged'] == ['bridge br-b in the host']
    veth = host.ok('veth', {'name': 'va', 'peer': {'name': 'eth0', 'netns': keep}, 'purge': True})
    assert veth['purged'] == ['veth vb in the host']
    nat = host.ok('nat_masquerade', {'source': '10.1.0.0/24', 'out_interface': 'up0', 'purge': True})
    assert nat['purged'] == ['masquerade 10.2.0.0/24 out up0 in the host']
    names = set(host.links())
    assert {'userbr', 'uv1', 'uv2', 'br-a', 'va'} <= names and not {'br-b', 'vb'} & names
    assert '10.2.0.0' not in host.sh('nft list ruleset') and '10.1.0.0' in host.sh('nft list ruleset')
