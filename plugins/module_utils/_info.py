# -*- coding: utf-8 -*-
# Copyright: linuxnet.netns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
# Do not use this from other collections or standalone plugins/modules!
"""Read-only facts: namespaces, interfaces, addresses, routes, veth pairs across namespaces,
bridges and their ports, our NAT rules, forwarding. One dump per namespace and kind."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.linuxnet.netns.plugins.module_utils import _transport
from ansible_collections.linuxnet.netns.plugins.module_utils import _validate as V
from ansible_collections.linuxnet.netns.plugins.module_utils._common import OWNER_ALIAS, PlanError

HOST = None

# netns_info's options (the module, and a run without Ansible's module wrapper: _direct)
ARGUMENT_SPEC = dict(
    netns=dict(type='list', elements='str'),
    routes=dict(type='bool', default=True),
    nat=dict(type='bool', default=True),
    netns_details=dict(type='bool', default=True),
    veth_pairs=dict(type='bool', default=True),
    bridges=dict(type='bool', default=True),
    bridge_ports=dict(type='bool', default=True),
    saved_plans=dict(type='str', choices=['none', 'list', 'drift'], default='drift'),
)


def prepare(params):
    """netns_info's read for these (validated) arguments: read(plan, reader) -> result, for
    _run.run(read_only=True). Raises ValidationError naming the argument."""
    # imported here: _saved and the kinds stand beside this file, and only a run needs them
    from ansible_collections.linuxnet.netns.plugins.module_utils import _kinds
    from ansible_collections.linuxnet.netns.plugins.module_utils import _saved
    query = InfoQuery(params)
    saved = params['saved_plans']

    def read(plan, reader):
        result = gather(reader, query, _kinds.KINDS)
        if saved != 'none':
            result['saved_plans'] = _saved.report(reader.session, saved == 'drift')
        return result
    return read


def _interface(link, view):
    item = {'index': link.index, 'kind': link.kind, 'up': link.up, 'mtu': link.mtu,
            'addresses': sorted(str(a) for a in link.addresses), 'ours': link.alias == OWNER_ALIAS,
            'ipv6': link.ipv6}
    if link.master:
        item['master'] = view.link_name(link.master)
    return item


def _bridge_port(link, view):
    master = view.by_index.get(link.master) if link.master else None
    return master is not None and master.kind == 'bridge'


def gather(reader, query, kinds):
    """What netns_info returns, for an InfoQuery: the namespaces, and each namespace's interfaces;
    then what each kind reports of itself (Kind.report: routes, bridges, veth pairs, NAT rules,
    forwarding)."""
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
    result = {'namespaces': names, 'host': None, 'netns': {}}
    for ns, view in views.items():
        entry = {
            'lo_up': bool(view.links.get('lo') and view.links['lo'].up),
            'interfaces': dict((link.name, _interface(link, view)) for link in view.links.values()
                               if query.bridge_ports or not _bridge_port(link, view)),
        }
        if ns is HOST:
            result['host'] = entry
        else:
            result['netns'][ns] = entry
    for kind in kinds:
        if kind.report is not None:
            kind.report(reader, views, query, result)
    return result


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
