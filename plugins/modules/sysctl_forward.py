#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: linuxnet.netns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: sysctl_forward
short_description: Turn IPv4/IPv6 forwarding on or off, on the host or inside a network namespace
version_added: 0.1.0
description:
  - Sets C(net.ipv4.ip_forward) and C(net.ipv6.conf.all.forwarding). Every network namespace has
    its own values, so the host's setting does not reach its namespaces, and the other way round.
  - On the host, O(persist=true) also writes them to a file in C(/etc/sysctl.d), atomically, so
    that they survive a reboot. A file of someone else's (O(persist_file)) is edited, not replaced.
  - Takes one namespace's settings or many (O(settings)) in one call.
options:
  netns: &netns
    description: Namespace whose forwarding to set; omit for the host.
    type: str
  ipv4: &ipv4
    description: C(net.ipv4.ip_forward). Omit to leave it as it is.
    type: bool
  ipv6: &ipv6
    description: C(net.ipv6.conf.all.forwarding). Omit to leave it as it is.
    type: bool
  restrict_to: &restrict_to
    description:
      - Forward only traffic from or to these prefixes (IPv4 or IPv6, for example V(10.200.1.0/24)), so
        that turning forwarding on does not make the host a router for anyone else on its networks.
      - A chain C(forward) in this collection's nf_tables table C(inet linuxnet_netns) accepts them and
        drops the rest of the forwarded traffic. It is written before forwarding goes on, in the same run.
      - V([]) removes those rules. Omit to leave them as they are.
    type: list
    elements: str
  inbound_from: &inbound_from
    description:
      - With O(restrict_to), close the managed prefixes to strangers - forwarded traffic INTO them is
        accepted only from the O(restrict_to) prefixes themselves (the fleet's subnets), from these
        prefixes, as replies to connections they opened (C(ct state established,related)), and when the
        host translated it to a port it publishes (M(linuxnet.netns.port_publish)); the rest is dropped.
        Without it, anything that has a route via the host reaches the namespaces directly (Docker 28
        closed the same hole). The host's own connections to its namespaces are not forwarded and stay open.
      - V([]) scopes inbound traffic to the fleet and replies only. Omit for the old behaviour (from or to
        a managed prefix is accepted).
    type: list
    elements: str
    version_added: 0.3.0
  isolate: &isolate
    description:
      - With O(restrict_to), also drop forwarded traffic whose source and destination both lie in one of
        those prefixes, ahead of the accepts. Namespaces routed through the host, each on a veth of its
        own (the tutorial's topology), then cannot reach each other, but still reach the host and, through
        it, everything O(restrict_to) lets them reach - as on a bridge whose ports are isolated (see
        O(linuxnet.netns.veth#module:isolated)). Ports published with M(linuxnet.netns.port_publish)
        stay reachable.
      - V(true) needs a non-empty O(restrict_to); with O(restrict_to) given, V(false) removes the drops.
    type: bool
    default: false
  accept_in_drop_policies: &accept_in_drop_policies
    description:
      - With O(restrict_to), also give those prefixes scoped accepts at the head of each chain of other
        tables that drops forwarded traffic (Docker's C(FORWARD DROP), through C(DOCKER-USER)), which would
        otherwise drop what ours accepts. Those tables' own rules are never changed; our accepts carry
        this collection's comment.
      - V(false) leaves other tables alone.
    type: bool
    default: true
  persist: &persist
    description: Also write the values to O(persist_file). Host only.
    type: bool
    default: false
  persist_file: &persist_file
    description:
      - The file O(persist=true) writes.
      - A file this module wrote (its first line says C(Managed by linuxnet.netns.sysctl_forward)), or
        none, is written whole - the header and the declared keys.
      - Any other file (your C(/etc/sysctl.conf), say) is edited key by key, as M(ansible.posix.sysctl)
        does - only the keys this call declares change. On each line that sets such a key (written
        with C(.) or C(/), with or without a leading C(-)), only the value is replaced - the key as
        written and the spacing around C(=) stay; a key that no line sets is appended as
        C(key = value). Comments, blank lines, other keys and their order stay as they are, and so do
        the file's mode and owner; a symbolic link stays one (the file it points to is edited).
        The diff shows the whole new text.
    type: path
    default: /etc/sysctl.d/90-linuxnet-netns.conf
  settings:
    description: Several namespaces' settings in one call, each with the options above.
    type: list
    elements: dict
    suboptions:
      netns: *netns
      ipv4: *ipv4
      ipv6: *ipv6
      restrict_to: *restrict_to
      inbound_from: *inbound_from
      isolate: *isolate
      accept_in_drop_policies: *accept_in_drop_policies
      persist: *persist
      persist_file: *persist_file
extends_documentation_fragment:
  - linuxnet.netns._common
author:
  - linuxnet.netns contributors (@linuxnet)
'''

EXAMPLES = r'''
- name: Forwarding on the host, now and after a reboot (the tutorial's sysctl -w net.ipv4.ip_forward=1)
  linuxnet.netns.sysctl_forward:
    ipv4: true
    persist: true

- name: Forwarding for the managed subnets only (a safe router)
  linuxnet.netns.sysctl_forward:
    ipv4: true
    restrict_to: [10.200.1.0/24]

- name: A fleet's subnets, closed to strangers; the monitoring network may come in
  linuxnet.netns.sysctl_forward:
    ipv4: true
    restrict_to: [10.200.1.0/24, 10.200.2.0/24]
    inbound_from: [192.0.2.0/28]

- name: A safe router whose namespaces (one veth each) cannot reach each other
  linuxnet.netns.sysctl_forward:
    ipv4: true
    restrict_to: [10.200.1.0/24]
    isolate: true

- name: A namespace that routes for others
  linuxnet.netns.sysctl_forward:
    netns: router
    ipv4: true
    ipv6: true
'''

RETURN = r'''
settings:
  description: Each declared setting as it is after the run (as it would be, in check mode).
  returned: always
  type: list
  elements: dict
  sample:
    - {netns: null, ipv4: true, restrict_to: [10.200.1.0/24], isolate: false,
       persist_file: /etc/sysctl.d/90-linuxnet-netns.conf}
actions:
  description: The changes made (in check mode, that would be made), in order.
  returned: always
  type: list
  elements: str
'''

# first, before the engine: its compiled code comes from the host's cache (see _bytecode)
from ansible_collections.linuxnet.netns.plugins.module_utils import _bytecode  # noqa: F401 pylint: disable=unused-import
from ansible_collections.linuxnet.netns.plugins.module_utils import _module
from ansible_collections.linuxnet.netns.plugins.module_utils import _kind_forwarding


def main():
    _module.main(_kind_forwarding.KIND)


if __name__ == '__main__':
    main()
