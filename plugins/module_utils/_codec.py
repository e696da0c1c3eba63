# -*- coding: utf-8 -*-
# Copyright: linuxnet.netns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
# Do not use this from other collections or standalone plugins/modules!
"""Netlink on the wire, the lowest layer: every constant, struct and attribute id of the rtnetlink
messages the engine sends and reads, declared once, with their encoders and decoders. No I/O.

tests/unit/test_codec.py checks every number here against pyroute2's own declarations, every
encoder byte for byte against pyroute2's `encode()`, and every decoder against pyroute2's parser,
on the installed pyroute2. The encoders exist because pyroute2's generic encoder costs 20-150 us
per message (its attribute machinery), which at 1000 namespaces is seconds; these cost a few
microseconds. The decoders read only the attributes the engine uses, a fraction of the cost of
decoding every attribute of every message. nf_tables messages are encoded and decoded by
pyroute2's message classes (_nft_codec), imported through pyroute2_module() below.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import importlib
import importlib.util
import ipaddress
import socket
import struct
import sys
import types

# --- pyroute2, imported when first used ---------------------------------------------------------
# Not at module start: its package import costs 0.3-0.4 s (it loads IPRoute, IPDB, NDB...), paid
# by every module run, while the rtnetlink hot path uses the encoders and decoders below. The
# nf_tables messages, and the reference the tests compare this file with, come from pyroute2.
try:
    HAS_PYROUTE2 = importlib.util.find_spec('pyroute2') is not None
except (ImportError, ValueError, AttributeError):  # pragma: no cover
    HAS_PYROUTE2 = False
PYROUTE2_IMPORT_ERROR = None if HAS_PYROUTE2 else 'No module named pyroute2'

_MESSAGES = {
    'ifinfmsg': 'pyroute2.netlink.rtnl.ifinfmsg',
    'ifaddrmsg': 'pyroute2.netlink.rtnl.ifaddrmsg',
    'rtmsg': 'pyroute2.netlink.rtnl.rtmsg',
    'nsidmsg': 'pyroute2.netlink.rtnl.nsidmsg',
}


# pyroute2's socket module, which its nf_tables messages' module imports only to subclass the socket
# classes: it pulls in asyncio (0.9) and pyroute2.config, whose import runs `uname -p` and `file`
# (platform.uname(), platform.architecture()) - 20-50 ms of each run that reads nf_tables, for
# classes the engine never uses. pyroute2_module(..., without_sockets=True) imports with stand-ins.
SOCKET_MODULE = 'pyroute2.netlink.nlsocket'
SOCKET_CLASSES = ('NetlinkSocket', 'AsyncNetlinkSocket')


def pyroute2_module(name, without_sockets=False):
    """Import one pyroute2 submodule (pyroute2.netlink...) without pyroute2's package __init__,
    which imports IPRoute, NDB, IPDB and conntrack: half the cost of a module run's imports, for
    classes the engine never uses; `without_sockets`, with stand-ins for pyroute2's socket classes
    (SOCKET_MODULE). The stand-in package (and module) are taken out again afterwards, so that an
    `import pyroute2` later in the same process gets the real ones."""
    if 'pyroute2' in sys.modules:
        return importlib.import_module(name)
    spec = importlib.util.find_spec('pyroute2')
    if spec is None:
        raise ImportError('No module named pyroute2', name='pyroute2')
    package = importlib.util.module_from_spec(spec)  # not executed: only its __path__ is needed
    before = set(sys.modules)
    sys.modules['pyroute2'] = package
    if without_sockets:
        sockets = types.ModuleType(SOCKET_MODULE)
        for cls in SOCKET_CLASSES:
            setattr(sockets, cls, type(cls, (object,), {'__module__': SOCKET_MODULE}))
        sys.modules[SOCKET_MODULE] = sockets
    try:
        return importlib.import_module(name)
    finally:
        # what was imported under the stand-in goes too: a later `import pyroute2.x` in the same
        # process then builds the real package and its submodules, attributes and all (the
        # engine keeps its references to the ones it got)
        for loaded in set(sys.modules) - before:
            if loaded == 'pyroute2' or loaded.startswith('pyroute2.'):
                del sys.modules[loaded]


def __getattr__(name):
    """pyroute2's rtnetlink message classes, imported on first use (PEP 562)."""
    if name in _MESSAGES:
        cls = getattr(pyroute2_module(_MESSAGES[name]), name)
        globals()[name] = cls
        return cls
    raise AttributeError(name)


# --- netlink --------------------------------------------------------------------------------------
NETLINK_ROUTE = 0
NETLINK_NETFILTER = 12
SOL_NETLINK = 270
NETLINK_CAP_ACK = 10
NETLINK_EXT_ACK = 11

NLM_F_REQUEST = 0x1
NLM_F_MULTI = 0x2
NLM_F_DUMP_INTR = 0x10  # a dump whose objects changed while it ran: maybe inconsistent
NLM_F_ACK = 0x4
NLM_F_ROOT = 0x100
NLM_F_MATCH = 0x200
NLM_F_DUMP = NLM_F_ROOT | NLM_F_MATCH
NLM_F_REPLACE = 0x100
NLM_F_EXCL = 0x200
NLM_F_CREATE = 0x400
NLM_F_APPEND = 0x800
NLM_F_ACK_TLVS = 0x200  # of an error: extended-ack attributes follow

NLMSG_ERROR = 2
NLMSG_DONE = 3
NLMSGERR_ATTR_MSG = 1

HEADER = struct.Struct('=IHHII')  # struct nlmsghdr: length, type, flags, seq, pid
ERROR = struct.Struct('=i')  # struct nlmsgerr, after the header: -errno (0: an ack), then the request's header
_NLA = struct.Struct('=HH')
_U16 = struct.Struct('=H')
U32 = struct.Struct('=I')
S32 = struct.Struct('=i')


def nla(kind, payload):
    """One encoded netlink attribute."""
    return _NLA.pack(4 + len(payload), kind) + payload + b'\0' * (-len(payload) % 4)


def nla_str(kind, text):
    return nla(kind, text.encode('utf-8') + b'\0')


def nla_u32(kind, value):
    return nla(kind, U32.pack(value))


def attributes(data, offset, wanted=None):
    """{type: payload} of the netlink attributes in data[offset:] (nested flag masked off); with
    `wanted` (a set of types), only those: a link message carries some fifty attributes."""
    found = {}
    last = len(data) - 4  # where the last attribute's header can start
    unpack = _NLA.unpack_from
    # two loops, not one test per attribute: a state read decodes some fifty thousand messages
    if wanted is None:
        while offset <= last:
            length, kind = unpack(data, offset)
            if length < 4:
                break
            found[kind & 0x3fff] = data[offset + 4:offset + length]
            offset += (length + 3) & ~3
        return found
    while offset <= last:
        length, kind = unpack(data, offset)
        if length < 4:
            break
        kind &= 0x3fff
        if kind in wanted:
            found[kind] = data[offset + 4:offset + length]
        offset += (length + 3) & ~3
    return found


def message(msg_type, flags, body):
    """A request: the netlink header (sequence number 0, the transport numbers it) and `body`."""
    data = bytearray(HEADER.pack(16 + len(body), msg_type, flags | NLM_F_REQUEST, 0, 0))
    data += body
    return data


def add_flags(data, flags):
    """Set header flags of an encoded message in place."""
    _U16.pack_into(data, 6, _U16.unpack_from(data, 6)[0] | flags)


def ext_ack_text(data, offset, length, flags):
    """The kernel's extended ack message (NLMSGERR_ATTR_MSG) of an error, if it sent one."""
    if not flags & NLM_F_ACK_TLVS:
        return None
    # struct nlmsgerr: int error + the request's header (NETLINK_CAP_ACK: header only)
    raw = attributes(data[:offset + length], offset + 16 + 4 + 16, (NLMSGERR_ATTR_MSG,)).get(NLMSGERR_ATTR_MSG)
    return bytes(raw).rstrip(b'\0').decode('utf-8', 'replace') if raw is not None else None


def encode(cls, msg_type, flags, fields, attrs):
    """A request encoded by pyroute2's message class `cls` (the messages without an encoder here)."""
    msg = cls()
    for key, value in fields.items():
        msg[key] = value
    msg['attrs'] = attrs
    msg['header']['type'] = msg_type
    msg['header']['flags'] = flags | NLM_F_REQUEST
    msg.encode()
    return bytearray(msg.data)


def decode(cls, raw):
    """One whole message (header included), decoded by pyroute2's message class `cls`."""
    msg = cls(raw)
    msg.decode()
    return msg


# --- rtnetlink ------------------------------------------------------------------------------------
RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK, RTM_SETLINK = 16, 17, 18, 19
RTM_NEWADDR, RTM_DELADDR, RTM_GETADDR = 20, 21, 22
RTM_NEWROUTE, RTM_DELROUTE, RTM_GETROUTE = 24, 25, 26
RTM_GETNSID = 90

IFF_UP = 0x1
IFNAMSIZ = 16

IFLA_IFNAME, IFLA_MTU, IFLA_LINK, IFLA_MASTER, IFLA_LINKINFO, IFLA_IFALIAS = 3, 4, 5, 10, 18, 20
IFLA_NET_NS_FD, IFLA_EXT_MASK, IFLA_LINK_NETNSID = 28, 29, 37
IFLA_NUM_TX_QUEUES, IFLA_NUM_RX_QUEUES = 31, 32
IFLA_AF_SPEC, IFLA_INET6_CONF = 26, 2
DEVCONF_DISABLE_IPV6 = 26  # its place in IFLA_INET6_CONF, an array of s32 (linux/ipv6.h)
IFLA_INFO_KIND, IFLA_INFO_DATA, IFLA_INFO_SLAVE_KIND, IFLA_INFO_SLAVE_DATA = 1, 2, 4, 5
IFLA_BRPORT_MODE = 4  # a bridge port's hairpin mode
IFLA_BRPORT_ISOLATED = 33  # an isolated port forwards only to and from the ports that are not
VETH_INFO_PEER = 1
RTEXT_FILTER_SKIP_STATS = 1 << 3

IFA_ADDRESS, IFA_LOCAL = 1, 2
IFA_F_NODAD = 0x02

RTA_DST, RTA_OIF, RTA_GATEWAY, RTA_PRIORITY, RTA_TABLE = 1, 4, 5, 6, 15
RTNH_F_ONLINK = 0x4
RT_TABLE_COMPAT = 252  # what rtm_table says of a table above 255 (RTA_TABLE says which)
RT_TABLE_MAIN = 254
RT_TABLE_LOCAL = 255
RTN_UNICAST = 1
RTPROT_KERNEL = 2
RTPROT_BOOT = 3  # what `ip route add` gives a route without a protocol
RTPROT_STATIC = 4  # what this collection used before it marked its routes
# The mark of the routes this collection makes, as an interface's is its alias: the route's protocol
# (`ip route` shows "proto 76"). The kernel passes protocols above RTPROT_STATIC through untouched;
# 76 is in no registry (/usr/share/iproute2/rt_protos, FRR, bird, keepalived, systemd-networkd).
RTPROT_LINUXNET = 76
RT_SCOPE_UNIVERSE = 0
RT_SCOPE_LINK = 253

NETNSA_NSID, NETNSA_FD = 1, 3

IFINFO = struct.Struct('=BxHiII')  # struct ifinfomsg: family, type, index, flags, change
IFADDR = struct.Struct('=BBBBI')  # struct ifaddrmsg: family, prefixlen, flags, scope, index
RTMSG = struct.Struct('=BBBBBBBBI')  # struct rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type, flags
RTGEN = struct.Struct('=Bxxx')  # struct rtgenmsg, padded: family

# link requests: no statistics (the kernel skips gathering them, and the answer is smaller)
LINK_REQUEST_TAIL = nla(IFLA_EXT_MASK, U32.pack(RTEXT_FILTER_SKIP_STATS))


# --- rtnetlink encoders ---------------------------------------------------------------------------
def ifinfo(index=0, flags=0, change=0, family=0, ifi_type=0):
    return IFINFO.pack(family, ifi_type, index, flags, change)


def link_message(msg_type, flags, attrs, index=0, ifi_flags=0, change=0):
    """RTM_NEWLINK / RTM_DELLINK with attributes given as encoded nla() bytes."""
    return message(msg_type, flags, ifinfo(index, ifi_flags, change) + b''.join(attrs))


def link_attrs(name=None, mtu=None, master=None, alias=None):
    attrs = []
    if name is not None:
        attrs.append(nla_str(IFLA_IFNAME, name))
    if mtu is not None:
        attrs.append(nla_u32(IFLA_MTU, mtu))
    if master is not None:
        attrs.append(nla_u32(IFLA_MASTER, master))
    if alias is not None:
        attrs.append(nla_str(IFLA_IFALIAS, alias))
    return attrs


# A veth's queues, asked for at creation: one each way, the number the kernel puts in use on a veth
# anyway. Left to its default it allocates one per CPU, then lowers the number in use to one on the
# registered device, and waits a whole RCU grace period for that, holding the RTNL lock, for each
# end (2.5x the cost of a pair). The ends cannot be given more later (ethtool -L).
ONE_QUEUE = nla_u32(IFLA_NUM_TX_QUEUES, 1) + nla_u32(IFLA_NUM_RX_QUEUES, 1)


def veth_info(peer_name, peer_mtu=None, peer_netns_fd=None):
    """The attributes that make a veth whose peer is `peer_name` (in the namespace of peer_netns_fd):
    its queues and IFLA_LINKINFO."""
    peer = ifinfo() + nla_str(IFLA_IFNAME, peer_name) + ONE_QUEUE
    if peer_mtu is not None:
        peer += nla_u32(IFLA_MTU, peer_mtu)
    if peer_netns_fd is not None:
        peer += nla_u32(IFLA_NET_NS_FD, peer_netns_fd)
    data = nla(IFLA_INFO_DATA, nla(VETH_INFO_PEER, peer))
    return ONE_QUEUE + nla(IFLA_LINKINFO, nla_str(IFLA_INFO_KIND, 'veth') + data)


def bridge_port_info(attr, on):
    """IFLA_LINKINFO setting one flag of a bridge port (`ip link set X type bridge_slave FLAG on`)."""
    return nla(IFLA_LINKINFO, nla_str(IFLA_INFO_SLAVE_KIND, 'bridge') + nla(
        IFLA_INFO_SLAVE_DATA, nla(attr, b'\x01' if on else b'\x00')))


def hairpin_info(on):
    """IFLA_LINKINFO setting a bridge port's hairpin mode (`ip link set X type bridge_slave hairpin on`)."""
    return bridge_port_info(IFLA_BRPORT_MODE, on)


def isolated_info(on):
    """IFLA_LINKINFO setting a bridge port's isolation (`ip link set X type bridge_slave isolated on`)."""
    return bridge_port_info(IFLA_BRPORT_ISOLATED, on)


def kind_info(kind):
    return nla(IFLA_LINKINFO, nla_str(IFLA_INFO_KIND, kind))


def address_message(msg_type, flags, index, iface, ifa_flags=0):
    """RTM_NEWADDR / RTM_DELADDR for an ipaddress interface (IPv4 carries IFA_LOCAL as well)."""
    packed = iface.ip.packed
    family = socket.AF_INET if iface.version == 4 else socket.AF_INET6
    body = IFADDR.pack(family, iface.network.prefixlen, ifa_flags, 0, index)
    if family == socket.AF_INET:
        body += nla(IFA_LOCAL, packed)
    body += nla(IFA_ADDRESS, packed)
    return message(msg_type, flags, body)


def route_message(msg_type, flags, family, dst_len, table, proto=0, scope=0, rtype=0, rtm_flags=0,
                  dst=None, gateway=None, oif=None, metric=None):
    """RTM_NEWROUTE / RTM_DELROUTE; dst and gateway are ipaddress addresses."""
    body = RTMSG.pack(family, dst_len, 0, 0, table if table < 256 else RT_TABLE_COMPAT, proto, scope, rtype,
                      rtm_flags)
    body += nla_u32(RTA_TABLE, table)
    if dst is not None:
        body += nla(RTA_DST, dst.packed)
    if gateway is not None:
        body += nla(RTA_GATEWAY, gateway.packed)
    if oif is not None:
        body += nla_u32(RTA_OIF, oif)
    if metric:
        body += nla_u32(RTA_PRIORITY, metric)
    return message(msg_type, flags, body)


# request bodies (after the header) of the reads
def links_request():
    """RTM_GETLINK dump: every link, without statistics."""
    return bytes(IFINFO.size) + LINK_REQUEST_TAIL


def link_by_index(index):
    """RTM_GETLINK for one interface, by index."""
    return IFINFO.pack(0, 0, index, 0, 0) + LINK_REQUEST_TAIL


def link_by_name(name):
    """RTM_GETLINK for one interface, by name (looked up in the kernel: no dump)."""
    return bytes(IFINFO.size) + nla(IFLA_IFNAME, name.encode() + b'\0') + LINK_REQUEST_TAIL


def addresses_request(family=0):
    """RTM_GETADDR dump of one family (0: all)."""
    return IFADDR.pack(family, 0, 0, 0, 0)


def routes_request(family=0):
    """RTM_GETROUTE dump of one family (0: all)."""
    return RTMSG.pack(family, 0, 0, 0, 0, 0, 0, 0, 0)


def nsid_request(fd):
    """RTM_GETNSID: the id under which the asking namespace knows the namespace of descriptor `fd`."""
    return RTGEN.pack(0) + nla(NETNSA_FD, U32.pack(fd))


# --- rtnetlink decoders (of a payload: the bytes after the netlink header) -------------------------
_LINK_ATTRS = frozenset((IFLA_IFNAME, IFLA_MTU, IFLA_LINK, IFLA_MASTER, IFLA_LINKINFO, IFLA_IFALIAS, IFLA_LINK_NETNSID,
                         IFLA_AF_SPEC))
_PORT_ATTRS = frozenset((IFLA_BRPORT_MODE, IFLA_BRPORT_ISOLATED))
_ADDR_ATTRS = frozenset((IFA_ADDRESS, IFA_LOCAL))
_ROUTE_ATTRS = frozenset((RTA_DST, RTA_OIF, RTA_GATEWAY, RTA_PRIORITY, RTA_TABLE))


def _text(raw):
    return bytes(raw).split(b'\0', 1)[0].decode('utf-8', 'replace') if raw is not None else None


def _u32(raw):
    return U32.unpack_from(raw)[0] if raw is not None and len(raw) >= 4 else None


def ifinfo_index(payload):
    """The interface index of a link message."""
    return IFINFO.unpack_from(payload)[2]


_UNREAD = object()  # a lazily decoded field not decoded yet


class Link(object):
    """A link as the kernel reports it (RTM_NEWLINK)."""

    __slots__ = ('name', 'index', 'kind', 'up', 'mtu', 'master', 'peer_index', 'peer_nsid', 'alias', 'addresses',
                 'hairpin', 'isolated', '_af_spec', '_ipv6')

    def __init__(self, payload):
        _family, _type, self.index, flags, _change = IFINFO.unpack_from(payload)
        attrs = attributes(payload, IFINFO.size, _LINK_ATTRS)
        self.name = _text(attrs.get(IFLA_IFNAME))
        self.up = bool(flags & IFF_UP)
        self.mtu = _u32(attrs.get(IFLA_MTU))
        self.master = _u32(attrs.get(IFLA_MASTER))
        self.alias = _text(attrs.get(IFLA_IFALIAS)) or None
        info = attributes(attrs[IFLA_LINKINFO], 0) if IFLA_LINKINFO in attrs else {}
        self.kind = _text(info.get(IFLA_INFO_KIND))
        # a bridge port's hairpin mode and isolation (None: not a bridge port; isolation None as
        # well on a kernel older than 4.18, which has none)
        self.hairpin = self.isolated = None
        if IFLA_INFO_SLAVE_DATA in info and _text(info.get(IFLA_INFO_SLAVE_KIND)) == 'bridge':
            port = attributes(info[IFLA_INFO_SLAVE_DATA], 0, _PORT_ATTRS)
            mode = port.get(IFLA_BRPORT_MODE)
            self.hairpin = bool(bytearray(mode)[0]) if mode else False
            isolated = port.get(IFLA_BRPORT_ISOLATED)
            self.isolated = bool(bytearray(isolated)[0]) if isolated is not None and len(isolated) else None
        self.peer_index = self.peer_nsid = None
        if self.kind == 'veth':
            # IFLA_LINK is a peer only for a veth; other devices report themselves or a lower device
            self.peer_index = _u32(attrs.get(IFLA_LINK))
            nsid = attrs.get(IFLA_LINK_NETNSID)
            if nsid is not None:
                value = S32.unpack_from(nsid)[0]
                self.peer_nsid = value if value >= 0 else None
        self.addresses = []  # ipaddress.ip_interface, link-local IPv6 left out
        # decoded when asked for (ipv6): only the declared links' is
        self._af_spec, self._ipv6 = attrs.get(IFLA_AF_SPEC), _UNREAD

    @property
    def ipv6(self):
        """Whether IPv6 is on for this link (its disable_ipv6 is 0); None when the kernel reports
        no IPv6 for it (built without, ipv6.disable=1 at boot, an MTU below 1280)."""
        if self._ipv6 is _UNREAD:
            inet6 = attributes(self._af_spec, 0, (socket.AF_INET6,)).get(socket.AF_INET6) \
                if self._af_spec is not None else None
            conf = attributes(inet6, 0, (IFLA_INET6_CONF,)).get(IFLA_INET6_CONF) if inet6 is not None else None
            offset = DEVCONF_DISABLE_IPV6 * 4
            self._ipv6 = None if conf is None or len(conf) < offset + 4 else not S32.unpack_from(conf, offset)[0]
            self._af_spec = None
        return self._ipv6

    @classmethod
    def expected(cls, index, name, kind, after):
        """A link this run's plan makes (the kernel has not seen it yet): `index` is a stand-in
        (negative) until the apply asks the kernel for the real one."""
        link = cls.__new__(cls)
        link.index, link.name, link.kind = index, name, kind
        link.up, link.mtu = after.get('up', False), after.get('mtu')
        link.master = None
        link.alias = after.get('alias')
        link.peer_index = link.peer_nsid = None
        link.addresses = []
        link.hairpin = link.isolated = None
        link._af_spec, link._ipv6 = None, after.get('ipv6')
        return link

    @classmethod
    def of(cls, index, name, kind=None, up=False, mtu=1500, master=None, alias=None, peer_index=None,
           peer_nsid=None, hairpin=None, isolated=None, ipv6=True):
        """A link from its fields, as a decoded payload would give them (a saved or made-up state)."""
        link = cls.__new__(cls)
        link._af_spec, link._ipv6 = None, ipv6
        link.index, link.name, link.kind, link.up, link.mtu = index, name, kind, up, mtu
        link.master, link.alias = master, alias
        link.peer_index, link.peer_nsid = peer_index, peer_nsid
        link.hairpin, link.isolated = hairpin, isolated
        link.addresses = []
        return link


class Route(object):
    """A route as the kernel reports it (RTM_NEWROUTE); the address objects are built only when asked for."""

    __slots__ = ('family', 'dst', 'dst_len', 'table', 'metric', 'gateway_raw', 'oif', 'proto', 'scope', 'rtype')

    def __init__(self, payload):
        (self.family, self.dst_len, _src_len, _tos, table, self.proto, self.scope, self.rtype,
         _flags) = RTMSG.unpack_from(payload)
        attrs = attributes(payload, RTMSG.size, _ROUTE_ATTRS)
        dst = attrs.get(RTA_DST)
        self.dst = bytes(dst) if dst is not None else bytes(4 if self.family == socket.AF_INET else 16)
        self.table = _u32(attrs.get(RTA_TABLE)) or table
        self.metric = _u32(attrs.get(RTA_PRIORITY)) or 0
        gateway = attrs.get(RTA_GATEWAY)
        self.gateway_raw = bytes(gateway) if gateway is not None else None
        self.oif = _u32(attrs.get(RTA_OIF))

    @classmethod
    def of(cls, dest, gateway=None, oif=None, table=RT_TABLE_MAIN, metric=0, proto=RTPROT_BOOT,
           scope=RT_SCOPE_UNIVERSE, rtype=RTN_UNICAST):
        """A route from its fields (`dest` an ipaddress network, `gateway` an ipaddress address), as
        a decoded payload would give them (a saved or made-up state)."""
        route = cls.__new__(cls)
        route.family = socket.AF_INET if dest.version == 4 else socket.AF_INET6
        route.dst, route.dst_len = dest.network_address.packed, dest.prefixlen
        route.table, route.metric, route.oif = table, metric, oif
        route.gateway_raw = gateway.packed if gateway is not None else None
        route.proto, route.scope, route.rtype = proto, scope, rtype
        return route

    @property
    def key(self):
        return (self.dst, self.dst_len, self.table, self.metric)

    @property
    def dest(self):
        return ipaddress.ip_network((ipaddress.ip_address(self.dst), self.dst_len), strict=False)

    @property
    def gateway(self):
        return ipaddress.ip_address(self.gateway_raw) if self.gateway_raw is not None else None


def route_key(dest, table, metric):
    """The key Route.key has for a route to `dest` (an ip_network) in `table` with `metric`."""
    return (dest.network_address.packed, dest.prefixlen, table, metric)


# ipaddress objects are immutable, and a thousand namespaces hold the same 127.0.0.1/8 and ::1:
# building each once saves a third of the reading time
_IFACES = {}


class Address(object):
    """An interface address as the kernel reports it; the ipaddress object is built on demand."""

    __slots__ = ('index', 'family', 'packed', 'prefixlen', '_iface')

    def __init__(self, index, family, packed, prefixlen):
        self.index, self.family, self.packed, self.prefixlen = index, family, packed, prefixlen
        self._iface = None

    @property
    def iface(self):
        if self._iface is None:
            key = (self.packed, self.prefixlen)
            iface = _IFACES.get(key)
            if iface is None:
                # from the address as a number: given an address object, ipaddress would print it
                # and parse the text back (9 us for an IPv4 address, 45 us for IPv6, against 3 and 5)
                cls = ipaddress.IPv4Interface if len(self.packed) == 4 else ipaddress.IPv6Interface
                iface = _IFACES[key] = cls((int.from_bytes(self.packed, 'big'), self.prefixlen))
            self._iface = iface
        return self._iface

    def contains(self, address):
        """Whether `address` (an ipaddress address of the same family) is in this address's subnet."""
        bits = len(self.packed) * 8
        shift = bits - self.prefixlen
        return (int(address) >> shift) == (int.from_bytes(self.packed, 'big') >> shift) if shift < bits else True


def decode_addresses(payloads, family=0, link_local=True):
    """[Address] of RTM_NEWADDR payloads: the address is IFA_LOCAL, else IFA_ADDRESS (a message
    with neither is skipped). With `family`, of that family only; without `link_local`, IPv6
    link-local addresses left out."""
    found = []
    unpack = IFADDR.unpack_from
    for payload in payloads:
        afamily, prefixlen, _flags, _scope, index = unpack(payload)
        attrs = attributes(payload, IFADDR.size, _ADDR_ATTRS)
        addr = attrs.get(IFA_LOCAL, attrs.get(IFA_ADDRESS))
        if addr is None or (family and afamily != family):
            continue
        addr = bytes(addr)
        if not link_local and afamily == socket.AF_INET6 and addr[0] == 0xfe and addr[1] & 0xc0 == 0x80:
            continue
        found.append(Address(index, afamily, addr, prefixlen))
    return found


def nsid_of(payload):
    """The namespace id of an RTM_NEWNSID payload; None if none is assigned (or no payload)."""
    raw = attributes(payload, RTGEN.size).get(NETNSA_NSID) if payload is not None else None
    nsid = S32.unpack_from(raw)[0] if raw is not None else None
    return None if nsid is None or nsid < 0 else nsid


# --- conntrack (ctnetlink, on a NETLINK_NETFILTER socket) ------------------------------------------
IPCTNL_MSG_CT_GET = (1 << 8) | 1  # NFNL_SUBSYS_CTNETLINK << 8 | IPCTNL_MSG_CT_GET
IPCTNL_MSG_CT_DELETE = (1 << 8) | 2
CTA_TUPLE_ORIG, CTA_ID, CTA_ZONE, CTA_FILTER = 1, 12, 18, 25
CTA_TUPLE_IP, CTA_TUPLE_PROTO = 1, 2
CTA_PROTO_NUM, CTA_PROTO_SRC_PORT, CTA_PROTO_DST_PORT = 1, 2, 3
CTA_FILTER_ORIG_FLAGS = 1
CTA_FILTER_FLAG_PROTO_NUM, CTA_FILTER_FLAG_PROTO_DST_PORT = 1 << 3, 1 << 5
NLA_F_NESTED = 0x8000


def ct_dump_request(family, proto, dport):
    """The body of a conntrack dump of one family's entries whose original tuple has IP protocol
    `proto` and destination port `dport`. The kernel filters (CTA_FILTER, Linux 5.8 and later;
    older ones ignore it and send all, which ct_matches() then sorts out)."""
    l4 = nla(CTA_TUPLE_PROTO | NLA_F_NESTED,
             nla(CTA_PROTO_NUM, struct.pack('B', proto)) + nla(CTA_PROTO_DST_PORT, struct.pack('!H', dport)))
    flags = CTA_FILTER_FLAG_PROTO_NUM | CTA_FILTER_FLAG_PROTO_DST_PORT
    return (struct.pack('=BBH', family, 0, 0) + nla(CTA_TUPLE_ORIG | NLA_F_NESTED, l4)
            + nla(CTA_FILTER | NLA_F_NESTED, nla_u32(CTA_FILTER_ORIG_FLAGS, flags)))


def ct_matches(payloads, family, proto, dport):
    """[(description, delete request body)] of the dumped entries (payloads after the netlink
    header) of `family` whose original tuple has `proto` and `dport`: each delete names the entry by
    its own original tuple, id and zone."""
    want_proto, want_port = struct.pack('B', proto), struct.pack('!H', dport)
    dst = 2 if family == socket.AF_INET else 4  # CTA_IP_V4_DST / CTA_IP_V6_DST; the source is one less
    found = []
    for body in payloads:
        if len(body) < 4 or bytearray(body)[0] != family:
            continue
        cta = attributes(body, 4)
        orig = attributes(cta.get(CTA_TUPLE_ORIG, b''), 0)
        ip, ports = attributes(orig.get(CTA_TUPLE_IP, b''), 0), attributes(orig.get(CTA_TUPLE_PROTO, b''), 0)
        if ports.get(CTA_PROTO_NUM) != want_proto or ports.get(CTA_PROTO_DST_PORT) != want_port or \
                dst not in ip or dst - 1 not in ip:
            continue
        what = 'conntrack entry %s:%d -> %s:%d' % (
            socket.inet_ntop(family, bytes(ip[dst - 1])), struct.unpack('!H', ports.get(CTA_PROTO_SRC_PORT, b'\0\0'))[0],
            socket.inet_ntop(family, bytes(ip[dst])), dport)
        same = b''.join(nla(kind | (NLA_F_NESTED if kind == CTA_TUPLE_ORIG else 0), bytes(cta[kind]))
                        for kind in (CTA_TUPLE_ORIG, CTA_ID, CTA_ZONE) if kind in cta)
        found.append((what, struct.pack('=BBH', family, 0, 0) + same))
    return found
