# -*- coding: utf-8 -*-
# Copyright: linuxnet.netns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
# Do not use this from other collections or standalone plugins/modules!
"""The bridge kind: a Linux bridge (like docker0) on the host or in a namespace, addressed and up."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.linuxnet.netns.plugins.module_utils import _codec
from ansible_collections.linuxnet.netns.plugins.module_utils import _plan as P
from ansible_collections.linuxnet.netns.plugins.module_utils._common import PlanError, fail, ns_key, require_namespace, where
from ansible_collections.linuxnet.netns.plugins.module_utils._kind import Kind
from ansible_collections.linuxnet.netns.plugins.module_utils._links import (
    IFACE_OPTIONS, Iface, claim, configure, delete_link, describe_link, link_request, link_state, owned)

OPTIONS = dict(
    IFACE_OPTIONS,
    replace=dict(type='bool', default=False),
    state=dict(type='str', choices=['present', 'absent'], default='present'),
)


class Bridge(object):
    def __init__(self, spec, param):
        self.item = spec
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
    require_namespace(plan, reader, iface.ns, bridge.param + '.netns', bridge.state)
    view = reader.view(iface.ns)
    claim(view, iface.name, bridge.param + '.name')
    link = view.links.get(iface.name)
    label = 'bridge'
    if link is not None and link.kind != 'bridge':
        if not bridge.replace or bridge.state == 'absent':
            raise PlanError('%s.name=%r in %s is %s, not a bridge: refusing to %s it%s' % (
                bridge.param, iface.name, where(iface.ns), describe_link(link),
                'delete' if bridge.state == 'absent' else 'take over',
                '' if bridge.state == 'absent' else '; set replace: true to delete and re-create it'))
        before = link_state(link, view)
        delete_link(plan, view, link, 'delete %s in %s (replace: %s)' % (iface.name, where(iface.ns), describe_link(link)))
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


def purge_bridges(reader, bridges, match=None):
    declared = set(bridge.key for bridge in bridges)
    namespaces = [bridge.iface.ns for bridge in bridges]
    return [Bridge({'name': link.name, 'netns': ns, 'state': 'absent'}, 'purge')
            for ns, link in owned(reader, namespaces, 'bridge', declared, match)]


def plan_bridges(plan, reader, bridges):
    return [plan_bridge(plan, reader, bridge) for bridge in bridges]


def report_bridges(reader, views, query, result):
    """netns_info: the bridges and their ports (with `bridges: true`)."""
    result['bridges'] = []
    for ns, view in views.items() if query.bridges else ():
        for link in view.links.values():
            if link.kind == 'bridge':
                result['bridges'].append({
                    'name': link.name, 'netns': ns,
                    'ports': sorted(p.name for p in view.links.values() if p.master == link.index)})


KIND = Kind('bridge', 'bridges', 'bridges', 'name', OPTIONS, Bridge, plan_bridges, order=20,
            phrase='a bridge', purge=purge_bridges, select='name', report=report_bridges,
            purge_doc="Regular expressions on the bridge's whole name, as for O(purge_match.namespaces).")
