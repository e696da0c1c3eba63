# -*- coding: utf-8 -*-
# Copyright: linuxnet.netns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""nf_tables: the rules we own, read in one pass, planned, and applied as one transaction.

Everything lives in one table, `inet linuxnet_netns`; no other table is ever read for planning,
changed or flushed. A rule's identity is its comment (NFTA_RULE_USERDATA, the TLV `nft` itself
writes for `comment "..."`), e.g. `linuxnet:masq 10.0.0.0/24 eth0`. The comment is trusted for
identity only: the expressions are decoded too, and a rule whose expressions are not exactly the
ones its comment promises is replaced.

Rules are described by `RuleSpec` objects made of `Term`s (matches and statements). A term knows
how to encode itself as nf_tables expressions (the same expressions `nft` 1.0.x generates for the
same text, so that `nft list ruleset` prints our rules exactly like its own) and what the kernel
will report back, in a normalised form that does not depend on how `nft` chose to encode a prefix
(a short payload load, or a full load and a bitwise mask).

Data flow: `read(sock)` -> `NftState`; `plan(state, present, absent)` (or `plan_masquerade`) ->
`Plan`, a list of changes that also carries `before`/`after` and one human line per change;
`apply(sock, plan)` sends the whole plan as one nf_tables batch, which the kernel commits
atomically or not at all.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import hashlib
import ipaddress
import select
import socket
import struct
import time

from ansible_collections.linuxnet.netns.plugins.module_utils._nl import (
    NLM_F_ACK,
    NLM_F_CREATE,
    NLM_F_DUMP,
    NLMSG_ERROR,
    NetlinkError,
    _ext_ack_text,
    encode,
    pyroute2_module,
)
from ansible_collections.linuxnet.netns.plugins.module_utils._common import PlanError

try:
    # the nf_tables messages only, without pyroute2's package __init__ (see _nl.pyroute2_module)
    nfgen_msg = pyroute2_module('pyroute2.netlink.nfnetlink').nfgen_msg
    _nftsocket = pyroute2_module('pyroute2.netlink.nfnetlink.nftsocket')
    NFT_MSG_DELCHAIN = _nftsocket.NFT_MSG_DELCHAIN
    NFT_MSG_DELRULE = _nftsocket.NFT_MSG_DELRULE
    NFT_MSG_DELTABLE = _nftsocket.NFT_MSG_DELTABLE
    NFT_MSG_GETCHAIN = _nftsocket.NFT_MSG_GETCHAIN
    NFT_MSG_GETGEN = _nftsocket.NFT_MSG_GETGEN
    NFT_MSG_GETRULE = _nftsocket.NFT_MSG_GETRULE
    NFT_MSG_GETTABLE = _nftsocket.NFT_MSG_GETTABLE
    NFT_MSG_NEWCHAIN = _nftsocket.NFT_MSG_NEWCHAIN
    NFT_MSG_NEWRULE = _nftsocket.NFT_MSG_NEWRULE
    NFT_MSG_NEWTABLE = _nftsocket.NFT_MSG_NEWTABLE
    nft_chain_msg = _nftsocket.nft_chain_msg
    nft_contains_expr = _nftsocket.nft_contains_expr
    nft_data = _nftsocket.nft_data
    nft_gen_msg = _nftsocket.nft_gen_msg
    nft_rule_msg = _nftsocket.nft_rule_msg
    nft_table_msg = _nftsocket.nft_table_msg
    HAS_PYROUTE2 = True
    PYROUTE2_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - exercised through missing_required_lib
    HAS_PYROUTE2 = False
    PYROUTE2_IMPORT_ERROR = exc

TABLE = 'linuxnet_netns'
COMMENT_PREFIX = 'linuxnet:'

NFNL_SUBSYS_NFTABLES = 10
NFNL_MSG_BATCH_BEGIN = 0x10
NFNL_MSG_BATCH_END = 0x11
NLM_F_APPEND = 0x800
ERESTART = getattr(errno, 'ERESTART', 85)

NFPROTO_INET = 1
NFPROTO_IPV4 = 2
NFPROTO_IPV6 = 10
NFT_TABLE_F_DORMANT = 0x1

NF_DROP, NF_ACCEPT = 0, 1
POLICIES = {NF_DROP: 'drop', NF_ACCEPT: 'accept'}
HOOKS = {'prerouting': 0, 'input': 1, 'forward': 2, 'output': 3, 'postrouting': 4}
HOOK_NAMES = dict((num, name) for name, num in HOOKS.items())

NFT_REG_VERDICT = 0
NFT_REG_1 = 1
NFT_CMP_EQ = 0
NFT_CMP_NEQ = 1
NFT_META_IIFNAME = 6
NFT_META_OIFNAME = 7
NFT_META_NFPROTO = 15
NFT_PAYLOAD_NETWORK_HEADER = 1
NFT_BITWISE_BOOL = 0
NFTNL_UDATA_RULE_COMMENT = 0
IFNAMSIZ = 16

# How long apply() waits for the kernel's answer. The kernel processes a batch inside our
# sendmsg() call, so every answer is queued before send() returns; the wait is a safety net.
ANSWER_TIMEOUT = 10.0


class NftError(NetlinkError):
    """The kernel refused a transaction; `change` is the change it refused, if it named one."""

    def __init__(self, code, what, kernel_msg=None, change=None):
        super(NftError, self).__init__(code, what, kernel_msg)
        self.change = change


class NftConflict(NftError):
    """The ruleset changed between read() and apply() (ERESTART): read and plan again."""


# --- pyroute2 glue ----------------------------------------------------------------------------

if HAS_PYROUTE2:
    class nft_rule_raw_msg(nfgen_msg, nft_contains_expr):
        """nft_rule_msg with NFTA_RULE_USERDATA as raw bytes.

        pyroute2 0.7.x shows userdata as a hex dump and 0.9.x as a 'comment' that reads the
        first TLV's type and length as one big-endian length; we parse the TLVs ourselves.
        """
        prefix = 'NFTA_RULE_'
        nla_map = tuple(
            (item[0], 'cdata') + tuple(item[2:]) if item[0] == 'NFTA_RULE_USERDATA' else tuple(item)
            for item in nft_rule_msg.nla_map)

    class nfnl_batch_msg(nfgen_msg):
        nla_map = (
            ('NFNL_BATCH_UNSPEC', 'none'),
            ('NFNL_BATCH_GENID', 'be32'),
        )

    _EXPR = nft_contains_expr.nft_expr

    def _reverse(ops):
        return dict((name, num) for num, name in ops.items())

    _REGS = _reverse(_EXPR.nft_cmp.regs.ops)
    _CMP_OPS = _reverse(_EXPR.nft_cmp.ops.ops)
    _META_KEYS = _reverse(_EXPR.nft_meta.meta_key.ops)
    _PAYLOAD_BASES = _reverse(_EXPR.nft_payload.base_type.ops)
    _BITWISE_OPS = _reverse(_EXPR.nft_bitwise.bitwise_op.ops)
    _VERDICTS = _reverse(nft_data.nfta_data.verdict.verdict_code.ops)


def _number(value, names):
    """An enum attribute as its number: pyroute2 decodes the ones it knows into names."""
    if value is None or isinstance(value, int):
        return value
    return names.get(value)


def _msg_type(nft_msg):
    return (NFNL_SUBSYS_NFTABLES << 8) | nft_msg


_FIELDS = {'nfgen_family': NFPROTO_INET, 'version': 0, 'res_id': 0}


def _data(value):
    return {'attrs': [('NFTA_DATA_VALUE', bytes(value))]}


def _expr(name, attrs=None):
    """One nf_tables expression, as pyroute2 encodes it."""
    result = [('NFTA_EXPR_NAME', name)]
    if attrs is not None:
        result.append(('NFTA_EXPR_DATA', {'attrs': attrs}))
    return {'attrs': result}


def comment_userdata(comment):
    """NFTA_RULE_USERDATA holding a comment, as libnftnl writes it: TLV type, length, text, NUL."""
    text = comment.encode('utf-8') + b'\0'
    if len(text) > 255:
        raise PlanError('rule comment %r is longer than 254 bytes' % comment)
    return struct.pack('BB', NFTNL_UDATA_RULE_COMMENT, len(text)) + text


def parse_userdata(data):
    """The comment in a rule's NFTA_RULE_USERDATA, or None."""
    if not data:
        return None
    data = bytes(data)
    pos = 0
    while pos + 2 <= len(data):
        utype, ulen = struct.unpack_from('BB', data, pos)
        value = data[pos + 2:pos + 2 + ulen]
        if len(value) < ulen:
            return None
        if utype == NFTNL_UDATA_RULE_COMMENT:
            return value.split(b'\0', 1)[0].decode('utf-8', 'replace')
        pos += 2 + ulen
    return None


# --- terms: what a rule matches and does -----------------------------------------------------
#
# canonical() items (the normalised form of what the kernel reports back):
#   ('cmp', source, op, mask, value)   source: ('meta', key) or ('payload', base, offset);
#                                      mask and value are cut after the last mask byte that is
#                                      not zero, so a 3-byte load of a /24 and a 4-byte load with
#                                      mask ff.ff.ff.00 are the same thing
#   ('masq', flags)
#   ('verdict', code, chain)
#   ('unknown', expression name)       anything we do not model: never equal to a spec

def _cmp_item(source, op, mask, value):
    mask = bytes(mask)
    value = bytes(value)
    cut = len(mask)
    while cut and mask[cut - 1] == 0:
        cut -= 1
    return ('cmp', source, op, mask[:cut], value[:cut])


def _cmp_expr(op, value):
    return _expr('cmp', [('NFTA_CMP_SREG', NFT_REG_1), ('NFTA_CMP_OP', op), ('NFTA_CMP_DATA', _data(value))])


class Term(object):
    """One match or statement of a rule."""

    text = ''

    def expressions(self):
        raise NotImplementedError

    def canonical(self):
        raise NotImplementedError


class MatchAddress(Term):
    """`ip saddr 10.0.0.0/24`, `ip6 daddr != fd00::/64`: nfproto check + network header load."""

    OFFSETS = {(4, 'saddr'): 12, (4, 'daddr'): 16, (6, 'saddr'): 8, (6, 'daddr'): 24}

    def __init__(self, field, network, negate=False, nfproto=True):
        if field not in ('saddr', 'daddr'):
            raise ValueError('address field must be saddr or daddr, not %r' % (field,))
        self.field = field
        self.network = ipaddress.ip_network(network, strict=False)
        self.negate = negate
        # in an inet table the family must be checked first; in an ip/ip6 table it is implied
        # (and iptables-nft only understands the rule without the check)
        self.check_family = nfproto
        self.nfproto = NFPROTO_IPV4 if self.network.version == 4 else NFPROTO_IPV6
        self.offset = self.OFFSETS[(self.network.version, field)]
        net = self.network
        shown = str(net.network_address) if net.prefixlen == net.max_prefixlen else str(net)
        self.text = '%s %s %s%s' % ('ip' if net.version == 4 else 'ip6', field, '!= ' if negate else '', shown)

    def _mask(self):
        return self.network.netmask.packed

    def expressions(self):
        net = self.network
        size = net.max_prefixlen // 8
        op = NFT_CMP_NEQ if self.negate else NFT_CMP_EQ
        exprs = []
        if self.check_family:
            exprs = [
                _expr('meta', [('NFTA_META_DREG', NFT_REG_1), ('NFTA_META_KEY', NFT_META_NFPROTO)]),
                _cmp_expr(NFT_CMP_EQ, struct.pack('B', self.nfproto)),
            ]
        # nft 1.0: a whole-byte prefix loads only its bytes; any other needs the full address and
        # a mask (a /0 too, which matches every address of the family)
        if net.prefixlen % 8 == 0 and net.prefixlen:
            load = net.prefixlen // 8
        else:
            load = size
        exprs.append(_expr('payload', [
            ('NFTA_PAYLOAD_DREG', NFT_REG_1), ('NFTA_PAYLOAD_BASE', NFT_PAYLOAD_NETWORK_HEADER),
            ('NFTA_PAYLOAD_OFFSET', self.offset), ('NFTA_PAYLOAD_LEN', load)]))
        if load == size and net.prefixlen != net.max_prefixlen:
            exprs.append(_expr('bitwise', [
                ('NFTA_BITWISE_SREG', NFT_REG_1), ('NFTA_BITWISE_DREG', NFT_REG_1),
                ('NFTA_BITWISE_LEN', size), ('NFTA_BITWISE_MASK', _data(self._mask())),
                ('NFTA_BITWISE_XOR', _data(b'\0' * size))]))
        exprs.append(_cmp_expr(op, net.network_address.packed[:load]))
        return exprs

    def canonical(self):
        family = (_cmp_item(('meta', NFT_META_NFPROTO), NFT_CMP_EQ, b'\xff', struct.pack('B', self.nfproto)),)
        return (family if self.check_family else ()) + (
            _cmp_item(('payload', NFT_PAYLOAD_NETWORK_HEADER, self.offset),
                      NFT_CMP_NEQ if self.negate else NFT_CMP_EQ, self._mask(), self.network.network_address.packed),
        )


def validate_ifname(name, what='interface name'):
    """An exact Linux interface name; `*` (nft's wildcard) and quotes are refused."""
    if not isinstance(name, str) or not name:
        raise PlanError('%s must be a non-empty string, got %r' % (what, name))
    raw = name.encode('utf-8')
    if len(raw) >= IFNAMSIZ:
        raise PlanError('%s %r is longer than %d bytes' % (what, name, IFNAMSIZ - 1))
    if name in ('.', '..') or any(c in name for c in '/:*"\\') or any(
            not (33 <= ord(c) < 127) for c in name):
        raise PlanError('%s %r is not a valid interface name (printable ASCII without spaces, '
                        '/ : * " or \\)' % (what, name))
    return name


class MatchIfname(Term):
    """`oifname "eth0"` / `iifname "eth0"`: an exact name, compared as IFNAMSIZ bytes."""

    KEYS = {'oifname': NFT_META_OIFNAME, 'iifname': NFT_META_IIFNAME}

    def __init__(self, key, name, negate=False):
        if key not in self.KEYS:
            raise ValueError('interface match must be oifname or iifname, not %r' % (key,))
        self.key = key
        self.name = validate_ifname(name, key)
        self.negate = negate
        self.text = '%s %s"%s"' % (key, '!= ' if negate else '', name)

    def _value(self):
        raw = self.name.encode('utf-8')
        return raw + b'\0' * (IFNAMSIZ - len(raw))

    def expressions(self):
        return [
            _expr('meta', [('NFTA_META_DREG', NFT_REG_1), ('NFTA_META_KEY', self.KEYS[self.key])]),
            _cmp_expr(NFT_CMP_NEQ if self.negate else NFT_CMP_EQ, self._value()),
        ]

    def canonical(self):
        return (_cmp_item(('meta', self.KEYS[self.key]), NFT_CMP_NEQ if self.negate else NFT_CMP_EQ,
                          b'\xff' * IFNAMSIZ, self._value()),)


class Masquerade(Term):
    text = 'masquerade'

    def expressions(self):
        return [_expr('masq')]

    def canonical(self):
        return (('masq', ()),)


class Verdict(Term):
    """`accept` / `drop`."""

    def __init__(self, verdict):
        codes = dict((name, num) for num, name in POLICIES.items())
        if verdict not in codes:
            raise ValueError('verdict must be accept or drop, not %r' % (verdict,))
        self.code = codes[verdict]
        self.text = verdict

    def expressions(self):
        return [_expr('immediate', [
            ('NFTA_IMMEDIATE_DREG', NFT_REG_VERDICT),
            ('NFTA_IMMEDIATE_DATA', {'attrs': [('NFTA_DATA_VERDICT', {'attrs': [('NFTA_VERDICT_CODE', self.code)]})]}),
        ])]

    def canonical(self):
        return (('verdict', self.code, None),)


# --- decoding what the kernel reports ----------------------------------------------------------

def _attr(nla, name):
    return nla.get_attr(name) if nla is not None else None


def _data_value(nla):
    value = _attr(nla, 'NFTA_DATA_VALUE')
    return bytes(value) if value is not None else None


_IFNAME_SOURCES = (('meta', NFT_META_IIFNAME), ('meta', NFT_META_OIFNAME))


def decode_expressions(exprs):
    """A rule's expressions in the canonical form of Term.canonical()."""
    regs = {}
    out = []
    for expr in exprs or ():
        name = expr.get_attr('NFTA_EXPR_NAME')
        data = expr.get_attr('NFTA_EXPR_DATA')
        if name == 'meta' and _attr(data, 'NFTA_META_DREG') is not None:
            key = _number(_attr(data, 'NFTA_META_KEY'), _META_KEYS)
            regs[_number(_attr(data, 'NFTA_META_DREG'), _REGS)] = (('meta', key), None, None)
        elif name == 'payload' and _attr(data, 'NFTA_PAYLOAD_DREG') is not None:
            base = _number(_attr(data, 'NFTA_PAYLOAD_BASE'), _PAYLOAD_BASES)
            length = _attr(data, 'NFTA_PAYLOAD_LEN')
            regs[_number(_attr(data, 'NFTA_PAYLOAD_DREG'), _REGS)] = (
                ('payload', base, _attr(data, 'NFTA_PAYLOAD_OFFSET')), length, None)
        elif name == 'bitwise':
            source = regs.get(_number(_attr(data, 'NFTA_BITWISE_SREG'), _REGS))
            op = _number(_attr(data, 'NFTA_BITWISE_OP'), _BITWISE_OPS)
            mask = _data_value(_attr(data, 'NFTA_BITWISE_MASK'))
            xor = _data_value(_attr(data, 'NFTA_BITWISE_XOR'))
            dreg = _number(_attr(data, 'NFTA_BITWISE_DREG'), _REGS)
            if source is None or op not in (None, NFT_BITWISE_BOOL) or mask is None or xor is None or any(
                    bytearray(xor)) or (source[1] is not None and len(mask) != source[1]) or source[2] is not None:
                out.append(('unknown', name))
                regs.pop(dreg, None)
            else:
                regs[dreg] = (source[0], len(mask), mask)
        elif name == 'cmp':
            source = regs.get(_number(_attr(data, 'NFTA_CMP_SREG'), _REGS))
            value = _data_value(_attr(data, 'NFTA_CMP_DATA'))
            op = _number(_attr(data, 'NFTA_CMP_OP'), _CMP_OPS)
            if source is None or value is None or (source[1] is not None and len(value) > source[1]):
                out.append(('unknown', name))
            else:
                mask = source[2][:len(value)] if source[2] is not None else b'\xff' * len(value)
                if source[0] in _IFNAME_SOURCES and source[2] is None and b'\0' in value:
                    # iptables compares a name up to its NUL only; the register holds the name
                    # padded with NULs, so that is the same match as nft's full IFNAMSIZ compare
                    value = value[:IFNAMSIZ] + b'\0' * (IFNAMSIZ - len(value))
                    mask = b'\xff' * IFNAMSIZ
                out.append(_cmp_item(source[0], op, mask, value))
        elif name == 'masq':
            flags = _attr(data, 'NFTA_MASQ_FLAGS')
            if _attr(data, 'NFTA_MASQ_REG_PROTO_MIN') is not None:
                out.append(('unknown', name))
            else:
                out.append(('masq', tuple(sorted(flags or ()))))
        elif name == 'immediate' and _number(_attr(data, 'NFTA_IMMEDIATE_DREG'), _REGS) == NFT_REG_VERDICT:
            verdict = _attr(_attr(data, 'NFTA_IMMEDIATE_DATA'), 'NFTA_DATA_VERDICT')
            out.append(('verdict', _number(_attr(verdict, 'NFTA_VERDICT_CODE'), _VERDICTS),
                        _attr(verdict, 'NFTA_VERDICT_CHAIN')))
        else:
            out.append(('unknown', name))
    return tuple(out)


# --- chains and rules we know -----------------------------------------------------------------

class ChainSpec(object):
    """A base chain of our table."""

    def __init__(self, name, type, hook, priority, policy='accept'):
        self.name = name
        self.type = type
        self.hook = hook
        self.priority = priority
        self.policy = policy

    def key(self):
        return (self.type, self.hook, self.priority, self.policy)

    @property
    def text(self):
        return 'type %s hook %s priority %d; policy %s;' % self.key()


CHAINS = {
    'postrouting': ChainSpec('postrouting', 'nat', 'postrouting', 100),  # srcnat
    'forward': ChainSpec('forward', 'filter', 'forward', 0),
}


class RuleSpec(object):
    """A rule we want: its chain, its identity (the comment) and its terms."""

    def __init__(self, chain, comment, terms, key=None):
        if chain not in CHAINS:
            raise ValueError('unknown chain %r (known: %s)' % (chain, ', '.join(sorted(CHAINS))))
        if not comment.startswith(COMMENT_PREFIX):
            raise ValueError('rule comment %r must start with %r' % (comment, COMMENT_PREFIX))
        comment_userdata(comment)
        self.chain = chain
        self.comment = comment
        self.terms = tuple(terms)
        self._key = key

    @property
    def key(self):
        """Identity: the comment, or the part of it that names the rule when the rest varies."""
        return self._key or self.comment

    @property
    def text(self):
        """The rule as `nft list ruleset` prints it."""
        return '%s comment "%s"' % (' '.join(t.text for t in self.terms), self.comment)

    def canonical(self):
        return tuple(item for term in self.terms for item in term.canonical())

    def expressions(self):
        return [expr for term in self.terms for expr in term.expressions()]

    def __eq__(self, other):
        return isinstance(other, RuleSpec) and (self.chain, self.comment, self.canonical()) == (
            other.chain, other.comment, other.canonical())

    def __ne__(self, other):
        return not self == other

    def __hash__(self):
        return hash((self.chain, self.comment))

    def __repr__(self):
        return 'RuleSpec(%r, %r)' % (self.chain, self.text)


def masquerade_rule(source, oifname, exclude=()):
    """`ip saddr <source> [ip daddr != <x> ...] oifname "<oifname>" masquerade` in chain postrouting.

    No `ip daddr != <source>`: the rule only applies to packets leaving through `oifname`, and
    traffic that stays inside the prefix does not leave through the uplink (this is what Docker's
    `-s <net> ! -o docker0 -j MASQUERADE` achieves too). `exclude` lists destinations that keep
    their source address (other managed subnets reached over the underlay, host-gw style).

    The identity is `linuxnet:masq <source> <oifname>`; with exclusions the comment adds
    `except=<hash of them>` (a comment holds at most 128 bytes, a list of prefixes would not fit),
    and the prefixes themselves are read back from the rule's expressions.
    """
    try:
        network = ipaddress.ip_network(source, strict=False)
    except ValueError as exc:
        raise PlanError('source %r is not an IPv4 or IPv6 prefix: %s' % (source, exc))
    validate_ifname(oifname, 'oifname')
    excluded = sorted(set(ipaddress.ip_network(x, strict=False) for x in exclude), key=lambda n: (n.version, n))
    for net in excluded:
        if net.version != network.version:
            raise PlanError('excluded destination %s is IPv%d but source %s is IPv%d' % (
                net, net.version, network, network.version))
    key = '%smasq %s %s' % (COMMENT_PREFIX, network, oifname)
    comment = key
    if excluded:
        digest = hashlib.sha256(','.join(str(n) for n in excluded).encode()).hexdigest()[:8]
        comment = '%s except=%s' % (key, digest)
    terms = [MatchAddress('saddr', network)] + [MatchAddress('daddr', n, negate=True) for n in excluded]
    return RuleSpec('postrouting', comment, terms + [MatchIfname('oifname', oifname), Masquerade()], key=key)


def _excluded(canonical, version):
    """The destinations a masquerade rule's expressions exclude (`ip daddr != ...`)."""
    offset = MatchAddress.OFFSETS[(version, 'daddr')]
    size = 4 if version == 4 else 16
    found = []
    for item in canonical or ():
        if item[0] == 'cmp' and item[1] == ('payload', NFT_PAYLOAD_NETWORK_HEADER, offset) and item[2] == NFT_CMP_NEQ:
            mask, value = item[3], item[4]
            prefixlen = sum(bin(byte).count('1') for byte in bytearray(mask))
            address = ipaddress.ip_address(bytes(value) + b'\0' * (size - len(value)))
            found.append(ipaddress.ip_network((address, prefixlen), strict=False))
    return found


def _parse_masq(args, canonical=None):
    words = args.split(' ')
    if len(words) == 2:
        return masquerade_rule(words[0], words[1])
    if len(words) == 3 and words[2].startswith('except='):
        source = ipaddress.ip_network(words[0], strict=False)
        return masquerade_rule(words[0], words[1], _excluded(canonical, source.version))
    raise ValueError('not a masquerade comment: %r' % args)


def forward_rules(prefixes):
    """Our forward chain for a safe router, in order: accept what comes from or goes to a managed
    prefix, then drop every other forwarded packet, so that turning forwarding on does not make
    the host a router for anyone else on its networks."""
    networks = sorted(set(ipaddress.ip_network(p, strict=False) for p in prefixes), key=lambda n: (n.version, n))
    specs = []
    for net in networks:
        specs.extend([_forward_accept('saddr', net), _forward_accept('daddr', net)])
    if specs:
        specs.append(RuleSpec('forward', '%sfwd-drop' % COMMENT_PREFIX, [Verdict('drop')]))
    return specs


def _forward_accept(field, net):
    kind = 'src' if field == 'saddr' else 'dst'
    return RuleSpec('forward', '%sfwd-%s %s' % (COMMENT_PREFIX, kind, net), [MatchAddress(field, net), Verdict('accept')])


def _parse_forward(field):
    return lambda args, canonical=None: _forward_accept(field, ipaddress.ip_network(args, strict=True))


def _parse_forward_drop(args, canonical=None):
    if args:
        raise ValueError('fwd-drop takes no argument')
    return RuleSpec('forward', '%sfwd-drop' % COMMENT_PREFIX, [Verdict('drop')])


# kind (the word after `linuxnet:`) -> spec from the rest of the comment
KINDS = {'masq': _parse_masq, 'fwd-src': _parse_forward('saddr'), 'fwd-dst': _parse_forward('daddr'),
         'fwd-drop': _parse_forward_drop}


def spec_from_comment(comment, canonical=None):
    """The RuleSpec a comment of ours names; None for a comment that is not ours or not valid."""
    if not comment or not comment.startswith(COMMENT_PREFIX):
        return None
    kind, _sep, args = comment[len(COMMENT_PREFIX):].partition(' ')
    parse = KINDS.get(kind)
    if parse is None:
        return None
    try:
        return parse(args, canonical)
    except ValueError:
        return None


# --- current state ----------------------------------------------------------------------------

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

    def __init__(self, chain, handle, comment, canonical):
        self.chain = chain
        self.handle = handle
        self.comment = comment
        self.canonical = canonical
        self.spec = spec_from_comment(comment, canonical)
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


def _get(sock, cls, nft_msg, attrs, flags=0):
    """One nf_tables get (flags=0) or dump; ENOENT (no such table or chain) is an empty answer."""
    try:
        return sock.dump(cls, _msg_type(nft_msg), dict(_FIELDS), attrs, flags=flags)
    except NetlinkError as exc:
        if exc.code == errno.ENOENT:
            return []
        raise


def read(sock):
    """Our table, its chains and its rules: one get, one chain dump, one rule dump.

    `sock` is a NETLINK_NETFILTER `Netlink` (`Namespaces.nfnl(name)`). The generation id is
    read first, so apply() can refuse to act on a state that changed since.
    """
    gen = sock.dump(nft_gen_msg, _msg_type(NFT_MSG_GETGEN), dict(_FIELDS, nfgen_family=0), [], flags=0)
    genid = gen[0].get_attr('NFTA_GEN_ID') if gen else None
    tables = _get(sock, nft_table_msg, NFT_MSG_GETTABLE, [('NFTA_TABLE_NAME', TABLE)])
    if not tables:
        return NftState(genid)
    msg = tables[0]
    table = {'handle': msg.get_attr('NFTA_TABLE_HANDLE'), 'flags': msg.get_attr('NFTA_TABLE_FLAGS') or 0,
             'use': msg.get_attr('NFTA_TABLE_USE')}
    chains = {}
    # the kernel cannot filter a chain dump by table: this lists the chains of every inet table
    for msg in _get(sock, nft_chain_msg, NFT_MSG_GETCHAIN, [], flags=NLM_F_DUMP):
        if msg.get_attr('NFTA_CHAIN_TABLE') != TABLE:
            continue
        hook = msg.get_attr('NFTA_CHAIN_HOOK')
        policy = msg.get_attr('NFTA_CHAIN_POLICY')
        name = msg.get_attr('NFTA_CHAIN_NAME')
        chains[name] = ChainInfo(
            name, msg.get_attr('NFTA_CHAIN_HANDLE'), msg.get_attr('NFTA_CHAIN_TYPE'),
            HOOK_NAMES.get(_attr(hook, 'NFTA_HOOK_HOOKNUM')) if hook is not None else None,
            _attr(hook, 'NFTA_HOOK_PRIORITY'),
            POLICIES.get(policy, policy) if hook is not None else None)
    rules = []
    for msg in _get(sock, nft_rule_raw_msg, NFT_MSG_GETRULE, [('NFTA_RULE_TABLE', TABLE)], flags=NLM_F_DUMP):
        if msg.get_attr('NFTA_RULE_TABLE') != TABLE:
            continue
        rules.append(RuleInfo(msg.get_attr('NFTA_RULE_CHAIN'), msg.get_attr('NFTA_RULE_HANDLE'),
                              parse_userdata(msg.get_attr('NFTA_RULE_USERDATA')),
                              decode_expressions(msg.get_attr('NFTA_RULE_EXPRESSIONS'))))
    return NftState(genid, table, chains, rules)


# --- changes ----------------------------------------------------------------------------------

class Change(object):
    """One step of a plan: `text` for humans, `messages()` for the kernel."""

    action = None
    family = NFPROTO_INET  # of the table the change is in

    def messages(self):
        raise NotImplementedError

    def __repr__(self):
        return '<%s: %s>' % (self.__class__.__name__, self.text)


class AddTable(Change):
    action = 'add_table'
    text = 'add table inet %s' % TABLE

    def messages(self):
        return [(nft_table_msg, NFT_MSG_NEWTABLE, NLM_F_CREATE, [('NFTA_TABLE_NAME', TABLE)])]


class WakeTable(Change):
    action = 'wake_table'
    text = 'add table inet %s { flags 0; } (it is dormant: none of its rules apply)' % TABLE

    def messages(self):
        return [(nft_table_msg, NFT_MSG_NEWTABLE, NLM_F_CREATE,
                 [('NFTA_TABLE_NAME', TABLE), ('NFTA_TABLE_FLAGS', 0)])]


class DeleteTable(Change):
    action = 'delete_table'
    text = 'delete table inet %s (no rules left in it)' % TABLE

    def messages(self):
        return [(nft_table_msg, NFT_MSG_DELTABLE, 0, [('NFTA_TABLE_NAME', TABLE)])]


class AddChain(Change):
    action = 'add_chain'

    def __init__(self, spec):
        self.spec = spec
        self.text = 'add chain inet %s %s { %s }' % (TABLE, spec.name, spec.text)

    def messages(self):
        spec = self.spec
        return [(nft_chain_msg, NFT_MSG_NEWCHAIN, NLM_F_CREATE, [
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
        return [(nft_chain_msg, NFT_MSG_DELCHAIN, 0, [('NFTA_CHAIN_TABLE', TABLE),
                                                      ('NFTA_CHAIN_HANDLE', self.chain.handle)])]


class AddRule(Change):
    action = 'add_rule'

    def __init__(self, spec, replaces=False):
        self.spec = spec
        self.replaces = replaces
        self.text = 'add rule inet %s %s %s' % (TABLE, spec.chain, spec.text)

    def messages(self):
        spec = self.spec
        return [(nft_rule_raw_msg, NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND, [
            ('NFTA_RULE_TABLE', TABLE),
            ('NFTA_RULE_CHAIN', spec.chain),
            ('NFTA_RULE_EXPRESSIONS', spec.expressions()),
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

    def messages(self):
        return [(nft_rule_raw_msg, NFT_MSG_DELRULE, 0, [('NFTA_RULE_TABLE', TABLE),
                                                        ('NFTA_RULE_CHAIN', self.rule.chain),
                                                        ('NFTA_RULE_HANDLE', self.rule.handle)])]


class Plan(list):
    """The changes, in the order apply() sends them, and what they do to the table.

    `before`/`after` are NftState.view() dicts of the state planned from and of the state the
    changes lead to; `genid` is the generation they were planned against.
    """

    def __init__(self, changes=(), before=None, after=None, genid=None):
        super(Plan, self).__init__(changes)
        self.before = before if before is not None else {}
        self.after = after if after is not None else {}
        self.genid = genid

    @property
    def changed(self):
        return bool(self)

    def lines(self):
        return [change.text for change in self]

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
    return Plan(changes, current.view(), _after(current, changes), current.genid)


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
            chains.setdefault(change.spec.chain, {'chain': None, 'rules': []})['rules'].append(change.spec.text)
    return view


# --- other rulesets that drop forwarded traffic (Docker's FORWARD DROP) ---------------------------

NFPROTO_NAMES = {NFPROTO_INET: 'inet', NFPROTO_IPV4: 'ip', NFPROTO_IPV6: 'ip6'}


def _allow_spec(field, net, family):
    """A scoped accept for another table's forward chain. In an ip/ip6 table the family check is
    implied and left out, so that iptables-nft lists the rule as `-s P -j ACCEPT`."""
    kind = 'src' if field == 'saddr' else 'dst'
    return RuleSpec('forward', '%sallow-%s %s' % (COMMENT_PREFIX, kind, net),
                    [MatchAddress(field, net, nfproto=family == NFPROTO_INET), Verdict('accept')])


class ForeignRule(object):
    def __init__(self, handle, comment, canonical):
        self.handle = handle
        self.comment = comment
        self.canonical = canonical


class InsertForeignRule(Change):
    """A scoped accept inserted at the head of another table's chain (ahead of its RETURN/DROP)."""
    action = 'add_rule'

    def __init__(self, target, spec):
        self.family, self.table, self.chain = target
        self.spec = spec
        self.text = 'insert rule %s %s %s %s' % (NFPROTO_NAMES[self.family], self.table, self.chain, spec.text)

    def messages(self):
        return [(nft_rule_raw_msg, NFT_MSG_NEWRULE, NLM_F_CREATE, [
            ('NFTA_RULE_TABLE', self.table), ('NFTA_RULE_CHAIN', self.chain),
            ('NFTA_RULE_EXPRESSIONS', self.spec.expressions()),
            ('NFTA_RULE_USERDATA', comment_userdata(self.spec.comment))])]


class DeleteForeignRule(Change):
    action = 'delete_rule'

    def __init__(self, target, rule):
        self.family, self.table, self.chain = target
        self.rule = rule
        self.text = 'delete rule %s %s %s handle %d # %s' % (
            NFPROTO_NAMES[self.family], self.table, self.chain, rule.handle, rule.comment)

    def messages(self):
        return [(nft_rule_raw_msg, NFT_MSG_DELRULE, 0, [('NFTA_RULE_TABLE', self.table),
                                                        ('NFTA_RULE_CHAIN', self.chain),
                                                        ('NFTA_RULE_HANDLE', self.rule.handle)])]


def forward_drop_targets(sock):
    """The chains where our subnets need an accept: in every other table with a base chain on the
    forward hook whose policy is drop, its DOCKER-USER chain when it has one (Docker evaluates it
    first and keeps it for rules like ours), else that base chain."""
    tables = {}
    for msg in sock.dump(nft_chain_msg, _msg_type(NFT_MSG_GETCHAIN), dict(_FIELDS, nfgen_family=0), [],
                         flags=NLM_F_DUMP):
        family, table = msg['nfgen_family'], msg.get_attr('NFTA_CHAIN_TABLE')
        if (family, table) == (NFPROTO_INET, TABLE) or family not in NFPROTO_NAMES:
            continue
        hook = msg.get_attr('NFTA_CHAIN_HOOK')
        entry = tables.setdefault((family, table), {'chains': set(), 'drops': []})
        entry['chains'].add(msg.get_attr('NFTA_CHAIN_NAME'))
        if hook is not None and _attr(hook, 'NFTA_HOOK_HOOKNUM') == HOOKS['forward'] and \
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
    rules = []
    for msg in sock.dump(nft_rule_raw_msg, _msg_type(NFT_MSG_GETRULE), dict(_FIELDS, nfgen_family=family),
                         [('NFTA_RULE_TABLE', table), ('NFTA_RULE_CHAIN', chain)], flags=NLM_F_DUMP):
        if msg.get_attr('NFTA_RULE_CHAIN') != chain:
            continue
        rules.append(ForeignRule(msg.get_attr('NFTA_RULE_HANDLE'), parse_userdata(msg.get_attr('NFTA_RULE_USERDATA')),
                                 decode_expressions(msg.get_attr('NFTA_RULE_EXPRESSIONS'))))
    return rules


def plan_foreign_forward(sock, prefixes):
    """Changes that give `prefixes` scoped accepts in every forward-drop chain of other tables,
    and remove ours that are no longer wanted. Their rules are never touched."""
    networks = sorted(set(ipaddress.ip_network(p, strict=False) for p in prefixes), key=lambda n: (n.version, n))
    changes, before, after = [], {}, {}
    for target in forward_drop_targets(sock):
        family = target[0]
        wanted = [_allow_spec(field, net, family) for net in networks
                  if family == NFPROTO_INET or net.version == (4 if family == NFPROTO_IPV4 else 6)
                  for field in ('saddr', 'daddr')]
        ours = [rule for rule in _foreign_rules(sock, target) if (rule.comment or '').startswith(COMMENT_PREFIX)]
        name = '%s %s %s' % (NFPROTO_NAMES[family], target[1], target[2])
        before[name] = [rule.comment for rule in ours]
        after[name] = [spec.comment for spec in wanted]
        if sorted((r.comment, r.canonical) for r in ours) != sorted((s.comment, s.canonical()) for s in wanted):
            changes.extend(DeleteForeignRule(target, rule) for rule in ours)
            # each insert goes to the head: insert in reverse to keep the listed order
            changes.extend(InsertForeignRule(target, spec) for spec in reversed(wanted))
    return changes, dict((k, v) for k, v in before.items() if v), dict((k, v) for k, v in after.items() if v)


def plan_forward(current, prefixes):
    """Plan for the forward chain: exactly forward_rules(prefixes), in that order (none: our forward
    rules removed). Order matters here - the drop must come last - and rules are appended, so any
    difference rewrites our forward rules as a whole, in the same atomic transaction."""
    desired = forward_rules(prefixes)
    ours = [rule for rule in current.rules if rule.chain == 'forward' and rule.ours]
    if len(ours) == len(desired) and all(rule.verified and rule.spec == spec for rule, spec in zip(ours, desired)):
        return Plan([], current.view(), current.view(), current.genid)
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
    return Plan(changes, current.view(), _after(current, changes), current.genid)


def plan_router(sock, current, prefixes, foreign=True):
    """Our forward chain for `prefixes` and, with `foreign`, the scoped accepts in other rulesets
    that drop forwarded traffic: one plan, one atomic transaction."""
    own = plan_forward(current, prefixes)
    if not foreign:
        return own
    changes, before, after = plan_foreign_forward(sock, prefixes)
    if not changes and not before:
        return own
    return Plan(list(own) + changes, dict(own.before, other_rulesets=before),
                dict(own.after, other_rulesets=after), current.genid)


def plan_masquerade(current, desired):
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
    changes = [change for one in plans for change in one if not isinstance(change, table_ops)]
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
            before['other_rulesets'] = one.before.get('other_rulesets')
            after['other_rulesets'] = one.after.get('other_rulesets')
    return Plan(changes, before, after, current.genid)


# --- applying ---------------------------------------------------------------------------------

def batch(plan_or_changes, genid=None):
    """The encoded batch: [(bytes, change or None)], BEGIN and END included.

    How the kernel answers a batch (nfnetlink_rcv_batch; checked on 6.18, see tests):
    - every message in between that fails gets an error, whatever its flags; it does not stop
      the kernel from checking the rest, and then nothing of the batch is committed;
    - a message with NLM_F_ACK also gets an ack when it succeeds; errors and acks come in batch
      order, after the whole batch was processed;
    - batch-wide failures (no CAP_NET_ADMIN, a stale NFNL_BATCH_GENID -> ERESTART, no memory,
      a commit that fails) are one error carrying BEGIN's sequence number, and may come with no
      per-message answer at all;
    - BEGIN and END are acked only on kernels >= 6.10 and only when they ask for it (END only
      after a successful commit), so we never ask: older kernels would leave us waiting;
    - a batch without END is dropped silently (acks, no commit): ours always ends in END, in the
      same sendmsg.
    So NLM_F_ACK goes on the last change only: its answer comes after every other one, and the
    number of answers stays small however big the batch (no receive buffer overflow).
    """
    begin_attrs = [('NFNL_BATCH_GENID', genid)] if genid else []
    fields = {'nfgen_family': 0, 'version': 0, 'res_id': NFNL_SUBSYS_NFTABLES}
    out = [(encode(nfnl_batch_msg, NFNL_MSG_BATCH_BEGIN, 0, fields, begin_attrs), None)]
    body = []
    for change in plan_or_changes:
        for cls, nft_msg, flags, attrs in change.messages():
            body.append((encode(cls, _msg_type(nft_msg), flags, dict(_FIELDS, nfgen_family=change.family), attrs),
                         change))
    if body:
        data = body[-1][0]
        struct.pack_into('=H', data, 6, struct.unpack_from('=H', data, 6)[0] | NLM_F_ACK)
    out.extend(body)
    out.append((encode(nfgen_msg, NFNL_MSG_BATCH_END, 0, fields, []), None))
    return out


def _ensure_sndbuf(sock, size):
    current = sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)
    if size + 1024 > current:
        try:
            sock.setsockopt(socket.SOL_SOCKET, 32, size + 4096)  # SO_SNDBUFFORCE
        except OSError:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size + 4096)


def apply(sock, plan_or_changes, genid=None, timeout=ANSWER_TIMEOUT):
    """Send the changes as one nf_tables transaction; nothing is changed unless all succeed.

    With `genid` (a Plan carries the one it was planned against; pass genid=False to skip the
    check) the kernel refuses the batch if the ruleset changed since it was read: NftConflict.
    Any refusal raises NftError with the kernel's errno and extended-ack text, naming the change
    it refused when the kernel names one (the first one, in batch order).
    """
    changes = list(plan_or_changes)
    if not changes:
        return
    if genid is None:
        genid = getattr(plan_or_changes, 'genid', None)
    messages = batch(changes, genid or None)
    seqs = []
    for data, _change in messages:
        seqs.append(sock._number(data))
    by_seq = dict((seq, change) for seq, (_data_, change) in zip(seqs, messages))
    last_seq = seqs[-2]
    payload = b''.join(bytes(data) for data, _change in messages)
    try:
        _ensure_sndbuf(sock.sock, len(payload))
        sock.sock.send(payload)
    except (OSError, socket.error) as exc:
        raise NftError(exc.errno or errno.EIO, 'nf_tables transaction of %d changes (%d bytes): could not '
                       'send it; nothing was changed' % (len(changes), len(payload)))

    errors = []  # (index in batch, code, kernel text)
    batch_error = None
    done = False
    deadline = time.time() + timeout
    while True:
        try:
            data = sock.sock.recv(1024 * 1024, socket.MSG_DONTWAIT)
        except (OSError, socket.error) as exc:
            if exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK):
                if done or batch_error is not None:
                    break
                left = deadline - time.time()
                if left <= 0:
                    raise NftError(errno.ETIMEDOUT, 'nf_tables transaction of %d changes: no answer from '
                                   'the kernel; read the ruleset again to learn whether it was applied'
                                   % len(changes))
                select.select([sock.sock], [], [], left)
                continue
            if exc.errno == errno.ENOBUFS:
                raise NftError(errno.ENOBUFS, 'nf_tables transaction of %d changes: the kernel\'s answers '
                               'overflowed the receive buffer; read the ruleset again to learn whether it '
                               'was applied' % len(changes))
            raise
        offset = 0
        while offset + 16 <= len(data):
            length, msg_type, flags, seq, _pid = struct.unpack_from('=IHHII', data, offset)
            if length < 16:
                break
            if msg_type == NLMSG_ERROR and seq in by_seq:
                code = -struct.unpack_from('=i', data, offset + 16)[0]
                text = _ext_ack_text(data, offset, length, flags)
                if code and by_seq[seq] is None:
                    # BEGIN (EPERM, ENOMEM, ERESTART, a failed commit) or END: the whole batch
                    batch_error = (code, text)
                elif code:
                    errors.append((seqs.index(seq), code, text))
                if seq == last_seq:
                    done = True
            offset += (length + 3) & ~3

    if errors:
        index, code, text = min(errors)
        change = messages[index][1]
        more = ' (and %d more refused)' % (len(errors) - 1) if len(errors) > 1 else ''
        raise NftError(code, 'nf_tables: %s%s' % (change.text, more), text, change)
    if batch_error is not None:
        code, text = batch_error
        if code == ERESTART:
            raise NftConflict(code, 'nf_tables transaction of %d changes: the ruleset changed since it '
                              'was read; read it again and plan again' % len(changes), text)
        raise NftError(code, 'nf_tables transaction of %d changes' % len(changes), text)


def ensure(sock, make_plan, check_mode=False, attempts=3):
    """read -> make_plan(state) -> apply, again from the start if the ruleset changed meanwhile.

    Returns the Plan that was applied (or, in check mode, that would be).
    """
    for attempt in range(attempts):
        current = read(sock)
        result = make_plan(current)
        if check_mode or not result:
            return result
        try:
            apply(sock, result)
            return result
        except NftConflict:
            if attempt == attempts - 1:
                raise
    return None  # pragma: no cover
