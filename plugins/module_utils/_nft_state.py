# -*- coding: utf-8 -*-
# Copyright: linuxnet.netns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
# Do not use this from other collections or standalone plugins/modules!
"""nf_tables state: what our table holds, and the forward-drop chains of other tables, each read
in one pass over an nfnetlink socket (_state.Reader asks; planners get what it read)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno

from ansible_collections.linuxnet.netns.plugins.module_utils._codec import NLM_F_DUMP, decode
from ansible_collections.linuxnet.netns.plugins.module_utils import _nft_codec as N
from ansible_collections.linuxnet.netns.plugins.module_utils._nft_codec import (
    HOOK_NAMES,
    HOOKS,
    NF_DROP,
    NFPROTO_INET,
    NFPROTO_NAMES,
    NFT_MSG_GETCHAIN,
    NFT_MSG_GETGEN,
    NFT_MSG_GETRULE,
    NFT_MSG_GETTABLE,
    NFT_TABLE_F_DORMANT,
    POLICIES,
    get_attr,
    nft_message,
)
from ansible_collections.linuxnet.netns.plugins.module_utils._nft_rules import TABLE, spec_from_comment
from ansible_collections.linuxnet.netns.plugins.module_utils._transport import NetlinkError


class ChainInfo(object):
    def __init__(self, name, handle, type, hook, priority, policy):
        self.name = name
        self.handle = handle
        self.type = type
        self.hook = hook
        self.priority = priority
        self.policy = policy

    def key(self):
        return (self.type, self.hook, self.priority, self.policy)

    @property
    def text(self):
        if self.hook is None:
            return '(regular chain)'
        return 'type %s hook %s priority %s; policy %s;' % self.key()


class RuleInfo(object):
    """A rule found in our table.

    `spec` is what the comment claims (None: not a comment of ours); `verified` says the rule
    really is that spec, in the chain the spec belongs to.
    """

    def __init__(self, chain, handle, comment, canonical, parsers):
        self.chain = chain
        self.handle = handle
        self.comment = comment
        self.canonical = canonical
        self.spec = spec_from_comment(comment, canonical, parsers)
        self.verified = bool(self.spec is not None and self.spec.comment == comment and
                             self.spec.chain == chain and self.spec.canonical() == canonical)

    @property
    def key(self):
        """Identity: the canonical comment of the spec it claims to be, else its raw comment."""
        return self.spec.key if self.spec is not None else self.comment

    @property
    def ours(self):
        return self.spec is not None

    @property
    def text(self):
        if self.verified:
            return self.spec.text
        if self.spec is not None:
            return 'handle %d: comment "%s" (the rule does not match its comment)' % (self.handle, self.comment)
        if self.comment:
            return 'handle %d: comment "%s" (not managed by linuxnet.netns)' % (self.handle, self.comment)
        return 'handle %d (not managed by linuxnet.netns)' % self.handle

    def __repr__(self):
        return 'RuleInfo(%r, %r, %r, verified=%r)' % (self.chain, self.handle, self.comment, self.verified)


class NftState(object):
    """What our table holds. `table` is None when it does not exist."""

    def __init__(self, genid=None, table=None, chains=None, rules=None):
        self.genid = genid
        self.table = table  # {'handle', 'flags', 'use'} or None
        self.chains = chains or {}
        self.rules = rules or []

    @property
    def exists(self):
        return self.table is not None

    def foreign_objects(self):
        """Sets, maps, objects or flowtables in our table: its use count minus its chains."""
        if self.table is None:
            return 0
        return max(0, (self.table.get('use') or 0) - len(self.chains))

    def view(self):
        """A dict for diffs: chains with their rules as `nft list` prints them."""
        if self.table is None:
            return {}
        chains = {}
        for name, chain in sorted(self.chains.items()):
            chains[name] = {'chain': chain.text, 'rules': []}
        for rule in self.rules:
            chains.setdefault(rule.chain, {'chain': None, 'rules': []})['rules'].append(rule.text)
        view = {'table': 'inet %s' % TABLE, 'chains': chains}
        if self.table.get('flags', 0) & NFT_TABLE_F_DORMANT:
            view['dormant'] = True
        return view


def _dump(sock, cls, nft_msg, attrs, flags=0, family=NFPROTO_INET):
    """One nf_tables get (flags=0) or dump, decoded by pyroute2's class `cls`."""
    return [decode(cls, raw) for raw in sock.query(nft_message(cls, nft_msg, flags, attrs, family))]


def _get(sock, cls, nft_msg, attrs, flags=0):
    """One nf_tables get (flags=0) or dump; ENOENT (no such table or chain) is an empty answer."""
    try:
        return _dump(sock, cls, nft_msg, attrs, flags)
    except NetlinkError as exc:
        if exc.code == errno.ENOENT:
            return []
        raise


def read(sock, parsers):
    """Our table, its chains and its rules: one get, one chain dump, one rule dump.

    `sock` is a NETLINK_NETFILTER `Netlink` (`Namespaces.nfnl(name)`); `parsers` turn our rules'
    comments into the rules they name (spec_from_comment). The generation id is
    read first, so that the transaction can refuse to act on a state that changed since.
    """
    gen = _dump(sock, N.nft_gen_msg, NFT_MSG_GETGEN, [], family=0)
    genid = gen[0].get_attr('NFTA_GEN_ID') if gen else None
    tables = _get(sock, N.nft_table_msg, NFT_MSG_GETTABLE, [('NFTA_TABLE_NAME', TABLE)])
    if not tables:
        return NftState(genid)
    msg = tables[0]
    table = {'handle': msg.get_attr('NFTA_TABLE_HANDLE'), 'flags': msg.get_attr('NFTA_TABLE_FLAGS') or 0,
             'use': msg.get_attr('NFTA_TABLE_USE')}
    chains = {}
    # the kernel cannot filter a chain dump by table: this lists the chains of every inet table
    for msg in _get(sock, N.nft_chain_msg, NFT_MSG_GETCHAIN, [], flags=NLM_F_DUMP):
        if msg.get_attr('NFTA_CHAIN_TABLE') != TABLE:
            continue
        hook = msg.get_attr('NFTA_CHAIN_HOOK')
        policy = msg.get_attr('NFTA_CHAIN_POLICY')
        name = msg.get_attr('NFTA_CHAIN_NAME')
        chains[name] = ChainInfo(
            name, msg.get_attr('NFTA_CHAIN_HANDLE'), msg.get_attr('NFTA_CHAIN_TYPE'),
            HOOK_NAMES.get(get_attr(hook, 'NFTA_HOOK_HOOKNUM')) if hook is not None else None,
            get_attr(hook, 'NFTA_HOOK_PRIORITY'),
            POLICIES.get(policy, policy) if hook is not None else None)
    rules = []
    for table_name, chain, handle, comment, canonical in _rules(sock, [('NFTA_RULE_TABLE', TABLE)]):
        if table_name == TABLE:
            rules.append(RuleInfo(chain, handle, comment, canonical, parsers))
    return NftState(genid, table, chains, rules)


def _rules(sock, attrs, family=NFPROTO_INET):
    """[(table, chain, handle, comment, canonical expressions)] of a rule dump; ENOENT: none."""
    try:
        return [N.decode_rule(msg) for msg in sock.query(N.rule_message(NFT_MSG_GETRULE, NLM_F_DUMP, attrs, family))]
    except NetlinkError as exc:
        if exc.code == errno.ENOENT:
            return []
        raise


class ForeignRule(object):
    def __init__(self, handle, comment, canonical):
        self.handle = handle
        self.comment = comment
        self.canonical = canonical


def forward_drop_targets(sock):
    """The chains where our subnets need an accept: in every other table with a base chain on the
    forward hook whose policy is drop, its DOCKER-USER chain when it has one (Docker evaluates it
    first and keeps it for rules like ours), else that base chain."""
    tables = {}
    for msg in _dump(sock, N.nft_chain_msg, NFT_MSG_GETCHAIN, [], flags=NLM_F_DUMP, family=0):
        family, table = msg['nfgen_family'], msg.get_attr('NFTA_CHAIN_TABLE')
        if (family, table) == (NFPROTO_INET, TABLE) or family not in NFPROTO_NAMES:
            continue
        hook = msg.get_attr('NFTA_CHAIN_HOOK')
        entry = tables.setdefault((family, table), {'chains': set(), 'drops': []})
        entry['chains'].add(msg.get_attr('NFTA_CHAIN_NAME'))
        if hook is not None and get_attr(hook, 'NFTA_HOOK_HOOKNUM') == HOOKS['forward'] and \
                msg.get_attr('NFTA_CHAIN_POLICY') == NF_DROP:
            entry['drops'].append(msg.get_attr('NFTA_CHAIN_NAME'))
    targets = []
    for (family, table), entry in sorted(tables.items()):
        if entry['drops']:
            chains = ['DOCKER-USER'] if 'DOCKER-USER' in entry['chains'] else sorted(entry['drops'])
            targets.extend((family, table, chain) for chain in chains)
    return targets


def _foreign_rules(sock, target):
    family, table, chain = target
    return [ForeignRule(handle, comment, canonical)
            for _table, rule_chain, handle, comment, canonical in _rules(
                sock, [('NFTA_RULE_TABLE', table), ('NFTA_RULE_CHAIN', chain)], family)
            if rule_chain == chain]


def read_foreign_forward(sock):
    """[(target, [ForeignRule])]: the forward-drop chains of other tables (forward_drop_targets)
    and every rule in each, ours (a comment of ours) and theirs."""
    return [(target, _foreign_rules(sock, target)) for target in forward_drop_targets(sock)]
