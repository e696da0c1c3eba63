# -*- coding: utf-8 -*-
# Copyright: linuxnet.netns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
# Do not use this from other collections or standalone plugins/modules!
"""The veth pair kind: two ends, each on the host or in a namespace, addressed and up; deleting one
end deletes the other. netns_info pairs the ends it finds across namespaces."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.linuxnet.netns.plugins.module_utils import _codec
from ansible_collections.linuxnet.netns.plugins.module_utils import _plan as P
from ansible_collections.linuxnet.netns.plugins.module_utils._common import PlanError, fail, ns_key, require_namespace, where
from ansible_collections.linuxnet.netns.plugins.module_utils._kind import Kind
from ansible_collections.linuxnet.netns.plugins.module_utils._links import (
    IFACE_OPTIONS, Iface, claim, configure, delete_link, describe_link, link_request, link_state, owned)

END_OPTIONS = dict(IFACE_OPTIONS, master=dict(type='str'), isolated=dict(type='bool', default=False),
                   ipv6=dict(type='bool'))
PEER_OPTIONS = dict(END_OPTIONS, name=dict(type='str', required=True))
OPTIONS = dict(
    END_OPTIONS,
    peer=dict(type='dict', options=PEER_OPTIONS),
    replace=dict(type='bool', default=False),
    state=dict(type='str', choices=['present', 'absent'], default='present'),
)


class VethPair(object):
    def __init__(self, spec, param):
        self.item = spec
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
        pair.item = {'name': name, 'netns': ns, 'state': 'absent'}
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
        require_namespace(plan, reader, iface.ns, iface.param + '.netns', pair.state)
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
                    iface.param, iface.name, where(iface.ns), describe_link(link)))
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
                        iface.name, where(iface.ns), describe_link(link), other.name, where(other.ns)))
            if not pair.replace:
                raise PlanError('%s: %s. Set replace: true to delete and re-create it, or choose other '
                                'names.' % (pair.param, '; '.join(problems)))
            for iface, link, view in ((a, a_link, a_view), (b, b_link, b_view)):
                if link is not None:
                    delete_link(plan, view, link,
                                'delete %s in %s (replace: %s)' % (iface.name, where(iface.ns), describe_link(link)))
            a_link = b_link = None

    made_up = False
    if a_link is None:
        summary = 'create veth %s in %s with peer %s in %s' % (a.name, where(a.ns), b.name, where(b.ns))
        # The first end comes up with the pair, the peer later (configure): no carrier before the
        # peer's IPv6 switch (LINK_IPV6) and its own. Up by a message of its own, each host end of
        # a p2p network cost the kernel one more walk of all its ids of other namespaces
        # (peernet2id, for the message that tells listeners about it): a second of ten thousand.
        made_up = a.up is True
        summaries = [summary] + (['set %s up in %s' % (a.name, where(a.ns))] if made_up else [])

        def create(resolver, summary=summary, up=made_up or None):
            info = _codec.veth_info(b.name, b.mtu, resolver.ns_fd(b.ns) if b.ns != a.ns else None)
            return link_request(_codec.RTM_NEWLINK, _codec.NLM_F_CREATE | _codec.NLM_F_EXCL, summary,
                                name=a.name, mtu=a.mtu, info=info, up=up)
        plan.add(P.LINK_CREATE, a.ns, summaries, requests=create)
    after_a = configure(plan, a, a_link, a_view, 'veth', label, made_up=made_up)
    after_b = configure(plan, b, b_link, b_view, 'veth', label)
    return {'name': a.name, 'netns': a.ns, 'peer': dict(after_b, name=b.name, netns=b.ns),
            **after_a}


def purge_veths(reader, pairs, match=None):
    """Veths we made, on the host and in the namespaces the call names, that it does not declare.
    Deleting one end deletes its peer, so each pair is listed once."""
    declared = set()
    for pair in pairs:
        declared.update([pair.end.key, pair.peer.key])
    namespaces = [iface.ns for pair in pairs for iface in (pair.end, pair.peer)]
    extra, chosen = [], []
    doomed = {}  # ns -> reader.removed_ids(ns)
    for ns, link in owned(reader, namespaces, 'veth', declared, match):
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
    _check_bridge_ports(reader, pairs)
    return [plan_veth(plan, reader, pair) for pair in pairs]


# A bridge numbers its ports in 10 bits, 0 reserved (the kernel's BR_MAX_PORTS): its 1024th port is
# refused with EXFULL ("Exchange full") - half-way through a run, so it is refused here, before.
BRIDGE_MAX_PORTS = 1023


def _check_bridge_ports(reader, pairs):
    """Refuse a call after which a bridge would have more ports than the kernel allows: its ports
    now, less the interfaces the call declares (their place is what the call says) and those that
    go with a namespace the call removes, plus the declared ports."""
    declared = {}  # (ns, bridge) -> names of the declared interfaces on it
    named = {}  # ns -> names the call declares there
    for pair in pairs:
        for iface in pair.ifaces():
            named.setdefault(iface.ns, set()).add(iface.name)
            if pair.state == 'present' and iface.master is not None and reader.will_exist(iface.ns):
                declared.setdefault((iface.ns, iface.master), set()).add(iface.name)
    # per namespace, once a run however many bridges it holds (the role's segment: up to 24): its
    # links by bridge, in one pass over them, and the ids of the namespaces the run removes
    ports_by_master, doomed_ids = {}, {}
    for (ns, bridge), names in sorted(declared.items(), key=lambda item: (item[0][0] or '', item[0][1])):
        if len(names) <= BRIDGE_MAX_PORTS and not reader.exists(ns):
            continue
        ports = set(names)
        if reader.exists(ns):
            view = reader.view(ns)
            master = view.links.get(bridge)
            if master is not None and master.index > 0:
                if ns not in ports_by_master:
                    grouped = ports_by_master[ns] = {}
                    for link in view.links.values():
                        if link.master:
                            grouped.setdefault(link.master, []).append(link)
                current = ports_by_master[ns].get(master.index, ())
                if len(current) + len(names) <= BRIDGE_MAX_PORTS:
                    continue  # whatever moves, it fits
                if ns not in doomed_ids:
                    doomed_ids[ns] = reader.removed_ids(ns) if reader.removing else set()
                doomed = doomed_ids[ns]
                ports.update(link.name for link in current if link.name not in named.get(ns, ())
                             and not (link.peer_nsid is not None and link.peer_nsid in doomed))
        if len(ports) > BRIDGE_MAX_PORTS:
            raise PlanError('bridge %s in %s would have %d ports after this task (%d declared on it); the kernel takes at '
                            'most %d a bridge (BR_MAX_PORTS) and would refuse the rest half-way: spread the ports over '
                            'more bridges' % (bridge, where(ns), len(ports), len(names), BRIDGE_MAX_PORTS))


def pair_veths(reader, views):
    """Match veth ends across namespaces: by index and peer index both ways, asking the kernel for
    namespace ids only when two candidates would match (indexes repeat across namespaces)."""
    by_index = {}
    for ns, view in views.items():
        for link in view.links.values():
            if link.kind == 'veth':
                by_index.setdefault(link.index, []).append((ns, link))
    pairs, seen = [], set()
    for ns, view in views.items():
        for link in view.links.values():
            if link.kind != 'veth' or (ns, link.name) in seen or link.peer_index is None:
                continue
            candidates = [(other_ns, other) for other_ns, other in by_index.get(link.peer_index, [])
                          if other.peer_index == link.index and (other_ns, other.name) != (ns, link.name)
                          and (other_ns == ns) == (link.peer_nsid is None)]
            if len(candidates) > 1:
                candidates = [(other_ns, other) for other_ns, other in candidates
                              if other_ns != ns and reader.nsid(ns, other_ns) == link.peer_nsid]
            peer = {'name': None, 'netns': None, 'index': link.peer_index, 'outside': True}
            if len(candidates) == 1:
                other_ns, other = candidates[0]
                seen.add((other_ns, other.name))
                peer = {'name': other.name, 'netns': other_ns}
            seen.add((ns, link.name))
            pairs.append({'name': link.name, 'netns': ns, 'peer': peer})
    return pairs


def report_pairs(reader, views, query, result):
    """netns_info: the veth pairs, their ends matched across namespaces (with `veth_pairs: true`)."""
    result['veth_pairs'] = pair_veths(reader, views) if query.veth_pairs else []


KIND = Kind('veth', 'pairs', 'pairs', 'name', OPTIONS, VethPair, plan_veths, order=30,
            phrase='a veth pair', purge=purge_veths, select='name', report=report_pairs,
            purge_doc=("Regular expressions on the whole name of the pair's end on the host (or in a namespace "
                       'O(pairs) names), as for O(purge_match.namespaces). Deleting one end deletes the pair.'))
