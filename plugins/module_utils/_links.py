# -*- coding: utf-8 -*-
# Copyright: linuxnet.netns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
# Do not use this from other collections or standalone plugins/modules!
"""Interfaces: veth pairs and bridges, and the settings every interface shares (addresses, MTU,
master, up). Reads come from _state, changes go into a _plan.Plan."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno

from ansible_collections.linuxnet.netns.plugins.module_utils import _codec
from ansible_collections.linuxnet.netns.plugins.module_utils import _plan as P
from ansible_collections.linuxnet.netns.plugins.module_utils import _validate as V
from ansible_collections.linuxnet.netns.plugins.module_utils import _transport
from ansible_collections.linuxnet.netns.plugins.module_utils._common import (
    OWNER_ALIAS, PlanError, fail, ns_key, require_namespace, where)


# ---- desired interfaces -------------------------------------------------------------------------
class Iface(object):
    """The desired settings of one interface. `None` means: leave that setting as it is."""

    __slots__ = ('name', 'ns', 'addresses', 'mtu', 'up', 'master', 'param')

    def __init__(self, spec, param, mtu_default=None):
        self.param = param
        self.name = V.ifname(spec.get('name'), param + '.name')
        self.ns = V.netns_name(spec.get('netns'), param + '.netns')
        addresses = spec.get('addresses')
        if addresses is None:
            self.addresses = None
        else:
            self.addresses = [V.interface_address(a, '%s.addresses[%d]' % (param, i)) for i, a in enumerate(addresses)]
            V.unique(self.addresses, str, param + '.addresses')
        self.mtu = V.mtu(spec.get('mtu') if spec.get('mtu') is not None else mtu_default, param + '.mtu')
        self.up = spec.get('up', True)
        master = spec.get('master')
        self.master = V.ifname(master, param + '.master') if master else None
        if self.master == self.name:
            fail(param + '.master', master, 'is the interface itself', 'name a bridge')

    @property
    def key(self):
        return (self.ns, self.name)


def link_state(link, view):
    if link is None:
        return None
    state = {'kind': link.kind, 'up': link.up, 'mtu': link.mtu,
             'addresses': sorted(str(a) for a in link.addresses)}
    if link.master:
        state['master'] = view.link_name(link.master)
    return state


def link_after(iface, before, kind):
    after = dict(before) if before else {'kind': kind, 'up': False, 'addresses': []}
    if iface.up is not None:
        after['up'] = iface.up
    if iface.mtu is not None:
        after['mtu'] = iface.mtu
    elif 'mtu' not in after:
        after['mtu'] = 1500
    if iface.addresses is not None:
        after['addresses'] = sorted(str(a) for a in iface.addresses)
    if iface.master is not None:
        after['master'] = iface.master
    return after


# ---- requests --------------------------------------------------------------------------------------
def link_request(msg_type, flags, what, index=0, up=None, info=None, ignore=(), **attrs):
    """One RTM_NEWLINK/RTM_DELLINK. `attrs`: name, mtu, master, alias; `up`: True/False/None."""
    extra = _codec.link_attrs(**attrs)
    if info is not None:
        extra.append(info)
    ifi_flags, change = (0, 0) if up is None else (_codec.IFF_UP if up else 0, _codec.IFF_UP)
    return _transport.Request(_codec.link_message(msg_type, flags, extra, index, ifi_flags, change), what, ignore)


def delete_link(plan, view, link, summary, stage=P.LINK_DELETE):
    """Delete by index read at planning time; ENODEV means it is gone already (a veth's peer).
    Later planners of the run no longer see the link, nor its addresses and routes."""
    index = link.index
    plan.add(stage, view.name, summary, requests=lambda r: link_request(
        _codec.RTM_DELLINK, 0, summary, index=index, ignore=(errno.ENODEV,)))
    view.expect_gone(link, summary)


def _addr_request(msg_type, flags, index, addr, what):
    # IPv6 without duplicate address detection: usable at once, on links this collection owns
    ifa_flags = _codec.IFA_F_NODAD if addr.version == 6 else 0
    return _transport.Request(_codec.address_message(msg_type, flags, index, addr, ifa_flags), what)


def configure(plan, iface, link, view, kind, label):
    """Plan the shared settings of one interface, existing (`link`) or made in this run (None).

    Link-level settings (bridge, MTU, owner mark, up) go to the kernel as one message per
    interface, addressed by name when the link is new, so that no index lookup is needed; only
    addresses need the index, asked for once per interface at apply time.
    Returns the interface's after-state for the diff.
    """
    ns, name = iface.ns, iface.name
    before = link_state(link, view)
    after = link_after(iface, before, kind)
    current_index = link.index if link is not None else None

    def index(resolver):
        return current_index if current_index is not None else resolver.index(ns, name)

    summaries, attrs, up = [], {}, None
    if iface.master is not None:
        master = view.links.get(iface.master)
        if master is None and iface.master in view.removed:
            raise PlanError('%s.master=%r: the same task removes it (%s)' % (
                iface.param, iface.master, view.removed[iface.master]))
        if master is None:
            raise PlanError('%s.master=%r: no interface of that name in %s; create the bridge first '
                            '(linuxnet.netns.bridge)' % (iface.param, iface.master, where(ns)))
        if master.kind != 'bridge':
            raise PlanError('%s.master=%r is a %s in %s, not a bridge' % (
                iface.param, iface.master, master.kind or 'plain interface', where(ns)))
        if link is None or link.master != master.index:
            summaries.append('attach %s to bridge %s in %s' % (name, iface.master, where(ns)))
            attrs['master'] = master.index  # negative: a bridge this run makes, looked up at apply time
    if link is not None and iface.mtu is not None and link.mtu != iface.mtu:
        summaries.append('set mtu %d on %s in %s (was %s)' % (iface.mtu, name, where(ns), link.mtu))
        attrs['mtu'] = iface.mtu
    if link is None or not link.alias:
        # the kernel ignores an alias given at creation, so the owner mark comes with the settings;
        # a declared link without any alias gets it too (one made by a run killed before marking)
        summaries.append('mark %s in %s as made by linuxnet.netns' % (name, where(ns)))
        attrs['alias'] = OWNER_ALIAS
    current_up = link.up if link is not None else False
    if iface.up is not None and iface.up != current_up:
        summaries.append('set %s %s in %s' % (name, 'up' if iface.up else 'down', where(ns)))
        up = iface.up
    if summaries:
        what = '; '.join(summaries)
        if link is None:
            attrs['name'] = name

        def settings(resolver):
            if attrs.get('master', 0) < 0:
                attrs['master'] = resolver.index(ns, iface.master)
            return link_request(_codec.RTM_NEWLINK, 0, what, index=current_index or 0, up=up, **attrs)
        plan.add(P.LINK_SET, ns, summaries, requests=settings)
    added, removed = [], []
    if iface.addresses is not None:
        current = set(link.addresses) if link is not None else set()
        removed = sorted(current - set(iface.addresses), key=str)
        for addr in removed:
            summary = 'remove address %s from %s in %s' % (addr, name, where(ns))
            plan.add(P.ADDR_DELETE, ns, summary, requests=lambda r, a=addr, s=summary: _addr_request(
                _codec.RTM_DELADDR, 0, index(r), a, s))
        added = [addr for addr in iface.addresses if addr not in current]
        for addr in added:
            summary = 'add address %s to %s in %s' % (addr, name, where(ns))
            plan.add(P.ADDR_ADD, ns, summary, requests=lambda r, a=addr, s=summary: _addr_request(
                _codec.RTM_NEWADDR, _codec.NLM_F_CREATE | _codec.NLM_F_EXCL, index(r), a, s))
    # what later planners of this run (a port on this bridge, a route via this link) will find
    if link is None:
        link = view.expect_link(name, kind, dict(after, alias=OWNER_ALIAS))
        link.addresses = list(iface.addresses or ())
    if added or removed:
        view.expect_addresses(link.index, added, removed)
    plan.record('%s %s %s' % (label, ns_key(ns), name), before, after)
    return after


def claim(view, name, param):
    """Each link is declared once a run: a second declaration (another pair's end, a bridge of
    the same name) would plan against what the first one changes."""
    first = view.claimed.setdefault(name, param)
    if first != param:
        raise PlanError('%s: %s in %s is declared twice in this task (first by %s)' % (
            param, name, where(view.name), first))


# ---- veth pairs -----------------------------------------------------------------------------------
class VethPair(object):
    def __init__(self, spec, param):
        self.state = spec.get('state') or 'present'
        self.replace = bool(spec.get('replace'))
        self.end = Iface(spec, param)
        peer = spec.get('peer') or {}
        if not peer.get('name'):
            fail(param + '.peer.name', peer.get('name'), 'is missing', 'name the other end of the pair')
        self.peer = Iface(peer, param + '.peer', mtu_default=self.end.mtu)
        if self.end.key == self.peer.key:
            fail(param + '.peer.name', self.peer.name, 'is the same interface as the first end',
                 'give the ends different names or put them in different namespaces')
        self.param = param

    @classmethod
    def unlisted(cls, ns, name):
        """One end of a pair we made that a purge removes (its peer goes with it)."""
        pair = cls.__new__(cls)
        pair.state, pair.replace, pair.param = 'absent', False, 'purge'
        pair.end = Iface({'name': name, 'netns': ns}, 'purge')
        pair.peer = None
        return pair

    @property
    def key(self):
        return self.end.key

    def ifaces(self):
        return (self.end,) if self.peer is None else (self.end, self.peer)

    def describe(self):
        return 'veth %s in %s' % (self.end.name, where(self.end.ns))


def _is_pair(reader, a_ns, a_link, b_ns, b_link):
    if a_link is None or b_link is None or a_link.kind != 'veth' or b_link.kind != 'veth':
        return False
    if a_link.peer_index != b_link.index:
        return False
    if a_ns == b_ns:
        return a_link.peer_nsid is None
    return a_link.peer_nsid is not None and reader.nsid(a_ns, b_ns) == a_link.peer_nsid


def _describe(link):
    if link.kind == 'veth':
        return 'a veth whose peer is ifindex %s%s' % (link.peer_index, '' if link.peer_nsid is None else
                                                      ' in another namespace (nsid %d)' % link.peer_nsid)
    return 'a %s' % (link.kind or 'plain interface (no link kind)')


def plan_veth(plan, reader, pair):
    a, b = pair.end, pair.peer
    if b is None:
        # a purged end: only its own name is known
        view = reader.view(a.ns)
        link = view.links.get(a.name)
        before = link_state(link, view)
        delete_link(plan, view, link, 'delete veth %s in %s (and its peer; purge: not declared)' % (
            a.name, where(a.ns)))
        plan.record('veth %s %s' % (ns_key(a.ns), a.name), before, None)
        return None
    for iface in (a, b):
        require_namespace(reader, iface.ns, iface.param + '.netns', pair.state)
    a_view, b_view = reader.view(a.ns), reader.view(b.ns)
    claim(a_view, a.name, pair.param + '.name')
    claim(b_view, b.name, pair.param + '.peer.name')
    a_link, b_link = a_view.links.get(a.name), b_view.links.get(b.name)
    label = 'veth'
    if pair.state == 'absent':
        for iface, link in ((a, a_link), (b, b_link)):
            if link is None:
                continue
            if link.kind != 'veth':
                raise PlanError('%s.name=%r in %s is %s, not a veth: refusing to delete it' % (
                    iface.param, iface.name, where(iface.ns), _describe(link)))
        # an end in a namespace the run removes goes with it, and its peer with it: the kernel's
        # teardown of the namespace removes them in one batch (and the run waits for that)
        paired = _is_pair(reader, a.ns, a_link, b.ns, b_link)
        gone_a = a.ns in reader.removing or (b.ns in reader.removing and paired)
        before_a, before_b = link_state(a_link, a_view), link_state(b_link, b_view)
        if a_link is not None and not gone_a:
            delete_link(plan, a_view, a_link, 'delete veth %s in %s (and its peer)' % (a.name, where(a.ns)))
            if paired:
                b_view.expect_gone(b_link, 'deleted with its peer %s in %s' % (a.name, where(a.ns)))
        if b_link is not None and a_link is None and b.ns not in reader.removing:
            delete_link(plan, b_view, b_link, 'delete veth %s in %s' % (b.name, where(b.ns)))
        plan.record('%s %s %s' % (label, ns_key(a.ns), a.name), before_a, None)
        plan.record('%s %s %s' % (label, ns_key(b.ns), b.name), before_b, None)
        return None

    if a_link is not None or b_link is not None:
        if not _is_pair(reader, a.ns, a_link, b.ns, b_link):
            problems = []
            for iface, link, other in ((a, a_link, b), (b, b_link, a)):
                if link is not None:
                    problems.append('%s exists in %s as %s, not as the peer of %s in %s' % (
                        iface.name, where(iface.ns), _describe(link), other.name, where(other.ns)))
            if not pair.replace:
                raise PlanError('%s: %s. Set replace: true to delete and re-create it, or choose other '
                                'names.' % (pair.param, '; '.join(problems)))
            for iface, link, view in ((a, a_link, a_view), (b, b_link, b_view)):
                if link is not None:
                    delete_link(plan, view, link,
                                'delete %s in %s (replace: %s)' % (iface.name, where(iface.ns), _describe(link)))
            a_link = b_link = None

    if a_link is None:
        summary = 'create veth %s in %s with peer %s in %s' % (a.name, where(a.ns), b.name, where(b.ns))

        def create(resolver, summary=summary):
            info = _codec.veth_info(b.name, b.mtu, resolver.ns_fd(b.ns) if b.ns != a.ns else None)
            return link_request(_codec.RTM_NEWLINK, _codec.NLM_F_CREATE | _codec.NLM_F_EXCL, summary,
                                name=a.name, mtu=a.mtu, info=info)
        plan.add(P.LINK_CREATE, a.ns, summary, requests=create)
    after_a = configure(plan, a, a_link, a_view, 'veth', label)
    after_b = configure(plan, b, b_link, b_view, 'veth', label)
    return {'name': a.name, 'netns': a.ns, 'peer': dict(after_b, name=b.name, netns=b.ns),
            **after_a}


# ---- bridges -----------------------------------------------------------------------------------------
class Bridge(object):
    def __init__(self, spec, param):
        self.state = spec.get('state') or 'present'
        self.replace = bool(spec.get('replace'))
        self.iface = Iface(spec, param)
        if self.iface.master:
            fail(param + '.master', self.iface.master, 'is not supported for a bridge', 'omit it')
        self.param = param

    @property
    def key(self):
        return self.iface.key

    def ifaces(self):
        return (self.iface,)

    def describe(self):
        return 'bridge %s in %s' % (self.iface.name, where(self.iface.ns))


def plan_bridge(plan, reader, bridge):
    iface = bridge.iface
    require_namespace(reader, iface.ns, bridge.param + '.netns', bridge.state)
    view = reader.view(iface.ns)
    claim(view, iface.name, bridge.param + '.name')
    link = view.links.get(iface.name)
    label = 'bridge'
    if link is not None and link.kind != 'bridge':
        if not bridge.replace or bridge.state == 'absent':
            raise PlanError('%s.name=%r in %s is %s, not a bridge: refusing to %s it%s' % (
                bridge.param, iface.name, where(iface.ns), _describe(link),
                'delete' if bridge.state == 'absent' else 'take over',
                '' if bridge.state == 'absent' else '; set replace: true to delete and re-create it'))
        before = link_state(link, view)
        delete_link(plan, view, link, 'delete %s in %s (replace: %s)' % (iface.name, where(iface.ns), _describe(link)))
        plan.record('%s %s %s' % (label, ns_key(iface.ns), iface.name + ' (replaced)'), before, None)
        link = None
    if bridge.state == 'absent':
        before = link_state(link, view)
        if link is not None and iface.ns not in reader.removing:  # else it goes with its namespace
            # after the namespaces a run removes: a bridge that still has a thousand ports costs
            # the kernel half a second to delete, an empty one nothing
            delete_link(plan, view, link, 'delete bridge %s in %s' % (iface.name, where(iface.ns)),
                        stage=P.BRIDGE_DELETE)
        plan.record('%s %s %s' % (label, ns_key(iface.ns), iface.name), before, None)
        return None
    if link is None:
        summary = 'create bridge %s in %s' % (iface.name, where(iface.ns))
        plan.add(P.LINK_CREATE, iface.ns, summary, requests=lambda r: link_request(
            _codec.RTM_NEWLINK, _codec.NLM_F_CREATE | _codec.NLM_F_EXCL, summary, name=iface.name, mtu=iface.mtu,
            info=_codec.kind_info('bridge')))
    after = configure(plan, iface, link, view, 'bridge', label)
    return dict(after, name=iface.name, netns=iface.ns)


def _owned(reader, namespaces, kind, declared, match=None):
    """(ns, link) of each link of `kind` this collection made in `namespaces`, not in `declared`;
    match(name), if given, narrows the choice."""
    found = []
    for ns in reader.scope(namespaces):
        for link in sorted(reader.view(ns).links.values(), key=lambda link: link.index):
            if link.kind == kind and link.alias == OWNER_ALIAS and (ns, link.name) not in declared and \
                    (match is None or match(link.name)):
                found.append((ns, link))
    return found


def purge_veths(reader, pairs, match=None):
    """Veths we made, on the host and in the namespaces the call names, that it does not declare.
    Deleting one end deletes its peer, so each pair is listed once."""
    declared = set()
    for pair in pairs:
        declared.update([pair.end.key, pair.peer.key])
    namespaces = [iface.ns for pair in pairs for iface in (pair.end, pair.peer)]
    extra, chosen = [], []
    doomed = {}  # ns -> reader.removed_ids(ns)
    for ns, link in _owned(reader, namespaces, 'veth', declared, match):
        # a pair with an end in a namespace the run removes goes with it, in the kernel's batch:
        # deleting it on its own first would cost a synchronous unregister per pair
        if link.peer_nsid is not None and reader.removing:
            if ns not in doomed:
                doomed[ns] = reader.removed_ids(ns)
            if link.peer_nsid in doomed[ns]:
                continue
        # the other end of a pair already listed (same namespace: by index; another: index both ways)
        if any(link.peer_index == other.index and other.peer_index == link.index and
               (other_ns == ns) == (link.peer_nsid is None) for other_ns, other in chosen):
            continue
        chosen.append((ns, link))
        extra.append(VethPair.unlisted(ns, link.name))
    return extra


def purge_bridges(reader, bridges, match=None):
    declared = set(bridge.key for bridge in bridges)
    namespaces = [bridge.iface.ns for bridge in bridges]
    return [Bridge({'name': link.name, 'netns': ns, 'state': 'absent'}, 'purge')
            for ns, link in _owned(reader, namespaces, 'bridge', declared, match)]


def plan_veths(plan, reader, pairs):
    # pairs whose ends both exist in different namespaces need the id one knows the other by:
    # ask for all of them at once
    wanted = {}
    for pair in pairs:
        a, b = pair.end, pair.peer
        if b is None or a.ns == b.ns or not (reader.will_exist(a.ns) and reader.will_exist(b.ns)):
            continue
        if reader.exists(a.ns) and reader.exists(b.ns) and a.name in reader.view(a.ns).links \
                and b.name in reader.view(b.ns).links:
            wanted.setdefault(a.ns, []).append(b.ns)
    for from_ns, targets in wanted.items():
        reader.prefetch_nsids(from_ns, targets)
    return [plan_veth(plan, reader, pair) for pair in pairs]


def plan_bridges(plan, reader, bridges):
    return [plan_bridge(plan, reader, bridge) for bridge in bridges]
