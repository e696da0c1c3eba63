# -*- coding: utf-8 -*-
# Copyright: linuxnet.netns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Current state: one dump per namespace and kind of object, never one lookup per object."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import socket

from ansible_collections.linuxnet.netns.plugins.module_utils import _nl

RT_TABLE_MAIN = 254
RT_TABLE_LOCAL = 255
RTN_UNICAST = 1
RTPROT_KERNEL = 2
RTPROT_STATIC = 4  # what `ip route add` uses, so `ip route` shows our routes as "proto static"
RT_SCOPE_UNIVERSE = 0
RT_SCOPE_LINK = 253
NETNSA_NSID_NOT_ASSIGNED = -1


class Link(object):
    __slots__ = ('name', 'index', 'kind', 'up', 'mtu', 'master', 'peer_index', 'peer_nsid', 'alias', 'addresses')

    def __init__(self, msg):
        self.name = msg.get_attr('IFLA_IFNAME')
        self.index = msg['index']
        self.up = bool(msg['flags'] & _nl.IFF_UP)
        self.mtu = msg.get_attr('IFLA_MTU')
        self.master = msg.get_attr('IFLA_MASTER')
        self.alias = msg.get_attr('IFLA_IFALIAS')
        info = msg.get_attr('IFLA_LINKINFO')
        self.kind = info.get_attr('IFLA_INFO_KIND') if info is not None else None
        self.peer_index = msg.get_attr('IFLA_LINK')
        nsid = msg.get_attr('IFLA_LINK_NETNSID')
        self.peer_nsid = nsid if nsid is not None and nsid >= 0 else None
        if self.kind != 'veth':
            # IFLA_LINK is only a peer for a veth; other devices report themselves or a lower device
            self.peer_index = self.peer_nsid = None
        self.addresses = []  # ipaddress.ip_interface, link-local IPv6 left out


class Route(object):
    __slots__ = ('dest', 'table', 'metric', 'gateway', 'oif', 'proto', 'scope')

    def __init__(self, msg):
        family = msg['family']
        dst = msg.get_attr('RTA_DST')
        if dst is None:
            dst = '0.0.0.0' if family == socket.AF_INET else '::'
        self.dest = ipaddress.ip_network('%s/%d' % (dst, msg['dst_len']), strict=False)
        self.table = msg.get_attr('RTA_TABLE') or msg['table']
        self.metric = msg.get_attr('RTA_PRIORITY') or 0
        gateway = msg.get_attr('RTA_GATEWAY')
        self.gateway = ipaddress.ip_address(gateway) if gateway else None
        self.oif = msg.get_attr('RTA_OIF')
        self.proto = msg['proto']
        self.scope = msg['scope']


class NsView(object):
    """What one namespace holds: its links by name and index, and (when asked) its routes."""

    def __init__(self, name, links, routes=None):
        self.name = name
        self.links = dict((link.name, link) for link in links)
        self.by_index = dict((link.index, link) for link in links)
        self.routes = routes

    def link_name(self, index):
        link = self.by_index.get(index)
        return link.name if link else None


def read_links(session, ns, addresses=True):
    sock = session.rtnl(ns)
    links = [Link(msg) for msg in sock.dump(_nl.ifinfmsg, _nl.RTM_GETLINK)]
    if addresses:
        by_index = dict((link.index, link) for link in links)
        for msg in sock.dump(_nl.ifaddrmsg, _nl.RTM_GETADDR):
            link = by_index.get(msg['index'])
            addr = msg.get_attr('IFA_LOCAL') or msg.get_attr('IFA_ADDRESS')
            if link is None or addr is None:
                continue
            iface = ipaddress.ip_interface('%s/%d' % (addr, msg['prefixlen']))
            if iface.version == 6 and iface.ip.is_link_local:
                continue
            link.addresses.append(iface)
    return links


def read_routes(session, ns):
    routes = []
    for msg in session.rtnl(ns).dump(_nl.rtmsg, _nl.RTM_GETROUTE, fields={'family': 0}):
        if msg['type'] != RTN_UNICAST or msg['table'] == RT_TABLE_LOCAL:
            continue
        routes.append(Route(msg))
    return routes


def read_ns(session, ns, routes=False):
    return NsView(ns, read_links(session, ns), read_routes(session, ns) if routes else None)


class Reader(object):
    """Reads each namespace at most once per run and remembers what it saw."""

    def __init__(self, session):
        self.session = session
        self.views = {}
        self._mounted = None
        self._nsids = {}

    def mounted(self):
        if self._mounted is None:
            self._mounted = set(self.session.mounted())
        return self._mounted

    def exists(self, ns):
        return ns is None or ns in self.mounted()

    def view(self, ns, routes=False):
        """The namespace's state; an absent namespace reads as empty (it will be created first)."""
        view = self.views.get(ns)
        if view is None or (routes and view.routes is None):
            if self.exists(ns):
                view = read_ns(self.session, ns, routes=routes)
            else:
                view = NsView(ns, [], [] if routes else None)
            self.views[ns] = view
        return view

    def nsid(self, from_ns, target_ns):
        """The id under which `from_ns` knows `target_ns` (what IFLA_LINK_NETNSID holds), or None."""
        key = (from_ns, target_ns)
        if key not in self._nsids:
            fd = self.session.home if target_ns is None else self.session.open_fd(target_ns)
            try:
                reply = self.session.rtnl(from_ns).dump(
                    _nl.nsidmsg, _nl.RTM_GETNSID, attrs=[('NETNSA_FD', fd)], flags=0)
            finally:
                if target_ns is not None:
                    _nl.os.close(fd)
            nsid = reply[0].get_attr('NETNSA_NSID') if reply else None
            if nsid is not None and nsid >= 0x80000000:
                nsid -= 0x100000000
            self._nsids[key] = None if nsid is None or nsid < 0 else nsid
        return self._nsids[key]
