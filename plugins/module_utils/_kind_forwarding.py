# -*- coding: utf-8 -*-
# Copyright: linuxnet.netns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
# Do not use this from other collections or standalone plugins/modules!
"""IP forwarding, per network namespace (each namespace has its own /proc/sys/net), and its
persistence in /etc/sysctl.d for the host."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import tempfile

from ansible_collections.linuxnet.netns.plugins.module_utils import _plan as P
from ansible_collections.linuxnet.netns.plugins.module_utils import _validate as V
from ansible_collections.linuxnet.netns.plugins.module_utils._common import PlanError, fail, ns_key, require_namespace, where
from ansible_collections.linuxnet.netns.plugins.module_utils._kind import Kind
from ansible_collections.linuxnet.netns.plugins.module_utils import _nft_rules
from ansible_collections.linuxnet.netns.plugins.module_utils._common import info_entry

KEYS = {
    'ipv4': ('net.ipv4.ip_forward', '/proc/sys/net/ipv4/ip_forward'),
    'ipv6': ('net.ipv6.conf.all.forwarding', '/proc/sys/net/ipv6/conf/all/forwarding'),
}
DEFAULT_PERSIST_FILE = '/etc/sysctl.d/90-linuxnet-netns.conf'
HEADER = '# Managed by linuxnet.netns.sysctl_forward; edits here are overwritten.\n'


class Forward(object):
    def __init__(self, spec, param):
        self.item = spec
        self.param = param
        self.ns = V.netns_name(spec.get('netns'), param + '.netns')
        self.wanted = dict((family, spec.get(family)) for family in KEYS if spec.get(family) is not None)
        if not self.wanted and spec.get('restrict_to') is None:
            fail(param + '.ipv4', None, 'and ipv6 are both unset', 'set ipv4 and/or ipv6 to true or false')
        self.restrict_to = None
        if spec.get('restrict_to') is not None:
            self.restrict_to = [V.prefix(p, '%s.restrict_to[%d]' % (param, i), allow_default=False)
                                for i, p in enumerate(spec['restrict_to'])]
            V.unique(self.restrict_to, str, param + '.restrict_to')
        self.inbound = None
        if spec.get('inbound_from') is not None:
            if self.restrict_to is None:
                fail(param + '.inbound_from', spec['inbound_from'], 'scopes what restrict_to lets in, but restrict_to '
                     'is not given', 'give restrict_to (the managed prefixes) too')
            self.inbound = [V.prefix(p, '%s.inbound_from[%d]' % (param, i), allow_default=False)
                            for i, p in enumerate(spec['inbound_from'])]
            V.unique(self.inbound, str, param + '.inbound_from')
        self.accept_in_drop_policies = spec.get('accept_in_drop_policies', True) is not False
        self.persist = bool(spec.get('persist'))
        self.persist_file = spec.get('persist_file') or DEFAULT_PERSIST_FILE
        if self.persist and self.ns is not None:
            fail(param + '.persist', True, 'is for the host only (netns=%r): a namespace does not survive a '
                 'reboot, and /etc/sysctl.d applies to the host' % self.ns,
                 'drop persist, or recreate the namespace at boot with this collection')
        if self.persist and (not os.path.isabs(self.persist_file) or not self.persist_file.endswith('.conf')):
            fail(param + '.persist_file', self.persist_file, 'is not an absolute path ending in .conf',
                 'give a path like %s' % DEFAULT_PERSIST_FILE)
        if self.persist and '\0' in self.persist_file:
            # open() would refuse it with a bare ValueError at planning time
            fail(param + '.persist_file', self.persist_file, 'contains a NUL character',
                 'give a path like %s' % DEFAULT_PERSIST_FILE)

    @property
    def key(self):
        return self.ns


def _write_proc(path, value):
    with open(path, 'w') as handle:
        handle.write('1\n' if value else '0\n')


def render(values):
    return HEADER + ''.join('%s = %d\n' % (KEYS[family][0], int(values[family])) for family in sorted(values))


def write_atomic(path, content):
    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        os.makedirs(directory, 0o755)
    fd, tmp = tempfile.mkstemp(prefix='.linuxnet-', dir=directory)
    try:
        with os.fdopen(fd, 'w') as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.rename(tmp, path)
    except Exception:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _write(plan, spec, family, value, stage, summary):
    plan.add(stage, spec.ns, summary, call=lambda session: session.run_in(
        spec.ns, lambda: _write_proc(KEYS[family][1], value)))


def plan_forward(plan, reader, specs):
    results = []
    for spec in specs:
        require_namespace(plan, reader, spec.ns, spec.param + '.netns')
        paths = dict((family, KEYS[family][1]) for family in spec.wanted)
        key = 'forwarding %s' % ns_key(spec.ns)
        if not reader.exists(spec.ns):
            # a namespace this run makes: what the kernel puts there depends on
            # net.core.devconf_inherit_init_net and, for IPv4, on the initial namespace's value
            # (copied by default), neither of which is sure to be readable from here. So the
            # declared value is written, whatever it is, right after the namespace is made;
            # forwarding that is to be scoped stays off until its scope is in place.
            plan.record(key, None, dict((KEYS[f][0], spec.wanted[f]) for f in spec.wanted))
            for family, value in sorted(spec.wanted.items()):
                name = KEYS[family][0]
                if value and spec.restrict_to is not None:
                    _write(plan, spec, family, False, P.NETNS_SETUP,
                           'set %s = 0 in %s (new; on once its forward scope is in place)' % (name, where(spec.ns)))
                _write(plan, spec, family, value, P.SYSCTL if value else P.NETNS_SETUP,
                       'set %s = %d in %s' % (name, int(value), where(spec.ns)))
        else:
            current = reader.proc_values(spec.ns, paths)
            for family, value in current.items():
                if value is None:
                    raise PlanError('%s.%s: %s does not exist in %s (is %s disabled in this kernel?)' % (
                        spec.param, family, paths[family], where(spec.ns), family.upper()))
            plan.record(key, dict((KEYS[f][0], current[f]) for f in current),
                        dict((KEYS[f][0], spec.wanted[f]) for f in spec.wanted))
            for family, value in sorted(spec.wanted.items()):
                if current[family] != value:
                    _write(plan, spec, family, value, P.SYSCTL if value else P.SYSCTL_OFF,
                           'set %s = %d in %s' % (KEYS[family][0], int(value), where(spec.ns)))
        if spec.restrict_to is not None:
            # nf_tables (and so pyroute2) only when the forward scope is managed
            from ansible_collections.linuxnet.netns.plugins.module_utils import _nft_plan
            # other rulesets (Docker's) exist only where the namespace does already
            foreign = spec.accept_in_drop_policies and reader.exists(spec.ns)
            _nft_plan.schedule(plan, reader, spec.ns, _nft_plan.plan_router(
                reader.nft(spec.ns), [str(p) for p in spec.restrict_to],
                reader.foreign_forward(spec.ns) if foreign else None,
                [str(p) for p in spec.inbound] if spec.inbound is not None else None), label='forward filter')
        result = {'netns': spec.ns}
        result.update(spec.wanted)
        if spec.restrict_to is not None:
            result['restrict_to'] = [str(p) for p in spec.restrict_to]
        if spec.inbound is not None:
            result['inbound_from'] = [str(p) for p in spec.inbound]
        if spec.persist:
            content = render(spec.wanted)
            existing = reader.text_file(spec.persist_file)
            plan.record('file %s' % spec.persist_file, existing, content)
            if existing != content:
                plan.add(P.SYSCTL, None, 'write %s' % spec.persist_file,
                         call=lambda session, p=spec.persist_file, c=content: write_atomic(p, c))
            result['persist_file'] = spec.persist_file
        results.append(result)
    return results


def report_forwarding(reader, views, query, result):
    """netns_info: forwarding on or off, per family, in the host and each namespace read."""
    paths = dict((family, path) for family, (_key, path) in KEYS.items())
    for ns in views:
        info_entry(result, ns)['forwarding'] = reader.proc_values(ns, paths)


OPTIONS = dict(
    netns=dict(type='str'),
    ipv4=dict(type='bool'),
    ipv6=dict(type='bool'),
    restrict_to=dict(type='list', elements='str'),
    inbound_from=dict(type='list', elements='str'),
    accept_in_drop_policies=dict(type='bool', default=True),
    persist=dict(type='bool', default=False),
    persist_file=dict(type='path', default=DEFAULT_PERSIST_FILE),
)

KIND = Kind('sysctl_forward', 'forwarding', 'settings', None, OPTIONS, Forward, plan_forward, order=60,
            phrase="one namespace's (or the host's) forwarding settings", report=report_forwarding,
            nft_comments={'fwd-src': _nft_rules.parse_forward_comment('saddr'),
                          'fwd-dst': _nft_rules.parse_forward_comment('daddr'),
                          'fwd-drop': _nft_rules.parse_forward_drop_comment,
                          'fwd-est': _nft_rules.parse_forward_replies_comment,
                          'fwd-in': _nft_rules.parse_forward_inbound_comment})
