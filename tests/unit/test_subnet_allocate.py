"""Fleet subnet allocation (plugins/filter/subnet_allocate.py) and the bridge_network role's plan
(plugins/filter/bridge_network.py): pure Python, no kernel."""
import ipaddress
import random
import re

import pytest

from ansible_collections.linuxnet.netns.plugins.filter import bridge_network, subnet_allocate


def allocate(hosts, pool='10.200.0.0/16', prefixlen=24, **kw):
    return subnet_allocate.subnet_allocate(hosts, pool, prefixlen, **kw)


def no_overlap(result):
    nets = [ipaddress.ip_network(s) for s in result.values()]
    for i, a in enumerate(nets):
        for b in nets[i + 1:]:
            assert not a.overlaps(b), (a, b)


# ---- subnet_allocate -----------------------------------------------------------------------------------
def test_every_host_gets_a_pool_slot_and_none_overlap():
    hosts = ['web%d' % i for i in range(100)]
    result = allocate(hosts)
    assert sorted(result) == sorted(hosts)
    pool = ipaddress.ip_network('10.200.0.0/16')
    for subnet in result.values():
        net = ipaddress.ip_network(subnet)
        assert net.prefixlen == 24 and net.subnet_of(pool)
    no_overlap(result)


def test_deterministic_and_order_independent():
    hosts = ['c', 'a', 'b', 'a']
    assert allocate(hosts) == allocate(sorted(set(hosts))) == allocate(list(reversed(hosts)))


def test_hash_slot_is_stable_across_processes():
    # sha256, not Python's salted hash(): a fixed value, the same on every controller
    assert subnet_allocate.hash_slot('web1', 256) == int(__import__('hashlib').sha256(b'web1').hexdigest(), 16) % 256


def test_adding_hosts_moves_no_remembered_host():
    pool = '10.200.0.0/16'  # 16 slots of /20: collisions are likely
    hosts = ['h%d' % i for i in range(12)]
    first = allocate(hosts, pool, 20)
    more = hosts + ['new%d' % i for i in range(4)]
    second = allocate(more, pool, 20, current=first)
    for host in hosts:
        assert second[host] == first[host]
    no_overlap(second)


def test_random_growth_never_moves_an_existing_host():
    rng = random.Random(7)
    fleet, memory = [], {}
    for _step in range(60):
        fleet.append('node-%d' % rng.randrange(10 ** 6))
        result = allocate(fleet, '10.0.0.0/22', 28, current=memory)  # 64 slots, dense
        for host, subnet in memory.items():
            assert result[host] == subnet
        no_overlap(result)
        memory = result


def test_without_memory_only_collisions_differ():
    base = ['a%d' % i for i in range(20)]
    before = allocate(base)
    after = allocate(base + ['zz-new'])
    moved = [h for h in base if before[h] != after[h]]
    # the newcomer sorts last, so it can never take a slot an earlier host wanted
    assert moved == []


def test_pinned_subnet_kept_and_blocks_its_slot():
    hosts = ['a', 'b', 'c']
    natural = allocate(hosts)
    pinned = allocate(hosts, explicit={'c': natural['a']})
    assert pinned['c'] == natural['a']
    assert pinned['a'] != natural['a']
    no_overlap(pinned)


def test_pinned_subnet_outside_pool_and_of_other_size():
    result = allocate(['a', 'b'], explicit={'a': '192.168.77.0/26', 'b': None})
    assert result['a'] == '192.168.77.0/26'
    assert ipaddress.ip_network(result['b']).subnet_of(ipaddress.ip_network('10.200.0.0/16'))


def test_pinned_supernet_blocks_many_slots():
    hosts = ['big'] + ['h%d' % i for i in range(15)]
    result = allocate(hosts, '10.200.0.0/19', 24, explicit={'big': '10.200.0.0/20'})  # half the pool
    no_overlap(result)
    for host in hosts[1:]:
        assert ipaddress.ip_network(result[host]).subnet_of(ipaddress.ip_network('10.200.16.0/20'))


def test_overlapping_pins_name_both_hosts():
    with pytest.raises(Exception) as exc:
        allocate(['alpha', 'beta'], explicit={'alpha': '10.1.0.0/16', 'beta': '10.1.2.0/24'})
    text = str(exc.value)
    assert 'alpha' in text and 'beta' in text and 'overlaps' in text and 'bridge_network_subnet' in text


def test_memory_that_no_longer_fits_is_reallocated():
    result = allocate(['a', 'b', 'c'], current={
        'a': '10.99.0.0/24',       # outside the pool
        'b': '10.200.5.0/25',      # other length
        'c': '10.200.7.0/24',      # fine
    })
    assert result['c'] == '10.200.7.0/24'
    assert result['a'] != '10.99.0.0/24' and result['b'] != '10.200.5.0/25'


def test_two_hosts_remembering_the_same_slot_first_keeps_it():
    result = allocate(['a', 'b'], current={'a': '10.200.9.0/24', 'b': '10.200.9.0/24'})
    assert result['a'] == '10.200.9.0/24' and result['b'] != '10.200.9.0/24'


def test_pin_beats_memory():
    result = allocate(['a', 'b'], explicit={'b': '10.200.9.0/24'}, current={'a': '10.200.9.0/24'})
    assert result['b'] == '10.200.9.0/24' and result['a'] != '10.200.9.0/24'


def test_pool_exhausted():
    with pytest.raises(Exception) as exc:
        allocate(['a', 'b', 'c', 'd', 'e'], '10.0.0.0/24', 26)
    assert '4 subnets' in str(exc.value) and '5 hosts' in str(exc.value)


def test_full_pool_uses_every_slot():
    result = allocate(['a', 'b', 'c', 'd'], '10.0.0.0/24', 26)
    assert sorted(result.values()) == sorted(['10.0.0.0/26', '10.0.0.64/26', '10.0.0.128/26', '10.0.0.192/26'])


@pytest.mark.parametrize('pool,prefixlen,word', [
    ('10.200.0.1/16', 24, 'host bits'),
    ('nonsense', 24, 'CIDR'),
    ('10.200.0.0/16', 8, 'at least as long'),
    ('10.200.0.0/16', 'x', 'not a number'),
])
def test_bad_pool_or_length(pool, prefixlen, word):
    with pytest.raises(Exception) as exc:
        allocate(['a'], pool, prefixlen)
    assert word in str(exc.value)


# ---- subnet_conflicts -----------------------------------------------------------------------------------
ROUTES = [
    {'dest': '0.0.0.0/0', 'gateway': '192.0.2.1', 'dev': 'up0', 'metric': 0, 'table': 254},
    {'dest': '192.0.2.0/24', 'gateway': None, 'dev': 'up0', 'metric': 0, 'table': 254},
    {'dest': '10.200.3.0/24', 'gateway': None, 'dev': 'lnbr0', 'metric': 0, 'table': 254},
    {'dest': '10.200.4.0/24', 'gateway': '192.0.2.12', 'dev': 'up0', 'metric': 0, 'table': 254},
    {'dest': '10.0.0.0/8', 'gateway': '192.0.2.99', 'dev': 'up0', 'metric': 0, 'table': 100},
    {'dest': 'fe80::/64', 'gateway': None, 'dev': 'up0', 'metric': 256, 'table': 254},
]


def test_conflicts_ignore_default_own_devices_and_hostgw_routes():
    found = subnet_allocate.subnet_conflicts(ROUTES, {'mine': '192.168.5.0/24'}, ['lnbr0'], ['10.200.4.0/24'])
    assert found == []


def test_conflicts_report_overlapping_route_in_any_table():
    found = subnet_allocate.subnet_conflicts(ROUTES, {'the subnet of this host': '10.200.3.0/24'}, [], [])
    assert len(found) == 2
    assert any('10.200.3.0/24 dev lnbr0' in m for m in found)
    assert any('10.0.0.0/8 via 192.0.2.99 dev up0 table 100' in m for m in found)


def test_conflict_with_the_underlay():
    found = subnet_allocate.subnet_conflicts(ROUTES, {'the subnet of this host': '192.0.2.0/25'}, ['lnbr0'], [])
    assert found == ['the subnet of this host (192.0.2.0/25) overlaps the route 192.0.2.0/24 dev up0 '
                     'already on this host']


# ---- bridge_network_local / bridge_network_plan ---------------------------------------------------------
def info(interfaces=None, routes=None, namespaces=(), nat=()):
    base = {'lo': {'kind': None, 'addresses': ['127.0.0.1/8'], 'ours': False},
            'up0': {'kind': 'veth', 'addresses': ['192.0.2.11/24', 'fe80::1/64'], 'ours': False}}
    base.update(interfaces or {})
    return {'host': {'interfaces': base, 'routes': list(ROUTES[:2]) + list(routes or [])},
            'namespaces': list(namespaces), 'netns': {}, 'nat': list(nat)}


def test_local_facts_fresh_host():
    local = bridge_network.bridge_network_local(info())
    assert local == {'uplink': 'up0', 'underlay': '192.0.2.11', 'current': None}


def test_local_facts_overrides_and_memory():
    bridged = info({'lnbr0': {'kind': 'bridge', 'addresses': ['10.200.42.1/24'], 'ours': True}})
    assert bridge_network.bridge_network_local(bridged)['current'] == '10.200.42.0/24'
    p2p = info({'lnv2': {'kind': 'veth', 'addresses': ['10.200.8.5/30'], 'ours': True},
                'lnv1': {'kind': 'veth', 'addresses': ['10.200.8.1/30'], 'ours': True}})
    assert bridge_network.bridge_network_local(p2p, prefixlen=24)['current'] == '10.200.8.0/24'
    foreign = info({'lnbr0': {'kind': 'bridge', 'addresses': ['10.200.42.1/24'], 'ours': False}})
    assert bridge_network.bridge_network_local(foreign)['current'] is None
    given = bridge_network.bridge_network_local(info(), uplink='eth9', underlay='203.0.113.4')
    assert given['uplink'] == 'eth9' and given['underlay'] == '203.0.113.4'


def plan(**kw):
    host_info = kw.pop('info', None) or info()
    args = dict(state='present', subnet='10.200.3.0/24', count=3, pool='10.200.0.0/16', uplink='up0',
                subnets={'me': '10.200.3.0/24'}, self_host='me')
    args.update(kw)
    return bridge_network.bridge_network_plan(host_info, **args)


def test_bridge_topology():
    p = plan()
    assert p['errors'] == [] and p['gateway'] == '10.200.3.1'
    assert p['bridges'] == [{'name': 'lnbr0', 'addresses': ['10.200.3.1/24'], 'mtu': None}]
    assert [n['name'] for n in p['namespaces']] == ['lnns1', 'lnns2', 'lnns3']
    assert p['pairs'][0] == {'name': 'lnv1', 'master': 'lnbr0', 'addresses': [], 'mtu': None,
                             'peer': {'name': 'eth0', 'netns': 'lnns1', 'addresses': ['10.200.3.2/24']}}
    assert p['routes'] == [{'netns': 'lnns%d' % i, 'dest': 'default', 'gateway': '10.200.3.1'} for i in (1, 2, 3)]
    assert p['nat'] == [{'source': '10.200.3.0/24', 'out_interface': 'up0', 'exclude_destinations': []}]
    assert p['targets'][2] == {'netns': 'lnns3', 'address': '10.200.3.4', 'gateway': '10.200.3.1'}


@pytest.mark.parametrize('p2p_prefixlen,host_end,ns_end', [(30, '10.200.3.5/30', '10.200.3.6/30'),
                                                           (31, '10.200.3.2/31', '10.200.3.3/31')])
def test_p2p_topology(p2p_prefixlen, host_end, ns_end):
    p = plan(mode='p2p', p2p_prefixlen=p2p_prefixlen)
    assert p['bridges'] == [] and p['gateway'] is None
    second = p['pairs'][1]
    assert 'master' not in second
    assert second['addresses'] == [host_end] and second['peer']['addresses'] == [ns_end]
    assert p['routes'][1] == {'netns': 'lnns2', 'dest': 'default', 'gateway': host_end.split('/')[0]}


def test_sizes_and_names_are_checked():
    with pytest.raises(Exception, match='usable addresses'):
        plan(subnet='10.200.3.0/30', count=2)
    plan(subnet='10.200.3.0/29', count=5)
    with pytest.raises(Exception, match='blocks of /30'):
        plan(subnet='10.200.3.0/28', count=5, mode='p2p')
    with pytest.raises(Exception, match='bridge_network_veth_prefix'):
        plan(veth_prefix='averylongprefix', count=3)


def test_existing_route_overlapping_the_subnet_is_refused():
    p = plan(info=info(routes=[{'dest': '10.200.0.0/16', 'gateway': '192.0.2.7', 'dev': 'up0', 'metric': 5,
                                'table': 254}]), pool='10.201.0.0/16')
    assert len(p['errors']) == 1 and '10.200.0.0/16 via 192.0.2.7' in p['errors'][0]


def test_own_bridge_route_is_not_a_conflict():
    p = plan(info=info({'lnbr0': {'kind': 'bridge', 'addresses': ['10.200.3.1/24'], 'ours': True}},
                       routes=[{'dest': '10.200.3.0/24', 'gateway': None, 'dev': 'lnbr0', 'metric': 0, 'table': 254}]))
    assert p['errors'] == []


def test_foreign_interface_named_like_the_bridge_is_refused():
    p = plan(info=info({'lnbr0': {'kind': 'dummy', 'addresses': [], 'ours': False}}))
    assert 'bridge_network_bridge=lnbr0' in p['errors'][0]


def test_missing_uplink():
    p = plan(uplink=None)
    assert 'bridge_network_uplink' in p['errors'][0]
    assert plan(uplink=None, masquerade=False)['errors'] == []


def test_host_gw_routes_and_prune():
    fleet = {'me': '10.200.3.0/24', 'b': '10.200.4.0/24', 'c': '10.200.5.0/24', 'd': '10.200.6.0/24'}
    current = info(routes=[
        {'dest': '10.200.4.0/24', 'gateway': '192.0.2.99', 'dev': 'up0', 'metric': 0, 'table': 254, 'ours': True},  # moved
        {'dest': '10.200.9.0/24', 'gateway': '192.0.2.50', 'dev': 'up0', 'metric': 0, 'table': 254, 'ours': True},  # gone host
        {'dest': '10.200.6.0/24', 'gateway': '192.0.2.14', 'dev': 'up0', 'metric': 0, 'table': 254, 'ours': True},  # unknown
        {'dest': '172.16.0.0/12', 'gateway': '192.0.2.1', 'dev': 'up0', 'metric': 0, 'table': 254, 'ours': True},   # not the pool
        {'dest': '10.200.8.0/24', 'gateway': '192.0.2.1', 'dev': 'up0', 'metric': 0, 'table': 254, 'ours': False},  # by hand
    ])
    p = plan(info=current, host_gw=True, subnets=fleet, underlays={'b': '192.0.2.12', 'c': '192.0.2.13'})
    assert p['errors'] == []
    host_routes = [r for r in p['routes'] if 'netns' not in r]
    assert {'dest': '10.200.4.0/24', 'gateway': '192.0.2.12'} in host_routes
    assert {'dest': '10.200.5.0/24', 'gateway': '192.0.2.13'} in host_routes
    assert {'dest': '10.200.9.0/24', 'table': 254, 'metric': 0, 'state': 'absent'} in host_routes
    assert not any(r['dest'] in ('10.200.6.0/24', '172.16.0.0/12', '10.200.8.0/24') for r in host_routes)
    assert 'd' in p['warnings'][0]


def test_host_gw_keeps_the_source_address_towards_other_hosts():
    # traffic to another host's namespaces is routed, not masqueraded; every peer's subnet is
    # excluded, including one whose next hop is unknown here (its route is left as it is)
    fleet = {'me': '10.200.3.0/24', 'b': '10.200.40.0/24', 'c': '10.200.5.0/24', 'd': '172.20.0.0/26'}
    p = plan(host_gw=True, subnets=fleet, underlays={'b': '192.0.2.12', 'c': '192.0.2.13'})
    assert p['nat'] == [{'source': '10.200.3.0/24', 'out_interface': 'up0',
                         'exclude_destinations': ['10.200.5.0/24', '10.200.40.0/24', '172.20.0.0/26']}]
    assert plan(host_gw=False, subnets=fleet)['nat'][0]['exclude_destinations'] == []
    # extra vars on the command line are strings
    assert plan(host_gw='false', subnets=fleet, underlays={'b': '192.0.2.12'})['routes'] == plan(subnets=fleet)['routes']
    assert plan(masquerade='no')['nat'] == []


def test_host_gw_next_hop_must_be_on_link():
    p = plan(host_gw=True, subnets={'me': '10.200.3.0/24', 'b': '10.200.4.0/24'}, underlays={'b': '198.51.100.7'})
    assert 'host b' in p['errors'][0] and '198.51.100.7' in p['errors'][0]


def test_prune_extra_namespaces_bridge_and_old_nat():
    current = info({'lnbr0': {'kind': 'bridge', 'addresses': ['10.200.3.1/24'], 'ours': True}},
                   namespaces=['lnns1', 'lnns2', 'lnns3', 'lnns4', 'lnns10', 'other', 'lnnsx'],
                   nat=[{'netns': None, 'source': '10.200.3.0/24', 'out_interface': 'old0'},
                        {'netns': None, 'source': '10.200.3.0/24', 'out_interface': 'up0'},
                        {'netns': None, 'source': '172.16.0.0/24', 'out_interface': 'up0'},
                        {'netns': 'lnns1', 'source': '10.200.3.0/24', 'out_interface': 'up0'}])
    p = plan(info=current, count=2)
    # the stale namespaces (lnns3, lnns4, lnns10 - if this collection made them) are the module's to find
    assert p['namespaces'] == [{'name': 'lnns1'}, {'name': 'lnns2'}]
    assert p['purge'] is True and p['purge_match'] == {'namespaces': ['lnns[0-9]+']}
    assert p['nat'] == [{'source': '10.200.3.0/24', 'out_interface': 'old0', 'state': 'absent'},
                        {'source': '10.200.3.0/24', 'out_interface': 'up0', 'exclude_destinations': []}]
    p2p = plan(info=current, count=2, mode='p2p')
    assert {'name': 'lnbr0', 'state': 'absent'} in p2p['bridges']


def test_absent_removes_only_the_roles_objects():
    current = info({'lnbr0': {'kind': 'bridge', 'addresses': ['10.200.3.1/24'], 'ours': True}},
                   routes=[{'dest': '10.200.4.0/24', 'gateway': '192.0.2.12', 'dev': 'up0', 'metric': 0, 'table': 254,
                            'ours': True},
                           {'dest': '172.16.0.0/12', 'gateway': '192.0.2.1', 'dev': 'up0', 'metric': 0, 'table': 254}],
                   namespaces=['lnns1', 'lnns2', 'keepme'],
                   nat=[{'netns': None, 'source': '10.200.3.0/24', 'out_interface': 'up0'},
                        {'netns': None, 'source': '172.16.0.0/24', 'out_interface': 'up0'}])
    p = plan(info=current, state='absent', subnets={'me': '10.200.3.0/24', 'b': '10.200.4.0/24'})
    assert p['namespaces'] == [] and p['purge_match'] == {'namespaces': ['lnns[0-9]+']}
    assert p['bridges'] == [{'name': 'lnbr0', 'state': 'absent'}]
    assert p['pairs'] == []
    assert p['routes'] == [{'dest': '10.200.4.0/24', 'table': 254, 'metric': 0, 'state': 'absent'}]
    assert p['nat'] == [{'source': '10.200.3.0/24', 'out_interface': 'up0', 'state': 'absent'}]
    assert p['errors'] == []


def test_absent_on_a_clean_host_is_empty():
    p = plan(info=info(), state='absent')
    assert all(p[k] == [] for k in ('namespaces', 'bridges', 'pairs', 'routes', 'nat'))


def test_teardown_needs_no_read_and_names_the_roles_objects():
    """state=absent in one module run: empty lists, and purge_match for the module to find the
    same objects test_absent_removes_only_the_roles_objects prunes."""
    t = bridge_network.bridge_network_teardown(['10.200.4.0/24', None, '10.200.3.0/24', '192.168.9.0/24'],
                                               pool='10.200.0.0/16', own=['192.168.9.0/24', None])
    assert all(t[k] == [] for k in ('namespaces', 'bridges', 'pairs', 'routes', 'nat', 'forward_prefixes'))
    assert t['purge'] is True
    match = t['purge_match']
    assert match == {'namespaces': ['lnns[0-9]+'], 'bridges': ['lnbr0'], 'pairs': ['lnv[0-9]+'],
                     'routes': ['10.200.0.0/16', '10.200.3.0/24', '10.200.4.0/24', '192.168.9.0/24'],
                     'masquerade': ['10.200.0.0/16', '192.168.9.0/24']}
    assert re.fullmatch(match['namespaces'][0], 'lnns12') and not re.fullmatch(match['namespaces'][0], 'lnns12x')
    # names are patterns: a prefix with regular-expression characters is taken literally
    odd = bridge_network.bridge_network_teardown([], prefix='ns.a+', veth_prefix='v.', bridge='br.0')['purge_match']
    assert re.fullmatch(odd['namespaces'][0], 'ns.a+3') and not re.fullmatch(odd['namespaces'][0], 'nsaa3')
    assert odd['bridges'] == [re.escape('br.0')] and odd['routes'] == [] and odd['masquerade'] == []
    with pytest.raises(Exception, match='bridge_network_bridge'):
        bridge_network.bridge_network_teardown([], bridge='a-name-far-too-long')
    with pytest.raises(Exception, match='not a subnet'):
        bridge_network.bridge_network_teardown(['nonsense'])


def test_host_outside_the_fleet():
    with pytest.raises(Exception, match='not in bridge_network_fleet'):
        plan(subnet=None, self_host='stranger')


def test_fresh_host_plan_lists_everything():
    # the network module plans namespaces, veths and routes together, so check mode on a fresh
    # host gets the whole plan too: nothing is deferred
    fresh = plan(host_gw=True, subnets={'me': '10.200.3.0/24', 'b': '10.200.4.0/24'},
                 underlays={'b': '192.0.2.12'})
    assert len(fresh['namespaces']) == 3 and len(fresh['pairs']) == 3
    assert len([r for r in fresh['routes'] if r.get('netns')]) == 3
    assert {'dest': '10.200.4.0/24', 'gateway': '192.0.2.12'} in fresh['routes']
    assert fresh['warnings'] == []


def test_partial_allocation_for_teardown():
    result = allocate(['alpha', 'beta', 'gamma'], explicit={'alpha': '10.1.0.0/16', 'beta': '10.1.2.0/24',
                                                            'gamma': 'junk'}, partial=True)
    assert result == {'alpha': '10.1.0.0/16'}
    assert len(allocate(['a', 'b', 'c', 'd', 'e'], '10.0.0.0/24', 26, partial=True)) == 4


def test_documented_example_never_changes():
    # the answer must be the same on every controller, Python and release: a change here moves hosts
    assert allocate(['web1', 'web2', 'db1'], explicit={'web1': '10.200.0.0/24'}) == {
        'db1': '10.200.80.0/24', 'web1': '10.200.0.0/24', 'web2': '10.200.243.0/24'}
