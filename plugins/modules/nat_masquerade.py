#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: linuxnet.netns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: nat_masquerade
short_description: MASQUERADE source prefixes out an interface, with nf_tables over netlink
version_added: 0.1.0
description:
  - The tutorial's C(iptables -t nat -A POSTROUTING -s 10.0.0.0/24 -o eth0 -j MASQUERADE), as an
    nf_tables rule in a table this collection owns, C(inet linuxnet_netns) (chain C(postrouting),
    type nat, hook postrouting, priority srcnat), on the host or inside a namespace.
  - The rule reads C(ip saddr 10.0.0.0/24 oifname "eth0" masquerade comment "linuxnet:masq 10.0.0.0/24 eth0")
    in C(nft list ruleset). The comment identifies it; the rule's expressions are checked too, and a
    rule that does not match its comment is replaced.
  - Other tables (iptables-nft's, firewalld's, the user's own) are never read for planning, changed or
    flushed, so the rule coexists with them. All changes of one call go to the kernel as one atomic
    nf_tables transaction.
  - O(state=absent) removes only our rule, and our table once it holds no rule.
  - Each namespace has its own nf_tables ruleset and its own conntrack table; a rule on the host does
    not apply to traffic inside a namespace, and the other way round. Set O(netns) for a namespace.
  - Takes one rule or many (O(rules)) in one call.
options:
  source: &source
    description: Source prefix to masquerade, IPv4 or IPv6, for example V(10.0.0.0/24).
    type: str
  out_interface: &out_interface
    description: Interface the traffic leaves through (the uplink), for example V(eth0).
    type: str
  exclude_destinations: &exclude_destinations
    description:
      - Destinations to leave alone - traffic from O(source) to these prefixes keeps its own source
        address (for example the other hosts' namespace subnets, reached through host-gw routes).
      - Part of the rule - a rule with other exceptions is replaced.
    type: list
    elements: str
  netns: &netns
    description: Namespace whose ruleset holds the rule; omit for the host.
    type: str
  state: &state
    description: Whether the rule should exist.
    type: str
    choices: [present, absent]
    default: present
  rules:
    description: Many rules in one call, each with the options above.
    type: list
    elements: dict
    suboptions:
      source: *source
      out_interface: *out_interface
      exclude_destinations: *exclude_destinations
      netns: *netns
      state: *state
  purge:
    description:
      - Also remove this collection's MASQUERADE rules, on the host and in the namespaces the call
        names, that the call does not declare. Other rules and tables are never touched.
    type: bool
    default: false
extends_documentation_fragment:
  - linuxnet.netns._common
author:
  - linuxnet.netns contributors (@linuxnet)
'''

EXAMPLES = r'''
- name: The tutorial's NAT, out eth0
  linuxnet.netns.nat_masquerade:
    source: 10.0.0.0/24
    out_interface: eth0

- name: IPv4 and IPv6 in one transaction
  linuxnet.netns.nat_masquerade:
    rules:
      - {source: 172.30.0.0/24, out_interface: eth0}
      - {source: "fd30::/64", out_interface: eth0}

- name: Namespaces on other hosts are reached without NAT (host-gw routes over the underlay)
  linuxnet.netns.nat_masquerade:
    source: 10.200.1.0/24
    out_interface: eth0
    exclude_destinations: [10.200.2.0/24, 10.200.3.0/24]

- name: Remove it (our table goes with the last rule)
  linuxnet.netns.nat_masquerade:
    source: 10.0.0.0/24
    out_interface: eth0
    state: absent
'''

RETURN = r'''
rules:
  description: Each declared rule, with the text C(nft list ruleset) shows for it.
  returned: always
  type: list
  elements: dict
  sample:
    - netns: null
      source: 10.0.0.0/24
      out_interface: eth0
      state: present
      exclude_destinations: []
      rule: ip saddr 10.0.0.0/24 oifname "eth0" masquerade comment "linuxnet:masq 10.0.0.0/24 eth0"
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
from ansible_collections.linuxnet.netns.plugins.module_utils import _kind_masquerade


def main():
    _module.main(_kind_masquerade.KIND)


if __name__ == '__main__':
    main()
