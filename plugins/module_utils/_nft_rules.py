# -*- coding: utf-8 -*-
# Copyright: linuxnet.netns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
# Do not use this from other collections or standalone plugins/modules!
"""nf_tables: the rules we own, as a model - what a rule of ours is, and which one a comment names.

Everything lives in one table, `inet linuxnet_netns` (plus scoped accepts we insert into other
tables' forward-drop chains). A rule's identity is its comment (NFTA_RULE_USERDATA, the TLV `nft`
itself writes for `comment "..."`), e.g. `linuxnet:masq 10.0.0.0/24 eth0`. The comment is trusted
for identity only: the expressions are decoded too, and a rule whose expressions are not exactly
the ones its comment promises is replaced.

Rules are described by `RuleSpec` objects made of `Term`s (matches and statements). A term knows
how to encode itself as nf_tables expressions (the same expressions `nft` 1.0.x generates for the
same text, so that `nft list ruleset` prints our rules exactly like its own) and what the kernel
will report back, in the canonical form of _nft_codec.decode_expressions.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import ipaddress
import struct

from ansible_collections.linuxnet.netns.plugins.module_utils._codec import IFNAMSIZ
from ansible_collections.linuxnet.netns.plugins.module_utils._common import PlanError
from ansible_collections.linuxnet.netns.plugins.module_utils._nft_codec import (
    IPS_DST_NAT,
    NF_NAT_RANGE_MAP_IPS,
    NF_NAT_RANGE_PROTO_SPECIFIED,
    NFPROTO_INET,
    NFPROTO_IPV4,
    NFPROTO_IPV6,
    NFT_CMP_EQ,
    NFT_CMP_NEQ,
    NFT_CT_STATE,
    NFT_CT_STATUS,
    NF_CT_STATE_ESTABLISHED,
    NF_CT_STATE_RELATED,
    NFT_FIB_RESULT_ADDRTYPE,
    NFT_META_IIFNAME,
    NFT_META_L4PROTO,
    NFT_META_NFPROTO,
    NFT_META_OIFNAME,
    NFT_NAT_DNAT,
    NFT_PAYLOAD_NETWORK_HEADER,
    NFT_PAYLOAD_TRANSPORT_HEADER,
    NFT_REG_1,
    NFT_REG_2,
    NFT_REG_VERDICT,
    NFTA_FIB_F_DADDR,
    POLICIES,
    RTN_LOCAL,
    cmp_expression,
    cmp_item,
    expression,
    expressions_raw,
    value_data,
)

TABLE = 'linuxnet_netns'
COMMENT_PREFIX = 'linuxnet:'
FORWARD_PREFIX = COMMENT_PREFIX + 'fwd-'  # the safe router's forward chain
ALLOW_PREFIX = COMMENT_PREFIX + 'allow-'  # its scoped accepts in other tables' forward-drop chains


# --- terms: what a rule matches and does -----------------------------------------------------------

class Term(object):
    """One match or statement of a rule."""

    text = ''

    def expressions(self):
        raise NotImplementedError

    def canonical(self):
        raise NotImplementedError

    def raw(self):
        """The term's expressions, encoded (_nft_codec.expressions_raw); the same term text
        encodes the same way, so it is done once a run (a thousand ports share most of their terms)."""
        key = (self.__class__.__name__, self.text, getattr(self, 'check_family', None))
        found = _ENCODED.get(key)
        if found is None:
            found = _ENCODED[key] = expressions_raw(self.expressions())
        return found


_ENCODED = {}


class _Spliced(object):
    """A term whose encoding differs from its siblings' only in a few values' bytes (a port, an
    address): encoded once with stand-in values, then each instance's bytes are the template with
    its own values put in place - a thousand published ports are a thousand such terms.

    Subclasses give `splice_values()`: [(stand-in bytes, own bytes)], each stand-in found exactly
    once in the template (else the term is encoded in full), and `stand_in()`: a twin of the term
    holding the stand-ins, whose key (`splice_key`) names everything else the encoding depends on."""

    def raw(self):
        key = ('splice', self.__class__.__name__, self.splice_key())
        template = _ENCODED.get(key)
        if template is None:
            twin = self.stand_in()
            encoded = expressions_raw(twin.expressions())
            cuts = []
            for stand_in, _own in twin.splice_values():
                at = encoded.find(stand_in)
                if at < 0 or encoded.find(stand_in, at + 1) >= 0:
                    cuts = None
                    break
                cuts.append((at, len(stand_in)))
            template = _ENCODED[key] = (encoded, cuts)
        encoded, cuts = template
        if cuts is None:
            return expressions_raw(self.expressions())
        values = self.splice_values()
        parts, start = [], 0
        for (at, size), (_stand_in, own) in sorted(zip(cuts, values)):
            parts += [encoded[start:at], own]
            start = at + size
        parts.append(encoded[start:])
        return b''.join(parts)


class MatchAddress(Term):
    """`ip saddr 10.0.0.0/24`, `ip6 daddr != fd00::/64`: nfproto check + network header load."""

    OFFSETS = {(4, 'saddr'): 12, (4, 'daddr'): 16, (6, 'saddr'): 8, (6, 'daddr'): 24}

    def __init__(self, field, network, negate=False, nfproto=True):
        if field not in ('saddr', 'daddr'):
            raise ValueError('address field must be saddr or daddr, not %r' % (field,))
        self.field = field
        if isinstance(network, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
            # one address: built from its number, not parsed back from its text (a thousand
            # published targets' rules are made in one run)
            self.network = (ipaddress.IPv4Network if network.version == 4 else ipaddress.IPv6Network)(
                (int(network), network.max_prefixlen))
        else:
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
                expression('meta', [('NFTA_META_DREG', NFT_REG_1), ('NFTA_META_KEY', NFT_META_NFPROTO)]),
                cmp_expression(NFT_CMP_EQ, struct.pack('B', self.nfproto)),
            ]
        # nft 1.0: a whole-byte prefix loads only its bytes; any other needs the full address and
        # a mask (a /0 too, which matches every address of the family)
        if net.prefixlen % 8 == 0 and net.prefixlen:
            load = net.prefixlen // 8
        else:
            load = size
        exprs.append(expression('payload', [
            ('NFTA_PAYLOAD_DREG', NFT_REG_1), ('NFTA_PAYLOAD_BASE', NFT_PAYLOAD_NETWORK_HEADER),
            ('NFTA_PAYLOAD_OFFSET', self.offset), ('NFTA_PAYLOAD_LEN', load)]))
        if load == size and net.prefixlen != net.max_prefixlen:
            exprs.append(expression('bitwise', [
                ('NFTA_BITWISE_SREG', NFT_REG_1), ('NFTA_BITWISE_DREG', NFT_REG_1),
                ('NFTA_BITWISE_LEN', size), ('NFTA_BITWISE_MASK', value_data(self._mask())),
                ('NFTA_BITWISE_XOR', value_data(b'\0' * size))]))
        exprs.append(cmp_expression(op, net.network_address.packed[:load]))
        return exprs

    def canonical(self):
        family = (cmp_item(('meta', NFT_META_NFPROTO), NFT_CMP_EQ, b'\xff', struct.pack('B', self.nfproto)),)
        return (family if self.check_family else ()) + (
            cmp_item(('payload', NFT_PAYLOAD_NETWORK_HEADER, self.offset),
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
            expression('meta', [('NFTA_META_DREG', NFT_REG_1), ('NFTA_META_KEY', self.KEYS[self.key])]),
            cmp_expression(NFT_CMP_NEQ if self.negate else NFT_CMP_EQ, self._value()),
        ]

    def canonical(self):
        return (cmp_item(('meta', self.KEYS[self.key]), NFT_CMP_NEQ if self.negate else NFT_CMP_EQ,
                         b'\xff' * IFNAMSIZ, self._value()),)


class MatchFamily(Term):
    """`meta nfproto ipv4`: what an inet table's rule needs before a family's own statement (a DNAT)
    when no address match implies the family."""

    def __init__(self, version):
        self.nfproto = NFPROTO_IPV4 if version == 4 else NFPROTO_IPV6
        self.text = 'meta nfproto %s' % ('ipv4' if version == 4 else 'ipv6')

    def expressions(self):
        return [expression('meta', [('NFTA_META_DREG', NFT_REG_1), ('NFTA_META_KEY', NFT_META_NFPROTO)]),
                cmp_expression(NFT_CMP_EQ, struct.pack('B', self.nfproto))]

    def canonical(self):
        return (cmp_item(('meta', NFT_META_NFPROTO), NFT_CMP_EQ, b'\xff', struct.pack('B', self.nfproto)),)


class MatchLocal(Term):
    """`fib daddr type local`: the packet is addressed to one of the namespace's own addresses."""

    text = 'fib daddr type local'
    _RESULT = NFT_FIB_RESULT_ADDRTYPE

    def expressions(self):
        return [expression('fib', [('NFTA_FIB_DREG', NFT_REG_1),
                                   ('NFTA_FIB_RESULT', self._RESULT),
                                   ('NFTA_FIB_FLAGS', NFTA_FIB_F_DADDR)]),
                cmp_expression(NFT_CMP_EQ, struct.pack('=I', RTN_LOCAL))]

    def canonical(self):
        return (cmp_item(('fib', NFTA_FIB_F_DADDR, self._RESULT), NFT_CMP_EQ, b'\xff' * 4,
                         struct.pack('=I', RTN_LOCAL)),)


PROTOCOLS = {'tcp': 6, 'udp': 17}


class MatchPort(_Spliced, Term):
    """`tcp dport 8080`, `udp sport 53`: the layer 4 protocol, then the port."""

    OFFSETS = {'sport': 0, 'dport': 2}
    STAND_IN = 0xA55A

    def __init__(self, protocol, field, port):
        self.protocol = protocol
        self.field = field
        self.port = int(port)
        self.text = '%s %s %d' % (protocol, field, self.port)

    def splice_key(self):
        return self.protocol, self.field

    def stand_in(self):
        return MatchPort(self.protocol, self.field, self.STAND_IN)

    def splice_values(self):
        return [(struct.pack('>H', self.STAND_IN), struct.pack('>H', self.port))]

    def expressions(self):
        return [expression('meta', [('NFTA_META_DREG', NFT_REG_1), ('NFTA_META_KEY', NFT_META_L4PROTO)]),
                cmp_expression(NFT_CMP_EQ, struct.pack('B', PROTOCOLS[self.protocol])),
                expression('payload', [
                    ('NFTA_PAYLOAD_DREG', NFT_REG_1), ('NFTA_PAYLOAD_BASE', NFT_PAYLOAD_TRANSPORT_HEADER),
                    ('NFTA_PAYLOAD_OFFSET', self.OFFSETS[self.field]), ('NFTA_PAYLOAD_LEN', 2)]),
                cmp_expression(NFT_CMP_EQ, struct.pack('>H', self.port))]

    def canonical(self):
        return (cmp_item(('meta', NFT_META_L4PROTO), NFT_CMP_EQ, b'\xff', struct.pack('B', PROTOCOLS[self.protocol])),
                cmp_item(('payload', NFT_PAYLOAD_TRANSPORT_HEADER, self.OFFSETS[self.field]), NFT_CMP_EQ,
                         b'\xff\xff', struct.pack('>H', self.port)))


class MatchCtBits(Term):
    """`ct status dnat`, `ct state established,related`: some bit of a conntrack field is set."""

    def __init__(self, key, mask, text):
        self.key, self.mask, self.text = key, mask, text

    def expressions(self):
        return [expression('ct', [('NFTA_CT_DREG', NFT_REG_1), ('NFTA_CT_KEY', self.key)]),
                expression('bitwise', [
                    ('NFTA_BITWISE_SREG', NFT_REG_1), ('NFTA_BITWISE_DREG', NFT_REG_1), ('NFTA_BITWISE_LEN', 4),
                    ('NFTA_BITWISE_MASK', value_data(struct.pack('=I', self.mask))),
                    ('NFTA_BITWISE_XOR', value_data(b'\0' * 4))]),
                cmp_expression(NFT_CMP_NEQ, b'\0' * 4)]

    def canonical(self):
        return (cmp_item(('ct', self.key, None), NFT_CMP_NEQ, struct.pack('=I', self.mask), b'\0' * 4),)


class MatchDnat(MatchCtBits):
    """`ct status dnat`: the packet's connection was destination-NATed (both directions of it)."""

    def __init__(self):
        super(MatchDnat, self).__init__(NFT_CT_STATUS, IPS_DST_NAT, 'ct status dnat')


class MatchReply(MatchCtBits):
    """`ct state established,related`: a packet of a connection accepted before, or one it opened."""

    def __init__(self):
        super(MatchReply, self).__init__(NFT_CT_STATE, NF_CT_STATE_ESTABLISHED | NF_CT_STATE_RELATED,
                                         'ct state established,related')


class Dnat(_Spliced, Term):
    """`dnat ip to 10.0.0.2:80`, `dnat ip6 to [fd00::2]:80`."""

    STAND_IN = {4: ipaddress.IPv4Address('198.51.100.165'), 6: ipaddress.IPv6Address('2001:db8:c001:d00d::1')}
    STAND_IN_PORT = 0x5AA5

    def __init__(self, address, port):
        self.address = ipaddress.ip_address(address)
        self.port = int(port)
        self.nfproto = NFPROTO_IPV4 if self.address.version == 4 else NFPROTO_IPV6
        if self.address.version == 4:
            self.text = 'dnat ip to %s:%d' % (self.address, self.port)
        else:
            self.text = 'dnat ip6 to [%s]:%d' % (self.address, self.port)

    def expressions(self):
        return [expression('immediate', [('NFTA_IMMEDIATE_DREG', NFT_REG_1),
                                         ('NFTA_IMMEDIATE_DATA', value_data(self.address.packed))]),
                expression('immediate', [('NFTA_IMMEDIATE_DREG', NFT_REG_2),
                                         ('NFTA_IMMEDIATE_DATA', value_data(struct.pack('>H', self.port)))]),
                expression('nat', [('NFTA_NAT_TYPE', NFT_NAT_DNAT), ('NFTA_NAT_FAMILY', self.nfproto),
                                   ('NFTA_NAT_REG_ADDR_MIN', NFT_REG_1), ('NFTA_NAT_REG_PROTO_MIN', NFT_REG_2),
                                   ('NFTA_NAT_FLAGS', NF_NAT_RANGE_PROTO_SPECIFIED)])]

    def splice_key(self):
        return self.address.version

    def stand_in(self):
        return Dnat(self.STAND_IN[self.address.version], self.STAND_IN_PORT)

    def splice_values(self):
        return [(self.STAND_IN[self.address.version].packed, self.address.packed),
                (struct.pack('>H', self.STAND_IN_PORT), struct.pack('>H', self.port))]

    def canonical(self):
        # the kernel adds MAP_IPS to the flags of a NAT given an address register
        return (('nat', NFT_NAT_DNAT, self.nfproto, self.address.packed, struct.pack('>H', self.port),
                 NF_NAT_RANGE_MAP_IPS | NF_NAT_RANGE_PROTO_SPECIFIED),)


class Masquerade(Term):
    text = 'masquerade'

    def expressions(self):
        return [expression('masq')]

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
        return [expression('immediate', [
            ('NFTA_IMMEDIATE_DREG', NFT_REG_VERDICT),
            ('NFTA_IMMEDIATE_DATA', {'attrs': [('NFTA_DATA_VERDICT', {'attrs': [('NFTA_VERDICT_CODE', self.code)]})]}),
        ])]

    def canonical(self):
        return (('verdict', self.code, None),)


# --- chains and rules we know ------------------------------------------------------------------

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
    'prerouting': ChainSpec('prerouting', 'nat', 'prerouting', -100),  # dstnat
    'output': ChainSpec('output', 'nat', 'output', -100),
    'postrouting': ChainSpec('postrouting', 'nat', 'postrouting', 100),  # srcnat
    'forward': ChainSpec('forward', 'filter', 'forward', 0),
}


class RuleSpec(object):
    """A rule we want: its chain, its identity (the comment) and its terms."""

    def __init__(self, chain, comment, terms, key=None, head=False):
        if chain not in CHAINS:
            raise ValueError('unknown chain %r (known: %s)' % (chain, ', '.join(sorted(CHAINS))))
        if not comment.startswith(COMMENT_PREFIX):
            raise ValueError('rule comment %r must start with %r' % (comment, COMMENT_PREFIX))
        if len(comment.encode('utf-8')) > 254:  # what NFTA_RULE_USERDATA's TLV holds (comment_userdata)
            raise PlanError('rule comment %r is longer than 254 bytes' % comment)
        self.chain = chain
        self.comment = comment
        self.terms = tuple(terms)
        self._key = key
        # inserted at the head of its chain, not appended: an accept that must come before the
        # drop another kind's rules end the chain with
        self.head = head

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

    def raw(self):
        """NFTA_RULE_EXPRESSIONS's content, encoded."""
        return b''.join(term.raw() for term in self.terms)

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


def parse_masq_comment(args, canonical=None):
    words = args.split(' ')
    if len(words) == 2:
        return masquerade_rule(words[0], words[1])
    if len(words) == 3 and words[2].startswith('except='):
        source = ipaddress.ip_network(words[0], strict=False)
        return masquerade_rule(words[0], words[1], _excluded(canonical, source.version))
    raise ValueError('not a masquerade comment: %r' % args)


def forward_rules(prefixes, inbound=None, isolate=False):
    """Our forward chain for a safe router, in order: accept what comes from or goes to a managed
    prefix, then drop every other forwarded packet, so that turning forwarding on does not make
    the host a router for anyone else on its networks.

    With `isolate`, first drop what goes from one address of a prefix to another of the same
    prefix: namespaces routed through the host (each on its own veth) then cannot reach each other,
    as on a bridge with isolated ports.

    With `inbound` (a list of prefixes, maybe empty), traffic INTO the managed prefixes is scoped
    too: it is accepted from the managed prefixes themselves (the fleet), from `inbound`, and as
    replies to connections accepted before (`ct state established,related`); a published port's own
    accepts come first in the chain (its kind inserts them at the head). Anything else into them is
    dropped: a stranger on the underlay with a route via this host no longer reaches the namespaces.
    """
    networks = sorted(set(ipaddress.ip_network(p, strict=False) for p in prefixes), key=lambda n: (n.version, n))
    specs = [_forward_isolate(net) for net in networks] if isolate else []
    if inbound is None:
        for net in networks:
            specs.extend([_forward_accept('saddr', net), _forward_accept('daddr', net)])
    elif networks:
        specs.append(_forward_replies())
        specs.extend(_forward_accept('saddr', net) for net in networks)
        allowed = sorted(set(ipaddress.ip_network(p, strict=False) for p in inbound), key=lambda n: (n.version, n))
        specs.extend(_forward_inbound(source, net) for source in allowed for net in networks
                     if source.version == net.version)
    if specs:
        specs.append(RuleSpec('forward', '%sfwd-drop' % COMMENT_PREFIX, [Verdict('drop')]))
    return specs


def _forward_accept(field, net):
    kind = 'src' if field == 'saddr' else 'dst'
    return RuleSpec('forward', '%sfwd-%s %s' % (COMMENT_PREFIX, kind, net), [MatchAddress(field, net), Verdict('accept')])


def _forward_isolate(net):
    return RuleSpec('forward', '%sfwd-isolate %s' % (COMMENT_PREFIX, net), [
        MatchAddress('saddr', net), MatchAddress('daddr', net, nfproto=False), Verdict('drop')])


def parse_forward_isolate_comment(args, canonical=None):
    return _forward_isolate(ipaddress.ip_network(args, strict=True))


def _forward_replies():
    return RuleSpec('forward', '%sfwd-est' % COMMENT_PREFIX, [MatchReply(), Verdict('accept')])


def _forward_inbound(source, net):
    return RuleSpec('forward', '%sfwd-in %s %s' % (COMMENT_PREFIX, source, net), [
        MatchAddress('saddr', source), MatchAddress('daddr', net, nfproto=False), Verdict('accept')])


def parse_forward_replies_comment(args, canonical=None):
    if args:
        raise ValueError('fwd-est takes no argument')
    return _forward_replies()


def parse_forward_inbound_comment(args, canonical=None):
    source, net = [ipaddress.ip_network(word, strict=True) for word in args.split(' ')]
    if source.version != net.version:
        raise ValueError('fwd-in: %s and %s are of two families' % (source, net))
    return _forward_inbound(source, net)


def parse_forward_comment(field):
    return lambda args, canonical=None: _forward_accept(field, ipaddress.ip_network(args, strict=True))


def parse_forward_drop_comment(args, canonical=None):
    if args:
        raise ValueError('fwd-drop takes no argument')
    return RuleSpec('forward', '%sfwd-drop' % COMMENT_PREFIX, [Verdict('drop')])


def spec_from_comment(comment, canonical, parsers):
    """The RuleSpec a comment of ours names; None for a comment that is not ours or not valid.
    `parsers` maps the word after `linuxnet:` to the parser of the rest: each kind that writes
    rules declares its own (Kind.nft_comments; _kinds.comment_parsers() gathers them)."""
    if not comment or not comment.startswith(COMMENT_PREFIX):
        return None
    kind, _sep, args = comment[len(COMMENT_PREFIX):].partition(' ')
    parse = parsers.get(kind)
    if parse is None:
        return None
    try:
        return parse(args, canonical)
    except ValueError:
        return None


def allow_spec(field, net, family):
    """A scoped accept for another table's forward chain. In an ip/ip6 table the family check is
    implied and left out, so that iptables-nft lists the rule as `-s P -j ACCEPT`."""
    kind = 'src' if field == 'saddr' else 'dst'
    return RuleSpec('forward', '%sallow-%s %s' % (COMMENT_PREFIX, kind, net),
                    [MatchAddress(field, net, nfproto=family == NFPROTO_INET), Verdict('accept')])
