# -*- coding: utf-8 -*-
# Copyright: linuxnet.netns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Current state: one dump per namespace and kind of object, never one lookup per object."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import socket
import struct

from ansible_collections.linuxnet.netns.plugins.module_utils import _nl

RT_TABLE_MAIN = 254
RT_TABLE_LOCAL = 255
RTN_UNICAST = 1
RTPROT_KERNEL = 2
RTPROT_STATIC = 4  # what this collection used before it marked its routes
# The mark of the routes this collection makes, as an interface's is its alias: the route's protocol
# (`ip route` shows "proto 76"). The kernel passes protocols above RTPROT_STATIC through untouched;
# 76 is in no registry (/usr/share/iproute2/rt_protos, FRR, bird, keepalived, systemd-networkd).
RTPROT_LINUXNET = 76
RT_SCOPE_UNIVERSE = 0
RT_SCOPE_LINK = 253
NETNSA_NSID_NOT_ASSIGNED = -1


IFLA_IFNAME, IFLA_MTU, IFLA_LINK, IFLA_MASTER, IFLA_LINKINFO, IFLA_IFALIAS = 3, 4, 5, 10, 18, 20
IFLA_EXT_MASK, IFLA_LINK_NETNSID = 29, 37
IFLA_INFO_KIND = 1
RTEXT_FILTER_SKIP_STATS = 1 << 3
IFA_ADDRESS, IFA_LOCAL = 1, 2
RTA_DST, RTA_OIF, RTA_GATEWAY, RTA_PRIORITY, RTA_TABLE = 1, 4, 5, 6, 15
_LINK_ATTRS = frozenset((IFLA_IFNAME, IFLA_MTU, IFLA_LINK, IFLA_MASTER, IFLA_LINKINFO, IFLA_IFALIAS, IFLA_LINK_NETNSID))
_ADDR_ATTRS = frozenset((IFA_ADDRESS, IFA_LOCAL))
_ROUTE_ATTRS = frozenset((RTA_DST, RTA_OIF, RTA_GATEWAY, RTA_PRIORITY, RTA_TABLE))

_IFINFO = struct.Struct('=BxHiII')
_IFADDR = struct.Struct('=BBBBI')
_RTMSG = struct.Struct('=BBBBBBBBI')
_U32 = struct.Struct('=I')
_RTGEN = struct.Struct('=Bxxx')
NETNSA_NSID, NETNSA_FD = 1, 3
_S32 = struct.Struct('=i')

# link requests: no statistics (the kernel skips gathering them, and the answer is smaller)
LINK_REQUEST_TAIL = _nl.nla(IFLA_EXT_MASK, _U32.pack(RTEXT_FILTER_SKIP_STATS))


def _text(raw):
    return bytes(raw).split(b'\0', 1)[0].decode('utf-8', 'replace') if raw is not None else None


def _u32(raw):
    return _U32.unpack_from(raw)[0] if raw is not None and len(raw) >= 4 else None


class Link(object):
    __slots__ = ('name', 'index', 'kind', 'up', 'mtu', 'master', 'peer_index', 'peer_nsid', 'alias', 'addresses')

    def __init__(self, payload):
        _family, _type, self.index, flags, _change = _IFINFO.unpack_from(payload)
        attrs = _nl.attributes(payload, _IFINFO.size, _LINK_ATTRS)
        self.name = _text(attrs.get(IFLA_IFNAME))
        self.up = bool(flags & _nl.IFF_UP)
        self.mtu = _u32(attrs.get(IFLA_MTU))
        self.master = _u32(attrs.get(IFLA_MASTER))
        self.alias = _text(attrs.get(IFLA_IFALIAS)) or None
        info = attrs.get(IFLA_LINKINFO)
        self.kind = _text(_nl.attributes(info, 0).get(IFLA_INFO_KIND)) if info is not None else None
        self.peer_index = self.peer_nsid = None
        if self.kind == 'veth':
            # IFLA_LINK is a peer only for a veth; other devices report themselves or a lower device
            self.peer_index = _u32(attrs.get(IFLA_LINK))
            nsid = attrs.get(IFLA_LINK_NETNSID)
            if nsid is not None:
                value = _S32.unpack_from(nsid)[0]
                self.peer_nsid = value if value >= 0 else None
        self.addresses = []  # ipaddress.ip_interface, link-local IPv6 left out

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
        return link


class Route(object):
    """A route as the kernel reports it; the address objects are built only when asked for."""

    __slots__ = ('family', 'dst', 'dst_len', 'table', 'metric', 'gateway_raw', 'oif', 'proto', 'scope', 'rtype')

    def __init__(self, payload):
        (self.family, self.dst_len, _src_len, _tos, table, self.proto, self.scope, self.rtype,
         _flags) = _RTMSG.unpack_from(payload)
        attrs = _nl.attributes(payload, _RTMSG.size, _ROUTE_ATTRS)
        dst = attrs.get(RTA_DST)
        self.dst = bytes(dst) if dst is not None else bytes(4 if self.family == socket.AF_INET else 16)
        self.table = _u32(attrs.get(RTA_TABLE)) or table
        self.metric = _u32(attrs.get(RTA_PRIORITY)) or 0
        gateway = attrs.get(RTA_GATEWAY)
        self.gateway_raw = bytes(gateway) if gateway is not None else None
        self.oif = _u32(attrs.get(RTA_OIF))

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


class NsView(object):
    """What one namespace holds, read lazily: each kind of object with one dump, on first use.

    A namespace that does not exist (yet) reads as empty.
    """

    def __init__(self, session, name, exists=True):
        self.session = session
        self.name = name
        self.exists = exists
        self._links = self._by_index = self._addresses = None
        self._lo = None  # [lo] once asked for on its own
        self._by_family = {}
        # what the plan will add and remove, so that later planners of the same run see it
        self._expected = []
        self._gone = set()
        self._gone_links = set()
        self._gone_names = {}
        self._next_index = -1
        self.removed = {}  # name -> what removes it, for the links the plan deletes
        self.claimed = {}  # name -> the parameter that declares it: a link is declared once a run

    def expect_link(self, name, kind, after):
        """Note a link the plan creates; returns its stand-in (negative index)."""
        link = Link.expected(self._next_index, name, kind, after)
        self._next_index -= 1
        self.links[name] = link
        self.by_index[link.index] = link
        return link

    def expect_gone(self, link, why):
        """Note a link the plan deletes: later planners no longer find it, its addresses or the
        routes through it (the kernel drops those with it)."""
        if self.links.get(link.name) is link:
            del self.links[link.name]
        self.by_index.pop(link.index, None)
        self._gone_links.add(link.index)
        self._gone_names[link.index] = link.name  # a diff's before-state still names it
        self.removed[link.name] = why

    def expect_addresses(self, index, added, removed):
        """Note addresses (ipaddress interfaces) the plan adds to / removes from link `index`."""
        for iface in added:
            self._expected.append(Address(index, socket.AF_INET if iface.version == 4 else socket.AF_INET6,
                                          iface.ip.packed, iface.network.prefixlen))
        for iface in removed:
            self._gone.add((index, iface.ip.packed, iface.network.prefixlen))

    def _with_expected(self, found, family):
        if not self._expected and not self._gone and not self._gone_links:
            return found
        return [a for a in found if (a.index, a.packed, a.prefixlen) not in self._gone
                and a.index not in self._gone_links] + [
            a for a in self._expected if (not family or a.family == family) and a.index not in self._gone_links]

    def _read(self, kind, family):
        """One dump of `kind` (addresses, routes) of one family (0: all), remembered; a dump of all
        families answers for each family too."""
        key = (kind, family)
        if key not in self._by_family:
            if (kind, 0) in self._by_family:
                self._by_family[key] = [x for x in self._by_family[(kind, 0)] if x.family == family]
            elif not self.exists:
                self._by_family[key] = []
            else:
                reader = read_addresses if kind == 'addresses' else read_routes
                self._by_family[key] = reader(self.session, self.name, family)
        return self._by_family[key]

    @property
    def addresses(self):
        """[Address], IPv6 link-local addresses left out; with what the plan adds and removes."""
        return self._with_expected(self._read('addresses', 0), 0)

    def addresses_of(self, family):
        return self._with_expected(self._read('addresses', family), family)

    def routes_of(self, family):
        found = self._read('routes', family)
        if self._gone_links:
            found = [route for route in found if route.oif not in self._gone_links]
        return found

    @property
    def links(self):
        if self._links is None:
            self._load_links()
        return self._links

    def load(self):
        """Read the links (and addresses) now rather than on first use."""
        self._load_links()
        return self

    def _load_links(self):
        if self._links is None:
            links = read_links(self.session, self.name, addresses=False) if self.exists else []
            self._links = dict((link.name, link) for link in links)
            self._by_index = dict((link.index, link) for link in links)
            for addr in self._read('addresses', 0):
                link = self._by_index.get(addr.index)
                if link is not None:
                    link.addresses.append(addr.iface)
        return self._links

    @property
    def by_index(self):
        if self._by_index is None:
            self._load_links()
        return self._by_index

    @property
    def routes(self):
        return self.routes_of(0)

    def link_name(self, index):
        link = self.by_index.get(index)
        return link.name if link else self._gone_names.get(index)

    def lo(self):
        """The loopback link (ifindex 1 in every namespace), without dumping the others; asked once."""
        if self._links is not None or not self.exists:
            return self.by_index.get(1) if self.exists else None
        if self._lo is None:
            reply = self.session.rtnl(self.name).dump_raw(_nl.RTM_GETLINK, _link_by_index(1), flags=0)
            self._lo = [Link(reply[0]) if reply else None]
        return self._lo[0]


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
                iface = _IFACES[key] = ipaddress.ip_interface((ipaddress.ip_address(self.packed), self.prefixlen))
            self._iface = iface
        return self._iface

    def contains(self, address):
        """Whether `address` (an ipaddress address of the same family) is in this address's subnet."""
        bits = len(self.packed) * 8
        shift = bits - self.prefixlen
        return (int(address) >> shift) == (int.from_bytes(self.packed, 'big') >> shift) if shift < bits else True


def read_addresses(session, ns, family=0):
    found = []
    body = _IFADDR.pack(family, 0, 0, 0, 0)
    for payload in session.rtnl(ns).dump_raw(_nl.RTM_GETADDR, body):
        afamily, prefixlen, _flags, _scope, index = _IFADDR.unpack_from(payload)
        attrs = _nl.attributes(payload, _IFADDR.size, _ADDR_ATTRS)
        addr = attrs.get(IFA_LOCAL, attrs.get(IFA_ADDRESS))
        if addr is None or (family and afamily != family):
            continue
        addr = bytes(addr)
        if afamily == socket.AF_INET6 and addr[0] == 0xfe and addr[1] & 0xc0 == 0x80:
            continue  # link-local: every IPv6 interface has one, nobody declares it
        found.append(Address(index, afamily, addr, prefixlen))
    return found


def read_links(session, ns, addresses=True):
    links = [Link(payload) for payload in session.rtnl(ns).dump_raw(
        _nl.RTM_GETLINK, bytes(_IFINFO.size) + LINK_REQUEST_TAIL)]
    if addresses:
        by_index = dict((link.index, link) for link in links)
        for addr in read_addresses(session, ns):
            if addr.index in by_index:
                by_index[addr.index].addresses.append(addr.iface)
    return links


def read_routes(session, ns, family=0):
    routes = []
    body = _RTMSG.pack(family, 0, 0, 0, 0, 0, 0, 0, 0)
    for payload in session.rtnl(ns).dump_raw(_nl.RTM_GETROUTE, body):
        route = Route(payload)
        if route.family not in (socket.AF_INET, socket.AF_INET6) or route.rtype != RTN_UNICAST:
            continue
        if family and route.family != family:
            continue
        if route.table == RT_TABLE_LOCAL:
            continue
        routes.append(route)
    return routes


def _link_by_index(index):
    """The body of a RTM_GETLINK for one interface, by index."""
    return _IFINFO.pack(0, 0, index, 0, 0) + LINK_REQUEST_TAIL


def existing(session, ns, indexes):
    """The interfaces of `indexes` that still exist in `ns`: one pipelined get each, no dump."""
    indexes = sorted(indexes)
    answers = session.rtnl(ns).get_many([(_nl.RTM_GETLINK, _link_by_index(index)) for index in indexes])
    return set(index for index, answer in zip(indexes, answers) if answer is not None)


def link_index(session, ns, name):
    """The index of one interface, looked up by name in the kernel (no dump)."""
    reply = session.rtnl(ns).dump_raw(_nl.RTM_GETLINK, bytes(_IFINFO.size) + _nl.nla(
        IFLA_IFNAME, name.encode() + b'\0') + LINK_REQUEST_TAIL, flags=0)
    return _IFINFO.unpack_from(reply[0])[2]


class Reader(object):
    """Reads each namespace at most once per run and remembers what it saw."""

    def __init__(self, session):
        self.session = session
        self.views = {}
        self._mounted = None
        self._nsids = {}
        self._nft = {}
        # namespaces the plan creates / removes: later planners of the same run see them so
        self.creating = set()
        self.removing = {}  # name -> why: 'declared' (state=absent) or 'purge'

    def mounted(self):
        if self._mounted is None:
            self._mounted = set(self.session.mounted())
        return self._mounted

    def exists(self, ns):
        """Whether the namespace exists now."""
        return ns is None or ns in self.mounted()

    def will_exist(self, ns):
        """Whether the namespace exists once the plan is applied."""
        return ns in self.creating or (self.exists(ns) and ns not in self.removing)

    def nft(self, ns):
        """Our nf_tables state in `ns` (read once; a namespace the plan creates has none)."""
        if ns not in self._nft:
            from ansible_collections.linuxnet.netns.plugins.module_utils import _nft
            self._nft[ns] = _nft.read(self.session.nfnl(ns)) if self.exists(ns) else _nft.NftState()
        return self._nft[ns]

    def scope(self, namespaces):
        """The host and `namespaces`, host first, as far as they exist and the run keeps them (a
        namespace the run removes takes its links, routes and rules with it): where a purge looks."""
        return [ns for ns in sorted(set([None] + list(namespaces)), key=lambda n: (n is not None, n or ''))
                if self.exists(ns) and ns not in self.removing]

    def removed_ids(self, ns):
        """The ids under which `ns` knows the namespaces the run removes: a veth of `ns` whose
        peer is under one of them goes with that namespace, in the kernel's batch."""
        removing = sorted(self.removing)
        self.prefetch_nsids(ns, removing)
        return set(self.nsid(ns, other) for other in removing) - {None}

    def view(self, ns):
        """The namespace's state, read on first use; an absent namespace reads as empty."""
        view = self.views.get(ns)
        if view is None:
            view = self.views[ns] = NsView(self.session, ns, self.exists(ns))
        return view

    def prefetch_nsids(self, from_ns, targets):
        """Ask for the ids of many namespaces at once (one sendmsg per batch, not a round trip
        each); nsid() then answers from what came back."""
        targets = [t for t in sorted(set(targets), key=lambda n: (n is not None, n or ''))
                   if (from_ns, t) not in self._nsids and t is not None and self.exists(t)]
        if not targets:
            return
        fds = [self.session.open_fd(t) for t in targets]
        try:
            replies = self.session.rtnl(from_ns).get_many([
                (_nl.RTM_GETNSID, _RTGEN.pack(0) + _nl.nla(NETNSA_FD, _U32.pack(fd))) for fd in fds])
        finally:
            for fd in fds:
                _nl.os.close(fd)
        for target, reply in zip(targets, replies):
            self._nsids[(from_ns, target)] = _nsid_of(reply)

    def nsid(self, from_ns, target_ns):
        """The id under which `from_ns` knows `target_ns` (what IFLA_LINK_NETNSID holds), or None."""
        key = (from_ns, target_ns)
        if key not in self._nsids:
            fd = self.session.home if target_ns is None else self.session.open_fd(target_ns)
            try:
                reply = self.session.rtnl(from_ns).dump_raw(
                    _nl.RTM_GETNSID, _RTGEN.pack(0) + _nl.nla(NETNSA_FD, _U32.pack(fd)), flags=0)
            finally:
                if target_ns is not None:
                    _nl.os.close(fd)
            self._nsids[key] = _nsid_of(reply[0] if reply else None)
        return self._nsids[key]


def _nsid_of(payload):
    raw = _nl.attributes(payload, _RTGEN.size).get(NETNSA_NSID) if payload is not None else None
    nsid = _S32.unpack_from(raw)[0] if raw is not None else None
    return None if nsid is None or nsid < 0 else nsid
