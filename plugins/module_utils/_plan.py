# -*- coding: utf-8 -*-
# Copyright: linuxnet.netns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
# Do not use this from other collections or standalone plugins/modules!
"""The plan: the one list of operations that check mode reports, diff mode shows and a real run
applies (_apply), so the three can never disagree.

Operations carry a stage. Stages run in dependency order (namespaces before links, links before
addresses, addresses before routes).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

# Stages, in the order they run.
NETNS_CREATE = 10
NETNS_SETUP = 11  # settings of a namespace just made, before any link is in it
LINK_DELETE = 20
LINK_CREATE = 30
LINK_IPV6 = 35  # IPv6 off (or on) on a link made now, before it comes up: no link-local address made
LINK_SET = 40
LINK_UP = 50
ADDR_DELETE = 60
ADDR_ADD = 61
ROUTE_DELETE = 70
ROUTE_ADD = 71
SYSCTL_OFF = 75  # forwarding goes off before the filters that scoped it go
NFT = 80
CONNTRACK = 85  # entries that predate a rule just added (a published UDP port's)
SYSCTL = 90  # forwarding goes on after the filters that scope it are in
FILES = 92  # saved plans, systemd units and drop-ins, resolvers: once the network they describe is there
SYSTEMD_RELOAD = 93  # one daemon-reload a run, after the last unit file changed
SYSTEMD_RESTART = 94  # services restarted into their new namespace, once systemd has read their drop-ins
NETNS_DELETE = 95  # 94 (with the restarts): what goes before; 96: the wait for the kernel's teardown
BRIDGE_DELETE = 97  # a bridge goes after the namespaces: by then its ports are gone with them
FILES_CLEANUP = 98  # old boot code, once the units point at the new and systemd has read them


class Op(object):
    """One change. Either `requests(resolver)` returns netlink Requests for namespace `ns`, or
    `call(session)` does the change itself (mounts, files, sysctls). `apart`: the call may run in
    a child process, in any order with the other such calls of its stage (_apply.apply_shared)."""

    __slots__ = ('stage', 'ns', 'summary', 'requests', 'call', 'apart')

    def __init__(self, stage, ns, summary, requests=None, call=None, apart=False):
        self.stage = stage
        self.ns = ns
        self.summary = summary
        self.requests = requests
        self.call = call
        self.apart = apart


class Diff(object):
    """Before/after of the objects a plan changes, keyed as the diff shows them (None: absent),
    in the manner of community.docker's DifferenceTracker."""

    __slots__ = ('before', 'after')

    def __init__(self):
        self.before = {}
        self.after = {}

    def add(self, key, before, after):
        """Note one object's before/after; an object that stays as it is is left out."""
        if before != after:
            self.before[key] = before
            self.after[key] = after

    def forget(self, key):
        """Drop the entry of `key` (a planner that records it again under another)."""
        self.before.pop(key, None)
        self.after.pop(key, None)

    def merge(self, other):
        """Take `other`'s entries (a later one for a key wins)."""
        self.before.update(other.before)
        self.after.update(other.after)

    @property
    def changed(self):
        return bool(self.before or self.after)

    def get(self):
        """{'before': ..., 'after': ...} as Ansible's diff mode shows it: absent objects left out."""
        return {
            'before': dict((k, v) for k, v in sorted(self.before.items()) if v is not None),
            'after': dict((k, v) for k, v in sorted(self.after.items()) if v is not None),
        }


class Plan(object):
    def __init__(self, assume_missing=False, diff=True):
        self.ops = []
        # whether the run reports a diff: what only a diff shows need not be read (diff=False)
        self.diff_wanted = diff
        self.differences = Diff()
        self.warnings = []
        # check mode: a namespace, interface or address that an earlier task of the play makes is
        # not there yet, so what a real run refuses for its absence is assumed instead, with a
        # warning naming it - a playbook of single tasks can then be checked on a fresh host
        self.assume_missing = assume_missing
        self._assumed = set()
        self._once = set()
        self.started = False  # whether the apply sent anything: a failure after that has changed the host
        # ns -> _nft_plan.Transaction: the nf_tables changes of one namespace, which every planner
        # of the run that writes rules there adds to (one atomic transaction per namespace)
        self.nft_transactions = {}
        # record(key, before, after) and forget(key) are the diff's own: no extra call per object
        self.record = self.differences.add
        self.forget = self.differences.forget

    def assume(self, what, warning):
        """Whether the plan may take `what` (a hashable key) as made by an earlier task: in check mode
        it may, and the first time says so (`warning`: what is assumed); a real run refuses."""
        if not self.assume_missing:
            return False
        if what not in self._assumed:
            self._assumed.add(what)
            self.warnings.append('check mode: ' + warning)
        return True

    def once(self, key):
        """True the first time a run asks with `key`: for what several planners need done only once
        (one systemd daemon-reload, one boot unit)."""
        if key in self._once:
            return False
        self._once.add(key)
        return True

    def add(self, stage, ns, summary, requests=None, call=None, apart=False):
        op = Op(stage, ns, summary, requests, call, apart)
        self.ops.append(op)
        return op

    @property
    def before(self):
        return self.differences.before

    @property
    def after(self):
        return self.differences.after

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
        return self.differences.get()
