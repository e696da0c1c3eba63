# -*- coding: utf-8 -*-
# Copyright: linuxnet.netns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
# Do not use this from other collections or standalone plugins/modules!
"""Current state: one dump per namespace and kind of object, never one lookup per object."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import socket

from ansible_collections.linuxnet.netns.plugins.module_utils import _codec as C
from ansible_collections.linuxnet.netns.plugins.module_utils._codec import Address, Link, Route
from ansible_collections.linuxnet.netns.plugins.module_utils import _transport
from ansible_collections.linuxnet.netns.plugins.module_utils._transport import MAX_LOOKUP_FDS


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
            reply = self.session.rtnl(self.name).dump_raw(C.RTM_GETLINK, C.link_by_index(1), flags=0)
            self._lo = [Link(reply[0]) if reply else None]
        return self._lo[0]


def read_addresses(session, ns, family=0):
    # link-local addresses left out: every IPv6 interface has one, nobody declares them
    return C.decode_addresses(session.rtnl(ns).dump_raw(C.RTM_GETADDR, C.addresses_request(family)), family,
                              link_local=False)


def read_links(session, ns, addresses=True):
    links = [Link(payload) for payload in session.rtnl(ns).dump_raw(C.RTM_GETLINK, C.links_request())]
    if addresses:
        by_index = dict((link.index, link) for link in links)
        for addr in read_addresses(session, ns):
            if addr.index in by_index:
                by_index[addr.index].addresses.append(addr.iface)
    return links


def read_routes(session, ns, family=0):
    routes = []
    for payload in session.rtnl(ns).dump_raw(C.RTM_GETROUTE, C.routes_request(family)):
        route = Route(payload)
        if route.family not in (socket.AF_INET, socket.AF_INET6) or route.rtype != C.RTN_UNICAST:
            continue
        if family and route.family != family:
            continue
        if route.table == C.RT_TABLE_LOCAL:
            continue
        routes.append(route)
    return routes


def existing(session, ns, indexes):
    """The interfaces of `indexes` that still exist in `ns`: one pipelined get each, no dump."""
    indexes = sorted(indexes)
    answers = session.rtnl(ns).get_many([(C.RTM_GETLINK, C.link_by_index(index)) for index in indexes])
    return set(index for index, answer in zip(indexes, answers) if answer is not None)


def link_index(session, ns, name):
    """The index of one interface, looked up by name in the kernel (no dump)."""
    reply = session.rtnl(ns).dump_raw(C.RTM_GETLINK, C.link_by_name(name), flags=0)
    return C.ifinfo_index(reply[0])


class Reader(object):
    """Reads each namespace at most once per run and remembers what it saw."""

    def __init__(self, session, comment_parsers):
        self.session = session
        # what our nf_tables rules' comments name (each kind that writes rules declares its own)
        self.comment_parsers = comment_parsers
        self.views = {}
        self._mounted = None
        self._nsids = {}
        self._nft = {}
        self._foreign_forward = {}
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
            # imported here: nf_tables (and pyroute2's classes for it) only for runs that use it
            from ansible_collections.linuxnet.netns.plugins.module_utils import _nft_state
            self._nft[ns] = _nft_state.read(self.session.nfnl(ns), self.comment_parsers) if self.exists(ns) \
                else _nft_state.NftState()
        return self._nft[ns]

    def holders(self, names):
        """{name: sorted [(pid, how, command)]} of the processes and mounts that keep the namespaces
        `names` alive: one /proc scan for all of them (pid 0: another mount, `how` its path)."""
        inodes = dict((self.session.inode(name), name) for name in names)
        held = {}
        for inode, holding in _transport.holders(inodes).items():
            held[inodes[inode]] = sorted(set((pid, how, _comm(pid) if pid else None) for pid, how in holding))
        return held

    @staticmethod
    def bare_file(name):
        """Whether /run/netns/NAME is there with no namespace mounted on it (a killed run's leftover)."""
        return os.path.lexists(_transport.netns_path(name))

    def proc_values(self, ns, paths):
        """{key: text} of /proc/sys files read inside `ns` (None for a file that does not exist)."""
        return self.session.run_in(ns, lambda: dict((key, read_proc(path)) for key, path in paths.items()))

    @staticmethod
    def text_file(path):
        """A file's text, or None when it does not exist (or cannot be read)."""
        try:
            with open(path) as handle:
                return handle.read()
        except IOError:
            return None

    def foreign_forward(self, ns):
        """The forward-drop chains of other nf_tables rulesets in `ns` (Docker's FORWARD DROP) and
        their rules, read once: [(target chain, [rule])] (_nft_state.read_foreign_forward)."""
        if ns not in self._foreign_forward:
            from ansible_collections.linuxnet.netns.plugins.module_utils import _nft_state
            self._foreign_forward[ns] = _nft_state.read_foreign_forward(self.session.nfnl(ns))
        return self._foreign_forward[ns]

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
        sock = self.session.rtnl(from_ns)
        # a batch at a time, so that the descriptors open at once stay few whatever the count
        for start in range(0, len(targets), MAX_LOOKUP_FDS):
            chunk = targets[start:start + MAX_LOOKUP_FDS]
            fds = []
            try:
                for target in chunk:
                    fds.append(self.session.open_fd(target))
                replies = sock.get_many([(C.RTM_GETNSID, C.nsid_request(fd)) for fd in fds],
                                        batch_size=MAX_LOOKUP_FDS)
            finally:
                for fd in fds:
                    self.session.close_fd(fd)
            for target, reply in zip(chunk, replies):
                self._nsids[(from_ns, target)] = C.nsid_of(reply)

    def nsid(self, from_ns, target_ns):
        """The id under which `from_ns` knows `target_ns` (what IFLA_LINK_NETNSID holds), or None."""
        key = (from_ns, target_ns)
        if key not in self._nsids:
            fd = self.session.home if target_ns is None else self.session.open_fd(target_ns)
            try:
                reply = self.session.rtnl(from_ns).dump_raw(C.RTM_GETNSID, C.nsid_request(fd), flags=0)
            finally:
                if target_ns is not None:
                    self.session.close_fd(fd)
            self._nsids[key] = C.nsid_of(reply[0] if reply else None)
        return self._nsids[key]


def read_proc(path):
    """A /proc/sys value as a bool (None: the file does not exist)."""
    try:
        with open(path) as handle:
            return handle.read().strip() == '1'
    except IOError:
        return None


def _comm(pid):
    """A process's command name, or '?' when it is gone."""
    try:
        with open('/proc/%d/comm' % pid) as comm:
            return comm.read().strip()
    except OSError:
        return '?'
