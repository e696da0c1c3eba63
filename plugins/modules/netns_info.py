#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: linuxnet.netns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: netns_info
short_description: Read network namespaces, veth pairs, bridges, routes, NAT and forwarding
version_added: 0.1.0
description:
  - Reports the named network namespaces and the host - interfaces, addresses, routes, forwarding -
    which veth end is where (across namespaces), the bridges and their ports, and this collection's
    MASQUERADE rules, the systemd services placed in namespaces and each namespace's resolver. Changes nothing.
  - Interfaces created by this collection are marked C(ours=true) in RV(host.interfaces) and in
    each namespace's interfaces (RV(netns)).
options:
  netns:
    description: Only these namespaces (the host is always included). Default is all of them.
    type: list
    elements: str
  netns_details:
    description:
      - Read each namespace (interfaces, routes, forwarding, NAT). With V(false), only the host is
        read and RV(namespaces) still lists every namespace by name, so the cost does not grow with
        their number.
    type: bool
    default: true
  routes:
    description: Include routes.
    type: bool
    default: true
  nat:
    description:
      - Include this collection's nf_tables rules - MASQUERADE (RV(nat)) and published ports
        (RV(host.published)).
    type: bool
    default: true
  veth_pairs:
    description:
      - Match the veth ends into pairs (RV(veth_pairs)). With V(false), RV(veth_pairs) is empty; the
        ends are still in the interfaces, with C(kind=veth).
    type: bool
    default: true
  bridges:
    description:
      - List the bridges with their ports (RV(bridges)). With V(false), RV(bridges) is empty; each
        port still names its bridge (C(master)) in the interfaces.
    type: bool
    default: true
  bridge_ports:
    description:
      - Include the interfaces that are ports of a bridge in each namespace's interfaces. With
        V(false) they are left out (a thousand veth ends on a bridge need not come back to read the
        bridge itself); RV(bridges) still lists them, when O(bridges=true).
    type: bool
    default: true
  saved_plans:
    description:
      - The plans saved on this host by M(linuxnet.netns.network)'s O(linuxnet.netns.network#module:save)
        (RV(saved_plans)), which the boot units apply again at every boot.
      - V(drift) also plans each valid one against the host (nothing is applied) and reports what applying
        it would change - after a reboot, whether the network came back whole; later, what was changed by
        hand. The services it places count too (a drop-in removed by hand is drift). V(list) only reads and validates the files; V(none) skips them.
    type: str
    choices: [none, list, drift]
    default: drift
    version_added: 0.4.0
extends_documentation_fragment:
  - linuxnet.netns._common.INFO
author:
  - linuxnet.netns contributors (@linuxnet)
'''

EXAMPLES = r'''
- name: Read everything
  linuxnet.netns.netns_info:
  register: net

- name: Where is the other end of veth-host?
  ansible.builtin.debug:
    msg: "{{ net.veth_pairs | selectattr('name', 'eq', 'veth-host') | map(attribute='peer') | first }}"
'''

RETURN = r'''
saved_plans:
  description:
    - One entry a saved plan file (O(saved_plans)), by name - its C(name) and C(path); for a file the boot
      cannot apply, a C(problem) saying why (the boot unit would fail with it, changing nothing); else the
      C(python) it runs with and what it C(declared) (items per list); with O(saved_plans=drift), the
      actions applying it now would take (C(drift)) and whether there are none (C(matches)).
  returned: unless O(saved_plans=none)
  type: list
  elements: dict
  sample:
    - {name: tutorial, path: /etc/linuxnet-netns/plans/tutorial.json, python: /usr/bin/python3,
       declared: {namespaces: 1, pairs: 1, routes: 1}, matches: false, drift: [add route ns1 default via 10.0.0.1]}
namespaces:
  description: Names of the network namespaces (as C(ip netns list) shows them), sorted.
  returned: always
  type: list
  elements: str
  sample: [ns1, ns2]
host:
  description: The host's (the module's own namespace's) state.
  returned: always
  type: dict
  contains:
    lo_up:
      description: Whether C(lo) is up.
      type: bool
    forwarding:
      description:
        - IPv4 and IPv6 forwarding, and whether bridged IPv4 frames pass the IP hooks (C(bridge_nf_call_iptables),
          the sysctl C(net.bridge.bridge-nf-call-iptables); null when the C(br_netfilter) module is not loaded).
      type: dict
      sample: {ipv4: true, ipv6: false, bridge_nf_call_iptables: null}
    interfaces:
      description:
        - Interfaces by name, with kind, index, up, mtu, addresses, master, whether we made it (ours), and
          whether IPv6 is on (C(ipv6), its C(disable_ipv6); null when the kernel has no IPv6 for it).
      type: dict
      sample: {veth-host: {index: 3, kind: veth, up: true, mtu: 1500, addresses: [10.0.0.1/24], ours: true, ipv6: false}}
    routes:
      description:
        - Routes of every table but C(local). The IPv6 link-local routes the kernel adds for every
          interface (C(fe80::/64 proto kernel)) are left out, like link-local addresses.
        - C(ours) is true for a route this collection made (protocol 76, see M(linuxnet.netns.netns_route)).
      type: list
      elements: dict
      sample: [{dest: 0.0.0.0/0, gateway: 192.0.2.1, dev: eth0, metric: 0, table: 254, ours: false}]
    published:
      description:
        - The ports this collection published there (M(linuxnet.netns.port_publish)), with O(nat=true).
          C(host_address) V(null) is every address of the family.
      type: list
      elements: dict
      returned: with O(nat=true)
      sample: [{protocol: tcp, host_address: null, host_port: 8080, target: 10.0.0.2, target_port: 80, localhost: false}]
    services:
      description:
        - The systemd services this collection placed in namespaces (M(linuxnet.netns.netns_service), its drop-ins
          under C(/etc/systemd/system)). On the host, every such service by namespace, those of namespaces that do
          not exist included; in a namespace's entry, the list of those placed there.
      type: dict
      sample: {web1: [nginx.service]}
    resolver:
      description:
        - A namespace's entry only - its effective resolver, C(/etc/netns/NETNS/resolv.conf) if there is one, else
          the host's C(/etc/resolv.conf) (C(file)); its C(servers); whether this collection wrote it (C(ours),
          M(linuxnet.netns.netns_dns)); and a C(problem) (else null) when a server is a loopback address and
          nothing in the namespace is bound to UDP port 53 - a namespace seeing systemd-resolved's stub
          C(127.0.0.53), where every lookup fails.
      type: dict
      sample: {file: /etc/resolv.conf, servers: [127.0.0.53], ours: false, problem: "nameserver 127.0.0.53 ..."}
netns:
  description: The same as RV(host), for each namespace, by name.
  returned: always
  type: dict
veth_pairs:
  description: Each veth pair once, with where each end is. A peer outside every namespace read has RV(veth_pairs[].peer.outside=true).
  returned: always
  type: list
  elements: dict
  sample: [{name: veth-host, netns: null, peer: {name: veth-ns1, netns: ns1}}]
  contains:
    name:
      description: Name of one end.
      type: str
    netns:
      description: Namespace of that end; V(null) for the host.
      type: str
    peer:
      description: The other end.
      type: dict
      contains:
        name:
          description: Its name; V(null) when it is outside every namespace read.
          type: str
        netns:
          description: Its namespace; V(null) for the host (or when it is outside).
          type: str
        index:
          description: Its interface index, in a namespace that was not read.
          type: int
          returned: when RV(veth_pairs[].peer.outside=true)
        outside:
          description: The other end is in a namespace that was not read (not named, or filtered out by O(netns)).
          type: bool
          returned: when true
bridges:
  description: Bridges and their ports.
  returned: always
  type: list
  elements: dict
  sample: [{name: br0, netns: null, ports: [veth-app1, veth-app2]}]
nat:
  description:
    - This collection's nf_tables rules, per namespace (V(null) is the host) - each with its chain and text
      as C(nft list ruleset) shows it; a MASQUERADE rule also with its source, interface and exceptions.
  returned: always
  type: list
  elements: dict
  sample: [{netns: null, source: 10.0.0.0/24, out_interface: eth0}]
'''

# first, before the engine: its compiled code comes from the host's cache (see _bytecode)
from ansible_collections.linuxnet.netns.plugins.module_utils import _bytecode  # noqa: F401 pylint: disable=unused-import
from ansible_collections.linuxnet.netns.plugins.module_utils import _info
from ansible_collections.linuxnet.netns.plugins.module_utils import _module
from ansible_collections.linuxnet.netns.plugins.module_utils._common import ValidationError


def main():
    module = _module.new_module(dict(_info.ARGUMENT_SPEC))
    try:
        read = _info.prepare(module.params)
    except ValidationError as exc:
        module.fail_json(msg=str(exc))
    _module.run(module, read, read_only=True)


if __name__ == '__main__':
    main()
