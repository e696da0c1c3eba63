#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: linuxnet.netns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: netns_dns
short_description: Give a network namespace a resolver of its own (/etc/netns/NS/resolv.conf)
version_added: 0.4.0
description:
  - Writes C(/etc/netns/NETNS/resolv.conf), the file C(ip netns exec NETNS) binds over C(/etc/resolv.conf)
    and the services placed with M(linuxnet.netns.netns_service) see there. Its first line says
    C(Managed by linuxnet.netns.netns_dns).
  - Without one, a namespace sees the host's C(/etc/resolv.conf); on a host with systemd-resolved that
    names the stub C(127.0.0.53) - the namespace's own loopback, where nothing answers, so every lookup
    fails. M(linuxnet.netns.netns_info) reports such a namespace (C(resolver.problem)).
  - A resolver file this collection did not write is refused, before any change, unless O(take_over=true).
options:
  netns: &netns
    description:
      - The network namespace (as in C(ip netns list)). Required.
      - With a file to write, it must exist or be created by the same task (M(linuxnet.netns.network)).
      - Mutually exclusive with O(resolvers).
    type: str
  source: &source
    description:
      - V(upstream) - the host's real upstream servers - the C(nameserver) lines of the host's
        C(/etc/resolv.conf) that are not loopback addresses, or, when it names loopback servers only (the
        systemd-resolved stub C(127.0.0.53)), those of C(/run/systemd/resolve/resolv.conf), with that file's
        C(search), C(domain), C(options) and C(sortlist) lines. Refused when neither has a usable server.
        A copy as of the run - a later run updates it.
      - V(static) - O(servers), O(search) and O(options).
      - V(none) - no file of this collection's; one it wrote is removed (and C(/etc/netns/NETNS) when left
        empty); the namespace sees the host's C(/etc/resolv.conf) again. The same as O(state=absent).
    type: str
    choices: [upstream, static, none]
    default: upstream
  servers: &servers
    description:
      - With O(source=static), the nameservers, IPv4 or IPv6 addresses, at most 3 (the resolver, glibc's
        C(MAXNS), reads the first three and ignores the rest, so more are refused).
      - A loopback address is the namespace's own loopback - a server must run inside the namespace.
    type: list
    elements: str
  search: &search
    description: With O(source=static), the C(search) domains.
    type: list
    elements: str
  options: &options
    description: With O(source=static), the resolver's C(options) (V(ndots:2), V(edns0), V(rotate) ...).
    type: list
    elements: str
  take_over: &take_over
    description:
      - Replace (or, absent, remove) a resolver file at C(/etc/netns/NETNS/resolv.conf) that this
        collection did not write. Without, such a file is refused (present) or left alone with a
        warning (absent).
    type: bool
    default: false
  state: &state
    description: V(absent) removes this collection's resolver file of the namespace, as O(source=none).
    type: str
    choices: [present, absent]
    default: present
  resolvers:
    description: Many namespaces' resolvers in one call, each with the options above.
    type: list
    elements: dict
    suboptions:
      netns: *netns
      source: *source
      servers: *servers
      search: *search
      options: *options
      take_over: *take_over
      state: *state
  purge:
    description:
      - Also remove the resolver files this collection wrote for namespaces the call does not declare.
    type: bool
    default: false
extends_documentation_fragment:
  - linuxnet.netns._common
author:
  - linuxnet.netns contributors (@linuxnet)
'''

EXAMPLES = r'''
- name: The host's real upstream servers, also behind systemd-resolved's stub
  linuxnet.netns.netns_dns:
    netns: web1

- name: A resolver in the namespace's own network
  linuxnet.netns.netns_dns:
    netns: lab1
    source: static
    servers: [10.200.1.1]
    search: [lab.example]
    options: [ndots:1]

- name: Back to the host's /etc/resolv.conf
  linuxnet.netns.netns_dns:
    netns: web1
    state: absent
'''

RETURN = r'''
resolvers:
  description: Each declared resolver as it is after the run (as it would be, in check mode).
  returned: always
  type: list
  elements: dict
  sample:
    - netns: web1
      state: present
      source: upstream
      path: /etc/netns/web1/resolv.conf
      servers: [192.0.2.53]
      search: [example.com]
      options: []
      ours: true
purged:
  description: The resolvers O(purge=true) removed (in check mode, would remove).
  returned: always
  type: list
  elements: str
  sample: [resolver of netns old1]
actions:
  description: The changes made (in check mode, that would be made), in order.
  returned: always
  type: list
  elements: str
'''

# first, before the engine: its compiled code comes from the host's cache (see _bytecode)
from ansible_collections.linuxnet.netns.plugins.module_utils import _bytecode  # noqa: F401 pylint: disable=unused-import
from ansible_collections.linuxnet.netns.plugins.module_utils import _module
from ansible_collections.linuxnet.netns.plugins.module_utils import _kind_dns


def main():
    _module.main(_kind_dns.KIND)


if __name__ == '__main__':
    main()
