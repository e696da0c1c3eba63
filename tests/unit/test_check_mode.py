"""Check mode across tasks, on the fake kernel: under --check an earlier task of the play has made
nothing, so what a planner would refuse for its absence - a namespace, a master bridge, a route's
dev, an address in the gateway's subnet, port_publish's target namespace - is assumed instead, with
a warning naming it, and the plan is the one the task makes once the earlier task has run. A real
run refuses each with the message it always had. (Kernel side: tests/integration/test_tutorial.py.)"""
import pytest

from ansible_collections.linuxnet.netns.plugins.module_utils import _kind_publish, _kind_route, _kind_veth
from ansible_collections.linuxnet.netns.plugins.module_utils import _plan as P
from ansible_collections.linuxnet.netns.plugins.module_utils._common import PlanError

from ansible_collections.linuxnet.netns.tests.unit.fakekernel import FakeKernel

TUTORIAL = [  # playbooks/tutorial.yml, task by task: (list option of the single module, its item)
    ('namespaces', {'name': 'ns1'}),
    ('pairs', {'name': 'veth-host', 'addresses': ['10.0.0.1/24'],
               'peer': {'name': 'veth-ns1', 'netns': 'ns1', 'addresses': ['10.0.0.2/24']}}),
    ('routes', {'netns': 'ns1', 'gateway': '10.0.0.1'}),
    ('forwarding', {'ipv4': True}),
    ('masquerade', {'source': '10.0.0.0/24', 'out_interface': 'eth0'}),
]
FORWARD4 = '/proc/sys/net/ipv4/ip_forward'


def tutorial_after(tasks):
    """The fake kernel as the first `tasks` tasks of the tutorial leave it."""
    kernel = FakeKernel()
    kernel.ns(None).proc[FORWARD4] = False
    if tasks >= 1:
        kernel.netns('ns1')
    if tasks >= 2:
        kernel.veth(None, 'veth-host', 'ns1', 'veth-ns1', addresses_a=['10.0.0.1/24'], addresses_b=['10.0.0.2/24'])
    return kernel


def test_the_tutorial_checked_on_a_fresh_host_predicts_each_task_of_the_real_run():
    fresh = tutorial_after(0)
    warnings = []
    for index, (option, item) in enumerate(TUTORIAL):
        checked, _result = fresh.plan_kind(option, [item], check_mode=True)
        real, _result = tutorial_after(index).plan_kind(option, [item])
        assert checked.changed and checked.actions == real.actions, TUTORIAL[index]
        assert checked.diff() == real.diff()
        assert real.warnings == []
        warnings.append(checked.warnings)
    assert warnings == [
        [],
        ["check mode: netns ns1 does not exist; assumed created by an earlier task (pairs[0].peer.netns='ns1')"],
        ["check mode: netns ns1 does not exist; assumed created by an earlier task (routes[0].netns='ns1')",
         'check mode: gateway 10.0.0.1 is not in any subnet connected in netns ns1 (connected: none); assumed an '
         "earlier task adds an address in its subnet (routes[0].gateway='10.0.0.1')"],
        [], [],
    ]


def test_a_real_run_refuses_what_check_mode_assumes():
    fresh = FakeKernel()
    with pytest.raises(PlanError, match=r"^pairs\[0\].peer.netns='ns1': network namespace 'ns1' does not exist; "
                                        r"create it first with linuxnet.netns.netns$"):
        fresh.plan_kind(*TUTORIAL[1][:1], items=[TUTORIAL[1][1]])
    with pytest.raises(PlanError, match=r"^routes\[0\].netns='ns1': network namespace 'ns1' does not exist"):
        fresh.plan_kind('routes', [TUTORIAL[2][1]])
    with pytest.raises(PlanError, match=r"^routes\[0\].gateway='10.0.0.1' is not in any subnet connected  in netns "
                                        r"ns1 \(connected: none\); add an address"):
        tutorial_after(1).plan_kind('routes', [TUTORIAL[2][1]])


# ---- each kind of assumption: check mode plans as with the object there; a real run refuses ------

NAMESPACE_CASES = [
    ('pairs', {'name': 'vh', 'peer': {'name': 'vn', 'netns': 'ns9'}}, 'pairs[0].peer.netns'),
    ('pairs', {'name': 'vn', 'netns': 'ns9', 'peer': {'name': 'vh'}}, 'pairs[0].netns'),
    ('bridges', {'name': 'br0', 'netns': 'ns9', 'addresses': ['10.1.0.1/24']}, 'bridges[0].netns'),
    ('routes', {'netns': 'ns9', 'dest': '10.2.0.0/16', 'gateway': '10.2.0.1', 'onlink': True}, 'routes[0].netns'),
    ('masquerade', {'netns': 'ns9', 'source': '10.3.0.0/24', 'out_interface': 'eth0'}, 'masquerade[0].netns'),
    ('forwarding', {'netns': 'ns9', 'ipv4': True}, 'forwarding[0].netns'),
]


@pytest.mark.parametrize('option, item, param', NAMESPACE_CASES, ids=[c[2] for c in NAMESPACE_CASES])
def test_a_missing_namespace_is_assumed_made_and_empty(option, item, param):
    checked, checked_result = FakeKernel().plan_kind(option, [item], check_mode=True)
    assert checked.warnings == [
        "check mode: netns ns9 does not exist; assumed created by an earlier task (%s='ns9')" % param]
    made = FakeKernel()  # what the earlier task leaves: the namespace, empty but for lo
    made.netns('ns9')
    made.ns('ns9').proc[FORWARD4] = False
    real, real_result = made.plan_kind(option, [item])
    assert checked.changed and checked.actions == real.actions
    assert checked_result == real_result
    with pytest.raises(PlanError, match=r"^%s='ns9': network namespace 'ns9' does not exist; create it first" % (
            param.replace('[', r'\[').replace(']', r'\]'))):
        FakeKernel().plan_kind(option, [item])


def test_a_namespace_is_assumed_once_and_later_planners_of_the_run_see_it():
    plan, reader = FakeKernel().plan_network(
        check_mode=True,
        pairs=[{'name': 'a1', 'peer': {'name': 'b1', 'netns': 'ns9', 'addresses': ['10.4.0.2/24']}},
               {'name': 'a2', 'peer': {'name': 'b2', 'netns': 'ns9'}}],
        routes=[{'netns': 'ns9', 'gateway': '10.4.0.1'}])
    assert plan.warnings == [
        "check mode: netns ns9 does not exist; assumed created by an earlier task (pairs[0].peer.netns='ns9')"]
    assert reader.will_exist('ns9') and not reader.exists('ns9')
    # the route's gateway is connected by the address the same task puts into ns9: nothing assumed
    assert plan.actions[-1] == 'add route ns9 default via 10.4.0.1'


def test_what_the_same_task_removes_is_refused_in_check_mode_too():
    kernel = FakeKernel()
    kernel.netns('ns1')
    with pytest.raises(PlanError, match="'ns1' is declared absent in the same task"):
        kernel.plan_network(check_mode=True, namespaces=[{'name': 'ns1', 'state': 'absent'}],
                            routes=[{'netns': 'ns1', 'gateway': '10.0.0.1'}])
    with pytest.raises(PlanError, match='removed by purge in the same task'):
        kernel.plan_network(check_mode=True, namespaces=[], purge=True, routes=[{'netns': 'ns1', 'gateway': '10.0.0.1'}])
    kernel.bridge(None, 'br0')
    with pytest.raises(PlanError, match=r"master='br0': the same task removes it"):
        kernel.plan_network(check_mode=True, bridges=[{'name': 'br0', 'state': 'absent'}],
                            pairs=[{'name': 'vh', 'master': 'br0', 'peer': {'name': 'vn'}}])
    with pytest.raises(PlanError, match=r"dev='br0': no such interface in the host"):
        kernel.plan_network(check_mode=True, bridges=[{'name': 'br0', 'state': 'absent'}],
                            routes=[{'dest': '10.5.0.0/16', 'dev': 'br0'}])


def test_check_mode_still_refuses_what_no_earlier_task_can_fix():
    kernel = FakeKernel()
    kernel.link(None, 'dummy0', kind='dummy')
    with pytest.raises(PlanError, match="master='dummy0' is a dummy in the host, not a bridge"):
        kernel.plan_kind('pairs', [{'name': 'vh', 'master': 'dummy0', 'peer': {'name': 'vn'}}], check_mode=True)
    with pytest.raises(PlanError, match='not as the peer of'):
        kernel.plan_kind('pairs', [{'name': 'dummy0', 'peer': {'name': 'vn'}}], check_mode=True)


def test_a_missing_master_bridge_is_assumed_once():
    pairs = [{'name': 'vh1', 'master': 'br0', 'peer': {'name': 'vn1'}},
             {'name': 'vh2', 'master': 'br0', 'peer': {'name': 'vn2'}}]
    checked, _result = FakeKernel().plan_kind('pairs', pairs, check_mode=True)
    assert checked.warnings == ["check mode: bridge br0 does not exist in the host; assumed created by an earlier "
                                "task (pairs[0].master='br0')"]
    made = FakeKernel()
    made.bridge(None, 'br0')
    real, _result = made.plan_kind('pairs', pairs)
    assert checked.actions == real.actions
    assert 'attach vh2 to bridge br0 in the host' in checked.actions
    assert checked.diff() == real.diff()
    # the port's request names the bridge by its index, asked for at apply time like a bridge the run makes
    attach = next(op for op in checked.ops if op.stage == P.LINK_SET)
    assert attach.summary[0] == 'attach vh1 to bridge br0 in the host'
    with pytest.raises(PlanError, match=r"^pairs\[0\].master='br0': no interface of that name in the host; create "
                                        r"the bridge first \(linuxnet.netns.bridge\)$"):
        FakeKernel().plan_kind('pairs', pairs)


def test_a_missing_route_dev_is_assumed():
    route = {'dest': '10.6.0.0/16', 'dev': 'eth1', 'gateway': '10.7.0.1'}
    checked, checked_result = FakeKernel().plan_kind('routes', [route], check_mode=True)
    assert checked.warnings == [
        "check mode: interface eth1 does not exist in the host; assumed created by an earlier task "
        "(routes[0].dev='eth1')",
        'check mode: gateway 10.7.0.1 is not in any subnet connected to eth1 in the host (connected: none); assumed '
        "an earlier task adds an address in its subnet (routes[0].gateway='10.7.0.1')"]
    made = FakeKernel()
    made.link(None, 'eth1', kind='dummy', addresses=['10.7.0.2/24'])
    real, real_result = made.plan_kind('routes', [route])
    assert checked.actions == real.actions == ['add route (host) 10.6.0.0/16 via 10.7.0.1 dev eth1']
    assert checked.diff() == real.diff() and checked_result == real_result
    with pytest.raises(PlanError, match=r"^routes\[0\].dev='eth1': no such interface in the host$"):
        FakeKernel().plan_kind('routes', [route])


def test_a_gateway_outside_the_connected_subnets_is_assumed_connected():
    kernel = FakeKernel()
    kernel.link(None, 'eth1', kind='dummy', addresses=['192.0.2.2/24'])
    route = {'dest': '10.8.0.0/16', 'gateway': '10.9.0.1'}
    checked, _result = kernel.plan_kind('routes', [route], check_mode=True)
    assert checked.warnings == [
        'check mode: gateway 10.9.0.1 is not in any subnet connected in the host (connected: 192.0.2.0/24); assumed '
        "an earlier task adds an address in its subnet (routes[0].gateway='10.9.0.1')"]
    assert checked.actions == ['add route (host) 10.8.0.0/16 via 10.9.0.1']
    with pytest.raises(PlanError, match=r"^routes\[0\].gateway='10.9.0.1' is not in any subnet connected  in the "
                                        r"host \(connected: 192.0.2.0/24\); add an address in that subnet first"):
        kernel.plan_kind('routes', [route])


PORT = {'host_port': 8080, 'target_netns': 'web', 'target_port': 80}


def test_a_missing_target_namespace_is_assumed_and_its_port_planned_without_its_address():
    checked, result = FakeKernel().plan_kind('publish', [PORT], check_mode=True)
    assert checked.warnings == [
        "check mode: netns web does not exist; assumed created by an earlier task (publish[0].target_netns='web')",
        "check mode: netns web has no IPv4 address to publish to; assumed an earlier task adds one "
        "(publish[0].target_netns='web'), so the rules of published port tcp 0.0.0.0:8080 in the host cannot name "
        "their target yet"]
    # the rules name the target's address, which only the earlier task gives: one action says so
    assert checked.changed and checked.actions == [
        'publish tcp 0.0.0.0:8080 in the host to port 80 of the IPv4 address of netns web (not known in check mode)']
    assert result[0]['target'] is None and result[0]['target_netns'] == 'web'
    assert checked.diff()['after'] == {'published port tcp 0.0.0.0:8080 in the host': {
        'target_netns': 'web', 'target_port': '80'}}
    with pytest.raises(AssertionError, match='check mode only'):
        checked.ops[0].call(None)  # never applied: a real run has the address, or refuses
    with pytest.raises(PlanError, match=r"^publish\[0\].target_netns='web': network namespace 'web' does not exist "
                                        r"and the task does not create it$"):
        FakeKernel().plan_kind('publish', [PORT])


def test_a_target_namespace_without_an_address_is_assumed_addressed():
    kernel = FakeKernel()
    kernel.netns('web')
    checked, _result = kernel.plan_kind('publish', [PORT], check_mode=True)
    assert [w.split(';')[0] for w in checked.warnings] == ['check mode: netns web has no IPv4 address to publish to']
    with pytest.raises(PlanError, match=r"^publish\[0\].target_netns='web': the namespace has no IPv4 address to "
                                        r"publish to; address it first"):
        kernel.plan_kind('publish', [PORT])


def test_a_single_modules_top_level_parameters_are_named_without_a_dot():
    # a single module's top-level object has the path '' (its options are `name`, `peer.netns`...)
    reader, plan = FakeKernel().reader(), P.Plan(assume_missing=True)
    _kind_veth.plan_veths(plan, reader, [_kind_veth.VethPair(
        {'name': 'vh', 'master': 'br0', 'peer': {'name': 'vn', 'netns': 'ns9'}}, '')])
    _kind_route.plan_routes(plan, reader, [_kind_route.RouteSpec(
        {'netns': 'ns8', 'dest': '10.6.0.0/16', 'dev': 'eth1', 'gateway': '10.7.0.1'}, '')])
    _kind_publish.plan_publish(plan, reader, [_kind_publish.Publish(PORT, '')])
    assert [warning.split(' (')[-1] for warning in plan.warnings] == [
        "peer.netns='ns9')", "master='br0')", "netns='ns8')", "dev='eth1')", "gateway='10.7.0.1')",
        "target_netns='web')", "target_netns='web'), so the rules of published port tcp 0.0.0.0:8080 in the host "
        "cannot name their target yet"]
