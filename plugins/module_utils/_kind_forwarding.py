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

from ansible_collections.linuxnet.netns.plugins.module_utils import _plan as P
from ansible_collections.linuxnet.netns.plugins.module_utils import _validate as V
from ansible_collections.linuxnet.netns.plugins.module_utils._common import PlanError, fail, ns_key, require_namespace, where
from ansible_collections.linuxnet.netns.plugins.module_utils._kind import Kind, boot_in_namespace
from ansible_collections.linuxnet.netns.plugins.module_utils import _nft_rules
from ansible_collections.linuxnet.netns.plugins.module_utils._common import info_entry
from ansible_collections.linuxnet.netns.plugins.module_utils._files import write_atomic

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
        self.isolate = bool(spec.get('isolate'))
        if self.isolate and not self.restrict_to:
            fail(param + '.isolate', True, 'isolates the prefixes of restrict_to, and restrict_to is %s' % (
                 'empty' if self.restrict_to == [] else 'not set'),
                 'list the prefixes whose addresses must not reach each other in restrict_to')
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


def render(values):
    return HEADER + ''.join('%s = %d\n' % (KEYS[family][0], int(values[family])) for family in sorted(values))


def ours(text):
    """Whether a persist file is one this collection wrote (or is yet to write): those are written
    whole; anyone else's is edited (`edit`)."""
    return text is None or text.startswith(HEADER)


def setting(line):
    """(key, value) of a sysctl.d line, the key as sysctl reads it ('/' or '.' separated, a leading
    '-' saying "ignore failure"); None for a comment, a blank line or anything without '='."""
    stripped = line.strip()
    if not stripped or stripped.startswith(('#', ';')) or '=' not in stripped:
        return None
    key, _sep, value = stripped.partition('=')
    return key.strip().lstrip('-').replace('/', '.'), value.strip()


def edit(text, values):
    """Someone else's sysctl file (a user's /etc/sysctl.conf) with the managed keys of `values`
    set, key by key, as ansible.posix.sysctl sets them: the value is replaced in place on each line
    that sets the key (every such line, since the last one is what sysctl applies), a key set on no
    line is appended in our form (`key = value`), and everything else - comments, blank lines,
    other keys, order, the key's own spelling and the spacing around '=' - stays as it was."""
    wanted = dict((KEYS[family][0], '%d' % int(value)) for family, value in values.items())
    seen = set()
    lines = []
    for line in text.splitlines(True):
        found = setting(line)
        if found is not None and found[0] in wanted:
            seen.add(found[0])
            head, _sep, tail = line.partition('=')
            body = tail.rstrip('\r\n')
            end = tail[len(body):]
            lead = body[:len(body) - len(body.lstrip())]
            rest = body[len(lead):]
            line = '%s=%s%s%s%s' % (head, lead, wanted[found[0]], rest[len(rest.rstrip()):], end)
        lines.append(line)
    missing = sorted(key for key in wanted if key not in seen)
    if missing and lines and not lines[-1].endswith('\n'):
        lines[-1] += '\n'
    lines.extend('%s = %s\n' % (key, wanted[key]) for key in missing)
    return ''.join(lines)


def _write(plan, spec, family, value, stage, summary):
    plan.add(stage, spec.ns, summary, call=lambda session: session.write_proc(
        spec.ns, KEYS[family][1], '1\n' if value else '0\n'))


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
                [str(p) for p in spec.inbound] if spec.inbound is not None else None, spec.isolate),
                label='forward filter')
        result = {'netns': spec.ns}
        result.update(spec.wanted)
        if spec.restrict_to is not None:
            result['restrict_to'] = [str(p) for p in spec.restrict_to]
            result['isolate'] = spec.isolate
        if spec.inbound is not None:
            result['inbound_from'] = [str(p) for p in spec.inbound]
        if spec.persist:
            existing = reader.text_file(spec.persist_file)
            mine = ours(existing)
            content = render(spec.wanted) if mine else edit(existing, spec.wanted)
            plan.record('file %s' % spec.persist_file, existing, content)
            if existing != content:
                plan.add(P.SYSCTL, None, '%s %s' % ('write' if mine else 'edit', spec.persist_file),
                         call=lambda session, p=spec.persist_file, c=content, k=not mine: write_atomic(p, c, k))
            result['persist_file'] = spec.persist_file
        results.append(result)
    return results


# whether bridged IPv4 frames pass the IP hooks (br_netfilter loaded; Docker loads it): then a frame
# that crosses two bridges joined by a veth is tracked twice, and a NAT decided on the first pass
# is lost on the second (the bridge_network role needs to know, past a thousand namespaces)
BRIDGE_NF_PATH = '/proc/sys/net/bridge/bridge-nf-call-iptables'


def report_forwarding(reader, views, query, result):
    """netns_info: forwarding on or off, per family, in the host and each namespace read, and
    whether bridged IPv4 traffic passes the IP hooks (None: br_netfilter not loaded)."""
    paths = dict((family, path) for family, (_key, path) in KEYS.items())
    paths['bridge_nf_call_iptables'] = BRIDGE_NF_PATH
    for ns in views:
        info_entry(result, ns)['forwarding'] = reader.proc_values(ns, paths)


OPTIONS = dict(
    netns=dict(type='str'),
    ipv4=dict(type='bool'),
    ipv6=dict(type='bool'),
    restrict_to=dict(type='list', elements='str'),
    isolate=dict(type='bool', default=False),
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
                          'fwd-in': _nft_rules.parse_forward_inbound_comment,
                          'fwd-isolate': _nft_rules.parse_forward_isolate_comment}, boot=boot_in_namespace)
