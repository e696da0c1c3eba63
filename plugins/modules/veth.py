#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: linuxnet.netns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: veth
short_description: Manage veth pairs between the host and network namespaces
version_added: 0.1.0
description:
  - Creates a veth pair whose two ends may each sit on the host or in a named namespace, and
    manages each end's addresses, MTU, up state and bridge (master).
  - The end named by O(name) is created where O(netns) says; its O(peer) is created directly in
    O(peer.netns), so no end ever passes through a namespace it does not belong to.
  - Both ends are brought up by default. An end without an address is allowed (a bridge port needs
    none), but an end that should carry traffic needs one; see O(addresses).
  - An existing interface with one of the names that is not this pair (not a veth, paired with
    something else, or in another namespace) is an error, unless O(replace=true).
  - Every interface the module creates carries the alias C(linuxnet.netns).
  - Both ends are made with one transmit and one receive queue (C(ip link add ... numtxqueues 1
    numrxqueues 1)), the number the kernel puts in use on a veth anyway (it allocates one per CPU and
    uses one); asked for at creation, it spares the kernel an RCU grace period per end (a pair is made
    2.5 times faster). The ends cannot be given more queues later (C(ethtool -L), for multi-queue XDP);
    pairs made before keep theirs.
  - Takes one pair or many (O(pairs)) in one call.
options:
  name: &name
    description: Name of the first end (for example the host side). At most 15 bytes.
    type: str
  netns: &netns
    description: Namespace of the first end; omit for the host.
    type: str
  addresses: &addresses
    description:
      - Addresses of the first end in CIDR form (IPv4 and IPv6), for example V(10.0.0.1/24).
      - The list is exact - other addresses on that end are removed (IPv6 link-local ones excepted).
        Omit to leave the addresses alone.
    type: list
    elements: str
  mtu: &mtu
    description: MTU of the first end, 68 to 65535 (what the kernel takes for a veth); also the default for O(peer.mtu).
    type: int
  up: &up
    description: Whether the first end is up.
    type: bool
    default: true
  master: &master
    description: Bridge (in the same namespace as this end) the first end is a port of.
    type: str
  isolated: &isolated
    description:
      - Bridge port isolation of the first end, a port of O(master) (C(ip link set dev X type
        bridge_slave isolated on)). An isolated port forwards only to and from the bridge's ports
        that are not isolated, and to the bridge itself. Namespaces on isolated ports cannot reach
        each other, but reach their gateway (the bridge's address), and through it the internet and
        the fleet. Needs no C(br_netfilter).
      - Applies to a port, an end with O(master); V(true) without O(master) is refused. A port is
        isolated as declared, and V(false) (the default) turns isolation off on a port that has it.
      - Linux 4.18 or later (on an older kernel, V(true) is refused).
    type: bool
    default: false
  ipv6: &ipv6
    description:
      - IPv6 on the first end (its C(net.ipv6.conf.NAME.disable_ipv6)). V(false) turns it off - no
        link-local address, no IPv6 route, neighbour discovery or multicast listener traffic on
        that end - and is refused beside an IPv6 address in O(addresses). V(true) turns it on (also
        where the namespace's default turns IPv6 off). A change to an end that exists takes one write
        to C(/proc/sys).
      - Omitted, it is decided when the module creates the end, and an end that exists is left as it
        is. An end on the host (no O(netns)) is created with IPv6 off when O(addresses) has only IPv4
        addresses, or when it is a bridge port (O(master)) without addresses - its own IPv6 would
        serve nothing. Any other end, and every end in a namespace, gets what the kernel gives (on,
        unless the namespace's C(net.ipv6.conf.default.disable_ipv6) says otherwise).
      - Why the host. The host is where the ends of a network accumulate, and each link-local address
        costs the kernel work that grows with the interfaces of the namespace - a C(fe80::/64) route
        each, duplicate address detection and router solicitations when it comes up, a walk of all
        IPv6 routes when one goes. For ten thousand pairs, IPv6 off on the host ends makes creating
        them about half as long and removing them a quarter. In a namespace the write is what costs
        - the kernel finds a namespace's C(/proc/sys/net) by walking the cached entries of all
        namespaces, a millisecond each at ten thousand - so the module writes there only what is
        declared.
      - On a kernel without IPv6 (C(ipv6.disable=1)), V(false) and omitted do nothing, and V(true) is
        refused.
    type: bool
  peer: &peer
    description: The other end.
    type: dict
    suboptions:
      name:
        description: Name of the other end. At most 15 bytes.
        type: str
        required: true
      netns:
        description: Namespace of the other end; omit for the host.
        type: str
      addresses:
        description: Addresses of the other end; exact, like O(addresses).
        type: list
        elements: str
      mtu:
        description: MTU of the other end, 68 to 65535; defaults to O(mtu).
        type: int
      up:
        description: Whether the other end is up.
        type: bool
        default: true
      master:
        description: Bridge (in the other end's namespace) the other end is a port of.
        type: str
      isolated:
        description: Bridge port isolation of the other end, a port of O(peer.master); like O(isolated).
        type: bool
        default: false
      ipv6:
        description: IPv6 on the other end, like O(ipv6) (when omitted, by its own O(peer.netns), O(peer.addresses) and O(peer.master)).
        type: bool
  replace: &replace
    description:
      - Delete an existing interface that has one of the names but is not this pair, then create
        the pair.
    type: bool
    default: false
  state: &state
    description:
      - V(absent) deletes the pair (deleting one end deletes both). It refuses to delete an
        interface of that name that is not a veth.
    type: str
    choices: [present, absent]
    default: present
  pairs:
    description: Many pairs in one call, each with the options above.
    type: list
    elements: dict
    suboptions:
      name: *name
      netns: *netns
      addresses: *addresses
      mtu: *mtu
      up: *up
      master: *master
      isolated: *isolated
      ipv6: *ipv6
      peer: *peer
      replace: *replace
      state: *state
  purge:
    description:
      - Also delete every veth pair this collection made (alias C(linuxnet.netns)), on the host and
        in the namespaces the call names, that the call does not declare. Interfaces made by
        anything else are never touched.
    type: bool
    default: false
extends_documentation_fragment:
  - linuxnet.netns._common
author:
  - linuxnet.netns contributors (@linuxnet)
'''

EXAMPLES = r'''
- name: The tutorial's pair, host end 10.0.0.1/24, namespace end 10.0.0.2/24
  linuxnet.netns.veth:
    name: veth-host
    addresses: [10.0.0.1/24]
    peer:
      name: veth-ns1
      netns: ns1
      addresses: [10.0.0.2/24]

- name: Namespaces on a bridge (docker0-style), many pairs in one task
  linuxnet.netns.veth:
    pairs:
      - name: veth-app1
        master: br0
        peer: {name: eth0, netns: app1, addresses: [172.30.0.11/24, "fd30::11/64"]}
      - name: veth-app2
        master: br0
        peer: {name: eth0, netns: app2, addresses: [172.30.0.12/24, "fd30::12/64"]}

- name: Namespaces on one bridge that cannot reach each other (each still reaches the gateway)
  linuxnet.netns.veth:
    pairs:
      - name: veth-app1
        master: br0
        isolated: true
        peer: {name: eth0, netns: app1, addresses: [172.30.0.11/24]}
      - name: veth-app2
        master: br0
        isolated: true
        peer: {name: eth0, netns: app2, addresses: [172.30.0.12/24]}

- name: An IPv4 pair that keeps IPv6 (a link-local address) on its host end, and has none in the namespace
  linuxnet.netns.veth:
    name: veth-lab
    addresses: [10.0.1.1/24]
    ipv6: true
    peer: {name: eth0, netns: lab, addresses: [10.0.1.2/24], ipv6: false}

- name: Remove a pair
  linuxnet.netns.veth:
    name: veth-host
    peer: {name: veth-ns1, netns: ns1}
    state: absent
'''

RETURN = r'''
pairs:
  description: Each declared pair as it is after the run (as it would be, in check mode); null for an absent pair.
  returned: always
  type: list
  elements: dict
  sample:
    - name: veth-host
      netns: null
      kind: veth
      up: true
      mtu: 1500
      addresses: [10.0.0.1/24]
      ipv6: false
      peer: {name: veth-ns1, netns: ns1, kind: veth, up: true, mtu: 1500, addresses: [10.0.0.2/24], ipv6: true}
purged:
  description: The objects O(purge=true) removed (in check mode, would remove).
  returned: always
  type: list
  elements: str
  sample: [netns old1]
actions:
  description: The changes made (in check mode, that would be made), in order.
  returned: always
  type: list
  elements: str
'''

# first, before the engine: its compiled code comes from the host's cache (see _bytecode)
from ansible_collections.linuxnet.netns.plugins.module_utils import _bytecode  # noqa: F401 pylint: disable=unused-import
from ansible_collections.linuxnet.netns.plugins.module_utils import _module
from ansible_collections.linuxnet.netns.plugins.module_utils import _kind_veth


def main():
    _module.main(_kind_veth.KIND)


if __name__ == '__main__':
    main()
