# -*- coding: utf-8 -*-
# Copyright: linuxnet.netns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
# Do not use this from other collections or standalone plugins/modules!
"""Applying a plan (_plan.Plan): its operations stage after stage, in dependency order; within a
stage, the netlink requests bound for one namespace go out pipelined in as few sendmsg calls as
the buffers allow. The stages whose requests act each on its own namespace alone (link settings,
addresses, routes) go namespace group by namespace group, all their stages for one group before
the next (_apply_local)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import collections
import itertools

from ansible_collections.linuxnet.netns.plugins.module_utils import _plan as P
from ansible_collections.linuxnet.netns.plugins.module_utils import _state
from ansible_collections.linuxnet.netns.plugins.module_utils import _transport

# From this many calls a stage may share with a child process (Op.apart: the namespaces a run
# makes), a child does them from the last down while the module does them from the first up. Most
# of making a namespace is the kernel's setting up of it, which does not wait for another's: at
# 10000 namespaces, 4.3-5.2 s against 5.6-7.1 s for the module alone (2 cores, nine pairs of runs).
SHARE_MIN = 256


class Resolver(object):
    """Interface indexes by name, asked of the kernel at apply time (a link made earlier in the
    same run has no index at planning time; kernel-side lookup by name: no dump), and namespace
    descriptors for the requests that name a namespace."""

    def __init__(self, session):
        self.session = session
        self.cache = {}
        self.fds = {}

    def ns_fd(self, ns):
        """A descriptor of namespace `ns` for IFLA_NET_NS_FD, open until close(): the requests
        that carry it must be sent before (see _apply_stage)."""
        if ns is None:
            return self.session.home
        if ns not in self.fds:
            self.fds[ns] = self.session.open_fd(ns)
        return self.fds[ns]

    @property
    def full(self):
        """Whether it holds as many namespace descriptors as the session's budget allows."""
        return len(self.fds) >= self.session.max_ns_fds

    def close(self):
        for fd in self.fds.values():
            self.session.close_fd(fd)
        self.fds.clear()

    def link(self, ns, name):
        """The interface `name` of `ns` as the kernel has it now (a Link)."""
        return _state.link_named(self.session, ns, name)

    def link_at(self, ns, index):
        """The interface with `index` in `ns` now, or None."""
        return _state.link_at(self.session, ns, index)

    def index(self, ns, name):
        key = (ns, name)
        if key not in self.cache:
            self.cache[key] = _state.link_index(self.session, ns, name)
        return self.cache[key]


def apply_plan(plan, session):
    """Do what the plan says; `plan.started` tells, if this fails, whether anything was done."""
    ops = sorted(plan.ops, key=lambda op: op.stage)  # stable: keeps order within a stage
    stages = [list(group) for _stage, group in itertools.groupby(ops, key=lambda op: op.stage)]
    resolver = Resolver(session)
    try:
        index = 0
        while index < len(stages):
            local = []  # the local stages from here on, taken together
            while index < len(stages) and all(_local(op) for op in stages[index]):
                local.extend(stages[index])
                index += 1
            if local:
                _apply_local(plan, session, resolver, local)
            else:
                _apply_stage(plan, session, resolver, stages[index])
                index += 1
    finally:
        resolver.close()


# Link settings, addresses and routes: each request acts on the namespace it is sent to alone (an
# address, a route, a link's flags there), and waits only for what the earlier stages did there
# and for the links made before (LINK_CREATE).
LOCAL_STAGES = (P.LINK_SET, P.ROUTE_ADD)


def _local(op):
    return op.call is None and LOCAL_STAGES[0] <= op.stage <= LOCAL_STAGES[1]


def _apply_local(plan, session, resolver, ops):
    """Stages of LOCAL_STAGES, in groups of namespaces as many as the session keeps sockets for:
    within a group stage after stage, one batch a namespace and stage, each namespace's through
    the one socket. Stage after stage over thousands of namespaces, the bounded socket cache would
    open each socket again at every stage: at 10000 namespaces, 45000 sockets instead of 15000,
    and these stages 0.5 s slower (6.5 s against 7.0 s, the mean of seven pairs of runs)."""
    by_ns = collections.OrderedDict()
    for op in ops:  # in stage order
        by_ns.setdefault(op.ns, {}).setdefault(op.stage, []).append(op)
    names = list(by_ns)
    chunk = max(1, getattr(session, 'max_sockets', len(names)) - 1)
    stages = sorted(set(op.stage for op in ops))
    for first in range(0, len(names), chunk):
        group = names[first:first + chunk]
        for stage in stages:
            for ns in group:
                mine = by_ns[ns].get(stage)
                if not mine:
                    continue
                batch = []
                for op in mine:
                    reqs = op.requests(resolver)
                    batch.extend(reqs if isinstance(reqs, list) else [reqs])
                plan.started = True
                session.rtnl(ns).request(batch)
                resolver.close()  # the descriptors a batch carried (none, in these stages)


def _apply_stage(plan, session, resolver, ops):
    if len(ops) >= SHARE_MIN and getattr(session, 'forkable', False) and all(op.apart for op in ops):
        apply_shared(plan, session, ops)
        return
    pending = {}
    order = []
    for op in ops:
        if op.call is not None:
            plan.started = True
            op.call(session)
            continue
        if op.ns not in pending:
            pending[op.ns] = []
            order.append(op.ns)
        reqs = op.requests(resolver)
        pending[op.ns].extend(reqs if isinstance(reqs, list) else [reqs])
        if resolver.full:
            # the namespace descriptors the requests carry stay open until they are sent: send what
            # is built so far, so that the descriptors open at once stay bounded
            _send(plan, session, pending, order)
            pending, order = {}, []
            resolver.close()
    _send(plan, session, pending, order)


def _send(plan, session, pending, order):
    for ns in order:
        plan.started = True
        session.rtnl(ns).request(pending[ns])


def apply_shared(plan, session, ops):
    """The calls of `ops`, shared with a child process (_transport.Apart) where one is to be had:
    the module takes them from the first up, the child from the last down, until they meet
    (_transport.Split). Each namespace's name file, made O_EXCL, is the claim that counts: where
    both take the same call, the one that finds the name taken (_transport.Taken) leaves it to the
    other. Whatever the child has not done - a call it failed (a failure ends the child), a name
    left taken by a run killed half-way - the module does afterwards, as it would alone: a
    failure is then its own, raised as ever."""
    plan.started = True
    # the first here, before the child is forked: what a session prepares once (the run dir's
    # shared mount) is prepared once
    ops[0].call(session)
    rest = ops[1:]
    split = _transport.Split(len(rest))
    done = set()
    session.sharing = True
    child = None

    def made(index):
        """Whether this process made call `index` (False: its name was taken, the other's)."""
        try:
            rest[index].call(session)
        except _transport.Taken:
            return False
        return True

    def work(send):  # the child's
        for index in range(len(rest) - 1, -1, -1):
            if not split.theirs(index):
                return
            if made(index):
                send(index)
    try:
        child = _transport.Apart.start(work)
        if child is not None:
            for index in range(len(rest)):
                if not split.mine(index):
                    break
                if made(index):
                    done.add(index)
                child.drain()  # the child never waits on a full pipe
            done.update(child.rest())
    except BaseException:
        if child is not None:
            child.abandon()
        raise
    finally:
        session.sharing = False
    for index, op in enumerate(rest):
        if index not in done:
            op.call(session)
