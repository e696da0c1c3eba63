"""Bad input, table-driven: every module and the bridge_network role refuse each entry of BAD and
BAD_ROLE with a message naming the parameter and the value, and leave the host exactly as it was.

The host is not empty: it holds namespaces, veth pairs, a bridge with a port, routes, MASQUERADE
rules, forwarding turned on (all made by the modules) and an uplink, routes and an nft table of
the user's own, so that "unchanged" means something. After every refused call the host is compared
with the snapshot taken when it was built: the kernel's view (links with kind, MTU, master and
alias; addresses; routes of every table; `nft list ruleset`; the forwarding sysctls - of the host
and of each of its namespaces), /run/netns, its nsfs mounts and /etc/sysctl.d; and netns_info's
view (minus the run's own bookkeeping) after every entry that got as far as reading the state
(READS_STATE; LINUXNET_BAD_INPUT_INFO=all: after every entry) and at the end of the table.

One host per pyroute2 version serves the module entries (pip's: all of them; Debian's 0.7.2: the
READS_STATE ones), the two running side by side; a host that a call did change is rebuilt, so the
entries stay independent. Role variables run through the role itself (playbooks/site.yml, local
connection, automatic argument-spec validation included), all of them in one ansible-playbook run
beside the module entries, with one inventory host per entry - each with its own names, subnet
and fleet - so that a wrongly accepted entry shows up as changed tasks of its own inventory host.
"""
import difflib
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections import namedtuple

import pytest

from conftest import IN_SANDBOX, REPO, Host, _pythons

pytestmark = pytest.mark.skipif(not IN_SANDBOX, reason='integration tests run only inside tests/sandbox.sh')

# Names in the table are relative to the host's prefix: '@a' is namespace <prefix>-a, '@h' the
# interface <prefix>-h (see Stateful.expand).
Case = namedtuple('Case', 'id module args param value')


def case(ident, module, args, param, value=None):
    """`param` must appear in the message; so must `value` (a string, or a list of alternatives:
    its repr or its text), unless it is None (a missing option has no value to name)."""
    return Case(ident, module, args, param, value)


LONG_NS = 'n' * 256
BAD = [
    # ---- netns -----------------------------------------------------------------------------------
    case('netns-name-256-chars', 'netns', {'name': LONG_NS}, 'name=', repr(LONG_NS)),
    case('netns-name-slash', 'netns', {'name': 'a/b'}, 'name=', "'a/b'"),
    case('netns-name-dotdot', 'netns', {'name': '..'}, 'name=', "'..'"),
    case('netns-name-dot', 'netns', {'name': '.'}, 'name=', "'.'"),
    case('netns-name-escape-path', 'netns', {'name': '../etc'}, 'name=', "'../etc'"),
    case('netns-name-empty', 'netns', {'name': ''}, 'name=', "''"),
    case('netns-name-space', 'netns', {'name': 'x y'}, 'name=', "'x y'"),
    case('netns-name-tab', 'netns', {'name': 'tab\there'}, 'name=', repr('tab\there')),
    case('netns-name-newline', 'netns', {'name': 'a\nb'}, 'name=', repr('a\nb')),
    case('netns-name-escape-char', 'netns', {'name': 'bell\x07'}, 'name=', repr('bell\x07')),
    case('netns-name-non-ascii', 'netns', {'name': 'caf\u00e9'}, 'name=', repr('caf\u00e9')),
    case('netns-list-second-bad', 'netns', {'namespaces': [{'name': '@new'}, {'name': 'bad/one'}]},
         'namespaces[1].name=', "'bad/one'"),
    case('netns-list-duplicate', 'netns', {'namespaces': [{'name': '@dup'}, {'name': '@dup'}]},
         'namespaces[1]', "'@dup'"),
    case('netns-list-present-and-absent', 'netns',
         {'namespaces': [{'name': '@a'}, {'name': '@a', 'state': 'absent'}]}, 'namespaces[1]', "'@a'"),
    case('netns-name-missing', 'netns', {}, 'name', None),
    case('netns-name-and-list', 'netns', {'name': '@x', 'namespaces': [{'name': '@y'}]}, 'namespaces', None),
    case('netns-state-unknown', 'netns', {'name': '@x', 'state': 'gone'}, 'state', 'gone'),
    case('netns-lo-up-not-bool', 'netns', {'name': '@x', 'lo_up': 'maybe'}, 'lo_up', 'maybe'),
    case('netns-unknown-option', 'netns', {'name': '@x', 'colour': 'red'}, 'colour', None),
    # every string option: of the wrong type (Ansible would make "['a']" or "False" of it)
    case('netns-name-list', 'netns', {'name': ['a']}, 'name=', "['a']"),
    case('netns-name-mapping', 'netns', {'name': {'a': 1}}, 'name=', "{'a': 1}"),
    case('netns-name-bool', 'netns', {'name': False}, 'name=', 'False'),
    case('netns-list-name-bool', 'netns', {'namespaces': [{'name': True}]}, 'namespaces[0].name=', 'True'),
    case('netns-state-bool', 'netns', {'name': '@x', 'state': True}, 'state', 'True'),
    case('netns-purge-not-bool', 'netns', {'name': '@x', 'purge': 'sometimes'}, 'purge', 'sometimes'),
    # ---- veth ------------------------------------------------------------------------------------
    case('veth-name-16-bytes', 'veth', {'name': 'a' * 16, 'peer': {'name': 'b'}}, 'name=', repr('a' * 16)),
    case('veth-peer-name-16-bytes', 'veth', {'name': '@v', 'peer': {'name': 'b' * 16}}, 'peer.name=', repr('b' * 16)),
    case('veth-name-16-bytes-utf8', 'veth', {'name': '\u00e9' * 8, 'peer': {'name': 'b'}}, 'name=',
         repr('\u00e9' * 8)),
    case('veth-name-space', 'veth', {'name': 'a b', 'peer': {'name': 'b'}}, 'name=', "'a b'"),
    case('veth-name-slash', 'veth', {'name': 'a/b', 'peer': {'name': 'b'}}, 'name=', "'a/b'"),
    case('veth-name-dotdot', 'veth', {'name': '..', 'peer': {'name': 'b'}}, 'name=', "'..'"),
    case('veth-name-colon', 'veth', {'name': 'eth0:1', 'peer': {'name': 'b'}}, 'name=', "'eth0:1'"),
    case('veth-name-control', 'veth', {'name': 'v\x01', 'peer': {'name': 'b'}}, 'name=', repr('v\x01')),
    case('veth-peer-name-non-ascii', 'veth', {'name': '@v', 'peer': {'name': 'v\u00e9th'}}, 'peer.name=',
         repr('v\u00e9th')),
    case('veth-peer-missing', 'veth', {'name': '@v'}, 'peer.name', None),
    case('veth-peer-name-missing', 'veth', {'name': '@v', 'peer': {'netns': '@a'}}, 'name', None),
    case('veth-netns-missing', 'veth', {'name': '@v', 'netns': '@nope', 'peer': {'name': 'b'}}, 'netns=', "'@nope'"),
    case('veth-peer-netns-missing', 'veth', {'name': '@v', 'peer': {'name': 'b', 'netns': '@nope'}},
         'peer.netns=', "'@nope'"),
    case('veth-peer-netns-dotdot', 'veth', {'name': '@v', 'peer': {'name': 'b', 'netns': '../x'}},
         'peer.netns=', "'../x'"),
    case('veth-address-no-prefix', 'veth', {'name': '@v', 'peer': {'name': 'b'}, 'addresses': ['10.5.0.1']},
         'addresses[0]=', "'10.5.0.1'"),
    case('veth-address-bad-octet', 'veth', {'name': '@v', 'peer': {'name': 'b'}, 'addresses': ['300.0.0.1/24']},
         'addresses[0]=', "'300.0.0.1/24'"),
    case('veth-address-prefix-33', 'veth', {'name': '@v', 'peer': {'name': 'b'}, 'addresses': ['10.5.0.1/33']},
         'addresses[0]=', "'10.5.0.1/33'"),
    case('veth-address-network', 'veth', {'name': '@v', 'peer': {'name': 'b'}, 'addresses': ['10.5.0.0/24']},
         'addresses[0]=', "'10.5.0.0/24'"),
    case('veth-address-trailing-space', 'veth',
         {'name': '@v', 'peer': {'name': 'b'}, 'addresses': ['10.5.0.1/24', '10.5.1.1/24 ']},
         'addresses[1]=', "'10.5.1.1/24 '"),
    case('veth-peer-address-ipv6-prefix-129', 'veth',
         {'name': '@v', 'peer': {'name': 'b', 'addresses': ['fd00::5/129']}}, 'peer.addresses[0]=', "'fd00::5/129'"),
    case('veth-address-duplicate', 'veth',
         {'name': '@v', 'peer': {'name': 'b'}, 'addresses': ['10.5.0.1/24', '10.5.0.1/24']},
         'addresses[1]', '10.5.0.1/24'),
    case('veth-mtu-too-small', 'veth', {'name': '@v', 'peer': {'name': 'b'}, 'mtu': 20}, 'mtu=', '20'),
    case('veth-mtu-too-large', 'veth', {'name': '@v', 'peer': {'name': 'b'}, 'mtu': 70000}, 'mtu=', '70000'),
    case('veth-peer-mtu-too-small', 'veth', {'name': '@v', 'peer': {'name': 'b', 'mtu': 10}}, 'peer.mtu=', '10'),
    case('veth-peer-same-as-end', 'veth', {'name': '@v', 'peer': {'name': '@v'}}, 'peer.name=', "'@v'"),
    case('veth-master-missing', 'veth', {'name': '@v', 'peer': {'name': 'b'}, 'master': '@nobr'},
         'master=', "'@nobr'"),
    case('veth-master-not-a-bridge', 'veth', {'name': '@v', 'peer': {'name': 'b'}, 'master': '@h'},
         'master=', "'@h'"),
    case('veth-master-itself', 'veth', {'name': '@v', 'peer': {'name': 'b'}, 'master': '@v'}, 'master=', "'@v'"),
    case('veth-isolated-without-master', 'veth', {'name': '@v', 'peer': {'name': 'b'}, 'isolated': True},
         'isolated=', 'True'),
    case('veth-peer-isolated-without-master', 'veth', {'name': '@v', 'peer': {'name': 'b', 'isolated': True}},
         'peer.isolated=', 'True'),
    case('veth-isolated-not-bool', 'veth', {'name': '@v', 'peer': {'name': 'b'}, 'master': '@br', 'isolated': 'maybe'},
         'isolated', 'maybe'),
    case('veth-pairs-duplicate', 'veth',
         {'pairs': [{'name': '@v', 'peer': {'name': 'b'}}, {'name': '@v', 'peer': {'name': 'c'}}]},
         'pairs[1]', '@v'),
    case('veth-pairs-second-bad', 'veth',
         {'pairs': [{'name': '@v', 'peer': {'name': '@w'}}, {'name': '@x', 'peer': {'name': 'y z'}}]},
         'pairs[1].peer.name=', "'y z'"),
    case('veth-pairs-and-name', 'veth', {'name': '@v', 'peer': {'name': 'b'}, 'pairs': [{'name': '@w', 'peer': {'name': 'c'}}]},
         'pairs', None),
    case('veth-name-is-a-bridge', 'veth', {'name': '@br', 'peer': {'name': 'b'}}, 'name', '@br'),
    case('veth-peer-is-another-pairs-end', 'veth', {'name': '@v', 'peer': {'name': 'eth0', 'netns': '@a'}},
         'peer', 'eth0'),
    case('veth-absent-on-a-bridge', 'veth', {'name': '@br', 'peer': {'name': 'b'}, 'state': 'absent'},
         'name=', "'@br'"),
    # MTU: the kernel's ETH_MIN_MTU..ETH_MAX_MTU, each end; the wrong types
    case('veth-mtu-67', 'veth', {'name': '@v', 'peer': {'name': 'b'}, 'mtu': 67}, 'mtu=', '67'),
    case('veth-mtu-65536', 'veth', {'name': '@v', 'peer': {'name': 'b'}, 'mtu': 65536}, 'mtu=', '65536'),
    case('veth-mtu-negative', 'veth', {'name': '@v', 'peer': {'name': 'b'}, 'mtu': -1500}, 'mtu=', '-1500'),
    case('veth-mtu-string', 'veth', {'name': '@v', 'peer': {'name': 'b'}, 'mtu': 'big'}, 'mtu', "'big'"),
    case('veth-mtu-bool', 'veth', {'name': '@v', 'peer': {'name': 'b'}, 'mtu': True}, 'mtu=', 'True'),
    case('veth-mtu-fraction', 'veth', {'name': '@v', 'peer': {'name': 'b'}, 'mtu': 1500.5}, 'mtu', '1500.5'),
    case('veth-peer-mtu-65536', 'veth', {'name': '@v', 'peer': {'name': 'b', 'mtu': 65536}}, 'peer.mtu=', '65536'),
    case('veth-peer-mtu-bool', 'veth', {'name': '@v', 'peer': {'name': 'b', 'mtu': False}}, 'peer.mtu=', 'False'),
    case('veth-peer-mtu-string', 'veth', {'name': '@v', 'peer': {'name': 'b', 'mtu': '9k'}}, 'mtu', "'9k'"),
    case('veth-name-empty', 'veth', {'name': '', 'peer': {'name': 'b'}}, 'name=', "''"),
    case('veth-name-list', 'veth', {'name': ['v'], 'peer': {'name': 'b'}}, 'name=', "['v']"),
    case('veth-peer-name-bool', 'veth', {'name': '@v', 'peer': {'name': True}}, 'peer.name=', 'True'),
    case('veth-peer-name-empty', 'veth', {'name': '@v', 'peer': {'name': ''}}, 'peer.name', "''"),
    case('veth-netns-empty', 'veth', {'name': '@v', 'netns': '', 'peer': {'name': 'b'}}, 'netns=', "''"),
    case('veth-peer-netns-bool', 'veth', {'name': '@v', 'peer': {'name': 'b', 'netns': True}}, 'peer.netns=', 'True'),
    case('veth-master-16-bytes', 'veth', {'name': '@v', 'peer': {'name': 'b'}, 'master': 'm' * 16}, 'master=',
         repr('m' * 16)),
    case('veth-master-list', 'veth', {'name': '@v', 'peer': {'name': 'b'}, 'master': ['@br']}, 'master=', "['@br']"),
    case('veth-peer-master-space', 'veth', {'name': '@v', 'peer': {'name': 'b', 'master': 'br 0'}}, 'peer.master=',
         "'br 0'"),
    case('veth-address-element-list', 'veth', {'name': '@v', 'peer': {'name': 'b'}, 'addresses': [['10.5.0.1/24']]},
         'addresses[0]=', "['10.5.0.1/24']"),
    case('veth-replace-not-bool', 'veth', {'name': '@v', 'peer': {'name': 'b'}, 'replace': 'perhaps'}, 'replace',
         'perhaps'),
    case('veth-up-not-bool', 'veth', {'name': '@v', 'peer': {'name': 'b'}, 'up': 'sideways'}, 'up', 'sideways'),
    case('veth-state-unknown', 'veth', {'name': '@v', 'peer': {'name': 'b'}, 'state': 'gone'}, 'state', 'gone'),
    # ---- bridge ----------------------------------------------------------------------------------
    case('bridge-name-16-bytes', 'bridge', {'name': 'br' + 'x' * 14}, 'name=', repr('br' + 'x' * 14)),
    case('bridge-name-space', 'bridge', {'name': 'br 0'}, 'name=', "'br 0'"),
    case('bridge-address-ipv6-network', 'bridge', {'name': '@b2', 'addresses': ['fd30::/64']},
         'addresses[0]=', "'fd30::/64'"),
    case('bridge-master', 'bridge', {'name': '@b2', 'master': '@br'}, 'master', None),
    case('bridge-mtu-zero', 'bridge', {'name': '@b2', 'mtu': 0}, 'mtu=', '0'),
    case('bridge-netns-missing', 'bridge', {'name': '@b2', 'netns': '@nope'}, 'netns=', "'@nope'"),
    case('bridge-name-is-a-veth', 'bridge', {'name': '@h'}, 'name=', "'@h'"),
    case('bridge-absent-on-a-veth', 'bridge', {'name': '@h', 'state': 'absent'}, 'name=', "'@h'"),
    case('bridge-list-duplicate', 'bridge', {'bridges': [{'name': '@b2'}, {'name': '@b2', 'mtu': 9000}]},
         'bridges[1]', '@b2'),
    case('bridge-mtu-67', 'bridge', {'name': '@b2', 'mtu': 67}, 'mtu=', '67'),
    case('bridge-mtu-65536', 'bridge', {'name': '@b2', 'mtu': 65536}, 'mtu=', '65536'),
    case('bridge-mtu-string', 'bridge', {'name': '@b2', 'mtu': 'jumbo'}, 'mtu', "'jumbo'"),
    case('bridge-mtu-bool', 'bridge', {'name': '@b2', 'mtu': True}, 'mtu=', 'True'),
    case('bridge-name-empty', 'bridge', {'name': ''}, 'name=', "''"),
    case('bridge-name-dotdot', 'bridge', {'name': '..'}, 'name=', "'..'"),
    case('bridge-name-list', 'bridge', {'name': ['br0']}, 'name=', "['br0']"),
    case('bridge-netns-dotdot', 'bridge', {'name': '@b2', 'netns': '..'}, 'netns=', "'..'"),
    case('bridge-address-prefix-33', 'bridge', {'name': '@b2', 'addresses': ['172.31.0.1/33']}, 'addresses[0]=',
         "'172.31.0.1/33'"),
    case('bridge-state-unknown', 'bridge', {'name': '@b2', 'state': 'down'}, 'state', 'down'),
    case('bridge-up-not-bool', 'bridge', {'name': '@b2', 'up': 'sideways'}, 'up', 'sideways'),
    # ---- netns_route -----------------------------------------------------------------------------
    case('route-gateway-not-connected-host', 'netns_route', {'gateway': '10.99.0.1'}, 'gateway=', '10.99.0.1'),
    case('route-gateway-not-connected-netns', 'netns_route', {'netns': '@a', 'dest': '10.40.0.0/16',
                                                              'gateway': '172.30.0.254'}, 'gateway=', '172.30.0.254'),
    case('route-mixed-family-v6-dest', 'netns_route', {'dest': 'fd00:1::/64', 'gateway': '10.0.0.2'},
         'gateway=', '10.0.0.2'),
    case('route-mixed-family-v4-dest', 'netns_route', {'dest': '10.41.0.0/16', 'gateway': 'fd00::2'},
         'gateway=', 'fd00::2'),
    case('route-dest-host-bits', 'netns_route', {'dest': '10.41.0.1/16', 'gateway': '10.0.0.2'},
         'dest=', "'10.41.0.1/16'"),
    case('route-dest-garbage', 'netns_route', {'dest': 'banana', 'gateway': '10.0.0.2'}, 'dest=', "'banana'"),
    case('route-dest-prefix-33', 'netns_route', {'dest': '10.41.0.0/33', 'gateway': '10.0.0.2'},
         'dest=', "'10.41.0.0/33'"),
    case('route-gateway-bad-octet', 'netns_route', {'gateway': '10.0.0.256'}, 'gateway=', "'10.0.0.256'"),
    case('route-no-gateway-no-dev', 'netns_route', {'dest': '10.41.0.0/16'}, 'gateway', None),
    case('route-link-local-without-dev', 'netns_route', {'gateway': 'fe80::1'}, 'dev=', 'fe80::1'),
    case('route-dev-missing', 'netns_route', {'dest': '10.41.0.0/16', 'dev': '@nodev'}, 'dev', '@nodev'),
    case('route-dev-bad-name', 'netns_route', {'dest': '10.41.0.0/16', 'dev': 'eth 0'}, 'dev=', "'eth 0'"),
    case('route-table-local', 'netns_route', {'gateway': '10.0.0.2', 'table': 255}, 'table=', '255'),
    case('route-metric-negative', 'netns_route', {'dest': '10.41.0.0/16', 'gateway': '10.0.0.2', 'metric': -1},
         'metric=', '-1'),
    case('route-netns-missing', 'netns_route', {'netns': '@nope', 'gateway': '10.0.0.1'}, 'netns=', "'@nope'"),
    case('route-netns-slash', 'netns_route', {'netns': 'a/b', 'gateway': '10.0.0.1'}, 'netns=', "'a/b'"),
    case('route-list-duplicate', 'netns_route',
         {'routes': [{'dest': '10.41.0.0/16', 'gateway': '10.0.0.2'}, {'dest': '10.41.0.0/16', 'gateway': '10.0.0.3'}]},
         'routes[1]', '10.41.0.0/16'),
    case('route-list-second-unreachable', 'netns_route',
         {'routes': [{'dest': '10.41.0.0/16', 'gateway': '10.0.0.2'}, {'dest': '10.42.0.0/16', 'gateway': '10.98.0.1'}]},
         'routes[1].gateway=', '10.98.0.1'),
    case('route-list-and-gateway', 'netns_route',
         {'gateway': '10.0.0.2', 'routes': [{'dest': '10.41.0.0/16', 'gateway': '10.0.0.2'}]}, 'gateway=', '10.0.0.2'),
    # table: 1..2^32-1 but 255 (local); 0 (RT_TABLE_UNSPEC) the kernel would quietly make main
    case('route-table-zero', 'netns_route', {'gateway': '10.0.0.2', 'table': 0}, 'table=', '0'),
    case('route-table-above-max', 'netns_route', {'gateway': '10.0.0.2', 'table': 4294967296}, 'table=', '4294967296'),
    case('route-table-negative', 'netns_route', {'gateway': '10.0.0.2', 'table': -1}, 'table=', '-1'),
    case('route-table-name', 'netns_route', {'gateway': '10.0.0.2', 'table': 'main'}, 'table', "'main'"),
    case('route-table-bool', 'netns_route', {'gateway': '10.0.0.2', 'table': True}, 'table=', 'True'),
    case('route-table-fraction', 'netns_route', {'gateway': '10.0.0.2', 'table': 254.5}, 'table', '254.5'),
    case('route-list-table-zero', 'netns_route', {'routes': [{'dest': '10.41.0.0/16', 'gateway': '10.0.0.2'},
                                                             {'dest': '10.42.0.0/16', 'gateway': '10.0.0.2', 'table': 0}]},
         'routes[1].table=', '0'),
    case('route-metric-above-max', 'netns_route', {'dest': '10.41.0.0/16', 'gateway': '10.0.0.2', 'metric': 4294967296},
         'metric=', '4294967296'),
    case('route-metric-string', 'netns_route', {'dest': '10.41.0.0/16', 'gateway': '10.0.0.2', 'metric': 'low'},
         'metric', "'low'"),
    case('route-metric-bool', 'netns_route', {'dest': '10.41.0.0/16', 'gateway': '10.0.0.2', 'metric': True},
         'metric=', 'True'),
    case('route-dest-ipv6-prefix-129', 'netns_route', {'dest': 'fd00:1::/129', 'gateway': 'fd00::2'},
         'dest=', "'fd00:1::/129'"),
    case('route-dest-list', 'netns_route', {'dest': ['10.41.0.0/16'], 'gateway': '10.0.0.2'}, 'dest=',
         "['10.41.0.0/16']"),
    case('route-gateway-with-prefix', 'netns_route', {'gateway': '10.0.0.2/24'}, 'gateway=', "'10.0.0.2/24'"),
    case('route-gateway-bool', 'netns_route', {'dest': '10.41.0.0/16', 'gateway': True}, 'gateway=', 'True'),
    case('route-dev-16-bytes', 'netns_route', {'dest': '10.41.0.0/16', 'dev': 'd' * 16}, 'dev=', repr('d' * 16)),
    case('route-netns-dotdot', 'netns_route', {'netns': '..', 'gateway': '10.0.0.1'}, 'netns=', "'..'"),
    case('route-onlink-not-bool', 'netns_route', {'gateway': '10.0.0.2', 'onlink': 'perhaps'}, 'onlink', 'perhaps'),
    case('route-state-unknown', 'netns_route', {'gateway': '10.0.0.2', 'state': 'gone'}, 'state', 'gone'),
    case('route-purge-not-bool', 'netns_route', {'routes': [], 'purge': 'sometimes'}, 'purge', 'sometimes'),
    # ---- nat_masquerade --------------------------------------------------------------------------
    case('nat-source-host-bits', 'nat_masquerade', {'source': '10.0.0.1/24', 'out_interface': 'up0'},
         'source=', "'10.0.0.1/24'"),
    case('nat-source-garbage', 'nat_masquerade', {'source': 'banana', 'out_interface': 'up0'}, 'source=', "'banana'"),
    case('nat-source-default', 'nat_masquerade', {'source': 'default', 'out_interface': 'up0'}, 'source=', "'default'"),
    case('nat-source-missing', 'nat_masquerade', {'out_interface': 'up0'}, 'source', None),
    case('nat-out-interface-missing', 'nat_masquerade', {'source': '10.6.0.0/24'}, 'out_interface=', None),
    case('nat-out-interface-16-bytes', 'nat_masquerade', {'source': '10.6.0.0/24', 'out_interface': 'x' * 16},
         'out_interface=', repr('x' * 16)),
    case('nat-out-interface-space', 'nat_masquerade', {'source': '10.6.0.0/24', 'out_interface': 'up 0'},
         'out_interface=', "'up 0'"),
    case('nat-out-interface-quote', 'nat_masquerade', {'source': '10.6.0.0/24', 'out_interface': 'up0"'},
         'out_interface=', repr('up0"')),
    case('nat-out-interface-wildcard', 'nat_masquerade', {'source': '10.6.0.0/24', 'out_interface': 'up*'},
         'out_interface=', "'up*'"),
    case('nat-netns-missing', 'nat_masquerade', {'source': '10.6.0.0/24', 'out_interface': 'up0', 'netns': '@nope'},
         'netns=', "'@nope'"),
    case('nat-list-duplicate', 'nat_masquerade',
         {'rules': [{'source': '10.6.0.0/24', 'out_interface': 'up0'}, {'source': '10.6.0.0/24', 'out_interface': 'up0'}]},
         'rules[1]', '10.6.0.0/24'),
    case('nat-list-second-bad', 'nat_masquerade',
         {'rules': [{'source': '10.6.0.0/24', 'out_interface': 'up0'}, {'source': '10.7.0.0/24', 'out_interface': 'a/b'}]},
         'rules[1].out_interface=', "'a/b'"),
    case('nat-source-prefix-33', 'nat_masquerade', {'source': '10.6.0.0/33', 'out_interface': 'up0'},
         'source=', "'10.6.0.0/33'"),
    case('nat-source-ipv6-prefix-129', 'nat_masquerade', {'source': 'fd06::/129', 'out_interface': 'up0'},
         'source=', "'fd06::/129'"),
    case('nat-source-list', 'nat_masquerade', {'source': ['10.6.0.0/24'], 'out_interface': 'up0'}, 'source=',
         "['10.6.0.0/24']"),
    case('nat-out-interface-empty', 'nat_masquerade', {'source': '10.6.0.0/24', 'out_interface': ''},
         'out_interface=', "''"),
    case('nat-out-interface-bool', 'nat_masquerade', {'source': '10.6.0.0/24', 'out_interface': True},
         'out_interface=', 'True'),
    case('nat-exclude-garbage', 'nat_masquerade',
         {'source': '10.6.0.0/24', 'out_interface': 'up0', 'exclude_destinations': ['banana']},
         'exclude_destinations[0]=', "'banana'"),
    case('nat-exclude-host-bits', 'nat_masquerade',
         {'source': '10.6.0.0/24', 'out_interface': 'up0', 'exclude_destinations': ['10.8.0.0/16', '10.9.0.1/16']},
         'exclude_destinations[1]=', "'10.9.0.1/16'"),
    case('nat-exclude-element-mapping', 'nat_masquerade',
         {'source': '10.6.0.0/24', 'out_interface': 'up0', 'exclude_destinations': [{'dest': '10.8.0.0/16'}]},
         'exclude_destinations[0]=', "{'dest': '10.8.0.0/16'}"),
    case('nat-netns-dotdot', 'nat_masquerade', {'source': '10.6.0.0/24', 'out_interface': 'up0', 'netns': '..'},
         'netns=', "'..'"),
    case('nat-state-unknown', 'nat_masquerade', {'source': '10.6.0.0/24', 'out_interface': 'up0', 'state': 'off'},
         'state', 'off'),
    # ---- port_publish ----------------------------------------------------------------------------
    case('pub-port-zero', 'port_publish', {'host_port': 0, 'target': '10.0.0.2'}, 'host_port=', '0'),
    case('pub-port-garbage', 'port_publish', {'host_port': '80a', 'target': '10.0.0.2'}, 'host_port=', "'80a'"),
    case('pub-port-bool', 'port_publish', {'host_port': True, 'target': '10.0.0.2'}, 'host_port=', 'True'),
    case('pub-range-backwards', 'port_publish', {'host_port': '90-80', 'target': '10.0.0.2'}, 'host_port=', "'90-80'"),
    case('pub-range-lengths', 'port_publish', {'host_port': '80-89', 'target': '10.0.0.2', 'target_port': '80-81'},
         'target_port=', "'80-81'"),
    case('pub-target-garbage', 'port_publish', {'host_port': 80, 'target': 'banana'}, 'target=', "'banana'"),
    case('pub-target-loopback', 'port_publish', {'host_port': 80, 'target': '127.0.0.1'}, 'target=', "'127.0.0.1'"),
    case('pub-target-and-netns', 'port_publish', {'host_port': 80, 'target': '10.0.0.2', 'target_netns': '@a'},
         'target=', '10.0.0.2'),
    case('pub-no-target', 'port_publish', {'host_port': 80}, 'target=', None),
    case('pub-families-mixed', 'port_publish', {'host_port': 80, 'target': '10.0.0.2', 'host_address': 'fd00::1'},
         'host_address', 'fd00::1'),
    case('pub-localhost-ipv6', 'port_publish', {'host_port': 80, 'target': 'fd00::2', 'localhost': True},
         'localhost=', 'True'),
    case('pub-host-loopback', 'port_publish', {'host_port': 80, 'target': '10.0.0.2', 'host_address': '127.0.0.1'},
         'host_address=', "'127.0.0.1'"),
    case('pub-target-netns-missing', 'port_publish', {'host_port': 80, 'target_netns': '@nope'},
         'target_netns=', "'@nope'"),
    case('pub-netns-missing', 'port_publish', {'host_port': 80, 'target': '10.0.0.2', 'netns': '@nope'},
         'netns=', "'@nope'"),
    case('pub-localhost-routed', 'port_publish', {'host_port': 80, 'target': '10.99.0.2', 'localhost': True},
         'localhost', '10.99.0.2'),
    case('pub-list-duplicate', 'port_publish',
         {'ports': [{'host_port': 80, 'target': '10.0.0.2'}, {'host_port': 80, 'target': '10.0.0.3'}]},
         'ports[1]', '80'),
    case('pub-list-overlap', 'port_publish',
         {'ports': [{'host_port': '80-90', 'target': '10.0.0.2'}, {'host_port': 85, 'target': '10.0.0.3',
                                                                   'host_address': '10.0.0.1'}]},
         'ports[1].host_port=', '85'),
    # ports: 1..65535, alone or as a range low-high; the wrong types
    case('pub-port-65536', 'port_publish', {'host_port': 65536, 'target': '10.0.0.2'}, 'host_port=', '65536'),
    case('pub-port-negative', 'port_publish', {'host_port': -1, 'target': '10.0.0.2'}, 'host_port=', '-1'),
    case('pub-port-fraction', 'port_publish', {'host_port': 80.5, 'target': '10.0.0.2'}, 'host_port=', '80.5'),
    case('pub-port-list', 'port_publish', {'host_port': [80], 'target': '10.0.0.2'}, 'host_port=', '[80]'),
    case('pub-range-above-max', 'port_publish', {'host_port': '65530-65536', 'target': '10.0.0.2'}, 'host_port=',
         "'65530-65536'"),
    case('pub-range-from-zero', 'port_publish', {'host_port': '0-10', 'target': '10.0.0.2'}, 'host_port=', "'0-10'"),
    case('pub-range-open', 'port_publish', {'host_port': '80-', 'target': '10.0.0.2'}, 'host_port=', "'80-'"),
    case('pub-target-port-zero', 'port_publish', {'host_port': 80, 'target': '10.0.0.2', 'target_port': 0},
         'target_port=', '0'),
    case('pub-target-port-65536', 'port_publish', {'host_port': 80, 'target': '10.0.0.2', 'target_port': 65536},
         'target_port=', '65536'),
    case('pub-target-port-bool', 'port_publish', {'host_port': 80, 'target': '10.0.0.2', 'target_port': True},
         'target_port=', 'True'),
    case('pub-target-port-name', 'port_publish', {'host_port': 80, 'target': '10.0.0.2', 'target_port': 'http'},
         'target_port=', "'http'"),
    case('pub-protocol-unknown', 'port_publish', {'host_port': 80, 'target': '10.0.0.2', 'protocol': 'sctp'},
         'protocol', 'sctp'),
    case('pub-protocol-uppercase', 'port_publish', {'host_port': 80, 'target': '10.0.0.2', 'protocol': 'TCP'},
         'protocol', 'TCP'),
    case('pub-family-unknown', 'port_publish', {'host_port': 80, 'target_netns': '@a', 'family': 'inet'},
         'family', 'inet'),
    case('pub-family-against-target', 'port_publish', {'host_port': 80, 'target': '10.0.0.2', 'family': 'ipv6'},
         'family=', "'ipv6'"),
    # host_address: one of the host's addresses; 0.0.0.0 / :: (all of them) are accepted, as documented
    case('pub-host-address-garbage', 'port_publish', {'host_port': 80, 'target': '10.0.0.2', 'host_address': 'banana'},
         'host_address=', "'banana'"),
    case('pub-host-address-prefix', 'port_publish',
         {'host_port': 80, 'target': '10.0.0.2', 'host_address': '10.0.0.1/24'}, 'host_address=', "'10.0.0.1/24'"),
    case('pub-host-address-multicast', 'port_publish',
         {'host_port': 80, 'target': '10.0.0.2', 'host_address': '224.0.0.1'}, 'host_address=', "'224.0.0.1'"),
    case('pub-host-address-broadcast', 'port_publish',
         {'host_port': 80, 'target': '10.0.0.2', 'host_address': '255.255.255.255'}, 'host_address=',
         "'255.255.255.255'"),
    case('pub-host-loopback-ipv6', 'port_publish', {'host_port': 80, 'target': 'fd00::2', 'host_address': '::1'},
         'host_address=', "'::1'"),
    case('pub-host-address-list', 'port_publish',
         {'host_port': 80, 'target': '10.0.0.2', 'host_address': ['10.0.0.1']}, 'host_address=', "['10.0.0.1']"),
    case('pub-target-with-prefix', 'port_publish', {'host_port': 80, 'target': '10.0.0.2/24'}, 'target=',
         "'10.0.0.2/24'"),
    case('pub-target-unspecified', 'port_publish', {'host_port': 80, 'target': '0.0.0.0'}, 'target=', "'0.0.0.0'"),
    case('pub-target-multicast', 'port_publish', {'host_port': 80, 'target': '224.0.0.1'}, 'target=', "'224.0.0.1'"),
    case('pub-target-loopback-ipv6', 'port_publish', {'host_port': 80, 'target': '::1'}, 'target=', "'::1'"),
    case('pub-target-netns-dotdot', 'port_publish', {'host_port': 80, 'target_netns': '..'}, 'target_netns=', "'..'"),
    case('pub-localhost-not-bool', 'port_publish', {'host_port': 80, 'target': '10.0.0.2', 'localhost': 'maybe'},
         'localhost', 'maybe'),
    case('pub-replace-not-bool', 'port_publish', {'host_port': 80, 'target': '10.0.0.2', 'replace': 'perhaps'},
         'replace', 'perhaps'),
    case('pub-state-unknown', 'port_publish', {'host_port': 80, 'target': '10.0.0.2', 'state': 'open'}, 'state', 'open'),
    # ---- sysctl_forward --------------------------------------------------------------------------
    case('forward-nothing-set', 'sysctl_forward', {}, 'ipv4', None),
    case('forward-persist-in-netns', 'sysctl_forward', {'netns': '@a', 'ipv6': True, 'persist': True},
         'persist=', '@a'),
    case('forward-persist-file-relative', 'sysctl_forward',
         {'ipv6': True, 'persist': True, 'persist_file': 'relative.conf'}, 'persist_file=', 'relative.conf'),
    case('forward-persist-file-not-conf', 'sysctl_forward',
         {'ipv6': True, 'persist': True, 'persist_file': '/etc/sysctl.d/90-x.txt'}, 'persist_file=', '90-x.txt'),
    case('forward-netns-missing', 'sysctl_forward', {'netns': '@nope', 'ipv6': True}, 'netns=', "'@nope'"),
    case('forward-ipv4-not-bool', 'sysctl_forward', {'ipv4': 'perhaps'}, 'ipv4', 'perhaps'),
    case('forward-isolate-without-restrict-to', 'sysctl_forward', {'ipv4': True, 'isolate': True}, 'isolate=', 'True'),
    case('forward-isolate-restrict-to-empty', 'sysctl_forward', {'restrict_to': [], 'isolate': True},
         'isolate=', 'True'),
    case('forward-list-duplicate', 'sysctl_forward',
         {'settings': [{'ipv6': True}, {'ipv4': False}]}, 'settings[1]', None),
    case('forward-list-second-bad', 'sysctl_forward',
         {'settings': [{'ipv6': True}, {'netns': '@nope', 'ipv6': True}]}, 'settings[1].netns=', "'@nope'"),
    case('forward-ipv6-not-bool', 'sysctl_forward', {'ipv6': 'perhaps'}, 'ipv6', 'perhaps'),
    case('forward-persist-not-bool', 'sysctl_forward', {'ipv4': True, 'persist': 'always'}, 'persist', 'always'),
    case('forward-persist-file-list', 'sysctl_forward',
         {'ipv4': True, 'persist': True, 'persist_file': ['/etc/sysctl.d/91-x.conf']}, 'persist_file=',
         "['/etc/sysctl.d/91-x.conf']"),
    case('forward-persist-file-directory', 'sysctl_forward',
         {'ipv4': True, 'persist': True, 'persist_file': '/etc/sysctl.d/'}, 'persist_file=', '/etc/sysctl.d/'),
    case('forward-persist-file-nul', 'sysctl_forward',
         {'ipv4': True, 'persist': True, 'persist_file': '/etc/sysctl.d/9\x001.conf'}, 'persist_file=',
         repr('/etc/sysctl.d/9\x001.conf')),
    case('forward-restrict-garbage', 'sysctl_forward', {'ipv4': True, 'restrict_to': ['banana']},
         'restrict_to[0]=', "'banana'"),
    case('forward-restrict-host-bits', 'sysctl_forward', {'ipv4': True, 'restrict_to': ['10.0.0.1/24']},
         'restrict_to[0]=', "'10.0.0.1/24'"),
    case('forward-restrict-default', 'sysctl_forward', {'ipv4': True, 'restrict_to': ['default']},
         'restrict_to[0]=', "'default'"),
    case('forward-restrict-duplicate', 'sysctl_forward', {'ipv4': True, 'restrict_to': ['10.9.0.0/24', '10.9.0.0/24']},
         'restrict_to[1]', '10.9.0.0/24'),
    case('forward-restrict-element-bool', 'sysctl_forward', {'ipv4': True, 'restrict_to': [True]},
         'restrict_to[0]=', 'True'),
    case('forward-inbound-without-restrict', 'sysctl_forward', {'ipv4': True, 'inbound_from': ['192.0.2.0/28']},
         'inbound_from=', '192.0.2.0/28'),
    case('forward-inbound-garbage', 'sysctl_forward',
         {'ipv4': True, 'restrict_to': ['10.9.0.0/24'], 'inbound_from': ['banana']}, 'inbound_from[0]=', "'banana'"),
    case('forward-inbound-host-bits', 'sysctl_forward',
         {'ipv4': True, 'restrict_to': ['10.9.0.0/24'], 'inbound_from': ['192.0.2.1/28']}, 'inbound_from[0]=',
         "'192.0.2.1/28'"),
    case('forward-inbound-default', 'sysctl_forward',
         {'ipv4': True, 'restrict_to': ['10.9.0.0/24'], 'inbound_from': ['default']}, 'inbound_from[0]=', "'default'"),
    case('forward-inbound-duplicate', 'sysctl_forward',
         {'ipv4': True, 'restrict_to': ['10.9.0.0/24'], 'inbound_from': ['192.0.2.0/28', '192.0.2.0/28']},
         'inbound_from[1]', '192.0.2.0/28'),
    case('forward-inbound-element-mapping', 'sysctl_forward',
         {'ipv4': True, 'restrict_to': ['10.9.0.0/24'], 'inbound_from': [{'prefix': '192.0.2.0/28'}]},
         'inbound_from[0]=', "{'prefix': '192.0.2.0/28'}"),
    case('forward-netns-dotdot', 'sysctl_forward', {'netns': '..', 'ipv4': True}, 'netns=', "'..'"),
    case('forward-accept-not-bool', 'sysctl_forward',
         {'ipv4': True, 'restrict_to': ['10.9.0.0/24'], 'accept_in_drop_policies': 'sometimes'},
         'accept_in_drop_policies', 'sometimes'),
    # ---- netns_info ------------------------------------------------------------------------------
    case('info-netns-missing', 'netns_info', {'netns': ['@nope']}, 'netns', '@nope'),
    case('info-netns-slash', 'netns_info', {'netns': ['a/b']}, 'netns', 'a/b'),
    case('info-netns-dotdot', 'netns_info', {'netns': ['..']}, 'netns', "'..'"),
    case('info-routes-not-bool', 'netns_info', {'routes': 'sometimes'}, 'routes', 'sometimes'),
    case('info-netns-empty', 'netns_info', {'netns': ['']}, 'netns[0]=', "''"),
    case('info-netns-element-list', 'netns_info', {'netns': [['a']]}, 'netns[0]=', "['a']"),
    case('info-nat-not-bool', 'netns_info', {'nat': 'sometimes'}, 'nat', 'sometimes'),
    case('info-details-not-bool', 'netns_info', {'netns_details': 'some'}, 'netns_details', 'some'),
    case('info-bridges-not-bool', 'netns_info', {'bridges': 'some'}, 'bridges', 'some'),
    # ---- network: the same options, under the list options' paths ----------------------------------
    case('net-route-table-zero', 'network', {'routes': [{'gateway': '10.0.0.2', 'table': 0}]}, 'routes[0].table=', '0'),
    case('net-bridge-mtu-65536', 'network', {'bridges': [{'name': '@b2', 'mtu': 65536}]}, 'bridges[0].mtu=', '65536'),
    case('net-pair-peer-mtu-67', 'network', {'pairs': [{'name': '@v', 'peer': {'name': 'b', 'mtu': 67}}]},
         'pairs[0].peer.mtu=', '67'),
    case('net-publish-port-zero', 'network', {'publish': [{'host_port': 0, 'target': '10.0.0.2'}]},
         'publish[0].host_port=', '0'),
    case('net-namespace-name-bool', 'network', {'namespaces': [{'name': False}]}, 'namespaces[0].name=', 'False'),
    case('net-masquerade-source-default', 'network', {'masquerade': [{'source': 'default', 'out_interface': 'up0'}]},
         'masquerade[0].source=', "'default'"),
    case('net-forwarding-persist-relative', 'network',
         {'forwarding': [{'ipv4': True, 'persist': True, 'persist_file': 'x.conf'}]}, 'forwarding[0].persist_file=',
         'x.conf'),
    case('net-purge-match-bad-regex', 'network',
         {'namespaces': [], 'purge': True, 'purge_match': {'namespaces': ['(']}}, 'purge_match.namespaces[0]=', "'('"),
    case('net-purge-match-route-default', 'network',
         {'routes': [], 'purge': True, 'purge_match': {'routes': ['default']}}, 'purge_match.routes[0]=', "'default'"),
    case('net-purge-match-element-list', 'network',
         {'namespaces': [], 'purge': True, 'purge_match': {'namespaces': [['x']]}}, 'purge_match.namespaces[0]=',
         "['x']"),
    case('net-purge-not-bool', 'network', {'namespaces': [], 'purge': 'sometimes'}, 'purge', 'sometimes'),
]


# Refusals that come from reading the kernel's state (a namespace, interface or connected subnet that
# is or is not there) run on both pyroute2 versions; the pure validation ones on pip's only.
READS_STATE = {
    'netns-list-present-and-absent', 'veth-netns-missing', 'veth-peer-netns-missing', 'veth-master-missing',
    'veth-master-not-a-bridge', 'veth-name-is-a-bridge', 'veth-peer-is-another-pairs-end',
    'veth-absent-on-a-bridge', 'bridge-netns-missing', 'bridge-name-is-a-veth', 'bridge-absent-on-a-veth',
    'route-gateway-not-connected-host', 'route-gateway-not-connected-netns', 'route-dev-missing',
    'route-netns-missing', 'route-list-second-unreachable', 'nat-netns-missing', 'forward-netns-missing',
    'forward-list-second-bad', 'info-netns-missing', 'netns-name-256-chars', 'veth-pairs-second-bad',
    'nat-out-interface-quote', 'pub-target-netns-missing', 'pub-netns-missing', 'pub-localhost-routed',
    'pub-list-overlap',
}


# ---- the bridge_network role's variables ------------------------------------------------------------
# Each entry is one inventory host with these variables on top of its own names, subnet and fleet
# (see role_hosts). `param` and `value` must appear in the host's failure message.
RoleCase = namedtuple('RoleCase', 'id vars param value')


def role_case(ident, variables, param, value=None):
    return RoleCase(ident, variables, param, value)


BAD_ROLE = [
    role_case('role-mode-unknown', {'bridge_network_mode': 'star'}, 'bridge_network_mode', 'star'),
    role_case('role-isolate-not-bool', {'bridge_network_isolate': 'sometimes'}, 'bridge_network_isolate', 'sometimes'),
    role_case('role-isolate-p2p-without-safe-router', {'bridge_network_mode': 'p2p', 'bridge_network_isolate': True,
                                                       'bridge_network_safe_router': False},
              'bridge_network_isolate', 'bridge_network_safe_router is false'),
    role_case('role-state-unknown', {'bridge_network_state': 'gone'}, 'bridge_network_state', 'gone'),
    role_case('role-namespaces-not-int', {'bridge_network_namespaces': 'many'}, 'bridge_network_namespaces', 'many'),
    role_case('role-namespaces-negative', {'bridge_network_namespaces': -1}, 'bridge_network_namespaces', '-1'),
    role_case('role-namespaces-too-many', {'bridge_network_namespaces': 300}, 'bridge_network_namespaces', '300'),
    role_case('role-p2p-prefixlen-29', {'bridge_network_mode': 'p2p', 'bridge_network_p2p_prefixlen': 29},
              'bridge_network_p2p_prefixlen', '29'),
    role_case('role-pool-host-bits', {'bridge_network_pool': '10.200.0.1/16'}, 'bridge_network_pool', '10.200.0.1/16'),
    role_case('role-pool-garbage', {'bridge_network_pool': 'banana'}, 'bridge_network_pool', 'banana'),
    # the message may name the pool or the subnet allocated from it: both start so
    role_case('role-pool-ipv6', {'bridge_network_pool': 'fd00:99::/48', 'bridge_network_subnet_prefixlen': 64,
                                 'bridge_network_subnet': None}, 'bridge_network_pool', 'fd00:99:'),
    role_case('role-prefixlen-shorter-than-pool', {'bridge_network_subnet_prefixlen': 8},
              'bridge_network_subnet_prefixlen', '8'),
    role_case('role-subnet-host-bits', {'bridge_network_subnet': '10.210.99.1/24'}, 'bridge_network_subnet',
              '10.210.99.1/24'),
    role_case('role-subnet-ipv6', {'bridge_network_subnet': 'fd00:98::/64'}, 'bridge_network_subnet', 'fd00:98::/64'),
    # the subnet may be pinned or allocated, so "the subnet of this host" names it well enough
    role_case('role-subnet-overlaps-a-route', {'bridge_network_subnet': '10.40.7.0/24'}, 'the subnet of this host',
              '10.40.7.0/24'),
    role_case('role-fleet-overlapping-subnets', {'bridge_network_subnet': '10.211.0.0/24'}, 'bridge_network_subnet',
              '10.211.0.0/25'),
    role_case('role-fleet-without-this-host', {'bridge_network_fleet': ['somewhere-else']}, 'bridge_network_fleet',
              'somewhere-else'),
    role_case('role-bridge-name-too-long', {'bridge_network_bridge': 'bridge-name-too-long'}, 'bridge_network_bridge',
              'bridge-name-too-long'),
    role_case('role-bridge-name-space', {'bridge_network_bridge': 'br 0'}, 'bridge_network_bridge', 'br 0'),
    role_case('role-veth-prefix-too-long', {'bridge_network_veth_prefix': 'veth-prefix-xyz'},
              'bridge_network_veth_prefix', 'veth-prefix-xyz'),
    role_case('role-ns-interface-too-long', {'bridge_network_ns_interface': 'eth0-much-too-long'},
              'bridge_network_ns_interface', 'eth0-much-too-long'),
    role_case('role-ns-interface-space', {'bridge_network_ns_interface': 'eth 0'}, 'bridge_network_ns_interface',
              'eth 0'),
    role_case('role-prefix-slash', {'bridge_network_prefix': '@/x'}, 'bridge_network_prefix', '@/x'),
    role_case('role-prefix-space', {'bridge_network_prefix': '@ x'}, 'bridge_network_prefix', '@ x'),
    role_case('role-mtu-too-small', {'bridge_network_mtu': 20}, 'bridge_network_mtu', '20'),
    role_case('role-uplink-bad-name', {'bridge_network_uplink': 'up 0'}, 'bridge_network_uplink', 'up 0'),
]
# the second host of the overlapping fleet: pinned to a subnet inside the first one's
OVERLAP_PARTNER = 'role-fleet-overlapping-subnets-b'


# ---- the host with state ---------------------------------------------------------------------------
UPLINK_SETUP = '''
set -e
ip link add up0 type veth peer name up0p
ip addr add 192.0.2.5/24 dev up0
ip link set up0p up
ip link set up0 up
ip route add default via 192.0.2.1
ip route add 198.18.0.0/15 via 192.0.2.1 metric 50
nft add table ip users_own
nft add chain ip users_own post '{ type nat hook postrouting priority 100; }'
nft add rule ip users_own post oifname "up0" ip saddr 192.168.7.0/24 masquerade comment '"theirs"'
'''

# Everything a refused call could have touched, as the kernel shows it: links (kind, up, MTU,
# master, alias), addresses (link-local ones left out: they come and go with DAD), routes of every
# table, nf_tables and forwarding - of the host and of each of its namespaces - and /run/netns, its
# nsfs mounts and /etc/sysctl.d. /run/netns and its mounts are shared by every host of the sandbox:
# the lines of the other hosts running at the same time are left out (PREFIXES).
SNAPSHOT = r'''
for ns in "" %(namespaces)s; do
  n=${ns:+-n $ns}
  echo "== links $ns"; ip $n -d -j link show
  echo "== addresses $ns"; ip $n -j addr show
  echo "== routes $ns"; ip $n -j route show table all; ip $n -6 -j route show table all
  echo "== nft $ns"; ip netns exec "${ns:-%(host)s}" nft list ruleset
  echo "== sysctl $ns"
  for key in net/ipv4/ip_forward net/ipv6/conf/all/forwarding net/ipv6/conf/default/forwarding; do
    echo "$key=$(ip netns exec "${ns:-%(host)s}" cat /proc/sys/$key)"; done
done
echo "== /run/netns"; ls -la --time-style=+ /run/netns | tail -n +2 | awk '{print $1, $NF}'
echo "== nsfs mounts"; awk '$5 ~ "^/run/netns/" {print $5, $(NF-2)}' /proc/self/mountinfo | sort
echo "== /etc/sysctl.d"; ls -la --time-style=+ /etc/sysctl.d | tail -n +2 | awk '{print $1, $5, $NF}'
'''


def _kernel_view(text):
    """The SNAPSHOT output with its JSON sections reduced to what does not change by itself."""
    lines = []
    for section in text.split('== ')[1:]:
        head, _sep, body = section.partition('\n')
        kind = head.split(' ')[0]
        if kind in ('links', 'addresses', 'routes'):
            items = []
            for chunk in body.split('\n'):
                if chunk.strip():
                    items.extend(json.loads(chunk))
            if kind == 'links':
                body = [(link['ifname'], link.get('linkinfo', {}).get('info_kind'), 'UP' in link['flags'],
                         link['mtu'], link.get('master'), link.get('ifalias')) for link in items]
            elif kind == 'addresses':
                body = [(link['ifname'], sorted('%s/%s' % (a['local'], a['prefixlen'])
                                                for a in link.get('addr_info', []) if a.get('scope') != 'link'))
                        for link in items]
            else:
                body = sorted((r.get('dst'), r.get('gateway'), r.get('dev'), r.get('metric'), r.get('table'),
                               r.get('protocol'), r.get('type')) for r in items
                              if not str(r.get('dst')).startswith(('fe80', 'ff00')))
            body = json.dumps(body)
        lines.append('== %s\n%s' % (head, body.strip()))
    return '\n'.join(lines)


PREFIXES = set()  # of every host in use, to tell their /run/netns entries apart
PREFIXES_LOCK = threading.Lock()


def _strip_volatile(info):
    """netns_info minus the run's own bookkeeping and other hosts' namespaces."""
    info = dict((k, v) for k, v in info.items()
                if k not in ('invocation', 'changed', 'actions', 'warnings', 'deprecations'))
    return info


class Stateful(object):
    """A `Host` (tests/conftest.py: a fresh namespace, modules run inside it) holding one of each
    kind of object, made by the modules themselves, next to objects of the user's own (an uplink,
    routes, an nft table)."""

    def __init__(self, collections, python, tmp):
        self.host = h = Host(collections, python, tmp)
        p = h.prefix
        with PREFIXES_LOCK:
            PREFIXES.add(p)
        h.sh(UPLINK_SETUP)
        h.ok('netns', {'namespaces': [{'name': h.ns('a')}, {'name': h.ns('b')}]})
        h.ok('veth', {'pairs': [
            {'name': p + '-h', 'addresses': ['10.0.0.1/24', 'fd00::1/64'],
             'peer': {'name': 'eth0', 'netns': h.ns('a'), 'addresses': ['10.0.0.2/24', 'fd00::2/64']}},
        ]})
        h.ok('bridge', {'name': p + '-br', 'addresses': ['172.30.0.1/24']})
        h.ok('veth', {'name': p + '-p', 'master': p + '-br',
                      'peer': {'name': 'eth0', 'netns': h.ns('b'), 'addresses': ['172.30.0.2/24']}})
        h.ok('netns_route', {'routes': [{'netns': h.ns('a'), 'gateway': '10.0.0.1'},
                                        {'netns': h.ns('b'), 'gateway': '172.30.0.1'},
                                        {'dest': '10.40.0.0/16', 'gateway': '10.0.0.2', 'metric': 10}]})
        h.ok('nat_masquerade', {'rules': [{'source': '10.0.0.0/24', 'out_interface': 'up0'},
                                          {'source': '172.30.0.0/24', 'out_interface': 'up0'},
                                          {'source': '10.0.0.0/24', 'out_interface': 'eth0', 'netns': h.ns('a')}]})
        h.ok('sysctl_forward', {'settings': [{'ipv4': True}, {'netns': h.ns('a'), 'ipv4': True, 'ipv6': True}]})
        self.baseline = self.snapshot()

    def expand(self, value):
        """'@x' -> '<prefix>-x', recursively: names relative to this host."""
        if isinstance(value, str):
            return value.replace('@', self.host.prefix + '-')
        if isinstance(value, list):
            return [self.expand(v) for v in value]
        if isinstance(value, dict):
            return dict((k, self.expand(v)) for k, v in value.items())
        return value

    def _foreign(self, line):
        with PREFIXES_LOCK:
            others = [p for p in PREFIXES if p != self.host.prefix]
        return any(('/run/netns/' + p) in line or line.split(' ')[-1].startswith(p) for p in others)

    def snapshot(self, info=True):
        """The kernel's view (SNAPSHOT) and, unless info=False, netns_info's - minus the other
        hosts' namespaces."""
        h = self.host
        # only this host's namespaces: another host's may vanish while this one reads (its
        # cleanup); /run/netns itself is compared in full
        mine = sorted(n for n in os.listdir('/run/netns') if n.startswith(h.prefix) and n != h.name)
        text = h.sh(SNAPSHOT % {'namespaces': ' '.join(mine), 'host': h.name})
        text = '\n'.join(line for line in _kernel_view(text).splitlines() if not self._foreign(line))
        if not info:
            return {'shell': text}
        info = _strip_volatile(h.ok('netns_info', {'netns': mine}))
        info['namespaces'] = [n for n in info['namespaces'] if not self._foreign(n)]
        return {'netns_info': info, 'shell': text}

    def close(self):
        self.host.cleanup()


def unchanged(before, after):
    return all(before[key] == after[key] for key in after)


def describe_change(before, after):
    lines = list(difflib.unified_diff(before['shell'].splitlines(), after['shell'].splitlines(),
                                      'before', 'after', lineterm='', n=1))
    if 'netns_info' in after:
        lines += difflib.unified_diff(json.dumps(before['netns_info'], indent=1, sort_keys=True).splitlines(),
                                      json.dumps(after['netns_info'], indent=1, sort_keys=True).splitlines(),
                                      'netns_info before', 'netns_info after', lineterm='', n=2)
    return '\n'.join(lines)


# ---- running the table ------------------------------------------------------------------------------
PYTHONS = [(p.values[0], p.id) for p in _pythons()]
RUNS = [pytest.param(python, bad, id='%s-%s' % (pyid, bad.id))
        for python, pyid in PYTHONS for bad in BAD
        if pyid == 'pyroute2-pip' or bad.id in READS_STATE]
WORKERS = {'pyroute2-pip': 1, 'pyroute2-debian': 1}


def run_cases(python, cases, collections, tmp_factory, outcomes):
    """One worker: a host with state; each case is run, then the host compared with its baseline
    (and rebuilt if the call changed it)."""
    state = None
    for bad in cases:
        try:
            if state is None:
                state = Stateful(collections, python, tmp_factory.mktemp('bad-input'))
            args = state.expand(bad.args)
            try:
                result = state.host.module(bad.module, args)
            except AssertionError as exc:  # no JSON: a traceback; the host is still compared
                result = {'failed': True, 'crash': str(exc)}
            # the kernel's view after every entry; netns_info's too after those that got as far as
            # reading the state (and at the end, below)
            after = state.snapshot(info=bad.id in READS_STATE or os.environ.get('LINUXNET_BAD_INPUT_INFO') == 'all')
            changed = not unchanged(state.baseline, after)
            outcome = {'args': args, 'result': result, 'prefix': state.host.prefix,
                       'change': describe_change(state.baseline, after) if changed else None}
            if changed:
                state.close()
                state = None
        except Exception as exc:  # the worker goes on with the next case; this one reports it
            outcome = {'error': '%s: %s' % (type(exc).__name__, exc)}
            if state is not None:
                state.close()
            state = None
        outcomes[(python, bad.id)] = outcome
    if state is not None:
        after = state.snapshot()
        outcomes[('end', python, cases[-1].id)] = {
            'change': None if unchanged(state.baseline, after) else describe_change(state.baseline, after)}
        state.close()


def role_hosts(prefix, python):
    """The inventory: one host per BAD_ROLE entry, each with names and a subnet of its own."""
    hosts = {}
    for index, rc in enumerate(BAD_ROLE):
        own = '%sr%02d' % (prefix, index)
        hostvars = {
            'ansible_connection': 'local', 'ansible_python_interpreter': python,
            'bridge_network_install_deps': False, 'bridge_network_fleet': [rc.id],
            'bridge_network_prefix': own + 'n', 'bridge_network_veth_prefix': own + 'v',
            'bridge_network_bridge': own + 'b', 'bridge_network_subnet': '10.210.%d.0/24' % index,
        }
        hostvars.update((k, v.replace('@', own) if isinstance(v, str) else v) for k, v in rc.vars.items())
        hosts[rc.id] = hostvars
    # the overlapping fleet: two hosts, the second one's subnet inside the first one's
    first = hosts['role-fleet-overlapping-subnets']
    first['bridge_network_fleet'] = ['role-fleet-overlapping-subnets', OVERLAP_PARTNER]
    hosts[OVERLAP_PARTNER] = dict(first, bridge_network_subnet='10.211.0.0/25',
                                  bridge_network_prefix=first['bridge_network_prefix'] + 'b',
                                  bridge_network_veth_prefix=first['bridge_network_veth_prefix'] + 'b',
                                  bridge_network_bridge=first['bridge_network_bridge'] + 'b')
    return hosts


# the failure's text: one line, or (a debug task's refusal) a JSON object over the lines up to its closing brace
FATAL = re.compile(r'^fatal: \[([^\]]+)\]: FAILED! => (\{\n.*?\n\}|[^\n]*)$', re.M | re.S)
RECAP = re.compile(r'^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)', re.M)


def run_role(collections, tmp_factory, outcomes):
    """All BAD_ROLE entries in one ansible-playbook run (playbooks/site.yml) on one host with state."""
    try:
        state = Stateful(collections, sys.executable, tmp_factory.mktemp('bad-role'))
    except Exception as exc:
        for rc in BAD_ROLE:
            outcomes[('role', rc.id)] = {'error': '%s: %s' % (type(exc).__name__, exc)}
        return
    try:
        tmp = tmp_factory.mktemp('bad-role-run')
        inventory = tmp / 'inventory.yml'
        inventory.write_text(json.dumps({'all': {'hosts': role_hosts(state.host.prefix, sys.executable)}}))
        env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(collections), ANSIBLE_NOCOLOR='1',
                   ANSIBLE_FORCE_COLOR='0', ANSIBLE_LOCAL_TEMP=str(tmp / 'ansible-tmp'),
                   ANSIBLE_RETRY_FILES_ENABLED='0', ANSIBLE_FORKS='8', ANSIBLE_HOST_KEY_CHECKING='0',
                   ANSIBLE_DEPRECATION_WARNINGS='0')
        out = subprocess.run(
            ['nsenter', '--net=/run/netns/' + state.host.name,
             os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'), '-i', str(inventory),
             os.path.join(REPO, 'playbooks', 'site.yml')],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, env=env, check=False)
        after = state.snapshot()
        change = describe_change(state.baseline, after) if not unchanged(state.baseline, after) else None
        fatal = dict((m.group(1), m.group(2)) for m in FATAL.finditer(out.stdout))
        recap = dict((m.group(1), {'changed': int(m.group(3)), 'failed': int(m.group(5))})
                     for m in RECAP.finditer(out.stdout))
        for rc in BAD_ROLE:
            outcomes[('role', rc.id)] = {'fatal': fatal.get(rc.id), 'recap': recap.get(rc.id), 'change': change,
                                         'changers': sorted(h for h, r in recap.items() if r['changed']),
                                         'prefix': '%sr%02d' % (state.host.prefix, BAD_ROLE.index(rc)),
                                         'output': out.stdout}
    except Exception as exc:
        for rc in BAD_ROLE:
            outcomes[('role', rc.id)] = {'error': '%s: %s' % (type(exc).__name__, exc)}
    finally:
        state.close()
        # namespaces a wrongly accepted entry made (named after the entry, so after the host's prefix)
        for name in os.listdir('/run/netns'):
            if name.startswith(state.host.prefix):
                subprocess.call(['ip', 'netns', 'del', name], stderr=subprocess.DEVNULL)


@pytest.fixture(scope='module')
def outcomes(request, collections_dir, tmp_path_factory):
    """Runs every selected entry (module entries on three hosts at once, the role entries in one
    playbook run beside them) and returns {(python or 'role', id): outcome}."""
    selected = [item.callspec.params for item in request.session.items
                if item.module is request.module and hasattr(item, 'callspec')]
    wanted = set((p['python'], p['bad'].id) for p in selected if 'bad' in p)
    role_wanted = any('role_bad' in p for p in selected)
    results = {}
    threads = []
    for python, pyid in PYTHONS:
        cases = [bad for bad in BAD if (python, bad.id) in wanted]
        n = WORKERS.get(pyid, 1)
        for w in range(n):
            threads.append(threading.Thread(target=run_cases, args=(
                python, cases[w::n], collections_dir, tmp_path_factory, results)))
    if role_wanted:
        threads.append(threading.Thread(target=run_role, args=(collections_dir, tmp_path_factory, results)))
    started = time.time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    COUNTS['seconds'] = time.time() - started
    return results


COUNTS = {}


@pytest.mark.parametrize('python, bad', RUNS)
def test_bad_input(outcomes, python, bad):
    outcome = outcomes[(python, bad.id)]
    assert 'error' not in outcome, outcome['error']
    result, prefix = outcome['result'], outcome['prefix']
    value = bad.value.replace('@', prefix + '-') if bad.value is not None else None
    assert result.get('failed'), 'accepted %s %r: %s' % (bad.module, outcome['args'], result)
    assert 'crash' not in result, result['crash']
    assert 'exception' not in result, result['exception']
    msg = result.get('msg', '')
    assert not result.get('changed'), result
    assert bad.param in msg, 'the message does not name %s: %s' % (bad.param, msg)
    if value is not None:
        assert value in msg, 'the message does not name the value %s: %s' % (value, msg)
    assert outcome['change'] is None, 'the refused call changed the host:\n' + outcome['change']


@pytest.mark.parametrize('role_bad', [pytest.param(rc, id=rc.id) for rc in BAD_ROLE])
def test_bad_role_variable(outcomes, role_bad):
    outcome = outcomes[('role', role_bad.id)]
    assert 'error' not in outcome, outcome['error']
    assert outcome['fatal'] is not None, 'no failure for %s:\n%s' % (role_bad.id, outcome['output'][-3000:])
    msg = outcome['fatal']
    value = role_bad.value.replace('@', outcome['prefix']) if role_bad.value is not None else None
    assert role_bad.param in msg, 'the message does not name %s: %s' % (role_bad.param, msg)
    if value is not None:
        assert value in msg, 'the message does not name the value %s: %s' % (value, msg)
    assert outcome['recap'] == {'changed': 0, 'failed': 1}, outcome['recap']
    if outcome['change'] is not None:
        # the host changed: by other entries' hosts (which fail on their own) or by nothing known
        assert outcome['changers'], 'the role changed the host with no task reporting a change:\n' + outcome['change']


def test_hosts_end_as_they_began(outcomes):
    """netns_info of every host at the end of its share of the table, against its baseline."""
    ends = [(k, v['change']) for k, v in outcomes.items() if k[0] == 'end']
    assert not [change for k, change in ends if change], '\n'.join('%s: %s' % (k, c) for k, c in ends if c)


def test_bad_input_figures(outcomes, figures):
    tried = len([k for k in outcomes if k[0] not in ('role', 'end')])
    role = len([k for k in outcomes if k[0] == 'role'])
    figures('bad input: %d module inputs (%d distinct) + %d role variable sets tried in %.1f s' % (
        tried, len(set(k[1] for k in outcomes if k[0] not in ('role', 'end'))), role, COUNTS.get('seconds', 0)))
