"""The codec (_codec, _nft_codec) against pyroute2, whichever pyroute2 the Python running this has:

- every number we declare equals the one pyroute2 declares (module constants, message attribute
  ids from the classes' nla_map, enum values), and the few pyroute2 does not declare are listed in
  KERNEL_ONLY with the kernel header that does;
- every struct packs what pyroute2's message fields pack;
- every encoder produces, byte for byte, what pyroute2's `encode()` produces for the same message;
- every decoder gives the answer pyroute2's parser gives, on messages pyroute2 encodes;
- every shape of nf_tables rule a published port writes, encoded by the engine as _nft_apply
  sends it, reads back (pyroute2's parser, and the engine's own decoder) as what its spec promises.

Plain functions, no pytest: test_codec.py runs them in-process (pip's pyroute2) and, through
each_python.py, in a fresh interpreter of each Python (pip's pyroute2, Debian's 0.7.2);
`python3 codec_cases.py` runs them all.
"""
import importlib
import ipaddress
import socket
import struct
import sys

from ansible_collections.linuxnet.netns.plugins.module_utils import _codec as C
from ansible_collections.linuxnet.netns.plugins.module_utils import _kind_publish as PUB
from ansible_collections.linuxnet.netns.plugins.module_utils import _nft_apply
from ansible_collections.linuxnet.netns.plugins.module_utils import _nft_codec as N
from ansible_collections.linuxnet.netns.plugins.module_utils import _nft_plan
from ansible_collections.linuxnet.netns.plugins.module_utils._nft_rules import RuleSpec, Term

IFINFMSG = 'pyroute2.netlink.rtnl.ifinfmsg:ifinfmsg'
RTMSG = 'pyroute2.netlink.rtnl.rtmsg:rtmsg'
IFADDRMSG = 'pyroute2.netlink.rtnl.ifaddrmsg:ifaddrmsg'
NSIDMSG = 'pyroute2.netlink.rtnl.nsidmsg:nsidmsg'
NLMSGERR = 'pyroute2.netlink:nlmsgerr'
NFT = 'pyroute2.netlink.nfnetlink.nftsocket'
EXPR = NFT + ':nft_contains_expr.nft_expr'
NFCT = 'pyroute2.netlink.nfnetlink.nfctsocket'
CT_MSG = NFCT + ':nfct_msg'


def lookup(path):
    """'module:attr.attr' -> the object."""
    module, _sep, attrs = path.partition(':')
    obj = importlib.import_module(module)
    for name in attrs.split('.') if attrs else ():
        obj = getattr(obj, name)
    return obj


def nla_ids(cls):
    """{attribute name: id} as a pyroute2 message class declares them (explicit ids or positions)."""
    ids = {}
    for index, item in enumerate(cls.nla_map):
        if isinstance(item[0], int):
            ids[item[1]] = item[0]
        else:
            ids[item[0]] = index
    return ids


# (our module, our name, how pyroute2 declares it):
#   'module:name'                  a module constant
#   ('nla', 'module:Class', NAME)  an attribute id in a message class
#   ('enum', 'module:obj', NAME)   a value of an enum pyroute2 decodes into names ({value: NAME})
#   ('dict', 'module:obj', key)    a value in a dict of names
#   ('flag', 'module:obj', NAME)   a flag whose bit number pyroute2 gives ({bit: NAME}, or NAME at
#                                  position bit in a tuple): 1 << bit
#   ('position', 'module:obj', NAME)  NAME's position in a tuple of names (an enum pyroute2 declares
#                                  as flags, so that its numbers are only the positions)
#   ('nfnl', 'module:SUBSYS', 'module:MSG')  an nfnetlink message type: SUBSYS << 8 | MSG
#   ('index', 'module:obj', NAME)  NAME's place in a sequence of names (the fields of an array)
CONSTANTS = [
    (C, 'NETLINK_ROUTE', 'pyroute2.netlink:NETLINK_ROUTE'),
    (C, 'NETLINK_NETFILTER', 'pyroute2.netlink:NETLINK_NETFILTER'),
    (C, 'SOL_NETLINK', 'pyroute2.netlink:SOL_NETLINK'),
    (C, 'NETLINK_EXT_ACK', 'pyroute2.netlink:NETLINK_EXT_ACK'),
    (C, 'NLM_F_REQUEST', 'pyroute2.netlink:NLM_F_REQUEST'),
    (C, 'NLM_F_MULTI', 'pyroute2.netlink:NLM_F_MULTI'),
    (C, 'NLM_F_DUMP_INTR', 'pyroute2.netlink:NLM_F_DUMP_INTR'),
    (C, 'NLM_F_ACK', 'pyroute2.netlink:NLM_F_ACK'),
    (C, 'NLM_F_ROOT', 'pyroute2.netlink:NLM_F_ROOT'),
    (C, 'NLM_F_MATCH', 'pyroute2.netlink:NLM_F_MATCH'),
    (C, 'NLM_F_DUMP', 'pyroute2.netlink:NLM_F_DUMP'),
    (C, 'NLM_F_REPLACE', 'pyroute2.netlink:NLM_F_REPLACE'),
    (C, 'NLM_F_EXCL', 'pyroute2.netlink:NLM_F_EXCL'),
    (C, 'NLM_F_CREATE', 'pyroute2.netlink:NLM_F_CREATE'),
    (C, 'NLM_F_APPEND', 'pyroute2.netlink:NLM_F_APPEND'),
    (C, 'NLM_F_ACK_TLVS', 'pyroute2.netlink:NLM_F_ACK_TLVS'),
    (C, 'NLMSG_ERROR', 'pyroute2.netlink:NLMSG_ERROR'),
    (C, 'NLMSG_DONE', 'pyroute2.netlink:NLMSG_DONE'),
    (C, 'NLMSGERR_ATTR_MSG', ('nla', 'pyroute2.netlink:nlmsgerr', 'NLMSGERR_ATTR_MSG')),
    (C, 'RTM_NEWLINK', 'pyroute2.netlink.rtnl:RTM_NEWLINK'),
    (C, 'RTM_DELLINK', 'pyroute2.netlink.rtnl:RTM_DELLINK'),
    (C, 'RTM_GETLINK', 'pyroute2.netlink.rtnl:RTM_GETLINK'),
    (C, 'RTM_SETLINK', 'pyroute2.netlink.rtnl:RTM_SETLINK'),
    (C, 'RTM_NEWADDR', 'pyroute2.netlink.rtnl:RTM_NEWADDR'),
    (C, 'RTM_DELADDR', 'pyroute2.netlink.rtnl:RTM_DELADDR'),
    (C, 'RTM_GETADDR', 'pyroute2.netlink.rtnl:RTM_GETADDR'),
    (C, 'RTM_NEWROUTE', 'pyroute2.netlink.rtnl:RTM_NEWROUTE'),
    (C, 'RTM_DELROUTE', 'pyroute2.netlink.rtnl:RTM_DELROUTE'),
    (C, 'RTM_GETROUTE', 'pyroute2.netlink.rtnl:RTM_GETROUTE'),
    (C, 'RTM_GETNSID', 'pyroute2.netlink.rtnl:RTM_GETNSID'),
    (C, 'IFF_UP', 'pyroute2.netlink.rtnl.ifinfmsg:IFF_UP'),
    (C, 'IFNAMSIZ', 'pyroute2.netlink.ipq:IFNAMSIZ'),
    (C, 'IFLA_IFNAME', ('nla', IFINFMSG, 'IFLA_IFNAME')),
    (C, 'IFLA_MTU', ('nla', IFINFMSG, 'IFLA_MTU')),
    (C, 'IFLA_LINK', ('nla', IFINFMSG, 'IFLA_LINK')),
    (C, 'IFLA_MASTER', ('nla', IFINFMSG, 'IFLA_MASTER')),
    (C, 'IFLA_LINKINFO', ('nla', IFINFMSG, 'IFLA_LINKINFO')),
    (C, 'IFLA_IFALIAS', ('nla', IFINFMSG, 'IFLA_IFALIAS')),
    (C, 'IFLA_NET_NS_FD', ('nla', IFINFMSG, 'IFLA_NET_NS_FD')),
    (C, 'IFLA_EXT_MASK', ('nla', IFINFMSG, 'IFLA_EXT_MASK')),
    (C, 'IFLA_NUM_TX_QUEUES', ('nla', IFINFMSG, 'IFLA_NUM_TX_QUEUES')),
    (C, 'IFLA_NUM_RX_QUEUES', ('nla', IFINFMSG, 'IFLA_NUM_RX_QUEUES')),
    (C, 'IFLA_LINK_NETNSID', ('nla', IFINFMSG, 'IFLA_LINK_NETNSID')),
    (C, 'IFLA_AF_SPEC', ('nla', IFINFMSG, 'IFLA_AF_SPEC')),
    (C, 'IFLA_INET6_CONF', ('nla', IFINFMSG + '.af_spec_inet.inet6', 'IFLA_INET6_CONF')),
    (C, 'DEVCONF_DISABLE_IPV6', ('index', IFINFMSG + '.af_spec_inet.inet6.ipv6_devconf.field_names', 'disable_ipv6')),
    (C, 'IFLA_INFO_KIND', ('nla', IFINFMSG + '.ifinfo', 'IFLA_INFO_KIND')),
    (C, 'IFLA_INFO_DATA', ('nla', IFINFMSG + '.ifinfo', 'IFLA_INFO_DATA')),
    (C, 'VETH_INFO_PEER', ('nla', IFINFMSG + '.ifinfo.veth_data', 'VETH_INFO_PEER')),
    (C, 'IFA_ADDRESS', ('nla', IFADDRMSG, 'IFA_ADDRESS')),
    (C, 'IFA_LOCAL', ('nla', IFADDRMSG, 'IFA_LOCAL')),
    (C, 'IFA_F_NODAD', 'pyroute2.netlink.rtnl.ifaddrmsg:IFA_F_NODAD'),
    (C, 'RTA_DST', ('nla', RTMSG, 'RTA_DST')),
    (C, 'RTA_OIF', ('nla', RTMSG, 'RTA_OIF')),
    (C, 'RTA_GATEWAY', ('nla', RTMSG, 'RTA_GATEWAY')),
    (C, 'RTA_PRIORITY', ('nla', RTMSG, 'RTA_PRIORITY')),
    (C, 'RTA_TABLE', ('nla', RTMSG, 'RTA_TABLE')),
    (C, 'RTNH_F_ONLINK', 'pyroute2.netlink.rtnl.rtmsg:RTNH_F_ONLINK'),
    (C, 'RTN_UNICAST', ('dict', 'pyroute2.netlink.rtnl:rt_type', 'unicast')),
    (C, 'RTPROT_KERNEL', ('dict', 'pyroute2.netlink.rtnl:rt_proto', 'kernel')),
    (C, 'RTPROT_BOOT', ('dict', 'pyroute2.netlink.rtnl:rt_proto', 'boot')),
    (C, 'RTPROT_STATIC', ('dict', 'pyroute2.netlink.rtnl:rt_proto', 'static')),
    (C, 'RT_SCOPE_UNIVERSE', 'pyroute2.netlink.rtnl.rtmsg:RT_SCOPE_UNIVERSE'),
    (C, 'RT_SCOPE_LINK', 'pyroute2.netlink.rtnl.rtmsg:RT_SCOPE_LINK'),
    (C, 'NETNSA_NSID', ('nla', NSIDMSG, 'NETNSA_NSID')),
    (C, 'NETNSA_FD', ('nla', NSIDMSG, 'NETNSA_FD')),
    (C, 'NLA_F_NESTED', 'pyroute2.netlink:NLA_F_NESTED'),
    (C, 'IFLA_INFO_SLAVE_KIND', ('nla', IFINFMSG + '.ifinfo', 'IFLA_INFO_SLAVE_KIND')),
    (C, 'IFLA_INFO_SLAVE_DATA', ('nla', IFINFMSG + '.ifinfo', 'IFLA_INFO_SLAVE_DATA')),
    # a bridge port's attributes in IFLA_INFO_SLAVE_DATA (check_derived: IFLA_PROTINFO's are the same)
    (C, 'IFLA_BRPORT_MODE', ('nla', IFINFMSG + '.ifinfo.bridge_slave_data', 'IFLA_BRPORT_MODE')),
    (C, 'IFLA_BRPORT_ISOLATED', ('nla', IFINFMSG + '.ifinfo.bridge_slave_data', 'IFLA_BRPORT_ISOLATED')),
    (C, 'IPCTNL_MSG_CT_GET', ('nfnl', NFCT + ':NFNL_SUBSYS_CTNETLINK', NFCT + ':IPCTNL_MSG_CT_GET')),
    (C, 'IPCTNL_MSG_CT_DELETE', ('nfnl', NFCT + ':NFNL_SUBSYS_CTNETLINK', NFCT + ':IPCTNL_MSG_CT_DELETE')),
    (C, 'CTA_TUPLE_ORIG', ('nla', CT_MSG, 'CTA_TUPLE_ORIG')),
    (C, 'CTA_ID', ('nla', CT_MSG, 'CTA_ID')),
    (C, 'CTA_ZONE', ('nla', CT_MSG, 'CTA_ZONE')),
    (C, 'CTA_FILTER', ('nla', CT_MSG, 'CTA_FILTER')),
    (C, 'CTA_TUPLE_IP', ('nla', CT_MSG + '.cta_tuple', 'CTA_TUPLE_IP')),
    (C, 'CTA_TUPLE_PROTO', ('nla', CT_MSG + '.cta_tuple', 'CTA_TUPLE_PROTO')),
    (C, 'CTA_PROTO_NUM', ('nla', CT_MSG + '.cta_tuple.cta_proto', 'CTA_PROTO_NUM')),
    (C, 'CTA_PROTO_SRC_PORT', ('nla', CT_MSG + '.cta_tuple.cta_proto', 'CTA_PROTO_SRC_PORT')),
    (C, 'CTA_PROTO_DST_PORT', ('nla', CT_MSG + '.cta_tuple.cta_proto', 'CTA_PROTO_DST_PORT')),
    (C, 'CTA_FILTER_ORIG_FLAGS', ('nla', CT_MSG + '.cta_filter', 'CTA_FILTER_ORIG_FLAGS')),
    (C, 'CTA_FILTER_FLAG_PROTO_NUM', NFCT + ':FILTER_FLAG_CTA_PROTO_NUM'),
    (C, 'CTA_FILTER_FLAG_PROTO_DST_PORT', NFCT + ':FILTER_FLAG_CTA_PROTO_DST_PORT'),
    (N, 'NFNL_SUBSYS_NFTABLES', 'pyroute2.netlink.nfnetlink:NFNL_SUBSYS_NFTABLES'),
    (N, 'NFT_MSG_NEWTABLE', NFT + ':NFT_MSG_NEWTABLE'),
    (N, 'NFT_MSG_GETTABLE', NFT + ':NFT_MSG_GETTABLE'),
    (N, 'NFT_MSG_DELTABLE', NFT + ':NFT_MSG_DELTABLE'),
    (N, 'NFT_MSG_NEWCHAIN', NFT + ':NFT_MSG_NEWCHAIN'),
    (N, 'NFT_MSG_GETCHAIN', NFT + ':NFT_MSG_GETCHAIN'),
    (N, 'NFT_MSG_DELCHAIN', NFT + ':NFT_MSG_DELCHAIN'),
    (N, 'NFT_MSG_NEWRULE', NFT + ':NFT_MSG_NEWRULE'),
    (N, 'NFT_MSG_GETRULE', NFT + ':NFT_MSG_GETRULE'),
    (N, 'NFT_MSG_DELRULE', NFT + ':NFT_MSG_DELRULE'),
    (N, 'NFT_MSG_GETGEN', NFT + ':NFT_MSG_GETGEN'),
    (N, 'NFT_REG_VERDICT', ('enum', EXPR + '.nft_cmp.regs', 'NFT_REG_VERDICT')),
    (N, 'NFT_REG_1', ('enum', EXPR + '.nft_cmp.regs', 'NFT_REG_1')),
    (N, 'NFT_CMP_EQ', ('enum', EXPR + '.nft_cmp.ops', 'NFT_CMP_EQ')),
    (N, 'NFT_CMP_NEQ', ('enum', EXPR + '.nft_cmp.ops', 'NFT_CMP_NEQ')),
    (N, 'NFT_META_IIFNAME', ('enum', EXPR + '.nft_meta.meta_key', 'NFT_META_IIFNAME')),
    (N, 'NFT_META_OIFNAME', ('enum', EXPR + '.nft_meta.meta_key', 'NFT_META_OIFNAME')),
    (N, 'NFT_META_NFPROTO', ('enum', EXPR + '.nft_meta.meta_key', 'NFT_META_NFPROTO')),
    (N, 'NFT_PAYLOAD_NETWORK_HEADER', ('enum', EXPR + '.nft_payload.base_type', 'NFT_PAYLOAD_NETWORK_HEADER')),
    (N, 'NFT_BITWISE_BOOL', ('enum', EXPR + '.nft_bitwise.bitwise_op', 'NFT_BITWISE_BOOL')),
    (N, 'NF_DROP', ('enum', NFT + ':nft_data.nfta_data.verdict.verdict_code', 'NF_DROP')),
    (N, 'NF_ACCEPT', ('enum', NFT + ':nft_data.nfta_data.verdict.verdict_code', 'NF_ACCEPT')),
    (N, 'NFT_REG_2', ('enum', EXPR + '.nft_cmp.regs', 'NFT_REG_2')),
    (N, 'NFT_META_L4PROTO', ('enum', EXPR + '.nft_meta.meta_key', 'NFT_META_L4PROTO')),
    (N, 'NFT_PAYLOAD_TRANSPORT_HEADER', ('enum', EXPR + '.nft_payload.base_type', 'NFT_PAYLOAD_TRANSPORT_HEADER')),
    (N, 'NFT_CT_STATUS', ('enum', EXPR + '.nft_ct.keys', 'NFT_CT_STATUS')),
    (N, 'NFT_CT_STATE', ('enum', EXPR + '.nft_ct.keys', 'NFT_CT_STATE')),
    # enum nft_list_attributes, which pyroute2 declares for a set's concatenation only
    (N, 'NFTA_LIST_ELEM', ('nla', NFT + ':nft_set_msg.set_desc.list_elem', 'NFTA_LIST_ELEM')),
    (N, 'IPS_DST_NAT', NFCT + ':IPS_DST_NAT'),
    (N, 'NFTA_FIB_F_DADDR', ('flag', EXPR + '.nft_fib.fib_flags', 'NFTA_FIB_F_DADDR')),
    (N, 'NFT_FIB_RESULT_ADDRTYPE', ('position', EXPR + '.nft_fib.fib_result', 'NFT_FIB_RESULT_ADDRTYPE')),
    (N, 'RTN_LOCAL', ('dict', 'pyroute2.netlink.rtnl:rt_type', 'local')),
    (N, 'NFT_NAT_DNAT', ('enum', EXPR + '.nft_nat.types', 'NFT_NAT_DNAT')),
    (N, 'NF_NAT_RANGE_MAP_IPS', ('flag', EXPR + '.nft_nat.nat_range', 'NF_NAT_RANGE_MAP_IPS')),
    (N, 'NF_NAT_RANGE_PROTO_SPECIFIED', ('flag', EXPR + '.nft_nat.nat_range', 'NF_NAT_RANGE_PROTO_SPECIFIED')),
    # declared by pyroute2 0.9 (nftsocket), not by 0.7.2: see OPTIONAL
    (N, 'NFPROTO_INET', NFT + ':NFPROTO_INET'),
    (N, 'NFPROTO_IPV4', NFT + ':NFPROTO_IPV4'),
    (N, 'NFPROTO_IPV6', NFT + ':NFPROTO_IPV6'),
]
OPTIONAL = {'NFPROTO_INET', 'NFPROTO_IPV4', 'NFPROTO_IPV6'}

# What no pyroute2 declares, and where the kernel does (include/uapi/linux/...). The tests that talk
# to the kernel (tests/integration) exercise each of them.
KERNEL_ONLY = {
    'NETLINK_CAP_ACK': 'netlink.h',
    'NFNL_MSG_BATCH_BEGIN': 'netfilter/nfnetlink.h (NLMSG_MIN_TYPE)',
    'NFNL_MSG_BATCH_END': 'netfilter/nfnetlink.h',
    'RTEXT_FILTER_SKIP_STATS': 'rtnetlink.h',
    'RT_TABLE_COMPAT': 'rtnetlink.h',
    'RT_TABLE_MAIN': 'rtnetlink.h',
    'RT_TABLE_LOCAL': 'rtnetlink.h',
    'NFT_TABLE_F_DORMANT': 'netfilter/nf_tables.h',
    'NFTNL_UDATA_RULE_COMMENT': "libnftnl's udata.h (what nft writes for a rule's comment)",
    'RTPROT_LINUXNET': 'ours: a protocol number no registry uses (checked below against pyroute2)',
    'NF_CT_STATE_ESTABLISHED': 'netfilter/nf_conntrack_common.h (NF_CT_STATE_BIT(IP_CT_ESTABLISHED))',
    'NF_CT_STATE_RELATED': 'netfilter/nf_conntrack_common.h (NF_CT_STATE_BIT(IP_CT_RELATED))',
}


def reference(ref):
    """The value pyroute2 declares for `ref` (see CONSTANTS), or KeyError if it declares none."""
    if isinstance(ref, str):
        try:
            return lookup(ref)
        except AttributeError:
            raise KeyError(ref)
    kind, path, key = ref
    if kind == 'nfnl':
        return (reference(path) << 8) | reference(key)
    obj = lookup(path)
    if kind == 'nla':
        return nla_ids(obj)[key]
    if kind == 'index':
        return list(obj).index(key)
    if kind == 'enum':
        return dict((name, num) for num, name in obj.ops.items())[key]
    if kind in ('flag', 'position'):
        names = obj.ops.items() if isinstance(obj.ops, dict) else enumerate(obj.ops)
        bit = dict((name, num) for num, name in names)[key]
        return 1 << bit if kind == 'flag' else bit
    return obj[key]


def check_constant(module, name, ref):
    ours = getattr(module, name)
    try:
        theirs = reference(ref)
    except KeyError:
        assert name in OPTIONAL, '%s: this pyroute2 does not declare it (%r)' % (name, ref)
        return
    assert ours == theirs, '%s.%s = %r, pyroute2 says %r' % (module.__name__, name, ours, theirs)


def declared_constants():
    """The names of every number our codec declares (module-level upper-case ints)."""
    return sorted(name for module in (C, N) for name, value in vars(module).items()
                  if name.isupper() and isinstance(value, int) and not isinstance(value, bool)
                  and name not in ('HAS_PYROUTE2',))


def check_every_constant_is_compared():
    compared = set(name for _module, name, _ref in CONSTANTS)
    missing = [name for name in declared_constants() if name not in compared and name not in KERNEL_ONLY]
    assert not missing, 'declared in the codec but compared with nothing: %s' % missing
    assert C.RTPROT_LINUXNET not in lookup('pyroute2.netlink.rtnl:rt_proto').values()


def check_derived():
    """The tables built from the numbers say the same as pyroute2's names for them."""
    assert C.NLM_F_DUMP == C.NLM_F_ROOT | C.NLM_F_MATCH
    assert N.POLICIES == {reference(('enum', NFT + ':nft_data.nfta_data.verdict.verdict_code', 'NF_DROP')): 'drop',
                          reference(('enum', NFT + ':nft_data.nfta_data.verdict.verdict_code', 'NF_ACCEPT')): 'accept'}
    assert N.msg_type(N.NFT_MSG_NEWRULE) == (lookup('pyroute2.netlink.nfnetlink:NFNL_SUBSYS_NFTABLES') << 8) | 6
    assert C.IFLA_BRPORT_MODE == reference(('nla', 'pyroute2.netlink.rtnl.ifinfmsg:protinfo_bridge', 'IFLA_BRPORT_MODE'))


# --- structs ------------------------------------------------------------------------------------------
STRUCTS = [
    ('HEADER', 'pyroute2.netlink:nlmsg', 'header'),
    ('IFINFO', IFINFMSG, 'fields'),
    ('IFADDR', IFADDRMSG, 'fields'),
    ('RTMSG', RTMSG, 'fields'),
    ('RTGEN', NSIDMSG, 'fields'),
    ('ERROR', 'pyroute2.netlink:nlmsgerr', 'fields'),
]


def check_struct(name, path, attr):
    ours = getattr(C, name)
    fields = getattr(lookup(path), attr)
    theirs = struct.Struct('=' + ''.join(fmt for _field, fmt in fields))
    assert ours.size == theirs.size, '%s: %d bytes, pyroute2 %d' % (name, ours.size, theirs.size)
    values = list(range(1, 1 + len([f for f in fields if not f[1].endswith('x')])))
    assert ours.pack(*values) == theirs.pack(*values), name


# --- encoders, byte for byte ---------------------------------------------------------------------------
def same(a, b):
    assert bytes(a) == bytes(b), '\n%s\n%s' % (bytes(a).hex(), bytes(b).hex())


def agree(ours, theirs):
    assert ours == theirs, 'ours %r, pyroute2 %r' % (ours, theirs)


def message_class(name):
    """pyroute2's class: an rtnetlink one as the codec imports it ('ifinfmsg'), else 'module:Class'."""
    return lookup(name) if ':' in name else getattr(C, name)


def msg(cls, msg_type, flags, fields, attrs):
    return C.encode(message_class(cls), msg_type, flags, fields, attrs)


LINKS = [
    ({'index': 7, 'flags': 1, 'change': 1}, [], dict(index=7, ifi_flags=1, change=1)),
    ({}, [('IFLA_IFNAME', 'eth0'), ('IFLA_MTU', 1400), ('IFLA_MASTER', 3), ('IFLA_IFALIAS', 'linuxnet.netns')],
     dict(attrs=dict(name='eth0', mtu=1400, master=3, alias='linuxnet.netns'))),
    ({'flags': 0, 'change': 1}, [('IFLA_IFNAME', 'veth-with-15ch'), ('IFLA_IFALIAS', 'x')],
     dict(ifi_flags=0, change=1, attrs=dict(name='veth-with-15ch', alias='x'))),
]


def check_link(fields, attrs, kw):
    kw = dict(kw)
    ours = C.link_message(16, 0x600, C.link_attrs(**kw.pop('attrs', {})), **kw)
    same(ours, msg('ifinfmsg', 16, 0x600, fields, attrs))


VETHS = [(None, None), (9000, 5), (None, 12)]


def check_veth_create(mtu, fd):
    # one queue each way at both ends (ip link add ... numtxqueues 1 numrxqueues 1)
    queues = [('IFLA_NUM_TX_QUEUES', 1), ('IFLA_NUM_RX_QUEUES', 1)]
    peer = [('IFLA_IFNAME', 'eth0')] + queues
    if mtu:
        peer.append(('IFLA_MTU', mtu))
    if fd is not None:
        peer.append(('IFLA_NET_NS_FD', fd))
    info = {'attrs': [('IFLA_INFO_KIND', 'veth'), ('IFLA_INFO_DATA', {'attrs': [('VETH_INFO_PEER', {'attrs': peer})]})]}
    theirs = msg('ifinfmsg', 16, 0x600, {}, [('IFLA_IFNAME', 'vh1'), ('IFLA_MTU', 1500)] + queues + [('IFLA_LINKINFO', info)])
    ours = C.link_message(16, 0x600, C.link_attrs(name='vh1', mtu=1500) + [C.veth_info('eth0', mtu, fd)])
    same(ours, theirs)


def check_bridge_create():
    theirs = msg('ifinfmsg', 16, 0x600, {}, [('IFLA_IFNAME', 'br0'),
                                             ('IFLA_LINKINFO', {'attrs': [('IFLA_INFO_KIND', 'bridge')]})])
    same(C.link_message(16, 0x600, C.link_attrs(name='br0') + [C.kind_info('bridge')]), theirs)


def _port_flag_info(flag, value):
    return {'attrs': [('IFLA_INFO_SLAVE_KIND', 'bridge'),
                      ('IFLA_INFO_SLAVE_DATA', {'attrs': [(flag, value)]})]}


# (hairpin mode: check_hairpin_info)
PORT_FLAGS = [('IFLA_BRPORT_ISOLATED', 'isolated_info', True), ('IFLA_BRPORT_ISOLATED', 'isolated_info', False)]


def check_port_flag(flag, encoder, on):
    """A bridge port's flag (`ip link set X type bridge_slave isolated on`), by index."""
    theirs = msg('ifinfmsg', C.RTM_NEWLINK, 0, {'index': 7}, [('IFLA_LINKINFO', _port_flag_info(flag, int(on)))])
    same(C.link_message(C.RTM_NEWLINK, 0, [getattr(C, encoder)(on)], index=7), theirs)


ADDRESSES = [('10.0.0.2/24', 0), ('fd00::2/64', 2), ('192.0.2.1/32', 0)]


def check_address(text, flags):
    iface = ipaddress.ip_interface(text)
    attrs = [('IFA_ADDRESS', str(iface.ip))]
    if iface.version == 4:
        attrs.insert(0, ('IFA_LOCAL', str(iface.ip)))
    fields = {'family': 2 if iface.version == 4 else 10, 'prefixlen': iface.network.prefixlen, 'index': 4, 'flags': flags}
    same(C.address_message(20, 0x600, 4, iface, flags), msg('ifaddrmsg', 20, 0x600, fields, attrs))


ROUTES = [
    ('0.0.0.0/0', '10.0.0.1', None, 0, 254), ('10.20.0.0/16', '10.0.0.1', 3, 100, 100),
    ('::/0', 'fd00::1', None, 1024, 254), ('10.1.0.0/24', None, 2, 0, 1000),
]


def check_route(dest, gateway, oif, metric, table):
    net = ipaddress.ip_network(dest)
    family = 2 if net.version == 4 else 10
    fields = {'family': family, 'dst_len': net.prefixlen, 'table': table if table < 256 else 252,
              'proto': 4, 'type': 1, 'scope': 0 if gateway else 253, 'flags': 0}
    attrs = [('RTA_TABLE', table)]
    if net.prefixlen:
        attrs.append(('RTA_DST', str(net.network_address)))
    if gateway:
        attrs.append(('RTA_GATEWAY', gateway))
    if oif is not None:
        attrs.append(('RTA_OIF', oif))
    if metric:
        attrs.append(('RTA_PRIORITY', metric))
    ours = C.route_message(24, 0x600, family, net.prefixlen, table, proto=4, scope=0 if gateway else 253, rtype=1,
                           dst=net.network_address if net.prefixlen else None,
                           gateway=ipaddress.ip_address(gateway) if gateway else None, oif=oif, metric=metric)
    same(ours, msg('rtmsg', 24, 0x600, fields, attrs))


def check_read_requests():
    """The bodies of the reads (dumps, gets by index and by name, namespace ids)."""
    skip_stats = [('IFLA_EXT_MASK', C.RTEXT_FILTER_SKIP_STATS)]
    same(C.message(C.RTM_GETLINK, C.NLM_F_DUMP, C.links_request()),
         msg('ifinfmsg', C.RTM_GETLINK, C.NLM_F_DUMP, {}, skip_stats))
    same(C.message(C.RTM_GETLINK, 0, C.link_by_index(9)), msg('ifinfmsg', C.RTM_GETLINK, 0, {'index': 9}, skip_stats))
    same(C.message(C.RTM_GETLINK, 0, C.link_by_name('veth0')),
         msg('ifinfmsg', C.RTM_GETLINK, 0, {}, [('IFLA_IFNAME', 'veth0')] + skip_stats))
    for family in (0, socket.AF_INET, socket.AF_INET6):
        same(C.message(C.RTM_GETADDR, C.NLM_F_DUMP, C.addresses_request(family)),
             msg('ifaddrmsg', C.RTM_GETADDR, C.NLM_F_DUMP, {'family': family}, []))
        same(C.message(C.RTM_GETROUTE, C.NLM_F_DUMP, C.routes_request(family)),
             msg('rtmsg', C.RTM_GETROUTE, C.NLM_F_DUMP, {'family': family}, []))
    same(C.message(C.RTM_GETNSID, 0, C.nsid_request(11)), msg('nsidmsg', C.RTM_GETNSID, 0, {}, [('NETNSA_FD', 11)]))


def check_nft_batch_ends():
    """BEGIN (with and without a generation id) and END, as pyroute2's nfgen_msg reads them."""
    for genid in (None, 1234):
        begin = C.decode(N.nfnl_batch_msg, bytes(N.batch_begin(genid)))
        assert (begin['header']['type'], begin['res_id'], begin.get_attr('NFNL_BATCH_GENID')) == (
            N.NFNL_MSG_BATCH_BEGIN, N.NFNL_SUBSYS_NFTABLES, genid)
    end = C.decode(N.nfgen_msg, bytes(N.batch_end()))
    assert (end['header']['type'], end['res_id']) == (N.NFNL_MSG_BATCH_END, N.NFNL_SUBSYS_NFTABLES)


# --- decoders, against pyroute2's parser ----------------------------------------------------------------
def payload(data):
    return bytes(data)[16:]


def parsed(cls, data):
    return C.decode(message_class(cls), bytes(data))


def _linkinfo(kind):
    return {'attrs': [('IFLA_INFO_KIND', kind)]}


DECODED_LINKS = [
    ({'index': 7, 'flags': 1}, [('IFLA_IFNAME', 'veth0'), ('IFLA_MTU', 1400), ('IFLA_LINK', 12),
                                ('IFLA_MASTER', 3), ('IFLA_IFALIAS', 'linuxnet.netns'),
                                ('IFLA_LINKINFO', _linkinfo('veth')), ('IFLA_LINK_NETNSID', 5)]),
    ({'index': 1, 'flags': 0x10049}, [('IFLA_IFNAME', 'lo'), ('IFLA_TXQLEN', 1000), ('IFLA_MTU', 65536),
                                      ('IFLA_ADDRESS', '00:00:00:00:00:00'), ('IFLA_GROUP', 0)]),
    ({'index': 40, 'flags': 0x1002}, [('IFLA_IFNAME', 'br0'), ('IFLA_MTU', 1500), ('IFLA_LINK', 40),
                                      ('IFLA_LINKINFO', _linkinfo('bridge'))]),
    ({'index': 3, 'flags': 0}, [('IFLA_IFNAME', 'vh3'), ('IFLA_LINK', 2), ('IFLA_LINKINFO', _linkinfo('veth'))]),
]

# bridge ports: what the kernel reports of one (the flags among others), isolated or not; and a
# kernel older than 4.18, which reports no isolation
DECODED_PORT_FLAGS = [
    ([('IFLA_BRPORT_STATE', 3), ('IFLA_BRPORT_MODE', 0), ('IFLA_BRPORT_LEARNING', 1), ('IFLA_BRPORT_ISOLATED', 1)],
     False, True),
    ([('IFLA_BRPORT_MODE', 1), ('IFLA_BRPORT_ISOLATED', 0), ('IFLA_BRPORT_BACKUP_PORT', 9)], True, False),
    ([('IFLA_BRPORT_STATE', 3), ('IFLA_BRPORT_MODE', 0)], False, None),
]


def check_port_flags_decoded(port_attrs, hairpin, isolated):
    """Link.hairpin and Link.isolated of a bridge port, as pyroute2 reads them."""
    info = {'attrs': [('IFLA_INFO_KIND', 'veth'), ('IFLA_INFO_SLAVE_KIND', 'bridge'),
                      ('IFLA_INFO_SLAVE_DATA', {'attrs': port_attrs})]}
    attrs = [('IFLA_IFNAME', 'vh7'), ('IFLA_MASTER', 3), ('IFLA_LINKINFO', info)]
    data = msg('ifinfmsg', C.RTM_NEWLINK, 0, {'index': 7}, attrs)
    theirs = parsed('ifinfmsg', data).get_attr('IFLA_LINKINFO').get_attr('IFLA_INFO_SLAVE_DATA')
    ours = C.Link(payload(data))
    agree((ours.kind, ours.hairpin, ours.isolated), ('veth', bool(theirs.get_attr('IFLA_BRPORT_MODE')),
                                                     None if theirs.get_attr('IFLA_BRPORT_ISOLATED') is None
                                                     else bool(theirs.get_attr('IFLA_BRPORT_ISOLATED'))))
    agree((ours.hairpin, ours.isolated), (hairpin, isolated))


def check_link_ipv6_decoded(af_spec, ipv6):
    """Link.ipv6 (disable_ipv6 in IFLA_AF_SPEC's AF_INET6 IFLA_INET6_CONF), as pyroute2 reads it;
    None where the kernel reports no IPv6 for the link."""
    attrs = [('IFLA_IFNAME', 'vh7')] + ([('IFLA_AF_SPEC', {'attrs': af_spec})] if af_spec is not None else [])
    data = msg('ifinfmsg', C.RTM_NEWLINK, 0, {'index': 7}, attrs)
    spec = parsed('ifinfmsg', data).get_attr('IFLA_AF_SPEC')
    inet6 = spec.get_attr('AF_INET6') if spec is not None else None
    conf = inet6.get_attr('IFLA_INET6_CONF') if inet6 is not None else None
    agree(C.Link(payload(data)).ipv6, None if conf is None else not conf['disable_ipv6'])
    agree(C.Link(payload(data)).ipv6, ipv6)


DECODED_IPV6 = [
    ([('AF_INET', {'attrs': []}), ('AF_INET6', {'attrs': [('IFLA_INET6_FLAGS', 0), ('IFLA_INET6_CONF', {
        'forwarding': 1, 'hop_limit': 64, 'disable_ipv6': 0, 'accept_dad': 1})]})], True),
    ([('AF_INET6', {'attrs': [('IFLA_INET6_CONF', {'disable_ipv6': 1, 'mc_forwarding': 1, 'accept_dad': 1})]})], False),
    ([('AF_INET', {'attrs': []})], None),  # a kernel booted with ipv6.disable=1
    (None, None),
]


def check_link_decoded(fields, attrs):
    data = msg('ifinfmsg', C.RTM_NEWLINK, 0, fields, attrs)
    theirs = parsed('ifinfmsg', data)
    ours = C.Link(payload(data))
    info = theirs.get_attr('IFLA_LINKINFO')
    kind = info.get_attr('IFLA_INFO_KIND') if info is not None else None
    veth = kind == 'veth'
    nsid = theirs.get_attr('IFLA_LINK_NETNSID')
    agree((ours.index, ours.up, ours.name, ours.mtu, ours.master, ours.alias, ours.kind, ours.peer_index,
           ours.peer_nsid), (
        theirs['index'], bool(theirs['flags'] & C.IFF_UP), theirs.get_attr('IFLA_IFNAME'), theirs.get_attr('IFLA_MTU'),
        theirs.get_attr('IFLA_MASTER'), theirs.get_attr('IFLA_IFALIAS'), kind,
        theirs.get_attr('IFLA_LINK') if veth else None, nsid if veth and nsid is not None and nsid >= 0 else None))
    assert C.ifinfo_index(payload(data)) == theirs['index']


DECODED_ADDRESSES = [
    ({'family': 2, 'prefixlen': 24, 'index': 4}, [('IFA_LOCAL', '10.0.0.2'), ('IFA_ADDRESS', '10.0.0.2'),
                                                  ('IFA_LABEL', 'eth0')]),
    ({'family': 2, 'prefixlen': 32, 'index': 5}, [('IFA_LOCAL', '10.0.0.1'), ('IFA_ADDRESS', '10.0.0.9')]),  # p2p
    ({'family': 10, 'prefixlen': 64, 'index': 6}, [('IFA_ADDRESS', 'fd00::2')]),
    ({'family': 10, 'prefixlen': 64, 'index': 6}, [('IFA_ADDRESS', 'fe80::1')]),
    ({'family': 10, 'prefixlen': 128, 'index': 1}, [('IFA_ADDRESS', '::1'), ('IFA_FLAGS', 0x80)]),
    ({'family': 2, 'prefixlen': 8, 'index': 1}, []),
]


def check_address_decoded(fields, attrs):
    data = msg('ifaddrmsg', C.RTM_NEWADDR, 0, fields, attrs)
    theirs = parsed('ifaddrmsg', data)
    address = theirs.get_attr('IFA_LOCAL') or theirs.get_attr('IFA_ADDRESS')
    iface = ipaddress.ip_interface('%s/%d' % (address, theirs['prefixlen'])) if address else None
    agree([(a.index, a.family, a.prefixlen, a.iface) for a in C.decode_addresses([payload(data)])],
          [(theirs['index'], theirs['family'], theirs['prefixlen'], iface)] if iface else [])
    other = socket.AF_INET6 if theirs['family'] == socket.AF_INET else socket.AF_INET
    assert C.decode_addresses([payload(data)], other) == []
    kept = C.decode_addresses([payload(data)], theirs['family'], link_local=False)
    assert len(kept) == (1 if iface and not (iface.version == 6 and iface.ip.is_link_local) else 0)


DECODED_ROUTES = [
    ({'family': 2, 'dst_len': 0, 'table': 254, 'proto': 76, 'scope': 0, 'type': 1},
     [('RTA_TABLE', 254), ('RTA_GATEWAY', '10.0.0.1'), ('RTA_OIF', 2)]),
    ({'family': 2, 'dst_len': 16, 'table': 252, 'proto': 4, 'scope': 253, 'type': 1},
     [('RTA_TABLE', 1000), ('RTA_DST', '10.20.0.0'), ('RTA_OIF', 3), ('RTA_PRIORITY', 100), ('RTA_PREFSRC', '10.0.0.2')]),
    ({'family': 10, 'dst_len': 64, 'table': 254, 'proto': 2, 'scope': 0, 'type': 1},
     [('RTA_TABLE', 254), ('RTA_DST', 'fd00::'), ('RTA_PRIORITY', 256), ('RTA_OIF', 4)]),
    ({'family': 2, 'dst_len': 32, 'table': 255, 'proto': 2, 'scope': 254, 'type': 2},
     [('RTA_TABLE', 255), ('RTA_DST', '127.0.0.1'), ('RTA_OIF', 1)]),
]


def check_route_decoded(fields, attrs):
    data = msg('rtmsg', C.RTM_NEWROUTE, 0, fields, attrs)
    theirs = parsed('rtmsg', data)
    ours = C.Route(payload(data))
    zero = '0.0.0.0' if theirs['family'] == socket.AF_INET else '::'
    dest = ipaddress.ip_network('%s/%d' % (theirs.get_attr('RTA_DST') or zero, theirs['dst_len']))
    gateway = theirs.get_attr('RTA_GATEWAY')
    agree((ours.family, ours.dest, ours.table, ours.metric, ours.gateway, ours.oif, ours.proto, ours.scope,
           ours.rtype), (
        theirs['family'], dest, theirs.get_attr('RTA_TABLE') or theirs['table'], theirs.get_attr('RTA_PRIORITY') or 0,
        ipaddress.ip_address(gateway) if gateway else None, theirs.get_attr('RTA_OIF'), theirs['proto'],
        theirs['scope'], theirs['type']))
    assert ours.key == C.route_key(dest, ours.table, ours.metric)


def check_nsid_decoded():
    for nsid in (0, 7, 0xffffffff):  # NETNSA_NSID_NOT_ASSIGNED (-1) as pyroute2's uint32 holds it
        data = msg('nsidmsg', C.RTM_GETNSID + 1, 0, {}, [('NETNSA_NSID', nsid)])
        theirs = parsed('nsidmsg', data).get_attr('NETNSA_NSID')
        assert C.nsid_of(payload(data)) == (None if theirs >= 0x80000000 else theirs)
    assert C.nsid_of(payload(msg('nsidmsg', C.RTM_GETNSID + 1, 0, {}, []))) is None
    assert C.nsid_of(None) is None


def check_error_decoded():
    """An NLMSG_ERROR with an extended ack, framed as the kernel frames it (with NETLINK_CAP_ACK):
    the error, the request's header, then the attributes. pyroute2 encodes the error without the
    request's header (its parser would read that header as attributes), so the header is put in."""
    request = C.message(C.RTM_NEWLINK, C.NLM_F_CREATE, C.ifinfo())
    struct.pack_into('=I', request, 8, 42)  # its sequence number
    plain = msg(NLMSGERR, C.NLMSG_ERROR, C.NLM_F_ACK_TLVS, {'error': -22},
                [('NLMSGERR_ATTR_MSG', 'Unknown device type')])
    theirs = parsed(NLMSGERR, plain)
    kernel = bytearray(plain[:20] + request[:16] + plain[20:])
    struct.pack_into('=I', kernel, 0, len(kernel))
    flags = struct.unpack_from('=H', kernel, 6)[0]
    assert -C.ERROR.unpack_from(kernel, 16)[0] == -theirs['error'] == 22
    assert C.ext_ack_text(kernel, 0, len(kernel), flags) == theirs.get_attr('NLMSGERR_ATTR_MSG')
    assert C.ext_ack_text(kernel, 0, len(kernel), 0) is None  # no NLM_F_ACK_TLVS: no attributes
    assert C.HEADER.unpack_from(kernel, 20)[3] == 42


def check_hairpin_info():
    """Setting a bridge port's hairpin mode: IFLA_INFO_SLAVE_KIND bridge, IFLA_BRPORT_MODE in its data."""
    for on in (True, False):
        same(C.link_message(C.RTM_NEWLINK, 0, [C.hairpin_info(on)], index=5),
             msg('ifinfmsg', C.RTM_NEWLINK, 0, {'index': 5}, [('IFLA_LINKINFO', {'attrs': [
                 ('IFLA_INFO_SLAVE_KIND', 'bridge'),
                 ('IFLA_INFO_SLAVE_DATA', {'attrs': [('IFLA_BRPORT_MODE', 1 if on else 0)]})]})]))


def _port_info(kind, slave_kind, slave_attrs):
    attrs = [('IFLA_INFO_KIND', kind)] if kind else []
    if slave_kind:
        attrs.append(('IFLA_INFO_SLAVE_KIND', slave_kind))
    if slave_attrs is not None:
        attrs.append(('IFLA_INFO_SLAVE_DATA', {'attrs': slave_attrs}))
    return [('IFLA_IFNAME', 'p0'), ('IFLA_MASTER', 3), ('IFLA_LINKINFO', {'attrs': attrs})]


DECODED_PORTS = [
    ('veth', 'bridge', [('IFLA_BRPORT_STATE', 3), ('IFLA_BRPORT_MODE', 1), ('IFLA_BRPORT_GUARD', 0)]),
    ('veth', 'bridge', [('IFLA_BRPORT_STATE', 3), ('IFLA_BRPORT_MODE', 0)]),
    (None, 'bridge', [('IFLA_BRPORT_MODE', 1)]),
    ('veth', None, None),  # not a port of anything
    ('dummy', 'bond', []),  # a bond's port: no hairpin to speak of
]


def check_port_decoded(kind, slave_kind, slave_attrs):
    """Link.hairpin: a bridge port's IFLA_BRPORT_MODE as pyroute2 reads it; None for any other link."""
    data = msg('ifinfmsg', C.RTM_NEWLINK, 0, {'index': 9}, _port_info(kind, slave_kind, slave_attrs))
    info = parsed('ifinfmsg', data).get_attr('IFLA_LINKINFO')
    slave = info.get_attr('IFLA_INFO_SLAVE_DATA')
    theirs = None
    if info.get_attr('IFLA_INFO_SLAVE_KIND') == 'bridge' and slave is not None:
        theirs = bool(slave.get_attr('IFLA_BRPORT_MODE'))
    link = C.Link(payload(data))
    agree((link.kind, link.hairpin), (info.get_attr('IFLA_INFO_KIND'), theirs))


CT_FILTER = C.CTA_FILTER_FLAG_PROTO_NUM | C.CTA_FILTER_FLAG_PROTO_DST_PORT


def check_ct_dump_request():
    """The conntrack dump of one protocol and destination port, as nfct_msg encodes it. pyroute2 drops
    a flag given to an attribute nested two deep (its setvalue rebuilds the cells), so
    CTA_TUPLE_PROTO's NLA_F_NESTED is put in by hand."""
    for family, proto, port in ((socket.AF_INET, 17, 5353), (socket.AF_INET6, 6, 80)):
        theirs = msg(CT_MSG, C.IPCTNL_MSG_CT_GET, C.NLM_F_DUMP, {'nfgen_family': family}, [
            ('CTA_TUPLE_ORIG', {'attrs': [('CTA_TUPLE_PROTO', {'attrs': [
                ('CTA_PROTO_NUM', proto), ('CTA_PROTO_DST_PORT', port)]})]}, C.NLA_F_NESTED),
            ('CTA_FILTER', {'attrs': [('CTA_FILTER_ORIG_FLAGS', CT_FILTER)]})])
        assert struct.unpack_from('=H', theirs, 26)[0] == C.CTA_TUPLE_PROTO
        struct.pack_into('=H', theirs, 26, C.CTA_TUPLE_PROTO | C.NLA_F_NESTED)
        same(C.message(C.IPCTNL_MSG_CT_GET, C.NLM_F_DUMP, C.ct_dump_request(family, proto, port)), theirs)


def _ct_entry(family, proto, src, dst, sport, dport, ct_id=None, zone=None):
    """A dumped conntrack entry as the kernel sends it (nests flagged), encoded by nfct_msg."""
    v4 = family == socket.AF_INET
    ips = [('CTA_IP_V4_SRC' if v4 else 'CTA_IP_V6_SRC', src), ('CTA_IP_V4_DST' if v4 else 'CTA_IP_V6_DST', dst)]
    ports = [('CTA_PROTO_NUM', proto), ('CTA_PROTO_SRC_PORT', sport), ('CTA_PROTO_DST_PORT', dport)]
    reply = [('CTA_IP_V4_SRC' if v4 else 'CTA_IP_V6_SRC', dst), ('CTA_IP_V4_DST' if v4 else 'CTA_IP_V6_DST', src)]
    attrs = [('CTA_TUPLE_ORIG', {'attrs': [('CTA_TUPLE_IP', {'attrs': ips}), ('CTA_TUPLE_PROTO', {'attrs': ports})]},
              C.NLA_F_NESTED),
             ('CTA_TUPLE_REPLY', {'attrs': [('CTA_TUPLE_IP', {'attrs': reply}), ('CTA_TUPLE_PROTO', {'attrs': [
                 ('CTA_PROTO_NUM', proto), ('CTA_PROTO_SRC_PORT', dport), ('CTA_PROTO_DST_PORT', sport)]})]},
              C.NLA_F_NESTED),
             ('CTA_STATUS', 8)]
    if ct_id is not None:
        attrs.append(('CTA_ID', ct_id))
    if zone is not None:
        attrs.append(('CTA_ZONE', zone))
    return msg(CT_MSG, C.IPCTNL_MSG_CT_GET, C.NLM_F_MULTI, {'nfgen_family': family}, attrs)


def _tuple(ct):
    orig = ct.get_attr('CTA_TUPLE_ORIG')
    ips, ports = orig.get_attr('CTA_TUPLE_IP'), orig.get_attr('CTA_TUPLE_PROTO')
    names = ('CTA_IP_V4_SRC', 'CTA_IP_V4_DST', 'CTA_IP_V6_SRC', 'CTA_IP_V6_DST')
    return (ct['nfgen_family'], [(name, ips.get_attr(name)) for name in names if ips.get_attr(name) is not None],
            ports.get_attr('CTA_PROTO_NUM'), ports.get_attr('CTA_PROTO_SRC_PORT'), ports.get_attr('CTA_PROTO_DST_PORT'))


def check_ct_matches():
    """ct_matches picks the dumped entries of the family, protocol and destination port asked (a
    kernel before 5.8 ignores CTA_FILTER and sends all), and deletes each by its own original tuple,
    id and zone, which pyroute2 reads back as the entry's."""
    v4, v6 = socket.AF_INET, socket.AF_INET6
    dumped = [
        _ct_entry(v4, 17, '10.0.0.5', '192.0.2.1', 40000, 5353, ct_id=77, zone=0),  # the one
        _ct_entry(v4, 17, '10.0.0.5', '192.0.2.1', 40001, 5354, ct_id=78),  # another port
        _ct_entry(v4, 6, '10.0.0.5', '192.0.2.1', 40002, 5353, ct_id=79),  # tcp
        _ct_entry(v6, 17, 'fd00::5', 'fd00::1', 40003, 5353, ct_id=80),  # another family
        _ct_entry(v4, 17, '10.0.0.6', '192.0.2.1', 40004, 5353, ct_id=81, zone=3),  # the second one
    ]
    found = C.ct_matches([payload(data) for data in dumped], v4, 17, 5353)
    assert [what for what, _body in found] == ['conntrack entry 10.0.0.5:40000 -> 192.0.2.1:5353',
                                               'conntrack entry 10.0.0.6:40004 -> 192.0.2.1:5353']
    for (_what, body), data in zip(found, (dumped[0], dumped[4])):
        entry, delete = parsed(CT_MSG, data), parsed(CT_MSG, C.message(C.IPCTNL_MSG_CT_DELETE, 0, body))
        agree((_tuple(delete), delete.get_attr('CTA_ID'), delete.get_attr('CTA_ZONE')),
              (_tuple(entry), entry.get_attr('CTA_ID'), entry.get_attr('CTA_ZONE')))
        assert delete.get_attr('CTA_TUPLE_REPLY') is None and delete.get_attr('CTA_STATUS') is None
    found6 = C.ct_matches([payload(data) for data in dumped], v6, 17, 5353)
    assert [what for what, _body in found6] == ['conntrack entry fd00::5:40003 -> fd00::1:5353']
    assert C.ct_matches([payload(data) for data in dumped], v4, 17, 53) == []


def check_userdata():
    """A rule comment as libnftnl writes it (nft's own rules carry it), and back."""
    assert N.comment_userdata('ab') == b'\x00\x03ab\x00'
    assert N.parse_userdata(N.comment_userdata('linuxnet:masq 10.0.0.0/24 eth0')) == 'linuxnet:masq 10.0.0.0/24 eth0'


# --- published ports' rules: encoded as _nft_apply sends them, decoded by pyroute2 and by the engine ------
def _ip(text):
    return ipaddress.ip_address(text)


# (name, port_rules arguments): every shape of a port's own rules
PUBLISHED = [
    ('v4-any', ('tcp', _ip('0.0.0.0'), 8080, _ip('10.0.0.2'), 80)),
    ('v4-address-udp', ('udp', _ip('192.0.2.10'), 5353, _ip('10.0.0.2'), 53)),
    ('v4-any-localhost', ('tcp', _ip('0.0.0.0'), 8080, _ip('10.0.0.2'), 80, True)),
    ('v4-loopback-localhost', ('tcp', _ip('127.0.0.1'), 8081, _ip('10.0.0.3'), 81, True)),
    ('v6-any', ('tcp', _ip('::'), 8080, _ip('fd00::2'), 80)),
    ('v6-address-udp', ('udp', _ip('2001:db8::1'), 5353, _ip('fd00:1::2'), 53)),
]
# the rules the ports of a namespace share
SHARED = [
    ('hairpin-v4', PUB.hairpin_rule(_ip('10.0.0.2'), ipaddress.ip_network('10.0.0.0/24'))),
    ('hairpin-v6', PUB.hairpin_rule(_ip('fd00::2'), ipaddress.ip_network('fd00::/64'))),
    ('localhost', PUB.localhost_rule(_ip('10.0.0.2'))),
    ('forward-in', PUB.forward_rules(_ip('10.0.0.2'))[0]),
    ('forward-out-v6', PUB.forward_rules(_ip('fd00::2'))[1]),
]
# the accept in another table's forward-drop chain (Docker's), in a table of each family
FOREIGN = [('ip', N.NFPROTO_IPV4), ('ip6', N.NFPROTO_IPV6), ('inet', N.NFPROTO_INET)]
FOREIGN_CHAIN = ('filter', 'FORWARD')


def _shape(family, spec):
    """What sets a rule's encoding apart from another's: its table, place and expressions with the
    values left out (each shape is checked once)."""
    items = tuple(item[:3] + (len(item[3]),) if item[0] == 'cmp' else item[:3] for item in spec.canonical())
    return family, spec.chain, spec.head, items


def published_specs():
    """[(check name, table family or None for our table, RuleSpec)] of every shape of rule a
    published port writes."""
    specs = []
    for name, args in PUBLISHED:
        specs.extend(('%s-%s' % (name, word), None, spec) for word, spec in sorted(PUB.port_rules(*args).items()))
    specs.extend((name, None, spec) for name, spec in SHARED)
    specs.extend(('allow-%s-%s' % (name, version), family, spec) for name, family in FOREIGN
                 for version, target in (('v4', '10.0.0.2'), ('v6', 'fd00::2'))
                 if family in (N.NFPROTO_INET, N.NFPROTO_IPV4 if version == 'v4' else N.NFPROTO_IPV6)
                 for spec in PUB.forward_rules(_ip(target), 'pub-allow', family))
    shapes, distinct = set(), []
    for name, family, spec in specs:
        if _shape(family, spec) not in shapes:
            shapes.add(_shape(family, spec))
            distinct.append((name, family, spec))
    return distinct


def as_kernel_reports(items):
    """The canonical items of a rule as the kernel lists it: it adds NF_NAT_RANGE_MAP_IPS to the
    flags of a NAT given an address register (nft_nat_init), which the canonical form expects."""
    return tuple(item[:5] + (item[5] | N.NF_NAT_RANGE_MAP_IPS,) if item[0] == 'nat' else item for item in items)


def sent(change):
    """The NEWRULE message _nft_apply's batch carries for `change`: its bytes, and pyroute2's reading."""
    messages = _nft_apply.batch([change])
    assert len(messages) == 3  # BEGIN, the rule, END
    data = bytes(messages[1][0])
    return data, C.decode(N.nft_rule_raw_msg, data)


def read_back(data, rule):
    """decode_expressions of pyroute2's reading of a rule message; the engine's own decoder
    (decode_rule, what _nft_state reads dumps with) must read the same."""
    decoded = N.decode_expressions(rule.get_attr('NFTA_RULE_EXPRESSIONS'))
    agree(N.decode_rule(data), (rule.get_attr('NFTA_RULE_TABLE'), rule.get_attr('NFTA_RULE_CHAIN'),
                                rule.get_attr('NFTA_RULE_HANDLE'), N.parse_userdata(rule.get_attr('NFTA_RULE_USERDATA')),
                                decoded))
    return decoded


def check_published_round_trip(family, spec):
    """A rule of a published port, encoded by the engine exactly as _nft_apply sends it, reads back
    (pyroute2's parser, then decode_expressions; and the engine's decode_rule) as what the spec
    promises - but for the one thing the kernel adds itself, NF_NAT_RANGE_MAP_IPS on a DNAT."""
    if family is None:
        change = _nft_plan.AddRule(spec)
        family, table, chain = N.NFPROTO_INET, 'linuxnet_netns', spec.chain
    else:
        change = _nft_plan.InsertForeignRule((family,) + FOREIGN_CHAIN, spec)
        table, chain = FOREIGN_CHAIN
    data, rule = sent(change)
    assert (rule['nfgen_family'], rule.get_attr('NFTA_RULE_TABLE'), rule.get_attr('NFTA_RULE_CHAIN')) == (
        family, table, chain)
    # at the head of its chain (no NLM_F_APPEND) exactly when the spec says so
    append = bool(rule['header']['flags'] & C.NLM_F_APPEND)
    assert append == (isinstance(change, _nft_plan.AddRule) and not spec.head), (spec, rule['header']['flags'])
    assert N.parse_userdata(rule.get_attr('NFTA_RULE_USERDATA')) == spec.comment
    decoded = read_back(data, rule)
    canonical = spec.canonical()
    assert not any(item[0] == 'unknown' for item in decoded), decoded
    agree(as_kernel_reports(decoded), canonical)
    # what differs before the kernel's addition is that flag of the DNAT, and nothing else
    differ = [(ours, back) for ours, back in zip(canonical, decoded) if ours != back]
    if any(item[0] == 'nat' for item in canonical):
        assert len(differ) == 1 and differ[0][0][5] == differ[0][1][5] | N.NF_NAT_RANGE_MAP_IPS, differ
        assert not differ[0][1][5] & N.NF_NAT_RANGE_MAP_IPS
    else:
        assert differ == []


class Raw(Term):
    """Expressions as given (what another tool may have written under one of our comments)."""

    text = 'raw'

    def __init__(self, expressions):
        self.given = expressions

    def expressions(self):
        return self.given

    def raw(self):
        return N.expressions_raw(self.given)  # not Term.raw's cache: its key is the text


def decoded_as_sent(expressions):
    """What a rule of `expressions` reads back as, sent as _nft_apply sends a rule."""
    spec = RuleSpec('prerouting', 'linuxnet:pub tcp 0.0.0.0:8080 10.0.0.2:80', [Raw(expressions)])
    return read_back(*sent(_nft_plan.AddRule(spec)))


def _data(expression):
    """The attributes of an expression as _nft_codec.expression() takes them."""
    return list(expression['attrs'][1][1]['attrs'])


def check_published_lookalikes():
    """Rules that look like a published port but are not one read back as something never equal to
    its spec: a NAT to a port range ('unknown'), a NAT whose address no immediate loaded
    ('unknown'), a ct match with a direction (the direction stays in the item's source)."""
    pub = PUB.port_rules('tcp', _ip('0.0.0.0'), 8080, _ip('10.0.0.2'), 80)['pub']
    exprs = pub.expressions()
    nat = _data(exprs[-1])
    ranged = exprs[:-1] + [N.expression('nat', nat + [('NFTA_NAT_REG_PROTO_MAX', N.NFT_REG_1)])]
    decoded = decoded_as_sent(ranged)
    assert decoded[-1] == ('unknown', 'nat'), decoded
    assert as_kernel_reports(decoded) != pub.canonical()
    # the address register was not loaded by an immediate (the immediate of the port only)
    unloaded = exprs[:-3] + [exprs[-2], N.expression('nat', [
        ('NFTA_NAT_REG_ADDR_MIN', 3) if name == 'NFTA_NAT_REG_ADDR_MIN' else (name, value) for name, value in nat])]
    decoded = decoded_as_sent(unloaded)
    assert decoded[-1] == ('unknown', 'nat'), decoded
    hairpin = PUB.hairpin_rule(_ip('10.0.0.2'), ipaddress.ip_network('10.0.0.0/24'))
    exprs = hairpin.expressions()
    at = next(i for i, expr in enumerate(exprs) if expr['attrs'][0][1] == 'ct')
    directed = exprs[:at] + [N.expression('ct', _data(exprs[at]) + [('NFTA_CT_DIRECTION', 0)])] + exprs[at + 1:]
    decoded = decoded_as_sent(directed)
    assert ('cmp', ('ct', N.NFT_CT_STATUS, 0)) in [item[:2] for item in decoded], decoded
    assert decoded != hairpin.canonical()


class Check(object):
    def __init__(self, name, func, *args):
        self.name = name
        self.func = func
        self.args = args

    def __call__(self):
        self.func(*self.args)


def _checks():
    checks = [Check('constant-%s' % name, check_constant, module, name, ref) for module, name, ref in CONSTANTS]
    checks += [Check('every-constant-compared', check_every_constant_is_compared), Check('derived', check_derived)]
    checks += [Check('struct-%s' % name, check_struct, name, path, attr) for name, path, attr in STRUCTS]
    checks += [Check('encode-link-%d' % i, check_link, *case) for i, case in enumerate(LINKS)]
    checks += [Check('encode-veth-%d' % i, check_veth_create, *case) for i, case in enumerate(VETHS)]
    checks += [Check('encode-port-%s-%s' % (case[0], case[2]), check_port_flag, *case) for case in PORT_FLAGS]
    checks += [Check('encode-bridge', check_bridge_create), Check('encode-reads', check_read_requests),
               Check('encode-nft-batch', check_nft_batch_ends)]
    checks += [Check('encode-address-%s' % case[0], check_address, *case) for case in ADDRESSES]
    checks += [Check('encode-route-%s-%s' % case[:2], check_route, *case) for case in ROUTES]
    checks += [Check('decode-link-%d' % i, check_link_decoded, *case) for i, case in enumerate(DECODED_LINKS)]
    checks += [Check('decode-link-ipv6-%d' % i, check_link_ipv6_decoded, *case) for i, case in enumerate(DECODED_IPV6)]
    checks += [Check('decode-port-flags-%d' % i, check_port_flags_decoded, *case)
               for i, case in enumerate(DECODED_PORT_FLAGS)]
    checks += [Check('decode-address-%d' % i, check_address_decoded, *case) for i, case in enumerate(DECODED_ADDRESSES)]
    checks += [Check('decode-route-%d' % i, check_route_decoded, *case) for i, case in enumerate(DECODED_ROUTES)]
    checks += [Check('decode-nsid', check_nsid_decoded), Check('decode-error', check_error_decoded),
               Check('userdata', check_userdata), Check('encode-hairpin', check_hairpin_info),
               Check('encode-ct-dump', check_ct_dump_request), Check('decode-ct-matches', check_ct_matches)]
    checks += [Check('decode-port-%d' % i, check_port_decoded, *case) for i, case in enumerate(DECODED_PORTS)]
    checks += [Check('nft-publish-%s' % name, check_published_round_trip, family, spec)
               for name, family, spec in published_specs()]
    checks += [Check('nft-publish-lookalikes', check_published_lookalikes)]
    return checks


CHECKS = _checks()


def outcome():
    """'ok N' when every check passes, else one line per failed check."""
    failed = []
    for check in CHECKS:
        try:
            check()
        except Exception as exc:  # every failure, not just the first
            failed.append('%s: %s: %s' % (check.name, type(exc).__name__, exc))
    return '\n'.join(failed) if failed else 'ok %d' % len(CHECKS)


def main():
    text = outcome()
    print(text)
    return 0 if text == 'ok %d' % len(CHECKS) else 1


if __name__ == '__main__':
    sys.exit(main())
