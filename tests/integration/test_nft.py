"""nf_tables (_nft_*.py) against the real kernel: every test gets its own network namespace inside the sandbox.

Run: tests/sandbox.sh python3 -m pytest -q tests/integration/test_nft.py (and with /usr/bin/python3
for Debian's pyroute2 0.7.2). `nft` is used only to look at the results and to build the
neighbours (iptables-nft's `ip nat`, an `inet filter`) whose survival the tests check.
"""
import errno
import json
import os
import shutil
import subprocess
import uuid

import pytest

from ansible_collections.linuxnet.netns.plugins.module_utils import (
    _nft_apply,
    _nft_codec,
    _nft_plan,
    _nft_rules,
    _nft_state,
    _transport,
)
from ansible_collections.linuxnet.netns.plugins.module_utils._kinds import comment_parsers

PARSERS = comment_parsers()

IN_SANDBOX = os.environ.get('LINUXNET_SANDBOX') == '1'

pytestmark = pytest.mark.skipif(not IN_SANDBOX, reason='runs only inside tests/sandbox.sh')

OURS = 'inet %s' % _nft_rules.TABLE


class Netns(object):
    """A throwaway named namespace, our nfnetlink socket inside it and `nft` run inside it."""

    def __init__(self):
        self.name = 'nft-' + uuid.uuid4().hex[:8]
        subprocess.check_call(['ip', 'netns', 'add', self.name])
        self.spaces = _transport.Namespaces()
        self.sock = self.spaces.nfnl(self.name)

    def close(self):
        self.spaces.close()
        subprocess.call(['ip', 'netns', 'del', self.name])

    def run(self, *argv, **kw):
        out = subprocess.run(['ip', 'netns', 'exec', self.name] + list(argv), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, universal_newlines=True, check=False, **kw)
        if out.returncode:
            raise AssertionError('%s failed: %s%s' % (' '.join(argv), out.stdout, out.stderr))
        return out.stdout

    def nft(self, *args):
        return self.run('nft', *args)

    def nft_script(self, text):
        return self.run('nft', '-f', '-', input=text)

    def tables(self):
        return sorted(line.strip() for line in self.nft('list', 'tables').splitlines() if line.strip())

    def rule_lines(self, table=OURS, chain='postrouting'):
        family, name = table.split()
        text = self.nft('list', 'chain', family, name, chain)
        return [line.strip() for line in text.splitlines()
                if line.startswith('\t\t') and not line.strip().startswith('type ')]

    def netlink_dump(self, table=OURS, chain='postrouting'):
        """`nft --debug=netlink` of a chain: per rule, its expressions and userdata as nft sees them."""
        family, name = table.split()
        rules, current = [], None
        for line in self.nft('--debug=netlink', 'list', 'chain', family, name, chain).splitlines():
            if line.startswith('%s %s %s ' % (family, name, chain)):
                current = []
                rules.append(current)
            elif line.startswith('  ') and current is not None:
                current.append(line.strip())
            else:
                current = None
        return rules

    # the engine, as a module would drive it
    def read(self):
        return _nft_state.read(self.sock, PARSERS)

    def masq(self, desired, check_mode=False):
        plan = _nft_plan.plan_masquerade_rules(self.read(), desired)
        if not check_mode:
            _nft_apply.apply(self.sock, plan)
        return plan


@pytest.fixture
def ns():
    space = Netns()
    yield space
    space.close()


NEIGHBOURS = """
table inet filter {
    set allowed { type ipv4_addr; elements = { 10.9.0.1, 10.9.0.2 } }
    chain input { type filter hook input priority 0; policy accept; iifname "lo" accept; }
    chain forward {
        type filter hook forward priority 0; policy drop;
        ct state established,related accept
        ip saddr @allowed accept comment "linuxnet:masq 10.9.0.0/24 eth0"
    }
}
table ip user_nat {
    chain postrouting {
        type nat hook postrouting priority srcnat + 10;
        ip saddr 10.0.0.0/24 oifname "eth0" masquerade comment "linuxnet:masq 10.0.0.0/24 eth0"
    }
}
"""


# what iptables-nft makes of Docker's rule, for machines without iptables
IPTABLES_NAT = """
table ip nat {
    chain POSTROUTING {
        type nat hook postrouting priority srcnat; policy accept;
        oifname != "docker0" ip saddr 172.17.0.0/16 counter masquerade comment "linuxnet:masq 172.17.0.0/16 eth0"
    }
}
"""


def neighbours(ns):
    """Tables that are not ours, with rules that even carry comments like ours."""
    if shutil.which('iptables-nft'):
        ns.run('iptables-nft', '-t', 'nat', '-A', 'POSTROUTING', '-s', '172.17.0.0/16', '!', '-o', 'docker0',
               '-m', 'comment', '--comment', 'linuxnet:masq 172.17.0.0/16 eth0', '-j', 'MASQUERADE')
    else:
        ns.nft_script(IPTABLES_NAT)
    ns.nft_script(NEIGHBOURS)


def snapshot(ns):
    """Every table but ours, with handles, as text and as JSON."""
    others = [t for t in ns.tables() if t != 'table ' + OURS]
    text = [ns.nft('-a', 'list', *t.split()) for t in others]
    objects = []
    for obj in json.loads(ns.nft('-a', '-j', 'list', 'ruleset'))['nftables']:
        kind, body = next(iter(obj.items()))
        if kind != 'metainfo' and body.get('table', body.get('name')) != _nft_rules.TABLE:
            objects.append(obj)
    return others, text, objects


def test_rule_looks_exactly_like_nfts_own(ns):
    plan = ns.masq([('10.0.0.0/24', 'eth0', 'present')])
    assert plan.lines() == [
        'add table inet linuxnet_netns',
        'add chain inet linuxnet_netns postrouting { type nat hook postrouting priority 100; policy accept; }',
        'add rule inet linuxnet_netns postrouting ip saddr 10.0.0.0/24 oifname "eth0" masquerade '
        'comment "linuxnet:masq 10.0.0.0/24 eth0"',
    ]
    listing = ns.nft('list', 'table', 'inet', _nft_rules.TABLE)
    assert listing == (
        'table inet linuxnet_netns {\n'
        '\tchain postrouting {\n'
        '\t\ttype nat hook postrouting priority srcnat; policy accept;\n'
        '\t\tip saddr 10.0.0.0/24 oifname "eth0" masquerade comment "linuxnet:masq 10.0.0.0/24 eth0"\n'
        '\t}\n'
        '}\n')
    rule = [obj['rule'] for obj in json.loads(ns.nft('-j', 'list', 'ruleset'))['nftables'] if 'rule' in obj][0]
    assert rule['comment'] == 'linuxnet:masq 10.0.0.0/24 eth0'
    assert rule['expr'] == [
        {'match': {'op': '==', 'left': {'payload': {'protocol': 'ip', 'field': 'saddr'}},
                   'right': {'prefix': {'addr': '10.0.0.0', 'len': 24}}}},
        {'match': {'op': '==', 'left': {'meta': {'key': 'oifname'}}, 'right': 'eth0'}},
        {'masquerade': None}]


PREFIXES = ['10.0.0.0/24', '10.0.0.0/25', '10.0.0.7/32', '0.0.0.0/0', '10.0.0.0/7', '192.168.0.0/16',
            'fd00::/64', 'fd00:1::/33', 'fd00::/60', 'fd00::1/128', '::/0', '2001:db8::/32']


@pytest.mark.parametrize('prefix', PREFIXES)
def test_same_expressions_as_nft(ns, prefix):
    """Our rule and the one nft makes from the same text: same listing, same netlink expressions."""
    spec = _nft_rules.masquerade_rule(prefix, 'eth0')
    ns.masq([(prefix, 'eth0', 'present')])
    ns.nft_script('table inet ref { chain postrouting { type nat hook postrouting priority srcnat; policy accept;\n'
                  '%s\n}\n}' % spec.text)
    assert ns.rule_lines() == ns.rule_lines('inet ref') == [spec.text]
    assert ns.netlink_dump() == ns.netlink_dump('inet ref') != []
    # and a rule nft made is recognised as ours: identity and expressions verified
    ns.nft('delete', 'table', 'inet', _nft_rules.TABLE)
    ns.nft_script('table inet linuxnet_netns { chain postrouting { type nat hook postrouting priority 100; '
                  'policy accept;\n%s\n}\n}' % spec.text)
    state = ns.read()
    assert [(r.key, r.verified) for r in state.rules] == [(spec.key, True)]
    assert _nft_plan.plan_masquerade_rules(state, [(prefix, 'eth0', 'present')]) == []


def test_idempotent_and_check_mode(ns):
    desired = [('10.0.0.0/24', 'eth0', 'present'), ('fd00:10::/64', 'eth0', 'present')]
    predicted = ns.masq(desired, check_mode=True)
    assert ns.tables() == [] and ns.read().exists is False
    applied = ns.masq(desired)
    assert applied.lines() == predicted.lines() and applied.after == predicted.after
    state = ns.read()
    assert state.view() == applied.after
    again = _nft_plan.plan_masquerade_rules(state, desired)
    assert again == [] and not again.changed and again.before == again.after == applied.after
    # same rule written differently (host bits, repeated) is the same identity
    assert _nft_plan.plan_masquerade_rules(state, [('10.0.0.9/24', 'eth0', 'present'), ('10.0.0.0/24', 'eth0', 'present')]) == []


def test_neighbours_survive_byte_for_byte(ns):
    neighbours(ns)
    before = snapshot(ns)
    assert len(before[0]) == 3
    state = ns.read()
    assert not state.exists and state.rules == []  # their `linuxnet:` comments are not ours
    ns.masq([('10.0.0.0/24', 'eth0', 'present'), ('fd00::/64', 'eth0', 'present')])
    assert snapshot(ns) == before
    assert [r.comment for r in ns.read().rules] == ['linuxnet:masq 10.0.0.0/24 eth0', 'linuxnet:masq fd00::/64 eth0']
    ns.masq([('10.0.0.0/24', 'eth0', 'absent')])
    assert snapshot(ns) == before
    plan = ns.masq([('fd00::/64', 'eth0', 'absent')])
    assert plan.lines()[-1] == 'delete table inet linuxnet_netns (no rules left in it)'
    assert snapshot(ns) == before
    assert 'table ' + OURS not in ns.tables()


def test_absent_of_last_rule_removes_table(ns):
    ns.masq([('10.0.0.0/24', 'eth0', 'present')])
    plan = ns.masq([('10.0.0.0/24', 'eth0', 'absent')])
    assert [c.action for c in plan] == ['delete_rule', 'delete_table']
    assert plan.after == {}
    assert ns.tables() == []
    assert ns.masq([('10.0.0.0/24', 'eth0', 'absent')]) == []


def test_absent_of_one_of_two_keeps_the_other(ns):
    ns.masq([('10.0.0.0/24', 'eth0', 'present'), ('10.1.0.0/24', 'eth1', 'present')])
    plan = ns.masq([('10.0.0.0/24', 'eth0', 'absent')])
    assert [c.action for c in plan] == ['delete_rule']
    assert ns.rule_lines() == ['ip saddr 10.1.0.0/24 oifname "eth1" masquerade comment "linuxnet:masq 10.1.0.0/24 eth1"']
    assert ns.read().view() == plan.after


def test_ipv6(ns):
    ns.masq([('fd00:abcd::/48', 'uplink0', 'present')])
    assert ns.rule_lines() == [
        'ip6 saddr fd00:abcd::/48 oifname "uplink0" masquerade comment "linuxnet:masq fd00:abcd::/48 uplink0"']
    assert ns.masq([('fd00:abcd::/48', 'uplink0', 'present')]) == []


def test_tampered_rule_is_replaced(ns):
    """A rule whose comment says one thing and whose expressions do another is replaced."""
    ns.nft_script('table inet linuxnet_netns { chain postrouting { type nat hook postrouting priority 100;\n'
                  'ip saddr 10.0.0.0/24 oifname "eth1" masquerade comment "linuxnet:masq 10.0.0.0/24 eth0"\n'
                  'ip saddr 10.0.0.0/24 oifname "eth0" counter masquerade comment "linuxnet:masq 10.0.0.0/24 eth0"\n'
                  'ip saddr 10.2.0.0/24 oifname "eth0" masquerade comment "linuxnet:masq 10.2.0.0/24 eth0"\n'
                  'ip saddr 10.2.0.0/24 oifname "eth0" masquerade comment "linuxnet:masq 10.2.0.0/24 eth0"\n'
                  '}\n}')
    state = ns.read()
    assert [r.verified for r in state.rules] == [False, False, True, True]
    plan = ns.masq([('10.0.0.0/24', 'eth0', 'present'), ('10.2.0.0/24', 'eth0', 'present')])
    assert [c.action for c in plan] == ['delete_rule', 'delete_rule', 'delete_rule', 'add_rule']
    assert 'does not match its comment' in plan.lines()[0] and 'duplicate' in plan.lines()[2]
    assert sorted(ns.rule_lines()) == [
        'ip saddr 10.0.0.0/24 oifname "eth0" masquerade comment "linuxnet:masq 10.0.0.0/24 eth0"',
        'ip saddr 10.2.0.0/24 oifname "eth0" masquerade comment "linuxnet:masq 10.2.0.0/24 eth0"']
    assert ns.masq([('10.0.0.0/24', 'eth0', 'present'), ('10.2.0.0/24', 'eth0', 'present')]) == []


def test_foreign_rule_in_our_table_is_kept(ns):
    ns.masq([('10.0.0.0/24', 'eth0', 'present')])
    ns.nft('add', 'rule', 'inet', _nft_rules.TABLE, 'postrouting', 'ip', 'saddr', '10.5.0.0/16', 'masquerade')
    plan = ns.masq([('10.0.0.0/24', 'eth0', 'absent')])
    assert [c.action for c in plan] == ['delete_rule']
    assert ns.rule_lines() == ['ip saddr 10.5.0.0/16 masquerade']


def test_foreign_set_in_our_table_keeps_it(ns):
    ns.masq([('10.0.0.0/24', 'eth0', 'present')])
    ns.nft('add', 'set', 'inet', _nft_rules.TABLE, 'someone', '{ type ipv4_addr; }')
    assert ns.read().foreign_objects() == 1
    assert [c.action for c in ns.masq([('10.0.0.0/24', 'eth0', 'absent')])] == ['delete_rule']
    assert 'table ' + OURS in ns.tables()


def test_wrong_chain_is_replaced(ns):
    ns.nft_script('table inet linuxnet_netns { chain postrouting { type nat hook postrouting priority 0;\n'
                  'ip saddr 10.1.0.0/24 oifname "eth1" masquerade comment "linuxnet:masq 10.1.0.0/24 eth1"\n}\n}')
    plan = ns.masq([('10.0.0.0/24', 'eth0', 'present')])
    assert [c.action for c in plan] == ['delete_rule', 'delete_chain', 'add_chain', 'add_rule', 'add_rule']
    state = ns.read()
    assert state.chains['postrouting'].key() == ('nat', 'postrouting', 100, 'accept')
    assert sorted(r.comment for r in state.rules if r.verified) == [
        'linuxnet:masq 10.0.0.0/24 eth0', 'linuxnet:masq 10.1.0.0/24 eth1']
    assert state.view() == plan.after
    assert ns.masq([('10.0.0.0/24', 'eth0', 'present')]) == []


def test_dormant_table_is_woken(ns):
    ns.masq([('10.0.0.0/24', 'eth0', 'present')])
    ns.nft('add', 'table', 'inet', _nft_rules.TABLE, '{ flags dormant; }')
    plan = ns.masq([('10.0.0.0/24', 'eth0', 'present')])
    assert [c.action for c in plan] == ['wake_table']
    assert not ns.read().table['flags'] & _nft_codec.NFT_TABLE_F_DORMANT
    assert ns.masq([('10.0.0.0/24', 'eth0', 'present')]) == []


def test_empty_leftover_table_is_removed(ns):
    ns.nft_script('table inet linuxnet_netns { chain postrouting { type nat hook postrouting priority 100; }\n}')
    plan = ns.masq([])
    assert [c.action for c in plan] == ['delete_table']
    assert ns.tables() == []


def test_conflict_when_ruleset_changed_since_read(ns):
    state = ns.read()
    plan = _nft_plan.plan_masquerade_rules(state, [('10.0.0.0/24', 'eth0', 'present')])
    ns.nft('add', 'table', 'ip', 'someone_else')
    with pytest.raises(_nft_apply.NftConflict) as caught:
        _nft_apply.apply(ns.sock, plan)
    assert caught.value.code == _nft_apply.ERESTART
    assert ns.tables() == ['table ip someone_else']
    # ensure() reads and plans again
    applied = _nft_apply.ensure(ns.sock, PARSERS, lambda current: _nft_plan.plan_masquerade_rules(current, [('10.0.0.0/24', 'eth0', 'present')]))
    assert applied.changed and len(ns.rule_lines()) == 1
    # and the same socket still works for reads (no stray answers left behind)
    assert len(ns.read().rules) == 1


def test_refused_transaction_changes_nothing_and_names_the_change(ns):
    ns.masq([('10.0.0.0/24', 'eth0', 'present')])
    before = ns.nft('-a', 'list', 'ruleset')
    state = ns.read()
    ghost = _nft_state.RuleInfo('postrouting', 999999, 'linuxnet:masq 10.9.0.0/24 eth9', (), PARSERS)
    changes = [_nft_plan.AddRule(_nft_rules.masquerade_rule('10.7.0.0/24', 'eth0')), _nft_plan.DeleteRule(ghost, 'absent'),
               _nft_plan.AddRule(_nft_rules.masquerade_rule('10.8.0.0/24', 'eth0'))]
    with pytest.raises(_nft_apply.NftError) as caught:
        _nft_apply.apply(ns.sock, changes, genid=state.genid)
    assert caught.value.code == errno.ENOENT
    assert caught.value.change is changes[1]
    assert 'handle 999999' in str(caught.value)
    assert ns.nft('-a', 'list', 'ruleset') == before
    assert len(ns.read().rules) == 1


def test_refused_last_change_is_reported(ns):
    """The ack we wait for may itself be the error."""
    ghost = _nft_state.RuleInfo('postrouting', 424242, None, (), PARSERS)
    with pytest.raises(_nft_apply.NftError) as caught:
        _nft_apply.apply(ns.sock, [_nft_plan.DeleteRule(ghost, 'absent')], genid=False)
    assert caught.value.code == errno.ENOENT


def test_many_rules_in_one_transaction(ns):
    desired = [('10.%d.%d.0/24' % (i // 256, i % 256), 'eth0', 'present') for i in range(1500)]
    plan = ns.masq(desired)
    assert len(plan) == 1502
    state = ns.read()
    assert len(state.rules) == 1500 and all(r.verified for r in state.rules)
    assert _nft_plan.plan_masquerade_rules(state, desired) == []
    plan = ns.masq([(p, o, 'absent') for p, o, _s in desired])
    assert plan[-1].action == 'delete_table' and ns.tables() == []


def test_forward_rules_fit_the_same_model(ns, monkeypatch):
    """The forward chain is for later work: a new kind is a parser in KINDS and a RuleSpec."""
    def forward_rule(args, canonical=None):
        bridge, prefix = args.split(' ')
        return _nft_rules.RuleSpec('forward', 'linuxnet:fwd %s %s' % (bridge, prefix), [
            _nft_rules.MatchIfname('iifname', bridge), _nft_rules.MatchAddress('saddr', prefix), _nft_rules.Verdict('accept')])

    monkeypatch.setitem(PARSERS, 'fwd', forward_rule)
    spec = forward_rule('br0 10.0.0.0/24')
    plan = _nft_plan.plan(ns.read(), [spec, _nft_rules.masquerade_rule('10.0.0.0/24', 'eth0')])
    _nft_apply.apply(ns.sock, plan)
    assert ns.rule_lines(chain='forward') == [
        'iifname "br0" ip saddr 10.0.0.0/24 accept comment "linuxnet:fwd br0 10.0.0.0/24"']
    assert ns.nft('list', 'chain', 'inet', _nft_rules.TABLE, 'forward').splitlines()[2].strip() == \
        'type filter hook forward priority filter; policy accept;'
    state = ns.read()
    assert all(r.verified for r in state.rules)
    assert _nft_plan.plan(state, [spec]) == []
    plan = _nft_plan.plan(state, absent=[spec.key, _nft_rules.masquerade_rule('10.0.0.0/24', 'eth0')])
    _nft_apply.apply(ns.sock, plan)
    assert plan[-1].action == 'delete_table' and ns.tables() == []
