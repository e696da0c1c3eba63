# -*- coding: utf-8 -*-
# Copyright: linuxnet.netns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
# Do not use this from other collections or standalone plugins/modules!
"""What the interface kinds (veth pairs, bridges) share: the settings of one interface (addresses,
MTU, master, up), how they are planned, and which interfaces are ours. Reads come from _state, changes go into a _plan.Plan."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno

from ansible_collections.linuxnet.netns.plugins.module_utils import _codec
from ansible_collections.linuxnet.netns.plugins.module_utils import _plan as P
from ansible_collections.linuxnet.netns.plugins.module_utils import _validate as V
from ansible_collections.linuxnet.netns.plugins.module_utils import _transport
from ansible_collections.linuxnet.netns.plugins.module_utils._common import (
    OWNER_ALIAS, PlanError, fail, ns_key, where)


# what every interface takes (a bridge's and each veth end's options)
IFACE_OPTIONS = dict(
    name=dict(type='str'),
    netns=dict(type='str'),
    addresses=dict(type='list', elements='str'),
    mtu=dict(type='int'),
    up=dict(type='bool', default=True),
)


# ---- desired interfaces -------------------------------------------------------------------------
class Iface(object):
    """The desired settings of one interface. `None` means: leave that setting as it is."""

    __slots__ = ('name', 'ns', 'addresses', 'mtu', 'up', 'master', 'isolated', 'ipv6', '_ipv4_only', 'param')

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
        # a declared port is isolated or not as declared (not, by default); an interface declared
        # without master is no port of ours, and its flags are not ours to set
        isolated = spec.get('isolated')
        if isolated and self.master is None:
            fail(param + '.isolated', isolated, 'is a setting of a bridge port, and master is not set',
                 'set master to the bridge this interface is a port of, or drop isolated')
        self.isolated = bool(isolated) if self.master is not None else None
        # IPv6 on or off (None: decided at creation, see ipv6_at_creation; veth ends only)
        self.ipv6 = spec.get('ipv6')
        first_ipv6 = next((a for a in self.addresses or () if a.version == 6), None)
        if self.ipv6 is False and first_ipv6 is not None:
            fail(param + '.ipv6', False, 'turns IPv6 off, and addresses has the IPv6 address %s' % first_ipv6,
                 'drop ipv6 (or set it true), or the IPv6 addresses')
        # what ipv6_at_creation decides by when ipv6 is omitted
        self._ipv4_only = first_ipv6 is None and bool(self.addresses or self.master is not None)

    def ipv6_at_creation(self):
        """IPv6 on a link made now (True/False), or None for the kernel's default: as declared;
        else, on the host, off on an IPv4-only end or a bridge port without addresses. The host is
        where a network's ends accumulate, and each link-local address costs the kernel work that
        grows with the links of the namespace (a fe80::/64 route each, duplicate address detection,
        router solicitations, a walk of all IPv6 routes when one goes); there, the write that turns
        it off is cheap. In a namespace, it is not: the first /proc/sys/net lookup of each
        namespace walks the kernel's cached /proc/sys/net entries of all the others."""
        if self.ipv6 is not None:
            return self.ipv6
        return False if self.ns is None and self._ipv4_only else None

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
    if link.isolated:
        state['isolated'] = True
    if link.kind == 'veth' and link.ipv6 is not None:
        state['ipv6'] = link.ipv6
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
        if after.get('master') != iface.master:
            after.pop('isolated', None)  # a port's flags start afresh on another bridge
        after['master'] = iface.master
    if iface.isolated:
        after['isolated'] = True
    elif iface.isolated is not None:
        after.pop('isolated', None)
    return after


def _plan_ipv6(plan, iface, link, after, removed):
    """IPv6 on or off on a veth end (net.ipv6.conf.NAME.disable_ipv6, which has no netlink
    attribute): on a link made now, before it comes up, so that no link-local address is ever made
    on an end that is to have none; on one that exists, only as declared. Returns the addresses
    still to remove, and those the kernel drops itself when IPv6 goes off."""
    ns, name = iface.ns, iface.name
    if link is None:
        wanted = iface.ipv6_at_creation()
    else:
        wanted = iface.ipv6
        if wanted is None or link.ipv6 == wanted:
            return removed, []
        if link.ipv6 is None:
            if wanted:
                raise PlanError('%s.ipv6=true: the kernel reports no IPv6 on %s in %s (a kernel booted with '
                                'ipv6.disable=1, or an MTU below 1280); drop ipv6' % (iface.param, name, where(ns)))
            return removed, []
    if wanted is None:
        return removed, []
    after['ipv6'] = wanted
    summary = '%s IPv6 on %s in %s' % ('enable' if wanted else 'disable', name, where(ns))
    plan.add(P.LINK_IPV6, ns, summary, call=lambda session: set_ipv6(session, ns, name, wanted))
    if wanted or link is None:
        return removed, []
    after['addresses'] = [text for text in after.get('addresses', ()) if ':' not in text]
    return [a for a in removed if a.version != 6], [a for a in link.addresses if a.version == 6]


def set_ipv6(session, ns, name, on):
    """Write the link's disable_ipv6 in its namespace; a kernel without IPv6 has no such file,
    which is IPv6 off already."""
    path = '/proc/sys/net/ipv6/conf/%s/disable_ipv6' % name
    try:
        session.write_proc(ns, path, '0\n' if on else '1\n')
    except (IOError, OSError) as exc:
        if exc.errno != errno.ENOENT or on:
            raise _transport.NetlinkError(exc.errno, '%s IPv6 on %s in %s (write %s)' % (
                'enable' if on else 'disable', name, where(ns), path))


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


def configure(plan, iface, link, view, kind, label, made_up=False):
    """Plan the shared settings of one interface, existing (`link`) or made in this run (None;
    `made_up`: by a request that brings it up too).

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

    summaries, attrs, up, info = [], {}, None, None
    attach = False
    if iface.master is not None:
        master = view.links.get(iface.master)
        if master is None and iface.master in view.removed:
            raise PlanError('%s.master=%r: the same task removes it (%s)' % (
                iface.param, iface.master, view.removed[iface.master]))
        if master is None and not plan.assume(('link', ns, iface.master), (
                'bridge %s does not exist in %s; assumed created by an earlier task (%s=%r)' % (
                    iface.master, where(ns), (iface.param + '.master').lstrip('.'), iface.master))):
            raise PlanError('%s.master=%r: no interface of that name in %s; create the bridge first '
                            '(linuxnet.netns.bridge)' % (iface.param, iface.master, where(ns)))
        if master is None:
            # as the earlier task leaves it: later ports of the run find it, and say no more
            master = view.expect_link(iface.master, 'bridge', {'up': True})
        if master.kind != 'bridge':
            raise PlanError('%s.master=%r is a %s in %s, not a bridge' % (
                iface.param, iface.master, master.kind or 'plain interface', where(ns)))
        if link is None or link.master != master.index:
            summaries.append('attach %s to bridge %s in %s' % (name, iface.master, where(ns)))
            attrs['master'] = master.index  # negative: a bridge this run makes, looked up at apply time
            attach = True
    if link is not None and iface.mtu is not None and link.mtu != iface.mtu:
        summaries.append('set mtu %d on %s in %s (was %s)' % (iface.mtu, name, where(ns), link.mtu))
        attrs['mtu'] = iface.mtu
    if link is None or not link.alias:
        # the kernel ignores an alias given at creation, so the owner mark comes with the settings;
        # a declared link without any alias gets it too (one made by a run killed before marking)
        summaries.append('mark %s in %s as made by linuxnet.netns' % (name, where(ns)))
        attrs['alias'] = OWNER_ALIAS
    isolated = _isolation(plan, iface, link, attach)
    if isolated is not None and not attach:
        summaries.append(isolated)
        info = _codec.isolated_info(iface.isolated)
    current_up = link.up if link is not None else made_up
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
            return link_request(_codec.RTM_NEWLINK, 0, what, index=current_index or 0, up=up, info=info, **attrs)
        plan.add(P.LINK_SET, ns, summaries, requests=settings)
    added, removed = [], []
    if iface.addresses is not None:
        current = set(link.addresses) if link is not None else set()
        removed = sorted(current - set(iface.addresses), key=str)
    dropped = []
    if kind == 'veth':
        removed, dropped = _plan_ipv6(plan, iface, link, after, removed)
    if iface.addresses is not None:
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
    if added or removed or dropped:
        view.expect_addresses(link.index, added, removed + dropped)
    plan.record('%s %s %s' % (label, ns_key(ns), name), before, after)
    return after


def _isolation(plan, iface, link, attach):
    """The summary of a change to a bridge port's isolation, if one is due (else None). The kernel
    takes a port's flags only from a port: when the same run attaches the interface, it is a second
    message, after the attach (planned here); on a port already there it rides with the settings."""
    if iface.isolated is None:
        return None
    if iface.isolated and link is not None and not attach and link.isolated is None:
        raise PlanError('%s.isolated=%s: the kernel reports no isolation flag on %s in %s, a port of %s '
                        '(bridge port isolation needs Linux 4.18 or later); drop isolated' % (
                            iface.param, iface.isolated, iface.name, where(iface.ns), iface.master))
    # a port attached by this run starts with isolation off (as does every port of a kernel without it)
    current = bool(link.isolated) if link is not None and not attach else False
    if current == iface.isolated:
        return None
    ns, name = iface.ns, iface.name
    summary = 'set isolated %s on %s, a port of bridge %s in %s' % (
        'on' if iface.isolated else 'off', name, iface.master, where(ns))
    if attach:
        index = link.index if link is not None else 0
        # addressed by name when the run makes the link: no index lookup
        plan.add(P.LINK_SET + 1, ns, summary, requests=lambda resolver: link_request(
            _codec.RTM_NEWLINK, 0, summary, index=index, info=_codec.isolated_info(iface.isolated),
            **({} if index else {'name': name})))
    return summary


def claim(view, name, param):
    """Each link is declared once a run: a second declaration (another pair's end, a bridge of
    the same name) would plan against what the first one changes."""
    first = view.claimed.setdefault(name, param)
    if first != param:
        raise PlanError('%s: %s in %s is declared twice in this task (first by %s)' % (
            param, name, where(view.name), first))


def describe_link(link):
    if link.kind == 'veth':
        return 'a veth whose peer is ifindex %s%s' % (link.peer_index, '' if link.peer_nsid is None else
                                                      ' in another namespace (nsid %d)' % link.peer_nsid)
    return 'a %s' % (link.kind or 'plain interface (no link kind)')


def owned(reader, namespaces, kind, declared, match=None):
    """(ns, link) of each link of `kind` this collection made in `namespaces`, not in `declared`;
    match(name), if given, narrows the choice."""
    found = []
    for ns in reader.scope(namespaces):
        for link in sorted(reader.view(ns).links.values(), key=lambda link: link.index):
            if link.kind == kind and link.alias == OWNER_ALIAS and (ns, link.name) not in declared and \
                    (match is None or match(link.name)):
                found.append((ns, link))
    return found
