# -*- coding: utf-8 -*-
# Copyright: linuxnet.netns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):

    DOCUMENTATION = r'''
options: {}
requirements:
  - pyroute2 0.7.2 or later on the managed host (Debian/Ubuntu package C(python3-pyroute2)).
  - Linux, with root or the capabilities C(CAP_NET_ADMIN) and C(CAP_SYS_ADMIN).
notes:
  - All changes go through netlink (pyroute2); the module runs no C(ip), C(nft) or C(sysctl) command.
  - Runs of the modules on one host are serialised with a lock on C(/run/netns).
  - Every input is validated before anything is changed; a failed validation leaves the host as it was.
attributes:
  check_mode:
    support: full
    description:
      - Check mode computes the same plan as a real run and reports it without applying it.
      - >-
        In check mode the play's earlier tasks have made nothing. What a real run refuses for its absence
        and an earlier task may make - a namespace (taken as empty), a master bridge, a route's device,
        an address in a gateway's subnet, a published port's target namespace or its address - is
        assumed there, with a warning naming it (C(check mode: netns ns1 does not exist; assumed created
        by an earlier task)). A real run still refuses it.
  diff_mode:
    support: full
    description: Shows each object's state before and after.
  idempotent:
    support: full
    description: An identical second run reports no change.
  platform:
    support: full
    platforms: linux
    description: Linux only.
'''

    NETNS = r'''
options:
  netns:
    description:
      - Name of the network namespace (as in C(ip netns list)) the object is in.
      - Omit for the namespace the module runs in, the host's.
    type: str
'''

    INFO = r'''
options: {}
requirements:
  - pyroute2 0.7.2 or later on the managed host (Debian/Ubuntu package C(python3-pyroute2)).
  - Linux, with root or the capabilities C(CAP_NET_ADMIN) and C(CAP_SYS_ADMIN).
attributes:
  check_mode:
    support: full
    description: Read-only; runs the same in check mode.
  diff_mode:
    support: none
    description: Reads only, so there is nothing to diff.
  idempotent:
    support: full
    description: Changes nothing.
  platform:
    support: full
    platforms: linux
    description: Linux only.
'''
