# -*- coding: utf-8 -*-
# Copyright: linuxnet.netns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
# Do not use this from other collections or standalone plugins/modules!
"""Routes in a namespace or on the host. A route is identified as the kernel identifies it:
namespace, destination, table and metric; gateway and device are what it says."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import socket

from ansible_collections.linuxnet.netns.plugins.module_utils import _codec as C
from ansible_collections.linuxnet.netns.plugins.module_utils import _plan as P
from ansible_collections.linuxnet.netns.plugins.module_utils import _validate as V
from ansible_collections.linuxnet.netns.plugins.module_utils import _transport
from ansible_collections.linuxnet.netns.plugins.module_utils._common import PlanError, fail, ns_key, require_namespace, where
from ansible_collections.linuxnet.netns.plugins.module_utils._kind import Kind, boot_in_namespace
from ansible_collections.linuxnet.netns.plugins.module_utils._common import info_entry

OPTIONS = dict(
    dest=dict(type='str', default='default'),
    gateway=dict(type='str'),
    dev=dict(type='str'),
    metric=dict(type='int'),
    table=dict(type='int', default=254),
    onlink=dict(type='bool', default=False),
    netns=dict(type='str'),
    state=dict(type='str', choices=['present', 'absent'], default='present'),
)


class RouteSpec(object):
    def __init__(self, spec, param):
        self.item = spec
        self.param = param
        self.state = spec.get('state') or 'present'
        self.ns = V.netns_name(spec.get('netns'), param + '.netns')
        self.dest = V.prefix(spec.get('dest') or 'default', param + '.dest')
        family = self.dest.version
        self.gateway = V.address(spec['gateway'], param + '.gateway') if spec.get('gateway') else None
        if spec.get('dest') in ('default', None) and self.gateway is not None and self.gateway.version == 6:
            # "default" takes the family of its gateway
            self.dest = V.prefix('::/0', param + '.dest')
            family = 6
        if self.gateway is not None:
            V.same_family(param + '.gateway', self.gateway, family, param + '.dest', self.dest)
        self.dev = V.ifname(spec['dev'], param + '.dev') if spec.get('dev') else None
        metric = spec.get('metric')
        if metric is not None:
            V.integer(metric, param + '.metric', 0, 0xffffffff, 'give a metric from 0 to 4294967295, or omit it')
        # the kernel stores an IPv6 route without a metric, or with metric 0, as metric 1024; say so
        # up front so that a re-run finds the route it made
        self.metric = metric if metric else (1024 if family == 6 else 0)
        # not `or`: table 0 is RT_TABLE_UNSPEC, which the kernel would quietly turn into main
        table = spec.get('table') if spec.get('table') is not None else C.RT_TABLE_MAIN
        fix = 'give a table id from 1 to 4294967295 other than 255 (local); 254 is main, the default'
        V.integer(table, param + '.table', 1, 0xffffffff, fix)
        if table == C.RT_TABLE_LOCAL:
            fail(param + '.table', table, "is the kernel's local table (its own routes to the host's addresses)", fix)
        self.table = table
        self.onlink = bool(spec.get('onlink'))
        if self.state == 'present' and self.gateway is None and self.dev is None:
            fail(param + '.gateway', None, 'and dev are both missing', 'a route needs a gateway, a dev or both')
        if self.gateway is not None and self.gateway.version == 6 and self.gateway.is_link_local and not self.dev:
            fail(param + '.dev', None, 'is required with the link-local gateway %s' % self.gateway,
                 'name the interface the gateway is on')

    @property
    def key(self):
        return (self.ns, self.dest, self.table, self.metric)

    def describe(self):
        return self.label()

    def label(self):
        text = 'route %s %s' % (ns_key(self.ns), 'default' if self.dest.prefixlen == 0 else self.dest)
        if self.dest.version == 6 and self.dest.prefixlen == 0:
            text += ' (IPv6)'
        if self.table != C.RT_TABLE_MAIN:
            text += ' table %d' % self.table
        if self.metric:
            text += ' metric %d' % self.metric
        return text


def _route_state(route, view, with_dev):
    """What a route says, as the diff shows it. The device counts only when the spec names one: the
    kernel fills in the device of a gateway route itself, and reading it would cost a links dump."""
    if route is None:
        return None
    state = {}
    if route.gateway is not None:
        state['gateway'] = str(route.gateway)
    if with_dev and route.oif is not None:
        state['dev'] = view.link_name(route.oif)
    return state


def purge_routes(reader, specs, match=None):
    """Routes this collection made (protocol RTPROT_LINUXNET), on the host and in the namespaces the
    call names, that it does not declare, as absent. match(dest), if given, narrows the choice."""
    declared = set(spec.key for spec in specs)
    extra = []
    for ns in reader.scope(spec.ns for spec in specs):
        for route in reader.view(ns).routes:
            if route.proto != C.RTPROT_LINUXNET or route.rtype != C.RTN_UNICAST:
                continue
            dest = route.dest
            if (ns, dest, route.table, route.metric) in declared or (match is not None and not match(dest)):
                continue
            extra.append(RouteSpec({'netns': ns, 'dest': str(dest), 'table': route.table, 'metric': route.metric,
                                    'state': 'absent'}, 'purge'))
    return extra


def _request(msg_type, flags, spec, oif, what, ignore=()):
    present = msg_type == C.RTM_NEWROUTE
    # a purge deletes only a route with our protocol: the kernel matches on it, so another route
    # of the same key (`ip route append`, or a daemon's put in place since the read) stays
    proto = C.RTPROT_LINUXNET if present or spec.param == 'purge' else 0
    data = C.route_message(
        msg_type, flags, socket.AF_INET if spec.dest.version == 4 else socket.AF_INET6, spec.dest.prefixlen,
        spec.table, proto=proto, rtype=C.RTN_UNICAST if present else 0,
        scope=(C.RT_SCOPE_UNIVERSE if spec.gateway is not None else C.RT_SCOPE_LINK) if present else 0,
        rtm_flags=C.RTNH_F_ONLINK if spec.onlink and present else 0,
        dst=spec.dest.network_address if spec.dest.prefixlen else None,
        gateway=spec.gateway if present else None, oif=oif if present else None, metric=spec.metric)
    return _transport.Request(data, what, ignore)


def _family(spec):
    return socket.AF_INET if spec.dest.version == 4 else socket.AF_INET6


def plan_routes(plan, reader, specs):
    results = []
    for spec in specs:
        require_namespace(plan, reader, spec.ns, spec.param + '.netns', spec.state)
        view = reader.view(spec.ns)
        wanted = C.route_key(spec.dest, spec.table, spec.metric)
        current = next((route for route in view.routes_of(_family(spec)) if route.key == wanted), None)
        says = _route_state(current, view, spec.dev is not None)
        ours = current is not None and current.proto == C.RTPROT_LINUXNET
        before = None if says is None else dict(says, ours=ours)
        if spec.state == 'absent':
            if current is not None and spec.ns not in reader.removing:  # else it goes with its namespace
                summary = 'delete %s' % spec.label()
                plan.add(P.ROUTE_DELETE, spec.ns, summary, requests=lambda r, s=spec, m=summary:
                         _request(C.RTM_DELROUTE, 0, s, None, m, ignore=(errno.ESRCH,)))
            plan.record(spec.label(), before, None)
            results.append({'netns': spec.ns, 'dest': str(spec.dest), 'table': spec.table, 'metric': spec.metric,
                            'state': 'absent'})
            continue
        oif = None
        if spec.dev is not None:
            link = view.links.get(spec.dev)
            if link is None and (spec.dev in view.removed or not plan.assume(
                    ('link', spec.ns, spec.dev), 'interface %s does not exist in %s; assumed created by an '
                    'earlier task (%s=%r)' % (spec.dev, where(spec.ns), (spec.param + '.dev').lstrip('.'), spec.dev))):
                raise PlanError('%s.dev=%r: no such interface in %s' % (spec.param, spec.dev, where(spec.ns)))
            if link is None:
                # its index is asked for at apply time, as for a link this run makes
                link = view.expect_link(spec.dev, None, {})
            oif = link.index
        if spec.gateway is not None and not spec.onlink and not spec.gateway.is_link_local:
            connected = [a for a in view.addresses_of(_family(spec)) if oif is None or a.index == oif]
            if not any(a.contains(spec.gateway) for a in connected):
                nets = ', '.join(sorted(set(str(a.iface.network) for a in view.addresses
                                            if oif is None or a.index == oif))) or 'none'
                if not plan.assume(('gateway', spec.ns, spec.dev, spec.gateway), (
                        'gateway %s is not in any subnet connected %sin %s (connected: %s); assumed an earlier '
                        'task adds an address in its subnet (%s=%r)' % (
                            spec.gateway, 'to %s ' % spec.dev if spec.dev else '', where(spec.ns), nets,
                            (spec.param + '.gateway').lstrip('.'), str(spec.gateway)))):
                    raise PlanError('%s.gateway=%r is not in any subnet connected %s in %s (connected: %s); add an '
                                    'address in that subnet first, or set onlink: true' % (
                                        spec.param, str(spec.gateway), 'to ' + spec.dev if spec.dev else '',
                                        where(spec.ns), nets))
        after = {}
        if spec.gateway is not None:
            after['gateway'] = str(spec.gateway)
        if spec.dev is not None:
            after['dev'] = spec.dev
        # Written routes carry our protocol (their mark). A route that already says what is
        # declared is left as it is, whoever made it: rewriting it only to mark it would drop what
        # the plan does not model (a preferred source, metrics, an expiry) from a daemon's route.
        rewrite = says != after
        after['ours'] = ours or rewrite
        if rewrite:
            flags = C.NLM_F_CREATE | (C.NLM_F_REPLACE if current is not None else C.NLM_F_EXCL)
            summary = '%s %s via %s' % ('replace' if current is not None else 'add', spec.label(),
                                        ' dev '.join(x for x in (after.get('gateway'), spec.dev) if x))
            # a negative oif: a link this run makes, looked up at apply time
            plan.add(P.ROUTE_ADD, spec.ns, summary, requests=lambda r, s=spec, o=oif, f=flags, m=summary:
                     _request(C.RTM_NEWROUTE, f, s, o if o is None or o > 0 else r.index(s.ns, s.dev), m))
        plan.record(spec.label(), before, after)
        results.append(dict(after, netns=spec.ns, dest=str(spec.dest), table=spec.table, metric=spec.metric,
                            state='present'))
    return results


FE80 = b'\xfe\x80' + bytes(6)


def _link_local_route(route):
    """fe80::/64, which the kernel adds for every IPv6 interface: left out, like link-local addresses
    (a host with a thousand veths has a thousand of them)."""
    return route.family == socket.AF_INET6 and route.dst_len == 64 and route.dst[:8] == FE80 and \
        route.proto == C.RTPROT_KERNEL


def report_routes(reader, views, query, result):
    """netns_info: each namespace's routes (with `routes: true`)."""
    if not query.routes:
        return
    for ns, view in views.items():
        info_entry(result, ns)['routes'] = [dict(
            dest=str(route.dest), gateway=str(route.gateway) if route.gateway else None,
            dev=view.link_name(route.oif), metric=route.metric, table=route.table,
            ours=route.proto == C.RTPROT_LINUXNET)
            for route in view.routes if not _link_local_route(route)]


KIND = Kind('netns_route', 'routes', 'routes', None, OPTIONS, RouteSpec, plan_routes, order=40,
            phrase='a route', purge=purge_routes, select='prefix', report=report_routes,
            purge_doc=('Prefixes; a route is purged when its destination lies inside one of them '
                       '(V(10.200.0.0/16) takes C(10.200.3.0/24) and C(10.200.0.0/16), not C(0.0.0.0/0)). '
                       'V(0.0.0.0/0) and V(::/0) select every route of their family; the word V(default) is '
                       'refused here, being ambiguous.'), boot=boot_in_namespace)
