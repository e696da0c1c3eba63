"""Published ports (_kind_publish) without a kernel: the comment parsers, and the planner on the fake
kernel (fakekernel.py) - targets and their resolution, idempotence, conflicts, replace, absent,
purge, localhost, hairpin, stale UDP conntrack, listeners, other tables' forward-drop chains. The
rules' encoding against pyroute2 is in codec_cases.py; what only traffic shows, in
tests/integration/test_publish.py."""
import ipaddress
import re
import socket

import pytest

from ansible_collections.linuxnet.netns.plugins.module_utils import _codec as C
from ansible_collections.linuxnet.netns.plugins.module_utils import _info, _kinds, _nft_plan, _nft_state
from ansible_collections.linuxnet.netns.plugins.module_utils import _kind_publish as PUB
from ansible_collections.linuxnet.netns.plugins.module_utils import _plan as P
from ansible_collections.linuxnet.netns.plugins.module_utils._common import PlanError, ValidationError
from ansible_collections.linuxnet.netns.plugins.module_utils._nft_codec import NFPROTO_INET, NFPROTO_IPV4, NFPROTO_IPV6
from ansible_collections.linuxnet.netns.plugins.module_utils._nft_rules import COMMENT_PREFIX, spec_from_comment
from ansible_collections.linuxnet.netns.plugins.module_utils import _nft_rules

from ansible_collections.linuxnet.netns.tests.unit.codec_cases import PUBLISHED, SHARED
from ansible_collections.linuxnet.netns.tests.unit.fakekernel import PARSERS, FakeKernel

LOCALNET = '/proc/sys/net/ipv4/conf/%s/route_localnet'
PATH4 = '/proc/sys/net/ipv4/ip_forward'


# ---- the comments -----------------------------------------------------------------------------------

def _same(back, spec):
    assert (back.chain, back.comment, back.key, back.head, back.text, back.canonical()) == (
        spec.chain, spec.comment, spec.key, spec.head, spec.text, spec.canonical())
    assert spec_from_comment(spec.comment, spec.canonical(), PARSERS) == spec
    # as the state reader sees the rule the kernel lists: ours, verified, named by its key
    rule = _nft_state.RuleInfo(spec.chain, 7, spec.comment, spec.canonical(), PARSERS)
    assert rule.verified and rule.key == spec.key


@pytest.mark.parametrize('args', [args for _name, args in PUBLISHED], ids=[name for name, _args in PUBLISHED])
def test_each_port_comment_rebuilds_its_rule(args):
    rules = PUB.port_rules(*args)
    assert sorted(rules) == sorted(PUB.PORT_WORDS)
    for word, spec in rules.items():
        assert spec.comment.startswith('%s%s %s ' % (COMMENT_PREFIX, word, args[0]))
        assert spec.key == ' '.join(spec.comment.split(' ')[:3])
        _same(PUB.parse_comment(word)(spec.comment[len(COMMENT_PREFIX + word) + 1:]), spec)
    assert rules['pub-out'].comment.endswith(' localhost') == (len(args) > 5 and args[5])


@pytest.mark.parametrize('term', [
    _nft_rules.MatchPort('tcp', 'dport', 80), _nft_rules.MatchPort('udp', 'sport', 65535),
    _nft_rules.MatchPort('tcp', 'dport', 1), _nft_rules.MatchPort('udp', 'dport', _nft_rules.MatchPort.STAND_IN),
    _nft_rules.Dnat('10.0.0.2', 8080), _nft_rules.Dnat('fd00::5', 1), _nft_rules.Dnat('255.255.255.254', 65535),
    _nft_rules.Dnat(_nft_rules.Dnat.STAND_IN[4], _nft_rules.Dnat.STAND_IN_PORT),
    _nft_rules.Dnat('2001:db8::5aa5', _nft_rules.Dnat.STAND_IN_PORT),
], ids=lambda term: term.text)
def test_a_term_spliced_into_its_template_encodes_as_in_full(term):
    """A port's and a target's bytes put into the encoding made once per kind of term are the
    bytes the term encodes to on its own - the stand-in values themselves too."""
    full = _nft_rules.expressions_raw(term.expressions())
    assert term.raw() == full
    assert term.raw() == full  # from the template made by the first call
    template = _nft_rules._ENCODED[('splice', term.__class__.__name__, term.splice_key())]
    assert template[1] is not None and len(template[1]) == len(term.splice_values())


@pytest.mark.parametrize('spec', [spec for _name, spec in SHARED], ids=[name for name, _spec in SHARED])
def test_each_shared_comment_rebuilds_its_rule(spec):
    word, _sep, args = spec.comment[len(COMMENT_PREFIX):].partition(' ')
    assert word in PUB.SHARED_WORDS
    _same(PUB.parse_comment(word)(args), spec)


def test_the_rules_of_one_port_and_the_ones_ports_share():
    rules = PUB.port_rules('tcp', ipaddress.ip_address('0.0.0.0'), 8080, ipaddress.ip_address('10.0.0.2'), 80)
    assert dict((word, (spec.chain, spec.head, spec.text)) for word, spec in rules.items()) == {
        'pub': ('prerouting', False, 'fib daddr type local meta nfproto ipv4 tcp dport 8080 dnat ip to 10.0.0.2:80 '
                                     'comment "linuxnet:pub tcp 0.0.0.0:8080 10.0.0.2:80"'),
        'pub-out': ('output', False, 'fib daddr type local ip daddr != 127.0.0.0/8 tcp dport 8080 dnat ip to '
                                     '10.0.0.2:80 comment "linuxnet:pub-out tcp 0.0.0.0:8080 10.0.0.2:80"')}
    # 127.0.0.1 too (localhost): the output rule does not leave out 127.0.0.0/8
    rules = PUB.port_rules('udp', ipaddress.ip_address('0.0.0.0'), 53, ipaddress.ip_address('10.0.0.2'), 5353, True)
    assert rules['pub-out'].text == ('fib daddr type local meta nfproto ipv4 udp dport 53 dnat ip to 10.0.0.2:5353 '
                                     'comment "linuxnet:pub-out udp 0.0.0.0:53 10.0.0.2:5353 localhost"')
    assert rules['pub'].comment == 'linuxnet:pub udp 0.0.0.0:53 10.0.0.2:5353'
    rules = PUB.port_rules('tcp', ipaddress.ip_address('fd00::1'), 443, ipaddress.ip_address('fd00:1::2'), 8443)
    assert rules['pub'].text == ('fib daddr type local ip6 daddr fd00::1 tcp dport 443 dnat ip6 to [fd00:1::2]:8443 '
                                 'comment "linuxnet:pub tcp [fd00::1]:443 [fd00:1::2]:8443"')
    shared = dict(SHARED)
    assert [(spec.chain, spec.head, spec.key, spec.text) for spec in (shared['hairpin-v4'], shared['localhost'])] == [
        ('postrouting', False, 'linuxnet:pub-nat 10.0.0.2',
         'ip saddr 10.0.0.0/24 ip daddr 10.0.0.2 ct status dnat masquerade comment "linuxnet:pub-nat 10.0.0.2 10.0.0.0/24"'),
        ('postrouting', False, 'linuxnet:pub-lo 10.0.0.2',
         'ip saddr 127.0.0.0/8 ip daddr 10.0.0.2 ct status dnat masquerade comment "linuxnet:pub-lo 10.0.0.2"')]
    address = ipaddress.ip_address('10.0.0.2')
    assert [(spec.chain, spec.head, spec.text) for spec in PUB.forward_rules(address)] == [
        ('forward', True, 'ip daddr 10.0.0.2 ct status dnat accept comment "linuxnet:pub-fwd-in 10.0.0.2"'),
        ('forward', True, 'ip saddr 10.0.0.2 ct status dnat accept comment "linuxnet:pub-fwd-out 10.0.0.2"')]
    # in an ip table no family check (iptables-nft lists it as -d T ... -j ACCEPT); in an inet one, one
    ip_table = PUB.forward_rules(address, 'pub-allow', NFPROTO_IPV4)[0]
    inet_table = PUB.forward_rules(address, 'pub-allow', NFPROTO_INET)[0]
    assert ip_table.comment == 'linuxnet:pub-allow-in 10.0.0.2' and ip_table.head
    assert len(inet_table.canonical()) == len(ip_table.canonical()) + 1


MALFORMED = [
    ('pub', 'tcp'),
    ('pub', 'tcp 0.0.0.0:80'),
    ('pub', 'sctp 0.0.0.0:80 10.0.0.2:80'),
    ('pub', 'tcp 0.0.0.0:80 [fd00::2]:80'),  # two families
    ('pub', 'tcp 0.0.0.0 10.0.0.2:80'),
    ('pub', 'tcp 0.0.0.0:http 10.0.0.2:80'),
    ('pub', 'tcp [fd00::1]80 [fd00::2]:80'),
    ('pub', 'tcp 0.0.0.0:80 10.0.0.2:80 extra'),
    ('pub-out', 'tcp 0.0.0.0:80 10.0.0.2:80 localhost extra'),
    ('pub-nat', '10.0.0.2'),  # no network
    ('pub-nat', '10.0.0.2 10.0.0.1/24'),  # host bits
    ('pub-nat', '10.0.0.2 fd00::/64'),  # two families
    ('pub-nat', 'nonsense 10.0.0.0/24'),
    ('pub-nat', 'tcp 0.0.0.0:80 10.0.0.2:80 10.0.0.0/24'),  # the earlier form
    ('pub-lo', 'fd00::2'),  # IPv4 only
    ('pub-lo', ''),
    ('pub-lo', '10.0.0.2 extra'),
    ('pub-fwd-in', 'tcp 0.0.0.0:80 10.0.0.2:80'),
    ('pub-fwd-out', ''),
]


@pytest.mark.parametrize('word, args', MALFORMED)
def test_malformed_comments_are_not_ours(word, args):
    with pytest.raises(ValueError):
        PUB.parse_comment(word)(args)
    comment = '%s%s %s' % (COMMENT_PREFIX, word, args)
    assert spec_from_comment(comment, (), PARSERS) is None
    rule = _nft_state.RuleInfo('prerouting', 7, comment, (), PARSERS)
    assert not rule.ours and rule.key == comment


@pytest.mark.parametrize('args', ['tcp 0.0.0.0:70000 10.0.0.2:80', 'tcp 0.0.0.0:80 10.0.0.2:-1'])
def test_a_comment_with_a_port_out_of_range_is_not_ours(args):
    comment = '%spub %s' % (COMMENT_PREFIX, args)
    rule = _nft_state.RuleInfo('prerouting', 7, comment, (), PARSERS)
    assert not rule.ours


# ---- the planner ------------------------------------------------------------------------------------

def lab():
    """The host with a bridge br0 (10.0.0.1/24, fd00::1/64) and, on it, ns1 (vn: 10.0.0.2/24,
    fd00::2/64) and ns2 (wn: 10.0.0.3/24); ns3 over a point-to-point pair (ph 10.1.0.1/24 -
    pn 10.1.0.2/24)."""
    kernel = FakeKernel()
    for name in ('ns1', 'ns2', 'ns3'):
        kernel.netns(name)
    kernel.bridge(None, 'br0', addresses=['10.0.0.1/24', 'fd00::1/64'])
    kernel.veth(None, 'vh', 'ns1', 'vn', master='br0', addresses_b=['10.0.0.2/24', 'fd00::2/64'])
    kernel.veth(None, 'wh', 'ns2', 'wn', master='br0', addresses_b=['10.0.0.3/24'])
    kernel.veth(None, 'ph', 'ns3', 'pn', addresses_a=['10.1.0.1/24'], addresses_b=['10.1.0.2/24'])
    return kernel


def changes(plan, ns=None):
    """[(what, comment)] of the nf_tables changes planned for `ns`, in transaction order."""
    entry = plan.nft_transactions.get(ns)
    out = []
    for change in entry.merged if entry else ():
        if isinstance(change, (_nft_plan.AddRule, _nft_plan.InsertForeignRule)):
            out.append(('add' if isinstance(change, _nft_plan.AddRule) else 'insert %s %s' % (
                change.table, change.chain), change.spec.comment))
        elif isinstance(change, (_nft_plan.DeleteRule, _nft_plan.DeleteForeignRule)):
            out.append(('delete' if isinstance(change, _nft_plan.DeleteRule) else 'delete %s %s' % (
                change.table, change.chain), change.rule.comment))
    return out


def added(plan, ns=None):
    return sorted(comment for what, comment in changes(plan, ns) if what == 'add')


def deleted(plan, ns=None):
    return sorted(comment for what, comment in changes(plan, ns) if what == 'delete')


def port(protocol, listen, host_port, target, target_port, localhost=False):
    """The comments of one port's two rules."""
    return sorted(spec.comment for spec in PUB.port_rules(
        protocol, ipaddress.ip_address(listen), host_port, ipaddress.ip_address(target), target_port, localhost).values())


def nat(target, network):
    return '%spub-nat %s %s' % (COMMENT_PREFIX, target, network)


def lo(target):
    return '%spub-lo %s' % (COMMENT_PREFIX, target)


def fwd(target, word='pub-fwd'):
    """The two scoped accepts for what the host translated to `target` (our forward chain; with
    word pub-allow, another table's)."""
    return ['%s%s-in %s' % (COMMENT_PREFIX, word, target), '%s%s-out %s' % (COMMENT_PREFIX, word, target)]


def allow(target):
    return fwd(target, 'pub-allow')


def unchanged(plan):
    assert plan.ops == [] and not plan.changed and plan.actions == [] and plan.warnings == []
    assert plan.diff() == {'before': {}, 'after': {}}


def converge(kernel, plan):
    """What applying `plan` leaves for the next run: its rules, and the hairpin it sets."""
    kernel.apply_nft(plan)
    for key, value in plan.diff()['after'].items():
        if key.startswith('bridge port (host) ') and value is True and not key.endswith(')'):
            kernel.ns(None).find(key.rsplit(' ', 1)[1]).hairpin = True


WEB = {'host_port': 8080, 'target_port': 80}
WEB_RULES = port('tcp', '0.0.0.0', 8080, '10.0.0.2', 80)


def test_publish_to_a_target_address_and_to_target_netns_is_the_same():
    kernel = lab()
    by_address, result = kernel.plan_kind('publish', [dict(WEB, target='10.0.0.2')])
    assert added(by_address) == sorted(WEB_RULES + fwd('10.0.0.2') + [nat('10.0.0.2', '10.0.0.0/24')])
    assert result == [{'netns': None, 'protocol': 'tcp', 'host_address': None, 'host_port': '8080',
                       'target_port': '80', 'localhost': False, 'state': 'present', 'target_netns': None,
                       'target': '10.0.0.2'}]
    by_netns, result = kernel.plan_kind('publish', [dict(WEB, target_netns='ns1')])
    assert added(by_netns) == added(by_address)
    assert result[0]['target'] == '10.0.0.2' and result[0]['target_netns'] == 'ns1'
    assert [op.stage for op in by_netns.ops] == [P.LINK_SET + 1, P.NFT]  # the bridge port's hairpin, the rules
    after = by_netns.diff()['after']
    assert after['bridge port (host) br0 hairpin vh'] is True
    assert sorted(after['published ports (host)']['chains']) == ['forward', 'output', 'postrouting', 'prerouting']
    assert sorted(after['published ports (host)']['chains']['forward']['rules']) == [
        'ip daddr 10.0.0.2 ct status dnat accept comment "linuxnet:pub-fwd-in 10.0.0.2"',
        'ip saddr 10.0.0.2 ct status dnat accept comment "linuxnet:pub-fwd-out 10.0.0.2"']


def test_target_netns_takes_the_family_asked_and_refuses_a_namespace_without_one():
    kernel = lab()
    plan, result = kernel.plan_kind('publish', [dict(WEB, target_netns='ns1', family='ipv6')])
    assert result[0]['target'] == 'fd00::2'
    assert added(plan) == sorted(port('tcp', '::', 8080, 'fd00::2', 80) + fwd('fd00::2') + [nat('fd00::2', 'fd00::/64')])
    with pytest.raises(PlanError, match=r"publish\[0\].target_netns='ns2': the namespace has no IPv6 address"):
        kernel.plan_kind('publish', [dict(WEB, target_netns='ns2', family='ipv6')])
    with pytest.raises(PlanError, match=r"publish\[0\].target_netns='ns9': network namespace 'ns9' does not exist "
                                        r"and the task does not create it"):
        kernel.plan_kind('publish', [dict(WEB, target_netns='ns9')])
    with pytest.raises(ValidationError, match='is IPv6 but host_address=.192.0.2.1. is IPv4'):
        kernel.plan_kind('publish', [dict(WEB, target='fd00::2', host_address='192.0.2.1')])
    with pytest.raises(ValidationError, match='give exactly one'):
        kernel.plan_kind('publish', [dict(WEB, target='10.0.0.2', target_netns='ns1')])


def test_target_netns_resolves_to_the_address_the_same_task_adds():
    kernel = lab()
    pair = {'name': 'xh', 'master': 'br0', 'peer': {'name': 'xn', 'netns': 'ns9', 'addresses': ['10.0.0.9/24']}}
    plan, _reader = kernel.plan_network(namespaces=[{'name': 'ns9'}], pairs=[pair],
                                        publish=[dict(WEB, target_netns='ns9')])
    assert added(plan) == sorted(port('tcp', '0.0.0.0', 8080, '10.0.0.9', 80) + fwd('10.0.0.9') + [nat('10.0.0.9', '10.0.0.0/24')])
    # the bridge port is made by this run: its hairpin is set once it exists
    assert 'set hairpin on for the port of br0 that leads to 10.0.0.9 (xn in netns ns9)' in plan.actions
    # an address on a namespace's lo is no target
    kernel.ns('ns3').addresses.insert(0, C.Address(kernel.ns('ns3').find('lo').index, socket.AF_INET,
                                                   ipaddress.ip_address('10.9.9.9').packed, 32))
    _plan, result = kernel.plan_kind('publish', [dict(WEB, target_netns='ns3')])
    assert result[0]['target'] == '10.1.0.2'


def test_the_same_mapping_again_is_no_change():
    kernel = lab()
    items = [dict(WEB, target_netns='ns1'), {'host_port': '5000-5002', 'target': '10.1.0.2', 'protocol': 'udp'},
             {'host_port': 8443, 'host_address': 'fd00::1', 'target': 'fd00::2', 'target_port': 443}]
    plan, _result = kernel.plan_kind('publish', items)
    # two rules a port; two forward accepts and a masquerade per target (each on a network of the host)
    assert len(added(plan)) == 5 * 2 + 3 * 2 + 3
    converge(kernel, plan)
    unchanged(kernel.plan_kind('publish', items)[0])
    unchanged(kernel.plan_network(publish=items)[0])
    # target_netns or the address it resolves to: the same rules
    unchanged(kernel.plan_kind('publish', [dict(WEB, target='10.0.0.2')])[0])


def test_a_port_declared_twice_in_one_task_is_refused():
    kernel = lab()
    with pytest.raises(ValidationError, match=r"publish\[1\]='tcp 0.0.0.0:8080 in the host' is declared twice"):
        kernel.plan_network(publish=[dict(WEB, target='10.0.0.2'), dict(WEB, target='10.0.0.3')])
    refused = [
        # the single module's list: the same port to two targets
        [dict(WEB, target='10.0.0.2'), dict(WEB, target='10.0.0.3')],
        # a range that holds a port declared on its own
        [{'host_port': '8000-8100', 'target': '10.0.0.2'}, dict(WEB, target='10.0.0.3')],
        # every address of the host, and one of them
        [dict(WEB, target='10.0.0.2'), dict(WEB, target='10.0.0.3', host_address='10.0.0.1')],
    ]
    for items in refused:
        with pytest.raises(ValidationError, match=r"publish\[1\].host_port=.* tcp [.0-9]*:8080 is also declared by "
                                                  r"publish\[0\] \(published port tcp "):
            kernel.plan_kind('publish', items)
    # other protocols, families and addresses are other ports
    plan, _result = kernel.plan_kind('publish', [
        dict(WEB, target='10.0.0.2'), dict(WEB, target='10.0.0.3', protocol='udp'), dict(WEB, target='fd00::2'),
        dict(WEB, host_port=8081, target='10.0.0.2', host_address='192.0.2.1'),
        dict(WEB, host_port=8081, target='10.0.0.3', host_address='192.0.2.2')])
    assert len([comment for comment in added(plan) if comment.split(' ')[0] in ('linuxnet:pub', 'linuxnet:pub-out')]) \
        == 5 * 2
    with pytest.raises(ValidationError, match='is a range of 3 ports, host_port'):
        kernel.plan_kind('publish', [{'host_port': '8000-8001', 'target_port': '80-82', 'target': '10.0.0.2'}])


def test_a_port_published_to_another_target_is_refused_unless_replaced():
    kernel = lab()
    converge(kernel, kernel.plan_kind('publish', [dict(WEB, target='10.0.0.2')])[0])
    for item in (dict(WEB, target='10.0.0.3'), dict(WEB, target='10.0.0.2', target_port=81),
                 dict(WEB, target='10.0.0.3', host_address='10.0.0.1')):
        with pytest.raises(PlanError, match=r"publish\[0\]: tcp 0.0.0.0:8080 is already published to 10.0.0.2:80 by "
                                            r"this collection \(by another task\); set replace: true"):
            kernel.plan_kind('publish', [item])
    # replaced: the port's rules, and the masquerade of a target no port goes to any more
    plan, _result = kernel.plan_kind('publish', [dict(WEB, target='10.0.0.3', replace=True)])
    assert deleted(plan) == sorted(WEB_RULES + fwd('10.0.0.2') + [nat('10.0.0.2', '10.0.0.0/24')])
    assert added(plan) == sorted(port('tcp', '0.0.0.0', 8080, '10.0.0.3', 80) + fwd('10.0.0.3') +
                                 [nat('10.0.0.3', '10.0.0.0/24')])
    # another address takes over every address's port: the wildcard's rules go
    plan, _result = kernel.plan_kind('publish', [dict(WEB, target='10.0.0.2', host_address='10.0.0.1', replace=True)])
    assert deleted(plan) == WEB_RULES
    assert added(plan) == port('tcp', '10.0.0.1', 8080, '10.0.0.2', 80)
    converge(kernel, plan)
    unchanged(kernel.plan_kind('publish', [dict(WEB, target='10.0.0.2', host_address='10.0.0.1')])[0])


def test_state_absent_removes_that_port_and_what_no_other_port_needs():
    kernel = lab()
    converge(kernel, kernel.plan_kind('publish', [
        dict(WEB, target='10.0.0.2', localhost=True), {'host_port': 8081, 'target': '10.0.0.2'},
        dict(WEB, target='10.0.0.3', protocol='udp'), dict(WEB, target='fd00::2')])[0])
    kernel.masquerade(None, '10.0.0.0/24', 'eth0')
    plan, result = kernel.plan_kind('publish', [{'host_port': 8080, 'state': 'absent'}])
    # 10.0.0.2 keeps a port (8081): its masquerade stays; no port to it has localhost any more
    assert deleted(plan) == sorted(port('tcp', '0.0.0.0', 8080, '10.0.0.2', 80, localhost=True) + [lo('10.0.0.2')])
    assert added(plan) == [] and result[0]['state'] == 'absent' and result[0]['target'] is None
    assert not any(op.stage == P.CONNTRACK for op in plan.ops)
    plan, _result = kernel.plan_kind('publish', [{'host_port': 8080, 'state': 'absent', 'protocol': 'udp'},
                                                 {'host_port': 8080, 'state': 'absent', 'family': 'ipv6'}])
    assert deleted(plan) == sorted(port('udp', '0.0.0.0', 8080, '10.0.0.3', 80) + port('tcp', '::', 8080, 'fd00::2', 80)
                                   + fwd('10.0.0.3') + fwd('fd00::2')
                                   + [nat('10.0.0.3', '10.0.0.0/24'), nat('fd00::2', 'fd00::/64')])
    unchanged(kernel.plan_kind('publish', [{'host_port': 9999, 'state': 'absent'}])[0])
    unchanged(kernel.plan_kind('publish', [{'host_port': 8080, 'state': 'absent', 'host_address': '10.0.0.1'}])[0])


def test_the_last_port_going_takes_the_shared_rules_and_the_table_unless_other_rules_stay():
    kernel = lab()
    converge(kernel, kernel.plan_kind('publish', [dict(WEB, target='10.0.0.2')])[0])
    plan, _result = kernel.plan_kind('publish', [{'host_port': 8080, 'state': 'absent'}])
    assert deleted(plan) == sorted(WEB_RULES + fwd('10.0.0.2') + [nat('10.0.0.2', '10.0.0.0/24')])
    assert plan.actions[-1] == 'delete table inet linuxnet_netns (no rules left in it) in the host'
    kernel.masquerade(None, '10.0.0.0/24', 'eth0')
    plan, _result = kernel.plan_kind('publish', [{'host_port': 8080, 'state': 'absent'}])
    assert not any(line.startswith('delete table') for line in plan.actions)


# ---- many ports: actions a line a group, states a line each ------------------------------------------

def summary_of(plan, ns=None):
    """The summary lines NftPlan.lines() should give for `ns`'s transaction, derived here from its
    changes on their own: the published ports' rules grouped by verb, chain, reason, word, protocol
    and host address, with their number and their ports."""
    entry = plan.nft_transactions[ns]
    groups = {}
    for change in entry.merged:
        if isinstance(change, _nft_plan.AddRule):
            verb, chain, reason, comment = 'insert' if change.spec.head else 'add', change.spec.chain, '', change.spec.comment
        elif isinstance(change, _nft_plan.DeleteRule):
            verb, chain, comment = 'delete', change.rule.chain, change.rule.comment
            reason = ' (%s)' % _nft_plan.DeleteRule.REASONS[change.reason]
        else:
            continue
        if comment.split(' ')[0][len(COMMENT_PREFIX):] not in PUB.PORT_WORDS:
            continue
        word, protocol, endpoint = comment.split(' ')[:3]
        listen, port = endpoint.rsplit(':', 1)
        groups.setdefault((verb, chain, reason, word, protocol, listen), []).append(int(port))
    return groups


SUMMARY = re.compile(r'^(add|insert|delete) ([0-9]+) rules? inet linuxnet_netns ([a-z]+)( \([^)]*\))?: '
                     r'(linuxnet:[a-z-]+) (tcp|udp) (\S+):([0-9,-]+) in (the host|netns \S+)$')


def summaries(plan):
    return [line for line in plan.actions if SUMMARY.match(line)]


def told(plan, ns=None):
    """{(verb, chain, reason, word, protocol, listen): (count, ports)} of the summary lines of
    plan.actions for `ns`."""
    found = {}
    for line in summaries(plan):
        verb, count, chain, reason, word, protocol, listen, ports, where = SUMMARY.match(line).groups()
        if where == ('the host' if ns is None else 'netns ' + ns):
            found[(verb, chain, reason or '', word, protocol, listen)] = (int(count), ports)
    return found


def exact(plan, ns=None):
    """Every group of the transaction told once, with its exact number of rules and its ports."""
    groups = summary_of(plan, ns)
    assert told(plan, ns) == dict((key, (len(ports), _nft_plan.port_ranges(ports))) for key, ports in groups.items())
    return groups


MANY = [{'host_port': '20000-20099', 'target': '10.0.0.2'},  # one item, a hundred ports
        {'host_port': 20101, 'target_netns': 'ns2', 'target_port': 80},  # a gap, and another
        {'host_port': 20103, 'target_netns': 'ns2', 'target_port': 81},
        {'host_port': '5000-5009', 'protocol': 'udp', 'target': '10.0.0.3'},
        {'host_port': 9000, 'host_address': 'fd00::1', 'target': 'fd00::2'}]


def test_past_100_rules_of_ports_a_transaction_tells_them_a_line_a_group_exactly():
    kernel = lab()
    # 50 ports, 100 rules: a line each
    fifty = [{'host_port': 20000 + i, 'target_netns': 'ns%d' % (1 + i % 2), 'target_port': 80} for i in range(50)]
    plan, _result = kernel.plan_kind('publish', fifty)
    assert told(plan) == {} and len([line for line in plan.actions if line.startswith('add rule')]) == 100 + 2
    # 51: a line for each chain's
    plan, _result = kernel.plan_kind('publish', fifty + [{'host_port': 20050, 'target': '10.0.0.2'}])
    assert exact(plan) == {('add', 'prerouting', '', 'linuxnet:pub', 'tcp', '0.0.0.0'): list(range(20000, 20051)),
                           ('add', 'output', '', 'linuxnet:pub-out', 'tcp', '0.0.0.0'): list(range(20000, 20051))}
    plan, result = kernel.plan_kind('publish', MANY)
    assert exact(plan) and summaries(plan) == [
        'add 102 rules inet linuxnet_netns prerouting: linuxnet:pub tcp 0.0.0.0:20000-20099,20101,20103 in the host',
        'add 102 rules inet linuxnet_netns output: linuxnet:pub-out tcp 0.0.0.0:20000-20099,20101,20103 in the host',
        'add 10 rules inet linuxnet_netns prerouting: linuxnet:pub udp 0.0.0.0:5000-5009 in the host',
        'add 10 rules inet linuxnet_netns output: linuxnet:pub-out udp 0.0.0.0:5000-5009 in the host',
        'add 1 rule inet linuxnet_netns prerouting: linuxnet:pub tcp [fd00::1]:9000 in the host',
        'add 1 rule inet linuxnet_netns output: linuxnet:pub-out tcp [fd00::1]:9000 in the host']
    # the rules the ports share, and the table's and chains' changes, a line each as before
    shared = [line for line in plan.actions if not SUMMARY.match(line)]
    assert len(shared) == len(plan.actions) - 6 and all(
        'comment "linuxnet:pub-' in line for line in shared if line.startswith(('add rule', 'insert rule')))
    # three targets (ns2 is 10.0.0.3): their forward accepts and hairpin masquerades
    assert len([line for line in shared if line.startswith(('add rule', 'insert rule'))]) == 3 * 2 + 3
    # the diff shows every rule
    after = plan.diff()['after']['published ports (host)']['chains']
    assert len(after['prerouting']['rules']) == len(after['output']['rules']) == 113
    # check mode plans the same lines
    assert kernel.plan_kind('publish', MANY, check_mode=True)[0].actions == plan.actions
    converge(kernel, plan)
    # deleted, with their reason: a port going, and ports taken over by another target
    plan, _result = kernel.plan_kind('publish', [{'host_port': '20000-20059', 'state': 'absent'},
                                                 {'host_port': '20060-20099', 'target': '10.0.0.3', 'replace': True}])
    groups = exact(plan)
    assert groups[('delete', 'prerouting', ' (state absent)', 'linuxnet:pub', 'tcp', '0.0.0.0')] == list(range(20000, 20060))
    assert groups[('delete', 'output', ' (the declared rule differs; replaced)', 'linuxnet:pub-out', 'tcp', '0.0.0.0')] \
        == list(range(20060, 20100))
    assert groups[('add', 'prerouting', '', 'linuxnet:pub', 'tcp', '0.0.0.0')] == list(range(20060, 20100))
    assert kernel.plan_kind('publish', [{'host_port': '20000-20059', 'state': 'absent'},
                                        {'host_port': '20060-20099', 'target': '10.0.0.3', 'replace': True}],
                            check_mode=True)[0].actions == plan.actions


def test_through_network_too_and_in_a_namespace():
    kernel = lab()
    items = [{'host_port': '30000-30199', 'target': '10.0.0.2'}, {'host_port': 8080, 'netns': 'ns3', 'target': '10.1.0.1'}]
    plan, _result = kernel.plan_network(publish=items)
    assert list(exact(plan).values()) == [list(range(30000, 30200))] * 2
    # ns3's two rules are another transaction: a line each
    assert told(plan, 'ns3') == {} and len([line for line in plan.actions if line.endswith('in netns ns3')
                                            and 'tcp dport 8080' in line]) == 2


def test_port_range_text():
    assert _nft_plan.port_ranges([5, 1, 2, 3, 3, 9, 10, 65535]) == '1-3,5,9-10,65535'
    assert _nft_plan.port_ranges([80]) == '80'


def test_each_port_state_as_one_line():
    kernel = lab()
    _plan, states = kernel.plan_kind('publish', [
        dict(WEB, target_netns='ns1'), {'host_port': '9000-9001', 'target': 'fd00::2', 'host_address': 'fd00::1'},
        {'host_port': 8081, 'target': '10.0.0.2', 'localhost': True, 'protocol': 'udp'},
        {'host_port': 8082, 'target_netns': 'ns1', 'state': 'absent'}, {'host_port': 8083, 'state': 'absent'},
        {'host_port': 53, 'netns': 'ns3', 'target': '10.1.0.1', 'target_port': 5353}])
    assert PUB.compact_states(states) == {'port_lines': [
        'tcp *:8080 -> 10.0.0.2:80 (target_netns ns1)',
        'tcp [fd00::1]:9000-9001 -> [fd00::2]:9000-9001',
        'udp *:8081 -> 10.0.0.2:8081, also on 127.0.0.1',
        'absent: tcp *:8082 -> port 8082 of netns ns1',
        'absent: tcp *:8083 -> port 8083',
        'tcp *:53 -> 10.1.0.1:5353 in netns ns3']}
    # check mode, the address to be made by an earlier task
    kernel = lab()
    kernel.netns('ns4')
    _plan, states = kernel.plan_kind('publish', [dict(WEB, target_netns='ns4')], check_mode=True)
    assert PUB.compact_states(states) == {'port_lines': ['tcp *:8080 -> port 80 of netns ns4']}


def test_purge_removes_our_undeclared_ports_only():
    kernel = lab()
    converge(kernel, kernel.plan_kind('publish', [dict(WEB, target='10.0.0.2'),
                                                  {'host_port': 9000, 'target': '10.1.0.2'},
                                                  {'host_port': 9001, 'target': 'fd00::2'}])[0])
    kernel.masquerade(None, '10.0.0.0/24', 'eth0')
    user = kernel.nft_rule(None, PUB.port_rules('tcp', ipaddress.ip_address('0.0.0.0'), 7000,
                                                ipaddress.ip_address('10.0.0.3'), 70)['pub'], comment='a user rule')
    plan, _reader = kernel.plan_network(publish=[dict(WEB, target='10.0.0.2')], purge=True)
    assert deleted(plan) == sorted(port('tcp', '0.0.0.0', 9000, '10.1.0.2', 9000) + port('tcp', '::', 9001, 'fd00::2', 9001)
                                   + fwd('10.1.0.2') + fwd('fd00::2')
                                   + [nat('10.1.0.2', '10.1.0.0/24'), nat('fd00::2', 'fd00::/64')])
    assert added(plan) == [] and user.comment == 'a user rule'
    plan, _reader = kernel.plan_network(publish=[], purge=True, purge_match={'publish': ['10.1.0.0/16']})
    assert deleted(plan) == sorted(port('tcp', '0.0.0.0', 9000, '10.1.0.2', 9000) + fwd('10.1.0.2') +
                                   [nat('10.1.0.2', '10.1.0.0/24')])
    plan, _reader = kernel.plan_network(publish=[], purge=True)
    assert len(deleted(plan)) == 3 * 2 + 3 * 2 + 3 and not any(line.startswith('delete table') for line in plan.actions)
    # what the purge takes is named in the module's result
    assert sorted(obj.describe() for obj in PUB.purge_publish(kernel.reader(), [])) == [
        'published port tcp 0.0.0.0:8080 -> 10.0.0.2:80 in the host',
        'published port tcp 0.0.0.0:9000 -> 10.1.0.2:9000 in the host',
        'published port tcp [::]:9001 -> [fd00::2]:9001 in the host']


@pytest.mark.parametrize('how', ['absent', 'purge'])
def test_a_port_moves_from_one_address_to_all_in_one_task(how):
    kernel = lab()
    converge(kernel, kernel.plan_kind('publish', [dict(WEB, target='10.0.0.2', host_address='10.0.0.1')])[0])
    if how == 'absent':
        plan, _reader = kernel.plan_network(publish=[
            {'host_port': 8080, 'host_address': '10.0.0.1', 'state': 'absent'}, dict(WEB, target='10.0.0.2')])
    else:
        plan, _reader = kernel.plan_network(publish=[dict(WEB, target='10.0.0.2')], purge=True)
    assert deleted(plan) == port('tcp', '10.0.0.1', 8080, '10.0.0.2', 80)
    assert added(plan) == WEB_RULES


def test_localhost_needs_a_connected_target_and_route_localnet_on_the_interface_facing_it():
    kernel = lab()
    kernel.ns(None).proc[LOCALNET % 'br0'] = False
    plan, _result = kernel.plan_kind('publish', [dict(WEB, target='10.0.0.2', localhost=True)])
    assert added(plan) == sorted(port('tcp', '0.0.0.0', 8080, '10.0.0.2', 80, localhost=True) +
                                 fwd('10.0.0.2') + [nat('10.0.0.2', '10.0.0.0/24'), lo('10.0.0.2')])
    assert plan.actions[-1] == ('set net.ipv4.conf.br0.route_localnet = 1 in the host '
                                '(for published port tcp 0.0.0.0:8080 -> 10.0.0.2:80 in the host)')
    assert plan.diff()['before']['sysctl (host) net.ipv4.conf.br0.route_localnet'] is False
    # point to point: the host's end of the pair faces the target
    plan, _result = kernel.plan_kind('publish', [dict(WEB, target='10.1.0.2', localhost=True)])
    assert 'set net.ipv4.conf.ph.route_localnet = 1' in plan.actions[-1]
    converge(kernel, plan)
    kernel.ns(None).proc[LOCALNET % 'ph'] = True
    unchanged(kernel.plan_kind('publish', [dict(WEB, target='10.1.0.2', localhost=True)])[0])
    # the same port without localhost: its output rule changes and pub-lo goes; route_localnet stays on
    plan, _result = kernel.plan_kind('publish', [dict(WEB, target='10.1.0.2')])
    assert deleted(plan) == [lo('10.1.0.2'), 'linuxnet:pub-out tcp 0.0.0.0:8080 10.1.0.2:80 localhost']
    assert added(plan) == ['linuxnet:pub-out tcp 0.0.0.0:8080 10.1.0.2:80']
    assert not any('route_localnet' in line for line in plan.actions)
    with pytest.raises(PlanError, match=r"publish\[0\].localhost: the target 10.5.0.2 is not on a network of the host "
                                        r"\(it is reached through a router\)"):
        kernel.plan_kind('publish', [dict(WEB, target='10.5.0.2', localhost=True)])
    with pytest.raises(ValidationError, match='localhost=True is IPv4 only'):
        kernel.plan_kind('publish', [dict(WEB, target='fd00::2', localhost=True)])
    with pytest.raises(ValidationError, match="host_address='127.0.0.1' is a loopback address; set localhost: true"):
        kernel.plan_kind('publish', [dict(WEB, target='10.0.0.2', host_address='127.0.0.1')])


def test_hairpin_mode_only_on_a_bridge_port_and_only_once():
    kernel = lab()
    plan, _result = kernel.plan_kind('publish', [dict(WEB, target_netns='ns1'),
                                                 {'host_port': 8081, 'target_netns': 'ns1'}])
    assert [line for line in plan.actions if 'hairpin' in line] == [
        'set hairpin on for vh, the port of br0 that leads to 10.0.0.2']
    assert added(plan).count(nat('10.0.0.2', '10.0.0.0/24')) == 1  # one masquerade for both ports
    # point to point: no bridge, no hairpin mode; the masquerade of its own network stays
    plan, _result = kernel.plan_kind('publish', [dict(WEB, target_netns='ns3')])
    assert not any('hairpin' in line for line in plan.actions)
    assert nat('10.1.0.2', '10.1.0.0/24') in added(plan)
    # a target reached through a router: neither
    plan, _result = kernel.plan_kind('publish', [dict(WEB, target='10.5.0.2')])
    assert not any('hairpin' in line for line in plan.actions)
    assert added(plan) == sorted(port('tcp', '0.0.0.0', 8080, '10.5.0.2', 80) + fwd('10.5.0.2'))
    # a port already in hairpin mode
    kernel.ns(None).find('vh').hairpin = True
    plan, _result = kernel.plan_kind('publish', [dict(WEB, target_netns='ns1')])
    assert not any('hairpin' in line for line in plan.actions)


def test_a_udp_port_added_or_changed_flushes_its_conntrack_entries_after_the_rules():
    kernel = lab()
    item = {'host_port': '5353-5354', 'target': '10.0.0.2', 'protocol': 'udp'}
    plan, _result = kernel.plan_kind('publish', [item, dict(WEB, target='10.0.0.3')])
    flushes = [op for op in plan.ops if op.stage == P.CONNTRACK]
    assert [op.summary for op in flushes] == ['delete the conntrack entries of udp port 5353 (IPv4) in the host',
                                              'delete the conntrack entries of udp port 5354 (IPv4) in the host']
    assert max(op.stage for op in plan.ops if op.stage != P.CONNTRACK) == P.NFT < P.CONNTRACK
    converge(kernel, plan)
    unchanged(kernel.plan_kind('publish', [item])[0])
    plan, _result = kernel.plan_kind('publish', [dict(item, target='10.0.0.3', replace=True)])
    assert len([op for op in plan.ops if op.stage == P.CONNTRACK]) == 2
    plan, _result = kernel.plan_kind('publish', [dict(item, state='absent')])
    assert not any(op.stage == P.CONNTRACK for op in plan.ops)


def test_a_listener_on_the_port_is_named_when_the_port_is_published_only():
    kernel = lab()
    kernel.ns(None).listeners[('tcp', 4, 8080)] = [(4242, 'nginx'), (4243, 'nginx')]
    kernel.ns(None).listeners[('tcp', 6, 8080)] = []  # a socket no process of ours holds
    kernel.ns(None).listeners[('udp', 4, 8080)] = [(99, 'dnsmasq')]
    plan, _result = kernel.plan_kind('publish', [dict(WEB, target='10.0.0.2'), dict(WEB, target='fd00::2')])
    assert plan.warnings == [
        "publish[0]: tcp port 8080 (IPv4) is in use in the host by pid 4242 (nginx), pid 4243 (nginx); once published, "
        "connections to the host's addresses on it go to the target instead (127.0.0.1 stays the process's)",
        "publish[1]: tcp port 8080 (IPv6) is in use in the host by a process this run cannot see; once published, "
        "connections to the host's addresses on it go to the target instead"]
    assert kernel.listener_queries == [(None, [('tcp', 4, 8080), ('tcp', 6, 8080)])]
    converge(kernel, plan)
    unchanged(kernel.plan_kind('publish', [dict(WEB, target='10.0.0.2'), dict(WEB, target='fd00::2')])[0])
    assert len(kernel.listener_queries) == 1  # an unchanged run does not look
    plan, _result = kernel.plan_kind('publish', [{'host_port': 8080, 'state': 'absent'}])
    assert plan.warnings == [] and len(kernel.listener_queries) == 1
    plan, _result = kernel.plan_kind('publish', [dict(WEB, target='10.0.0.2', host_address='10.0.0.1', replace=True)])
    assert plan.warnings[0].endswith('connections to 10.0.0.1 on it go to the target instead '
                                     '(127.0.0.1 stays the process\'s)')


def test_in_a_namespace_the_task_creates_nothing_is_read():
    kernel = lab()
    pair = {'name': 'xh', 'netns': 'ns8', 'addresses': ['10.8.0.1/24'],
            'peer': {'name': 'xn', 'netns': 'ns9', 'addresses': ['10.8.0.2/24']}}
    plan, _reader = kernel.plan_network(namespaces=[{'name': 'ns8'}, {'name': 'ns9'}], pairs=[pair],
                                        publish=[dict(WEB, target_netns='ns9', netns='ns8', protocol='udp')])
    assert added(plan, 'ns8') == sorted(port('udp', '0.0.0.0', 8080, '10.8.0.2', 80) + fwd('10.8.0.2') + [nat('10.8.0.2', '10.8.0.0/24')])
    assert kernel.listener_queries == []
    assert [op.stage for op in plan.ops if op.ns == 'ns8'][-2:] == [P.NFT, P.CONNTRACK]


def test_forward_drop_chains_of_other_tables_get_scoped_accepts_and_nothing_else_is_touched():
    kernel = lab()
    theirs = _nft_rules.RuleSpec('forward', COMMENT_PREFIX + 'allow-src 10.0.0.0/24', [
        _nft_rules.MatchAddress('saddr', '10.0.0.0/24', nfproto=False), _nft_rules.Verdict('accept')])
    kernel.foreign_chain(None, NFPROTO_IPV4, 'filter', 'DOCKER-USER', [theirs])
    kernel.foreign_chain(None, NFPROTO_IPV6, 'filter', 'FORWARD')
    kernel.foreign_chain(None, NFPROTO_INET, 'firewalld', 'filter_FORWARD')
    items = [dict(WEB, target='10.0.0.2'), dict(WEB, target='fd00::2')]
    plan, _result = kernel.plan_kind('publish', items)
    v4, v6 = allow('10.0.0.2'), allow('fd00::2')
    assert sorted((what, comment) for what, comment in changes(plan) if what.startswith('insert')) == sorted(
        [('insert filter DOCKER-USER', c) for c in v4] + [('insert filter FORWARD', c) for c in v6] +
        [('insert firewalld filter_FORWARD', c) for c in v4 + v6])
    assert plan.diff()['after']['published ports (host)']['other_rulesets'] == {
        'ip filter DOCKER-USER': sorted(v4), 'ip6 filter FORWARD': sorted(v6),
        'inet firewalld filter_FORWARD': sorted(v4 + v6)}
    converge(kernel, plan)
    unchanged(kernel.plan_kind('publish', items)[0])
    # the IPv4 port goes: its target's accepts go, the IPv6 target's stay
    plan, _result = kernel.plan_kind('publish', [{'host_port': 8080, 'state': 'absent'}])
    assert sorted((what, comment) for what, comment in changes(plan) if what.startswith('delete ')) == sorted(
        [('delete filter DOCKER-USER', c) for c in v4] + [('delete firewalld filter_FORWARD', c) for c in v4])
    converge(kernel, plan)
    plan, _result = kernel.plan_kind('publish', [{'host_port': 8080, 'state': 'absent', 'family': 'ipv6'}])
    assert sorted((what, comment) for what, comment in changes(plan) if what.startswith('delete ')) == sorted(
        [('delete filter FORWARD', c) for c in v6] + [('delete firewalld filter_FORWARD', c) for c in v6])
    converge(kernel, plan)
    chains = dict((target[2], [rule.comment for rule in rules]) for target, rules in kernel.ns(None).foreign_forward)
    assert chains == {'DOCKER-USER': [theirs.comment], 'FORWARD': [], 'filter_FORWARD': []}


def test_with_the_safe_router_one_transaction_and_its_forward_chain_keeps_our_accept_first():
    kernel = lab()
    kernel.ns(None).proc.update({PATH4: True})
    kernel.foreign_chain(None, NFPROTO_IPV4, 'filter', 'FORWARD')
    router = dict(forwarding=[{'ipv4': True, 'restrict_to': ['10.0.0.0/24']}],
                  masquerade=[{'source': '10.0.0.0/24', 'out_interface': 'eth0'}])
    converge(kernel, kernel.plan_network(**router)[0])
    declared = dict(router, publish=[dict(WEB, target='10.0.0.2')])
    plan, _reader = kernel.plan_network(**declared)
    assert list(plan.nft_transactions) == [None] and [op.stage for op in plan.ops].count(P.NFT) == 1
    after = plan.diff()['after']['nftables (host)']
    forward = [text.split('comment "')[1].rstrip('"') for text in after['chains']['forward']['rules']]
    assert sorted(forward[:2]) == fwd('10.0.0.2')
    assert forward[2:] == ['linuxnet:fwd-src 10.0.0.0/24', 'linuxnet:fwd-dst 10.0.0.0/24', 'linuxnet:fwd-drop']
    # both kinds' accepts in Docker's chain, side by side
    assert after['other_rulesets'] == {'ip filter FORWARD': sorted([
        'linuxnet:allow-dst 10.0.0.0/24', 'linuxnet:allow-src 10.0.0.0/24'] + allow('10.0.0.2'))}
    converge(kernel, plan)
    assert [rule.key for rule in kernel.ns(None).nft.rules if rule.chain == 'forward'] == forward
    unchanged(kernel.plan_network(**declared)[0])
    # the scope changes: its rules are rewritten behind ours, which stay
    wider = dict(declared)
    wider['forwarding'] = [{'ipv4': True, 'restrict_to': ['10.0.0.0/16']}]
    plan, _reader = kernel.plan_network(**wider)
    assert changes(plan) and not any('pub-' in comment for _what, comment in changes(plan))


def test_one_call_with_masquerade_forwarding_and_ports_makes_each_chain_once():
    kernel = lab()
    kernel.ns(None).proc.update({PATH4: True})
    plan, _reader = kernel.plan_network(forwarding=[{'ipv4': True, 'restrict_to': ['10.0.0.0/24']}],
                                        masquerade=[{'source': '10.0.0.0/24', 'out_interface': 'eth0'}],
                                        publish=[dict(WEB, target='10.0.0.2')])
    made = [change.spec.name for change in plan.nft_transactions[None].merged if isinstance(change, _nft_plan.AddChain)]
    assert sorted(made) == ['forward', 'output', 'postrouting', 'prerouting']
    chains = plan.diff()['after']['nftables (host)']['chains']
    assert len(chains['postrouting']['rules']) == 2 and len(chains['forward']['rules']) == 5


def test_netns_info_reports_the_ports_published():
    kernel = lab()
    converge(kernel, kernel.plan_kind('publish', [dict(WEB, target='10.0.0.2', localhost=True),
                                                  {'host_port': 53, 'protocol': 'udp', 'host_address': 'fd00::1',
                                                   'target': 'fd00::2', 'target_port': 5353}])[0])
    result = _info.gather(kernel.reader(), _info.InfoQuery({'netns': ['ns1']}), _kinds.KINDS)
    assert result['host']['published'] == [
        {'protocol': 'tcp', 'host_address': None, 'host_port': 8080, 'target': '10.0.0.2', 'target_port': 80,
         'localhost': True},
        {'protocol': 'udp', 'host_address': 'fd00::1', 'host_port': 53, 'target': 'fd00::2', 'target_port': 5353,
         'localhost': False}]
    assert result['netns']['ns1']['published'] == []
    assert 'published' not in _info.gather(kernel.reader(), _info.InfoQuery({'nat': False}), _kinds.KINDS)['host']


@pytest.mark.parametrize('item, message', [
    ({'target': '10.0.0.2'}, r"publish\[0\].host_port=None is missing"),
    ({'host_port': 0, 'target': '10.0.0.2'}, 'is outside 1..65535'),
    ({'host_port': '8080-70000', 'target': '10.0.0.2'}, 'is outside 1..65535'),
    ({'host_port': '8010-8000', 'target': '10.0.0.2'}, 'ends before it starts; write the range low-high, like "8000-8010"'),
    ({'host_port': True, 'target': '10.0.0.2'}, 'is not a port or a port range'),
    ({'host_port': '80,81', 'target': '10.0.0.2'}, 'is not a port or a port range'),
    ({'host_port': 80, 'target': '127.0.0.1'}, "target='127.0.0.1' is not an address a namespace can hold"),
    ({'host_port': 80, 'target': '10.0.0.2', 'family': 'ipv6'}, "family='ipv6' is IPv6 but target='10.0.0.2' is IPv4"),
    ({'host_port': 80}, r"publish\[0\].target=None and target_netns=None: give exactly one"),
    ({'host_port': 80, 'target': 'fd00::2', 'host_address': '::1'}, "host_address='::1' is ::1"),
])
def test_bad_input_is_refused_before_anything_is_read(item, message):
    with pytest.raises(ValidationError, match=message):
        FakeKernel().plan_kind('publish', [item])


def test_the_hosts_own_connections_to_loopback_are_never_published():
    for listen, target, loopback in (('0.0.0.0', '10.0.0.2', '127.0.0.0/8'), ('::', 'fd00::2', '::1')):
        rules = PUB.port_rules('tcp', ipaddress.ip_address(listen), 8080, ipaddress.ip_address(target), 80)
        version = 'ip' if ':' not in listen else 'ip6'
        assert '%s daddr != %s ' % (version, loopback) in rules['pub-out'].text
