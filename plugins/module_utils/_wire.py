# -*- coding: utf-8 -*-
# Copyright: linuxnet.netns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Encoders for the few rtnetlink messages a large run sends thousands of times.

pyroute2's message classes define these messages, and tests/unit/test_wire.py checks that every
encoder here produces byte for byte what pyroute2's `encode()` produces for the same message, on
the installed pyroute2. They exist because pyroute2's generic encoder costs 20-150 us per message
(its attribute machinery), which at 1000 namespaces is seconds; these cost a few microseconds.
Anything not here (nf_tables, namespace ids, rare requests) is encoded by pyroute2 itself.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import socket
import struct

NLM_F_REQUEST = 0x1

IFLA_IFNAME, IFLA_MTU, IFLA_MASTER, IFLA_LINKINFO, IFLA_IFALIAS, IFLA_NET_NS_FD = 3, 4, 10, 18, 20, 28
IFLA_INFO_KIND, IFLA_INFO_DATA = 1, 2
VETH_INFO_PEER = 1
IFA_ADDRESS, IFA_LOCAL = 1, 2
RTA_DST, RTA_OIF, RTA_GATEWAY, RTA_PRIORITY, RTA_TABLE = 1, 4, 5, 6, 15

_HDR = struct.Struct('=IHHII')
_NLA = struct.Struct('=HH')
_IFINFO = struct.Struct('=BxHiII')
_IFADDR = struct.Struct('=BBBBI')
_RTMSG = struct.Struct('=BBBBBBBBI')
_U32 = struct.Struct('=I')


def nla(kind, payload):
    return _NLA.pack(4 + len(payload), kind) + payload + b'\0' * (-len(payload) % 4)


def nla_str(kind, text):
    return nla(kind, text.encode('utf-8') + b'\0')


def nla_u32(kind, value):
    return nla(kind, _U32.pack(value))


def message(msg_type, flags, body):
    data = bytearray(_HDR.pack(16 + len(body), msg_type, flags | NLM_F_REQUEST, 0, 0))
    data += body
    return data


def ifinfo(index=0, flags=0, change=0, family=0, ifi_type=0):
    return _IFINFO.pack(family, ifi_type, index, flags, change)


def link(msg_type, flags, attrs, index=0, ifi_flags=0, change=0):
    """RTM_NEWLINK / RTM_DELLINK with attributes given as encoded nla() bytes."""
    return message(msg_type, flags, ifinfo(index, ifi_flags, change) + b''.join(attrs))


def link_attrs(name=None, mtu=None, master=None, alias=None):
    attrs = []
    if name is not None:
        attrs.append(nla_str(IFLA_IFNAME, name))
    if mtu is not None:
        attrs.append(nla_u32(IFLA_MTU, mtu))
    if master is not None:
        attrs.append(nla_u32(IFLA_MASTER, master))
    if alias is not None:
        attrs.append(nla_str(IFLA_IFALIAS, alias))
    return attrs


def veth_info(peer_name, peer_mtu=None, peer_netns_fd=None):
    """IFLA_LINKINFO of a veth whose peer is `peer_name` (in the namespace of peer_netns_fd)."""
    peer = ifinfo() + nla_str(IFLA_IFNAME, peer_name)
    if peer_mtu is not None:
        peer += nla_u32(IFLA_MTU, peer_mtu)
    if peer_netns_fd is not None:
        peer += nla_u32(IFLA_NET_NS_FD, peer_netns_fd)
    data = nla(IFLA_INFO_DATA, nla(VETH_INFO_PEER, peer))
    return nla(IFLA_LINKINFO, nla_str(IFLA_INFO_KIND, 'veth') + data)


def kind_info(kind):
    return nla(IFLA_LINKINFO, nla_str(IFLA_INFO_KIND, kind))


def address(msg_type, flags, index, iface, ifa_flags=0):
    """RTM_NEWADDR / RTM_DELADDR for an ipaddress interface (IPv4 carries IFA_LOCAL as well)."""
    packed = iface.ip.packed
    family = socket.AF_INET if iface.version == 4 else socket.AF_INET6
    body = _IFADDR.pack(family, iface.network.prefixlen, ifa_flags, 0, index)
    if family == socket.AF_INET:
        body += nla(IFA_LOCAL, packed)
    body += nla(IFA_ADDRESS, packed)
    return message(msg_type, flags, body)


def route(msg_type, flags, family, dst_len, table, proto=0, scope=0, rtype=0, rtm_flags=0,
          dst=None, gateway=None, oif=None, metric=None):
    """RTM_NEWROUTE / RTM_DELROUTE; dst and gateway are ipaddress addresses."""
    body = _RTMSG.pack(family, dst_len, 0, 0, table if table < 256 else 252, proto, scope, rtype, rtm_flags)
    body += nla_u32(RTA_TABLE, table)
    if dst is not None:
        body += nla(RTA_DST, dst.packed)
    if gateway is not None:
        body += nla(RTA_GATEWAY, gateway.packed)
    if oif is not None:
        body += nla_u32(RTA_OIF, oif)
    if metric:
        body += nla_u32(RTA_PRIORITY, metric)
    return message(msg_type, flags, body)
