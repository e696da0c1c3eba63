#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: linuxnet.netns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: bridge
short_description: Manage Linux bridges on the host or in network namespaces
version_added: 0.1.0
description:
  - Creates a Linux bridge (like Docker's C(docker0)) on the host or in a namespace, with its
    addresses (the gateway of the namespaces behind it), MTU and up state.
  - Ports are attached from the other side, with the O(linuxnet.netns.veth#module:master) option
    of M(linuxnet.netns.veth). Keeping the namespaces behind a bridge apart is a setting of each port,
    as the kernel keeps it (O(linuxnet.netns.veth#module:isolated)).
  - An existing interface of that name that is not a bridge is an error unless O(replace=true);
    O(state=absent) never deletes an interface that is not a bridge.
  - Every bridge the module creates carries the alias C(linuxnet.netns).
  - Takes one bridge or many (O(bridges)) in one call.
options:
  name: &name
    description: Name of the bridge. At most 15 bytes.
    type: str
  netns: &netns
    description: Namespace of the bridge; omit for the host.
    type: str
  addresses: &addresses
    description:
      - Addresses in CIDR form (IPv4 and IPv6). Exact - other addresses are removed (IPv6
        link-local ones excepted). Omit to leave the addresses alone.
    type: list
    elements: str
  mtu: &mtu
    description: MTU of the bridge, 68 to 65535 (what the kernel takes for a bridge).
    type: int
  up: &up
    description: Whether the bridge is up.
    type: bool
    default: true
  replace: &replace
    description: Delete an existing interface of that name that is not a bridge, then create the bridge.
    type: bool
    default: false
  state: &state
    description: Whether the bridge should exist. Deleting a bridge releases its ports.
    type: str
    choices: [present, absent]
    default: present
  bridges:
    description: Many bridges in one call, each with the options above.
    type: list
    elements: dict
    suboptions:
      name: *name
      netns: *netns
      addresses: *addresses
      mtu: *mtu
      up: *up
      replace: *replace
      state: *state
  purge:
    description:
      - Also delete every bridge this collection made (alias C(linuxnet.netns)), on the host and in
        the namespaces the call names, that the call does not declare. Bridges made by anything else
        (C(docker0), yours) are never touched.
    type: bool
    default: false
extends_documentation_fragment:
  - linuxnet.netns._common
author:
  - linuxnet.netns contributors (@linuxnet)
'''

EXAMPLES = r'''
- name: A docker0-style bridge with the subnet's gateway address
  linuxnet.netns.bridge:
    name: br0
    addresses: [172.30.0.1/24, "fd30::1/64"]

- name: A bridge inside a namespace
  linuxnet.netns.bridge:
    name: br-inner
    netns: router
    mtu: 9000
'''

RETURN = r'''
bridges:
  description: Each declared bridge as it is after the run (as it would be, in check mode); null for an absent one.
  returned: always
  type: list
  elements: dict
  sample:
    - {name: br0, netns: null, kind: bridge, up: true, mtu: 1500, addresses: [172.30.0.1/24]}
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
from ansible_collections.linuxnet.netns.plugins.module_utils import _kind_bridge


def main():
    _module.main(_kind_bridge.KIND)


if __name__ == '__main__':
    main()
