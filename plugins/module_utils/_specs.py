# -*- coding: utf-8 -*-
# Copyright: linuxnet.netns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
# Do not use this from other collections or standalone plugins/modules!
"""The options of each kind of object, shared by its own module and by linuxnet.netns.network."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.linuxnet.netns.plugins.module_utils._sysctl import DEFAULT_PERSIST_FILE

NETNS = dict(
    name=dict(type='str'),
    state=dict(type='str', choices=['present', 'absent'], default='present'),
    lo_up=dict(type='bool', default=True),
)

# what every interface takes
IFACE = dict(
    name=dict(type='str'),
    netns=dict(type='str'),
    addresses=dict(type='list', elements='str'),
    mtu=dict(type='int'),
    up=dict(type='bool', default=True),
)

BRIDGE = dict(
    IFACE,
    replace=dict(type='bool', default=False),
    state=dict(type='str', choices=['present', 'absent'], default='present'),
)

VETH_END = dict(IFACE, master=dict(type='str'))
VETH_PEER = dict(VETH_END, name=dict(type='str', required=True))
VETH = dict(
    VETH_END,
    peer=dict(type='dict', options=VETH_PEER),
    replace=dict(type='bool', default=False),
    state=dict(type='str', choices=['present', 'absent'], default='present'),
)

ROUTE = dict(
    dest=dict(type='str', default='default'),
    gateway=dict(type='str'),
    dev=dict(type='str'),
    metric=dict(type='int'),
    table=dict(type='int', default=254),
    onlink=dict(type='bool', default=False),
    netns=dict(type='str'),
    state=dict(type='str', choices=['present', 'absent'], default='present'),
)

MASQUERADE = dict(
    source=dict(type='str'),
    out_interface=dict(type='str'),
    exclude_destinations=dict(type='list', elements='str'),
    netns=dict(type='str'),
    state=dict(type='str', choices=['present', 'absent'], default='present'),
)

FORWARD = dict(
    netns=dict(type='str'),
    ipv4=dict(type='bool'),
    ipv6=dict(type='bool'),
    restrict_to=dict(type='list', elements='str'),
    accept_in_drop_policies=dict(type='bool', default=True),
    persist=dict(type='bool', default=False),
    persist_file=dict(type='path', default=DEFAULT_PERSIST_FILE),
)
