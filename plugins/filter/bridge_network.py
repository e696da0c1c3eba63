# -*- coding: utf-8 -*-
# Copyright: linuxnet.netns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The linuxnet.netns.bridge_network role's topology, as the lists its modules take.

Why a filter and not Jinja: the role's lists need address arithmetic (the n-th address of a
subnet, /30 blocks carved out of it) that ansible-core's Jinja cannot do without ansible.utils,
and pruning (which existing objects are the role's and no longer wanted) that is clearer and
testable in Python. The filter only computes; the modules read and change the host.

bridge_network_local(info, ...)  -> {uplink, underlay, current}: what the role needs to know about
                                   a host before the fleet's subnets are allocated.
bridge_network_plan(info, ...)   -> {namespaces, bridges, pairs, routes, nat, errors, warnings, ...}:
                                   desired objects plus the role's stale ones with state=absent.
bridge_network_teardown(...)     -> the same keys, all lists empty, plus purge_match: what
                                   state=absent removes, found by the network module itself - no
                                   read of the host first.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import re

try:
    from ansible.errors import AnsibleFilterError
except ImportError:  # pragma: no cover
    AnsibleFilterError = ValueError
from ansible.module_utils.parsing.convert_bool import boolean

from ansible_collections.linuxnet.netns.plugins.filter.subnet_allocate import subnet_conflicts
from ansible_collections.linuxnet.netns.plugins.module_utils import _validate

IFNAMSIZ = 16
MAIN_TABLE = 254


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


def bridge_network_local(info, bridge='lnbr0', veth_prefix='lnv', prefixlen=24, uplink=None, underlay=None):
    """This host's uplink (given, or the device of its IPv4 default route), underlay address (given,
    or the first IPv4 address on the uplink) and current subnet (the network, at `prefixlen`, of the
    first IPv4 address on the role's bridge or, failing that, on its lowest-numbered host veth end;
    None on a host the role has not built on)."""
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


def topology(subnet, count, mode='bridge', prefix='lnns', veth_prefix='lnv', bridge='lnbr0',
             ns_interface='eth0', p2p_prefixlen=30, mtu=None):
    """The desired namespaces, bridge, veth pairs and namespace routes of one host's subnet.

    bridge mode: the gateway is the subnet's first address, on the bridge; namespace i (1-based)
    gets the (i+1)-th address. p2p mode: namespace i gets the i-th /30 (or /31) block of the subnet;
    the host end has its first usable address, the namespace end the next one, as in the tutorial.
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
        result['bridges'] = [{'name': bridge, 'addresses': ['%s/%d' % (gateway, network.prefixlen)], 'mtu': mtu}]
        for i in range(1, count + 1):
            ns = '%s%d' % (prefix, i)
            address = ipaddress.ip_address(base + 1 + i)
            namespaces.append({'name': ns})
            pairs.append({'name': '%s%d' % (veth_prefix, i), 'master': bridge, 'addresses': [], 'mtu': mtu,
                          'peer': {'name': ns_interface, 'netns': ns,
                                   'addresses': ['%s/%d' % (address, network.prefixlen)]}})
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


def _in_any(network, networks):
    return any(network.version == n.version and network.subnet_of(n) for n in networks)


def bridge_network_plan(info, state='present', subnet=None, count=2, mode='bridge', prefix='lnns',
                        veth_prefix='lnv', bridge='lnbr0', ns_interface='eth0', p2p_prefixlen=30, mtu=None,
                        uplink=None, masquerade=True, host_gw=False, subnets=None, underlays=None,
                        self_host=None, pool=None, current=None):
    """Everything the role declares on one host, given what netns_info read there.

    state=present: the topology of `subnet`, host-gw routes to every other host's subnet
    (`subnets`, `underlays`: {host: ...}, `self_host` excluded) and the MASQUERADE rule - which,
    with host-gw, leaves traffic to the other hosts' subnets alone (exclude_destinations) - plus the
    role's objects that are no longer wanted, with state=absent. state=absent: only the latter.

    The role's objects, as found on the host: namespaces this collection made named
    <prefix><digits> (left to the network module to find: `purge` and `purge_match`); the bridge when
    it is a bridge this collection made; host routes this collection made with a gateway to a prefix
    inside `pool` or to a host's subnet; this collection's MASQUERADE rules on the host whose source is inside the
    pool or is this host's subnet (`subnet`, or the one it had, `current`).

    Returns the module lists (namespaces, bridges, pairs, routes, nat), `errors` (refusals the role
    fails on: overlapping routes, a missing uplink, an unreachable host-gw next hop), `warnings`,
    `targets` (each namespace's address and gateway, for verification) and `gateway`.
    """
    present = state == 'present'
    # -e bridge_network_host_gw=false arrives as the string 'false': argument_specs validate, not convert
    masquerade, host_gw = (boolean(v, strict=False) for v in (masquerade, host_gw))
    host = _host(info)
    interfaces = host.get('interfaces') or {}
    subnets = dict((k, v) for k, v in (subnets or {}).items() if v)
    underlays = dict((k, v) for k, v in (underlays or {}).items() if v)
    pool_net = ipaddress.ip_network(u'%s' % pool, strict=False) if pool else None
    fleet_nets = [ipaddress.ip_network(u'%s' % s, strict=False) for s in subnets.values()]
    own = [ipaddress.ip_network(u'%s' % s, strict=False) for s in (subnet, current) if s]
    errors, warnings = [], []

    if present and not subnet:
        raise AnsibleFilterError('host %s has no subnet: it is not in bridge_network_fleet (%s); add it, or '
                                 'leave bridge_network_fleet unset (all inventory hosts)'
                                 % (self_host, ', '.join(sorted(subnets)) or 'empty'))
    if present:
        plan = topology(subnet, count, mode, prefix, veth_prefix, bridge, ns_interface, p2p_prefixlen, mtu)
    else:
        plan = {'subnet': subnet, 'mode': mode, 'gateway': None, 'bridges': [], 'namespaces': [],
                'pairs': [], 'routes': [], 'targets': []}
    nat = []
    peers = {}
    keep = set()  # host routes to peers whose next hop is unknown here: left alone, not pruned
    if present:
        peers = dict((h, s) for h, s in subnets.items() if h != self_host)
        if masquerade:
            if uplink:
                # host-gw: traffic to another host's namespaces leaves through the uplink too, and must
                # keep its source address (no NAT between the fleet's subnets)
                exclude = []
                if host_gw:
                    exclude = sorted(set(ipaddress.ip_network(u'%s' % s, strict=False) for s in peers.values()),
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
                keep = set(str(ipaddress.ip_network(u'%s' % peers[p], strict=False)) for p in unknown)
        if plan['bridges'] and bridge in interfaces and not _is_ours(interfaces, bridge, 'bridge'):
            errors.append('bridge_network_bridge=%s: an interface of that name exists and is not a bridge this '
                          'collection made (kind %s); rename bridge_network_bridge or remove it'
                          % (bridge, interfaces[bridge].get('kind')))
        labels = {'the subnet of this host': plan['subnet']}
        if host_gw:
            labels.update(('the subnet of host %s' % p, s) for p, s in peers.items())
        pattern = _host_end_re(veth_prefix)
        ignore_devs = [bridge] + [p['name'] for p in plan['pairs']]
        ignore_devs += [n for n in interfaces if pattern.match(n) and interfaces[n].get('ours')]
        errors.extend(subnet_conflicts(host.get('routes'), labels, ignore_devs=ignore_devs,
                                       ignore_dests=list(peers.values())))

    # --- the role's objects no longer wanted --------------------------------------------------------
    # namespaces: the module finds them itself (purge_match below) - the read here covers the host
    # alone, and only the module can tell a namespace this collection made from one `ip netns add` made
    stale_bridges = []
    if not plan['bridges'] and _is_ours(interfaces, bridge, 'bridge'):
        stale_bridges.append({'name': bridge, 'state': 'absent'})
    wanted_dests = set(str(ipaddress.ip_network(u'%s' % r['dest'], strict=False))
                       for r in plan['routes'] if not r.get('netns'))
    stale_routes = []
    managed = fleet_nets + ([pool_net] if pool_net else [])
    for route in host.get('routes') or []:
        # only routes this collection made (protocol 76): a route to the pool that you or a daemon
        # added stays, as in a teardown
        if not route.get('ours') or not route.get('gateway') or route.get('table', MAIN_TABLE) != MAIN_TABLE:
            continue
        try:
            dest = ipaddress.ip_network(u'%s' % route.get('dest'), strict=False)
        except ValueError:
            continue
        if dest.prefixlen == 0 or not _in_any(dest, managed):
            continue
        if str(dest) in wanted_dests or str(dest) in keep:
            continue
        stale_routes.append({'dest': str(dest), 'table': MAIN_TABLE, 'metric': route.get('metric') or 0,
                             'state': 'absent'})
    wanted_nat = set((r['source'], r['out_interface']) for r in nat)
    stale_nat = []
    for rule in (info or {}).get('nat') or []:
        if rule.get('netns') is not None:
            continue
        try:
            source = ipaddress.ip_network(u'%s' % rule.get('source'), strict=False)
        except ValueError:
            continue
        if not (_in_any(source, own) or (pool_net is not None and _in_any(source, [pool_net]))):
            continue
        if (str(source), rule.get('out_interface')) in wanted_nat:
            continue
        stale_nat.append({'source': str(source), 'out_interface': rule.get('out_interface'), 'state': 'absent'})

    return {
        'subnet': plan['subnet'],
        'mode': plan['mode'],
        'gateway': plan['gateway'],
        'namespaces': plan['namespaces'],
        'bridges': plan['bridges'] + stale_bridges,
        'pairs': plan['pairs'],
        'routes': stale_routes + plan['routes'],
        'nat': stale_nat + nat,
        # a safe router forwards only for the managed subnets: this host's and, with host-gw, the others'
        'forward_prefixes': ([plan['subnet']] + (sorted(set(peers.values())) if host_gw else [])) if present else [],
        'targets': plan['targets'],
        'errors': errors,
        'warnings': warnings,
        # the role's namespaces no longer wanted: ours, named <prefix><digits>, not declared
        'purge': True,
        'purge_match': {'namespaces': [_numbered(prefix)]},
    }


def bridge_network_teardown(subnets, prefix='lnns', veth_prefix='lnv', bridge='lnbr0', pool=None,
                            own=None, mode='bridge'):
    """state=absent without reading the host: linuxnet.netns.network's lists, all empty, with
    purge_match naming what is the role's, for the module to find - this collection's namespaces
    named <prefix><digits>, its bridge `bridge` and host veth ends <veth_prefix><digits>, its routes
    to a prefix inside `pool` or a fleet subnet (`subnets`: the ones known, None for unknown), and
    its MASQUERADE rules whose source is inside `pool` or this host's subnet (`own`: a list).

    Close to what bridge_network_plan prunes, but found by the module without a read here: routes
    in any table, with or without a gateway, inside the pool or the subnets known here (pinned, or
    remembered by a fact cache); the host veth ends named like the role's (they go with their
    namespaces anyway). Only objects this collection marked as its own are candidates."""
    _check_name(bridge, 'bridge_network_bridge')
    _check_name(veth_prefix + '1', 'bridge_network_veth_prefix')
    _check_name(prefix + '1', 'bridge_network_prefix', _validate.netns_name)

    def networks(values):
        found = []
        for text in values:
            if not text:
                continue
            try:
                found.append(ipaddress.ip_network(u'%s' % text, strict=False))
            except ValueError:
                raise AnsibleFilterError('%r is not a subnet (bridge_network_pool, bridge_network_subnet)' % (text,))
        return [str(n) for n in sorted(set(found), key=_network_key)]
    pool = [pool] if pool else []
    own = list(own) if isinstance(own, (list, tuple)) else [own]
    return {
        'subnet': None, 'mode': mode, 'gateway': None,
        'namespaces': [], 'bridges': [], 'pairs': [], 'routes': [], 'nat': [],
        'forward_prefixes': [], 'targets': [], 'errors': [], 'warnings': [],
        'purge': True,
        'purge_match': {
            'namespaces': [_numbered(prefix)],
            'bridges': [re.escape(bridge)],
            'pairs': [_numbered(veth_prefix)],
            'routes': networks(pool + list(subnets or [])),
            'masquerade': networks(pool + own),
        },
    }


class FilterModule(object):
    def filters(self):
        return {
            'bridge_network_local': bridge_network_local,
            'bridge_network_plan': bridge_network_plan,
            'bridge_network_teardown': bridge_network_teardown,
        }
