# -*- coding: utf-8 -*-
# Copyright: linuxnet.netns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
# Do not use this from other collections or standalone plugins/modules!
"""The plan: the one list of operations that check mode reports, diff mode shows and a real run
applies, so the three can never disagree.

Operations carry a stage. Stages run in dependency order (namespaces before links, links before
addresses, addresses before routes); within a stage, the netlink requests bound for one namespace
go out pipelined in as few sendmsg calls as the buffers allow.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.linuxnet.netns.plugins.module_utils import _state

# Stages, in the order they run.
NETNS_CREATE = 10
NETNS_SETUP = 11  # settings of a namespace just made, before any link is in it
LINK_DELETE = 20
LINK_CREATE = 30
LINK_SET = 40
LINK_UP = 50
ADDR_DELETE = 60
ADDR_ADD = 61
ROUTE_DELETE = 70
ROUTE_ADD = 71
SYSCTL_OFF = 75  # forwarding goes off before the filters that scoped it go
NFT = 80
SYSCTL = 90  # forwarding goes on after the filters that scope it are in
NETNS_DELETE = 95  # 96: the wait for the kernel's teardown of the removed namespaces
BRIDGE_DELETE = 97  # a bridge goes after the namespaces: by then its ports are gone with them


class Op(object):
    """One change. Either `requests(resolver)` returns netlink Requests for namespace `ns`, or
    `call(session)` does the change itself (mounts, files, sysctls)."""

    __slots__ = ('stage', 'ns', 'summary', 'requests', 'call')

    def __init__(self, stage, ns, summary, requests=None, call=None):
        self.stage = stage
        self.ns = ns
        self.summary = summary
        self.requests = requests
        self.call = call


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
        that carry it must be sent before (see Plan._apply_stage)."""
        if ns is None:
            return self.session.home
        if ns not in self.fds:
            self.fds[ns] = self.session.open_fd(ns)
        return self.fds[ns]

    @property
    def full(self):
        return len(self.fds) >= self.session.max_ns_fds

    def close(self):
        for fd in self.fds.values():
            self.session.close_fd(fd)
        self.fds.clear()

    def index(self, ns, name):
        key = (ns, name)
        if key not in self.cache:
            self.cache[key] = _state.link_index(self.session, ns, name)
        return self.cache[key]

    def known(self, ns, name, index):
        self.cache[(ns, name)] = index


class Plan(object):
    def __init__(self):
        self.ops = []
        self.before = {}
        self.after = {}
        self.warnings = []
        self.started = False  # whether apply() sent anything: a failure after that has changed the host
        self.shared = {}  # planners' own bookkeeping for objects several of them touch (nf_tables)

    def add(self, stage, ns, summary, requests=None, call=None):
        op = Op(stage, ns, summary, requests, call)
        self.ops.append(op)
        return op

    def forget(self, key):
        """Drop the diff entry of `key` (a planner that records it again under another)."""
        self.before.pop(key, None)
        self.after.pop(key, None)

    def record(self, key, before, after):
        """Before/after of one object as the diff shows it (None: absent)."""
        if before != after:
            self.before[key] = before
            self.after[key] = after

    @property
    def changed(self):
        return bool(self.ops)

    @property
    def actions(self):
        actions = []
        for op in sorted(self.ops, key=lambda op: op.stage):
            if isinstance(op.summary, list):
                actions.extend(op.summary)  # one request doing several things
            elif op.summary:
                actions.append(op.summary)
        return actions

    def diff(self):
        return {
            'before': dict((k, v) for k, v in sorted(self.before.items()) if v is not None),
            'after': dict((k, v) for k, v in sorted(self.after.items()) if v is not None),
        }

    def apply(self, session):
        ops = sorted(self.ops, key=lambda op: op.stage)  # stable: keeps order within a stage
        resolver = Resolver(session)
        try:
            start = 0
            while start < len(ops):
                end = start
                while end < len(ops) and ops[end].stage == ops[start].stage:
                    end += 1
                self._apply_stage(session, resolver, ops[start:end])
                start = end
        finally:
            resolver.close()

    def _apply_stage(self, session, resolver, ops):
        pending = {}
        order = []
        for op in ops:
            if op.call is not None:
                self.started = True
                op.call(session)
                continue
            if op.ns not in pending:
                pending[op.ns] = []
                order.append(op.ns)
            reqs = op.requests(resolver)
            pending[op.ns].extend(reqs if isinstance(reqs, list) else [reqs])
            if resolver.full:
                # the namespace descriptors the requests carry stay open until they are sent: send
                # what is built so far, so that the descriptors open at once stay bounded
                self._send(session, pending, order)
                pending, order = {}, []
                resolver.close()
        self._send(session, pending, order)

    def _send(self, session, pending, order):
        for ns in order:
            self.started = True
            session.rtnl(ns).request(pending[ns])
