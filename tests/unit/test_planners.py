"""Every kind's planner and purge on a fake kernel (fakekernel.py): the planning part of the kernel
tests (test_network, test_modules, test_deletion) - create, nothing to do, change, replace, absent,
purge, declared twice, same-task visibility, stale names, ownership - and the diff each records.
What only a kernel can show (that the operations do what they say) stays in tests/integration."""
import ipaddress
import re

import pytest

from ansible_collections.linuxnet.netns.plugins.module_utils import _codec as C
from ansible_collections.linuxnet.netns.plugins.module_utils import _kind_veth
from ansible_collections.linuxnet.netns.plugins.module_utils import _plan as P
from ansible_collections.linuxnet.netns.plugins.module_utils import _state
from ansible_collections.linuxnet.netns.plugins.module_utils._common import OWNER_ALIAS, PlanError, ValidationError

from ansible_collections.linuxnet.netns.tests.unit.fakekernel import FakeKernel

PATH4 = '/proc/sys/net/ipv4/ip_forward'
PATH6 = '/proc/sys/net/ipv6/conf/all/forwarding'


def pair(a, b, b_ns='ns1', a_ns=None, **kw):
    spec = {'name': a, 'netns': a_ns, 'peer': {'name': b, 'netns': b_ns}}
    for key in ('addresses', 'mtu', 'up', 'master', 'isolated', 'ipv6'):
        if key in kw:
            spec[key] = kw.pop(key)
    for key in list(kw):
        if key.startswith('peer_'):
            spec['peer'][key[5:]] = kw.pop(key)
    spec.update(kw)
    return spec


def lab():
    """The host with a namespace ns1 and a veth pair vh (10.0.0.1/24) - vn (10.0.0.2/24) into it."""
    kernel = FakeKernel()
    kernel.netns('ns1')
    kernel.veth(None, 'vh', 'ns1', 'vn', addresses_a=['10.0.0.1/24'], addresses_b=['10.0.0.2/24'])
    return kernel


LAB_PAIR = pair('vh', 'vn', addresses=['10.0.0.1/24'], peer_addresses=['10.0.0.2/24'])


def unchanged(plan):
    assert plan.ops == [] and not plan.changed and plan.actions == []
    assert plan.diff() == {'before': {}, 'after': {}}


# ---- namespaces ----------------------------------------------------------------------------------

def test_netns_create_marks_and_raises_lo():
    plan, reader = FakeKernel().plan_network(namespaces=[{'name': 'ns1'}])
    assert plan.actions == ['create netns ns1', 'mark netns ns1 as made by linuxnet.netns (alias of its lo)',
                            'set lo up in netns ns1']
    assert plan.diff() == {'before': {}, 'after': {'netns ns1': {'lo_up': True, 'ours': True}}}
    assert reader.creating == {'ns1'} and reader.will_exist('ns1')
    assert reader.state('ns1').exists is False  # the forecast is apart from what was read
    # lo's mark and state go with the creation, through the socket that made the namespace: one
    # operation, no later one that would enter the namespace again
    [op] = plan.ops
    assert op.stage == P.NETNS_CREATE and op.call is not None and op.summary == plan.actions


def _ifi(request):
    """(flags, change) of a link request's ifinfomsg."""
    return C.IFINFO.unpack_from(request.data, 16)[3:5]


class _Socket(object):
    def __init__(self):
        self.sent = []

    def request(self, requests):
        self.sent.extend(requests)


class _Session(object):
    """What a creation call sees: create() hands back the new namespace's socket."""

    def __init__(self):
        self.made = {}

    def create(self, name):
        return self.made.setdefault(name, _Socket())


def test_netns_create_sends_lo_settings_through_the_new_socket():
    plan, _reader = FakeKernel().plan_network(namespaces=[{'name': 'ns1'}, {'name': 'ns2', 'lo_up': False}])
    session = _Session()
    for op in plan.ops:
        op.call(session)
    for name, up in (('ns1', C.IFF_UP), ('ns2', 0)):
        [request] = session.made[name].sent
        index, (flags, change) = C.ifinfo_index(request.data[16:]), _ifi(request)
        assert (index, flags & C.IFF_UP) == (1, up)
        assert change & C.IFF_UP == (C.IFF_UP if up else 0)  # lo is down in a new namespace: left so
        assert OWNER_ALIAS.encode() in request.data


def test_netns_present_is_nothing_to_do():
    kernel = FakeKernel()
    kernel.netns('ns1')
    unchanged(kernel.plan_network(namespaces=[{'name': 'ns1'}])[0])


def test_netns_lo_down_and_unmarked_lo_gets_the_mark():
    kernel = FakeKernel()
    kernel.netns('ns1', ours=False)
    plan, _result = kernel.plan_network(namespaces=[{'name': 'ns1', 'lo_up': False}])
    assert plan.actions == ['mark netns ns1 as made by linuxnet.netns (alias of its lo)', 'set lo down in netns ns1']
    assert plan.diff() == {'before': {'netns ns1': {'lo_up': True, 'ours': False}},
                           'after': {'netns ns1': {'lo_up': False, 'ours': True}}}


def test_netns_absent_deletes_and_later_planners_see_it_gone():
    kernel = lab()
    plan, reader = kernel.plan_network(namespaces=[{'name': 'ns1', 'state': 'absent'}])
    assert plan.actions == ['delete netns ns1']
    assert reader.removing == {'ns1': 'declared'} and not reader.will_exist('ns1')
    assert plan.diff() == {'before': {'netns ns1': {'lo_up': True, 'ours': True}}, 'after': {}}
    # the host-side end of its veth goes with it: its address is removed first (no action of its
    # own), and the run waits for the kernel's teardown
    assert [op.stage for op in plan.ops] == [P.NETNS_DELETE, P.NETNS_DELETE, P.NETNS_DELETE - 1, P.NETNS_DELETE + 1]
    request = plan.ops[2].requests(None)
    assert request.data == C.address_message(C.RTM_DELADDR, 0, reader.state(None).links['vh'].index,
                                             ipaddress.ip_interface(u'10.0.0.1/24'))
    assert request.what == 'remove address 10.0.0.1/24 from the host end of a veth of a namespace being deleted'


def test_netns_absent_without_a_diff_reads_nothing_of_the_namespace(monkeypatch):
    kernel = lab()
    with_diff = kernel.plan_network(namespaces=[{'name': 'ns1', 'state': 'absent'}])[0]

    def no_read(*_args):
        raise AssertionError('lo read although no diff is asked for')
    monkeypatch.setattr(_state.NsState, 'lo', no_read)
    plan, reader = kernel.plan_network(namespaces=[{'name': 'ns1', 'state': 'absent'}], diff=False)
    # the same deletion and the same wait for the host-side end; only the diff's before-state is not read
    assert plan.actions == with_diff.actions == ['delete netns ns1'] and reader.removing == {'ns1': 'declared'}
    assert [op.stage for op in plan.ops] == [op.stage for op in with_diff.ops]
    assert plan.diff() == {'before': {}, 'after': {}}


def test_netns_absent_when_gone_is_nothing_to_do_but_a_bare_file_is_removed():
    kernel = FakeKernel()
    unchanged(kernel.plan_network(namespaces=[{'name': 'ns1', 'state': 'absent'}])[0])
    kernel.bare.add('ns1')
    plan, _result = kernel.plan_network(namespaces=[{'name': 'ns1', 'state': 'absent'}])
    assert plan.actions == ['remove /run/netns/ns1 (no namespace mounted there)']


def test_netns_held_by_a_process_loses_its_interfaces_and_warns():
    kernel = lab()
    kernel.holders['ns1'] = [(4242, 'net', 'sleep')]
    plan, _result = kernel.plan_network(namespaces=[{'name': 'ns1', 'state': 'absent'}])
    assert plan.actions[0].startswith('delete vn in netns ns1 (still used by ')
    assert 'delete netns ns1' in plan.actions
    assert plan.warnings and 'still used by' in plan.warnings[0]


def test_netns_purge_takes_ours_only_and_purge_match_narrows():
    kernel = FakeKernel()
    kernel.netns('lnns1')
    kernel.netns('lnns2')
    kernel.netns('users', ours=False)
    plan, reader = kernel.plan_network(namespaces=[], purge=True)
    assert plan.actions == ['delete netns lnns1', 'delete netns lnns2']
    assert reader.removing == {'lnns1': 'purge', 'lnns2': 'purge'}
    plan, _result = kernel.plan_network(namespaces=[{'name': 'lnns2'}], purge=True)
    assert plan.actions == ['delete netns lnns1']
    plan, _result = kernel.plan_network(namespaces=[], purge=True, purge_match={'namespaces': ['lnns2']})
    assert plan.actions == ['delete netns lnns2']


def test_netns_declared_twice_is_refused():
    with pytest.raises(ValidationError, match='namespaces'):
        FakeKernel().plan_network(namespaces=[{'name': 'ns1'}, {'name': 'ns1'}])


def test_objects_in_a_namespace_the_task_removes_are_refused():
    kernel = lab()
    with pytest.raises(PlanError, match="'ns1' is declared absent in the same task"):
        kernel.plan_network(namespaces=[{'name': 'ns1', 'state': 'absent'}],
                            routes=[{'netns': 'ns1', 'gateway': '10.0.0.1'}])
    with pytest.raises(PlanError, match='removed by purge in the same task'):
        kernel.plan_network(namespaces=[], purge=True, routes=[{'netns': 'ns1', 'gateway': '10.0.0.1'}])


def test_objects_in_a_missing_namespace_are_refused_unless_absent():
    kernel = FakeKernel()
    with pytest.raises(PlanError, match="'ns9' does not exist; create it first"):
        kernel.plan_network(pairs=[pair('a', 'b', b_ns='ns9')])
    unchanged(kernel.plan_network(pairs=[pair('a', 'b', b_ns='ns9', state='absent')])[0])


# ---- veth pairs ----------------------------------------------------------------------------------

def test_veth_create_into_a_namespace_the_same_task_creates():
    plan, _result = FakeKernel().plan_network(namespaces=[{'name': 'ns1'}], pairs=[LAB_PAIR])
    assert 'create veth vh in the host with peer vn in netns ns1' in plan.actions
    assert plan.actions.index('create netns ns1') < plan.actions.index(
        'create veth vh in the host with peer vn in netns ns1')
    assert plan.diff()['after']['veth (host) vh'] == {'kind': 'veth', 'up': True, 'mtu': 1500,
                                                      'addresses': ['10.0.0.1/24'], 'ipv6': False}
    assert plan.diff()['after']['veth ns1 vn'] == {'kind': 'veth', 'up': True, 'mtu': 1500,
                                                   'addresses': ['10.0.0.2/24']}


class _Descriptors(object):
    """A resolver for a creation request: the peer's namespace descriptor."""

    def ns_fd(self, ns):
        return 7


@pytest.mark.parametrize('up', [True, False])
def test_veth_first_end_comes_up_with_the_pair_and_the_peer_after(up):
    """Up by the creating request (one message the kernel tells listeners about, not two): the
    first end; the peer comes up with its settings, so no carrier before both ends' IPv6 switch."""
    plan, _result = FakeKernel().plan_network(namespaces=[{'name': 'ns1'}], pairs=[dict(LAB_PAIR, up=up)])
    [create] = [op for op in plan.ops if op.stage == P.LINK_CREATE]
    assert _ifi(create.requests(_Descriptors())) == ((C.IFF_UP, C.IFF_UP) if up else (0, 0))
    settings = dict((op.ns, op) for op in plan.ops if op.stage == P.LINK_SET)
    assert _ifi(settings[None].requests(None)) == (0, 0)  # the mark alone
    assert _ifi(settings['ns1'].requests(None)) == (C.IFF_UP, C.IFF_UP)
    assert ('set vh up in the host' in create.summary) is up
    assert not [a for a in plan.actions if a.startswith('set vh ')] or up
    assert plan.actions.index('create veth vh in the host with peer vn in netns ns1') < plan.actions.index(
        'disable IPv6 on vh in the host') < plan.actions.index('set vn up in netns ns1')
    assert plan.diff()['after']['veth (host) vh']['up'] is up


def test_veth_present_is_nothing_to_do():
    unchanged(lab().plan_network(namespaces=[{'name': 'ns1'}], pairs=[LAB_PAIR])[0])


def _ipv6_ops(plan):
    return [(op.stage, op.ns, op.summary) for op in plan.ops if op.stage == P.LINK_IPV6]


def test_ipv6_off_at_creation_on_ipv4_only_ends_before_they_come_up():
    plan, _reader = FakeKernel().plan_network(namespaces=[{'name': 'ns1'}], pairs=[LAB_PAIR])
    # the namespace's end gets what the kernel gives: a write there costs O(namespaces)
    assert _ipv6_ops(plan) == [(P.LINK_IPV6, None, 'disable IPv6 on vh in the host')]
    assert P.LINK_CREATE < P.LINK_IPV6 < P.LINK_SET  # made down, IPv6 off, then up: no link-local ever
    assert plan.actions.index('disable IPv6 on vh in the host') < plan.actions.index(
        'add address 10.0.0.1/24 to vh in the host')
    assert plan.diff()['after']['veth (host) vh']['ipv6'] is False and 'ipv6' not in plan.diff()['after']['veth ns1 vn']


def test_ipv6_at_creation_follows_each_end_and_an_explicit_choice():
    pairs = [pair('v0', 'e0', b_ns=None, addresses=['fd00::1/64'], peer_addresses=['10.0.0.2/24']),
             pair('v1', 'e1', addresses=['10.0.1.1/24'], peer_addresses=['10.0.1.2/24', 'fd00::2/64']),
             pair('v2', 'e2', master='br0', peer_addresses=['10.0.2.2/24']),
             pair('v3', 'e3'),
             pair('v4', 'e4', addresses=['10.0.4.1/24'], ipv6=True, peer_addresses=['10.0.4.2/24'], peer_ipv6=True),
             pair('v5', 'e5', ipv6=False, peer_ipv6=False)]
    kernel = FakeKernel()
    kernel.netns('ns1')
    kernel.bridge(None, 'br0')
    plan, _result = kernel.plan_network(pairs=pairs)
    assert [summary for _stage, _ns, summary in _ipv6_ops(plan)] == [
        'disable IPv6 on e0 in the host',  # both ends on the host: v0 has an IPv6 address
        'disable IPv6 on v1 in the host',  # IPv4-only on the host; e1, in a namespace: the kernel's default
        'disable IPv6 on v2 in the host',  # a bridge port without addresses
        # v3: no addresses, no bridge - the kernel's default
        'enable IPv6 on v4 in the host', 'enable IPv6 on e4 in netns ns1',
        'disable IPv6 on v5 in the host', 'disable IPv6 on e5 in netns ns1']


def test_ipv6_of_an_existing_end_changes_only_as_declared():
    unchanged(lab().plan_network(pairs=[LAB_PAIR])[0])  # IPv6 on, omitted: left as it is
    kernel = FakeKernel()
    kernel.netns('ns1')
    kernel.veth(None, 'vh', 'ns1', 'vn', addresses_a=['10.0.0.1/24'], addresses_b=['10.0.0.2/24'], ipv6=False)
    unchanged(kernel.plan_network(pairs=[LAB_PAIR])[0])  # a re-run of what the first run made
    unchanged(kernel.plan_network(pairs=[pair('vh', 'vn', ipv6=False, peer_ipv6=False)])[0])
    plan, _result = kernel.plan_network(pairs=[pair('vh', 'vn', addresses=['10.0.0.1/24', 'fd00::1/64'], ipv6=True)])
    assert plan.actions == ['enable IPv6 on vh in the host', 'add address fd00::1/64 to vh in the host']


def test_ipv6_off_on_an_existing_end_drops_its_ipv6_addresses_without_removing_them_one_by_one():
    kernel = FakeKernel()
    kernel.netns('ns1')
    kernel.veth(None, 'vh', 'ns1', 'vn', addresses_a=['10.0.0.1/24', 'fd00::1/64'])
    plan, _result = kernel.plan_network(pairs=[pair('vh', 'vn', addresses=['10.0.0.1/24'], ipv6=False)])
    assert plan.actions == ['disable IPv6 on vh in the host']  # the kernel removes fd00::1 with it
    assert plan.diff()['after']['veth (host) vh']['addresses'] == ['10.0.0.1/24']
    plan, _result = kernel.plan_network(pairs=[pair('vh', 'vn', ipv6=False)])  # addresses not managed
    assert plan.actions == ['disable IPv6 on vh in the host']
    assert plan.diff()['after']['veth (host) vh']['addresses'] == ['10.0.0.1/24']


def test_ipv6_refusals():
    with pytest.raises(ValidationError, match=r'pairs\[0\].peer.ipv6.*IPv6 address fd00::2/64'):
        FakeKernel().plan_network(pairs=[pair('vh', 'vn', peer_addresses=['fd00::2/64'], peer_ipv6=False)])
    kernel = FakeKernel()
    kernel.netns('ns1')
    kernel.veth(None, 'vh', 'ns1', 'vn', ipv6=None)  # a kernel booted with ipv6.disable=1
    with pytest.raises(PlanError, match='reports no IPv6 on vh'):
        kernel.plan_network(pairs=[pair('vh', 'vn', ipv6=True)])
    unchanged(kernel.plan_network(pairs=[pair('vh', 'vn', ipv6=False, peer_ipv6=False)])[0])


def test_veth_changes_addresses_mtu_and_up():
    plan, _result = lab().plan_network(pairs=[pair('vh', 'vn', addresses=['10.0.0.5/24'], mtu=1400,
                                                   peer_addresses=['10.0.0.2/24'], peer_up=False, peer_mtu=1400)])
    assert plan.actions == ['set mtu 1400 on vh in the host (was 1500)', 'set mtu 1400 on vn in netns ns1 (was 1500)',
                            'set vn down in netns ns1', 'remove address 10.0.0.1/24 from vh in the host',
                            'add address 10.0.0.5/24 to vh in the host']
    diff = plan.diff()
    assert diff['before']['veth (host) vh'] == {'kind': 'veth', 'up': True, 'mtu': 1500, 'addresses': ['10.0.0.1/24'],
                                                'ipv6': True}
    assert diff['after']['veth (host) vh'] == {'kind': 'veth', 'up': True, 'mtu': 1400, 'addresses': ['10.0.0.5/24'],
                                               'ipv6': True}
    assert diff['after']['veth ns1 vn'] == {'kind': 'veth', 'up': False, 'mtu': 1400, 'addresses': ['10.0.0.2/24'],
                                            'ipv6': True}


def test_veth_unset_settings_are_left_as_they_are():
    plan, _result = lab().plan_network(pairs=[pair('vh', 'vn')])
    unchanged(plan)


def test_veth_replace_is_refused_without_replace_true():
    kernel = lab()
    kernel.link(None, 'users0', kind='dummy')
    with pytest.raises(PlanError, match=r"pairs\[0\]: users0 exists in the host as a dummy, not as the peer of "
                                        r"x in netns ns1.*Set replace: true"):
        kernel.plan_network(pairs=[pair('users0', 'x')])
    plan, _result = kernel.plan_network(pairs=[pair('users0', 'x', replace=True)])
    assert plan.actions[:2] == ['delete users0 in the host (replace: a dummy)',
                                'create veth users0 in the host with peer x in netns ns1']


def test_veth_whose_peer_is_another_link_is_stale_and_refused():
    kernel = lab()
    kernel.veth(None, 'other', 'ns1', 'otherpeer')
    with pytest.raises(PlanError, match='not as the peer of'):
        kernel.plan_network(pairs=[pair('vh', 'otherpeer')])


def test_veth_absent_deletes_one_end_and_records_both():
    plan, reader = lab().plan_network(pairs=[pair('vh', 'vn', state='absent')])
    assert plan.actions == ['delete veth vh in the host (and its peer)']
    assert sorted(plan.diff()['before']) == ['veth (host) vh', 'veth ns1 vn'] and plan.diff()['after'] == {}
    assert reader.view('ns1').removed == {'vn': 'deleted with its peer vh in the host'}
    assert 'vn' in reader.state('ns1').links and 'vn' not in reader.view('ns1').links


def test_veth_absent_refuses_a_link_that_is_not_a_veth():
    kernel = lab()
    kernel.bridge(None, 'br0')
    with pytest.raises(PlanError, match="is a bridge, not a veth: refusing to delete it"):
        kernel.plan_network(pairs=[pair('br0', 'x', state='absent')])


def test_veth_absent_in_a_namespace_the_task_removes_goes_with_it():
    plan, _result = lab().plan_network(namespaces=[{'name': 'ns1', 'state': 'absent'}],
                                       pairs=[pair('vh', 'vn', state='absent')])
    assert plan.actions == ['delete netns ns1']


def test_veth_purge_takes_ours_once_per_pair_and_never_a_users():
    kernel = lab()
    kernel.veth(None, 'uh', 'ns1', 'un', ours=False)
    kernel.veth(None, 'l1', None, 'l2')  # both ends on the host: listed once
    plan, _result = kernel.plan_network(pairs=[], purge=True)
    assert plan.actions == ['delete veth vh in the host (and its peer; purge: not declared)',
                            'delete veth l1 in the host (and its peer; purge: not declared)']
    plan, _result = kernel.plan_network(pairs=[], purge=True, purge_match={'pairs': ['l[0-9]']})
    assert plan.actions == ['delete veth l1 in the host (and its peer; purge: not declared)']
    plan, _result = kernel.plan_network(pairs=[LAB_PAIR], purge=True, purge_match={'pairs': ['v.']})
    unchanged(plan)


def test_veth_purge_leaves_pairs_into_a_namespace_the_task_removes():
    plan, _result = lab().plan_network(namespaces=[], pairs=[], purge=True)
    assert plan.actions == ['delete netns ns1']


def test_a_link_declared_twice_in_one_task_is_refused():
    kernel = lab()
    with pytest.raises(PlanError, match=r"pairs\[1\].peer.name: vn in netns ns1 is declared twice in this task "
                                        r"\(first by pairs\[0\].peer.name\)"):
        kernel.plan_network(pairs=[LAB_PAIR, pair('other', 'vn')])
    with pytest.raises(PlanError, match='declared twice'):
        kernel.plan_network(bridges=[{'name': 'newx'}], pairs=[pair('newx', 'y')])


# ---- bridges -------------------------------------------------------------------------------------

def test_bridge_create_and_a_port_on_it_in_the_same_task():
    plan, reader = lab().plan_network(bridges=[{'name': 'br0', 'addresses': ['10.1.0.1/24']}],
                                      pairs=[pair('vh', 'vn', master='br0')])
    assert plan.actions[0] == 'create bridge br0 in the host' and 'attach vh to bridge br0 in the host' in plan.actions
    assert plan.diff()['after']['veth (host) vh']['master'] == 'br0'
    assert plan.diff()['before']['veth (host) vh'].get('master') is None
    assert reader.view(None).links['br0'].index < 0 and 'br0' not in reader.state(None).links


def test_bridge_present_is_nothing_to_do_and_its_port_too():
    kernel = lab()
    kernel.bridge(None, 'br0')
    kernel.veth(None, 'p0', 'ns1', 'p1', master='br0')
    unchanged(kernel.plan_network(bridges=[{'name': 'br0'}], pairs=[pair('p0', 'p1', master='br0')])[0])


def test_bridge_changes_mtu_and_up():
    kernel = FakeKernel()
    kernel.bridge(None, 'br0', up=False)
    plan, _result = kernel.plan_network(bridges=[{'name': 'br0', 'mtu': 9000}])
    assert plan.actions == ['set mtu 9000 on br0 in the host (was 1500)', 'set br0 up in the host']
    assert plan.diff() == {'before': {'bridge (host) br0': {'kind': 'bridge', 'up': False, 'mtu': 1500, 'addresses': []}},
                           'after': {'bridge (host) br0': {'kind': 'bridge', 'up': True, 'mtu': 9000, 'addresses': []}}}


def test_bridge_replace_refused_without_replace_and_never_on_absent():
    kernel = lab()
    with pytest.raises(PlanError, match=r"bridges\[0\].name='vh' in the host is a veth whose peer is ifindex 2 in "
                                        r"another namespace \(nsid 0\), not a bridge: refusing to take over it; "
                                        r"set replace: true"):
        kernel.plan_network(bridges=[{'name': 'vh'}])
    with pytest.raises(PlanError, match='refusing to delete it'):
        kernel.plan_network(bridges=[{'name': 'vh', 'state': 'absent', 'replace': True}])
    plan, _result = kernel.plan_network(bridges=[{'name': 'vh', 'replace': True}])
    assert plan.actions[:2] == ['delete vh in the host (replace: a veth whose peer is ifindex 2 in another namespace '
                                '(nsid 0))', 'create bridge vh in the host']
    assert 'bridge (host) vh (replaced)' in plan.diff()['before']


def test_bridge_absent_goes_after_the_namespaces_and_a_port_declared_on_it_is_refused():
    kernel = lab()
    kernel.bridge(None, 'br0')
    plan, _result = kernel.plan_network(bridges=[{'name': 'br0', 'state': 'absent'}])
    assert plan.actions == ['delete bridge br0 in the host'] and plan.ops[0].stage == P.BRIDGE_DELETE
    assert plan.diff()['before'] == {'bridge (host) br0': {'kind': 'bridge', 'up': True, 'mtu': 1500, 'addresses': []}}
    with pytest.raises(PlanError, match=r"pairs\[0\].master='br0': the same task removes it \(delete bridge br0"):
        kernel.plan_network(bridges=[{'name': 'br0', 'state': 'absent'}], pairs=[pair('vh', 'vn', master='br0')])


def test_master_that_is_missing_or_not_a_bridge_is_refused():
    kernel = lab()
    with pytest.raises(PlanError, match="master='nobr': no interface of that name in the host; create the bridge"):
        kernel.plan_network(pairs=[pair('vh', 'vn', master='nobr')])
    kernel.link(None, 'dummy0', kind='dummy')
    with pytest.raises(PlanError, match="master='dummy0' is a dummy in the host, not a bridge"):
        kernel.plan_network(pairs=[pair('vh', 'vn', master='dummy0')])


def _bridge_with_ports(count, namespaces=0):
    """br0 on the host with `count` ports: veth pairs p<i> - e<i>, the first `namespaces` of them
    into namespaces n<i> of their own, the rest into ns1."""
    kernel = FakeKernel()
    kernel.netns('ns1')
    kernel.bridge(None, 'br0')
    for i in range(count):
        if i < namespaces:
            kernel.netns('n%d' % i)
        kernel.veth(None, 'p%d' % i, 'n%d' % i if i < namespaces else 'ns1', 'e%d' % i, master='br0')
    return kernel


def test_more_ports_on_a_bridge_than_the_kernel_takes_are_refused_before_anything():
    # a new bridge: 1024 ports declared at once
    kernel = FakeKernel()
    kernel.netns('ns1')
    with pytest.raises(PlanError, match=r'bridge br0 in the host would have 1024 ports after this task \(1024 declared '
                                        r'on it\); the kernel takes at most 1023 a bridge'):
        kernel.plan_network(bridges=[{'name': 'br0'}],
                            pairs=[pair('p%d' % i, 'e%d' % i, master='br0') for i in range(1024)])
    plan, _result = kernel.plan_network(bridges=[{'name': 'br0'}],
                                        pairs=[pair('p%d' % i, 'e%d' % i, master='br0') for i in range(1023)])
    assert len([a for a in plan.actions if a.startswith('attach ')]) == 1023


def test_ports_already_on_a_bridge_count_unless_the_task_moves_or_removes_them():
    kernel = _bridge_with_ports(1000, namespaces=10)
    more = [pair('q%d' % i, 'f%d' % i, master='br0') for i in range(24)]
    with pytest.raises(PlanError, match='would have 1024 ports after this task \\(24 declared on it\\)'):
        kernel.plan_network(pairs=more)
    kernel.plan_network(pairs=more[:23])  # 1023: the kernel takes it
    # a declared pair leaves the bridge: room for one more
    plan, _result = kernel.plan_network(pairs=more + [pair('p20', 'e20')])
    assert 'attach q23 to bridge br0 in the host' in plan.actions
    # the task removes the namespaces of ten ports (their pairs go with them): room for ten more
    plan, _result = kernel.plan_network(namespaces=[{'name': 'n%d' % i, 'state': 'absent'} for i in range(10)],
                                        pairs=more + [pair('r%d' % i, 'g%d' % i, master='br0') for i in range(9)])
    assert 'attach r8 to bridge br0 in the host' in plan.actions
    with pytest.raises(PlanError, match='would have 1024 ports'):
        kernel.plan_network(namespaces=[{'name': 'n%d' % i, 'state': 'absent'} for i in range(10)],
                            pairs=more + [pair('r%d' % i, 'g%d' % i, master='br0') for i in range(10)])


def test_the_port_count_of_several_full_bridges_reads_each_namespace_once(monkeypatch):
    """Two bridges near the kernel's limit in one namespace, namespaces removed: the check groups the
    links by bridge in one pass and asks the removed namespaces' ids once, not once per bridge."""
    kernel = _bridge_with_ports(1000, namespaces=2)
    kernel.bridge(None, 'br1')
    for i in range(1000):
        kernel.veth(None, 'o%d' % i, 'ns1', 'k%d' % i, master='br1')
    asked, scans, checking = [], [], []
    removed_ids, links = _state.Reader.removed_ids, _state.NsView.links.fget
    check = _kind_veth._check_bridge_ports

    class Links(dict):
        def values(self):
            scans.append(len(self))
            return super(Links, self).values()

    def counted_check(reader, pairs):
        checking.append(True)
        try:
            return check(reader, pairs)
        finally:
            checking.pop()
    monkeypatch.setattr(_state.Reader, 'removed_ids',
                        lambda self, ns: (asked.append(ns) if checking else None) or removed_ids(self, ns))
    monkeypatch.setattr(_state.NsView, 'links', property(lambda self: Links(links(self)) if checking else links(self)))
    monkeypatch.setattr(_kind_veth, '_check_bridge_ports', counted_check)
    # br0: 1000 ports, two of them going with their namespaces, and 25 more: 1023, taken; br1: 1030
    more = [pair('q%d' % i, 'f%d' % i, master='br0') for i in range(25)]
    more += [pair('r%d' % i, 'g%d' % i, master='br1') for i in range(30)]
    gone = [{'name': 'n%d' % i, 'state': 'absent'} for i in range(2)]
    with pytest.raises(PlanError, match='bridge br1 in the host would have 1030 ports'):
        kernel.plan_network(namespaces=gone, pairs=more)
    assert asked == [None] and len(scans) == 1


def _port_flags(request):
    """{IFLA_BRPORT_*: value} a link request sets through IFLA_INFO_SLAVE_DATA (None: it sets none),
    and the request's index and name."""
    payload = bytes(request.data)[16:]
    attrs = C.attributes(payload, C.IFINFO.size)
    index, name = C.ifinfo_index(payload), attrs.get(C.IFLA_IFNAME)
    name = bytes(name).rstrip(b'\0').decode() if name is not None else None
    info = C.attributes(attrs[C.IFLA_LINKINFO], 0) if C.IFLA_LINKINFO in attrs else {}
    if C.IFLA_INFO_SLAVE_DATA not in info:
        return None, index, name
    assert bytes(info[C.IFLA_INFO_SLAVE_KIND]).rstrip(b'\0') == b'bridge'
    flags = dict((k, bytearray(v)[0]) for k, v in C.attributes(info[C.IFLA_INFO_SLAVE_DATA], 0).items())
    return flags, index, name


class _Resolver(object):
    def index(self, ns, name):
        return 99


def _requests(plan, stage, name='vh'):
    """The requests of the operations at `stage` that are about interface `name`."""
    def about(op):
        lines = op.summary if isinstance(op.summary, list) else [op.summary]
        return any(re.search(r'\b%s\b' % name, line) for line in lines)
    return [op.requests(_Resolver()) for op in plan.ops if op.stage == stage and about(op)]


def test_isolated_port_made_in_the_same_task_is_isolated_after_the_attach():
    plan, _reader = lab().plan_network(bridges=[{'name': 'br0', 'addresses': ['10.1.0.1/24']}],
                                       pairs=[pair('vh', 'vn', master='br0', isolated=True)])
    assert plan.actions.index('attach vh to bridge br0 in the host') < plan.actions.index(
        'set isolated on on vh, a port of bridge br0 in the host')
    # the kernel takes a port's flags only once it is a port: the flag is a message of its own, after the attach
    (attach,), (isolate,) = _requests(plan, P.LINK_SET), _requests(plan, P.LINK_SET + 1)
    assert _port_flags(attach)[0] is None
    assert _port_flags(isolate) == ({C.IFLA_BRPORT_ISOLATED: 1}, lab().ns(None).find('vh').index, None)
    assert plan.diff()['before']['veth (host) vh'].get('isolated') is None
    assert plan.diff()['after']['veth (host) vh'] == {'kind': 'veth', 'up': True, 'mtu': 1500, 'addresses': ['10.0.0.1/24'],
                                                      'master': 'br0', 'isolated': True, 'ipv6': True}
    # a pair the task makes: the flag goes to the new end by name
    plan, _reader = FakeKernel().plan_network(namespaces=[{'name': 'ns1'}], bridges=[{'name': 'br0'}],
                                              pairs=[pair('vh', 'vn', master='br0', isolated=True)])
    (isolate,) = _requests(plan, P.LINK_SET + 1)
    assert _port_flags(isolate) == ({C.IFLA_BRPORT_ISOLATED: 1}, 0, 'vh')


def test_isolation_of_a_port_already_there_rides_with_its_settings_and_a_rerun_is_nothing_to_do():
    kernel = lab()
    kernel.bridge(None, 'br0')
    _a, _b = kernel.veth(None, 'p0', 'ns1', 'p1', master='br0')
    plan, _reader = kernel.plan_network(pairs=[pair('p0', 'p1', master='br0', isolated=True)])
    assert plan.actions == ['set isolated on on p0, a port of bridge br0 in the host']
    (request,) = _requests(plan, P.LINK_SET, 'p0')
    assert _port_flags(request) == ({C.IFLA_BRPORT_ISOLATED: 1}, kernel.ns(None).find('p0').index, None)
    assert plan.diff() == {'before': {'veth (host) p0': {'kind': 'veth', 'up': True, 'mtu': 1500, 'addresses': [],
                                                         'master': 'br0', 'ipv6': True}},
                           'after': {'veth (host) p0': {'kind': 'veth', 'up': True, 'mtu': 1500, 'addresses': [],
                                                        'master': 'br0', 'isolated': True, 'ipv6': True}}}
    # not isolated and declared so, or isolation not declared at all: nothing to do
    unchanged(kernel.plan_network(pairs=[pair('p0', 'p1', master='br0', isolated=False)])[0])
    unchanged(kernel.plan_network(pairs=[pair('p0', 'p1', master='br0')])[0])
    kernel = lab()
    kernel.bridge(None, 'br0')
    kernel.veth(None, 'p0', 'ns1', 'p1', master='br0', isolated=True)
    unchanged(kernel.plan_network(pairs=[pair('p0', 'p1', master='br0', isolated=True)])[0])
    # a declared port is isolated as declared: not, unless said
    for declared in (pair('p0', 'p1', master='br0', isolated=False), pair('p0', 'p1', master='br0')):
        plan, _reader = kernel.plan_network(pairs=[declared])
        assert plan.actions == ['set isolated off on p0, a port of bridge br0 in the host']
    # an end declared without master is no port of ours: its flags are left alone
    unchanged(kernel.plan_network(pairs=[pair('p0', 'p1')])[0])
    plan, _reader = kernel.plan_network(pairs=[pair('p0', 'p1', master='br0', isolated=False)])
    assert _port_flags(_requests(plan, P.LINK_SET, 'p0')[0])[0] == {C.IFLA_BRPORT_ISOLATED: 0}
    assert plan.diff()['before']['veth (host) p0']['isolated'] is True
    assert 'isolated' not in plan.diff()['after']['veth (host) p0']


def test_a_port_moved_to_another_bridge_starts_without_isolation():
    kernel = lab()
    kernel.bridge(None, 'br0')
    kernel.bridge(None, 'br1')
    kernel.veth(None, 'p0', 'ns1', 'p1', master='br0', isolated=True)
    plan, _reader = kernel.plan_network(pairs=[pair('p0', 'p1', master='br1')])
    assert plan.actions == ['attach p0 to bridge br1 in the host']
    assert plan.diff()['before']['veth (host) p0']['isolated'] is True
    assert 'isolated' not in plan.diff()['after']['veth (host) p0']
    plan, _reader = kernel.plan_network(pairs=[pair('p0', 'p1', master='br1', isolated=True)])
    assert plan.actions == ['attach p0 to bridge br1 in the host', 'set isolated on on p0, a port of bridge br1 in the host']
    assert plan.diff()['after']['veth (host) p0']['isolated'] is True
    plan, _reader = kernel.plan_network(pairs=[pair('p0', 'p1', master='br1', isolated=False)])
    assert plan.actions == ['attach p0 to bridge br1 in the host']


def test_isolation_of_the_peer_end_on_a_bridge_in_its_namespace():
    kernel = lab()
    kernel.bridge('ns1', 'br0')
    plan, _reader = kernel.plan_network(pairs=[pair('vh', 'vn', peer_master='br0', peer_isolated=True)])
    assert plan.actions == ['attach vn to bridge br0 in netns ns1',
                            'set isolated on on vn, a port of bridge br0 in netns ns1']
    assert [op.ns for op in plan.ops] == ['ns1', 'ns1']


def test_isolated_without_master_or_without_kernel_support_is_refused():
    with pytest.raises(ValidationError, match=r"pairs\[0\].isolated=True is a setting of a bridge port, and master is "
                                              r"not set.*set master"):
        lab().plan_network(pairs=[pair('vh', 'vn', isolated=True)])
    with pytest.raises(ValidationError, match=r"pairs\[0\].peer.isolated=True is a setting of a bridge port"):
        lab().plan_network(pairs=[pair('vh', 'vn', peer_isolated=True)])
    unchanged(lab().plan_network(pairs=[pair('vh', 'vn', isolated=False, peer_isolated=False)])[0])
    kernel = lab()
    kernel.bridge(None, 'br0')
    kernel.veth(None, 'p0', 'ns1', 'p1', master='br0', isolated='unsupported')
    with pytest.raises(PlanError, match=r"pairs\[0\].isolated=True: the kernel reports no isolation flag on p0 in the "
                                        r"host, a port of br0 \(bridge port isolation needs Linux 4.18"):
        kernel.plan_network(pairs=[pair('p0', 'p1', master='br0', isolated=True)])
    # not isolated, such a port is fine
    unchanged(kernel.plan_network(pairs=[pair('p0', 'p1', master='br0')])[0])
    unchanged(kernel.plan_network(pairs=[pair('p0', 'p1', master='br0', isolated=False)])[0])


def test_bridge_purge_takes_ours_only_and_purge_match_narrows():
    kernel = FakeKernel()
    kernel.bridge(None, 'lnbr0')
    kernel.bridge(None, 'lnbr1')
    kernel.bridge(None, 'docker0', ours=False)
    plan, _result = kernel.plan_network(bridges=[{'name': 'lnbr1'}], purge=True)
    assert plan.actions == ['delete bridge lnbr0 in the host']
    plan, _result = kernel.plan_network(bridges=[], purge=True, purge_match={'bridges': ['lnbr1']})
    assert plan.actions == ['delete bridge lnbr1 in the host']


def test_a_link_without_our_alias_gets_marked_when_declared():
    kernel = FakeKernel()
    kernel.bridge(None, 'br0', ours=False)
    plan, reader = kernel.plan_network(bridges=[{'name': 'br0'}])
    assert plan.actions == ['mark br0 in the host as made by linuxnet.netns']
    assert reader.state(None).links['br0'].alias is None


# ---- routes --------------------------------------------------------------------------------------

def test_route_create_nothing_to_do_and_gateway_change():
    kernel = lab()
    plan, _result = kernel.plan_network(routes=[{'netns': 'ns1', 'gateway': '10.0.0.1'}])
    assert plan.actions == ['add route ns1 default via 10.0.0.1']
    assert plan.diff() == {'before': {}, 'after': {'route ns1 default': {'gateway': '10.0.0.1', 'ours': True}}}
    kernel.route('ns1', '0.0.0.0/0', gateway='10.0.0.1')
    unchanged(kernel.plan_network(routes=[{'netns': 'ns1', 'gateway': '10.0.0.1'}])[0])
    plan, _result = kernel.plan_network(routes=[{'netns': 'ns1', 'gateway': '10.0.0.9'}])
    assert plan.actions == ['replace route ns1 default via 10.0.0.9']
    assert plan.diff() == {'before': {'route ns1 default': {'gateway': '10.0.0.1', 'ours': True}},
                           'after': {'route ns1 default': {'gateway': '10.0.0.9', 'ours': True}}}


def test_route_metric_is_part_of_its_identity():
    kernel = lab()
    kernel.route('ns1', '0.0.0.0/0', gateway='10.0.0.1')
    plan, _result = kernel.plan_network(routes=[{'netns': 'ns1', 'gateway': '10.0.0.1', 'metric': 100}])
    assert plan.actions == ['add route ns1 default metric 100 via 10.0.0.1']


def test_route_a_users_route_saying_the_same_is_left_unmarked():
    kernel = lab()
    kernel.route('ns1', '0.0.0.0/0', gateway='10.0.0.1', ours=False)
    plan, _result = kernel.plan_network(routes=[{'netns': 'ns1', 'gateway': '10.0.0.1'}])
    unchanged(plan)
    plan, _result = kernel.plan_network(routes=[{'netns': 'ns1', 'gateway': '10.0.0.1', 'state': 'absent'}])
    assert plan.actions == ['delete route ns1 default']


def test_route_gateway_must_be_connected_unless_the_task_adds_the_address():
    kernel = lab()
    with pytest.raises(PlanError, match=r"routes\[0\].gateway='10.9.0.1' is not in any subnet connected  in netns "
                                        r"ns1 \(connected: 10.0.0.0/24\)"):
        kernel.plan_network(routes=[{'netns': 'ns1', 'gateway': '10.9.0.1'}])
    plan, _result = kernel.plan_network(pairs=[pair('vh', 'vn', addresses=['10.0.0.1/24'],
                                                    peer_addresses=['10.0.0.2/24', '10.9.0.2/24'])],
                                        routes=[{'netns': 'ns1', 'gateway': '10.9.0.1'}])
    assert plan.actions[-1] == 'add route ns1 default via 10.9.0.1'
    # an address the task removes no longer connects
    with pytest.raises(PlanError, match='not in any subnet connected'):
        kernel.plan_network(pairs=[pair('vh', 'vn', peer_addresses=['10.9.0.2/24'])],
                            routes=[{'netns': 'ns1', 'gateway': '10.0.0.1'}])
    plan, _result = kernel.plan_network(routes=[{'netns': 'ns1', 'gateway': '10.9.0.1', 'onlink': True, 'dev': 'vn'}])
    assert plan.actions == ['add route ns1 default via 10.9.0.1 dev vn']


def test_route_dev_made_by_the_task_and_a_stale_dev():
    kernel = lab()
    plan, _result = kernel.plan_network(bridges=[{'name': 'br9', 'netns': 'ns1'}],
                                        routes=[{'netns': 'ns1', 'dest': '10.50.0.0/16', 'dev': 'br9'}])
    assert plan.actions[-1] == 'add route ns1 10.50.0.0/16 via br9'
    with pytest.raises(PlanError, match=r"routes\[0\].dev='gone0': no such interface in netns ns1"):
        kernel.plan_network(routes=[{'netns': 'ns1', 'dest': '10.50.0.0/16', 'dev': 'gone0'}])


def test_routes_through_a_link_the_task_deletes_are_gone_for_later_planners():
    kernel = lab()
    kernel.route(None, '10.60.0.0/16', dev='vh')
    plan, reader = kernel.plan_network(pairs=[pair('vh', 'vn', state='absent')],
                                       routes=[{'dest': '10.60.0.0/16', 'dev': 'vh', 'state': 'absent'}])
    assert plan.actions == ['delete veth vh in the host (and its peer)']
    assert len(reader.state(None).routes_of(0)) == 1 and reader.view(None).routes == []


def test_route_purge_takes_protocol_76_only_and_purge_match_narrows():
    kernel = lab()
    kernel.route('ns1', '0.0.0.0/0', gateway='10.0.0.1')
    kernel.route('ns1', '10.70.0.0/16', gateway='10.0.0.1')
    kernel.route('ns1', '10.80.0.0/16', gateway='10.0.0.1', ours=False)
    plan, _result = kernel.plan_network(routes=[{'netns': 'ns1', 'gateway': '10.0.0.1'}], purge=True)
    assert plan.actions == ['delete route ns1 10.70.0.0/16']
    plan, _result = kernel.plan_network(routes=[{'netns': 'ns1', 'dest': '10.99.0.0/16', 'gateway': '10.0.0.1',
                                                 'state': 'absent'}], purge=True,
                                        purge_match={'routes': ['0.0.0.0/0']})
    assert plan.actions == ['delete route ns1 default', 'delete route ns1 10.70.0.0/16']
    plan, _result = kernel.plan_network(routes=[], purge=True, purge_match={'routes': ['10.70.0.0/16']})
    assert plan.actions == []  # the host's routes only: ns1 is not named


# ---- masquerade ----------------------------------------------------------------------------------

NFT_AFTER = {'table': 'inet linuxnet_netns', 'chains': {'postrouting': {
    'chain': 'type nat hook postrouting priority 100; policy accept;',
    'rules': ['ip saddr 10.0.0.0/24 oifname "eth0" masquerade comment "linuxnet:masq 10.0.0.0/24 eth0"']}}}


def test_masquerade_create_nothing_to_do_and_absent():
    kernel = lab()
    rule = {'source': '10.0.0.0/24', 'out_interface': 'eth0'}
    plan, _result = kernel.plan_network(masquerade=[rule])
    assert plan.actions[-1] == ('add rule inet linuxnet_netns postrouting ip saddr 10.0.0.0/24 oifname "eth0" '
                                'masquerade comment "linuxnet:masq 10.0.0.0/24 eth0" in the host')
    assert plan.diff() == {'before': {}, 'after': {'nftables (host)': NFT_AFTER}}
    kernel.masquerade(None, '10.0.0.0/24', 'eth0')
    unchanged(kernel.plan_network(masquerade=[rule])[0])
    plan, _result = kernel.plan_network(masquerade=[dict(rule, state='absent')])
    assert plan.actions == ['delete rule inet linuxnet_netns postrouting handle 10 # linuxnet:masq 10.0.0.0/24 eth0 '
                            '(state absent) in the host',
                            'delete table inet linuxnet_netns (no rules left in it) in the host']
    assert plan.diff() == {'before': {'nftables (host)': NFT_AFTER}, 'after': {}}


def test_masquerade_in_a_namespace_the_task_creates_and_one_it_removes():
    plan, _result = FakeKernel().plan_network(namespaces=[{'name': 'ns1'}],
                                              masquerade=[{'source': '10.0.0.0/24', 'out_interface': 'eth0', 'netns': 'ns1'}])
    assert plan.actions[-1].endswith('in netns ns1') and plan.ops[-1].stage == P.NFT
    kernel = FakeKernel()
    kernel.netns('ns1')
    kernel.masquerade('ns1', '10.0.0.0/24', 'eth0')
    plan, _result = kernel.plan_network(namespaces=[{'name': 'ns1', 'state': 'absent'}],
                                        masquerade=[{'source': '10.0.0.0/24', 'out_interface': 'eth0', 'netns': 'ns1',
                                                     'state': 'absent'}])
    assert plan.actions == ['delete netns ns1']


def test_masquerade_purge_takes_our_comments_only_and_purge_match_narrows():
    kernel = FakeKernel()
    kernel.masquerade(None, '10.0.0.0/24', 'eth0')
    kernel.masquerade(None, '10.1.0.0/24', 'eth0')
    kernel.masquerade(None, '10.2.0.0/24', 'eth0', comment='a user rule')
    plan, _result = kernel.plan_network(masquerade=[{'source': '10.1.0.0/24', 'out_interface': 'eth0'}], purge=True)
    assert [line.split(' postrouting ')[0] for line in plan.actions] == ['delete rule inet linuxnet_netns']
    assert '10.0.0.0/24' in plan.actions[0]
    plan, _result = kernel.plan_network(masquerade=[], purge=True, purge_match={'masquerade': ['10.1.0.0/16']})
    assert len(plan.actions) == 1 and '10.1.0.0/24' in plan.actions[0]


# ---- forwarding ----------------------------------------------------------------------------------

def test_forwarding_from_proc_nothing_to_do_and_change():
    kernel = lab()
    kernel.ns('ns1').proc.update({PATH4: False, PATH6: False})
    plan, _result = kernel.plan_network(forwarding=[{'netns': 'ns1', 'ipv4': True}])
    assert plan.actions == ['set net.ipv4.ip_forward = 1 in netns ns1']
    assert plan.diff() == {'before': {'forwarding ns1': {'net.ipv4.ip_forward': False}},
                           'after': {'forwarding ns1': {'net.ipv4.ip_forward': True}}}
    kernel.ns('ns1').proc[PATH4] = True
    unchanged(kernel.plan_network(forwarding=[{'netns': 'ns1', 'ipv4': True}])[0])


def test_forwarding_missing_proc_file_is_refused():
    kernel = lab()
    with pytest.raises(PlanError, match=r"forwarding\[0\].ipv6: /proc/sys/net/ipv6/conf/all/forwarding does not "
                                        r"exist in netns ns1"):
        kernel.plan_network(forwarding=[{'netns': 'ns1', 'ipv6': True}])


def test_forwarding_in_a_new_namespace_is_written_after_the_scope():
    plan, _result = FakeKernel().plan_network(namespaces=[{'name': 'ns1'}],
                                              forwarding=[{'netns': 'ns1', 'ipv4': True, 'restrict_to': ['10.0.0.0/24']}])
    lines = [line for line in plan.actions if 'ip_forward' in line]
    assert lines == ['set net.ipv4.ip_forward = 0 in netns ns1 (new; on once its forward scope is in place)',
                     'set net.ipv4.ip_forward = 1 in netns ns1']
    stages = dict((op.summary if isinstance(op.summary, str) else op.summary[0], op.stage) for op in plan.ops)
    assert stages['set net.ipv4.ip_forward = 1 in netns ns1'] == P.SYSCTL > P.NFT


def test_forwarding_scope_and_masquerade_share_one_transaction_per_namespace():
    kernel = FakeKernel()
    kernel.ns(None).proc.update({PATH4: True})
    plan, _result = kernel.plan_network(masquerade=[{'source': '10.0.0.0/24', 'out_interface': 'eth0'}],
                                        forwarding=[{'ipv4': True, 'restrict_to': ['10.0.0.0/24']}])
    assert list(plan.nft_transactions) == [None]
    transaction = plan.nft_transactions[None]
    assert len(transaction.plans) == 2 and transaction.key == 'nftables (host)'
    assert [op.stage for op in plan.ops].count(P.NFT) == 1
    assert sorted(plan.diff()['after']) == ['nftables (host)']  # one entry, under the merged key
    assert plan.actions.count('add table inet linuxnet_netns in the host') == 1


def test_forwarding_isolate_drops_within_each_prefix_ahead_of_the_scope():
    kernel = FakeKernel()
    kernel.ns(None).proc.update({PATH4: True})
    nets = ['10.200.3.0/24', '10.200.7.0/24']
    scoped = {'ipv4': True, 'restrict_to': nets}
    kernel.forward_scope(None, nets)
    plan, result = kernel.plan_kind('forwarding', [dict(scoped, isolate=True)])
    assert result == [{'netns': None, 'ipv4': True, 'restrict_to': nets, 'isolate': True}]
    # the scope is rewritten as a whole (in one transaction), the drops within each prefix first
    assert [line for line in plan.actions if line.startswith('add rule')] == [
        'add rule inet linuxnet_netns forward ip saddr %s ip daddr %s drop comment "linuxnet:fwd-isolate %s" in the '
        'host' % (net, net, net) for net in nets] + [
        'add rule inet linuxnet_netns forward ip %s %s accept comment "linuxnet:fwd-%s %s" in the host' % (
            field, net, 'src' if field == 'saddr' else 'dst', net) for net in nets for field in ('saddr', 'daddr')] + [
        'add rule inet linuxnet_netns forward drop comment "linuxnet:fwd-drop" in the host']
    assert len([op for op in plan.ops if op.stage == P.NFT]) == 1
    diff = plan.diff()
    assert diff['after']['forward filter (host)']['chains']['forward']['rules'][:2] == [
        'ip saddr %s ip daddr %s drop comment "linuxnet:fwd-isolate %s"' % (net, net, net) for net in nets]
    assert 'isolate' not in str(diff['before'])
    # isolated already: nothing to do; isolate false (the default) takes the drops out again
    kernel = FakeKernel()
    kernel.ns(None).proc.update({PATH4: True})
    kernel.forward_scope(None, nets, isolate=True)
    unchanged(kernel.plan_kind('forwarding', [dict(scoped, isolate=True)])[0])
    plan, _result = kernel.plan_kind('forwarding', [scoped])
    assert not any('isolate' in line for line in plan.actions if line.startswith('add rule'))
    assert 'isolate' not in str(plan.diff()['after']) and 'fwd-isolate 10.200.7.0/24' in str(plan.diff()['before'])
    # forwarding settings without restrict_to leave the scope alone, isolation included
    unchanged(kernel.plan_kind('forwarding', [{'ipv4': True}])[0])
    # and restrict_to: [] takes it all out, with the table
    plan, _result = kernel.plan_kind('forwarding', [{'restrict_to': []}])
    assert plan.actions[-1] == 'delete table inet linuxnet_netns (no rules left in it) in the host'


def test_forwarding_isolate_needs_restrict_to():
    for spec, problem in (({'ipv4': True, 'isolate': True}, 'not set'),
                          ({'ipv4': True, 'restrict_to': [], 'isolate': True}, 'empty')):
        with pytest.raises(ValidationError, match=r"forwarding\[0\].isolate=True isolates the prefixes of "
                                                  r"restrict_to, and restrict_to is %s; list the prefixes" % problem):
            FakeKernel().plan_network(forwarding=[spec])


def test_forwarding_persist_file_diff():
    kernel = FakeKernel()
    kernel.ns(None).proc.update({PATH4: True})
    plan, _result = kernel.plan_network(forwarding=[{'ipv4': True, 'persist': True}])
    assert plan.actions == ['write /etc/sysctl.d/90-linuxnet-netns.conf']
    assert plan.diff()['after']['file /etc/sysctl.d/90-linuxnet-netns.conf'].endswith('net.ipv4.ip_forward = 1\n')
    kernel.files['/etc/sysctl.d/90-linuxnet-netns.conf'] = plan.diff()['after'][
        'file /etc/sysctl.d/90-linuxnet-netns.conf']
    unchanged(kernel.plan_network(forwarding=[{'ipv4': True, 'persist': True}])[0])


def test_forwarding_persist_file_of_someone_else_is_edited():
    kernel = FakeKernel()
    kernel.ns(None).proc.update({PATH4: True})
    conf = '/etc/sysctl.conf'
    kernel.files[conf] = '# mine\nvm.swappiness = 10\nnet.ipv4.ip_forward=0\n'
    wanted = [{'ipv4': True, 'persist': True, 'persist_file': conf}]
    plan, _result = kernel.plan_network(forwarding=wanted)
    assert plan.actions == ['edit /etc/sysctl.conf']
    assert plan.diff()['before']['file ' + conf] == kernel.files[conf]
    assert plan.diff()['after']['file ' + conf] == '# mine\nvm.swappiness = 10\nnet.ipv4.ip_forward=1\n'
    kernel.files[conf] = plan.diff()['after']['file ' + conf]
    unchanged(kernel.plan_network(forwarding=wanted)[0])


# ---- single modules, and the objects apart -------------------------------------------------------

@pytest.mark.parametrize('option, items', [
    ('namespaces', [{'name': 'ns1'}]),
    ('pairs', [LAB_PAIR]),
    ('routes', [{'netns': 'ns1', 'gateway': '10.0.0.1', 'state': 'absent'}]),
    ('bridges', [{'name': 'br0', 'state': 'absent'}]),
    ('masquerade', [{'source': '10.0.0.0/24', 'out_interface': 'eth0', 'state': 'absent'}]),
])
def test_single_modules_nothing_to_do(option, items):
    plan, result = lab().plan_kind(option, items)
    unchanged(plan)
    assert len(result) == len(items)


def test_the_read_state_is_never_changed_by_the_plan():
    kernel = lab()
    plan, reader = kernel.plan_network(namespaces=[{'name': 'ns2'}], bridges=[{'name': 'br0'}],
                                       pairs=[pair('vh', 'vn', master='br0', addresses=['10.0.0.9/24']),
                                              pair('x', 'y', b_ns='ns2', addresses=['10.3.0.1/24'])])
    state = reader.state(None)
    assert sorted(state.links) == ['lo', 'vh']
    assert [str(link.addresses[0]) for link in state.links.values() if link.addresses] == ['10.0.0.1/24']
    assert sorted(str(a.iface) for a in reader.view(None).addresses) == ['10.0.0.9/24', '10.3.0.1/24']
    assert sorted(reader.view(None).links) == ['br0', 'lo', 'vh', 'x']
    assert reader.view(None).links['vh'].alias == OWNER_ALIAS


def test_diff_tracker_add_forget_merge():
    one, two = P.Diff(), P.Diff()
    one.add('a', 1, 1)
    assert not one.changed
    one.add('a', 1, 2)
    one.add('b', None, 3)
    two.add('c', 4, None)
    one.merge(two)
    assert one.changed and one.get() == {'before': {'a': 1, 'c': 4}, 'after': {'a': 2, 'b': 3}}
    one.forget('a')
    assert one.before == {'b': None, 'c': 4} and one.after == {'b': 3, 'c': None}


def test_veth_with_both_ends_in_one_namespace():
    kernel = FakeKernel()
    plan, _result = kernel.plan_network(pairs=[pair('l1', 'l2', b_ns=None)])
    assert plan.actions[0] == 'create veth l1 in the host with peer l2 in the host'
    kernel.veth(None, 'l1', None, 'l2')
    unchanged(kernel.plan_network(pairs=[pair('l1', 'l2', b_ns=None)])[0])


def test_veth_ends_that_name_each_other_under_another_nsid_are_not_a_pair():
    kernel = lab()
    kernel.netns('ns2')
    kernel.nsids[(None, 'ns1')] = 7  # the host's vh names its peer under nsid 0, which is no longer ns1
    with pytest.raises(PlanError, match='not as the peer of vn in netns ns1'):
        kernel.plan_network(pairs=[LAB_PAIR])


def test_ipv6_route_defaults_to_metric_1024_and_finds_its_own():
    kernel = FakeKernel()
    kernel.netns('ns1')
    kernel.veth(None, 'vh', 'ns1', 'vn', addresses_b=['fd00::2/64'])
    plan, _result = kernel.plan_network(routes=[{'netns': 'ns1', 'gateway': 'fd00::1'}])
    assert plan.actions == ['add route ns1 default (IPv6) metric 1024 via fd00::1']
    kernel.route('ns1', '::/0', gateway='fd00::1', metric=1024)
    unchanged(kernel.plan_network(routes=[{'netns': 'ns1', 'gateway': 'fd00::1'}])[0])


def test_removing_a_namespace_waits_for_the_host_ends_of_its_veths_only():
    kernel = lab()
    kernel.netns('ns2')
    kernel.veth(None, 'wh', 'ns2', 'wn')
    plan, reader = kernel.plan_network(namespaces=[{'name': 'ns1', 'state': 'absent'}, {'name': 'ns2'}])
    wait = [op for op in plan.ops if op.stage == P.NETNS_DELETE + 1]
    assert len(wait) == 1 and reader.removed_ids(None) == {0}
    host = kernel.ns(None)
    assert wait[0].call.__self__.host_peers == {host.find('vh').index}  # not wh: ns2 stays
