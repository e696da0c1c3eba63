"""The bridge_network role's filters (plugins/filter/bridge_network.py): the settings dict they take,
the plan, the forwarding settings and the role's objects as purge_match. Pure Python, no kernel;
what the purge selects is asked of the network module's own purge_selection."""
import ipaddress
import os
import re

import pytest
import yaml

from ansible_collections.linuxnet.netns.plugins.filter import bridge_network
from ansible_collections.linuxnet.netns.plugins.module_utils import _info
from ansible_collections.linuxnet.netns.plugins.module_utils import _kinds
from ansible_collections.linuxnet.netns.plugins.module_utils import _network
from ansible_collections.linuxnet.netns.tests.unit.fakekernel import FakeKernel

ROLE = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                    'roles', 'bridge_network')
PREFIX = 'bridge_network_'


def _yaml(*path):
    with open(os.path.join(ROLE, *path)) as stream:
        return yaml.safe_load(stream)


DEFAULTS = _yaml('defaults', 'main.yml')
ROUTES = [
    {'dest': '0.0.0.0/0', 'gateway': '192.0.2.1', 'dev': 'up0', 'metric': 0, 'table': 254},
    {'dest': '192.0.2.0/24', 'gateway': None, 'dev': 'up0', 'metric': 0, 'table': 254},
]


def settings(**kw):
    """The role's settings as vars/main.yml builds them from the role's defaults, changed by `kw`."""
    found = dict((key, DEFAULTS[PREFIX + key]) for key in bridge_network.SETTINGS)
    found.update(kw)
    return found


def info(interfaces=None, routes=None, namespaces=(), nat=()):
    base = {'lo': {'kind': None, 'addresses': ['127.0.0.1/8'], 'ours': False},
            'up0': {'kind': 'veth', 'addresses': ['192.0.2.11/24', 'fe80::1/64'], 'ours': False}}
    base.update(interfaces or {})
    return {'host': {'interfaces': base, 'routes': list(ROUTES) + list(routes or [])},
            'namespaces': list(namespaces), 'netns': {}, 'nat': list(nat)}


def plan(**kw):
    """bridge_network_plan on host `me` (subnet 10.200.3.0/24 of the pool 10.200.0.0/16, 3 namespaces,
    uplink up0); `subnet` sets this host's subnet in `subnets`, `uplink` and `current` its local facts."""
    host_info = kw.pop('info', None) or info()
    host = kw.pop('host', 'me')
    subnets = dict(kw.pop('subnets', {'me': '10.200.3.0/24'}))
    if 'subnet' in kw:
        subnets[host] = kw.pop('subnet')
    local = {'uplink': kw.pop('uplink', 'up0'), 'underlay': None, 'current': kw.pop('current', None)}
    args = settings(namespaces=3, pool='10.200.0.0/16')
    args.update(host=host, subnets=subnets, underlays=kw.pop('underlays', {}), local=local, fleet=None)
    args.update(kw)
    return both_ways(host_info, args)


def both_ways(host_info, args):
    """bridge_network_plan as the role calls it, with the fleet worked out once for the play
    (bridge_network_fleet), checked to give what the host alone works out (fleet None): the same plan,
    or the same refusal."""
    fleet_args = dict((key, args[key]) for key in bridge_network.SETTINGS)
    try:
        alone = bridge_network.bridge_network_plan(host_info, args)
    except Exception as exc:
        with pytest.raises(type(exc), match=re.escape(str(exc))):
            fleet = bridge_network.bridge_network_fleet(args['subnets'], dict(fleet_args, underlays=args['underlays']))
            bridge_network.bridge_network_plan(host_info, dict(args, fleet=fleet))
        raise
    fleet = bridge_network.bridge_network_fleet(args['subnets'], dict(fleet_args, underlays=args['underlays']))
    assert bridge_network.bridge_network_plan(host_info, dict(args, fleet=fleet)) == alone
    return alone


def teardown(**kw):
    args = settings(known_subnets=kw.pop('known_subnets', []), current=kw.pop('current', None))
    args.update(kw)
    return bridge_network.bridge_network_teardown(args)


def selection(result):
    """What linuxnet.netns.network's purge would consider, per kind, given the filter's result."""
    params = dict(result, masquerade=result['nat'], purge=result['purge'], purge_match=result['purge_match'])
    return _network.purge_selection(params)


def net(text):
    return ipaddress.ip_network(text)


# ---- the settings dict -------------------------------------------------------------------------------
def test_the_roles_settings_are_its_variables():
    """vars/main.yml builds _bridge_network_settings from exactly the variables SETTINGS names, each
    under its own name, and the role has a default for each. It is one template, a dict expression of
    `'key': bridge_network_key` entries and nothing else."""
    built = _yaml('vars', 'main.yml')['_bridge_network_settings']
    body = re.match(r'^\{\{ \{(.*)\} \}\}$', built, re.S)
    assert body, built
    entries = [entry.strip() for entry in body.group(1).split(',')]
    pairs = [re.match(r"^'(\w+)': (\w+)$", entry) for entry in entries]
    assert all(pairs), entries
    assert sorted(m.group(1) for m in pairs) == sorted(bridge_network.SETTINGS)
    for m in pairs:
        assert m.group(2) == PREFIX + m.group(1)
        assert PREFIX + m.group(1) in DEFAULTS


@pytest.mark.parametrize('name, call', [
    ('bridge_network_local', lambda s: bridge_network.bridge_network_local(info(), s)),
    ('bridge_network_plan', lambda s: bridge_network.bridge_network_plan(info(), s)),
    ('bridge_network_teardown', bridge_network.bridge_network_teardown),
    ('bridge_network_fleet', lambda s: bridge_network.bridge_network_fleet({}, s)),
])
def test_a_missing_or_unknown_key_is_named(name, call):
    inputs = dict((key, None) for key in bridge_network.INPUTS[name])
    complete = settings(**inputs)
    for key in complete:
        partial = dict(complete)
        del partial[key]
        with pytest.raises(Exception, match="%s: its dict lacks the key '%s'" % (name, key)):
            call(partial)
    with pytest.raises(Exception, match="%s: unknown key 'count'" % name):
        call(dict(complete, count=3))
    with pytest.raises(Exception, match='%s takes one dict' % name):
        call(['not', 'a', 'dict'])


# ---- bridge_network_local ----------------------------------------------------------------------------
def test_local_facts_fresh_host():
    local = bridge_network.bridge_network_local(info(), settings())
    assert local == {'uplink': 'up0', 'underlay': '192.0.2.11', 'current': None}


def test_local_facts_overrides_and_memory():
    bridged = info({'lnbr0': {'kind': 'bridge', 'addresses': ['10.200.42.1/24'], 'ours': True}})
    assert bridge_network.bridge_network_local(bridged, settings())['current'] == '10.200.42.0/24'
    p2p = info({'lnv2': {'kind': 'veth', 'addresses': ['10.200.8.5/30'], 'ours': True},
                'lnv1': {'kind': 'veth', 'addresses': ['10.200.8.1/30'], 'ours': True}})
    assert bridge_network.bridge_network_local(p2p, settings(subnet_prefixlen=24))['current'] == '10.200.8.0/24'
    foreign = info({'lnbr0': {'kind': 'bridge', 'addresses': ['10.200.42.1/24'], 'ours': False}})
    assert bridge_network.bridge_network_local(foreign, settings())['current'] is None
    given = bridge_network.bridge_network_local(info(), settings(uplink='eth9', underlay_address='203.0.113.4'))
    assert given['uplink'] == 'eth9' and given['underlay'] == '203.0.113.4'


# ---- bridge_network_plan -----------------------------------------------------------------------------
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
        plan(subnet='10.200.3.0/30', namespaces=2)
    plan(subnet='10.200.3.0/29', namespaces=5)
    with pytest.raises(Exception, match='blocks of /30'):
        plan(subnet='10.200.3.0/28', namespaces=5, mode='p2p')
    with pytest.raises(Exception, match='bridge_network_veth_prefix'):
        plan(veth_prefix='averylongprefix', namespaces=3)


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
    p = plan(host_gw=True, subnets=fleet, underlays={'b': '192.0.2.12', 'c': '192.0.2.13'})
    assert p['errors'] == []
    host_routes = [r for r in p['routes'] if 'netns' not in r]
    assert host_routes == [{'dest': '10.200.4.0/24', 'gateway': '192.0.2.12'},
                           {'dest': '10.200.5.0/24', 'gateway': '192.0.2.13'}]
    assert 'd' in p['warnings'][0]
    # what the module purges, of the routes this collection made (protocol 76) and the call does not
    # declare - a route by hand (10.200.8.0/24, not ours) it never takes, whatever the prefix
    routes = selection(p)['routes']
    assert routes(net('10.200.9.0/24'))  # a host gone from the fleet
    assert routes(net('10.200.4.0/24'))  # b's route via another next hop (declared: replaced)
    assert not routes(net('10.200.6.0/24'))  # d's next hop is unknown here: left as it is
    assert not routes(net('172.16.0.0/12'))  # not the pool
    # d's subnet is carved out of the pool: the rest of the pool is still the role's
    assert routes(net('10.200.7.0/24')) and routes(net('10.200.5.128/25'))


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
    p = plan(namespaces=2, current='10.200.9.0/24')
    assert p['namespaces'] == [{'name': 'lnns1'}, {'name': 'lnns2'}]
    assert p['nat'] == [{'source': '10.200.3.0/24', 'out_interface': 'up0', 'exclude_destinations': []}]
    # the stale namespaces (lnns3, lnns4, lnns10 - if this collection made them), the old rule out
    # old0 and the bridge in p2p mode are the module's to find
    assert p['purge'] is True
    found = selection(p)
    assert [n for n in ('lnns1', 'lnns3', 'lnns4', 'lnns10', 'other', 'lnnsx') if found['namespaces'](n)] == \
        ['lnns1', 'lnns3', 'lnns4', 'lnns10']  # lnns1 is declared: kept
    assert found['masquerade'](net('10.200.3.0/24')) and found['masquerade'](net('10.200.9.0/24'))
    assert not found['masquerade'](net('172.16.0.0/24'))
    p2p = plan(namespaces=2, mode='p2p')
    assert p2p['bridges'] == [] and selection(p2p)['bridges']('lnbr0')


def test_absent_removes_only_the_roles_objects():
    p = plan(state='absent', subnets={'me': '10.200.3.0/24', 'b': '10.200.4.0/24'})
    assert all(p[k] == [] for k in ('namespaces', 'bridges', 'pairs', 'routes', 'nat'))
    assert p['errors'] == []
    found = selection(p)
    assert found['namespaces']('lnns1') and found['namespaces']('lnns2') and not found['namespaces']('keepme')
    assert found['bridges']('lnbr0') and found['pairs']('lnv1')
    assert found['routes'](net('10.200.4.0/24')) and not found['routes'](net('172.16.0.0/12'))
    assert found['masquerade'](net('10.200.3.0/24')) and not found['masquerade'](net('172.16.0.0/24'))


def test_absent_on_a_clean_host_is_empty():
    p = plan(info=info(), state='absent')
    assert all(p[k] == [] for k in ('namespaces', 'bridges', 'pairs', 'routes', 'nat'))


def test_the_fleet_keeps_only_what_the_plans_take():
    """bridge_network_fleet's answer is a fact handed to every host: the route prefixes once, as the
    sorted list the plans' purge_match takes whole, and nothing else of the fleet's purge_match."""
    subnets = {'me': '10.200.3.0/24', 'b': '10.200.40.0/24', 'c': '10.201.0.0/24'}
    fleet = bridge_network.bridge_network_fleet(subnets, settings(pool='10.200.0.0/16', underlays={'b': '192.0.2.12'}))
    assert sorted(fleet) == ['owners', 'purge_routes', 'subnets', 'underlays']
    assert fleet['purge_routes'] == ['10.200.0.0/16', '10.200.3.0/24', '10.200.40.0/24', '10.201.0.0/24']
    p = plan(subnets=subnets)
    assert p['purge_match']['routes'] == fleet['purge_routes']


def test_host_outside_the_fleet():
    with pytest.raises(Exception, match='not in bridge_network_fleet'):
        plan(subnet=None, host='stranger')


def test_fresh_host_plan_lists_everything():
    # the network module plans namespaces, veths and routes together, so check mode on a fresh
    # host gets the whole plan too: nothing is deferred
    fresh = plan(host_gw=True, subnets={'me': '10.200.3.0/24', 'b': '10.200.4.0/24'},
                 underlays={'b': '192.0.2.12'})
    assert len(fresh['namespaces']) == 3 and len(fresh['pairs']) == 3
    assert len([r for r in fresh['routes'] if r.get('netns')]) == 3
    assert {'dest': '10.200.4.0/24', 'gateway': '192.0.2.12'} in fresh['routes']
    assert fresh['warnings'] == []


# ---- bridge_network_teardown -------------------------------------------------------------------------
def test_teardown_needs_no_read_and_names_the_roles_objects():
    """state=absent in one module run: empty lists, and purge_match for the module to find the
    same objects test_absent_removes_only_the_roles_objects names."""
    t = teardown(known_subnets=['10.200.4.0/24', None, '10.200.3.0/24'], subnet='192.168.9.0/24', current=None)
    assert all(t[k] == [] for k in ('namespaces', 'bridges', 'pairs', 'routes', 'nat', 'publish'))
    assert t['purge'] is True
    match = t['purge_match']
    assert match == {'namespaces': ['lnns[0-9]+'], 'bridges': ['lnbr0(-[0-9]+)?'], 'pairs': ['lnv[0-9]+', 'lnbr0-[0-9]+a'],
                     'routes': ['10.200.0.0/16', '10.200.3.0/24', '10.200.4.0/24', '192.168.9.0/24'],
                     'masquerade': ['10.200.0.0/16', '192.168.9.0/24'],
                     'publish': ['10.200.0.0/16', '192.168.9.0/24'],
                     'services': ['lnns[0-9]+'], 'dns': ['lnns[0-9]+']}
    assert re.fullmatch(match['namespaces'][0], 'lnns12') and not re.fullmatch(match['namespaces'][0], 'lnns12x')
    # names are patterns: a prefix with regular-expression characters is taken literally
    odd = teardown(prefix='ns.a+', veth_prefix='v.', bridge='br.0', pool=None)['purge_match']
    assert re.fullmatch(odd['namespaces'][0], 'ns.a+3') and not re.fullmatch(odd['namespaces'][0], 'nsaa3')
    assert odd['bridges'] == [re.escape('br.0') + '(-[0-9]+)?'] and odd['routes'] == [] and odd['masquerade'] == []
    assert re.fullmatch(odd['bridges'][0], 'br.0-2') and not re.fullmatch(odd['bridges'][0], 'brx0')
    assert odd['publish'] == []
    with pytest.raises(Exception, match='bridge_network_bridge'):
        teardown(bridge='a-name-far-too-long')
    with pytest.raises(Exception, match='not a subnet'):
        teardown(known_subnets=['nonsense'])


# ---- one definition of the role's objects: role_purge_match ------------------------------------------
def test_converge_and_teardown_name_the_roles_objects_alike():
    """The same fleet, pool and host subnets give the converge (here with nothing wanted) and the
    teardown the same purge_match."""
    fleet = {'me': '10.200.3.0/24', 'b': '10.200.4.0/24', 'c': '192.168.7.0/24'}
    converge = plan(state='absent', subnets=fleet, current='10.200.9.0/24')
    down = teardown(known_subnets=list(fleet.values()), subnet='10.200.3.0/24', current='10.200.9.0/24')
    assert converge['purge_match'] == down['purge_match']
    assert down['purge_match']['routes'] == ['10.200.0.0/16', '10.200.3.0/24', '10.200.4.0/24',
                                             '10.200.9.0/24', '192.168.7.0/24']
    assert down['purge_match']['masquerade'] == ['10.200.0.0/16', '10.200.3.0/24', '10.200.9.0/24']
    present = plan(subnets=fleet, current='10.200.9.0/24')
    assert present['purge_match'] == converge['purge_match']


def test_role_purge_match_carves_out_what_is_kept():
    match = bridge_network.role_purge_match('lnns', 'lnv', 'lnbr0', '10.200.0.0/16', ['10.200.6.0/24', None],
                                            [None], keep=['10.200.6.0/24'])
    routes = [net(n) for n in match['routes']]
    assert net('10.200.6.0/24') not in routes and not any(n.overlaps(net('10.200.6.0/24')) for n in routes)
    # the rest of the pool is still covered, with no gap: the pieces add up to the pool less the /24
    assert sum(n.num_addresses for n in routes) == 2 ** 16 - 2 ** 8
    assert all(n.subnet_of(net('10.200.0.0/16')) for n in routes)
    assert match['masquerade'] == ['10.200.0.0/16']
    # what is kept but lies outside every prefix changes nothing; a prefix inside a kept one goes
    assert bridge_network.role_purge_match('a', 'b', 'c', None, ['10.1.0.0/24', '10.2.0.0/25'], [],
                                           keep=['10.3.0.0/24', '10.2.0.0/24'])['routes'] == ['10.1.0.0/24']


def test_role_purge_match_is_what_the_network_module_accepts():
    match = bridge_network.role_purge_match('lnns', 'lnv', 'lnbr0', '10.200.0.0/16', [], ['10.200.3.0/24'],
                                            keep=['10.200.6.0/24'])
    lists = dict((kind, []) for kind in match)
    found = _network.purge_selection(dict(lists, purge=True, purge_match=match))
    assert sorted(found) == sorted(match)
    assert found['pairs']('lnv12') and not found['pairs']('lnv') and not found['pairs']('xlnv1')
    assert found['bridges']('lnbr0') and not found['bridges']('lnbr01')


# ---- forwarding: what the role gives linuxnet.netns.network's `forwarding` ---------------------------
@pytest.mark.parametrize('state, safe_router, persist, disable, expected', [
    # closed to strangers by default (bridge_network_inbound): from the fleet, replies and published ports
    ('present', True, False, False, [{'ipv4': True, 'persist': False, 'restrict_to': ['10.200.3.0/24'],
                                      'inbound_from': []}]),
    ('present', True, True, True, [{'ipv4': True, 'persist': True, 'restrict_to': ['10.200.3.0/24'],
                                    'inbound_from': []}]),
    ('present', False, 'yes', False, [{'ipv4': True, 'persist': True}]),
    ('present', 'false', 'false', False, [{'ipv4': True, 'persist': False}]),
    # absent: the scope goes; forwarding itself stays as it is unless asked
    ('absent', True, True, False, [{'restrict_to': []}]),
    ('absent', True, False, True, [{'ipv4': False, 'restrict_to': []}]),
    ('absent', False, False, True, [{'ipv4': False}]),
    ('absent', False, True, 'no', []),
])
def test_forwarding(state, safe_router, persist, disable, expected):
    # persist_forwarding (a sysctl.d file) goes only without the saved plan (persist, on by default)
    args = dict(safe_router=safe_router, persist_forwarding=persist, disable_forwarding_on_absent=disable,
                persist=False)
    assert plan(state=state, **args)['forwarding'] == expected
    if state == 'absent':
        assert teardown(**args)['forwarding'] == expected


def test_forwarding_persisted_to_sysctl_d_is_refused_beside_the_saved_plan():
    with pytest.raises(Exception, match='bridge_network_persist_forwarding: true .* before its scope'):
        plan(persist_forwarding=True, persist=True)
    assert plan(persist_forwarding=False, persist=True)['forwarding'][0]['persist'] is False


def test_inbound_is_closed_to_all_but_the_fleet_and_the_allowed_prefixes():
    fleet = {'me': '10.200.3.0/24', 'b': '10.200.40.0/24'}
    closed = plan(host_gw=True, subnets=fleet, underlays={'me': '192.0.2.11', 'b': '192.0.2.12'},
                  inbound_from=['198.18.0.0/24'])['forwarding'][0]
    assert closed['restrict_to'] == ['10.200.3.0/24', '10.200.40.0/24']
    assert closed['inbound_from'] == ['192.0.2.11/32', '192.0.2.12/32', '198.18.0.0/24']
    opened = plan(host_gw=True, subnets=fleet, inbound='open')['forwarding'][0]
    assert 'inbound_from' not in opened and opened['restrict_to'] == ['10.200.3.0/24', '10.200.40.0/24']
    assert 'inbound_from' not in plan(safe_router=False)['forwarding'][0]
    assert 'inbound_from' not in teardown()['forwarding'][0]


def test_an_underlay_counts_only_for_a_host_with_a_subnet_with_or_without_the_fleet():
    """A host left out of the allocation (or outside the fleet) is no peer: its underlay address opens
    nothing, whether the plan works the fleet out itself or takes bridge_network_fleet's (both_ways)."""
    fleet = {'me': '10.200.3.0/24', 'b': '10.200.40.0/24'}
    closed = plan(host_gw=True, subnets=dict(fleet, gone=None),
                  underlays={'me': '192.0.2.11', 'b': '192.0.2.12', 'gone': '192.0.2.13', 'outside': '192.0.2.14'})
    assert closed['forwarding'][0]['inbound_from'] == ['192.0.2.11/32', '192.0.2.12/32']


def test_a_safe_router_forwards_for_the_fleet_with_host_gw():
    fleet = {'me': '10.200.3.0/24', 'b': '10.200.40.0/24', 'c': '10.200.5.0/24'}
    assert plan(host_gw=True, subnets=fleet, underlays={'b': '192.0.2.12'})['forwarding'][0]['restrict_to'] == \
        ['10.200.3.0/24', '10.200.40.0/24', '10.200.5.0/24']
    assert plan(subnets=fleet)['forwarding'][0]['restrict_to'] == ['10.200.3.0/24']


# ---- isolation between the namespaces ----------------------------------------------------------------
def test_isolate_in_bridge_mode_isolates_every_port():
    p = plan(isolate=True)
    assert [pair.get('isolated') for pair in p['pairs']] == [True, True, True]
    # bridge ports are isolated on the bridge: the forward chain has nothing to add
    assert p['errors'] == [] and p['forwarding'] == plan()['forwarding'] and 'isolate' not in p['forwarding'][0]
    # off (a string from -e as well): the module's default, not isolated
    for off in (False, 'false'):
        assert all('isolated' not in pair for pair in plan(isolate=off)['pairs'])
    assert plan(isolate='true')['pairs'][0]['isolated'] is True


def test_isolate_in_p2p_mode_is_the_safe_routers_and_needs_it():
    p = plan(mode='p2p', isolate=True)
    assert p['errors'] == [] and all('isolated' not in pair for pair in p['pairs'])
    assert p['forwarding'] == [dict(plan(mode='p2p')['forwarding'][0], isolate=True)]
    assert p['forwarding'][0]['restrict_to'] == ['10.200.3.0/24']
    fleet = {'me': '10.200.3.0/24', 'b': '10.200.40.0/24'}
    forwarding = plan(mode='p2p', isolate=True, host_gw=True, subnets=fleet, underlays={'b': '192.0.2.12'})['forwarding']
    assert forwarding[0]['restrict_to'] == ['10.200.3.0/24', '10.200.40.0/24'] and forwarding[0]['isolate'] is True
    refused = plan(mode='p2p', isolate=True, safe_router=False)
    assert refused['errors'] == [
        "bridge_network_isolate in p2p mode: the namespaces are kept apart by the safe router's forward rules, "
        'and bridge_network_safe_router is false; set it to true, or use bridge_network_mode: bridge']
    # a teardown's restrict_to: [] takes the drops out with the rest of the scope
    assert plan(mode='p2p', isolate=True, state='absent')['forwarding'] == [{'restrict_to': []}]
    assert teardown(mode='p2p', isolate=True)['forwarding'] == [{'restrict_to': []}]


# ---- published ports: bridge_network_publish -> linuxnet.netns.network's `publish` -------------------
def test_publish_targets_a_namespace_by_index():
    """Namespace i is the (i+1)-th address of the subnet in bridge mode, the namespace end of the
    i-th block in p2p mode; ports and ranges are given as the module takes them."""
    wanted = [{'host_port': 8080, 'namespace': 1, 'target_port': 80},
              {'host_port': '5353', 'namespace': 3, 'target_port': 53, 'protocol': 'udp', 'localhost': True},
              {'host_port': '9000-9002', 'namespace': 2, 'host_address': '192.0.2.11'}]
    assert plan(publish=wanted)['publish'] == [
        {'host_port': 8080, 'target': '10.200.3.2', 'target_port': 80, 'protocol': 'tcp', 'localhost': False},
        {'host_port': 5353, 'target': '10.200.3.4', 'target_port': 53, 'protocol': 'udp', 'localhost': True},
        {'host_port': '9000-9002', 'target': '10.200.3.3', 'protocol': 'tcp', 'localhost': False,
         'host_address': '192.0.2.11'}]
    p2p = plan(mode='p2p', publish=[{'host_port': 8080, 'namespace': 2, 'target_port': 80}])['publish']
    assert [(p['target'], p['target_port']) for p in p2p] == [('10.200.3.6', 80)]
    # -e with key=value gives strings; argument_specs validate, they do not convert
    assert plan(publish=[{'host_port': '8080', 'namespace': '2', 'localhost': 'false'}])['publish'] == [
        {'host_port': 8080, 'target': '10.200.3.3', 'protocol': 'tcp', 'localhost': False}]


def test_publish_is_what_the_network_module_accepts():
    """The filter's items pass the port_publish kind's own validation as the module's `publish` list."""
    items = plan(publish=[{'host_port': '7000-7001', 'namespace': 1, 'target_port': '8000-8001', 'protocol': 'udp'},
                          {'host_port': 7000, 'namespace': 2}])['publish']
    spec = _network.argument_spec()['publish']['options']
    assert all(set(item) <= set(spec) for item in items)
    parsed = _network.parse({'publish': items})['publish']
    assert [(p.protocol, p.host_ports, p.target_ports, str(p.target)) for p in parsed] == [
        ('udp', (7000, 7001), (8000, 8001), '10.200.3.2'), ('tcp', (7000, 7000), (7000, 7000), '10.200.3.3')]


def test_no_publish_and_absent_publish_nothing():
    assert plan()['publish'] == [] and plan(publish=None)['publish'] == []
    assert plan(state='absent', publish=[{'host_port': 8080, 'namespace': 1}])['publish'] == []
    assert teardown(publish=[{'host_port': 8080, 'namespace': 1}])['publish'] == []


@pytest.mark.parametrize('entry, message', [
    ({'host_port': 8080, 'namespace': 4}, r"bridge_network_publish\[0\]\.namespace=4: this host has 3 "
                                          r"\(bridge_network_namespaces\); give .* 1 to 3"),
    ({'host_port': 8080, 'namespace': 0}, r'namespace=0: .* 1 to 3'),
    ({'host_port': 8080, 'namespace': -1}, r'namespace=-1: .* 1 to 3'),
    ({'host_port': 8080, 'namespace': True}, r'namespace=True: .* 1 to 3'),
    ({'host_port': 8080, 'namespace': 'web'}, r"namespace='web': .* 1 to 3"),
    ({'host_port': 8080}, r'namespace=None: .* 1 to 3'),
    ({'namespace': 1}, r'bridge_network_publish\[0\]\.host_port=None is missing'),
    ({'host_port': 70000, 'namespace': 1}, r'bridge_network_publish\[0\]\.host_port=70000 is outside 1\.\.65535'),
    ({'host_port': '80-x', 'namespace': 1}, r"host_port='80-x' is not a port or a port range"),
    ({'host_port': '8000-8010', 'namespace': 1, 'target_port': '80-81'},
     r"bridge_network_publish\[0\]\.target_port='80-81' is a range of 2 ports"),
    ({'host_port': 8080, 'namespace': 1, 'protocol': 'sctp'}, r"protocol='sctp': give tcp or udp"),
    ({'host_port': 8080, 'namespace': 1, 'host_address': 'fd00::1'},
     r"host_address='fd00::1': the role publishes IPv4 ports only"),
    ({'host_port': 8080, 'namespace': 1, 'host_address': '127.0.0.1'}, r'host_address=.* is a loopback address'),
    ({'host_port': 8080, 'namespace': 1, 'port': 80}, r"bridge_network_publish\[0\]: unknown key 'port'"),
])
def test_publish_refuses_bad_entries_naming_them(entry, message):
    with pytest.raises(Exception, match=message):
        plan(publish=[entry])


def test_publish_refuses_a_namespace_index_when_there_are_none():
    with pytest.raises(Exception, match=r'namespace=1: this host has no namespaces \(bridge_network_namespaces=0\)'):
        plan(namespaces=0, publish=[{'host_port': 8080, 'namespace': 1}])


def test_publish_refuses_a_host_port_twice():
    with pytest.raises(Exception, match=r"bridge_network_publish\[1\]\.host_port='8085-8090': tcp host port 8085 "
                                        r"is also published by bridge_network_publish\[0\] \(host_port='8080-8085'\)"):
        plan(publish=[{'host_port': '8080-8085', 'namespace': 1}, {'host_port': '8085-8090', 'namespace': 2}])
    # all addresses and one of them overlap; another protocol does not
    with pytest.raises(Exception, match='also published'):
        plan(publish=[{'host_port': 80, 'namespace': 1},
                      {'host_port': 80, 'namespace': 2, 'host_address': '192.0.2.11'}])
    assert len(plan(publish=[{'host_port': 53, 'namespace': 1, 'protocol': 'udp'},
                             {'host_port': 53, 'namespace': 1}])['publish']) == 2
    assert len(plan(publish=[{'host_port': 80, 'namespace': 1, 'host_address': '192.0.2.11'},
                             {'host_port': 80, 'namespace': 2, 'host_address': '192.0.2.12'}])['publish']) == 2


@pytest.mark.parametrize('value', ['8080', {'host_port': 8080}, ['8080']])
def test_publish_must_be_a_list_of_dicts(value):
    with pytest.raises(Exception, match=r'bridge_network_publish(\[0\])?=.* is not a (list|dict)'):
        plan(publish=value)


def test_the_roles_published_ports_are_purged_like_its_other_objects():
    """Converge and teardown select the published ports whose target is in the pool or the host's
    subnet, as they select MASQUERADE rules; the module takes the selection."""
    fleet = {'me': '192.168.3.0/24'}
    present = plan(subnets=fleet, publish=[{'host_port': 8080, 'namespace': 1}])
    down = teardown(known_subnets=list(fleet.values()), subnet='192.168.3.0/24')
    assert present['purge_match']['publish'] == down['purge_match']['publish'] == ['10.200.0.0/16', '192.168.3.0/24']
    for result in (present, down):
        match = selection(result)['publish']
        assert match(net('192.168.3.2/32')) and match(net('10.200.77.5/32'))
        assert not match(net('192.168.4.2/32')) and not match(net('10.201.0.2/32'))


# ---- more than a thousand namespaces in bridge mode: one segment of several bridges ---------------------
def _on(p):
    """{namespace: bridge of its port}, the joins {end on the first bridge: (its peer, the peer's bridge)}."""
    ports = dict((pair['peer']['netns'], pair['master']) for pair in p['pairs'] if pair['peer']['netns'])
    joins = dict((pair['name'], (pair['peer']['name'], pair['peer']['master'], pair.get('isolated')))
                 for pair in p['pairs'] if not pair['peer']['netns'])
    return ports, joins


@pytest.mark.parametrize('count, bridges', [(1, 1), (1000, 1), (1001, 2), (2000, 2), (2001, 3), (3000, 3)])
def test_a_bridge_holds_a_thousand_namespaces_and_further_ones_join_it(count, bridges):
    p = plan(namespaces=count, subnet='10.200.0.0/20')
    names = ['lnbr0'] + ['lnbr0-%d' % k for k in range(1, bridges)]
    assert [b['name'] for b in p['bridges']] == names
    assert p['bridges'][0]['addresses'] == ['10.200.0.1/20'] and all(b['addresses'] == [] for b in p['bridges'][1:])
    ports, joins = _on(p)
    assert joins == dict(('lnbr0-%da' % k, ('lnbr0-%db' % k, 'lnbr0-%d' % k, None)) for k in range(1, bridges))
    assert all(pair['master'] == 'lnbr0' for pair in p['pairs'] if pair['name'] in joins)
    for i in (1, count):
        assert ports['lnns%d' % i] == names[(i - 1) // 1000]
    # one subnet, one gateway, whatever the bridge: every namespace's default route is the same
    assert set(r['gateway'] for r in p['routes'] if r.get('netns')) == {'10.200.0.1'}
    # no bridge has more ports than the kernel takes
    per_bridge = {}
    for pair in p['pairs']:
        for end in (pair, pair['peer']):
            if end.get('master'):
                per_bridge[end['master']] = per_bridge.get(end['master'], 0) + 1
    assert max(per_bridge.values()) <= 1023


def test_growing_past_a_thousand_moves_no_namespace():
    """From one bridge to three and back: each namespace keeps its address and its bridge."""
    small, large = plan(namespaces=1000, subnet='10.200.0.0/20'), plan(namespaces=2500, subnet='10.200.0.0/20')
    small_ports, large_ports = _on(small)[0], _on(large)[0]
    assert all(large_ports[ns] == bridge for ns, bridge in small_ports.items())
    addresses = dict((r['netns'], r) for r in large['targets'])
    assert all(addresses[t['netns']] == t for t in small['targets'])
    # the shrink back: the further bridges and their joins are undeclared - the role's, for purge
    found = selection(small)
    assert found['bridges']('lnbr0-1') and found['bridges']('lnbr0-2') and found['pairs']('lnbr0-1a')
    assert not found['bridges']('lnbr0x1') and not found['pairs']('lnbr0-1b')


def test_with_isolate_the_joins_are_isolated_on_the_first_bridge_only():
    p = plan(namespaces=1500, subnet='10.200.0.0/20', isolate=True)
    _ports, joins = _on(p)
    join = [pair for pair in p['pairs'] if pair['name'] == 'lnbr0-1a'][0]
    assert join['isolated'] is True and not join['peer'].get('isolated')
    assert all(pair.get('isolated') for pair in p['pairs'] if pair['name'].startswith('lnv'))


def test_a_bridge_name_too_long_for_its_joins_is_refused_only_past_a_thousand():
    plan(namespaces=1000, subnet='10.200.0.0/20', bridge='bridge-name-13')
    with pytest.raises(Exception, match='bridge_network_bridge'):
        plan(namespaces=1001, subnet='10.200.0.0/20', bridge='bridge-name-13')


def test_bridge_mode_past_the_first_bridges_ports_is_refused_naming_the_limit():
    """24000 namespaces: the first bridge holds 1000 ports and 23 joins, 1023, the kernel's limit. One
    more namespace needs a 25th bridge and a 1024th port on the first: refused before any change."""
    p = plan(namespaces=24000, subnet='10.200.0.0/16')
    assert len(p['bridges']) == 24 and p['errors'] == []
    assert len([pair for pair in p['pairs'] if pair['master'] == 'lnbr0']) == 1023
    with pytest.raises(Exception, match=r'needs 25 bridges, and the first would hold 1024 ports .*at most 1023.*'
                                        r'at most 24000 namespaces.*bridge_network_mode: p2p'):
        plan(namespaces=24001, subnet='10.200.0.0/16')
    assert plan(namespaces=24001, subnet='10.200.0.0/14', mode='p2p')['errors'] == []


def _read(kernel):
    """What the role's read (tasks/read.yml: netns_info in bridge mode) returns of a fake kernel."""
    query = _info.InfoQuery({'netns_details': False, 'veth_pairs': False, 'bridges': False, 'bridge_ports': False,
                             'nat': False})
    return _info.gather(kernel.reader(), query, _kinds.KINDS)


def test_foreign_interfaces_named_like_the_further_bridges_or_their_joins_are_refused():
    """Past a thousand namespaces the role names more than its first bridge: lnbr0-1, lnbr0-2 ... and the
    join ends lnbr0-Ka and lnbr0-Kb. One of those names held by an interface this collection did not make
    is refused before any change, as the first bridge is - a foreign bridge would be taken over."""
    kernel = FakeKernel()
    kernel.bridge(None, 'lnbr0')
    kernel.bridge(None, 'lnbr0-1')
    kernel.veth(None, 'lnbr0-1a', None, 'lnbr0-1b', master='lnbr0')  # the role's own segment so far
    assert plan(info=_read(kernel), namespaces=2000, subnet='10.200.0.0/20')['errors'] == []
    kernel.bridge(None, 'lnbr0-2', ours=False)  # someone else's bridge
    kernel.link(None, 'lnbr0-3a', kind='dummy')
    errors = plan(info=_read(kernel), namespaces=3500, subnet='10.200.0.0/20')['errors']
    assert len(errors) == 2, errors
    assert 'needs a further bridge named lnbr0-2, and an interface of that name exists' in errors[0]
    assert '(kind bridge)' in errors[0] and 'bridge_network_bridge=lnbr0' in errors[0]
    assert 'joining a further bridge to lnbr0 named lnbr0-3a' in errors[1] and '(kind dummy)' in errors[1]
    # below those names nothing is asked of them
    assert plan(info=_read(kernel), namespaces=2000, subnet='10.200.0.0/20')['errors'] == []


def test_past_a_thousand_with_br_netfilter_the_role_refuses():
    """Bridged frames through the IP hooks (br_netfilter) are tracked on the further bridge and again
    when routed: the NAT decided on the first pass is lost. Refused, naming the way out."""
    host_info = info()
    host_info['host']['forwarding'] = {'ipv4': True, 'ipv6': False, 'bridge_nf_call_iptables': True}
    p = plan(info=host_info, namespaces=1001, subnet='10.200.0.0/20')
    assert len(p['errors']) == 1 and 'bridge-nf-call-iptables = 1' in p['errors'][0]
    assert 'bridge_network_mode: p2p' in p['errors'][0]
    assert plan(info=host_info, namespaces=1000, subnet='10.200.0.0/20')['errors'] == []
    host_info['host']['forwarding']['bridge_nf_call_iptables'] = None  # not loaded
    assert plan(info=host_info, namespaces=1001, subnet='10.200.0.0/20')['errors'] == []


# ---- services and DNS in the role's namespaces -------------------------------------------------------

def test_services_are_placed_by_namespace_index():
    items = plan(services=[{'service': 'nginx', 'namespace': 1, 'restart': True},
                           {'service': 'app@blue.service', 'namespace': '3', 'resolv_conf': 'false'}])['services']
    assert items == [
        {'service': 'nginx.service', 'netns': 'lnns1', 'resolv_conf': True, 'restart': True},
        {'service': 'app@blue.service', 'netns': 'lnns3', 'resolv_conf': False, 'restart': False}]
    parsed = _network.parse({'services': items})['services']
    assert [(s.name, s.ns) for s in parsed] == [('nginx.service', 'lnns1'), ('app@blue.service', 'lnns3')]
    assert plan()['services'] == [] and plan(services=None)['services'] == []
    assert plan(state='absent', services=[{'service': 'nginx', 'namespace': 1}])['services'] == []


@pytest.mark.parametrize('entries, message', [
    ([{'service': 'nginx', 'namespace': 4}], r"bridge_network_services\[0\]\.namespace=4: this host has 3"),
    ([{'service': 'nginx', 'namespace': 1, 'port': 80}], r"bridge_network_services\[0\]: unknown key 'port'"),
    ([{'service': 'nginx.socket', 'namespace': 1}], r"bridge_network_services\[0\]\.service='nginx.socket' is not a "),
    ([{'service': 'nginx', 'namespace': 1}, {'service': 'nginx.service', 'namespace': 2}],
     r"bridge_network_services\[1\]\.service='nginx.service': nginx.service is also placed by "
     r'bridge_network_services\[0\]'),
    ('nginx', r"bridge_network_services='nginx' is not a list"),
])
def test_services_refused(entries, message):
    with pytest.raises(bridge_network.AnsibleFilterError, match=message):
        plan(services=entries)


def test_dns_for_every_namespace():
    assert plan()['dns'] == [] and plan(dns='none')['dns'] == []
    assert plan(dns='upstream')['dns'] == [{'netns': 'lnns%d' % i} for i in (1, 2, 3)]
    static = plan(dns=['10.200.3.1', ' 2001:db8::53'])['dns']
    assert static[0] == {'netns': 'lnns1', 'source': 'static', 'servers': ['10.200.3.1', '2001:db8::53']}
    assert len(static) == 3 and len(_network.parse({'dns': static})['dns']) == 3
    assert plan(state='absent', dns='upstream')['dns'] == [] and teardown(dns='upstream')['dns'] == []


@pytest.mark.parametrize('dns, message', [
    ('8.8.8.8', r"bridge_network_dns='8.8.8.8': give upstream, none or a list"),
    (['one.example'], r"bridge_network_dns\[0\]='one.example' is not an IPv4 or IPv6 address"),
    (['10.0.0.%d' % i for i in range(1, 5)], r'bridge_network_dns=.* has 4 servers'),
])
def test_dns_refused(dns, message):
    with pytest.raises(bridge_network.AnsibleFilterError, match=message):
        plan(dns=dns)


def test_services_and_dns_of_the_role_are_purged_by_namespace():
    for result in (plan(), teardown()):
        assert result['purge_match']['services'] == result['purge_match']['dns'] == ['lnns[0-9]+']
        chosen = selection(result)
        assert chosen['services']('lnns12') and not chosen['services']('web') and chosen['dns']('lnns1')
