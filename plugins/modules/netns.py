#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: linuxnet.netns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: netns
short_description: Manage named Linux network namespaces
version_added: 0.1.0
description:
  - Creates and removes named network namespaces, the ones C(ip netns) lists (files under C(/run/netns)).
  - Names are compared exactly, so an existing V(mario2) never stands in for a missing V(mario).
  - A new namespace gets its loopback interface up (a fresh namespace has C(lo) down, and anything that
    binds to 127.0.0.1 in it fails); O(lo_up=false) keeps it down.
  - O(state=absent) removes the namespace so that no host-side end of its veth pairs survives it. When
    processes still run in the namespace (or hold a descriptor of it, or it is mounted elsewhere too),
    the kernel keeps it alive; the module then deletes its interfaces as well, removes its name, and
    warns with the PIDs of those processes.
  - Takes one namespace (O(name)) or many (O(namespaces)) in one call.
options:
  name:
    description: Name of the namespace. Mutually exclusive with O(namespaces).
    type: str
  state: &state
    description: Whether the namespace should exist.
    type: str
    choices: [present, absent]
    default: present
  lo_up: &lo_up
    description:
      - Whether C(lo) in the namespace is up. V(null) leaves it as it is.
    type: bool
    default: true
  namespaces:
    description:
      - Many namespaces in one call, each with the options above (O(namespaces[].name),
        O(namespaces[].state), O(namespaces[].lo_up)).
    type: list
    elements: dict
    suboptions:
      name:
        description: Name of the namespace.
        type: str
      state: *state
      lo_up: *lo_up
  purge:
    description:
      - Also remove every namespace this collection made (its C(lo) carries the alias
        C(linuxnet.netns)) that the call does not declare. Namespaces made by anything else are
        never touched.
    type: bool
    default: false
extends_documentation_fragment:
  - linuxnet.netns._common
author:
  - linuxnet.netns contributors (@linuxnet)
'''

EXAMPLES = r'''
- name: The tutorial's namespace, with lo up
  linuxnet.netns.netns:
    name: ns1

- name: Many namespaces in one task
  linuxnet.netns.netns:
    namespaces:
      - name: app1
      - name: app2
      - name: app3
        lo_up: false

- name: Remove a namespace (its veth pairs go with it, host side included)
  linuxnet.netns.netns:
    name: ns1
    state: absent
'''

RETURN = r'''
namespaces:
  description: Each declared namespace as it is after the run (as it would be, in check mode).
  returned: always
  type: list
  elements: dict
  sample:
    - name: ns1
      state: present
      lo_up: true
      ours: true
    - name: old
      state: absent
      pids: [4242]
      held_by: [PID 4242 (sleep, running in it)]
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
  sample: [create netns ns1, set lo up in netns ns1]
'''

# first, before the engine: its compiled code comes from the host's cache (see _bytecode)
from ansible_collections.linuxnet.netns.plugins.module_utils import _bytecode  # noqa: F401 pylint: disable=unused-import
from ansible_collections.linuxnet.netns.plugins.module_utils import _module
from ansible_collections.linuxnet.netns.plugins.module_utils import _kind_netns


def main():
    _module.main(_kind_netns.KIND)


if __name__ == '__main__':
    main()
