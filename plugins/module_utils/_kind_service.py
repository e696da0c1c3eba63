# -*- coding: utf-8 -*-
# Copyright: linuxnet.netns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
# Do not use this from other collections or standalone plugins/modules!
"""An existing systemd service placed into a named network namespace: a drop-in of ours,
/etc/systemd/system/SERVICE.d/50-linuxnet-netns.conf, with systemd's own NetworkNamespacePath=
(v242+) and, so that the service resolves names as `ip netns exec` would, the namespace's resolver
file bound over /etc/resolv.conf. The service's own unit file is never touched.

The drop-in orders the service after the boot unit that re-creates the saved namespaces: without
it, a service started at boot would find no /run/netns/NS and fail."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import posixpath

from ansible_collections.linuxnet.netns.plugins.module_utils import _plan as P
from ansible_collections.linuxnet.netns.plugins.module_utils import _systemd
from ansible_collections.linuxnet.netns.plugins.module_utils import _validate as V
from ansible_collections.linuxnet.netns.plugins.module_utils._common import (
    PlanError, fail, info_entry, require_namespace, where)
from ansible_collections.linuxnet.netns.plugins.module_utils._files import try_restart
from ansible_collections.linuxnet.netns.plugins.module_utils._kind import Kind, boot_never

OPTIONS = dict(
    service=dict(type='str'),
    netns=dict(type='str'),
    resolv_conf=dict(type='bool', default=True),
    restart=dict(type='bool', default=False),
    state=dict(type='str', choices=['present', 'absent'], default='present'),
)

DROPIN = '50-linuxnet-netns.conf'
HEADER = '# Managed by linuxnet.netns.netns_service; edits here are overwritten.\n'
NETNS_PATH = 'NetworkNamespacePath='
# BindReadOnlyPaths= splits its words on ':' and unquotes them ('"', "'", '\\'): a namespace name
# holding one of these would be read as another path
UNQUOTED = ':"\'\\'


def dropin_path(service):
    return posixpath.join(_systemd.UNIT_DIR, service + '.d', DROPIN)


def _escape(ns):
    # both settings expand specifiers: a '%' of the name is written '%%'
    return ns.replace('%', '%%')


def render(ns, resolv_conf):
    lines = [HEADER.rstrip('\n'), '[Unit]', 'Wants=%s' % _systemd.BOOT_UNIT, 'After=%s' % _systemd.BOOT_UNIT, '',
             '[Service]', '%s/run/netns/%s' % (NETNS_PATH, _escape(ns))]
    if resolv_conf:
        # '-': no resolver file of the namespace's own is no failure (the host's stays in view)
        lines.append('BindReadOnlyPaths=-/etc/netns/%s/resolv.conf:/etc/resolv.conf' % _escape(ns))
    return '\n'.join(lines) + '\n'


def placed_in(text):
    """The namespace a drop-in of ours places its service in (None: not ours, or no such line)."""
    if text is None or not text.startswith(HEADER):
        return None
    for line in text.splitlines():
        if line.startswith(NETNS_PATH + '/run/netns/'):
            return line[len(NETNS_PATH + '/run/netns/'):].replace('%%', '%')
    return None


class Service(object):
    def __init__(self, spec, param):
        self.item = spec
        self.param = param
        self.name = _systemd.service_name(spec.get('service'), param + '.service')
        self.state = spec.get('state') or 'present'
        self.ns = V.netns_name(spec.get('netns'), param + '.netns')
        self.resolv_conf = spec.get('resolv_conf', True) is not False
        self.restart = bool(spec.get('restart'))
        if self.state == 'present' and self.ns is None:
            fail(param + '.netns', None, 'is required: a service is placed into a named namespace',
                 'give the namespace (as in ip netns list), or state: absent to take the service out')
        if self.state == 'present' and self.resolv_conf and any(c in UNQUOTED for c in self.ns):
            fail(param + '.netns', self.ns, 'holds one of %s, which BindReadOnlyPaths= would read as a separator '
                 'or quoting' % ' '.join(UNQUOTED), 'use resolv_conf: false, or a namespace name without them')
        self.path = dropin_path(self.name)

    @property
    def key(self):
        return self.name

    def describe(self):
        return 'service %s' % self.name


def _try_restart(plan, name):
    def call(session):
        problem = try_restart(name)
        if problem:
            # the drop-in is in place and a re-run would not restart again: said loudly, not lost
            plan.warnings.append('systemctl try-restart --no-block %s failed (%s): the service runs in its new namespace only '
                                 'once it starts; see systemctl status %s' % (name, problem, name))
    return call


def plan_services(plan, reader, services):
    results = []
    restarts = []
    changed = False
    for svc in services:
        existing = reader.text_file(svc.path)
        ours = existing is None or existing.startswith(HEADER)
        result = {'service': svc.name, 'state': svc.state, 'dropin': svc.path}
        if svc.state == 'absent':
            if ours:
                changed |= _systemd.delete(plan, reader, svc.path, 'take %s out of its namespace' % svc.name,
                                           prune=(posixpath.dirname(svc.path),))
            else:
                # a teardown must not fail on someone else's file, nor remove it
                plan.warnings.append('%s: %s was not written by linuxnet.netns (no "Managed by" first line); left as '
                                     'it is' % (svc.param.lstrip('.') or 'service', svc.path))
            result['netns'] = None
            results.append(result)
            continue
        unit = _systemd.unit_file(reader, svc.name)
        if unit is None and not plan.assume(('service', svc.name), 'service %s not found; assumed installed by an '
                                            'earlier task (%s=%r)' % (svc.name, (svc.param + '.service').lstrip('.'),
                                                                      svc.item.get('service'))):
            raise PlanError('%s=%r: systemd has no unit %s (no file in %s)%s; install the service first, or fix its '
                            'name' % ((svc.param + '.service').lstrip('.'), svc.item.get('service'), svc.name,
                                      ', '.join(_systemd.SEARCH_PATH),
                                      '' if _systemd.template_of(svc.name) is None else
                                      ' nor its template %s' % _systemd.template_of(svc.name)))
        require_namespace(plan, reader, svc.ns, svc.param + '.netns')
        if not ours:
            raise PlanError('%s=%r: %s exists and was not written by linuxnet.netns (no "Managed by" first line); '
                            'move it aside or remove it, then run again' % (
                                (svc.param + '.service').lstrip('.'), svc.item.get('service'), svc.path))
        if _systemd.write(plan, reader, svc.path, render(svc.ns, svc.resolv_conf),
                          'place %s in %s' % (svc.name, where(svc.ns))):
            changed = True
            if svc.restart:
                restarts.append(svc.name)
        result.update(netns=svc.ns, resolv_conf=svc.resolv_conf, unit_file=unit,
                      restarted=svc.name in restarts and _systemd.running(reader))
        results.append(result)
    if changed:
        _systemd.reload(plan, reader)
        if _systemd.running(reader):
            for name in restarts:
                plan.add(P.SYSTEMD_RESTART, None, 'systemctl try-restart --no-block %s' % name, call=_try_restart(plan, name))
    return results


def _ours(reader):
    """{service: namespace} of the drop-ins of ours under /etc/systemd/system."""
    found = {}
    for entry in reader.listdir(_systemd.UNIT_DIR) or ():
        if entry.endswith('.service.d'):
            ns = placed_in(reader.text_file(posixpath.join(_systemd.UNIT_DIR, entry, DROPIN)))
            if ns is not None:
                found[entry[:-len('.d')]] = ns
    return found


def purge_services(reader, services, match=None):
    """The services placed by a drop-in of ours that the call does not declare, as absent.
    match(namespace) narrows the choice to the services placed in the namespaces it selects: what
    owns namespaces by their names (the bridge_network role) owns the services placed there."""
    declared = set(svc.name for svc in services)
    extra = []
    for name, ns in sorted(_ours(reader).items()):
        if name in declared or (match is not None and not match(ns)):
            continue
        extra.append(Service({'service': name, 'state': 'absent'}, 'purge'))
    return extra


def report_services(reader, views, query, result):
    """netns_info: the services each namespace read has placed in it (drop-ins of ours), and on the
    host all of them by namespace, those of namespaces that do not exist included."""
    placed = _ours(reader)
    by_ns = {}
    for name, ns in sorted(placed.items()):
        by_ns.setdefault(ns, []).append(name)
    for ns in views:
        if ns is not None:
            info_entry(result, ns)['services'] = by_ns.get(ns, [])
    info_entry(result, None)['services'] = by_ns


KIND = Kind('netns_service', 'services', 'services', 'service', OPTIONS, Service, plan_services, order=75,
            phrase='a systemd service placed in a namespace', report=report_services,
            purge=purge_services, select='name',
            purge_doc=('Python regular expressions on namespace names; a service this collection placed is taken '
                       'out of its namespace when one matches the whole name of that namespace '
                       '(V(lnns[0-9]+): the services placed in C(lnns1), C(lnns2) ...).'),
            # the drop-in is a file: it survives the reboot, and systemd reads it before any unit runs
            boot=boot_never)
