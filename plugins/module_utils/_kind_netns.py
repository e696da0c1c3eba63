# -*- coding: utf-8 -*-
# Copyright: linuxnet.netns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
# Do not use this from other collections or standalone plugins/modules!
"""Named network namespaces (the /run/netns files that `ip netns` shares with us)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import time

from ansible_collections.linuxnet.netns.plugins.module_utils import _codec
from ansible_collections.linuxnet.netns.plugins.module_utils import _plan as P
from ansible_collections.linuxnet.netns.plugins.module_utils import _state
from ansible_collections.linuxnet.netns.plugins.module_utils import _transport
from ansible_collections.linuxnet.netns.plugins.module_utils import _validate as V
from ansible_collections.linuxnet.netns.plugins.module_utils._common import OWNER_ALIAS
from ansible_collections.linuxnet.netns.plugins.module_utils._links import link_request
from ansible_collections.linuxnet.netns.plugins.module_utils._kind import Kind

OPTIONS = dict(
    name=dict(type='str'),
    state=dict(type='str', choices=['present', 'absent'], default='present'),
    lo_up=dict(type='bool', default=True),
)

# How long an absent run waits for the kernel's asynchronous namespace teardown to remove the
# host-side ends of the namespace's veth pairs, so that nothing of it outlives the task.
TEARDOWN_TIMEOUT = 10.0


class Netns(object):
    def __init__(self, spec, param):
        self.item = spec
        self.name = V.netns_name(spec.get('name'), param + '.name')
        self.state = spec.get('state') or 'present'
        self.lo_up = spec.get('lo_up', True)
        self.param = param

    @property
    def key(self):
        return self.name

    def describe(self):
        return 'netns %s' % self.name


def purge_netns(reader, items, match=None):
    """Namespaces this collection made (lo marked) that the call does not declare, as absent.
    match(name), if given, narrows the choice."""
    declared = set(ns.name for ns in items)
    extra = []
    for name in sorted(reader.mounted()):
        if name in declared or (match is not None and not match(name)):
            continue
        lo = reader.view(name).lo()
        if lo is not None and lo.alias == OWNER_ALIAS:
            extra.append(Netns({'name': name, 'state': 'absent'}, 'purge'))
    return extra


def _describe_holder(holder):
    pid, how, comm = holder
    if not pid:
        return 'another mount of it at %s' % how
    what = 'running in it' if how == 'inside' else 'holding a descriptor of it'
    return 'PID %d (%s, %s)' % (pid, comm, what)


class Teardown(object):
    """The namespaces an absent run removes, and the host-side veth ends that must vanish with them.

    The kernel removes a namespace's interfaces asynchronously, all the namespaces of a batch in
    one go, on a worker of its own. We ask about one end at a time - a single get by index, a few
    microseconds - and about all of them only once that one is gone: the kernel's worker has the
    CPU to itself meanwhile. Listening to the host's link events instead had the kernel build about
    ten messages per pair for us and cost 0.1 s more at a thousand namespaces; dumping the host's
    links again and again cost more still.
    """

    POLL_FIRST, POLL_MAX = 0.002, 0.02

    def __init__(self):
        self.host_peers = set()

    def wait(self, session, existing=_state.existing, clock=time.monotonic, sleep=time.sleep):
        alive = set(self.host_peers)
        deadline = clock() + TEARDOWN_TIMEOUT
        delay = self.POLL_FIRST
        while alive:
            # the highest index was made last: as good a sentinel as any, and the kernel removes
            # the namespaces of one batch together
            if existing(session, None, [max(alive)]):
                if clock() > deadline:
                    # ten thousand namespaces take the kernel's worker longer than that: the wait
                    # goes on while ends keep going, and ends when none went for a whole period
                    left = existing(session, None, alive)
                    if not left or len(left) < len(alive):
                        alive, deadline = left, clock() + TEARDOWN_TIMEOUT
                        continue
                    alive = left
                    break
                sleep(delay)
                delay = min(delay * 2, self.POLL_MAX)
                continue
            alive = existing(session, None, alive)
        if alive:
            raise _transport.NamespaceError('host-side veth ends %s outlived their namespaces: none of them went '
                                            'for %.0f s' % (sorted(alive), TEARDOWN_TIMEOUT))


def _drop_addresses(plan, host, ends):
    """The addresses of the host-side ends, removed before their namespaces go. The kernel's
    teardown of a namespace takes its veth's host end down, and an interface going down with an
    address flushes the whole routing table of the host - once per end, each table as long as there
    are ends: 2.4 s of the kernel's 8 s for ten thousand p2p namespaces. Removed one by one first,
    an address takes only its own routes (60 ms for ten thousand). No action of its own: the
    namespace's deletion takes its pair with it anyway."""
    for address in host.addresses:
        if address.index in ends:
            what = 'remove address %s from the host end of a veth of a namespace being deleted' % address.iface
            plan.add(P.NETNS_DELETE - 1, None, None, requests=lambda r, a=address, w=what: _transport.Request(
                _codec.address_message(_codec.RTM_DELADDR, 0, a.index, a.iface), w,
                (errno.EADDRNOTAVAIL, errno.ENODEV)))


def plan_netns(plan, reader, items):
    """Plan all namespaces of one call together: one /proc scan for holders, one teardown wait."""
    removing = [ns for ns in items if ns.state == 'absent' and reader.exists(ns.name)]
    held = reader.holders([ns.name for ns in removing]) if removing else {}
    teardown = Teardown()
    results = []
    deleting = False
    for ns in items:
        exists = reader.exists(ns.name)
        key = 'netns %s' % ns.name
        if ns.state == 'absent':
            if not exists:
                if reader.bare_file(ns.name):
                    # a bare file where a namespace was being made or removed by a killed run
                    plan.add(P.NETNS_DELETE, None,
                             'remove %s (no namespace mounted there)' % _transport.netns_path(ns.name),
                             call=lambda session, name=ns.name: session.delete(name))
                    deleting = True
                results.append({'name': ns.name, 'state': 'absent'})
                continue
            view = reader.view(ns.name)
            pids = held.get(ns.name)
            if pids:
                # The kernel keeps a namespace alive while a process is in it, and with it every
                # interface inside, including veths whose other end is on the host. Remove the
                # interfaces so that nothing of the namespace reaches the host any more.
                for link in sorted(view.links.values(), key=lambda link: link.index):
                    if link.name != 'lo':
                        summary = 'delete %s in netns %s (still used by %s)' % (
                            link.name, ns.name, ', '.join(_describe_holder(h) for h in pids))
                        plan.add(P.NETNS_DELETE - 1, ns.name, summary, requests=lambda r, i=link.index, s=summary:
                                 link_request(_codec.RTM_DELLINK, 0, s, index=i, ignore=(errno.ENODEV,)))
                plan.warnings.append(
                    'netns %s is still used by %s. Its name was removed and its interfaces deleted, so '
                    'nothing of it is reachable from the host, but the kernel keeps the empty namespace '
                    'until they let go of it.' % (ns.name, ', '.join(_describe_holder(h) for h in pids)))
            plan.add(P.NETNS_DELETE, None, 'delete netns %s' % ns.name,
                     call=lambda session, name=ns.name: session.delete(name))
            deleting = True
            reader.removing[ns.name] = 'purge' if ns.param == 'purge' else 'declared'
            if plan.diff_wanted:
                # lo's state is the namespace's before-state in a diff, and nowhere else: a read of
                # every namespace (a socket in each) that a teardown without --diff goes without
                lo = view.lo()
                plan.record(key, {'lo_up': bool(lo and lo.up), 'ours': bool(lo and lo.alias == OWNER_ALIAS)}, None)
            results.append({'name': ns.name, 'state': 'absent',
                            'pids': sorted(set(pid for pid, _how, _comm in pids or () if pid)),
                            'held_by': [_describe_holder(h) for h in pids or ()]})
            continue
        if not exists:
            reader.creating.add(ns.name)
            before, lo = None, None
            lo_up, ours = False, True
        else:
            # lo alone tells all a namespace's own state: one kernel-side lookup, no dump
            lo = reader.view(ns.name).lo()
            lo_up, ours = bool(lo and lo.up), bool(lo and lo.alias == OWNER_ALIAS)
            before = {'lo_up': lo_up, 'ours': ours}
        summaries, up, alias = [], None, None
        if not exists or (lo is not None and not lo.alias):
            # a namespace has no label of its own: its lo carries our mark (`ip -n NS link show lo`);
            # a declared namespace whose lo has no alias gets it too (a run killed before marking)
            summaries.append('mark netns %s as made by linuxnet.netns (alias of its lo)' % ns.name)
            alias = OWNER_ALIAS
            ours = True
        if ns.lo_up is not None and ns.lo_up != lo_up:
            summaries.append('set lo %s in netns %s' % ('up' if ns.lo_up else 'down', ns.name))
            up = lo_up = ns.lo_up
        what = '; '.join(summaries)

        def settings(u=up, a=alias, s=what):
            # lo is ifindex 1 in every network namespace
            return link_request(_codec.RTM_NEWLINK, 0, s, index=1, up=u, alias=a)
        if not exists:
            # a new namespace gets lo's settings through the socket it was made with: later, past
            # the sockets a run keeps (_transport.MAX_SOCKETS), it would be entered once more. Many
            # are made by the module and a child process at once (apart: _apply.apply_shared)
            plan.add(P.NETNS_CREATE, None, ['create netns %s' % ns.name] + summaries, apart=True,
                     call=lambda session, name=ns.name, s=settings: session.create(name).request([s()]))
        elif summaries:
            plan.add(P.LINK_UP, ns.name, summaries, requests=lambda r, s=settings: s())
        after = {'lo_up': lo_up, 'ours': ours}
        plan.record(key, before, after)
        results.append(dict(after, name=ns.name, state='present'))
    if deleting:
        # the names go together, from threads, once the stage took them all; then our sockets in
        # those namespaces close (ops keep their order within a stage)
        plan.add(P.NETNS_DELETE, None, None, call=lambda session: session.release())
    if reader.removing:
        # the host-side ends of their veths: host veths whose peer is under the id the host knows
        # a removed namespace by (none assigned: no veth ever crossed between them)
        doomed = reader.removed_ids(None)
        if doomed:
            host = reader.view(None)
            teardown.host_peers.update(link.index for link in host.links.values()
                                       if link.kind == 'veth' and link.peer_nsid in doomed)
            _drop_addresses(plan, host, teardown.host_peers)
    if teardown.host_peers:
        plan.add(P.NETNS_DELETE + 1, None, None, call=teardown.wait)
    return results


KIND = Kind('netns', 'namespaces', 'namespaces', 'name', OPTIONS, Netns, plan_netns, order=10,
            phrase='a network namespace', purge=purge_netns, select='name',
            purge_doc=('Python regular expressions; a namespace is purged when one matches its whole name '
                       '(V(lnns[0-9]+) matches C(lnns12), not C(lnns12x)).'))
