"""Fleet subnet allocation and the check of a subnet against a host's routes
(plugins/filter/subnet_allocate.py): pure Python, no kernel. The role's plan is in test_bridge_network.py."""
import ipaddress
import random

import pytest

from ansible_collections.linuxnet.netns.plugins.filter import subnet_allocate


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


def test_partial_allocation_for_teardown():
    result = allocate(['alpha', 'beta', 'gamma'], explicit={'alpha': '10.1.0.0/16', 'beta': '10.1.2.0/24',
                                                            'gamma': 'junk'}, partial=True)
    assert result == {'alpha': '10.1.0.0/16'}
    assert len(allocate(['a', 'b', 'c', 'd', 'e'], '10.0.0.0/24', 26, partial=True)) == 4


def test_documented_example_never_changes():
    # the answer must be the same on every controller, Python and release: a change here moves hosts
    assert allocate(['web1', 'web2', 'db1'], explicit={'web1': '10.200.0.0/24'}) == {
        'db1': '10.200.80.0/24', 'web1': '10.200.0.0/24', 'web2': '10.200.243.0/24'}
