# -*- coding: utf-8 -*-
# Copyright: linuxnet.netns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The linuxnet.netns.bridge_network role's topology, as the lists its modules take.

Why a filter and not Jinja: the role's lists need address arithmetic (the n-th address of a
subnet, /30 blocks carved out of it) that ansible-core's Jinja cannot do without ansible.utils,
and decisions (what the forwarding settings are, which objects are the role's) that are clearer
and testable in Python. The filter only computes; the modules read and change the host.

Every filter takes one dict: the role's settings (SETTINGS: its variables without their
bridge_network_ prefix, built once in the role's vars/main.yml as _bridge_network_settings) plus
the inputs of that filter (this host's name, the fleet's subnets ...). A key missing or unknown is
refused, naming it.

bridge_network_local(info, settings)    -> {uplink, underlay, current}: what the role needs to know
                                          about a host before the fleet's subnets are allocated.
bridge_network_plan(info, settings)     -> {namespaces, bridges, pairs, routes, nat, publish, services, dns,
                                          forwarding, purge, purge_match, errors, warnings, ...}: the desired objects, and
                                          what linuxnet.netns.network purges (the role's objects it
                                          finds there that are not declared).
bridge_network_teardown(settings)       -> the same keys, all object lists empty: state=absent, no read
                                          of the host first.

The converge and the teardown name the role's objects the same way (role_purge_match): the
network module finds them, and of those only what this collection marked as its own.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import re
from collections.abc import Mapping

try:
    from ansible.errors import AnsibleFilterError
except ImportError:  # pragma: no cover
    AnsibleFilterError = ValueError
from ansible.module_utils.parsing.convert_bool import boolean

from ansible_collections.linuxnet.netns.plugins.filter.subnet_allocate import route_conflicts, subnet_conflicts
from ansible_collections.linuxnet.netns.plugins.module_utils import _validate

IFNAMSIZ = 16
MAIN_TABLE = 254

# The role's variables the filters read, without their bridge_network_ prefix. The role builds this
# dict once (vars/main.yml, _bridge_network_settings); each filter takes it whole, plus its INPUTS.
SETTINGS = ('state', 'mode', 'namespaces', 'prefix', 'veth_prefix', 'ns_interface', 'bridge', 'mtu', 'pool',
            'subnet_prefixlen', 'subnet', 'p2p_prefixlen', 'uplink', 'underlay_address', 'masquerade', 'host_gw',
            'persist_forwarding', 'persist', 'safe_router', 'disable_forwarding_on_absent', 'inbound', 'inbound_from',
            'isolate', 'publish', 'services', 'dns')
# What each filter needs besides the settings: facts of this host and of the fleet, known only in the play.
INPUTS = {
    'bridge_network_local': (),
    # host: this host's inventory name; local: what bridge_network_local returned for this host;
    # fleet: what bridge_network_fleet made of the fleet's subnets and underlays once for the play, or
    # None: the plan then works it out itself from subnets, underlays ({host: ...} of the fleet), O(H)
    # for this one host. Given a fleet, the plan reads neither (the role passes None for both).
    'bridge_network_plan': ('host', 'subnets', 'underlays', 'local', 'fleet'),
    # underlays: {host: address} of the fleet
    'bridge_network_fleet': ('underlays',),
    # known_subnets: the fleet's subnets known without reading (pinned, remembered); current: the
    # subnet this host had when the role last read it
    'bridge_network_teardown': ('known_subnets', 'current'),
}


def settings_of(settings, name):
    """`settings` checked for the filter `name`: a dict holding every key of SETTINGS and INPUTS[name],
    and no other - a misspelt or forgotten key would otherwise pass as a default unnoticed."""
    wanted = SETTINGS + INPUTS[name]
    if not isinstance(settings, Mapping):
        raise AnsibleFilterError('%s takes one dict (the role\'s _bridge_network_settings with this filter\'s '
                                 'inputs %s), not %r' % (name, ', '.join(INPUTS[name]) or 'none', settings))
    unknown = sorted(key for key in settings if key not in wanted)
    if unknown:
        raise AnsibleFilterError('%s: unknown key %r in its dict; the keys are %s' % (name, unknown[0], ', '.join(wanted)))
    missing = [key for key in wanted if key not in settings]
    if missing:
        raise AnsibleFilterError('%s: its dict lacks the key %r; give every one of %s (the role\'s settings are '
                                 '_bridge_network_settings, in roles/bridge_network/vars/main.yml)'
                                 % (name, missing[0], ', '.join(wanted)))
    return settings


def _v4_interfaces(addresses):
    found = []
    for text in addresses or []:
        try:
            iface = ipaddress.ip_interface(u'%s' % text)
        except ValueError:
            continue
        if iface.version == 4:
            found.append(iface)
    return found


def _host(info):
    return (info or {}).get('host') or {}


def _is_ours(interfaces, name, kind):
    link = interfaces.get(name)
    return bool(link) and link.get('kind') == kind and bool(link.get('ours'))


def _numbered(prefix):
    """The pattern of the names the role numbers: <prefix><digits> (purge_match matches it whole)."""
    return re.escape(prefix) + '[0-9]+'


def _host_end_re(veth_prefix):
    return re.compile(r'^%s([0-9]+)$' % re.escape(veth_prefix))


def default_uplink(info):
    """The interface of the host's IPv4 default route in the main table (lowest metric)."""
    routes = [r for r in _host(info).get('routes') or []
              if r.get('dest') == '0.0.0.0/0' and r.get('table', MAIN_TABLE) == MAIN_TABLE and r.get('dev')]
    routes.sort(key=lambda r: r.get('metric') or 0)
    return routes[0]['dev'] if routes else None


def bridge_network_local(info, settings):
    """This host's uplink (settings' `uplink`, or the device of its IPv4 default route), underlay
    address (`underlay_address`, or the first IPv4 address on the uplink) and current subnet (the
    network, at `subnet_prefixlen`, of the first IPv4 address on the role's `bridge` or, failing that,
    on its lowest-numbered host veth end `veth_prefix`N; None on a host the role has not built on).
    `settings`: the role's settings (SETTINGS), nothing more."""
    s = settings_of(settings, 'bridge_network_local')
    bridge, veth_prefix, prefixlen = s['bridge'], s['veth_prefix'], s['subnet_prefixlen']
    uplink, underlay = s['uplink'], s['underlay_address']
    interfaces = _host(info).get('interfaces') or {}
    if uplink:
        _check_name(uplink, 'bridge_network_uplink')
        if any(c in uplink for c in '*"\\'):
            raise AnsibleFilterError('bridge_network_uplink=%r: "*", quotes and backslashes have a meaning of their '
                                     'own in nf_tables interface names; name the uplink exactly' % uplink)
    uplink = uplink or default_uplink(info)
    if not underlay and uplink in interfaces:
        addresses = _v4_interfaces(interfaces[uplink].get('addresses'))
        addresses = [a for a in addresses if not a.ip.is_link_local] or addresses
        underlay = str(addresses[0].ip) if addresses else None
    current = None
    candidates = []
    if _is_ours(interfaces, bridge, 'bridge'):
        candidates.append(interfaces[bridge])
    pattern = _host_end_re(veth_prefix)
    ends = sorted((int(m.group(1)), name) for name, m in ((n, pattern.match(n)) for n in interfaces) if m)
    candidates.extend(interfaces[name] for _index, name in ends if interfaces[name].get('ours'))
    for link in candidates:
        addresses = _v4_interfaces(link.get('addresses'))
        if addresses:
            current = str(ipaddress.ip_network((addresses[0].ip, int(prefixlen)), strict=False))
            break
    return {'uplink': uplink or None, 'underlay': underlay or None, 'current': current}


def _check_name(value, var, check=None):
    """The modules' own rules for names, refused here - before the role changes anything - and
    worded with the role variable that produced the name."""
    if check is None and len(value.encode('utf-8')) >= IFNAMSIZ:
        raise AnsibleFilterError('%s gives the interface name %r, %d bytes long; Linux allows at most %d: '
                                 'shorten %s' % (var, value, len(value.encode('utf-8')), IFNAMSIZ - 1, var))
    try:
        (check or _validate.ifname)(value, var)
    except _validate.ValidationError as exc:
        raise AnsibleFilterError(str(exc))


# A bridge numbers its ports in 10 bits (the kernel's BR_MAX_PORTS: 1023 ports). In bridge mode the
# role puts namespaces 1..1000 on the bridge, 1001..2000 on a second one, and so on; each further
# bridge is joined to the first by a veth pair, so that all of them are one L2 segment with one
# subnet and one gateway (on the first). Namespace i is on bridge (i - 1) // 1000 whatever N is:
# nothing moves when N grows past a thousand or shrinks below it. The first bridge holds its
# thousand namespaces and a join per further bridge: room for 24 bridges, 24000 namespaces.
BRIDGE_NAMESPACES = 1000
BRIDGE_MAX_PORTS = 1023  # as _kind_veth.BRIDGE_MAX_PORTS, without the engine on the controller
BRIDGE_MODE_MAX_NAMESPACES = BRIDGE_NAMESPACES * (BRIDGE_MAX_PORTS - BRIDGE_NAMESPACES + 1)


def segment_bridges(bridge, count):
    """The bridges of `count` namespaces in bridge mode, first the one with the gateway, and the
    veth pairs joining each further bridge to it: (names, [(end on the first, end on the other)])."""
    extra = max(0, (int(count) - 1) // BRIDGE_NAMESPACES)
    names = [bridge] + ['%s-%d' % (bridge, k) for k in range(1, extra + 1)]
    return names, [('%s-%da' % (bridge, k), '%s-%db' % (bridge, k)) for k in range(1, extra + 1)]


def topology(subnet, count, mode='bridge', prefix='lnns', veth_prefix='lnv', bridge='lnbr0',
             ns_interface='eth0', p2p_prefixlen=30, mtu=None, isolate=False):
    """The desired namespaces, bridge, veth pairs and namespace routes of one host's subnet.

    bridge mode: the gateway is the subnet's first address, on the bridge; namespace i (1-based)
    gets the (i+1)-th address, and a port on bridge (i - 1) // 1000 (segment_bridges). p2p mode: namespace i gets the i-th /30 (or /31) block of the subnet;
    the host end has its first usable address, the namespace end the next one, as in the tutorial.
    `isolate` (bridge mode): the bridge ports are isolated, so that the namespaces reach the gateway
    and what lies beyond it, but not each other.
    """
    network = ipaddress.ip_network(u'%s' % subnet, strict=True)
    count = int(count)
    if count < 0:
        raise AnsibleFilterError('bridge_network_namespaces=%d: give 0 or more' % count)
    if network.version != 4:
        raise AnsibleFilterError('bridge_network_subnet / bridge_network_pool: subnet %s is IPv%d; the role '
                                 'builds IPv4 subnets only' % (network, network.version))
    _check_name(bridge, 'bridge_network_bridge')
    _check_name(ns_interface, 'bridge_network_ns_interface')
    if count:
        _check_name('%s%d' % (veth_prefix, count), 'bridge_network_veth_prefix')
        _check_name('%s%d' % (prefix, count), 'bridge_network_prefix', _validate.netns_name)
    if mtu is not None:
        try:
            _validate.mtu(int(mtu), 'bridge_network_mtu')
        except (_validate.ValidationError, ValueError) as exc:
            raise AnsibleFilterError(str(exc))
    base = int(network.network_address)
    namespaces, pairs, routes, targets = [], [], [], []
    result = {'subnet': str(network), 'mode': mode, 'gateway': None, 'bridges': []}
    if mode == 'bridge':
        usable = network.num_addresses - 2 if network.prefixlen < 31 else 0
        if count + 1 > usable:
            raise AnsibleFilterError(
                'subnet %s has %d usable addresses, but bridge mode needs %d (the gateway and %d '
                'namespaces): lower bridge_network_subnet_prefixlen or bridge_network_namespaces'
                % (network, usable, count + 1, count))
        gateway = ipaddress.ip_address(base + 1)
        result['gateway'] = str(gateway)
        bridges, joins = segment_bridges(bridge, count)
        if BRIDGE_NAMESPACES + len(joins) > BRIDGE_MAX_PORTS:
            # refused here, naming the limit, rather than by the kernel halfway through the apply
            # (the first bridge's 1024th port: Exchange full)
            raise AnsibleFilterError(
                'bridge_network_namespaces=%d in bridge mode needs %d bridges, and the first would hold %d ports '
                '(its %d namespaces and a join per further bridge); a bridge takes at most %d, so bridge mode '
                'takes at most %d namespaces: lower bridge_network_namespaces or use bridge_network_mode: p2p'
                % (count, len(bridges), BRIDGE_NAMESPACES + len(joins), BRIDGE_NAMESPACES, BRIDGE_MAX_PORTS,
                   BRIDGE_MODE_MAX_NAMESPACES))
        if joins:
            _check_name(joins[-1][0], 'bridge_network_bridge (with %d namespaces, the bridges %s-1.. join it)'
                        % (count, bridge))
        result['bridges'] = [{'name': bridge, 'addresses': ['%s/%d' % (gateway, network.prefixlen)], 'mtu': mtu}]
        result['bridges'] += [{'name': name, 'addresses': [], 'mtu': mtu} for name in bridges[1:]]
        for k, (first_end, other_end) in enumerate(joins, 1):
            # isolated ports reach only ports that are not: the joins' ends on the first bridge are
            # isolated with the namespaces' ports, the ends on the others are not, so that every
            # namespace reaches the gateway and, with isolate, no other namespace
            pairs.append({'name': first_end, 'master': bridge, 'addresses': [], 'mtu': mtu,
                          'peer': {'name': other_end, 'netns': None, 'master': bridges[k], 'addresses': []}})
            if isolate:
                pairs[-1]['isolated'] = True
        for i in range(1, count + 1):
            ns = '%s%d' % (prefix, i)
            address = ipaddress.ip_address(base + 1 + i)
            namespaces.append({'name': ns})
            pairs.append({'name': '%s%d' % (veth_prefix, i), 'master': bridges[(i - 1) // BRIDGE_NAMESPACES],
                          'addresses': [], 'mtu': mtu,
                          'peer': {'name': ns_interface, 'netns': ns,
                                   'addresses': ['%s/%d' % (address, network.prefixlen)]}})
            if isolate:
                pairs[-1]['isolated'] = True  # else the module's default: not isolated
            routes.append({'netns': ns, 'dest': 'default', 'gateway': str(gateway)})
            targets.append({'netns': ns, 'address': str(address), 'gateway': str(gateway)})
    elif mode == 'p2p':
        p2p_prefixlen = int(p2p_prefixlen)
        if p2p_prefixlen not in (30, 31):
            raise AnsibleFilterError('bridge_network_p2p_prefixlen=%d: give 30 or 31' % p2p_prefixlen)
        size = 1 << (32 - p2p_prefixlen)
        if count * size > network.num_addresses:
            raise AnsibleFilterError(
                'subnet %s holds %d blocks of /%d, but p2p mode needs one per namespace (%d): lower '
                'bridge_network_subnet_prefixlen or bridge_network_namespaces'
                % (network, network.num_addresses // size, p2p_prefixlen, count))
        first = 1 if p2p_prefixlen == 30 else 0
        for i in range(1, count + 1):
            ns = '%s%d' % (prefix, i)
            block = base + (i - 1) * size
            host_end = ipaddress.ip_address(block + first)
            ns_end = ipaddress.ip_address(block + first + 1)
            namespaces.append({'name': ns})
            pairs.append({'name': '%s%d' % (veth_prefix, i), 'addresses': ['%s/%d' % (host_end, p2p_prefixlen)],
                          'mtu': mtu,
                          'peer': {'name': ns_interface, 'netns': ns,
                                   'addresses': ['%s/%d' % (ns_end, p2p_prefixlen)]}})
            routes.append({'netns': ns, 'dest': 'default', 'gateway': str(host_end)})
            targets.append({'netns': ns, 'address': str(ns_end), 'gateway': str(host_end)})
    else:
        raise AnsibleFilterError('bridge_network_mode=%r: give bridge or p2p' % (mode,))
    result.update(namespaces=namespaces, pairs=pairs, routes=routes, targets=targets)
    return result


PUBLISH_KEYS = ('host_port', 'namespace', 'target_port', 'protocol', 'localhost', 'host_address')


def role_publish(entries, targets):
    """linuxnet.netns.network's `publish` list: each entry of bridge_network_publish ({host_port,
    namespace, target_port, protocol, localhost, host_address}) with its namespace index (1-based)
    turned into that namespace's address in `targets` (topology's, in order). IPv4 only: the role's
    subnets are. Each entry is checked by the port_publish kind's own validation, under the role
    variable's name, and the host ports may not overlap: all refused here, before any change."""
    if entries is None:
        return []
    var = 'bridge_network_publish'
    if not isinstance(entries, list):
        raise AnsibleFilterError('%s=%r is not a list; give a list of {host_port, namespace, target_port, ...}'
                                 % (var, entries))
    if not entries:
        return []
    # only when ports are published: the kind's module_utils cost the controller an import
    from ansible_collections.linuxnet.netns.plugins.module_utils import _kind_publish
    items, objects = [], []
    for index, entry in enumerate(entries):
        param = '%s[%d]' % (var, index)
        if not isinstance(entry, Mapping):
            raise AnsibleFilterError('%s=%r is not a dict; give {host_port: 8080, namespace: 1, target_port: 80}'
                                     % (param, entry))
        unknown = sorted(key for key in entry if key not in PUBLISH_KEYS)
        if unknown:
            raise AnsibleFilterError('%s: unknown key %r; the keys are %s' % (param, unknown[0], ', '.join(PUBLISH_KEYS)))
        number = entry.get('namespace')
        try:
            number = None if isinstance(number, bool) else int(u'%s' % number)
        except ValueError:
            number = None
        if number is None or not 1 <= number <= len(targets):
            raise AnsibleFilterError(
                '%s.namespace=%r: %s; give the index of one of the role\'s namespaces on this host, %s'
                % (param, entry.get('namespace'),
                   'this host has no namespaces (bridge_network_namespaces=0)' if not targets
                   else 'this host has %d (bridge_network_namespaces)' % len(targets),
                   'or raise bridge_network_namespaces' if not targets else '1 to %d' % len(targets)))
        host_address = entry.get('host_address')
        if host_address not in (None, '') and ':' in u'%s' % host_address:
            raise AnsibleFilterError('%s.host_address=%r: the role publishes IPv4 ports only, as its subnets are '
                                     'IPv4; give an IPv4 address of the host, or publish IPv6 with '
                                     'linuxnet.netns.port_publish' % (param, host_address))
        item = {'host_port': entry.get('host_port'), 'target': targets[number - 1]['address'],
                'protocol': entry.get('protocol') or 'tcp',
                'localhost': boolean(entry.get('localhost') or False, strict=False)}
        if entry.get('target_port') not in (None, ''):
            item['target_port'] = entry['target_port']
        if host_address not in (None, ''):
            item['host_address'] = host_address
        if item['protocol'] not in ('tcp', 'udp'):
            raise AnsibleFilterError('%s.protocol=%r: give tcp or udp' % (param, item['protocol']))
        try:
            obj = _kind_publish.Publish(item, param)
        except _validate.ValidationError as exc:
            raise AnsibleFilterError(str(exc))
        for other in objects:
            if other.protocol == obj.protocol and _kind_publish._overlaps(other.listen, obj.listen) and \
                    other.host_ports[0] <= obj.host_ports[1] and obj.host_ports[0] <= other.host_ports[1]:
                raise AnsibleFilterError('%s.host_port=%r: %s host port %s is also published by %s (host_port=%r); '
                                         'publish each host port once per protocol' % (
                                             param, entry.get('host_port'), obj.protocol,
                                             max(obj.host_ports[0], other.host_ports[0]), other.param,
                                             other.item.get('host_port')))
        objects.append(obj)
        item['host_port'] = _ports(obj.host_ports)
        if 'target_port' in item:
            item['target_port'] = _ports(obj.target_ports)
        items.append(item)
    return items


SERVICE_KEYS = ('service', 'namespace', 'resolv_conf', 'restart')


def _namespace_index(param, value, targets):
    """The 1-based index of one of the role's namespaces on this host; refused naming the variable."""
    try:
        number = None if isinstance(value, bool) else int(u'%s' % value)
    except ValueError:
        number = None
    if number is None or not 1 <= number <= len(targets):
        raise AnsibleFilterError(
            '%s.namespace=%r: %s; give the index of one of the role\'s namespaces on this host, %s'
            % (param, value, 'this host has no namespaces (bridge_network_namespaces=0)' if not targets
               else 'this host has %d (bridge_network_namespaces)' % len(targets),
               'or raise bridge_network_namespaces' if not targets else '1 to %d' % len(targets)))
    return number


def role_services(entries, targets):
    """linuxnet.netns.network's `services` list: each entry of bridge_network_services ({service,
    namespace, resolv_conf, restart}) placed in the role's namespace of that index (1-based), checked
    by the netns_service kind's own validation under the role variable's name."""
    var = 'bridge_network_services'
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise AnsibleFilterError('%s=%r is not a list; give a list of {service, namespace}' % (var, entries))
    if not entries:
        return []
    from ansible_collections.linuxnet.netns.plugins.module_utils import _kind_service
    items, seen = [], {}
    for index, entry in enumerate(entries):
        param = '%s[%d]' % (var, index)
        if not isinstance(entry, Mapping):
            raise AnsibleFilterError('%s=%r is not a dict; give {service: nginx, namespace: 1}' % (param, entry))
        unknown = sorted(key for key in entry if key not in SERVICE_KEYS)
        if unknown:
            raise AnsibleFilterError('%s: unknown key %r; the keys are %s' % (param, unknown[0], ', '.join(SERVICE_KEYS)))
        number = _namespace_index(param, entry.get('namespace'), targets)
        item = {'service': entry.get('service'), 'netns': targets[number - 1]['netns'],
                'resolv_conf': boolean(entry.get('resolv_conf', True), strict=False),
                'restart': boolean(entry.get('restart') or False, strict=False)}
        try:
            obj = _kind_service.Service(item, param)
        except _validate.ValidationError as exc:
            raise AnsibleFilterError(str(exc))
        if obj.name in seen:
            raise AnsibleFilterError('%s.service=%r: %s is also placed by %s; a service runs in one namespace'
                                     % (param, entry.get('service'), obj.name, seen[obj.name]))
        seen[obj.name] = param
        item['service'] = obj.name
        items.append(item)
    return items


def role_dns(dns, targets):
    """linuxnet.netns.network's `dns` list: bridge_network_dns for each of the role's namespaces on
    this host - `upstream` (the host's real upstream servers), `none` (no resolver file of ours), or
    a list of servers (static), checked by the netns_dns kind's own validation."""
    var = 'bridge_network_dns'
    if dns in (None, 'none', '') or not targets:
        return []
    if dns == 'upstream':
        return [{'netns': target['netns']} for target in targets]
    if not isinstance(dns, list):
        raise AnsibleFilterError('%s=%r: give upstream, none or a list of nameserver addresses' % (var, dns))
    from ansible_collections.linuxnet.netns.plugins.module_utils import _kind_dns
    item = {'netns': targets[0]['netns'], 'source': 'static', 'servers': list(dns)}
    try:
        servers = _kind_dns.Resolver(item, var).servers
    except _validate.ValidationError as exc:
        raise AnsibleFilterError(str(exc).replace('%s.servers' % var, var, 1))
    return [{'netns': target['netns'], 'source': 'static', 'servers': servers} for target in targets]


def _ports(ports):
    """A port as the module takes it: 8080, or "8000-8010"."""
    return ports[0] if ports[0] == ports[1] else '%d-%d' % ports


def _host_gw_routes(interfaces, peers, underlays, errors):
    """A route to each peer's subnet via its underlay address, which must be on a link of this host
    (host-gw routing has no tunnel: the next hop is the peer itself)."""
    connected = [a.network for link in interfaces.values() if not link.get('ours')
                 for a in _v4_interfaces(link.get('addresses'))]
    routes, unknown = [], []
    for peer in sorted(peers):
        if not underlays.get(peer):
            unknown.append(peer)
            continue
        address = ipaddress.ip_address(u'%s' % underlays[peer])
        if not any(address in network for network in connected):
            errors.append(
                'host-gw: the underlay address %s of host %s is on no subnet connected to this host (%s); '
                'host-gw routing needs every host on one link, or set bridge_network_host_gw: false'
                % (address, peer, ', '.join(str(n) for n in connected) or 'none'))
            continue
        routes.append({'dest': peers[peer], 'gateway': str(address)})
    return routes, unknown


def _network_key(network):
    return network.version, int(network.network_address), network.prefixlen


def _networks(values, what):
    """The distinct networks among `values` (None skipped), in address order."""
    found = set()
    for text in values:
        if not text:
            continue
        try:
            found.add(ipaddress.ip_network(u'%s' % text, strict=False))
        except ValueError:
            raise AnsibleFilterError('%r is not a subnet (%s)' % (text, what))
    return sorted(found, key=_network_key)


def _without(network, kept):
    """`network` less `kept`, as the prefixes that cover the rest of it."""
    if network.version != kept.version or not network.overlaps(kept):
        return [network]
    if network.subnet_of(kept):
        return []
    return sorted(network.address_exclude(kept), key=_network_key)


def role_purge_match(prefix, veth_prefix, bridge, pool, subnets, own, keep=()):
    """The role's objects, as linuxnet.netns.network's purge_match: the one definition the converge
    (bridge_network_plan) and the teardown (bridge_network_teardown) share. With `purge: true` the
    module removes what matches and the call does not declare, and of that only what this
    collection marked as its own (namespaces by the alias of their lo, links by their alias, routes by
    protocol 76, MASQUERADE rules by their comment), so a look-alike someone else made stays.

    - namespaces named <prefix><digits>, the bridge `bridge`, veths named <veth_prefix><digits>
      (the module leaves one whose other end is in a namespace it removes to go with that namespace);
    - routes to a prefix inside the `pool`, one of the fleet's `subnets` or of this host's (`own`:
      pinned, allocated, the one it had), but not inside one of `keep` (host-gw routes to a peer
      whose next hop is unknown here: left as they are);
    - MASQUERADE rules whose source is inside the `pool` or one of `own`;
    - published ports whose target is inside the `pool` or one of `own` (a namespace of the role's).

    The module looks on the host and in the namespaces the call's lists name. None in `subnets`,
    `own` or `pool` is skipped."""
    what = 'bridge_network_pool, bridge_network_subnet'
    routes = _networks([pool] + list(subnets) + list(own), what)
    for kept in _networks(keep, 'a host-gw peer\'s subnet'):
        routes = [piece for network in routes for piece in _without(network, kept)]
    own_prefixes = [str(n) for n in _networks([pool] + list(own), what)]
    return {
        'namespaces': [_numbered(prefix)],
        # the bridge and the further ones of a segment past a thousand namespaces, with their joins
        'bridges': [re.escape(bridge) + '(-[0-9]+)?'],
        'pairs': [_numbered(veth_prefix), re.escape(bridge) + '-[0-9]+a'],
        'routes': [str(n) for n in sorted(set(routes), key=_network_key)],
        'masquerade': own_prefixes,
        'publish': list(own_prefixes),
        # the services placed in the role's namespaces, and their resolver files
        'services': [_numbered(prefix)],
        'dns': [_numbered(prefix)],
    }


def role_forwarding(settings, present, prefixes, fleet=()):
    """linuxnet.netns.network's `forwarding` list for the role. Present: IPv4 forwarding on (also
    written to the sysctl file with `persist_forwarding`). Absent: turned off only with
    `disable_forwarding_on_absent`, else left as it is. With `safe_router`, forwarding is scoped to
    `prefixes` (the managed subnets; none when absent, which removes the scope) and, with `inbound`
    closed, traffic into them to the fleet (its subnets, and its hosts' underlay addresses `fleet`),
    `inbound_from`, replies and published ports. With `isolate` in p2p mode, where the namespaces
    reach each other through the host's forwarding, the scope also drops what goes between two
    addresses of one of them. Nothing to say: []."""
    forwarding = {}
    if present:
        persisted = boolean(settings['persist_forwarding'], strict=False)
        if persisted and boolean(settings['persist'], strict=False):
            # the saved plan turns forwarding on at boot once its scope is in place; a sysctl.d file
            # would turn it on before any unit runs
            raise AnsibleFilterError('bridge_network_persist_forwarding: true writes forwarding to /etc/sysctl.d, which '
                                     'turns it on at boot before its scope is in place; bridge_network_persist (the '
                                     'saved plan, true by default) turns it on at boot after its scope. Drop '
                                     'bridge_network_persist_forwarding')
        forwarding.update(ipv4=True, persist=persisted)
    elif boolean(settings['disable_forwarding_on_absent'], strict=False):
        forwarding['ipv4'] = False
    if boolean(settings['safe_router'], strict=False):
        forwarding['restrict_to'] = list(prefixes)
        if present and settings['inbound'] == 'closed':
            hosts = set()
            for address in fleet:
                if address:
                    ip = ipaddress.ip_address(u'%s' % address)
                    hosts.add(ipaddress.ip_network(ip))
            allowed = [str(n) for n in _networks(list(settings['inbound_from'] or []), 'bridge_network_inbound_from')]
            forwarding['inbound_from'] = sorted(set(allowed) | set(str(n) for n in hosts), key=lambda t: _network_key(
                ipaddress.ip_network(u'%s' % t)))
        if present and settings['mode'] == 'p2p' and boolean(settings['isolate'], strict=False):
            forwarding['isolate'] = True
    return [forwarding] if forwarding else []


def bridge_network_plan(info, settings):
    """Everything the role declares on one host, given what netns_info read there (`info`).

    `settings`: the role's settings (SETTINGS) plus `host` (this host's inventory name), `local` (what
    bridge_network_local returned for this host: its uplink and the subnet it had, `current`) and
    either `fleet` (bridge_network_fleet's answer, worked out once for the play) or, with `fleet`
    None, `subnets` and `underlays` ({host: subnet}, {host: address} of the fleet; an underlay
    counts only for a host with a subnet, as in bridge_network_fleet).

    state=present: the topology of the host's subnet (subnets[host]), host-gw routes to every other
    host's subnet and the MASQUERADE rule - which, with host-gw, leaves traffic to the other hosts'
    subnets alone (exclude_destinations). state=absent: no object.

    The role's objects no longer wanted are not listed: `purge` and `purge_match`
    (role_purge_match) let linuxnet.netns.network find them, as in the teardown - only the module
    can tell what this collection made. The prefixes: routes inside the pool or a fleet host's subnet,
    except those to a host-gw peer whose next hop is unknown here; MASQUERADE rules whose source is
    inside the pool or is this host's subnet (now, or the one it had).

    `publish` (the role's bridge_network_publish) becomes the ports published to this host's
    namespaces, by index (role_publish).

    Returns the module lists (namespaces, bridges, pairs, routes, nat, publish, forwarding), purge and
    purge_match, `errors` (refusals the role fails on: overlapping routes, a missing uplink, an
    unreachable host-gw next hop), `warnings`, `targets` (each namespace's address and gateway, for
    verification), `gateway`, `subnet` and `mode`.
    """
    s = settings_of(settings, 'bridge_network_plan')
    present = s['state'] == 'present'
    mode, prefix, veth_prefix, bridge = s['mode'], s['prefix'], s['veth_prefix'], s['bridge']
    # -e bridge_network_host_gw=false arrives as the string 'false': argument_specs validate, not convert
    masquerade, host_gw = (boolean(s[key], strict=False) for key in ('masquerade', 'host_gw'))
    self_host, local = s['host'], s['local'] or {}
    uplink, current = local.get('uplink'), local.get('current')
    host = _host(info)
    interfaces = host.get('interfaces') or {}
    fleet = s['fleet']
    if fleet is None:
        subnets = dict((k, v) for k, v in (s['subnets'] or {}).items() if v)
        underlays = dict((k, v) for k, v in (s['underlays'] or {}).items() if v and k in subnets)
    else:  # worked out once for the play: nothing below walks the fleet unless host-gw needs each peer
        subnets, underlays = fleet['subnets'], fleet['underlays']
    subnet = subnets.get(self_host)
    errors, warnings = [], []

    if present and not subnet:
        raise AnsibleFilterError('host %s has no subnet: it is not in bridge_network_fleet (%s); add it, or '
                                 'leave bridge_network_fleet unset (all inventory hosts)'
                                 % (self_host, ', '.join(sorted(subnets)) or 'empty'))
    isolate = boolean(s['isolate'], strict=False)
    if present:
        plan = topology(subnet, s['namespaces'], mode, prefix, veth_prefix, bridge, s['ns_interface'],
                        s['p2p_prefixlen'], s['mtu'], isolate)
    else:
        plan = {'subnet': subnet, 'mode': mode, 'gateway': None, 'bridges': [], 'namespaces': [],
                'pairs': [], 'routes': [], 'targets': []}
    nat = []
    peers = {}
    keep = []  # host routes to peers whose next hop is unknown here: left alone, not purged
    if present:
        if fleet is None or host_gw:
            peers = dict((h, n) for h, n in subnets.items() if h != self_host)
        if masquerade:
            if uplink:
                # host-gw: traffic to another host's namespaces leaves through the uplink too, and must
                # keep its source address (no NAT between the fleet's subnets)
                exclude = []
                if host_gw:
                    exclude = sorted(set(ipaddress.ip_network(u'%s' % n, strict=False) for n in peers.values()),
                                     key=_network_key)
                nat.append({'source': plan['subnet'], 'out_interface': uplink,
                            'exclude_destinations': [str(n) for n in exclude]})
            else:
                errors.append('no uplink for the MASQUERADE rule: this host has no IPv4 default route; '
                              'set bridge_network_uplink, or bridge_network_masquerade: false')
        if host_gw:
            routes, unknown = _host_gw_routes(interfaces, peers, underlays, errors)
            plan['routes'].extend(routes)
            if unknown:
                warnings.append('host-gw: no underlay address known for %s (not in this play, and no '
                                'cached facts): their routes are left as they are' % ', '.join(unknown))
                keep = [peers[p] for p in unknown]
        if isolate and mode == 'p2p' and not boolean(s['safe_router'], strict=False):
            errors.append('bridge_network_isolate in p2p mode: the namespaces are kept apart by the safe '
                          "router's forward rules, and bridge_network_safe_router is false; set it to true, "
                          'or use bridge_network_mode: bridge')
        if len(plan['bridges']) > 1 and (host.get('forwarding') or {}).get('bridge_nf_call_iptables'):
            # br_netfilter: a frame from a namespace on a further bridge is tracked on that bridge and
            # again when routed from the first, and the second pass finds the first's connection,
            # made without the MASQUERADE - the namespaces past the thousandth would reach the
            # gateway and each other, but not the internet
            errors.append('bridge_network_namespaces=%s in bridge mode needs %d bridges (a bridge takes at most 1023 '
                          'ports), joined by veth pairs; on this host bridged traffic passes the IP hooks '
                          '(net.bridge.bridge-nf-call-iptables = 1, br_netfilter: Docker loads it), which breaks NAT '
                          'across joined bridges. Use bridge_network_mode: p2p, at most %d namespaces, or set '
                          'net.bridge.bridge-nf-call-iptables = 0 if nothing on the host needs it'
                          % (s['namespaces'], len(plan['bridges']), BRIDGE_NAMESPACES))
        if plan['bridges'] and bridge in interfaces and not _is_ours(interfaces, bridge, 'bridge'):
            errors.append('bridge_network_bridge=%s: an interface of that name exists and is not a bridge this '
                          'collection made (kind %s); rename bridge_network_bridge or remove it'
                          % (bridge, interfaces[bridge].get('kind')))
        errors.extend(_foreign_segment_links(interfaces, bridge, plan))
        labels = {'the subnet of this host': plan['subnet']}
        if host_gw:
            labels.update(('the subnet of host %s' % p, n) for p, n in peers.items())
        pattern = _host_end_re(veth_prefix)
        ignore_devs = [b['name'] for b in plan['bridges']] + [p['name'] for p in plan['pairs']]
        ignore_devs += [n for n in interfaces if pattern.match(n) and interfaces[n].get('ours')]
        if fleet is None:
            errors.extend(subnet_conflicts(host.get('routes'), labels, ignore_devs, list(peers.values())))
        else:
            errors.extend(route_conflicts(host.get('routes'), labels, ignore_devs, _peer_subnet(fleet, self_host)))

    # a safe router forwards only for the managed subnets: this host's and, with host-gw, the others'
    forward_prefixes = ([plan['subnet']] + (sorted(set(peers.values())) if host_gw else [])) if present else []
    return {
        'subnet': plan['subnet'],
        'mode': plan['mode'],
        'gateway': plan['gateway'],
        'namespaces': plan['namespaces'],
        'bridges': plan['bridges'],
        'pairs': plan['pairs'],
        'routes': plan['routes'],
        'nat': nat,
        'publish': role_publish(s['publish'], plan['targets']) if present else [],
        'services': role_services(s['services'], plan['targets']) if present else [],
        'dns': role_dns(s['dns'], plan['targets']) if present else [],
        'forwarding': role_forwarding(s, present, forward_prefixes, sorted(set(
            str(a) for a in underlays.values() if a)) if host_gw else ()),
        'targets': plan['targets'],
        'errors': errors,
        'warnings': warnings,
        'purge': True,
        'purge_match': _plan_purge_match(s, fleet, subnets, [subnet, current], keep),
    }


def _foreign_segment_links(interfaces, bridge, plan):
    """Refusals for the further bridges of a segment past a thousand namespaces and the veth ends
    joining them, as for the first bridge: an interface of one of those names that this collection did
    not make is someone else's, and the network module would take a bridge over as it is. (A join end
    that is a port of some bridge is not in the read - bridge_ports: false - and is left to the module,
    which refuses an end that is not the peer of the other.)"""
    wanted = [(b['name'], 'bridge', 'a further bridge') for b in plan['bridges'][1:]]
    wanted += [(name, 'veth', 'an end of the veth pair joining a further bridge to %s' % bridge)
               for pair in plan['pairs'] if pair['peer']['netns'] is None and pair.get('master') == bridge
               for name in (pair['name'], pair['peer']['name'])]
    return ['bridge_network_bridge=%s: with bridge_network_namespaces=%d the role needs %s named %s, and an '
            'interface of that name exists that is not one this collection made (kind %s); remove it, or rename '
            'bridge_network_bridge' % (bridge, len(plan['namespaces']), what, name, interfaces[name].get('kind'))
            for name, kind, what in wanted if name in interfaces and not _is_ours(interfaces, name, kind)]


def _peer_subnet(fleet, self_host):
    """Whether a route's destination (an ip_network) is another fleet host's subnet - a host-gw route
    of this host - through bridge_network_fleet's index: O(1) a route, not O(fleet)."""
    owners = fleet['owners']

    def is_peer_subnet(dest):
        return any(owner != self_host for owner in owners.get(str(dest), ()))
    return is_peer_subnet


def _plan_purge_match(s, fleet, subnets, own, keep):
    """role_purge_match for this host. With bridge_network_fleet's answer and no host-gw peer to
    keep, this host's part (the pool and its own subnets) is worked out alone and, when its routes
    are among the fleet's already, takes the fleet's route prefixes as they are: the same answer,
    without sorting the whole fleet's subnets once per host."""
    prefix, veth_prefix, bridge, pool = s['prefix'], s['veth_prefix'], s['bridge'], s['pool']
    if fleet is not None and not keep:
        match = role_purge_match(prefix, veth_prefix, bridge, pool, [], own)
        # a host's own prefixes are two or three: a scan of the fleet's list each costs less than
        # an index of it made for every host
        if all(route in fleet['purge_routes'] for route in match['routes']):
            match['routes'] = fleet['purge_routes']
            return match
    return role_purge_match(prefix, veth_prefix, bridge, pool, subnets.values(), own, keep)


def bridge_network_fleet(subnets, settings):
    """What every host's plan needs from the whole fleet, worked out once for the play: the role runs
    it with run_once, and each host's bridge_network_plan takes the answer as its `fleet` input, so
    that no host walks the fleet again (O(H) once, not O(H) per host, O(H^2) in all).

    `subnets`: subnet_allocate's answer ({host: subnet}); `settings`: the role's settings (SETTINGS)
    plus `underlays` ({host: underlay address}, any host of the fleet). Returns plain data (it is a
    fact): `subnets` and `underlays` without the empty ones (underlays of the hosts with a subnet),
    `owners` ({subnet, normalised: [hosts]}) and `purge_routes` (the route prefixes of
    role_purge_match for the fleet's subnets alone, sorted: all a host's plan takes of it)."""
    s = settings_of(settings, 'bridge_network_fleet')
    subnets = dict((k, v) for k, v in (subnets or {}).items() if v)
    underlays = dict((k, v) for k, v in (s['underlays'] or {}).items() if v and k in subnets)
    owners = {}
    for host in sorted(subnets):
        try:
            owners.setdefault(str(ipaddress.ip_network(u'%s' % subnets[host], strict=False)), []).append(host)
        except ValueError:
            raise AnsibleFilterError('%r is not a subnet (the subnet of host %s)' % (subnets[host], host))
    match = role_purge_match(s['prefix'], s['veth_prefix'], s['bridge'], s['pool'], subnets.values(), [])
    return {'subnets': subnets, 'underlays': underlays, 'owners': owners, 'purge_routes': match['routes']}


def bridge_network_teardown(settings):
    """state=absent without reading the host: linuxnet.netns.network's lists, all empty, with
    `purge` and `purge_match` (role_purge_match) naming the role's objects for the module to find,
    and the `forwarding` the role leaves (role_forwarding).

    `settings`: the role's settings (SETTINGS) plus `known_subnets` (the fleet's subnets known
    without a read: pinned, or remembered by a fact cache; None for unknown) and `current` (this
    host's subnet when the role last read it, or None). The route prefixes are the pool, those
    subnets and this host's (pinned `subnet`, `current`); the MASQUERADE prefixes the pool and this
    host's. Only objects this collection marked as its own are candidates."""
    s = settings_of(settings, 'bridge_network_teardown')
    prefix, veth_prefix, bridge, pool = s['prefix'], s['veth_prefix'], s['bridge'], s['pool']
    _check_name(bridge, 'bridge_network_bridge')
    _check_name(veth_prefix + '1', 'bridge_network_veth_prefix')
    _check_name(prefix + '1', 'bridge_network_prefix', _validate.netns_name)
    return {
        'subnet': None, 'mode': s['mode'], 'gateway': None,
        'namespaces': [], 'bridges': [], 'pairs': [], 'routes': [], 'nat': [], 'publish': [],
        'services': [], 'dns': [],
        'forwarding': role_forwarding(s, False, []),
        'targets': [], 'errors': [], 'warnings': [],
        'purge': True,
        'purge_match': role_purge_match(prefix, veth_prefix, bridge, pool, s['known_subnets'] or [],
                                        [s['subnet'], s['current']]),
    }


class FilterModule(object):
    def filters(self):
        return {
            'bridge_network_local': bridge_network_local,
            'bridge_network_plan': bridge_network_plan,
            'bridge_network_fleet': bridge_network_fleet,
            'bridge_network_teardown': bridge_network_teardown,
        }
