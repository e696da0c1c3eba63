#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: linuxnet.netns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: netns_route
short_description: Manage IPv4 and IPv6 routes in network namespaces or on the host
version_added: 0.1.0
description:
  - Adds, changes and removes routes in a named namespace or on the host - a default route via the
    host, as in the tutorial, or a prefix via a gateway and/or a device.
  - A route is identified as the kernel identifies it - namespace, destination, table and metric.
    A route with that identity but another gateway or device is replaced.
  - The gateway must lie in a subnet connected in that namespace (an address on one of its
    interfaces), unless O(onlink=true); the error says which subnets are connected.
  - Takes one route or many (O(routes)) in one call.
  - Routes this module writes carry the protocol number 76 (C(ip route) shows C(proto 76)), the mark
    by which O(purge) and M(linuxnet.netns.network)'s O(linuxnet.netns.network#module:purge_match) know
    them as this collection's. A route someone else made - by hand, a DHCP client, NetworkManager, a
    routing daemon, the kernel - that already says what is declared is left exactly as it is, and so
    stays theirs (never purged); one that says something else is replaced, and is ours from then on.
    Routes written by version 0.1.0 (C(proto static)) are not marked.
options:
  dest: &dest
    description:
      - Destination prefix, for example V(10.1.0.0/24) or V(fd01::/64), or V(default) (the family
        of a default route is that of its O(gateway)).
    type: str
    default: default
  gateway: &gateway
    description: Next hop, of the same family as O(dest).
    type: str
  dev: &dev
    description: Outgoing interface. Required with an IPv6 link-local gateway, or without a gateway.
    type: str
  metric: &metric
    description:
      - Route metric (priority), 0 to 4294967295. Defaults to the kernel's own default, 0 for IPv4 and
        1024 for IPv6.
      - For IPv6, V(0) means 1024, as it does to the kernel (which stores such a route with metric
        1024); the result says 1024.
    type: int
  table: &table
    description:
      - Routing table id, 1 to 4294967295. 254 is C(main), 253 C(default) (consulted last by the
        kernel's default rules); any other table is consulted only through a rule of your own.
      - V(255), the kernel's C(local) table, is refused, and so is V(0) (which the kernel would take
        as C(main)).
    type: int
    default: 254
  onlink: &onlink
    description: Accept a gateway outside every connected subnet (the kernel's C(onlink) flag).
    type: bool
    default: false
  netns: &netns
    description: Namespace of the route; omit for the host.
    type: str
  state: &state
    description: Whether the route should exist.
    type: str
    choices: [present, absent]
    default: present
  routes:
    description: Many routes in one call, each with the options above.
    type: list
    elements: dict
    suboptions:
      dest: *dest
      gateway: *gateway
      dev: *dev
      metric: *metric
      table: *table
      onlink: *onlink
      netns: *netns
      state: *state
  purge:
    description:
      - Also delete every route this collection made (protocol 76), on the host and in the namespaces
        the call names, that the call does not declare. Routes made by anything else - the kernel's
        connected routes, a DHCP client's default route, yours - are never touched; the delete itself
        names protocol 76, so the kernel never takes another route of the same destination instead.
      - With O(purge=true) and O(routes=[]), every route this collection made on the host goes.
    type: bool
    default: false
    version_added: 0.2.0
extends_documentation_fragment:
  - linuxnet.netns._common
author:
  - linuxnet.netns contributors (@linuxnet)
'''

EXAMPLES = r'''
- name: The tutorial's default route, inside ns1, via the host end of its veth
  linuxnet.netns.netns_route:
    netns: ns1
    gateway: 10.0.0.1

- name: Several routes in one task, IPv4 and IPv6
  linuxnet.netns.netns_route:
    routes:
      - {netns: ns1, dest: default, gateway: "fd00::1"}
      - {netns: ns1, dest: 10.20.0.0/16, gateway: 10.0.0.254, metric: 100}
      - {dest: 10.0.1.0/24, dev: br0}

- name: Remove a route
  linuxnet.netns.netns_route:
    netns: ns1
    dest: 10.20.0.0/16
    metric: 100
    state: absent

- name: Exactly these routes on the host - delete the ones this collection made before and no longer declares
  linuxnet.netns.netns_route:
    routes:
      - {dest: 10.200.2.0/24, gateway: 192.0.2.12}
      - {dest: 10.200.3.0/24, gateway: 192.0.2.13}
    purge: true
'''

RETURN = r'''
routes:
  description: Each declared route as it is after the run (as it would be, in check mode).
  returned: always
  type: list
  elements: dict
  sample:
    - {netns: ns1, dest: 0.0.0.0/0, table: 254, metric: 0, gateway: 10.0.0.1, dev: veth-ns1, ours: true, state: present}
purged:
  description: The routes O(purge=true) deleted (in check mode, would delete).
  returned: when O(purge=true)
  type: list
  elements: str
  sample: [route (host) 10.9.0.0/24]
actions:
  description: The changes made (in check mode, that would be made), in order.
  returned: always
  type: list
  elements: str
'''

# first, before the engine: its compiled code comes from the host's cache (see _bytecode)
from ansible_collections.linuxnet.netns.plugins.module_utils import _bytecode  # noqa: F401 pylint: disable=unused-import
from ansible_collections.linuxnet.netns.plugins.module_utils import _module
from ansible_collections.linuxnet.netns.plugins.module_utils import _kind_route


def main():
    _module.main(_kind_route.KIND)


if __name__ == '__main__':
    main()
