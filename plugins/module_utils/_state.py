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


class NsState(object):
    """What one namespace holds, read lazily: each kind of object with one dump, on first use.
    Only what was read: what the plan expects after its earlier steps is an NsForecast.

    A namespace that does not exist (yet) reads as empty.
    """

    __slots__ = ('session', 'name', 'exists', '_links', '_by_index', '_lo', '_by_family')

    def __init__(self, session, name, exists=True):
        self.session = session
        self.name = name
        self.exists = exists
        self._links = self._by_index = None
        self._lo = None  # [lo] once asked for on its own
        self._by_family = {}

    @classmethod
    def of(cls, name, links, addresses, routes):
        """A namespace's state from objects already built (a saved or made-up state): `links`
        [Link], `addresses` [Address], `routes` [Route], all families."""
        state = cls(None, name, True)
        state._by_family[('addresses', 0)] = list(addresses)
        state._by_family[('routes', 0)] = list(routes)
        state._set_links(links)
        return state

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

    def addresses_of(self, family):
        """[Address] of `family` (0: all), IPv6 link-local addresses left out."""
        return self._read('addresses', family)

    def routes_of(self, family):
        return self._read('routes', family)

    @property
    def links(self):
        if self._links is None:
            self._load_links()
        return self._links

    def load(self, payloads=None):
        """Read the links (and addresses) now rather than on first use; `payloads`: the links'
        dump, where the caller has made it already."""
        if payloads is not None and self._links is None and self.exists:
            self._set_links([Link(payload) for payload in payloads])
        self._load_links()
        return self

    def take(self, links, addresses, routes=None, family=0):
        """The state from what was read elsewhere (read_raw, Reader.prefetch): [Link], [Address]
        (all families, IPv6 link-local ones left out) and, unless None, [Route] of `family`."""
        self._by_family[('addresses', 0)] = addresses
        if routes is not None:
            self._by_family[('routes', family)] = routes
        self._set_links(links)
        return self

    @property
    def links_read(self):
        return self._links is not None

    def _load_links(self):
        if self._links is None:
            self._set_links(read_links(self.session, self.name, addresses=False) if self.exists else [])
        return self._links

    def _set_links(self, links):
        self._links = dict((link.name, link) for link in links)
        self._by_index = dict((link.index, link) for link in links)
        for addr in self._read('addresses', 0):
            link = self._by_index.get(addr.index)
            if link is not None:
                link.addresses.append(addr.iface)

    @property
    def by_index(self):
        if self._by_index is None:
            self._load_links()
        return self._by_index

    def lo(self):
        """The loopback link (ifindex 1 in every namespace), without dumping the others; asked once."""
        if self._links is not None or not self.exists:
            return self.by_index.get(1) if self.exists else None
        if self._lo is None:
            reply = self.session.rtnl(self.name).dump_raw(C.RTM_GETLINK, C.link_by_index(1), flags=0)
            self._lo = [Link(reply[0]) if reply else None]
        return self._lo[0]


class NsForecast(object):
    """What the plan expects one namespace to hold after its earlier steps, as far as it differs
    from what was read: links it makes and deletes, addresses it adds and removes, and which
    links the run declares. The read state (NsState) is never changed."""

    __slots__ = ('links', 'by_index', 'expected', 'gone', 'gone_links', 'gone_names', 'next_index',
                 'removed', 'claimed')

    def __init__(self):
        # the read links with the plan's changes, copied from the state on the first change only:
        # a namespace the plan does not change costs nothing
        self.links = self.by_index = None
        self.expected = []  # [Address] the plan adds
        self.gone = set()  # (index, packed, prefixlen) of the addresses the plan removes
        self.gone_links = set()  # indexes of the links the plan deletes
        self.gone_names = {}  # index -> name of those (a diff's before-state still names them)
        self.next_index = -1  # stand-in index of the next link the plan makes
        self.removed = {}  # name -> what removes it, for the links the plan deletes
        self.claimed = {}  # name -> the parameter that declares it: a link is declared once a run

    @property
    def changed(self):
        return bool(self.expected or self.gone or self.gone_links)


class Forecast(object):
    """What one run's plan expects the host to hold after its earlier steps (later planners of the
    same run plan against it): the namespaces it makes and removes, and one NsForecast per
    namespace it changes."""

    __slots__ = ('creating', 'removing', 'namespaces')

    def __init__(self):
        self.creating = set()
        self.removing = {}  # name -> why: 'declared' (state=absent) or 'purge'
        self.namespaces = {}  # ns -> NsForecast

    def of(self, ns):
        forecast = self.namespaces.get(ns)
        if forecast is None:
            forecast = self.namespaces[ns] = NsForecast()
        return forecast


class NsView(object):
    """What planners see of one namespace: what was read (NsState) with what the plan expects
    after its earlier steps (NsForecast)."""

    __slots__ = ('state', 'forecast', 'name', 'removed', 'claimed')

    def __init__(self, state, forecast):
        self.state = state
        self.forecast = forecast
        self.name = state.name
        self.removed = forecast.removed
        self.claimed = forecast.claimed

    @property
    def exists(self):
        return self.state.exists

    @property
    def links(self):
        links = self.forecast.links
        return links if links is not None else self.state.links

    @property
    def by_index(self):
        by_index = self.forecast.by_index
        return by_index if by_index is not None else self.state.by_index

    def load(self):
        self.state.load()
        return self

    def lo(self):
        return self.state.lo()

    def _own_links(self):
        forecast = self.forecast
        if forecast.links is None:
            forecast.links = dict(self.state.links)
            forecast.by_index = dict(self.state.by_index)
        return forecast

    def expect_link(self, name, kind, after):
        """Note a link the plan creates; returns its stand-in (negative index)."""
        forecast = self._own_links()
        link = Link.expected(forecast.next_index, name, kind, after)
        forecast.next_index -= 1
        forecast.links[name] = link
        forecast.by_index[link.index] = link
        return link

    def expect_gone(self, link, why):
        """Note a link the plan deletes: later planners no longer find it, its addresses or the
        routes through it (the kernel drops those with it)."""
        forecast = self._own_links()
        if forecast.links.get(link.name) is link:
            del forecast.links[link.name]
        forecast.by_index.pop(link.index, None)
        forecast.gone_links.add(link.index)
        forecast.gone_names[link.index] = link.name
        forecast.removed[link.name] = why

    def expect_addresses(self, index, added, removed):
        """Note addresses (ipaddress interfaces) the plan adds to / removes from link `index`."""
        forecast = self.forecast
        for iface in added:
            forecast.expected.append(Address(index, socket.AF_INET if iface.version == 4 else socket.AF_INET6,
                                             iface.ip.packed, iface.network.prefixlen))
        for iface in removed:
            forecast.gone.add((index, iface.ip.packed, iface.network.prefixlen))

    def _with_expected(self, found, family):
        forecast = self.forecast
        if not forecast.changed:
            return found
        gone, gone_links = forecast.gone, forecast.gone_links
        return [a for a in found if (a.index, a.packed, a.prefixlen) not in gone
                and a.index not in gone_links] + [
            a for a in forecast.expected if (not family or a.family == family) and a.index not in gone_links]

    @property
    def addresses(self):
        """[Address], IPv6 link-local addresses left out; with what the plan adds and removes."""
        return self._with_expected(self.state.addresses_of(0), 0)

    def addresses_of(self, family):
        return self._with_expected(self.state.addresses_of(family), family)

    def routes_of(self, family):
        found = self.state.routes_of(family)
        gone_links = self.forecast.gone_links
        if gone_links:
            found = [route for route in found if route.oif not in gone_links]
        return found

    @property
    def routes(self):
        return self.routes_of(0)

    def link_name(self, index):
        link = self.by_index.get(index)
        return link.name if link else self.forecast.gone_names.get(index)


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
    return decode_routes(unicast_routes(session.rtnl(ns).dump_raw(C.RTM_GETROUTE, C.routes_request(family))), family)


def unicast_routes(payloads):
    """The payloads of a routes' dump that can be ours: struct rtmsg tells the table (if below 256)
    and the type, and what is left out - the local table's routes, most of what a namespace has -
    is not decoded at all."""
    return [payload for payload in payloads if payload[7] == C.RTN_UNICAST and payload[4] != C.RT_TABLE_LOCAL]


def decode_routes(payloads, family=0):
    """[Route] of the unicast routes outside the local table, of `family` (0: all) in `payloads`."""
    routes = []
    for payload in unicast_routes(payloads):
        route = Route(payload)
        if route.family not in (socket.AF_INET, socket.AF_INET6) or route.rtype != C.RTN_UNICAST:
            continue
        if family and route.family != family:
            continue
        if route.table == C.RT_TABLE_LOCAL:
            continue
        routes.append(route)
    return routes


def decoded(dumps, family=0):
    """read_raw's dumps of one namespace, decoded as NsState.take wants them: ([Link], the reply
    to the id's get, [Address], [Route] of `family` or None)."""
    links, reply, addresses, routes = dumps
    return ([Link(payload) for payload in links], reply, C.decode_addresses(addresses, 0, link_local=False),
            None if routes is None else decode_routes(routes, family))


def links_and_host_id(sock, home):
    """A namespace's links' dump and its id of the namespace of descriptor `home` (the get's
    reply), asked together through its socket `sock`: one round trip for both."""
    return sock.dump_with_get(C.message(C.RTM_GETLINK, C.NLM_F_DUMP, C.links_request()),
                              C.message(C.RTM_GETNSID, 0, C.nsid_request(home)))


def read_raw(session, host, jobs, sink, claim=None, last_first=False):
    """Read namespaces whole, undecoded, as Reader.prefetch reads them: for each (ns, ask, family)
    of `jobs`, (its links' dump, its id of the host - the session's home - if `ask`, its
    addresses' dump, its unicast routes of `family` (None: not read)), each opened once
    (session.open_fd) for a socket of its own; first, if `host`, the links' and the addresses'
    dumps of the namespace the caller is in (None). Each goes to sink(ns, dumps) as it is read.
    `claim`, given, is asked for the index in `jobs` of each before it is read, from the first up
    (from the last down if `last_first`): the reading stops at the first it refuses (a Split
    between two processes).

    A namespace that cannot be read is left out: the caller reads it itself, where what went
    wrong is told. Run by a child process too (_transport.Apart): of what the caller had, only
    the session's home descriptor is used; the sockets are its own."""
    if host:
        sock = _transport.Netlink()
        try:
            sink(None, (sock.dump_raw(C.RTM_GETLINK, C.links_request()), None,
                        sock.dump_raw(C.RTM_GETADDR, C.addresses_request(0)), None))
        finally:
            sock.close()
    home = session.home
    for index in (range(len(jobs) - 1, -1, -1) if last_first else range(len(jobs))):
        if claim is not None and not claim(index):
            break
        ns, ask, family = jobs[index]
        try:
            fd = session.open_fd(ns)
        except (OSError, _transport.NamespaceError):
            continue
        try:
            sock = _transport.netlink_through(fd, home)
        finally:
            session.close_fd(fd)
        try:
            if ask:
                links, reply = links_and_host_id(sock, home)
            else:
                links, reply = sock.dump_raw(C.RTM_GETLINK, C.links_request()), None
            addresses = sock.dump_raw(C.RTM_GETADDR, C.addresses_request(0))
            routes = None if family is None else unicast_routes(
                sock.dump_raw(C.RTM_GETROUTE, C.routes_request(family)))
        except (OSError, _transport.NetlinkError):
            continue
        finally:
            sock.close()
        sink(ns, (links, reply, addresses, routes))


def existing(session, ns, indexes):
    """The interfaces of `indexes` that still exist in `ns`: one pipelined get each, no dump."""
    indexes = sorted(indexes)
    answers = session.rtnl(ns).get_many([(C.RTM_GETLINK, C.link_by_index(index)) for index in indexes])
    return set(index for index, answer in zip(indexes, answers) if answer is not None)


def link_named(session, ns, name):
    """One interface (a Link), looked up by name in the kernel (no dump)."""
    return C.Link(session.rtnl(ns).dump_raw(C.RTM_GETLINK, C.link_by_name(name), flags=0)[0])


def link_at(session, ns, index):
    """One interface (a Link) by index, or None when there is none."""
    answer = session.rtnl(ns).get_many([(C.RTM_GETLINK, C.link_by_index(index))])[0]
    return C.Link(answer) if answer is not None else None


def link_index(session, ns, name):
    """The index of one interface, looked up by name in the kernel (no dump, no netlink message),
    whose pending link-state work the kernel then does (Netlink.settle): the interfaces a run asks
    the index of - for their addresses, routes, bridge - are ready to carry traffic when it ends,
    as they were when a netlink get by name (which does that work too) looked them up."""
    sock = session.rtnl(ns)
    index = sock.index_of(name)
    sock.settle(name)
    return index


class _ReadApart(object):
    """A reader process (Reader._read_apart) and the Split of the namespaces it shares with this one."""

    __slots__ = ('process', 'split')

    def __init__(self, process, split):
        self.process, self.split = process, split


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
        self.states = {}  # ns -> NsState: what was read
        # what the plan expects after its earlier steps: later planners of the same run see it
        self.forecast = Forecast()

    @property
    def creating(self):
        """The namespaces the plan creates (in check mode, also those it assumes an earlier task
        creates: see _common.assume_namespace)."""
        return self.forecast.creating

    @property
    def removing(self):
        """{name: why} of the namespaces the plan removes: 'declared' (state=absent) or 'purge'."""
        return self.forecast.removing

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

    def listeners(self, ns, ports):
        """{(protocol, version, port): sorted [(pid, command)]} of the sockets in `ns` listening
        on (TCP) or bound to (UDP) one of `ports` ((protocol, version, port) tuples), and the
        processes holding them: one read of /proc/net and, only if one is found, one /proc scan."""
        found = self.session.run_in(ns, lambda: _sockets_on(ports))
        if not found:
            return {}
        held = _transport.socket_holders(set(inode for inodes in found.values() for inode in inodes))
        return dict((key, sorted(set((pid, _comm(pid)) for inode in inodes for pid in held.get(inode, ()))))
                    for key, inodes in found.items())

    @staticmethod
    def bare_file(name):
        """Whether /run/netns/NAME is there with no namespace mounted on it (a killed run's leftover)."""
        return os.path.lexists(_transport.netns_path(name))

    def proc_values(self, ns, paths):
        """{key: text} of /proc/sys files read inside `ns` (None for a file that does not exist)."""
        return self.session.run_in(ns, lambda: dict((key, read_proc(path)) for key, path in paths.items()))

    @staticmethod
    def listdir(path):
        """The sorted names in a directory, or None when it does not exist (or cannot be read)."""
        try:
            return sorted(os.listdir(path))
        except OSError:
            return None

    @staticmethod
    def is_dir(path):
        return os.path.isdir(path)

    @staticmethod
    def link_target(path):
        """Where a symbolic link points, or None when `path` is not one."""
        try:
            return os.readlink(path)
        except OSError:
            return None

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
        peer is under one of them goes with that namespace, in the kernel's batch.

        The host's ids of thousands of namespaces, and then the host's links, which every caller
        looks through next for the veths under those ids, are both the kernel's walks of all the
        ids the host has (peernet2id: for each id asked, for each veth end it reports), and neither
        takes the RTNL lock: the links come from a thread meanwhile (a second at ten thousand)."""
        removing = sorted(self.removing)
        behind = self._host_links_apart(len(removing)) if ns is None else None
        try:
            self.prefetch_nsids(ns, removing)
        except BaseException:
            if behind is not None:
                behind.join()
            raise
        if behind is not None:
            self.state(None).load(behind.result())
        return set(self.nsid(ns, other) for other in removing) - {None}

    def _host_links_apart(self, count):
        """The host's links dumped on a thread of their own (a Behind, whose result() the caller
        loads into the host's state), while the caller reads or asks about `count` namespaces:
        None where that is not worth a thread (MAX_LOOKUP_FDS or fewer) or they are read already."""
        host = self.state(None)
        if count <= MAX_LOOKUP_FDS or not host.exists or host.links_read:
            return None
        return _transport.Behind(self.session.dump_apart(C.RTM_GETLINK, C.links_request()))

    def view(self, ns):
        """The namespace's state, read on first use; an absent namespace reads as empty."""
        view = self.views.get(ns)
        if view is None:
            view = self.views[ns] = NsView(self.state(ns), self.forecast.of(ns))
        return view

    def state(self, ns):
        """What was read of the namespace (NsState), without the plan's predictions."""
        state = self.states.get(ns)
        if state is None:
            state = self.states[ns] = self._read_state(ns)
        return state

    def _read_state(self, ns):
        return NsState(self.session, ns, self.exists(ns))

    def prefetch(self, links=(), routes=None, pairs=()):
        """Read ahead, a namespace at a time, what the planners are going to ask: the links and
        addresses of the namespaces in `links`, the routes of those in `routes` ({ns: families}),
        and, for the veth pairs `pairs` ((a_ns, a_name, b_ns, b_name)) with one end on the host,
        the id under which the host end's namespace knows the other's.

        The planners ask kind by kind - every namespace's links, then every one's routes - and the
        sockets a run keeps are bounded (_transport.MAX_SOCKETS): past that many namespaces, each
        planner opened each namespace again (a descriptor, two setns, a socket), and the ids the
        host knows the namespaces by took a descriptor of each once more. At ten thousand
        namespaces that was 30000 opens and 40000 setns in a re-run. Here each namespace is
        opened once, for a socket that reads it whole (links, addresses, routes, its id of the
        host) and is closed then.

        Past READ_APART_MIN namespaces a child process shares the reading (_transport.Apart):
        two processes read namespaces in half the time one does, where two threads took twice as
        long (the interpreter's lock, handed over at each system call). The child reads from the
        last namespace down, this process from the first up, decoding its own; both stop where
        they meet (Split), and the child then dumps the host's links while this process decodes
        what it read (see _read_apart). At ten thousand namespaces, side by side, the reading
        took 1.8-2.2 s where one process took 3.1-3.3 s.

        That id is mostly not asked for at all: the kernel finds the id one namespace has for
        another by walking all the ids it has (peernet2id), so the host's ids of ten thousand
        namespaces cost ten thousand walks of ten thousand - some 0.8 s of kernel time in a
        re-run, half as much as all the rest of its reading. A pair whose ends name each other
        (index both ways), whose namespace end names the host by the id that namespace has for it
        (a walk of the few ids that namespace has), is that pair: the host end's
        IFLA_LINK_NETNSID is then the host's id of the namespace. Only a pair that fails this is
        asked about."""
        routes = routes or {}
        across = {}  # ns -> [(host end's name, its own end's name)] of the pairs between it and the host
        to_host = set()  # namespaces asked for their id of the host (the veth planner's a_ns)
        for a_ns, a_name, b_ns, b_name in pairs:
            if a_ns is None and b_ns is not None:
                across.setdefault(b_ns, []).append((a_name, b_name))
            elif b_ns is None and a_ns is not None:
                to_host.add(a_ns)
        names = [ns for ns in sorted(set(links) | set(routes) | set(across) | to_host, key=_ns_order)
                 if self.exists(ns)]
        # The namespaces whose links are read are read whole, undecoded first (read_raw), by
        # this process and past READ_APART_MIN of them by a child too, which reads the host's
        # links last. Else (fewer namespaces, or no child to be had) the host's links come from a
        # thread while the namespaces are read: their dump walks the host's ids of the other
        # namespaces for each veth end (peernet2id), kernel time the reading overlaps in part.
        jobs = []  # (ns, ask its id of the host, route family or None)
        for ns in names:
            if ns is not None and ns in links:
                families = routes.get(ns)
                jobs.append((ns, (ns in to_host or ns in across) and (ns, None) not in self._nsids,
                             (0 if len(families) > 1 else next(iter(families))) if families else None))
        host_links = None in links and not self.state(None).links_read
        apart = self._read_apart(jobs, host_links) if len(jobs) >= self.READ_APART_MIN else None
        host = self._host_links_apart(len(names)) if apart is None and host_links else None
        later = host is not None or apart is not None  # the host's links come once the namespaces are read
        checks = []  # namespaces with a pair to the host, checked once the host's links are in
        done = set(ns for ns, _ask, _family in jobs)

        by_name = dict((job[0], job) for job in jobs)

        def take(ns, objects):
            links_read, reply, addresses, routes_read = objects
            if ns is None:
                self.state(None).take(links_read, addresses)
                return
            _ns, ask, family = by_name[ns]
            self.state(ns).take(links_read, addresses, routes_read, family or 0)
            if ask:
                self._nsids[(ns, None)] = C.nsid_of(reply)
            if ns in across and (None, ns) not in self._nsids:
                checks.append(ns)

        def taken(values):
            # what the child read: decoded here once the two have met, while the child dumps
            # the host's links
            for ns, dumps in values:
                if not self.state(ns).links_read:  # both read it (see Split): the first is kept
                    take(ns, decoded(dumps, (by_name[ns][2] or 0) if ns is not None else 0))

        def claim(index):
            apart.process.drain()  # what the child sent meanwhile, decoded once the two have met
            return apart.split.mine(index)
        try:
            read_raw(self.session, False, jobs, lambda ns, dumps: take(ns, decoded(dumps, by_name[ns][2] or 0)),
                     claim if apart is not None else None)
            checks.extend(self._read_each([ns for ns in names if ns not in done], links, routes, to_host, across,
                                          later))
        except BaseException:
            if apart is not None:
                apart.process.abandon()
            if host is not None:
                host.join()
            raise
        if host is not None:
            self.state(None).load(host.result())
        if apart is not None:
            taken(apart.process.rest())
        # what was not read (the child failed, or a namespace failed the reading) is read here,
        # where a failure is told
        left = [ns for ns in ([None] if host_links else []) + [job[0] for job in jobs]
                if not self.state(ns).links_read]
        checks.extend(self._read_each(left, links, routes, to_host, across, False))
        if checks:
            self.prefetch_nsids(None, self._check_pairs(checks, across))

    # the namespaces to read whole past which a child process reads some of them (see prefetch):
    # below, the fork (a few milliseconds for the page tables of a large module) is not worth it
    READ_APART_MIN = 256

    def _read_apart(self, jobs, host):
        """A child process reading the namespaces of `jobs` from the last down (read_raw) as far as
        this one has not claimed them yet, then the host's links if `host` (_ReadApart), or None
        where no child is to be had.

        The host's links come last: at ten thousand namespaces their dump holds the kernel's
        RTNL lock for most of a second (the walk of the host's namespace ids for each veth end),
        and each namespace's links' and addresses' dumps want that lock too - beside it, reading
        a namespace took ten times as long. Last, it overlaps this process decoding what the
        child read (the child sends it undecoded, so that it reads the more namespaces)."""
        split = _transport.Split(len(jobs))

        def work(send):
            def sink(ns, dumps):
                send((ns, dumps))
            read_raw(self.session, False, jobs, sink, split.theirs, last_first=True)
            if host:
                read_raw(self.session, True, [], sink)
        process = _transport.Apart.start(work)
        return _ReadApart(process, split) if process is not None else None

    def _read_each(self, names, links, routes, to_host, across, later):
        """Read `names` (Reader.prefetch) here, a chunk of MAX_LOOKUP_FDS at a time, each opened
        once. Where the host's links are in (not `later`), each chunk's pairs to the host are
        checked at once and the ids they do not tell asked through the descriptors still open;
        else returns the namespaces to check once they are."""
        checks = []
        for start in range(0, len(names), MAX_LOOKUP_FDS):
            chunk = names[start:start + MAX_LOOKUP_FDS]
            fds = {}  # ns -> the descriptor its socket was opened through, closed with the chunk
            try:
                for ns in chunk:
                    if ns is not None:
                        fds[ns] = self.session.open_with_rtnl(ns)
                    state = self.state(ns)
                    # the host's links, where they come later, are not read here
                    read_links = ns in links and (ns is not None or not later)
                    if read_links and ns is not None and (ns in to_host or ns in across) and \
                            (ns, None) not in self._nsids and state.exists:
                        # the namespace's id of the host (the pair's check, or the veth planner's
                        # question) asked beside its links' dump
                        payloads, reply = links_and_host_id(self.session.rtnl(ns), self.session.home)
                        state.load(payloads)
                        self._nsids[(ns, None)] = C.nsid_of(reply)
                    elif read_links:
                        state.load()
                    families = routes.get(ns)
                    if families:
                        # both families: one dump of all, which answers for each
                        state.routes_of(0 if len(families) > 1 else next(iter(families)))
                    if ns in to_host:
                        self.nsid(ns, None)
                    if ns in across and (None, ns) not in self._nsids:
                        checks.append(ns)
                if not later:
                    asked = self._check_pairs(checks, across)
                    checks = []
                    if asked:
                        replies = self.session.rtnl(None).get_many(
                            [(C.RTM_GETNSID, C.nsid_request(fds[ns])) for ns in asked], batch_size=MAX_LOOKUP_FDS)
                        for ns, reply in zip(asked, replies):
                            self._nsids[(None, ns)] = C.nsid_of(reply)
            finally:
                for fd in fds.values():
                    self.session.close_fd(fd)
        return checks

    def _check_pairs(self, names, across):
        """Take the host's id of each namespace of `names` from its pair to the host (see prefetch);
        returns those whose pair did not tell it, and that have one of its ends: to be asked."""
        asked = []
        for ns in names:
            nsid = self._host_id_of(ns, across[ns])
            if nsid is not None:
                self._nsids[(None, ns)] = nsid
            elif any(self._both_ends(ns, ends) for ends in across[ns]):
                asked.append(ns)
        return asked

    def _both_ends(self, ns, ends):
        host_name, name = ends
        return host_name in self.state(None).links and name in self.state(ns).links

    def _host_id_of(self, ns, ends):
        """The host's id of `ns`, as a veth pair between them shows it (see prefetch), or None."""
        host_links, links = self.state(None).links, self.state(ns).links
        for host_name, name in ends:
            outside, inside = host_links.get(host_name), links.get(name)
            if outside is None or inside is None or outside.kind != 'veth' or inside.kind != 'veth':
                continue
            if outside.peer_index == inside.index and inside.peer_index == outside.index and \
                    outside.peer_nsid is not None and inside.peer_nsid is not None and \
                    inside.peer_nsid == self.nsid(ns, None):
                return outside.peer_nsid
        return None

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


def _ns_order(ns):
    # the host first, then the namespaces by name
    return (ns is not None, ns or '')


_SOCKET_TABLES = (('tcp', 4, 'tcp', '0A'), ('tcp', 6, 'tcp6', '0A'), ('udp', 4, 'udp', '07'), ('udp', 6, 'udp6', '07'))


def _sockets_on(ports):
    """{(protocol, version, port): [socket inode]} of the listening TCP and bound UDP sockets of the
    current namespace on `ports` (/proc/thread-self/net: the namespace this thread is in)."""
    wanted = set(ports)
    found = {}
    for protocol, version, table, state in _SOCKET_TABLES:
        if not any(key[0] == protocol and key[1] == version for key in wanted):
            continue
        try:
            with open('/proc/thread-self/net/' + table) as handle:
                lines = handle.read().splitlines()[1:]
        except IOError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) < 10 or fields[3] != state:
                continue
            key = (protocol, version, int(fields[1].rsplit(':', 1)[1], 16))
            if key in wanted:
                found.setdefault(key, []).append(int(fields[9]))
    return found


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
