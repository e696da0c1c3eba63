#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: linuxnet.netns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: port_publish
short_description: Publish a port of the host to a service in a namespace, like docker run -p
version_added: 0.3.0
description:
  - Docker's C(-p 8080:80) for a namespace built with this collection - a port of the host's own
    addresses forwarded (DNAT) to an address and port behind the host, with nf_tables rules in the table
    this collection owns, C(inet linuxnet_netns); nothing runs in user space.
  - The rule in chain C(prerouting) reads
    C(fib daddr type local meta nfproto ipv4 tcp dport 8080 dnat ip to 10.0.0.2:80 comment "linuxnet:pub tcp 0.0.0.0:8080 10.0.0.2:80")
    in C(nft list ruleset) - only traffic to one of the host's own addresses is translated, never
    traffic the host forwards to others. Its twin in chain C(output) serves the host's own connections
    to C(HOST:8080).
  - "Hairpin: a namespace reaching a sibling, or itself, through C(HOST:8080) works - such a connection
    is masqueraded (chain C(postrouting), only connections this rule translated, only from the target's
    own network), so that the reply comes back through the host. containernetworking/plugins#68."
  - The safe router (M(linuxnet.netns.sysctl_forward) O(linuxnet.netns.sysctl_forward#module:restrict_to))
    and Docker's C(FORWARD DROP) let published traffic through - accepts for the translated
    connections only, at the head of our forward chain and of other tables' forward-drop chains
    (their other rules are never touched). Forwarding itself must be on for traffic from other
    hosts (M(linuxnet.netns.sysctl_forward)); the host's own connections need none.
  - A UDP port's stale conntrack entries (datagrams sent to the port before its rule existed, which
    the kernel keeps sending to the host itself until they expire) are deleted when its rule is added
    or changed - never on an unchanged re-run. containernetworking/plugins#123, moby#44752.
  - A host port is published once per protocol, family and host address; the same port declared twice
    in a task, or already published by this collection to another target, is refused before any change
    (O(replace=true) takes it over). A process of the host listening on the port gets a warning naming it.
  - Each rule carries a comment of ours, so O(state=absent) and O(purge) remove exactly ours.
    All changes of one call are one atomic nf_tables transaction per namespace.
options:
  host_port: &host_port
    description:
      - The host port, V(8080), or a range, V(8000-8010) (each port of a range to one port of
        O(target_port), in order).
    type: raw
  protocol: &protocol
    description: The protocol.
    type: str
    choices: [tcp, udp]
    default: tcp
  target: &target
    description:
      - The address the port is forwarded to, for example a namespace's V(10.0.0.2). Give this or
        O(target_netns).
    type: str
  target_netns: &target_netns
    description:
      - The namespace that holds the target - its first address of the family (not on C(lo)) is the
        target, also when the same task adds it. It must exist or be created by the same task.
    type: str
  target_port: &target_port
    description: The target port, or a range as long as O(host_port)'s. Default the host port.
    type: raw
  host_address: &host_address
    description:
      - Publish on this one address of the host only; omit for all of its addresses of the family
        (like Docker's C(-p 8080:80) without an address). V(0.0.0.0) and V(::) mean all of them too,
        as in Docker's C(-p 0.0.0.0:8080:80). A multicast or broadcast address is refused.
    type: str
  family: &family
    description:
      - The family of a port published with O(target_netns) and no O(host_address); otherwise
        implied by the addresses.
    type: str
    choices: [ipv4, ipv6]
  localhost: &localhost
    description:
      - Also answer on the host's C(127.0.0.1:PORT). This sets C(net.ipv4.conf.IFACE.route_localnet=1)
        on the interface facing the target (the bridge, or the host end in point-to-point mode; left on
        when the port goes, as Docker does) and masquerades those connections to the host's address
        there. IPv4 only - the kernel never routes C(::1) off the host. The target must be on a network
        of the host, not behind a router.
    type: bool
    default: false
  replace: &replace
    description:
      - Take the host port over from another target this collection published it to (else that is
        refused, naming the other target).
    type: bool
    default: false
  netns: &netns
    description: Namespace whose ruleset holds the rules (a router namespace); omit for the host.
    type: str
  state: &state
    description: Whether the port should be published. With V(absent) only the host side is needed.
    type: str
    choices: [present, absent]
    default: present
  ports:
    description: Many published ports in one call, each with the options above.
    type: list
    elements: dict
    suboptions:
      host_port: *host_port
      protocol: *protocol
      target: *target
      target_netns: *target_netns
      target_port: *target_port
      host_address: *host_address
      family: *family
      localhost: *localhost
      replace: *replace
      netns: *netns
      state: *state
  purge:
    description:
      - Also remove the ports this collection published, on the host and in the namespaces the call
        names, that the call does not declare. Other rules and tables are never touched.
    type: bool
    default: false
extends_documentation_fragment:
  - linuxnet.netns._common
notes:
  - Each namespace has its own nf_tables ruleset and conntrack table; a port published on the host
    serves the host's addresses only.
author:
  - linuxnet.netns contributors (@linuxnet)
'''

EXAMPLES = r'''
- name: docker run -p 8080:80, for the web server in namespace web1
  linuxnet.netns.port_publish:
    host_port: 8080
    target_netns: web1
    target_port: 80

- name: DNS over UDP and TCP, on one address of the host, to a fixed target
  linuxnet.netns.port_publish:
    ports:
      - {host_port: 53, protocol: udp, target: 10.0.0.3, host_address: 192.0.2.10}
      - {host_port: 53, protocol: tcp, target: 10.0.0.3, host_address: 192.0.2.10}

- name: A range, and 127.0.0.1:9000-9009 on the host too
  linuxnet.netns.port_publish:
    host_port: 9000-9009
    target: 10.0.0.4
    target_port: 7000-7009
    localhost: true

- name: IPv6
  linuxnet.netns.port_publish:
    host_port: 8443
    target: fd00:0:0:1::2
    target_port: 443

- name: Unpublish
  linuxnet.netns.port_publish:
    host_port: 8080
    state: absent
'''

RETURN = r'''
ports:
  description:
    - Each declared port or range, with the target it resolved to.
    - Past 100 items (O(ports) and what O(purge) adds), RV(port_lines) instead - at a thousand they
      would be most of the result, and Ansible's handling of a result grows with its size.
  returned: when the call has at most 100 items
  type: list
  elements: dict
  sample:
    - netns: null
      protocol: tcp
      host_address: null
      host_port: "8080"
      target: 10.0.0.2
      target_netns: web1
      target_port: "80"
      localhost: false
      state: present
port_lines:
  description:
    - Past 100 items, each of RV(ports) as one line, every field of it there - C(absent:) first for
      O(ports[].state=absent), C(*) for every address of the host, the target address and port, the
      O(ports[].target_netns) it was resolved from, C(also on 127.0.0.1) for O(ports[].localhost=true)
      and the namespace O(ports[].netns).
  returned: when the call has more than 100 items
  type: list
  elements: str
  sample:
    - tcp *:20000 -> 10.203.0.11:80 (target_netns web1)
    - tcp *:8443 -> 10.203.0.12:443, also on 127.0.0.1
    - "absent: udp *:5353 -> port 53 of netns dns1 in netns edge"
purged:
  description: The objects O(purge=true) removed (in check mode, would remove).
  returned: always
  type: list
  elements: str
  sample: [published port tcp 0.0.0.0:9090 -> 10.0.0.9:90 in the host]
actions:
  description:
    - The changes made (in check mode, that would be made), in order.
    - >-
      When one namespace's nf_tables transaction adds or deletes more than 100 rules of published ports,
      those rules are told in one line for each chain, kind of rule (the comment's first word), reason,
      protocol and host address, with their number and their host ports - for example
      C(add 1000 rules inet linuxnet_netns prerouting: linuxnet:pub tcp 0.0.0.0:20000-20999 in the host).
      The diff (C(--diff)) still shows every rule, and check mode predicts the same lines.
  returned: always
  type: list
  elements: str
'''

# first, before the engine: its compiled code comes from the host's cache (see _bytecode)
from ansible_collections.linuxnet.netns.plugins.module_utils import _bytecode  # noqa: F401 pylint: disable=unused-import
from ansible_collections.linuxnet.netns.plugins.module_utils import _module
from ansible_collections.linuxnet.netns.plugins.module_utils import _kind_publish


def main():
    _module.main(_kind_publish.KIND)


if __name__ == '__main__':
    main()
