# -*- coding: utf-8 -*-
# Copyright: linuxnet.netns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
# Do not use this from other collections or standalone plugins/modules!
"""nf_tables on the wire: the nfnetlink and nf_tables numbers the engine uses, declared once, and
the encoding and decoding of rules' expressions and comments. No I/O.

The messages themselves are pyroute2's classes (imported without pyroute2's package __init__, see
_codec.pyroute2_module); tests/unit/test_codec.py checks every number here against pyroute2's own
declarations. The expressions are written as data for those classes and read back from their
parser into a canonical form (decode_expressions) that does not depend on how a rule's author
(nft, iptables-nft, us) chose to encode the same match.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import struct

from ansible_collections.linuxnet.netns.plugins.module_utils._codec import (
    IFNAMSIZ,
    NLA_F_NESTED,
    NLM_F_ACK,
    add_flags,
    attributes,
    encode,
    message,
    nla,
    pyroute2_module,
)

NFNL_SUBSYS_NFTABLES = 10
NFNL_MSG_BATCH_BEGIN = 0x10
NFNL_MSG_BATCH_END = 0x11

NFT_MSG_NEWTABLE, NFT_MSG_GETTABLE, NFT_MSG_DELTABLE = 0, 1, 2
NFT_MSG_NEWCHAIN, NFT_MSG_GETCHAIN, NFT_MSG_DELCHAIN = 3, 4, 5
NFT_MSG_NEWRULE, NFT_MSG_GETRULE, NFT_MSG_DELRULE = 6, 7, 8
NFT_MSG_GETGEN = 16

NFPROTO_INET = 1
NFPROTO_IPV4 = 2
NFPROTO_IPV6 = 10
NFPROTO_NAMES = {NFPROTO_INET: 'inet', NFPROTO_IPV4: 'ip', NFPROTO_IPV6: 'ip6'}
NFT_TABLE_F_DORMANT = 0x1

NF_DROP, NF_ACCEPT = 0, 1
POLICIES = {NF_DROP: 'drop', NF_ACCEPT: 'accept'}
HOOKS = {'prerouting': 0, 'input': 1, 'forward': 2, 'output': 3, 'postrouting': 4}
HOOK_NAMES = dict((num, name) for name, num in HOOKS.items())

NFT_REG_VERDICT = 0
NFT_REG_1 = 1
NFT_REG_2 = 2
NFT_CMP_EQ = 0
NFT_CMP_NEQ = 1
NFT_META_IIFNAME = 6
NFT_META_OIFNAME = 7
NFT_META_NFPROTO = 15
NFT_META_L4PROTO = 16
NFT_PAYLOAD_NETWORK_HEADER = 1
NFT_PAYLOAD_TRANSPORT_HEADER = 2
NFT_CT_STATE, NFT_CT_STATUS = 0, 2
NF_CT_STATE_ESTABLISHED, NF_CT_STATE_RELATED = 0x2, 0x4  # ct state bits (NF_CT_STATE_BIT)
IPS_DST_NAT = 0x20  # ct status dnat
NFTA_FIB_F_DADDR = 0x2
NFT_FIB_RESULT_ADDRTYPE = 3
RTN_LOCAL = 2  # fib ... type local
NFT_NAT_DNAT = 1
NF_NAT_RANGE_MAP_IPS, NF_NAT_RANGE_PROTO_SPECIFIED = 0x1, 0x2
NFT_BITWISE_BOOL = 0
NFTNL_UDATA_RULE_COMMENT = 0

# pyroute2's nf_tables message classes cost 15-20 ms to import (with stand-ins for its socket module,
# which would pull in asyncio and pyroute2.config: see _codec.SOCKET_MODULE): they are loaded on first
# use, so that a run that never touches nf_tables does not pay
LAZY = ('nfgen_msg', 'nft_chain_msg', 'nft_gen_msg', 'nft_rule_msg', 'nft_table_msg', 'nft_rule_raw_msg',
        'nfnl_batch_msg')
_loaded = {}


def _load():
    """The pyroute2 classes and the enum tables read from them, once."""
    if _loaded:
        return _loaded
    # the nf_tables messages only, without pyroute2's package __init__; nfgen_msg as that module has
    # it (one import of pyroute2.netlink, not two)
    _nftsocket = pyroute2_module('pyroute2.netlink.nfnetlink.nftsocket', without_sockets=True)
    nfgen_msg = _nftsocket.nfgen_msg
    nft_chain_msg = _nftsocket.nft_chain_msg
    nft_gen_msg = _nftsocket.nft_gen_msg
    nft_rule_msg = _nftsocket.nft_rule_msg
    nft_table_msg = _nftsocket.nft_table_msg

    class nft_rule_raw_msg(nfgen_msg, _nftsocket.nft_contains_expr):
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

    _EXPR = _nftsocket.nft_contains_expr.nft_expr

    def _reverse(ops):
        return dict((name, num) for num, name in ops.items())

    # pyroute2 decodes the enum values it knows into names: these turn them back into numbers
    _REGS = _reverse(_EXPR.nft_cmp.regs.ops)
    _CMP_OPS = _reverse(_EXPR.nft_cmp.ops.ops)
    _META_KEYS = _reverse(_EXPR.nft_meta.meta_key.ops)
    _PAYLOAD_BASES = _reverse(_EXPR.nft_payload.base_type.ops)
    _BITWISE_OPS = _reverse(_EXPR.nft_bitwise.bitwise_op.ops)
    _VERDICTS = _reverse(_nftsocket.nft_data.nfta_data.verdict.verdict_code.ops)
    _CT_KEYS = _reverse(_EXPR.nft_ct.keys.ops)
    _NAT_TYPES = _reverse(_EXPR.nft_nat.types.ops)
    # pyroute2 declares NFTA_FIB_F_* as an enum of bit numbers and NFT_FIB_RESULT_* as flags:
    # reversed, the names give back the numbers the kernel sent
    _FIB_FLAGS = _reverse(_EXPR.nft_fib.fib_flags.ops)
    _FIB_RESULTS = _EXPR.nft_fib.fib_result.ops
    _NAT_FLAGS = _EXPR.nft_nat.nat_range.ops
    # the attribute numbers of a rule message, its expressions and their data, as pyroute2 declares
    # them (an nla_map lists the attributes in number order): what the raw rule codec below uses
    _ATTRS = {}
    for _cls in [nft_rule_msg, _EXPR, _nftsocket.nft_data.nfta_data, _nftsocket.nft_data.nfta_data.verdict] + [
            getattr(_EXPR, _name) for _name in dir(_EXPR) if _name.startswith('nft_')]:
        for _number_, _item in enumerate(getattr(_cls, 'nla_map', ())):
            _ATTRS.setdefault(_item[0], _number_)
    _loaded.update(locals())
    return _loaded


def __getattr__(name):
    """nft_chain_msg and the other pyroute2 classes, loaded on first use."""
    if name in LAZY:
        return _load()[name]
    raise AttributeError(name)


def msg_type(nft_msg):
    """The netlink message type of an nf_tables message."""
    return (NFNL_SUBSYS_NFTABLES << 8) | nft_msg


# struct nfgenmsg of a request: family, version, res_id
FIELDS = {'nfgen_family': NFPROTO_INET, 'version': 0, 'res_id': 0}


def nft_message(cls, nft_msg, flags, attrs, family=NFPROTO_INET):
    """One nf_tables request, encoded by pyroute2's class `cls`."""
    return encode(cls, msg_type(nft_msg), flags, dict(FIELDS, nfgen_family=family), attrs)


def batch_begin(genid=None):
    """NFNL_MSG_BATCH_BEGIN; with `genid`, the kernel refuses the batch if the ruleset moved on."""
    fields = {'nfgen_family': 0, 'version': 0, 'res_id': NFNL_SUBSYS_NFTABLES}
    return encode(_load()['nfnl_batch_msg'], NFNL_MSG_BATCH_BEGIN, 0, fields, [('NFNL_BATCH_GENID', genid)] if genid else [])


def batch_end():
    fields = {'nfgen_family': 0, 'version': 0, 'res_id': NFNL_SUBSYS_NFTABLES}
    return encode(_load()['nfgen_msg'], NFNL_MSG_BATCH_END, 0, fields, [])


def want_ack(data):
    """Ask for an ack of an encoded message (the answers come back in batch order)."""
    add_flags(data, NLM_F_ACK)


# --- expressions and comments, encoded ------------------------------------------------------------
def value_data(value):
    """NFTA_DATA_VALUE of `value` (bytes)."""
    return {'attrs': [('NFTA_DATA_VALUE', bytes(value))]}


def expression(name, attrs=None):
    """One nf_tables expression, as pyroute2 encodes it."""
    result = [('NFTA_EXPR_NAME', name)]
    if attrs is not None:
        result.append(('NFTA_EXPR_DATA', {'attrs': attrs}))
    return {'attrs': result}


def cmp_expression(op, value):
    """Compare register 1 with `value`."""
    return expression('cmp', [('NFTA_CMP_SREG', NFT_REG_1), ('NFTA_CMP_OP', op), ('NFTA_CMP_DATA', value_data(value))])


def comment_userdata(comment):
    """NFTA_RULE_USERDATA holding a comment, as libnftnl writes it: TLV type, length, text, NUL."""
    text = comment.encode('utf-8') + b'\0'
    if len(text) > 255:
        raise ValueError('rule comment %r is longer than 254 bytes' % comment)
    return struct.pack('BB', NFTNL_UDATA_RULE_COMMENT, len(text)) + text


# --- decoded ----------------------------------------------------------------------------------------
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


# canonical items (the normalised form of what the kernel reports back, and of what a rule's terms
# promise):
#   ('cmp', source, op, mask, value)   source: ('meta', key), ('payload', base, offset),
#                                      ('fib', flags, result) or ('ct', key, direction);
#                                      mask and value are cut after the last mask byte that is
#                                      not zero, so a 3-byte load of a /24 and a 4-byte load with
#                                      mask ff.ff.ff.00 are the same thing
#   ('masq', flags)
#   ('nat', type, family, address, port, flags)   address and port: the immediates' bytes
#   ('verdict', code, chain)
#   ('unknown', expression name)       anything we do not model: never equal to a spec

def cmp_item(source, op, mask, value):
    mask = bytes(mask)
    value = bytes(value)
    cut = len(mask)
    while cut and mask[cut - 1] == 0:
        cut -= 1
    return ('cmp', source, op, mask[:cut], value[:cut])


def flag_value(names, ops):
    """A flags attribute as pyroute2 decodes it (a set of names, or a number) as its number."""
    if names is None or isinstance(names, int):
        return names
    return sum(1 << bit for bit, name in enumerate(ops) if name in names)


def _number(value, names):
    """An enum attribute as its number: pyroute2 decodes the ones it knows into names."""
    if value is None or isinstance(value, int):
        return value
    return names.get(value)


def get_attr(nla, name):
    """An attribute of a decoded (pyroute2) message or attribute; None when either is missing."""
    return nla.get_attr(name) if nla is not None else None


def _data_value(nla):
    value = get_attr(nla, 'NFTA_DATA_VALUE')
    return bytes(value) if value is not None else None


def _register_value(data, attr, immediates, regs):
    """The value an `immediate` put in the register an attribute names (b'?': none did)."""
    reg = get_attr(data, attr)
    return None if reg is None else immediates.get(_number(reg, regs), b'?')


_IFNAME_SOURCES = (('meta', NFT_META_IIFNAME), ('meta', NFT_META_OIFNAME))


def decode_expressions(exprs):
    """A rule's expressions (NFTA_RULE_EXPRESSIONS as pyroute2 decodes it) in canonical form."""
    tables = _load()
    _REGS, _CMP_OPS, _META_KEYS = tables['_REGS'], tables['_CMP_OPS'], tables['_META_KEYS']
    _PAYLOAD_BASES, _BITWISE_OPS, _VERDICTS = tables['_PAYLOAD_BASES'], tables['_BITWISE_OPS'], tables['_VERDICTS']
    regs = {}
    immediates = {}  # register -> the value an `immediate` put there (a NAT's address, port)
    out = []
    for expr in exprs or ():
        name = expr.get_attr('NFTA_EXPR_NAME')
        data = expr.get_attr('NFTA_EXPR_DATA')
        if name == 'fib' and get_attr(data, 'NFTA_FIB_DREG') is not None:
            flags = _number(get_attr(data, 'NFTA_FIB_FLAGS'), tables['_FIB_FLAGS'])
            result = flag_value(get_attr(data, 'NFTA_FIB_RESULT'), tables['_FIB_RESULTS'])
            regs[_number(get_attr(data, 'NFTA_FIB_DREG'), _REGS)] = (('fib', flags, result), 4, None)
        elif name == 'ct' and get_attr(data, 'NFTA_CT_DREG') is not None:
            key = _number(get_attr(data, 'NFTA_CT_KEY'), tables['_CT_KEYS'])
            regs[_number(get_attr(data, 'NFTA_CT_DREG'), _REGS)] = (
                ('ct', key, get_attr(data, 'NFTA_CT_DIRECTION')), None, None)
        elif name == 'immediate' and _number(get_attr(data, 'NFTA_IMMEDIATE_DREG'), _REGS) != NFT_REG_VERDICT:
            dreg = _number(get_attr(data, 'NFTA_IMMEDIATE_DREG'), _REGS)
            regs.pop(dreg, None)
            immediates[dreg] = _data_value(get_attr(data, 'NFTA_IMMEDIATE_DATA'))
        elif name == 'nat':
            addr, proto, addr_max, proto_max = [
                _register_value(data, attr, immediates, _REGS) for attr in (
                    'NFTA_NAT_REG_ADDR_MIN', 'NFTA_NAT_REG_PROTO_MIN', 'NFTA_NAT_REG_ADDR_MAX', 'NFTA_NAT_REG_PROTO_MAX')]
            if addr_max not in (None, addr) or proto_max not in (None, proto) or b'?' in (addr, proto):
                out.append(('unknown', name))
            else:
                out.append(('nat', _number(get_attr(data, 'NFTA_NAT_TYPE'), tables['_NAT_TYPES']),
                            get_attr(data, 'NFTA_NAT_FAMILY'), addr, proto,
                            flag_value(get_attr(data, 'NFTA_NAT_FLAGS'), tables['_NAT_FLAGS'])))
        elif name == 'meta' and get_attr(data, 'NFTA_META_DREG') is not None:
            key = _number(get_attr(data, 'NFTA_META_KEY'), _META_KEYS)
            regs[_number(get_attr(data, 'NFTA_META_DREG'), _REGS)] = (('meta', key), None, None)
        elif name == 'payload' and get_attr(data, 'NFTA_PAYLOAD_DREG') is not None:
            base = _number(get_attr(data, 'NFTA_PAYLOAD_BASE'), _PAYLOAD_BASES)
            length = get_attr(data, 'NFTA_PAYLOAD_LEN')
            regs[_number(get_attr(data, 'NFTA_PAYLOAD_DREG'), _REGS)] = (
                ('payload', base, get_attr(data, 'NFTA_PAYLOAD_OFFSET')), length, None)
        elif name == 'bitwise':
            source = regs.get(_number(get_attr(data, 'NFTA_BITWISE_SREG'), _REGS))
            op = _number(get_attr(data, 'NFTA_BITWISE_OP'), _BITWISE_OPS)
            mask = _data_value(get_attr(data, 'NFTA_BITWISE_MASK'))
            xor = _data_value(get_attr(data, 'NFTA_BITWISE_XOR'))
            dreg = _number(get_attr(data, 'NFTA_BITWISE_DREG'), _REGS)
            if source is None or op not in (None, NFT_BITWISE_BOOL) or mask is None or xor is None or any(
                    bytearray(xor)) or (source[1] is not None and len(mask) != source[1]) or source[2] is not None:
                out.append(('unknown', name))
                regs.pop(dreg, None)
            else:
                regs[dreg] = (source[0], len(mask), mask)
        elif name == 'cmp':
            source = regs.get(_number(get_attr(data, 'NFTA_CMP_SREG'), _REGS))
            value = _data_value(get_attr(data, 'NFTA_CMP_DATA'))
            op = _number(get_attr(data, 'NFTA_CMP_OP'), _CMP_OPS)
            if source is None or value is None or (source[1] is not None and len(value) > source[1]):
                out.append(('unknown', name))
            else:
                mask = source[2][:len(value)] if source[2] is not None else b'\xff' * len(value)
                if source[0] in _IFNAME_SOURCES and source[2] is None and b'\0' in value:
                    # iptables compares a name up to its NUL only; the register holds the name
                    # padded with NULs, so that is the same match as nft's full IFNAMSIZ compare
                    value = value[:IFNAMSIZ] + b'\0' * (IFNAMSIZ - len(value))
                    mask = b'\xff' * IFNAMSIZ
                out.append(cmp_item(source[0], op, mask, value))
        elif name == 'masq':
            flags = get_attr(data, 'NFTA_MASQ_FLAGS')
            if get_attr(data, 'NFTA_MASQ_REG_PROTO_MIN') is not None:
                out.append(('unknown', name))
            else:
                out.append(('masq', (flag_value(flags, tables['_NAT_FLAGS']),) if flags else ()))
        elif name == 'immediate' and _number(get_attr(data, 'NFTA_IMMEDIATE_DREG'), _REGS) == NFT_REG_VERDICT:
            verdict = get_attr(get_attr(data, 'NFTA_IMMEDIATE_DATA'), 'NFTA_DATA_VERDICT')
            out.append(('verdict', _number(get_attr(verdict, 'NFTA_VERDICT_CODE'), _VERDICTS),
                        get_attr(verdict, 'NFTA_VERDICT_CHAIN')))
        else:
            out.append(('unknown', name))
    return tuple(out)


# --- rules, encoded and decoded here (pyroute2's generic codec costs over a millisecond a rule) ----
NFTA_LIST_ELEM = 1
_BE32, _BE64, _S32 = struct.Struct('>I'), struct.Struct('>Q'), struct.Struct('>i')
# attributes that are not a big-endian 32-bit number
_HANDLES = frozenset(('NFTA_RULE_HANDLE', 'NFTA_CHAIN_HANDLE'))
_TEXT = frozenset(('NFTA_RULE_TABLE', 'NFTA_RULE_CHAIN', 'NFTA_EXPR_NAME', 'NFTA_VERDICT_CHAIN'))
_NESTED = frozenset(('NFTA_EXPR_DATA', 'NFTA_CMP_DATA', 'NFTA_BITWISE_MASK', 'NFTA_BITWISE_XOR', 'NFTA_BITWISE_DATA',
                     'NFTA_IMMEDIATE_DATA', 'NFTA_DATA_VERDICT'))
_RAW = frozenset(('NFTA_DATA_VALUE', 'NFTA_RULE_USERDATA'))
_U8 = frozenset(('NFTA_CT_DIRECTION',))


_numbers = {}


def _attr_numbers():
    if not _numbers:
        _numbers.update(_load()['_ATTRS'])
    return _numbers


def raw_attrs(items):
    """Attributes [(name, value)] as nf_tables wants them: a number big-endian, text NUL-ended, a
    dict {'attrs': [...]} nested, a list of such dicts (expressions) as list elements, and bytes as
    they are (NFTA_RULE_EXPRESSIONS as bytes: list elements already encoded, see expressions_raw)."""
    numbers = _numbers or _attr_numbers()
    out = []
    for name, value in items:
        number = numbers[name]
        if isinstance(value, bytes):
            out.append(nla(number | NLA_F_NESTED, value) if name == 'NFTA_RULE_EXPRESSIONS' else nla(number, value))
        elif isinstance(value, dict):
            out.append(nla(number | NLA_F_NESTED, raw_attrs(value['attrs'])))
        elif isinstance(value, list):
            out.append(nla(number | NLA_F_NESTED, expressions_raw(value)))
        elif isinstance(value, str):
            out.append(nla(number, value.encode('utf-8') + b'\0'))
        elif name in _HANDLES:
            out.append(nla(number, _BE64.pack(value)))
        elif name in _U8:
            out.append(nla(number, struct.pack('B', value)))
        else:
            out.append(nla(number, (_S32 if value < 0 else _BE32).pack(value)))
    return b''.join(out)


def expressions_raw(expressions):
    """Expressions (as expression() makes them) as the list elements of NFTA_RULE_EXPRESSIONS."""
    return b''.join(nla(NFTA_LIST_ELEM | NLA_F_NESTED, raw_attrs(elem['attrs'])) for elem in expressions)


def rule_message(nft_msg, flags, attrs, family=NFPROTO_INET):
    """An nf_tables rule request (NEWRULE, DELRULE, GETRULE), encoded here."""
    return message(msg_type(nft_msg), flags, struct.pack('=BBH', family, 0, 0) + raw_attrs(attrs))


class RawAttrs(object):
    """Decoded attributes of a rule message or a part of one, read as pyroute2's get_attr() reads
    them - so that decode_expressions() takes either."""

    __slots__ = ('found', 'values')

    def __init__(self, data, offset=0):
        self.found = attributes(data, offset)
        self.values = {}

    def get_attr(self, name):
        try:
            return self.values[name]
        except KeyError:
            value = self.values[name] = self._decode(name)
            return value

    def _decode(self, name):
        raw = self.found.get((_numbers or _attr_numbers())[name])
        if raw is None:
            return None
        if name in _NESTED:
            return RawAttrs(raw)
        if name in _TEXT:
            return bytes(raw).split(b'\0', 1)[0].decode('utf-8', 'replace')
        if name in _RAW:
            return bytes(raw)
        if name in _HANDLES:
            return _BE64.unpack_from(raw)[0]
        if name in _U8:
            return bytearray(raw)[0]
        return _BE32.unpack_from(raw)[0] if len(raw) >= 4 else None


_ELEMENTS = {}  # element bytes -> RawAttrs: the rules of a big table share most of their expressions


def elements(data):
    """The elements of a nested list attribute (NFTA_RULE_EXPRESSIONS), each as RawAttrs."""
    out = []
    offset, end = 0, len(data)
    data = bytes(data)
    while offset + 4 <= end:
        length, _kind = struct.unpack_from('=HH', data, offset)
        if length < 4:
            break
        chunk = data[offset + 4:offset + length]
        found = _ELEMENTS.get(chunk)
        if found is None:
            found = _ELEMENTS[chunk] = RawAttrs(chunk)
        out.append(found)
        offset += (length + 3) & ~3
    return out


def decode_rule(msg):
    """(table, chain, handle, comment, canonical expressions) of one dumped rule (whole message)."""
    attrs = RawAttrs(msg, 16 + 4)
    exprs = attrs.found.get(_attr_numbers()['NFTA_RULE_EXPRESSIONS'])
    return (attrs.get_attr('NFTA_RULE_TABLE'), attrs.get_attr('NFTA_RULE_CHAIN'), attrs.get_attr('NFTA_RULE_HANDLE'),
            parse_userdata(attrs.get_attr('NFTA_RULE_USERDATA')),
            decode_expressions(elements(exprs) if exprs is not None else ()))
