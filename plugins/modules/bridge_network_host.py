#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: linuxnet.netns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: bridge_network_host
short_description: The linuxnet.netns.bridge_network role's work on one host - its read, or its plan and apply
version_added: 0.1.0
description:
  - The two tasks the R(linuxnet.netns.bridge_network,ansible_collections.linuxnet.netns.bridge_network_role)
    role runs on each host. An action plugin - it plans on the controller and runs
    M(linuxnet.netns.netns_info) or M(linuxnet.netns.network) on the host, one module run per task.
  - O(step=read) reads the host (its interfaces, addresses and routes, nothing from inside its
    namespaces) and works out its uplink, underlay address and current subnet, returned as C(local)
    and set as the fact C(_bridge_network_local).
  - O(step=apply) plans the host's network from the role's settings, the read (the registered
    C(_bridge_network_info)) and the fleet's allocation - or, with the state C(absent), the teardown -
    fails with the plan's errors before anything is changed, returns its warnings, and applies it
    with M(linuxnet.netns.network), which removes the role's objects that are not declared.
  - Where a module run finds pyroute2 missing and O(install_deps) is on, it installs the OS family's
    package (C(python3-pyroute2) on the Debian family, with M(ansible.builtin.apt)) and runs the
    module again; on a host that has pyroute2 this costs nothing.
  - Made for the role, which builds its arguments from its variables (C(_bridge_network_settings) in
    C(roles/bridge_network/vars/main.yml)); use the role, or M(linuxnet.netns.network) directly.
options:
  step:
    description: The read, or the plan and apply.
    type: str
    choices: [read, apply]
    required: true
  settings:
    description: The role's settings, each C(bridge_network_*) variable under its name without the prefix.
    type: dict
    required: true
  install_deps:
    description: Install pyroute2 where a module run finds it missing, then run the module again.
    type: bool
    default: false
  inputs:
    description:
      - O(step=apply) only. What the plan needs besides the settings and the read - with the state
        C(present) C(host), C(fleet), C(subnets) and C(underlays); with C(absent) C(known_subnets)
        and C(current).
    type: dict
  save:
    description: O(step=apply) only. M(linuxnet.netns.network)'s O(linuxnet.netns.network#module:save).
    type: dict
  validate:
    description:
      - Check the role's variables (C(bridge_network_*) as the play has them) against the role's argument
        spec (C(roles/bridge_network/meta/argument_specs.yml)) first, as Ansible's own validation task does;
        the task fails with its errors, having read or changed nothing. The role's first task on a host asks
        for it, so that its playbooks can turn that separate task off (C(rolespec_validate=false)), a task
        per host less.
    type: bool
    default: false
  direct:
    description:
      - Run the engine on the host without Ansible's module wrapper - its code, arguments and flags fed to the
        host's Python on stdin, as Ansible feeds a pipelined module, through the task's connection, become and
        environment - where Ansible would pipeline a module and the task is neither delegated nor async. The
        result is the module's. Elsewhere, and for arguments the run cannot check exactly as the module would,
        the module runs. C(engine_run) in the result says which (V(direct) or V(module)).
      - The role passes its C(bridge_network_direct).
    type: bool
    default: false
  state:
    description:
      - The state the role's entry point is for (V(absent) for C(teardown)); the task fails, changing nothing,
        when the role's C(bridge_network_state) differs. Omit for either.
    type: str
    choices: [present, absent]
extends_documentation_fragment:
  - linuxnet.netns._common
author:
  - linuxnet.netns contributors (@linuxnet)
'''

EXAMPLES = r'''
# The role's own tasks (roles/bridge_network/tasks/read.yml and main.yml)
- name: Read the host's namespaces, links and routes; note its uplink, underlay address and subnet
  linuxnet.netns.bridge_network_host:
    step: read
    validate: true
    settings: "{{ _bridge_network_settings }}"
    install_deps: "{{ bridge_network_install_deps }}"
  register: _bridge_network_info
'''

RETURN = r'''
local:
  description: O(step=read). The host's uplink, underlay address and current subnet.
  returned: success
  type: dict
engine_run:
  description: How the module ran on the host - V(direct), without Ansible's module wrapper (O(direct)), or as V(module).
  returned: when a module ran
  type: str
  sample: direct
deps:
  description: What was done to install pyroute2, where a module run found it missing.
  returned: when pyroute2 was missing and O(install_deps) is on
  type: dict
  sample: {os_family: Debian, package: python3-pyroute2, changed: true, msg: python3-pyroute2 installed}
'''

from ansible.module_utils.basic import AnsibleModule


def main():
    module = AnsibleModule(argument_spec=dict(
        step=dict(type='str', choices=['read', 'apply'], required=True),
        settings=dict(type='dict', required=True),
        install_deps=dict(type='bool', default=False),
        inputs=dict(type='dict'),
        save=dict(type='dict'),
        state=dict(type='str', choices=['present', 'absent']),
        validate=dict(type='bool', default=False),
        direct=dict(type='bool', default=False),
    ), supports_check_mode=True)
    module.fail_json(msg='linuxnet.netns.bridge_network_host runs as an action plugin, on the controller: '
                         'it was run as a module, without its action plugin')


if __name__ == '__main__':
    main()
