# -*- coding: utf-8 -*-
# Copyright: linuxnet.netns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
# Do not use this from other collections or standalone plugins/modules!
"""A namespace's own resolver: /etc/netns/NS/resolv.conf, which `ip netns exec NS` binds over
/etc/resolv.conf, and which netns_service's drop-ins bind for the services they place.

A namespace sees the host's /etc/resolv.conf otherwise, and on a host with systemd-resolved that
names the stub 127.0.0.53 - the namespace's own loopback, where nothing answers. So `upstream`
copies the host's real servers: those of /etc/resolv.conf that are not loopback addresses, or,
when it names loopback servers only, those of /run/systemd/resolve/resolv.conf (what Docker reads
for the same reason)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import posixpath

from ansible_collections.linuxnet.netns.plugins.module_utils import _systemd
from ansible_collections.linuxnet.netns.plugins.module_utils import _validate as V
from ansible_collections.linuxnet.netns.plugins.module_utils._common import (
    PlanError, fail, info_entry, require_namespace, where)
from ansible_collections.linuxnet.netns.plugins.module_utils._kind import Kind, boot_late

OPTIONS = dict(
    netns=dict(type='str'),
    source=dict(type='str', choices=['upstream', 'static', 'none'], default='upstream'),
    servers=dict(type='list', elements='str'),
    search=dict(type='list', elements='str'),
    options=dict(type='list', elements='str'),
    take_over=dict(type='bool', default=False),
    state=dict(type='str', choices=['present', 'absent'], default='present'),
)

NETNS_ETC = '/etc/netns'
HOST_RESOLV = '/etc/resolv.conf'
RESOLVED_RESOLV = '/run/systemd/resolve/resolv.conf'  # systemd-resolved's upstream servers
HEADER = '# Managed by linuxnet.netns.netns_dns; edits here are overwritten.\n'
MAXNS = 3  # glibc's resolver reads the first three nameserver lines and ignores the rest
# the lines of an upstream file a namespace's copy keeps besides its servers
KEPT = ('search', 'domain', 'options', 'sortlist')


def resolver_path(ns):
    return posixpath.join(NETNS_ETC, ns, 'resolv.conf')


def _address(text):
    """An address of a nameserver line (an IPv6 one may carry a %scope), or None."""
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def parse(text):
    """(servers as written, other kept lines) of a resolv.conf text."""
    servers, kept = [], []
    for line in (text or '').splitlines():
        words = line.split()
        if not words or words[0].startswith(('#', ';')):
            continue
        if words[0] == 'nameserver' and len(words) > 1:
            servers.append(words[1])
        elif words[0] in KEPT:
            kept.append(' '.join(words))
    return servers, kept


def _loopback(server):
    address = _address(server)
    return address is not None and address.is_loopback


def upstream(reader):
    """(servers, kept lines, the file they come from): the host's real upstream; PlanError if none."""
    tried = []
    for path in (HOST_RESOLV, RESOLVED_RESOLV):
        text = reader.text_file(path)
        servers, kept = parse(text)
        usable = [s for s in servers if _address(s) is not None and not _loopback(s)]
        if usable:
            return usable, kept, path
        tried.append('%s: %s' % (path, 'not there' if text is None else
                                 'loopback servers only (%s)' % ', '.join(servers) if servers else 'no nameserver'))
    return None, None, '; '.join(tried)


def _setting(kept, word):
    """The words of the kept lines `word`: glibc takes the last search line, and every options line."""
    found = [line.split()[1:] for line in kept if line.split()[0] == word]
    if word == 'options':
        return [option for line in found for option in line]
    return found[-1] if found else []


def render(servers, kept, note):
    lines = [HEADER.rstrip('\n'), '# %s' % note]
    lines.extend('nameserver %s' % server for server in servers)
    lines.extend(kept)
    return '\n'.join(lines) + '\n'


def _words(values, param, what, example):
    for index, value in enumerate(values or ()):
        if not isinstance(value, str) or not value or any(not 33 <= ord(c) <= 126 for c in value):
            fail('%s[%d]' % (param, index), value, 'is not %s (one word, printable ASCII)' % what,
                 'give it like %s' % example)
    return list(values or ())


class Resolver(object):
    def __init__(self, spec, param):
        self.item = spec
        self.param = param
        self.state = spec.get('state') or 'present'
        self.ns = V.netns_name(spec.get('netns'), param + '.netns')
        if self.ns is None:
            fail(param + '.netns', None, 'is required: the host has its own /etc/resolv.conf',
                 'give the namespace (as in ip netns list)')
        self.source = spec.get('source') or 'upstream'
        self.take_over = bool(spec.get('take_over'))
        self.servers = []
        servers = spec.get('servers')
        if servers is not None and self.source != 'static':
            fail(param + '.servers', servers, 'is for source: static (source is %s)' % self.source,
                 'set source: static, or drop servers')
        for name in ('search', 'options'):
            if spec.get(name) is not None and self.source != 'static':
                fail('%s.%s' % (param, name), spec[name], 'is for source: static (source is %s; upstream keeps the '
                     "host's own)" % self.source, 'set source: static, or drop %s' % name)
        if self.source == 'static' and self.state == 'present':
            if not servers:
                fail(param + '.servers', servers, 'is empty: source: static needs at least one server',
                     'list the servers, like [192.0.2.53]')
            for index, text in enumerate(servers):
                if not isinstance(text, str) or _address(text.strip()) is None:
                    fail('%s.servers[%d]' % (param, index), text, 'is not an IPv4 or IPv6 address',
                         'write it like 192.0.2.53 or 2001:db8::53')
                self.servers.append(str(_address(text.strip())))
            V.unique(self.servers, str, param + '.servers')
            if len(self.servers) > MAXNS:
                # glibc would silently ignore the rest: a list that is not what it seems
                fail(param + '.servers', servers, 'has %d servers; the resolver (glibc, MAXNS) uses the first %d and '
                     'ignores the rest' % (len(self.servers), MAXNS), 'give at most %d' % MAXNS)
        self.search = _words(spec.get('search'), param + '.search', 'a search domain', 'example.com')
        self.options = _words(spec.get('options'), param + '.options', 'a resolver option', 'ndots:2 or edns0')
        self.path = resolver_path(self.ns)

    @property
    def key(self):
        return self.ns

    @property
    def wanted(self):
        """Whether a file of ours is to be there."""
        return self.state == 'present' and self.source != 'none'

    def describe(self):
        return 'resolver of netns %s' % self.ns


def _foreign(svc, path):
    return '%s=%r: %s was not written by linuxnet.netns (no "Managed by" first line)' % (
        (svc.param + '.netns').lstrip('.'), svc.ns, path)


def plan_dns(plan, reader, resolvers):
    results = []
    for res in resolvers:
        existing = reader.text_file(res.path)
        ours = existing is None or existing.startswith(HEADER)
        result = {'netns': res.ns, 'state': res.state, 'source': res.source, 'path': res.path}
        if not res.wanted:
            if ours or res.take_over:
                _systemd.delete(plan, reader, res.path, 'resolver of %s' % where(res.ns),
                                prune=(posixpath.dirname(res.path),))
            elif existing is not None:
                plan.warnings.append('%s; left as it is (take_over: true removes it)' % _foreign(res, res.path))
            result.update(servers=[], ours=False)
            results.append(result)
            continue
        require_namespace(plan, reader, res.ns, res.param + '.netns')
        if not ours and not res.take_over:
            raise PlanError('%s; take_over: true replaces it' % _foreign(res, res.path))
        if res.source == 'static':
            kept = []
            if res.search:
                kept.append('search ' + ' '.join(res.search))
            if res.options:
                kept.append('options ' + ' '.join(res.options))
            servers, note = res.servers, 'source: static'
        else:
            servers, kept, origin = upstream(reader)
            if servers is None:
                raise PlanError("%s=%r: source: upstream found no usable server of the host's (%s); give source: "
                                'static with servers' % ((res.param + '.source').lstrip('.'), res.source, origin))
            note = 'source: upstream (%s)' % origin
            if len(servers) > MAXNS:
                plan.warnings.append('%s: the host names %d upstream servers (%s); the resolver uses the first %d' % (
                    where(res.ns), len(servers), origin, MAXNS))
        # in place: services placed in the namespace have this very file bound over their /etc/resolv.conf
        _systemd.write(plan, reader, res.path, render(servers, kept, note), 'resolver of %s' % where(res.ns),
                       in_place=True)
        result.update(servers=list(servers), ours=True, search=_setting(kept, 'search'),
                      options=_setting(kept, 'options'))
        results.append(result)
    return results


def purge_dns(reader, resolvers, match=None):
    """The namespaces with a resolver of ours that the call does not declare, as absent."""
    declared = set(res.ns for res in resolvers)
    extra = []
    for ns in reader.listdir(NETNS_ETC) or ():
        if ns in declared or (match is not None and not match(ns)):
            continue
        text = reader.text_file(resolver_path(ns))
        if text is not None and text.startswith(HEADER):
            extra.append(Resolver({'netns': ns, 'state': 'absent'}, 'purge'))
    return extra


DNS_PORT = 53


def report_dns(reader, views, query, result):
    """netns_info: each namespace's effective resolver - its own file, else the host's - its
    servers, whether it is ours, and a problem when a server is a loopback address where nothing
    in the namespace listens on port 53."""
    for ns in views:
        if ns is None:
            continue
        path = resolver_path(ns)
        text = reader.text_file(path)
        if text is None:
            path, text = HOST_RESOLV, reader.text_file(HOST_RESOLV)
        servers, _kept = parse(text)
        entry = {'file': path, 'servers': servers, 'ours': bool(text and text.startswith(HEADER)), 'problem': None}
        loopback = [s for s in servers if _loopback(s)]
        if loopback:
            ports = set(('udp', _address(s).version, DNS_PORT) for s in loopback)
            listening = reader.listeners(ns, ports)
            deaf = [s for s in loopback if ('udp', _address(s).version, DNS_PORT) not in listening]
            if deaf:
                entry['problem'] = ('nameserver %s (%s) is a loopback address and nothing in netns %s listens on UDP '
                                    'port %d: lookups there fail; give the namespace a resolver of its own '
                                    '(linuxnet.netns.netns_dns)' % (', '.join(deaf), path, ns, DNS_PORT))
        info_entry(result, ns)['resolver'] = entry


KIND = Kind('netns_dns', 'dns', 'resolvers', 'netns', OPTIONS, Resolver, plan_dns, order=70,
            phrase="a namespace's resolver file", report=report_dns,
            purge=purge_dns, select='name',
            purge_doc=('Python regular expressions; the resolver file this collection wrote for a namespace is '
                       'removed when one matches the namespace\'s whole name.'),
            # written again at boot once the uplink is up: the host's upstream servers may have changed
            boot=boot_late)
