# -*- coding: utf-8 -*-
# Copyright: linuxnet.netns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fleet-wide subnet allocation, and the check of a subnet against the routes already on a host.

Pure Python (the standard library's ipaddress and hashlib), no state of its own: every host of a
play computes the same answer from the same inputs.

The allocation rule, in three passes over the host names in sorted order:

1. pinned: a host with an explicit subnet (``explicit[host]``) gets exactly that one, inside the
   pool or not, of any size. Two pinned subnets that overlap are an error naming both hosts.
2. remembered: a host that already has a subnet (``current[host]``, read on the host from what an
   earlier run built there) keeps it when it is still a slot of the pool (same prefix length,
   inside the pool) and no pinned subnet, nor a remembered one of a host sorted before it,
   overlaps it.
3. hashed: every other host starts at slot ``sha256(hostname) mod slots`` of the pool and takes
   the first slot, going up and wrapping around, that nothing taken so far overlaps.

So adding a host never moves one that is pinned or remembered: the new host only ever takes a
slot nobody holds. Without memory (a host not reachable in this run, and no fact cache), a host
sits at its hashed slot unless an earlier host in sorted order took it, which is the only case
where a newcomer can take what would have been another host's slot; pin such hosts.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import bisect
import hashlib
import ipaddress

try:
    from ansible.errors import AnsibleFilterError
except ImportError:  # pragma: no cover - outside Ansible (the unit tests import ansible anyway)
    AnsibleFilterError = ValueError


def _text(value):
    if isinstance(value, bytes):
        return value.decode('utf-8')
    return u'%s' % (value,)


def _network(value, what):
    try:
        return ipaddress.ip_network(_text(value), strict=True)
    except ValueError as exc:
        raise AnsibleFilterError('%s=%r is not a network in CIDR form with no host bits set (%s); '
                                 'write it like 10.200.0.0/24' % (what, value, exc))


def slot_of(network, pool, prefixlen):
    """Index of the pool slot holding `network` (a network at least as long as a slot)."""
    shift = pool.max_prefixlen - prefixlen
    return (int(network.network_address) - int(pool.network_address)) >> shift


def hash_slot(host, slots):
    """The slot a host starts probing at: stable across runs, Python versions and machines
    (sha256 of the name, unlike Python's salted hash())."""
    digest = hashlib.sha256(_text(host).encode('utf-8')).digest()
    return int.from_bytes(digest, 'big') % slots


class _Taken(object):
    """Slots already given out: single slots in a set, larger blocks (a pinned subnet shorter than
    a slot) as ranges. Also remembers which host holds what, for error messages.

    The holders never overlap one another (each is checked before it is added), so they are kept
    sorted by first address, per IP version: the ones a network overlaps are then found by
    bisection, not by a scan of all of them - a fleet of hosts that all remember their subnet would
    otherwise cost O(H^2)."""

    def __init__(self, pool, prefixlen):
        self.pool = pool
        self.prefixlen = prefixlen
        self.slots = set()
        self.ranges = []
        self.starts = {4: [], 6: []}  # first addresses, sorted
        self.holders = {4: [], 6: []}  # (first, last, order added, network, host), in the same order
        self.added = 0

    def overlapping(self, network):
        """The holder added first among those overlapping `network`, as (network, host), or None."""
        starts, holders = self.starts[network.version], self.holders[network.version]
        first, last = int(network.network_address), int(network.broadcast_address)
        found = None
        # the holders starting at or before `last`; being disjoint and sorted, their ends are sorted too
        index = bisect.bisect_right(starts, last) - 1
        while index >= 0 and holders[index][1] >= first:
            if found is None or holders[index][2] < found[2]:
                found = holders[index]
            index -= 1
        return (found[3], found[4]) if found else None

    def slot_free(self, index):
        if index in self.slots:
            return False
        return not any(low <= index < high for low, high in self.ranges)

    def add(self, network, host):
        """`network` taken by `host`, for overlapping() and slot_free() both."""
        starts, holders = self.starts[network.version], self.holders[network.version]
        first = int(network.network_address)
        index = bisect.bisect_right(starts, first)
        starts.insert(index, first)
        holders.insert(index, (first, int(network.broadcast_address), self.added, network, host))
        self.added += 1
        self.take(network)

    def take(self, network):
        """`network`'s slots taken, for slot_free() alone: once only free slots are given out, no
        one asks overlapping() again, and a holder inserted in the sorted list costs O(H)."""
        pool = self.pool
        if network.version != pool.version or not network.overlaps(pool):
            return
        if network.prefixlen >= self.prefixlen:
            self.slots.add(slot_of(network, pool, self.prefixlen))
        elif network.prefixlen <= pool.prefixlen:
            self.ranges.append((0, 1 << (self.prefixlen - pool.prefixlen)))
        else:
            low = slot_of(network, pool, self.prefixlen)
            self.ranges.append((low, low + (1 << (self.prefixlen - network.prefixlen))))


def subnet_allocate(hosts, pool, prefixlen, explicit=None, current=None, partial=False,
                    pool_var='bridge_network_pool', prefixlen_var='bridge_network_subnet_prefixlen',
                    subnet_var='bridge_network_subnet'):
    """Give every host in `hosts` a subnet of length `prefixlen` out of `pool`, none overlapping.

    explicit: {host: subnet} pinned subnets (None or '' for none).
    current:  {host: subnet} subnets the hosts already have (None or '' for unknown).
    partial:  instead of failing on overlapping pins or a full pool, leave the hosts concerned out
              (for a teardown, which must work whatever the inventory says now).
    Returns {host: 'a.b.c.d/len'}, keys in sorted order. The *_var names only word the errors.
    """
    if isinstance(hosts, str):
        hosts = [hosts]
    hosts = sorted(set(_text(h) for h in hosts or []))
    explicit = dict((_text(k), v) for k, v in (explicit or {}).items() if v not in (None, ''))
    current = dict((_text(k), v) for k, v in (current or {}).items() if v not in (None, ''))
    pool = _network(pool, pool_var)
    try:
        prefixlen = int(prefixlen)
    except (TypeError, ValueError):
        raise AnsibleFilterError('%s=%r is not a number' % (prefixlen_var, prefixlen))
    if not pool.prefixlen <= prefixlen <= pool.max_prefixlen:
        raise AnsibleFilterError(
            '%s=%d does not fit %s=%s: a host subnet must be at least as long as the pool '
            '(between /%d and /%d)'
            % (prefixlen_var, prefixlen, pool_var, pool, pool.prefixlen, pool.max_prefixlen))
    slots = 1 << (prefixlen - pool.prefixlen)
    taken = _Taken(pool, prefixlen)
    result = {}
    left_out = set()

    for host in hosts:
        if host not in explicit:
            continue
        try:
            network = _network(explicit[host], '%s of host %s' % (subnet_var, host))
        except AnsibleFilterError:
            if partial:
                left_out.add(host)
                continue
            raise
        clash = taken.overlapping(network)
        if clash and partial:
            left_out.add(host)
            continue
        if clash:
            raise AnsibleFilterError(
                '%s of host %s (%s) overlaps %s of host %s (%s): every host needs a subnet of its '
                'own; change one of them' % (subnet_var, host, network, subnet_var, clash[1], clash[0]))
        taken.add(network, host)
        result[host] = network

    for host in hosts:
        if host in result or host in left_out or host not in current:
            continue
        try:
            network = ipaddress.ip_network(_text(current[host]), strict=True)
        except ValueError:
            continue
        if (network.version != pool.version or network.prefixlen != prefixlen
                or not network.subnet_of(pool) or taken.overlapping(network)):
            continue
        taken.add(network, host)
        result[host] = network

    for host in hosts:
        if host in result or host in left_out:
            continue
        start = hash_slot(host, slots)
        for step in range(slots):
            index = (start + step) % slots
            if taken.slot_free(index):
                break
        else:
            if partial:
                continue
            raise AnsibleFilterError(
                '%s=%s holds %d subnets of /%d and all are taken, but %d hosts need one: widen %s or '
                'raise %s' % (pool_var, pool, slots, prefixlen, len(hosts), pool_var, prefixlen_var))
        network = ipaddress.ip_network((int(pool.network_address) + (index << (pool.max_prefixlen - prefixlen)),
                                        prefixlen))
        taken.take(network)  # a free slot overlaps nothing, and the pins and remembered are placed
        result[host] = network

    return dict((host, str(result[host])) for host in hosts if host in result)


def _route_text(route):
    text = _text(route.get('dest'))
    if route.get('gateway'):
        text += ' via %s' % route['gateway']
    if route.get('dev'):
        text += ' dev %s' % route['dev']
    if route.get('table') not in (None, 254):
        text += ' table %s' % route['table']
    return text


def subnet_conflicts(routes, subnets, ignore_devs=None, ignore_dests=None):
    """Routes already on a host that overlap subnets about to be used there.

    routes:       the host's routes as linuxnet.netns.netns_info returns them (host.routes).
    subnets:      {label: subnet}, e.g. {'the subnet of web1': '10.200.3.0/24'}.
    ignore_devs:  routes through these interfaces are ours (the bridge, the host veth ends).
    ignore_dests: routes to exactly these prefixes via a gateway are ours (host-gw routes).
    Default routes (/0) overlap everything and are never a conflict.
    Returns one message per conflict, empty when there is none.
    """
    ours = set()
    for dest in ignore_dests or []:
        try:
            ours.add(ipaddress.ip_network(_text(dest), strict=False))
        except ValueError:
            pass
    return route_conflicts(routes, subnets, ignore_devs, ours.__contains__)


def route_conflicts(routes, subnets, ignore_devs=None, ours_via_gateway=None):
    """subnet_conflicts, with the host-gw routes told by a predicate: `ours_via_gateway(dest)` (dest an
    ip_network) says whether a route to dest via a gateway is ours - one pass over the routes, each
    parsed once, whatever tells ours (a set of prefixes, or bridge_network_fleet's index)."""
    ignore_devs = set(_text(d) for d in ignore_devs or [])
    wanted = []
    for label in sorted(subnets or {}):
        if subnets[label] in (None, ''):
            continue
        wanted.append((label, ipaddress.ip_network(_text(subnets[label]), strict=False)))
    messages = []
    for route in routes or []:
        try:
            dest = ipaddress.ip_network(_text(route.get('dest')), strict=False)
        except ValueError:
            continue
        if dest.prefixlen == 0 or route.get('dev') in ignore_devs:
            continue
        if route.get('gateway') and ours_via_gateway is not None and ours_via_gateway(dest):
            continue
        for label, network in wanted:
            if network.version == dest.version and network.overlaps(dest):
                messages.append('%s (%s) overlaps the route %s already on this host' % (
                    label, network, _route_text(route)))
    return messages


class FilterModule(object):
    def filters(self):
        return {
            'subnet_allocate': subnet_allocate,
            'subnet_conflicts': subnet_conflicts,
        }
