"""The hot-path encoders produce, byte for byte, what pyroute2's own encoder produces."""
import ipaddress

import pytest

pytest.importorskip('pyroute2')

from ansible_collections.linuxnet.netns.plugins.module_utils import _nl, _wire  # noqa: E402


def same(a, b):
    assert bytes(a) == bytes(b), '\n%s\n%s' % (bytes(a).hex(), bytes(b).hex())


@pytest.mark.parametrize('fields, attrs, kw', [
    ({'index': 7, 'flags': 1, 'change': 1}, [], dict(index=7, ifi_flags=1, change=1)),
    ({}, [('IFLA_IFNAME', 'eth0'), ('IFLA_MTU', 1400), ('IFLA_MASTER', 3), ('IFLA_IFALIAS', 'linuxnet.netns')],
     dict(attrs=dict(name='eth0', mtu=1400, master=3, alias='linuxnet.netns'))),
    ({'flags': 0, 'change': 1}, [('IFLA_IFNAME', 'veth-with-15ch'), ('IFLA_IFALIAS', 'x')],
     dict(ifi_flags=0, change=1, attrs=dict(name='veth-with-15ch', alias='x'))),
])
def test_link(fields, attrs, kw):
    ours = _wire.link(16, 0x600, _wire.link_attrs(**kw.pop('attrs', {})), **kw)
    same(ours, _nl.encode(_nl.ifinfmsg, 16, 0x600, fields, attrs))


@pytest.mark.parametrize('mtu, fd', [(None, None), (9000, 5), (None, 12)])
def test_veth_create(mtu, fd):
    peer = [('IFLA_IFNAME', 'eth0')]
    if mtu:
        peer.append(('IFLA_MTU', mtu))
    if fd is not None:
        peer.append(('IFLA_NET_NS_FD', fd))
    info = {'attrs': [('IFLA_INFO_KIND', 'veth'), ('IFLA_INFO_DATA', {'attrs': [('VETH_INFO_PEER', {'attrs': peer})]})]}
    theirs = _nl.encode(_nl.ifinfmsg, 16, 0x600, {}, [('IFLA_IFNAME', 'vh1'), ('IFLA_MTU', 1500), ('IFLA_LINKINFO', info)])
    ours = _wire.link(16, 0x600, _wire.link_attrs(name='vh1', mtu=1500) + [_wire.veth_info('eth0', mtu, fd)])
    same(ours, theirs)


def test_bridge_create():
    theirs = _nl.encode(_nl.ifinfmsg, 16, 0x600, {}, [('IFLA_IFNAME', 'br0'),
                                                      ('IFLA_LINKINFO', {'attrs': [('IFLA_INFO_KIND', 'bridge')]})])
    same(_wire.link(16, 0x600, _wire.link_attrs(name='br0') + [_wire.kind_info('bridge')]), theirs)


@pytest.mark.parametrize('text, flags', [('10.0.0.2/24', 0), ('fd00::2/64', 2), ('192.0.2.1/32', 0)])
def test_address(text, flags):
    iface = ipaddress.ip_interface(text)
    attrs = [('IFA_ADDRESS', str(iface.ip))]
    if iface.version == 4:
        attrs.insert(0, ('IFA_LOCAL', str(iface.ip)))
    fields = {'family': 2 if iface.version == 4 else 10, 'prefixlen': iface.network.prefixlen, 'index': 4, 'flags': flags}
    same(_wire.address(20, 0x600, 4, iface, flags), _nl.encode(_nl.ifaddrmsg, 20, 0x600, fields, attrs))


@pytest.mark.parametrize('dest, gateway, oif, metric, table', [
    ('0.0.0.0/0', '10.0.0.1', None, 0, 254), ('10.20.0.0/16', '10.0.0.1', 3, 100, 100),
    ('::/0', 'fd00::1', None, 1024, 254), ('10.1.0.0/24', None, 2, 0, 1000),
])
def test_route(dest, gateway, oif, metric, table):
    net = ipaddress.ip_network(dest)
    family = 2 if net.version == 4 else 10
    fields = {'family': family, 'dst_len': net.prefixlen, 'table': table if table < 256 else 252,
              'proto': 4, 'type': 1, 'scope': 0 if gateway else 253, 'flags': 0}
    attrs = [('RTA_TABLE', table)]
    if net.prefixlen:
        attrs.append(('RTA_DST', str(net.network_address)))
    if gateway:
        attrs.append(('RTA_GATEWAY', gateway))
    if oif is not None:
        attrs.append(('RTA_OIF', oif))
    if metric:
        attrs.append(('RTA_PRIORITY', metric))
    ours = _wire.route(24, 0x600, family, net.prefixlen, table, proto=4, scope=0 if gateway else 253, rtype=1,
                       dst=net.network_address if net.prefixlen else None,
                       gateway=ipaddress.ip_address(gateway) if gateway else None, oif=oif, metric=metric)
    same(ours, _nl.encode(_nl.rtmsg, 24, 0x600, fields, attrs))
