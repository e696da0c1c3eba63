# -*- coding: utf-8 -*-
# Copyright: linuxnet.netns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
# Do not use this from other collections or standalone plugins/modules!
"""nf_tables planning: from what was read (_nft_state) and what is wanted (_nft_rules specs) to the
list of changes, each able to say itself for humans and encode itself for the kernel. No I/O.

`plan(state, present, absent)` (or `plan_masquerade_rules`, `plan_router`) -> `NftPlan`, a list of
changes that also carries `before`/`after` and one human line per change; `merge` makes one
transaction of several plans for one namespace; _nft_apply sends it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import re

from ansible_collections.linuxnet.netns.plugins.module_utils import _nft_apply
from ansible_collections.linuxnet.netns.plugins.module_utils import _plan as P
from ansible_collections.linuxnet.netns.plugins.module_utils._codec import NLM_F_APPEND, NLM_F_CREATE
from ansible_collections.linuxnet.netns.plugins.module_utils._common import PlanError, ns_key, where
from ansible_collections.linuxnet.netns.plugins.module_utils import _nft_codec as N
from ansible_collections.linuxnet.netns.plugins.module_utils._nft_codec import (
    HOOKS,
    NF_ACCEPT,
    NF_DROP,
    NFPROTO_INET,
    NFPROTO_IPV4,
    NFPROTO_NAMES,
    NFT_MSG_DELCHAIN,
    NFT_MSG_DELRULE,
    NFT_MSG_DELTABLE,
    NFT_MSG_NEWCHAIN,
    NFT_MSG_NEWRULE,
    NFT_MSG_NEWTABLE,
    NFT_TABLE_F_DORMANT,
    comment_userdata,
)
from ansible_collections.linuxnet.netns.plugins.module_utils._nft_rules import (
    ALLOW_PREFIX,
    CHAINS,
    COMMENT_PREFIX,
    FORWARD_PREFIX,
    PROTOCOLS,
    TABLE,
    RuleSpec,
    allow_spec,
    forward_rules,
    masquerade_rule,
)


class Change(object):
    """One step of a plan: `text` for humans, `messages()` for the kernel."""

    action = None
    family = NFPROTO_INET  # of the table the change is in

    def summarised(self):
        """(its group's line, its port) for a published port's rule (NftPlan.lines), else None."""
        return None

    def messages(self):
        raise NotImplementedError

    def __repr__(self):
        return '<%s: %s>' % (self.__class__.__name__, self.text)


class AddTable(Change):
    action = 'add_table'
    text = 'add table inet %s' % TABLE

    def messages(self):
        return [(N.nft_table_msg, NFT_MSG_NEWTABLE, NLM_F_CREATE, [('NFTA_TABLE_NAME', TABLE)])]


class WakeTable(Change):
    action = 'wake_table'
    text = 'add table inet %s { flags 0; } (it is dormant: none of its rules apply)' % TABLE

    def messages(self):
        return [(N.nft_table_msg, NFT_MSG_NEWTABLE, NLM_F_CREATE,
                 [('NFTA_TABLE_NAME', TABLE), ('NFTA_TABLE_FLAGS', 0)])]


class DeleteTable(Change):
    action = 'delete_table'
    text = 'delete table inet %s (no rules left in it)' % TABLE

    def messages(self):
        return [(N.nft_table_msg, NFT_MSG_DELTABLE, 0, [('NFTA_TABLE_NAME', TABLE)])]


class AddChain(Change):
    action = 'add_chain'

    def __init__(self, spec):
        self.spec = spec
        self.text = 'add chain inet %s %s { %s }' % (TABLE, spec.name, spec.text)

    def messages(self):
        spec = self.spec
        return [(N.nft_chain_msg, NFT_MSG_NEWCHAIN, NLM_F_CREATE, [
            ('NFTA_CHAIN_TABLE', TABLE),
            ('NFTA_CHAIN_NAME', spec.name),
            ('NFTA_CHAIN_HOOK', {'attrs': [('NFTA_HOOK_HOOKNUM', HOOKS[spec.hook]),
                                           ('NFTA_HOOK_PRIORITY', spec.priority)]}),
            ('NFTA_CHAIN_POLICY', NF_ACCEPT if spec.policy == 'accept' else NF_DROP),
            ('NFTA_CHAIN_TYPE', spec.type),
        ])]


class DeleteChain(Change):
    action = 'delete_chain'

    def __init__(self, chain, wanted):
        self.chain = chain
        self.text = 'delete chain inet %s %s (it is %s, wanted %s)' % (TABLE, chain.name, chain.text, wanted.text)

    def messages(self):
        return [(N.nft_chain_msg, NFT_MSG_DELCHAIN, 0, [('NFTA_CHAIN_TABLE', TABLE),
                                                        ('NFTA_CHAIN_HANDLE', self.chain.handle)])]


class AddRule(Change):
    action = 'add_rule'

    def __init__(self, spec, replaces=False):
        self.spec = spec
        self.replaces = replaces
        self.text = '%s rule inet %s %s %s' % ('insert' if spec.head else 'add', TABLE, spec.chain, spec.text)

    def summarised(self):
        return _port_group('insert' if self.spec.head else 'add', self.spec.chain, '', self.spec.key)

    def messages(self):
        spec = self.spec
        return [(None, NFT_MSG_NEWRULE, NLM_F_CREATE | (0 if spec.head else NLM_F_APPEND), [
            ('NFTA_RULE_TABLE', TABLE),
            ('NFTA_RULE_CHAIN', spec.chain),
            ('NFTA_RULE_EXPRESSIONS', spec.raw()),
            ('NFTA_RULE_USERDATA', comment_userdata(spec.comment)),
        ])]


class DeleteRule(Change):
    action = 'delete_rule'
    REASONS = {
        'absent': 'state absent',
        'differs': 'the rule does not match its comment; replaced',
        'changed': 'the declared rule differs; replaced',
        'duplicate': 'duplicate',
        'chain': 'its chain is replaced',
        'order': 'the forward chain is rewritten in order',
    }

    def __init__(self, rule, reason):
        self.rule = rule
        self.reason = reason
        self.text = 'delete rule inet %s %s handle %d # %s (%s)' % (
            TABLE, rule.chain, rule.handle, rule.comment or 'no comment', self.REASONS[reason])

    def summarised(self):
        return _port_group('delete', self.rule.chain, ' (%s)' % self.REASONS[self.reason], self.rule.key)

    def messages(self):
        return [(None, NFT_MSG_DELRULE, 0, [('NFTA_RULE_TABLE', TABLE),
                                            ('NFTA_RULE_CHAIN', self.rule.chain),
                                            ('NFTA_RULE_HANDLE', self.rule.handle)])]


# A published port's rules are named by `linuxnet:WORD PROTO HOST:PORT` (_kind_publish): a thousand
# ports are two thousand rules in one transaction, and as many lines of `actions` would be most of
# the module's result (Ansible's handling of a result grows with its size). Past SUMMARY_OVER such
# rules in one transaction, each chain's are told in one line per kind of rule, reason, protocol
# and host address, with their number and their ports; the diff still shows every rule.
SUMMARY_OVER = 100
_PORT_KEY = re.compile(r'^(%s[a-z-]+ (?:%s) (?:[0-9.]+|\[[0-9a-f:.]+\])):([0-9]+)$' % (
    re.escape(COMMENT_PREFIX), '|'.join(sorted(PROTOCOLS))))


def _port_group(verb, chain, reason, key):
    """((verb, chain, reason, the rule's name without its port), the port), or None for a rule
    that is not a port's."""
    match = _PORT_KEY.match(key or '')
    if match is None:
        return None
    return (verb, chain, reason, match.group(1)), int(match.group(2))


def port_ranges(ports):
    """'20000-20999' or '80,8000-8010' of a collection of ports."""
    ranges = []
    for port in sorted(set(ports)):
        if ranges and ranges[-1][1] == port - 1:
            ranges[-1][1] = port
        else:
            ranges.append([port, port])
    return ','.join(str(first) if first == last else '%d-%d' % (first, last) for first, last in ranges)


class NftPlan(list):
    """The changes, in the order apply() sends them, and what they do to the table.

    `before`/`after` are NftState.view() dicts of the state planned from and of the state the
    changes lead to; `genid` is the generation they were planned against.
    """

    def __init__(self, changes=(), before=None, after=None, genid=None):
        super(NftPlan, self).__init__(changes)
        self.before = before if before is not None else {}
        self.after = after if after is not None else {}
        self.genid = genid

    @property
    def changed(self):
        return bool(self)

    def lines(self):
        """One line a change; past SUMMARY_OVER rules of published ports, those in one line a
        group (where its first rule is), with their number and ports."""
        summarised = [change.summarised() for change in self]
        groups = {}
        for group in summarised:
            if group is not None:
                groups.setdefault(group[0], []).append(group[1])
        if sum(len(ports) for ports in groups.values()) <= SUMMARY_OVER:
            return [change.text for change in self]
        lines, told = [], set()
        for change, group in zip(self, summarised):
            if group is None:
                lines.append(change.text)
            elif group[0] not in told:
                told.add(group[0])
                (verb, chain, reason, name), ports = group[0], groups[group[0]]
                lines.append('%s %d rule%s inet %s %s%s: %s:%s' % (
                    verb, len(ports), '' if len(ports) == 1 else 's', TABLE, chain, reason, name, port_ranges(ports)))
        return lines

    def diff(self):
        return {'before': self.before, 'after': self.after}


def plan(current, present=(), absent=()):
    """Changes that make `current` hold every spec in `present` and none of the keys of `absent`.

    Rules are matched by identity (comment). A rule of ours that does not verify is deleted and
    added again; duplicates are deleted; rules we cannot identify are left alone. A chain we need
    that differs from its ChainSpec is replaced, with every rule in it (ours re-added). When no rule
    would be left, the table goes too (unless it holds objects we did not make).
    """
    present = list(present)
    absent_keys = set(spec.key if isinstance(spec, RuleSpec) else spec for spec in absent)
    wanted = {}
    for spec in present:
        other = wanted.get(spec.key)
        if other is not None and other != spec:
            raise PlanError('two different rules claim the identity %r' % spec.key)
        if spec.key in absent_keys:
            raise PlanError('rule %r is wanted both present and absent' % spec.key)
        wanted[spec.key] = spec

    by_key = {}
    for rule in current.rules:
        by_key.setdefault(rule.key, []).append(rule)

    deletes = {}  # handle -> DeleteRule
    adds = []
    replaced_chains = []
    for name in sorted(set(spec.chain for spec in wanted.values())):
        chain = current.chains.get(name)
        if chain is not None and chain.key() != CHAINS[name].key():
            replaced_chains.append(chain)

    replaced_names = set(chain.name for chain in replaced_chains)
    for key, spec in wanted.items():
        existing = by_key.get(key, [])
        keep = None
        if spec.chain not in replaced_names:
            keep = next((rule for rule in existing if rule.verified and rule.spec == spec), None)
        for rule in existing:
            if rule is not keep:
                deletes[rule.handle] = DeleteRule(
                    rule, 'duplicate' if keep is not None else ('changed' if rule.verified else 'differs'))
        if keep is None:
            adds.append(AddRule(spec, replaces=bool(existing)))
    for key in sorted(absent_keys):
        for rule in by_key.get(key, []):
            deletes[rule.handle] = DeleteRule(rule, 'absent')
    readd = {}
    for rule in current.rules:
        if rule.chain in replaced_names and rule.handle not in deletes:
            deletes[rule.handle] = DeleteRule(rule, 'chain')
            if rule.verified and rule.key not in wanted and rule.key not in readd:
                readd[rule.key] = AddRule(rule.spec, replaces=True)
    adds.extend(readd.values())

    remaining = [rule for rule in current.rules if rule.handle not in deletes]
    changes = []
    if current.exists and not remaining and not adds and not current.foreign_objects():
        # also an empty table of ours that nothing asked for (left by an interrupted run)
        changes.extend(deletes[rule.handle] for rule in current.rules if rule.handle in deletes)
        changes.append(DeleteTable())
    else:
        if adds and not current.exists:
            changes.append(AddTable())
        elif current.exists and current.table.get('flags', 0) & NFT_TABLE_F_DORMANT and (adds or remaining):
            changes.append(WakeTable())
        changes.extend(deletes[rule.handle] for rule in current.rules if rule.handle in deletes)
        for chain in replaced_chains:
            changes.append(DeleteChain(chain, CHAINS[chain.name]))
        for name in sorted(set(add.spec.chain for add in adds)):
            if name not in current.chains or name in replaced_names:
                changes.append(AddChain(CHAINS[name]))
        changes.extend(adds)
    return NftPlan(changes, current.view(), _after(current, changes), current.genid)


def _after(current, changes):
    """current.view() with `changes` applied: the state the plan leads to."""
    if any(isinstance(change, DeleteTable) for change in changes):
        return {}
    view = current.view()
    if not changes:
        return view
    if not view:
        view = {'table': 'inet %s' % TABLE, 'chains': {}}
    chains = view['chains']
    deleted = set(change.rule.handle for change in changes if isinstance(change, DeleteRule))
    if deleted:
        for chain in chains.values():
            chain['rules'] = []
        for rule in current.rules:
            if rule.handle not in deleted:
                chains[rule.chain]['rules'].append(rule.text)
    if any(isinstance(change, WakeTable) for change in changes):
        view.pop('dormant', None)
    for change in changes:
        if isinstance(change, DeleteChain):
            chains.pop(change.chain.name, None)
        elif isinstance(change, AddChain):
            chains[change.spec.name] = {'chain': change.spec.text, 'rules': []}
        elif isinstance(change, AddRule):
            rules = chains.setdefault(change.spec.chain, {'chain': None, 'rules': []})['rules']
            rules.insert(0 if change.spec.head else len(rules), change.spec.text)
    return view


# --- other rulesets that drop forwarded traffic (Docker's FORWARD DROP) ---------------------------

class InsertForeignRule(Change):
    """A scoped accept inserted at the head of another table's chain (ahead of its RETURN/DROP)."""
    action = 'add_rule'

    def __init__(self, target, spec):
        self.family, self.table, self.chain = target
        self.spec = spec
        self.text = 'insert rule %s %s %s %s' % (NFPROTO_NAMES[self.family], self.table, self.chain, spec.text)

    def messages(self):
        return [(None, NFT_MSG_NEWRULE, NLM_F_CREATE, [
            ('NFTA_RULE_TABLE', self.table), ('NFTA_RULE_CHAIN', self.chain),
            ('NFTA_RULE_EXPRESSIONS', self.spec.raw()),
            ('NFTA_RULE_USERDATA', comment_userdata(self.spec.comment))])]


class DeleteForeignRule(Change):
    action = 'delete_rule'

    def __init__(self, target, rule):
        self.family, self.table, self.chain = target
        self.rule = rule
        self.text = 'delete rule %s %s %s handle %d # %s' % (
            NFPROTO_NAMES[self.family], self.table, self.chain, rule.handle, rule.comment)

    def messages(self):
        return [(None, NFT_MSG_DELRULE, 0, [('NFTA_RULE_TABLE', self.table),
                                            ('NFTA_RULE_CHAIN', self.chain),
                                            ('NFTA_RULE_HANDLE', self.rule.handle)])]


def plan_foreign_forward(foreign, prefixes):
    """Changes that give `prefixes` scoped accepts in every forward-drop chain of other tables,
    and remove ours that are no longer wanted. Their rules are never touched. `foreign` is what
    _nft_state.read_foreign_forward read: [(target chain, [ForeignRule])]."""
    networks = sorted(set(ipaddress.ip_network(p, strict=False) for p in prefixes), key=lambda n: (n.version, n))
    changes, before, after = [], {}, {}
    for target, rules in foreign:
        family = target[0]
        wanted = [allow_spec(field, net, family) for net in networks
                  if family == NFPROTO_INET or net.version == (4 if family == NFPROTO_IPV4 else 6)
                  for field in ('saddr', 'daddr')]
        ours = [rule for rule in rules if (rule.comment or '').startswith(ALLOW_PREFIX)]
        name = '%s %s %s' % (NFPROTO_NAMES[family], target[1], target[2])
        before[name] = [rule.comment for rule in ours]
        after[name] = [spec.comment for spec in wanted]
        if sorted((r.comment, r.canonical) for r in ours) != sorted((s.comment, s.canonical()) for s in wanted):
            changes.extend(DeleteForeignRule(target, rule) for rule in ours)
            # each insert goes to the head: insert in reverse to keep the listed order
            changes.extend(InsertForeignRule(target, spec) for spec in reversed(wanted))
    return changes, dict((k, v) for k, v in before.items() if v), dict((k, v) for k, v in after.items() if v)


def plan_foreign_rules(foreign, wanted, word):
    """Changes that make the rules of ours whose comment starts with `linuxnet:WORD`, at the head
    of every forward-drop chain of other tables, exactly `wanted(family)` (RuleSpecs for a table of
    that family): the missing are inserted, the differing and the unwanted deleted. What a kind
    whose traffic must pass Docker's FORWARD DROP uses; other rules, ours of other kinds too, are
    never touched. `foreign`: _nft_state.read_foreign_forward. Returns (changes, before, after) as
    plan_foreign_forward does."""
    prefix = COMMENT_PREFIX + word
    changes, before, after = [], {}, {}
    for target, rules in foreign:
        specs = dict((spec.comment, spec) for spec in wanted(target[0]))
        mine = [rule for rule in rules if (rule.comment or '').startswith(prefix)]
        kept = set()
        for rule in mine:
            spec = specs.get(rule.comment)
            if spec is not None and rule.comment not in kept and rule.canonical == spec.canonical():
                kept.add(rule.comment)
            else:
                changes.append(DeleteForeignRule(target, rule))
        changes.extend(InsertForeignRule(target, spec) for comment, spec in sorted(specs.items())
                       if comment not in kept)
        name = '%s %s %s' % (NFPROTO_NAMES[target[0]], target[1], target[2])
        before[name] = sorted(rule.comment for rule in mine)
        after[name] = sorted(specs)
    return changes, dict((k, v) for k, v in before.items() if v), dict((k, v) for k, v in after.items() if v)


def plan_forward_chain(current, prefixes, inbound=None, isolate=False):
    """Plan for the forward chain: exactly forward_rules(prefixes, inbound, isolate), in that order
    (none: our forward rules removed). Order matters here - the drop must come last - and rules are
    appended, so any difference rewrites our forward rules as a whole, in the same atomic transaction."""
    desired = forward_rules(prefixes, inbound, isolate)
    # the forward scope's own rules (fwd-*); other kinds' accepts at the head of the chain stay
    ours = [rule for rule in current.rules if rule.chain == 'forward' and rule.ours
            and rule.key.startswith(FORWARD_PREFIX)]
    if len(ours) == len(desired) and all(rule.verified and rule.spec == spec for rule, spec in zip(ours, desired)):
        return NftPlan([], current.view(), current.view(), current.genid)
    changes = [DeleteRule(rule, 'order' if desired else 'absent') for rule in ours]
    remaining = [rule for rule in current.rules if rule not in ours]
    if not desired:
        if current.exists and not remaining and not current.foreign_objects():
            changes.append(DeleteTable())
    else:
        if not current.exists:
            changes.insert(0, AddTable())
        elif current.table.get('flags', 0) & NFT_TABLE_F_DORMANT:
            changes.insert(0, WakeTable())
        chain = current.chains.get('forward')
        if chain is not None and chain.key() != CHAINS['forward'].key():
            changes.append(DeleteChain(chain, CHAINS['forward']))
            chain = None
        if chain is None:
            changes.append(AddChain(CHAINS['forward']))
        changes.extend(AddRule(spec) for spec in desired)
    return NftPlan(changes, current.view(), _after(current, changes), current.genid)


def plan_router(current, prefixes, foreign=None, inbound=None, isolate=False):
    """Our forward chain for `prefixes` (each isolated, with `isolate`) and, given `foreign` (the
    other rulesets' forward-drop chains, _nft_state.read_foreign_forward), the scoped accepts there:
    one plan, one atomic transaction."""
    own = plan_forward_chain(current, prefixes, inbound, isolate)
    if foreign is None:
        return own
    changes, before, after = plan_foreign_forward(foreign, prefixes)
    if not changes and not before:
        return own
    return NftPlan(list(own) + changes, dict(own.before, other_rulesets=before),
                   dict(own.after, other_rulesets=after), current.genid)


def plan_masquerade_rules(current, desired):
    """Plan for masquerade rules: `desired` is a list of (source prefix, oifname, state).

    A prefix with host bits set names its network (`10.0.0.1/24` is `10.0.0.0/24`). The same rule
    listed twice with the same state counts once; with both states it is an error.
    """
    present, absent = [], []
    for index, item in enumerate(desired):
        try:
            source, oifname, state = item[:3]
            exclude = item[3] if len(item) > 3 else ()
        except (TypeError, ValueError):
            raise PlanError('masquerade entry %d must be (source, oifname, state[, exclude]), got %r' % (index, item))
        if state not in ('present', 'absent'):
            raise PlanError("masquerade entry %d (%s via %s): state must be 'present' or 'absent', not %r"
                            % (index, source, oifname, state))
        spec = masquerade_rule(source, oifname, exclude)
        (present if state == 'present' else absent).append(spec)
    present_keys = set(spec.key for spec in present)
    for spec in absent:
        if spec.key in present_keys:
            raise PlanError('masquerade rule %s is listed with state present and with state absent'
                            % spec.comment[len(COMMENT_PREFIX):])
    return plan(current, present, absent)


def merge(current, plans):
    """One plan doing what each of `plans` does, all planned against `current` (masquerade rules
    and the forward scope of one namespace, say): one transaction, one generation check.

    The plans touch different chains; what they share is the table itself, so its creation,
    waking and removal are decided once, for all the changes together.
    """
    if len(plans) == 1:
        return plans[0]
    table_ops = (AddTable, WakeTable, DeleteTable)
    changes, added_chains = [], set()
    for change in (change for one in plans for change in one if not isinstance(change, table_ops)):
        if isinstance(change, AddChain):
            # two plans that each add rules to a chain the table lacks both add it: once is enough
            if change.spec.name in added_chains:
                continue
            added_chains.add(change.spec.name)
        changes.append(change)
    deleted = set(change.rule.handle for change in changes if isinstance(change, DeleteRule))
    adds = any(isinstance(change, (AddRule, AddChain)) for change in changes)
    remaining = [rule for rule in current.rules if rule.handle not in deleted]
    if current.exists and not remaining and not adds and not current.foreign_objects():
        changes.append(DeleteTable())
    elif adds and not current.exists:
        changes.insert(0, AddTable())
    elif current.exists and current.table.get('flags', 0) & NFT_TABLE_F_DORMANT and (adds or remaining):
        changes.insert(0, WakeTable())
    before, after = current.view(), _after(current, changes)
    for one in plans:
        if 'other_rulesets' in one.before or 'other_rulesets' in one.after:
            # each plan's own rules there (the forward scope's, published ports'), side by side
            for side, merged in ((one.before, before), (one.after, after)):
                into = merged.setdefault('other_rulesets', {})
                for name, comments in (side.get('other_rulesets') or {}).items():
                    into[name] = sorted(into.get(name, []) + list(comments))
    return NftPlan(changes, before, after, current.genid)


class Transaction(object):
    """The nf_tables plans of one namespace in one run, applied as one transaction
    (Plan.nft_transactions[ns])."""

    def __init__(self, current):
        self.current = current
        self.plans = []
        self.key = None  # the diff key it is recorded under
        self.op = None
        self.merged = None


def schedule(plan, reader, ns, nft_plan, label='nftables'):
    """Put an nf_tables plan into the engine's plan: one atomic transaction, one action a line.

    Several planners of one run (masquerade, the forward scope) may plan for the same namespace,
    each against the state read once: their plans are merged into one transaction, so that the
    second does not fail the generation check the first one's commit moved on.
    """
    entry = plan.nft_transactions.get(ns)
    if entry is None:
        entry = plan.nft_transactions[ns] = Transaction(reader.nft(ns))
    entry.plans.append(nft_plan)
    entry.merged = merge(entry.current, entry.plans)
    if entry.key is not None:
        plan.forget(entry.key)
    entry.key = '%s %s' % (label if len(entry.plans) == 1 else 'nftables', ns_key(ns))
    plan.record(entry.key, entry.merged.before or None, entry.merged.after or None)
    lines = ['%s in %s' % (line, where(ns)) for line in entry.merged.lines()]
    if entry.op is None and lines:
        entry.op = plan.add(P.NFT, ns, lines, call=lambda session: _nft_apply.apply(session.nfnl(ns), entry.merged))
    elif entry.op is not None:
        entry.op.summary = lines
