#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: linuxnet.netns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: netns_service
short_description: Run an existing systemd service inside a network namespace
version_added: 0.4.0
description:
  - Places a service that is already installed (C(nginx), C(getty@tty1)) into a named network namespace
    with a drop-in of this collection's, C(/etc/systemd/system/SERVICE.d/50-linuxnet-netns.conf), whose
    first line says C(Managed by linuxnet.netns.netns_service). The service's own unit file is never
    touched.
  - The drop-in sets systemd's C(NetworkNamespacePath=/run/netns/NS) (systemd 242 or later), binds the
    namespace's resolver file over C(/etc/resolv.conf) (O(resolv_conf)), and orders the service after
    C(linuxnet-netns.service), the unit that re-creates this collection's saved namespaces at boot
    (C(Wants=) and C(After=); where that unit is not installed, nothing waits).
  - One C(systemctl daemon-reload) a run, only when a drop-in changed. Where systemd is not running
    (a container, a chroot), the drop-ins are written, the reload is skipped with a warning, and systemd
    reads them when it starts; that is never a failure.
  - A running service stays in the namespace it started in until it restarts (O(restart)).
  - Refused before any change, naming the parameter and its value - a service systemd has no unit file
    for (an instance such as C(getty@tty1) needs its template's), a namespace that neither exists nor is
    created by the same task, and a file at the drop-in's path that this collection did not write.
options:
  service: &service
    description:
      - The service, as V(nginx) or V(nginx.service); an instance as V(getty@tty1).
      - Mutually exclusive with O(services).
    type: str
  netns: &netns
    description:
      - The network namespace (as in C(ip netns list)) to run the service in. Required with
        O(state=present).
      - It must exist, or be created by the same task (M(linuxnet.netns.network)); in check mode, a
        missing one is assumed made by an earlier task.
    type: str
  resolv_conf: &resolv_conf
    description:
      - Bind C(/etc/netns/NETNS/resolv.conf) (see M(linuxnet.netns.netns_dns)) over the service's
        C(/etc/resolv.conf), as C(ip netns exec) does - C(BindReadOnlyPaths=-...), whose C(-) makes a
        missing file harmless (the service then sees the host's).
      - With V(true), a namespace name holding C(:), a quote or a backslash is refused (the setting
        would read them as separators); V(false) has no such limit.
    type: bool
    default: true
  restart: &restart
    description:
      - Run C(systemctl try-restart --no-block SERVICE) after the reload when the drop-in changed, so that a
        running service moves into its namespace now (a stopped one stays stopped). Nothing is restarted
        when the drop-in is already as declared, nor where systemd is not running.
      - The restart is queued, not waited for - the service now starts after C(linuxnet-netns.service), which
        applies the saved plans and so waits for this run to end (a wait here would never end). A restart
        systemd refuses to queue is a warning naming the service; the drop-in stays.
    type: bool
    default: false
  state: &state
    description:
      - V(absent) removes this collection's drop-in (and its C(SERVICE.d) directory when left empty); the
        service runs on the host's network again once it restarts.
      - A file at the drop-in's path without this collection's first line is never removed - a warning says so.
    type: str
    choices: [present, absent]
    default: present
  services:
    description: Many services in one call, each with the options above.
    type: list
    elements: dict
    suboptions:
      service: *service
      netns: *netns
      resolv_conf: *resolv_conf
      restart: *restart
      state: *state
  purge:
    description:
      - Also take out of their namespaces the services this collection placed (drop-ins of its own) that
        the call does not declare.
    type: bool
    default: false
extends_documentation_fragment:
  - linuxnet.netns._common
notes:
  - C(systemd-analyze verify SERVICE) accepts the drop-in; it needs no running systemd.
  - The drop-in ties the service to the namespace's path, not to the namespace itself - a namespace
    removed and made again is found again when the service restarts.
author:
  - linuxnet.netns contributors (@linuxnet)
'''

EXAMPLES = r'''
- name: nginx inside namespace web1, moved there now
  linuxnet.netns.netns_service:
    service: nginx
    netns: web1
    restart: true

- name: Several services, one daemon-reload
  linuxnet.netns.netns_service:
    services:
      - {service: app@blue, netns: blue}
      - {service: app@green, netns: green}

- name: Back on the host's network (at its next restart)
  linuxnet.netns.netns_service:
    service: nginx
    state: absent
'''

RETURN = r'''
services:
  description: Each declared service as it is after the run (as it would be, in check mode).
  returned: always
  type: list
  elements: dict
  sample:
    - service: nginx.service
      state: present
      netns: web1
      dropin: /etc/systemd/system/nginx.service.d/50-linuxnet-netns.conf
      unit_file: /lib/systemd/system/nginx.service
      resolv_conf: true
      restarted: false
purged:
  description: The services O(purge=true) took out of their namespaces (in check mode, would).
  returned: always
  type: list
  elements: str
  sample: [service old.service]
actions:
  description: The changes made (in check mode, that would be made), in order.
  returned: always
  type: list
  elements: str
'''

# first, before the engine: its compiled code comes from the host's cache (see _bytecode)
from ansible_collections.linuxnet.netns.plugins.module_utils import _bytecode  # noqa: F401 pylint: disable=unused-import
from ansible_collections.linuxnet.netns.plugins.module_utils import _module
from ansible_collections.linuxnet.netns.plugins.module_utils import _kind_service


def main():
    _module.main(_kind_service.KIND)


if __name__ == '__main__':
    main()
