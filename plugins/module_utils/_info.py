# -*- coding: utf-8 -*-
# Copyright: linuxnet.netns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
# Do not use this from other collections or standalone plugins/modules!
"""Read-only facts: namespaces, interfaces, addresses, routes, veth pairs across namespaces,
bridges and their ports, our NAT rules, forwarding. One dump per namespace and kind."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import socket

from ansible_collections.linuxnet.netns.plugins.module_utils import _codec
from ansible_collections.linuxnet.netns.plugins.module_utils import _sysctl
from ansible_collections.linuxnet.netns.plugins.module_utils import _transport
from ansible_collections.linuxnet.netns.plugins.module_utils import _validate as V
from ansible_collections.linuxnet.netns.plugins.module_utils._common import OWNER_ALIAS, PlanError

HOST = None
FE80 = b'\xfe\x80' + bytes(6)


def _forwarding(session, ns):
    def read():
        return dict((family, _sysctl.read_proc(path)) for family, (_key, path) in _sysctl.KEYS.items())
    return session.run_in(ns, read)


def _interface(link, view):
    item = {'index': link.index, 'kind': link.kind, 'up': link.up, 'mtu': link.mtu,
            'addresses': sorted(str(a) for a in link.addresses), 'ours': link.alias == OWNER_ALIAS}
    if link.master:
        item['master'] = view.link_name(link.master)
    return item


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


def _bridge_port(link, view):
    master = view.by_index.get(link.master) if link.master else None
    return master is not None and master.kind == 'bridge'


def _link_local_route(route):
    """fe80::/64, which the kernel adds for every IPv6 interface: left out, like link-local addresses
    (a host with a thousand veths has a thousand of them)."""
    return route.family == socket.AF_INET6 and route.dst_len == 64 and route.dst[:8] == FE80 and \
        route.proto == _codec.RTPROT_KERNEL


def gather(reader, query):
    """What netns_info returns, for an InfoQuery."""
    session = reader.session
    names = sorted(reader.mounted())
    if query.namespaces is not None:
        missing = [name for name in query.namespaces if name not in names]
        if missing:
            raise PlanError('netns=%r: no such network namespace (have: %s)' % (
                missing[0], ', '.join(names) or 'none'))
        names = [name for name in names if name in query.namespaces]
    views = {HOST: reader.view(HOST)}
    # without details, the namespaces are listed by name only: one read of the host, whatever
    # their number
    for name in names if query.details else ():
        view = reader.view(name)
        try:
            view.load()  # now: a namespace removed meanwhile (ip netns del) is left out, not an error
        except _transport.NamespaceError:
            continue
        views[name] = view
    names = [name for name in names if name in views or not query.details]
    result = {'namespaces': names, 'host': None, 'netns': {},
              'veth_pairs': pair_veths(reader, views) if query.veth_pairs else [], 'bridges': [], 'nat': []}
    for ns, view in views.items():
        entry = {
            'lo_up': bool(view.links.get('lo') and view.links['lo'].up),
            'forwarding': _forwarding(session, ns),
            'interfaces': dict((link.name, _interface(link, view)) for link in view.links.values()
                               if query.bridge_ports or not _bridge_port(link, view)),
        }
        if query.routes:
            entry['routes'] = [dict(
                dest=str(route.dest), gateway=str(route.gateway) if route.gateway else None,
                dev=view.link_name(route.oif), metric=route.metric, table=route.table,
                ours=route.proto == _codec.RTPROT_LINUXNET)
                for route in view.routes if not _link_local_route(route)]
        for link in view.links.values() if query.bridges else ():
            if link.kind == 'bridge':
                result['bridges'].append({
                    'name': link.name, 'netns': ns,
                    'ports': sorted(p.name for p in view.links.values() if p.master == link.index)})
        if ns is HOST:
            result['host'] = entry
        else:
            result['netns'][ns] = entry
    if query.nat:
        result['nat'] = nat_rules(session, [HOST] + (names if query.details else []))
    return result


def nat_rules(session, namespaces):
    from ansible_collections.linuxnet.netns.plugins.module_utils import _masq
    return _masq.describe(session, namespaces)


class InfoQuery(object):
    def __init__(self, spec):
        self.namespaces = None
        if spec.get('netns') is not None:
            self.namespaces = [V.netns_name(n, 'netns[%d]' % i) for i, n in enumerate(spec['netns'])]
        self.routes = spec.get('routes', True)
        self.nat = spec.get('nat', True)
        self.details = spec.get('netns_details', True)
        self.veth_pairs = spec.get('veth_pairs', True)
        self.bridges = spec.get('bridges', True)
        self.bridge_ports = spec.get('bridge_ports', True)
