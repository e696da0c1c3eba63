"""linuxnet.netns.network against the real kernel: a host's whole network in one task, one plan.

Each test runs the module inside a fresh network namespace (the `host` fixture), once with pip's
pyroute2 and once with Debian's 0.7.2 where it is installed - except the bad input that argument
validation refuses, which runs with pip's only (conftest.pythons_for). Check mode runs first on a host where
none of the objects exist, and must predict exactly the actions the real run then takes - also for
objects inside namespaces, and on bridges, that the same task creates. Real traffic checks that
what was built works.

The host has an uplink (the `uplink` fixture): up0 10.255.0.2/24, the far end of a veth in a
namespace made with `ip netns add` (the user's own, never the module's), which holds 10.255.0.1
and has no route back to the namespaces' subnets - so a reply from it proves MASQUERADE.
"""
import json
import queue
import subprocess
import threading
import time

import pytest

from conftest import pythons_for

UPLINK, UPLINK_GW = '10.255.0.2/24', '10.255.0.1'


# ---- helpers ---------------------------------------------------------------------------------------------
def ping(ns, address):
    return subprocess.call(['ip', 'netns', 'exec', ns, 'ping', '-c1', '-W2', address],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) == 0


def in_ns(ns, command):
    return subprocess.check_output(['ip', 'netns', 'exec', ns, 'sh', '-c', command], universal_newlines=True)


def forwarding(host, ns=None):
    read = 'cat /proc/sys/net/ipv4/ip_forward'
    return (host.sh(read) if ns is None else in_ns(ns, read)).strip()


def snapshot(host):
    """Everything a refused call must leave as it was: the host's and each namespace's links,
    addresses, routes and ruleset, forwarding, and the namespaces themselves."""
    parts = [host.sh('ip -d link; ip addr; ip route show table all; ip -6 route show table all; nft list ruleset; '
                     'cat /proc/sys/net/ipv4/ip_forward'), ' '.join(host.netns_list())]
    for ns in host.netns_list():
        parts.append(in_ns(ns, 'ip -d link; ip addr; ip route show table all; nft list ruleset; '
                               'cat /proc/sys/net/ipv4/ip_forward'))
    # an IPv6 address made just before is "tentative" until its DAD ends, and an interface that went
    # up gets its link-local address (and its routes) a moment later: the kernel's doing, on a loaded
    # machine after the first snapshot - not a change
    kept, skip_lifetime = [], False
    for line in '\n'.join(parts).replace(' tentative', '').split('\n'):
        if skip_lifetime and line.strip().startswith('valid_lft'):
            skip_lifetime = False
            continue
        skip_lifetime = 'fe80::' in line and line.strip().startswith('inet6')
        if 'fe80::' not in line:
            kept.append(line)
    return '\n'.join(kept)


@pytest.fixture
def uplink(host):
    inet = host.ns('inet')
    subprocess.check_call(['ip', 'netns', 'add', inet])
    subprocess.check_call(['ip', '-n', inet, 'link', 'set', 'lo', 'up'])
    host.sh('ip link add up0 type veth peer name eth0 netns %s && ip addr add %s dev up0 && ip link set up0 up'
            % (inet, UPLINK))
    subprocess.check_call(['ip', '-n', inet, 'addr', 'add', UPLINK_GW + '/24', 'dev', 'eth0'])
    subprocess.check_call(['ip', '-n', inet, 'link', 'set', 'eth0', 'up'])
    host.sh('ip route add default via %s' % UPLINK_GW)
    return inet


def tutorial(host):
    """The tutorial's network: ns1, a veth from the host (10.0.0.1) into it (10.0.0.2), its default
    route via the host, forwarding on, and MASQUERADE of 10.0.0.0/24 out the uplink."""
    ns = host.ns('ns1')
    return ns, {
        'namespaces': [{'name': ns}],
        'pairs': [{'name': host.prefix + 'h', 'addresses': ['10.0.0.1/24'],
                   'peer': {'name': 'veth-ns1', 'netns': ns, 'addresses': ['10.0.0.2/24']}}],
        'routes': [{'netns': ns, 'gateway': '10.0.0.1'}],
        'forwarding': [{'ipv4': True}],
        'masquerade': [{'source': '10.0.0.0/24', 'out_interface': 'up0'}],
    }


def bridge_network(host, count):
    """br0 on the host with the subnet's gateway address, `count` namespaces with a veth port on it
    each, a default route in each via the bridge, and a host route via the first namespace's
    address - every route via an address the same task adds."""
    names = [host.ns('app%d' % i) for i in range(1, count + 1)]
    return names, {
        'namespaces': [{'name': ns} for ns in names],
        'bridges': [{'name': 'br0', 'addresses': ['172.30.0.1/24']}],
        'pairs': [{'name': '%sp%d' % (host.prefix, i), 'master': 'br0',
                   'peer': {'name': 'eth0', 'netns': ns, 'addresses': ['172.30.0.%d/24' % (10 + i)]}}
                  for i, ns in enumerate(names, 1)],
        'routes': [{'netns': ns, 'gateway': '172.30.0.1'} for ns in names]
        + [{'dest': '10.77.0.0/24', 'gateway': '172.30.0.11'}],
    }


def both_networks(host):
    """The tutorial's network and a bridge network of 3 namespaces in one spec, both masqueraded,
    with forwarding scoped to their subnets: (tutorial namespace, bridged namespaces, spec)."""
    ns, tut = tutorial(host)
    names, bridged = bridge_network(host, 3)
    built = dict((key, tut.get(key, []) + bridged.get(key, [])) for key in set(tut) | set(bridged))
    built['masquerade'].append({'source': '172.30.0.0/24', 'out_interface': 'up0'})
    built['forwarding'] = [{'ipv4': True, 'restrict_to': ['10.0.0.0/24', '172.30.0.0/24']}]
    return ns, names, built


class NftMonitor(object):
    """`nft monitor` in a namespace: counts the nf_tables transactions (generations) committed there."""

    def __init__(self, ns):
        self.ns = ns
        self.proc = subprocess.Popen(['ip', 'netns', 'exec', ns, 'nft', 'monitor'], stdout=subprocess.PIPE,
                                     universal_newlines=True)
        self.lines = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        # listening once it reports a change of our own: `nft monitor` subscribes some time after it
        # starts (long, on a loaded machine), so the probe is repeated until one is seen
        deadline = time.time() + 60
        while True:
            in_ns(ns, 'nft add table ip linuxnet_probe; nft delete table ip linuxnet_probe')
            try:
                self.wait_for('delete table ip linuxnet_probe', timeout=1.0)
                break
            except queue.Empty:
                if time.time() > deadline:
                    raise AssertionError('nft monitor in %s reported nothing in 60 s' % ns)
        self.wait_for('# new generation')
        self.drain(settle=1.0)  # the events of earlier probes that came late

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line.rstrip('\n'))

    def wait_for(self, text, timeout=5.0):
        deadline = time.time() + timeout
        while True:
            line = self.lines.get(timeout=max(0.01, deadline - time.time()))
            if text in line:
                return line

    def events(self, first, timeout=30.0, settle=0.5):
        """The lines printed up to one holding `first` (which can come late on a loaded machine, once
        the call that caused it has returned), then those that follow until none comes for `settle` s."""
        seen = []
        deadline = time.time() + timeout
        while not any(first in line for line in seen) and time.time() < deadline:
            try:
                seen.append(self.lines.get(timeout=max(0.01, deadline - time.time())))
            except queue.Empty:
                break
        return seen + self.drain(settle)

    def drain(self, settle=0.5):
        seen = []
        while True:
            try:
                seen.append(self.lines.get(timeout=settle))
            except queue.Empty:
                return seen

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


# ---- the tutorial in one task ----------------------------------------------------------------------------
def test_tutorial_network_in_one_task(host, uplink):
    ns, spec = tutorial(host)
    predicted = host.ok('network', spec, check=True)
    assert predicted['changed'] and host.netns_list() == [uplink]
    assert host.prefix + 'h' not in host.links() and 'linuxnet_netns' not in host.sh('nft list tables')
    assert forwarding(host) == '0'

    created = host.ok('network', spec)
    assert created['changed']
    assert created['actions'] == predicted['actions']
    assert created['diff'] == predicted['diff']
    assert created['actions'][0] == 'create netns %s' % ns
    # how many objects of each given list; the objects' states are in the diff (and netns_info)
    assert created['declared'] == {'namespaces': 1, 'pairs': 1, 'routes': 1, 'forwarding': 1, 'masquerade': 1}
    assert 'purged' not in created
    diff_after = created['diff']['after']
    assert {'netns %s' % ns, 'veth (host) %sh' % host.prefix, 'veth %s veth-ns1' % ns,
            'route %s default' % ns, 'nftables (host)', 'forwarding (host)'} <= set(diff_after)
    assert created['diff']['before'] == {'forwarding (host)': {'net.ipv4.ip_forward': False}}

    # the kernel's view
    assert host.netns_list() == sorted([ns, uplink])
    host_end, ns_end = host.links()[host.prefix + 'h'], host.links(ns)['veth-ns1']
    assert host.addrs(host_end) == ['10.0.0.1/24'] and host.addrs(ns_end) == ['10.0.0.2/24']
    assert 'UP' in host.links(ns)['lo']['flags']
    assert 'default via 10.0.0.1 dev veth-ns1' in in_ns(ns, 'ip route show default')
    assert forwarding(host) == '1'
    assert 'oifname "up0" masquerade' in host.sh('nft list table inet linuxnet_netns')

    # real traffic: to the host end, to 127.0.0.1 (lo up), and out the uplink - where there is no
    # route back to 10.0.0.0/24, so the reply proves the MASQUERADE
    assert ping(ns, '10.0.0.1') and ping(ns, '127.0.0.1')
    assert ping(ns, UPLINK_GW), 'ns1 does not get out through the host'

    again = host.ok('network', spec)
    assert not again['changed'] and again['actions'] == [], again['actions']
    assert again['diff']['before'] == again['diff']['after']
    assert not host.ok('network', spec, check=True)['changed']


def test_the_lists_as_one_definition_are_the_same_network(host, uplink):
    """`definition`: the lists as one JSON text (or mapping) plan exactly what the options do."""
    ns, spec = tutorial(host)
    lists = dict((key, spec.pop(key)) for key in ('namespaces', 'pairs', 'routes', 'masquerade'))
    predicted = host.ok('network', dict(spec, **lists), check=True)
    as_text = host.ok('network', dict(spec, definition=json.dumps(lists)), check=True)
    as_mapping = host.ok('network', dict(spec, definition=lists), check=True)
    assert as_text['actions'] == as_mapping['actions'] == predicted['actions']
    assert as_text['diff'] == predicted['diff'] and as_text['declared'] == predicted['declared']
    assert 'characters in all, not echoed back' in as_text['invocation']['module_args']['definition']
    created = host.ok('network', dict(spec, definition=json.dumps(lists)))
    assert created['actions'] == predicted['actions'] and ping(ns, '10.0.0.1')
    assert not host.ok('network', dict(spec, **lists))['changed']
    assert not host.ok('network', dict(spec, definition=json.dumps(lists)))['changed']

    def refused(definition, *fragments, **options):
        result = host.module('network', dict(options, definition=definition))
        assert result['failed'] and not result['changed'], result
        for fragment in fragments:
            assert fragment in result['msg'], result['msg']

    # converted and checked as the options are, errors naming the definition; nothing changes
    refused('{"pairs": [', 'definition', 'not a JSON text')
    refused('[1, 2]', 'definition', 'not a mapping')
    refused(json.dumps({'netns': []}), 'definition.netns', 'not a list option')
    refused(json.dumps({'routes': lists['routes']}), 'definition.routes', 'also given', routes=lists['routes'])
    refused(json.dumps({'pairs': [dict(lists['pairs'][0], mtu='big')]}), 'definition', 'mtu')
    refused(json.dumps({'pairs': [dict(lists['pairs'][0], addresses='10.0.0.1/24 10.0.0.3/24')]}), 'pairs[0].addresses[0]')
    refused(json.dumps({'namespaces': [{'name': ns, 'state': 'gone'}]}), 'definition', 'state')
    refused(json.dumps({'pairs': [dict(lists['pairs'][0], name='x' * 16)]}), 'pairs[0].name')
    assert not host.ok('network', dict(spec, **lists))['changed']


# ---- a bridge, its ports and the routes over them --------------------------------------------------------
def test_bridge_ports_and_routes_in_one_task(host):
    names, spec = bridge_network(host, 4)
    predicted = host.ok('network', spec, check=True)
    assert predicted['changed'] and host.netns_list() == [] and 'br0' not in host.links()
    created = host.ok('network', spec)
    assert created['actions'] == predicted['actions'] and created['diff'] == predicted['diff']
    assert created['declared'] == {'namespaces': 4, 'bridges': 1, 'pairs': 4, 'routes': 5}

    host_links = host.links()
    assert host.addrs(host_links['br0']) == ['172.30.0.1/24'] and host_links['br0']['linkinfo']['info_kind'] == 'bridge'
    for i, ns in enumerate(names, 1):
        assert host_links['%sp%d' % (host.prefix, i)]['master'] == 'br0'
        assert host.addrs(host.links(ns)['eth0']) == ['172.30.0.%d/24' % (10 + i)]
        assert 'default via 172.30.0.1' in in_ns(ns, 'ip route show default')
    assert '10.77.0.0/24 via 172.30.0.11 dev br0' in host.sh('ip route show 10.77.0.0/24')

    # namespace to bridge, and namespace to namespace across the bridge
    assert ping(names[0], '172.30.0.1')
    assert ping(names[0], '172.30.0.14') and ping(names[3], '172.30.0.11')

    again = host.ok('network', spec)
    assert not again['changed'], again['actions']


def test_a_port_on_a_bridge_inside_a_namespace_created_by_the_same_task(host):
    """Everything inside namespaces the task creates: a bridge in `router`, a veth from `app` onto it."""
    router, app = host.ns('router'), host.ns('app')
    spec = {'namespaces': [{'name': router}, {'name': app}],
            'bridges': [{'name': 'br-in', 'netns': router, 'addresses': ['192.168.7.1/24'], 'mtu': 1400}],
            'pairs': [{'name': 'port1', 'netns': router, 'master': 'br-in', 'mtu': 1400,
                       'peer': {'name': 'eth0', 'netns': app, 'addresses': ['192.168.7.2/24']}}],
            'routes': [{'netns': app, 'dest': '10.8.0.0/16', 'gateway': '192.168.7.1'}],
            'forwarding': [{'netns': router, 'ipv4': True}]}
    predicted = host.ok('network', spec, check=True)
    assert host.netns_list() == []
    created = host.ok('network', spec)
    assert created['actions'] == predicted['actions']
    assert host.links(router)['port1']['master'] == 'br-in' and host.links(router)['br-in']['mtu'] == 1400
    assert forwarding(host, router) == '1' and forwarding(host) == '0'
    assert ping(app, '192.168.7.1')
    assert not host.ok('network', spec)['changed']


# ---- teardown --------------------------------------------------------------------------------------------
def test_teardown_with_state_absent_leaves_nothing(host, uplink):
    ns, names, built = both_networks(host)
    host.ok('network', built)
    assert ping(ns, UPLINK_GW) and ping(names[0], UPLINK_GW)
    assert 'chain forward' in host.sh('nft list table inet linuxnet_netns')

    def absent(items):
        return [dict(item, state='absent') for item in items]
    teardown = {
        'namespaces': absent(built['namespaces']),
        'bridges': absent(built['bridges']),
        'pairs': [{'name': pair['name'], 'peer': {'name': pair['peer']['name'], 'netns': pair['peer']['netns']},
                   'state': 'absent'} for pair in built['pairs']],
        'routes': [{'dest': '10.77.0.0/24', 'gateway': '172.30.0.11', 'state': 'absent'}],
        'masquerade': absent(built['masquerade']),
        'forwarding': [{'ipv4': False, 'restrict_to': []}],
    }
    predicted = host.ok('network', teardown, check=True)
    assert predicted['changed'] and host.netns_list() == sorted([uplink, ns] + names)
    done = host.ok('network', teardown)
    assert done['actions'] == predicted['actions'] and done['diff'] == predicted['diff']
    assert set(done['diff']['before']) > set(done['diff']['after'])

    # nothing of ours is left: no namespace, no link, no route, no table; forwarding off
    assert host.netns_list() == [uplink]
    assert set(host.links()) == {'lo', 'up0'}
    assert '10.77.0.0' not in host.sh('ip route show table all')
    assert 'linuxnet_netns' not in host.sh('nft list tables')
    assert forwarding(host) == '0'
    # the user's own uplink is untouched
    assert host.addrs(host.links()['up0']) == [UPLINK] and 'default via %s' % UPLINK_GW in host.sh('ip route show default')

    again = host.ok('network', teardown)
    assert not again['changed'] and again['actions'] == []
    assert not host.ok('network', teardown, check=True)['changed']


def test_teardown_by_purge_match_needs_no_list_and_takes_only_ours(host, uplink):
    """The role's teardown: empty lists, purge, and purge_match naming what is the caller's - no
    read first. Only this collection's objects that match go; the user's that match, and ours
    that do not, stay."""
    ns, names, built = both_networks(host)
    host.ok('network', built)
    # ours, outside every pattern: a namespace, a veth pair on the host, a route, a MASQUERADE rule
    keep = host.ns('keep')
    host.ok('network', {'namespaces': [{'name': keep}],
                        'pairs': [{'name': host.prefix + 'k', 'addresses': ['10.9.0.1/24'], 'peer': {'name': host.prefix + 'kp'}}],
                        'routes': [{'dest': '10.88.0.0/24', 'gateway': '10.9.0.2'},
                                   # ours and inside the routes' prefix: it goes
                                   {'dest': '10.77.3.0/24', 'gateway': UPLINK_GW}],
                        'masquerade': [{'source': '10.9.0.0/24', 'out_interface': 'up0'}]})
    # the user's, inside the patterns: a namespace, a bridge, a route by hand and a daemon's
    mine = host.ns('app9')
    subprocess.check_call(['ip', 'netns', 'add', mine])
    host.sh('ip link add br9 type bridge && ip route add 10.77.1.0/24 via %s '
            '&& ip route add 10.77.2.0/24 via %s proto dhcp' % (UPLINK_GW, UPLINK_GW))
    teardown = {'namespaces': [], 'bridges': [], 'pairs': [], 'routes': [], 'masquerade': [],
                'forwarding': [{'ipv4': False, 'restrict_to': []}], 'purge': True,
                'purge_match': {'namespaces': [host.prefix + r'-(ns|app)[0-9]+'], 'bridges': ['br[0-9]'],
                                'pairs': [host.prefix + 'h'], 'routes': ['10.77.0.0/16', '10.0.0.0/24'],
                                'masquerade': ['10.0.0.0/24', '172.30.0.0/16']}}
    predicted = host.ok('network', teardown, check=True)
    assert sorted(predicted['purged']) == sorted(
        # (the route to 10.77.0.0/24 is via br0: it goes with the bridge; the pair %sh with its namespace)
        ['netns %s' % n for n in [ns] + names] + ['bridge br0 in the host', 'route (host) 10.77.3.0/24',
                                                  'masquerade 10.0.0.0/24 out up0 in the host',
                                                  'masquerade 172.30.0.0/24 out up0 in the host'])
    assert predicted['declared'] == {'namespaces': 0, 'bridges': 0, 'pairs': 0, 'routes': 0, 'masquerade': 0,
                                     'forwarding': 1}
    done = host.ok('network', teardown)
    assert done['actions'] == predicted['actions'] and done['purged'] == predicted['purged']
    assert sorted(host.netns_list()) == sorted([uplink, keep, mine])
    left = host.links()
    assert set(left) == {'lo', 'up0', 'br9', host.prefix + 'k', host.prefix + 'kp'}
    table = host.sh('ip route show table all')
    assert '10.77.0.0/24' not in table and '10.77.3.0/24' not in table
    assert '10.77.1.0/24' in table and '10.77.2.0/24' in table
    assert '10.88.0.0/24 via 10.9.0.2' in table
    rules = host.sh('nft list table inet linuxnet_netns')
    assert '10.9.0.0/24' in rules and '172.30.0.0' not in rules and '10.0.0.0/24' not in rules
    assert forwarding(host) == '0'
    again = host.ok('network', teardown)
    assert not again['changed'] and again['purged'] == []


@pytest.mark.parametrize('python, args, fragment', pythons_for([
    ({'purge_match': {'namespaces': ['x']}}, 'purge_match='),
    ({'purge': True, 'purge_match': {'namespaces': ['lnns[0-9']}}, 'purge_match.namespaces[0]='),
    ({'purge': True, 'purge_match': {'routes': ['10.0.0.1/8']}}, 'purge_match.routes[0]='),
    ({'purge': True, 'purge_match': {'masquerade': ['nonsense']}}, 'purge_match.masquerade[0]='),
], lambda case: False))
def test_purge_match_bad_input_changes_nothing(host, args, fragment):
    ns = host.ns('stay')
    host.ok('network', {'namespaces': [{'name': ns}]})
    before = snapshot(host)
    result = host.module('network', dict(args, namespaces=[], routes=[], masquerade=[]))
    assert result.get('failed') and fragment in result['msg'] and not result['changed'], result
    assert snapshot(host) == before


def test_teardown_of_pairs_with_their_namespace_does_not_wait_out_the_timeout(host):
    ns = host.ns('a')
    pair = {'name': host.prefix + 'v', 'peer': {'name': 'eth0', 'netns': ns}}
    host.ok('network', {'namespaces': [{'name': ns}], 'pairs': [pair]})
    start = time.time()
    result = host.ok('network', {'namespaces': [{'name': ns, 'state': 'absent'}],
                                 'pairs': [dict(pair, state='absent')]})
    # the pair goes with its namespace (the kernel removes both ends in its batch), not one by one
    assert result['actions'] == ['delete netns %s' % ns]
    assert pair['name'] not in host.links()
    # not the 10 s timeout of a wait for an end that was gone before the wait began
    assert time.time() - start < 5, 'took %.1f s' % (time.time() - start)


def test_a_pair_into_a_namespace_purge_removes_names_purge(host):
    keep, mario = host.ns('keep'), host.ns('mario')
    host.ok('network', {'namespaces': [{'name': keep}, {'name': mario}]})
    result = host.module('network', {'namespaces': [{'name': keep}], 'purge': True,
                                     'pairs': [{'name': host.prefix + 'pv', 'peer': {'name': 'eth0', 'netns': mario}}]})
    assert result.get('failed') and 'removed by purge in the same task' in result['msg'] and 'declare it in namespaces' in result['msg']
    assert not result['changed'] and mario in host.netns_list()


# ---- nf_tables: MASQUERADE and restrict_to of one namespace in one transaction ---------------------------
@pytest.mark.parametrize('where', ['host', 'namespace'])
def test_masquerade_and_restrict_to_in_one_transaction(host, where):
    if where == 'host':
        ns, run_in = None, host.name
    else:
        ns = run_in = host.ns('router')
        host.ok('network', {'namespaces': [{'name': ns}]})
    spec = {'masquerade': [{'netns': ns, 'source': '10.40.0.0/24', 'out_interface': 'up0'},
                           {'netns': ns, 'source': 'fd40::/64', 'out_interface': 'up0'}],
            'forwarding': [{'netns': ns, 'ipv4': True, 'ipv6': True, 'restrict_to': ['10.40.0.0/24', 'fd40::/64']}]}
    predicted = host.ok('network', spec, check=True)
    assert 'linuxnet_netns' not in in_ns(run_in, 'nft list tables')
    assert len([a for a in predicted['actions'] if a.startswith('add table inet linuxnet_netns')]) == 1

    monitor = NftMonitor(run_in)
    try:
        done = host.ok('network', spec)
        events = monitor.events('# new generation')
    finally:
        monitor.stop()
    assert done['actions'] == predicted['actions']
    generations = [line for line in events if line.startswith('# new generation')]
    assert len(generations) == 1, 'expected one nf_tables transaction, saw:\n' + '\n'.join(events)

    ruleset = in_ns(run_in, 'nft list ruleset')
    assert 'chain postrouting' in ruleset and 'chain forward' in ruleset
    assert 'ip saddr 10.40.0.0/24 oifname "up0" masquerade' in ruleset
    assert 'ip6 saddr fd40::/64 oifname "up0" masquerade' in ruleset
    assert 'ip saddr 10.40.0.0/24 accept' in ruleset and 'ip6 daddr fd40::/64 accept' in ruleset
    chain = in_ns(run_in, 'nft list chain inet linuxnet_netns forward')
    assert [line.strip() for line in chain.splitlines() if 'comment "linuxnet:' in line][-1].startswith('drop')
    assert forwarding(host, ns) == '1'

    again = host.ok('network', spec)
    assert not again['changed'], again['actions']


def test_nf_tables_in_a_namespace_created_by_the_same_task(host):
    ns = host.ns('nat')
    spec = {'namespaces': [{'name': ns}],
            'masquerade': [{'netns': ns, 'source': '10.41.0.0/24', 'out_interface': 'eth0'}],
            'forwarding': [{'netns': ns, 'ipv4': True, 'restrict_to': ['10.41.0.0/24']}]}
    predicted = host.ok('network', spec, check=True)
    assert host.netns_list() == []
    done = host.ok('network', spec)
    assert done['actions'] == predicted['actions']
    ruleset = in_ns(ns, 'nft list ruleset')
    assert 'chain postrouting' in ruleset and 'chain forward' in ruleset
    assert 'linuxnet_netns' not in host.sh('nft list tables')
    assert not host.ok('network', spec)['changed']


# ---- conflicts in one task -------------------------------------------------------------------------------
def existing_network(host):
    ns, spec = tutorial(host)
    spec.pop('masquerade')
    host.ok('network', spec)
    return ns


@pytest.mark.parametrize('case', ['bridge-and-veth', 'veth-end-twice', 'same-pair-twice', 'existing-end-twice'])
def test_declared_twice_fails_and_changes_nothing(host, case):
    ns = existing_network(host)
    spec = {
        'bridge-and-veth': {'namespaces': [{'name': host.ns('new')}],
                            'bridges': [{'name': 'dup0'}],
                            'pairs': [{'name': 'dup0', 'peer': {'name': 'dup1'}}]},
        'veth-end-twice': {'pairs': [{'name': 'va', 'peer': {'name': 'eth9', 'netns': ns}},
                                     {'name': 'vb', 'peer': {'name': 'eth9', 'netns': ns}}]},
        'same-pair-twice': {'pairs': [{'name': 'va', 'peer': {'name': 'vz'}},
                                      {'name': 'va', 'peer': {'name': 'vz'}}]},
        # an end that exists already, claimed by a second pair that would replace it
        'existing-end-twice': {'pairs': [{'name': host.prefix + 'h', 'peer': {'name': 'veth-ns1', 'netns': ns}},
                                         {'name': 'vb', 'replace': True, 'peer': {'name': 'veth-ns1', 'netns': ns}}]},
    }[case]
    before = snapshot(host)
    for check in (True, False):
        result = host.module('network', spec, check=check)
        assert result.get('failed') and result['changed'] is False, result
        assert 'declared twice' in result['msg'] and 'pairs[' in result['msg'], result['msg']
    assert snapshot(host) == before


@pytest.mark.parametrize('kind', ['pairs', 'bridges', 'routes', 'masquerade', 'forwarding'])
def test_present_in_an_absent_namespace_fails_and_changes_nothing(host, kind):
    ns = existing_network(host)
    present = {
        'pairs': [{'name': 'vx', 'peer': {'name': 'eth1', 'netns': ns}}],
        'bridges': [{'name': 'brx', 'netns': ns}],
        'routes': [{'netns': ns, 'dest': '10.9.0.0/24', 'gateway': '10.0.0.1'}],
        'masquerade': [{'netns': ns, 'source': '10.9.0.0/24', 'out_interface': 'veth-ns1'}],
        'forwarding': [{'netns': ns, 'ipv4': True}],
    }[kind]
    spec = {'namespaces': [{'name': ns, 'state': 'absent'}], kind: present}
    before = snapshot(host)
    for check in (True, False):
        result = host.module('network', spec, check=check)
        assert result.get('failed') and result['changed'] is False, result
        assert 'is declared absent in the same task' in result['msg'] and kind + '[0]' in result['msg'], result['msg']
    assert snapshot(host) == before


def test_a_port_on_a_bridge_the_same_task_removes_fails_and_changes_nothing(host):
    host.ok('network', {'bridges': [{'name': 'brz'}], 'pairs': [{'name': 'vz0', 'master': 'brz', 'peer': {'name': 'vz1'}}]})

    def state():  # the bridge's operstate settles on its own after its port came up: not compared
        return dict((name, (link.get('master'), link.get('linkinfo', {}).get('info_kind')))
                    for name, link in host.links().items())
    before = state()
    spec = {'bridges': [{'name': 'brz', 'state': 'absent'}],
            'pairs': [{'name': 'vz0', 'master': 'brz', 'peer': {'name': 'vz1'}}]}
    for check in (True, False):
        result = host.module('network', spec, check=check)
        assert result.get('failed') and result['changed'] is False, result
        assert "pairs[0].master='brz': the same task removes it" in result['msg'], result['msg']
    assert state() == before and before['vz0'][0] == 'brz'


# ---- what the kernel does to other objects ----------------------------------------------------------------
def test_a_replaced_pair_gets_its_route_again(host):
    """Replacing a link drops the routes through it: the plan adds them again, in check mode too."""
    ns = host.ns('r')
    base = {'namespaces': [{'name': ns}],
            'pairs': [{'name': host.prefix + 'a', 'addresses': ['172.30.0.1/24'],
                       'peer': {'name': 'eth0', 'netns': ns, 'addresses': ['172.30.0.2/24']}}],
            'routes': [{'netns': ns, 'gateway': '172.30.0.1'}]}
    host.ok('network', base)
    moved = dict(base, pairs=[{'name': host.prefix + 'b', 'replace': True, 'addresses': ['172.30.0.1/24'],
                               'peer': {'name': 'eth0', 'netns': ns, 'addresses': ['172.30.0.2/24']}}])
    predicted = host.ok('network', moved, check=True)
    done = host.ok('network', moved)
    assert done['actions'] == predicted['actions']
    assert 'add route %s default via 172.30.0.1' % ns in done['actions']
    assert 'default via 172.30.0.1' in in_ns(ns, 'ip route')
    assert not host.ok('network', moved)['changed']


def test_forwarding_in_a_new_namespace_is_written_whatever_the_kernel_copied(host):
    """The kernel copies the initial namespace's ip_forward into a new namespace (by default): the
    declared value is written anyway, and scoped forwarding comes on only after its scope."""
    host.sh('echo 1 > /proc/sys/net/ipv4/ip_forward')
    off, scoped = host.ns('off'), host.ns('scoped')
    spec = {'namespaces': [{'name': off}, {'name': scoped}],
            'forwarding': [{'netns': off, 'ipv4': False},
                           {'netns': scoped, 'ipv4': True, 'restrict_to': ['10.77.0.0/24']}]}
    predicted = host.ok('network', spec, check=True)
    done = host.ok('network', spec)
    assert done['actions'] == predicted['actions']
    actions = done['actions']
    assert 'set net.ipv4.ip_forward = 0 in netns %s' % off in actions
    held = actions.index('set net.ipv4.ip_forward = 0 in netns %s (new; on once its forward scope is in place)' % scoped)
    scope = next(i for i, a in enumerate(actions) if a.startswith('add rule inet linuxnet_netns forward'))
    on = actions.index('set net.ipv4.ip_forward = 1 in netns %s' % scoped)
    assert held < scope < on
    assert forwarding(host, off) == '0' and forwarding(host, scoped) == '1'
    assert not host.ok('network', spec)['changed']


# ---- purge -----------------------------------------------------------------------------------------------
def test_purge_removes_only_our_undeclared_objects(host, uplink):
    mario, mario2, keep = host.ns('mario'), host.ns('mario2'), host.ns('keep')
    host.ok('network', {
        'namespaces': [{'name': mario}, {'name': keep}],
        'bridges': [{'name': 'br-a'}, {'name': 'br-b'}],
        'pairs': [{'name': 'va', 'peer': {'name': 'eth0', 'netns': keep}},
                  {'name': 'vb', 'peer': {'name': 'eth1', 'netns': keep}}],
        'masquerade': [{'source': '10.1.0.0/24', 'out_interface': 'up0'},
                       {'source': '10.2.0.0/24', 'out_interface': 'up0'}]})
    # the user's own: a namespace (named like ours), a bridge, a veth pair, an nft rule
    subprocess.check_call(['ip', 'netns', 'add', mario2])
    host.sh('ip link add userbr type bridge; ip link add uv1 type veth peer name uv2; '
            'nft add table ip usernat; nft add chain ip usernat post "{ type nat hook postrouting priority 100; }"; '
            'nft add rule ip usernat post oifname "up0" masquerade')
    theirs = host.sh('nft list table ip usernat')

    declared = {'namespaces': [{'name': keep}], 'bridges': [{'name': 'br-a'}],
                'pairs': [{'name': 'va', 'peer': {'name': 'eth0', 'netns': keep}}],
                'masquerade': [{'source': '10.1.0.0/24', 'out_interface': 'up0'}], 'purge': True}
    predicted = host.ok('network', declared, check=True)
    assert sorted(predicted['purged']) == sorted(['netns %s' % mario, 'bridge br-b in the host',
                                                  'veth vb in the host', 'masquerade 10.2.0.0/24 out up0 in the host'])
    assert mario in host.netns_list() and 'br-b' in host.links()
    done = host.ok('network', declared)
    assert done['actions'] == predicted['actions'] and done['purged'] == predicted['purged']

    assert host.netns_list() == sorted([mario2, keep, uplink])
    names = set(host.links())
    assert {'userbr', 'uv1', 'uv2', 'br-a', 'va', 'up0'} <= names and not {'br-b', 'vb'} & names
    assert set(host.links(keep)) == {'lo', 'eth0'}
    ruleset = host.sh('nft list ruleset')
    assert '10.2.0.0' not in ruleset and '10.1.0.0' in ruleset
    assert host.sh('nft list table ip usernat') == theirs

    again = host.ok('network', declared)
    assert not again['changed'] and again['purged'] == []


def test_purge_leaves_kinds_not_given_alone(host):
    ours = host.ns('ours')
    host.ok('network', {'namespaces': [{'name': ours}], 'bridges': [{'name': 'br-x'}],
                        'pairs': [{'name': 'vx', 'peer': {'name': 'vy'}}],
                        'masquerade': [{'source': '10.3.0.0/24', 'out_interface': 'up0'}]})
    # only namespaces given: our bridge, pair and rule stay, whatever purge says
    result = host.ok('network', {'namespaces': [], 'purge': True})
    assert result['purged'] == ['netns %s' % ours]
    assert host.netns_list() == [] and {'br-x', 'vx', 'vy'} <= set(host.links())
    assert '10.3.0.0' in host.sh('nft list ruleset')
    # an empty list declares none of its kind: purge removes all of it (bridges, pairs: on the host)
    result = host.ok('network', {'bridges': [], 'pairs': [], 'purge': True})
    # a pair is named by either of its ends
    assert sorted(result['purged']) in (['bridge br-x in the host', 'veth vx in the host'],
                                        ['bridge br-x in the host', 'veth vy in the host'])
    assert not {'br-x', 'vx', 'vy'} & set(host.links()) and '10.3.0.0' in host.sh('nft list ruleset')


def test_purge_with_an_empty_masquerade_list(host):
    host.ok('network', {'masquerade': [{'source': '10.3.0.0/24', 'out_interface': 'up0'}]})
    result = host.ok('network', {'masquerade': [], 'purge': True})
    assert result['purged'] == ['masquerade 10.3.0.0/24 out up0 in the host']
    assert 'linuxnet_netns' not in host.sh('nft list tables')


# ---- bad input -------------------------------------------------------------------------------------------
def valid_pair(host):
    return {'name': host.prefix + 'v', 'peer': {'name': 'eth0', 'netns': host.ns('new')}}


@pytest.mark.parametrize('python, bad, fragment', pythons_for([
    ({'pairs': [None, {'name': 'x1', 'peer': {'name': 'x2', 'addresses': ['10.0.0.2/24', 'bogus']}}]},
     "pairs[1].peer.addresses[1]='bogus'"),
    ({'pairs': [None, {'name': 'x' * 16, 'peer': {'name': 'x2'}}]}, 'pairs[1].name='),
    ({'namespaces': [{'name': 'ok'}, {'name': 'a/b'}]}, "namespaces[1].name='a/b'"),
    ({'bridges': [{'name': 'br9', 'mtu': 20}]}, 'bridges[0].mtu='),
    ({'routes': [{'gateway': 'nonsense'}]}, "routes[0].gateway='nonsense'"),
    ({'masquerade': [{'source': '10.0.0.1/24', 'out_interface': 'up0'}]}, 'masquerade[0].source='),
    ({'forwarding': [{'ipv4': True, 'persist': True, 'persist_file': 'relative.conf'}]}, 'forwarding[0].persist_file='),
    ({'forwarding': [{'ipv4': True, 'restrict_to': ['10.0.0.0/24', 'x']}]}, 'forwarding[0].restrict_to[1]='),
    ({'masquerade': [{'source': '10.5.0.0/24', 'out_interface': 'e'}, {'source': '10.5.0.0/24', 'out_interface': 'e'}]},
     'declared twice'),
], lambda case: False))
def test_bad_input_names_the_parameter_path(host, bad, fragment):
    # a valid namespace and pair beside the bad item: nothing of them is made either
    spec = {'namespaces': [{'name': host.ns('new')}], 'pairs': [valid_pair(host)]}
    for key, items in bad.items():
        spec[key] = [item if item is not None else valid_pair(host) for item in items]
    if 'namespaces' in bad:
        spec['namespaces'] = bad['namespaces']
    before = snapshot(host)
    result = host.module('network', spec)
    assert result.get('failed') and result['changed'] is False, result
    assert fragment in result['msg'], result['msg']
    assert snapshot(host) == before


@pytest.mark.parametrize('python, args', pythons_for([{}, {'purge': True}], lambda case: False))
def test_at_least_one_list_is_required(host, args):
    result = host.module('network', args)
    assert result.get('failed') and 'one of the following is required' in result['msg']
    assert 'namespaces' in result['msg'] and 'forwarding' in result['msg']
