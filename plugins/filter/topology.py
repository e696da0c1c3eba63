# -*- coding: utf-8 -*-
# Copyright: linuxnet.netns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""netns_info facts drawn as a Graphviz diagram (DOT text), for one host or a whole fleet.

What is drawn, per host (a cluster):
- the host's own namespace and each named namespace as nested clusters, labelled (at the bottom,
  where no edge comes in) with their name, lo's state, forwarding and the routes via a gateway;
- interfaces as boxes (name, kind, addresses): ours (made by this collection) with a bold solid
  border, the others dashed, bridges as filled 3D boxes, interfaces that are down in grey; ``lo``
  only in its namespace's label;
- veth pairs as thick edges between their two ends, across namespaces; a bridge's ports as dashed
  edges from the bridge;
- each of our MASQUERADE rules as a red note, in its namespace, between the interface it leaves
  through and the interfaces that hold addresses of its source prefix; our other nf_tables rules
  (the forward filter of sysctl_forward's restrict_to) summed up in the namespace's label;
- each published port (netns_info's `published`, port_publish) as a blue arrow box in the namespace
  whose rules publish it - protocol, host port (and host address), `-> namespace:port` - with an
  edge to the interface that holds the target address; consecutive ports to consecutive target
  ports of one target are one box (`8000-8010 -> lnns1:9000-9010`);
- the networks of the hosts' other interfaces (their uplinks) as shared ellipses, so a fleet on one
  underlay is one picture (routes via other hosts, as host-gw makes them, are in the labels).

Edges are written top to bottom (network, uplink, NAT, bridge, port, namespace end), which is the
order Graphviz ranks them in. Pure Python and deterministic (everything sorted), so the same facts
always give the same text.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import re

try:
    from ansible.errors import AnsibleFilterError
except ImportError:  # pragma: no cover - outside Ansible
    AnsibleFilterError = ValueError

INFO_KEYS = ('host', 'netns')
DEFAULT_DESTS = ('default', '0.0.0.0/0', '::/0')
COLORS = {
    'host': '#f2f2f2',
    'netns': '#e1eefa',
    'bridge': '#ffe0b3',
    'network': '#fff5bf',
    'nat': '#b03a2e',
    'published': '#1f618d',
    'down': 'grey55',
}


def _escape(text):
    return str(text).replace('\\', '\\\\').replace('"', '\\"')


class _Left(str):
    """A label whose lines are left-justified (each line ends with DOT's \\l)."""


class _Html(str):
    """A label in Graphviz's HTML-like syntax, written as it is."""


def _html_text(text):
    return str(text).replace('&', '&amp;').replace('<', '&lt;').replace('>', '&gt;').replace('"', '&quot;')


def _value(value):
    if isinstance(value, _Html):
        return '<%s>' % value
    if isinstance(value, _Left):
        return '"%s\\l"' % '\\l'.join(_escape(line) for line in value.split('\n'))
    return '"%s"' % _escape(value).replace('\n', '\\n')


def _attrs(**attrs):
    return '[%s]' % ', '.join('%s=%s' % (key, _value(value)) for key, value in sorted(attrs.items())
                              if value is not None)


def _on(value):
    return {True: 'on', False: 'off'}.get(value, '?')


FORWARD = re.compile(r'comment "linuxnet:fwd-(src|dst|drop) ?([^"]*)"')
COMMENT = re.compile(r'\s*comment "[^"]*"')
# a published port's rules: drawn from netns_info's `published`, not from the rule list
PUBLISHED = re.compile(r'comment "linuxnet:pub[ -]')


def _rules(info):
    """netns_info's nat list without the rules of published ports."""
    return [rule for rule in info.get('nat') or [] if not PUBLISHED.search(str(rule.get('rule') or ''))]


def _masquerades(info):
    """Our MASQUERADE rules: the entries of netns_info's nat list with a source."""
    return [rule for rule in _rules(info) if rule.get('source')]


def _port_text(first, last):
    return str(first) if first == last else '%d-%d' % (first, last)


def _published(entries):
    """netns_info's `published` entries (one per host port) as ranges: [(first entry, last host port,
    last target port)], consecutive host ports to consecutive target ports of one target merged."""
    def key(entry):
        return (str(entry.get('protocol')), str(entry.get('host_address') or ''), str(entry.get('target')),
                bool(entry.get('localhost')), int(entry.get('host_port') or 0))
    ranges = []
    for entry in sorted(entries or [], key=key):
        if ranges:
            first, last, tlast = ranges[-1]
            if key(first)[:4] == key(entry)[:4] and int(entry.get('host_port') or 0) == last + 1 \
                    and int(entry.get('target_port') or 0) == tlast + 1:
                ranges[-1] = (first, last + 1, tlast + 1)
                continue
        ranges.append((entry, int(entry.get('host_port') or 0), int(entry.get('target_port') or 0)))
    return ranges


def _filter_lines(rules):
    """Our other nf_tables rules (sysctl_forward's restrict_to forward filter) in a few lines."""
    prefixes, drop, other = [], False, []
    for rule in rules:
        text = str(rule.get('rule') or '')
        match = FORWARD.search(text)
        if match and match.group(1) == 'drop':
            drop = True
        elif match:
            if match.group(2) not in prefixes:
                prefixes.append(match.group(2))
        else:
            other.append('%s: %s' % (rule.get('chain'), COMMENT.sub('', text)))
    lines = []
    if prefixes:
        lines.append('forwards only to and from:')
        lines.extend('  ' + ', '.join(prefixes[i:i + 3]) for i in range(0, len(prefixes), 3))
        if drop:
            lines.append('  and drops the rest')
    elif drop:
        lines.append('forward filter drops all')
    return lines + other


def _is_info(value):
    return isinstance(value, dict) and all(key in value for key in INFO_KEYS)


def _interfaces(address_list):
    """ip_interface objects of a list of CIDR strings, without IPv6 link-local ones."""
    found = []
    for address in address_list or []:
        try:
            iface = ipaddress.ip_interface(str(address))
        except ValueError:
            continue
        if not (iface.version == 6 and iface.is_link_local):
            found.append(iface)
    return found


class _Diagram(object):
    def __init__(self, hosts):
        self.hosts = hosts          # [(hostname, netns_info result)], sorted by hostname
        self.lines = []
        self.nodes = {}             # (host, ns, ifname) -> node id
        self.owners = {}            # ip address -> (host, node id) of the interface holding it
        self.local_owners = {}      # (host, ip address) -> (ns, node id): a published port's target
        self.networks = {}          # uplink network -> node id

    @staticmethod
    def node_id(host, ns, name):
        return '%s|%s|%s' % (host, '' if ns is None else ns, name)

    def emit(self, depth, text):
        self.lines.append('  ' * depth + text)

    @staticmethod
    def spaces(info):
        """(ns, state): the host's own namespace (ns None) first, then the named ones, sorted."""
        yield None, info.get('host') or {}
        for ns in sorted(info.get('netns') or {}, key=str):
            yield ns, info['netns'][ns] or {}

    def index(self):
        for host, info in self.hosts:
            for ns, state in self.spaces(info):
                for name, interface in sorted((state.get('interfaces') or {}).items()):
                    if name == 'lo':
                        continue
                    node = self.node_id(host, ns, name)
                    self.nodes[(host, ns, name)] = node
                    for iface in _interfaces(interface.get('addresses')):
                        if not iface.is_loopback:
                            self.owners.setdefault(iface.ip, (host, node))
                            self.local_owners.setdefault((host, iface.ip), (ns, node))

    # labels

    @staticmethod
    def route_lines(state):
        lines = []
        for route in state.get('routes') or []:
            if not route.get('gateway'):
                continue
            dest = route.get('dest')
            text = '%s via %s' % ('default' if dest in DEFAULT_DESTS else dest, route['gateway'])
            if route.get('dev'):
                text += ' dev %s' % route['dev']
            if route.get('table') not in (None, 254):
                text += ' table %s' % route['table']
            lines.append(text)
        return lines

    def cluster_label(self, title, state, size, rules):
        """The title in bold, then lo, forwarding, the routes via a gateway and our nf_tables rules
        other than MASQUERADE, left-justified."""
        forwarding = state.get('forwarding') or {}
        lines = ['lo %s, forwarding IPv4 %s, IPv6 %s' % (
            'up' if state.get('lo_up') else 'DOWN', _on(forwarding.get('ipv4')), _on(forwarding.get('ipv6')))]
        lines.extend(self.route_lines(state))
        lines.extend(_filter_lines(rules))
        return _Html('<FONT POINT-SIZE="%s"><B>%s</B></FONT><BR ALIGN="LEFT"/>%s' % (
            size, _html_text(title), ''.join('%s<BR ALIGN="LEFT"/>' % _html_text(line) for line in lines)))

    # nodes

    def interface_node(self, depth, host, ns, name, interface):
        kind = interface.get('kind') or 'device'
        lines = ['%s (%s)' % (name, kind)]
        lines.extend(str(iface) for iface in _interfaces(interface.get('addresses')))
        if interface.get('mtu') not in (None, 1500):
            lines.append('mtu %s' % interface['mtu'])
        up = interface.get('up', True)
        if not up:
            lines.append('DOWN')
        ours = bool(interface.get('ours'))
        style = ['rounded', 'solid' if ours else 'dashed']
        attrs = dict(label='\n'.join(lines), penwidth='2' if ours else '1',
                     color=None if up else COLORS['down'], fontcolor=None if up else COLORS['down'],
                     tooltip='%s %s: %s' % (host or 'host', 'netns %s' % ns if ns else 'host namespace', name))
        if kind == 'bridge':
            style.append('filled')
            attrs.update(shape='box3d', fillcolor=COLORS['bridge'])
        attrs['style'] = ','.join(style)
        self.emit(depth, '"%s" %s;' % (_escape(self.node_id(host, ns, name)), _attrs(**attrs)))

    def nat_node(self, depth, host, rule):
        self.emit(depth, '"%s" %s;' % (_escape(self.nat_id(host, rule)), _attrs(
            label='\n'.join(['MASQUERADE', str(rule.get('source')), 'out %s' % rule.get('out_interface')] + [
                'not to %s' % dest for dest in rule.get('exclude_destinations') or []]),
            shape='note', color=COLORS['nat'], fontcolor=COLORS['nat'])))

    def target_of(self, host, entry):
        """(namespace name or None, node id) of the interface of `host` holding the target address,
        or (None, None)."""
        try:
            address = ipaddress.ip_address(str(entry.get('target')))
        except ValueError:
            return None, None
        return self.local_owners.get((host, address), (None, None))

    def published_node(self, depth, host, ns, published):
        entry, last, tlast = published
        listen = entry.get('host_address')
        ports = _port_text(int(entry.get('host_port') or 0), last)
        tports = _port_text(int(entry.get('target_port') or 0), tlast)
        target_ns, node = self.target_of(host, entry)
        where = target_ns if node and target_ns is not None else entry.get('target')
        lines = ['published %s %s' % (entry.get('protocol'), '%s:%s' % (listen, ports) if listen else ports),
                 '-> %s:%s' % (where, tports)]
        if where != entry.get('target'):
            lines.append('(%s)' % entry.get('target'))
        if entry.get('localhost'):
            lines.append('and 127.0.0.1:%s' % ports)
        self.emit(depth, '"%s" %s;' % (_escape(self.published_id(host, ns, published)), _attrs(
            label='\n'.join(lines), shape='cds', margin='0.25,0.05', color=COLORS['published'],
            fontcolor=COLORS['published'],
            tooltip='%s %s: host port %s -> %s:%s' % (host or 'host', 'netns %s' % ns if ns else 'host namespace',
                                                      ports, entry.get('target'), tports))))

    def published_id(self, host, ns, published):
        entry, last, _tlast = published
        ports = _port_text(int(entry.get('host_port') or 0), last)
        return self.node_id(host, ns, 'published %s %s:%s' % (entry.get('protocol'), entry.get('host_address') or '', ports))

    def nat_id(self, host, rule):
        return self.node_id(host, rule.get('netns'), 'masquerade %s %s' % (rule.get('source'), rule.get('out_interface')))

    def cluster(self, depth, cluster_id, label, fill, body):
        # labels at the bottom: edges come in from the top, so they never cross a label
        self.emit(depth, 'subgraph "cluster_%s" {' % _escape(cluster_id))
        attrs = _attrs(label=label, style='rounded,filled', fillcolor=fill, color='grey50', labeljust='l',
                       labelloc='b', fontsize='10')
        self.emit(depth + 1, 'graph %s;' % attrs)
        body(depth + 1)
        self.emit(depth, '}')

    def space_body(self, host, ns, state, nat_rules):
        def body(depth):
            interfaces = state.get('interfaces') or {}
            shown = sorted(name for name in interfaces if name != 'lo')
            for name in shown:
                self.interface_node(depth, host, ns, name, interfaces[name])
            for rule in nat_rules:
                self.nat_node(depth, host, rule)
            published = _published(state.get('published'))
            for entry in published:
                self.published_node(depth, host, ns, entry)
            if not shown and not nat_rules and not published:
                # Graphviz does not draw an empty cluster
                self.emit(depth, '"%s" [shape=point, style=invis];' % _escape(self.node_id(host, ns, '')))
        return body

    def host(self, depth, host, info):
        nat, rules = {}, {}
        for rule in _rules(info):
            (nat if rule.get('source') else rules).setdefault(rule.get('netns'), []).append(rule)

        def host_body(d):
            for ns, state in self.spaces(info):
                if ns is None:
                    self.space_body(host, None, state, nat.get(None, []))(d)
                else:
                    self.cluster(d, '%s|%s' % (host, ns), self.cluster_label('netns %s' % ns, state, 11,
                                                                             rules.get(ns, [])),
                                 COLORS['netns'], self.space_body(host, ns, state, nat.get(ns, [])))

        self.cluster(depth, host + '|', self.cluster_label(host or 'host', info.get('host') or {}, 14,
                                                           rules.get(None, [])),
                     COLORS['host'], host_body)

    # edges, written top (tail) to bottom (head): network, uplink, NAT, bridge, port, namespace end

    def edge(self, tail, head, **attrs):
        return '"%s" -- "%s"%s;' % (_escape(tail), _escape(head), ' ' + _attrs(**attrs) if attrs else '')

    def edges(self, host, info):
        out = []
        for ns, state in self.spaces(info):
            for name, interface in sorted((state.get('interfaces') or {}).items()):
                if ns is not None or name == 'lo' or interface.get('ours'):
                    continue
                for iface in _interfaces(interface.get('addresses')):
                    if iface.is_loopback:
                        continue
                    network = self.networks.setdefault(iface.network, 'network|%s' % iface.network)
                    out.append(self.edge(network, self.node_id(host, ns, name)))
        for rule in _masquerades(info):
            ns, nat = rule.get('netns'), self.nat_id(host, rule)
            out_node = self.nodes.get((host, ns, rule.get('out_interface')))
            if out_node:
                out.append(self.edge(out_node, nat, style='dotted', color=COLORS['nat'], penwidth='2'))
            try:
                source = ipaddress.ip_network(str(rule.get('source')), strict=False)
            except ValueError:
                continue
            interfaces = (info.get('host') if ns is None else (info.get('netns') or {}).get(ns)) or {}
            for name, interface in sorted((interfaces.get('interfaces') or {}).items()):
                if any(iface.version == source.version and iface.ip in source
                       for iface in _interfaces(interface.get('addresses'))):
                    out.append(self.edge(nat, self.node_id(host, ns, name), style='dotted', color=COLORS['nat'],
                                         penwidth='2'))
        for ns, state in self.spaces(info):
            for published in _published(state.get('published')):
                _target_ns, node = self.target_of(host, published[0])
                if node:
                    out.append(self.edge(self.published_id(host, ns, published), node, color=COLORS['published'],
                                         penwidth='2', style='bold', arrowhead='normal', dir='forward'))
        for bridge in info.get('bridges') or []:
            bridge_node = self.nodes.get((host, bridge.get('netns'), bridge.get('name')))
            for port in bridge.get('ports') or []:
                port_node = self.nodes.get((host, bridge.get('netns'), port))
                if bridge_node and port_node:
                    out.append(self.edge(bridge_node, port_node, style='dashed'))
        for pair in info.get('veth_pairs') or []:
            end = self.nodes.get((host, pair.get('netns'), pair.get('name')))
            peer = pair.get('peer') or {}
            other = self.nodes.get((host, peer.get('netns'), peer.get('name')))
            if end and other:
                if pair.get('netns') is not None and peer.get('netns') is None:
                    end, other = other, end     # the host's end on top
                out.append(self.edge(end, other, penwidth='3', color='grey25'))
        return out

    def render(self, title, legend):
        self.index()
        self.emit(0, 'graph "linuxnet.netns" {')
        self.emit(1, 'graph %s;' % _attrs(label=title, labelloc='t', fontname='Helvetica', fontsize='16', rankdir='TB',
                                          nodesep='0.25', ranksep='0.45', newrank='true'))
        self.emit(1, 'node %s;' % _attrs(shape='box', fontname='Helvetica', fontsize='10', margin='0.1,0.04'))
        self.emit(1, 'edge %s;' % _attrs(fontname='Helvetica', fontsize='9'))
        edges = []
        for host, info in self.hosts:
            self.host(1, host, info)
            edges.extend(self.edges(host, info))
        for network, network_id in sorted(self.networks.items(), key=lambda item: str(item[0])):
            self.emit(1, '"%s" %s;' % (_escape(network_id), _attrs(
                label='network %s' % network, shape='ellipse', style='filled', fillcolor=COLORS['network'])))
        if legend:
            self.emit(1, '"legend" %s;' % _attrs(shape='plaintext', fontsize='9', label=_Left(
                'bold box: made by linuxnet.netns; dashed box: not ours; 3D box: bridge\n'
                'thick line: veth pair; dashed line: bridge port; dotted red: MASQUERADE (source, rule, uplink)\n'
                'blue arrow: published port (host port -> namespace:port)')))
        for edge in edges:
            self.emit(1, edge)
        self.emit(0, '}')
        return '\n'.join(self.lines) + '\n'


def topology_dot(data, title=None, name=None, legend=True):
    """DOT text of one host's netns_info result, or of a dict hostname -> netns_info result."""
    if _is_info(data):
        hosts = [(str(name) if name else '', data)]
    elif isinstance(data, dict) and data:
        hosts = []
        for host in sorted(data, key=str):
            if not _is_info(data[host]):
                raise AnsibleFilterError(
                    'topology_dot: the value for host %r is not a netns_info result (it lacks %s); pass one '
                    "host's netns_info result, or a dict of hostname -> netns_info result" % (
                        host, ' or '.join(repr(key) for key in INFO_KEYS if key not in (data[host] or {}))
                        if isinstance(data[host], dict) else 'both %r' % (INFO_KEYS,)))
            hosts.append((str(host), data[host]))
    else:
        raise AnsibleFilterError("topology_dot: expected one host's netns_info result or a non-empty dict of "
                                 'hostname -> netns_info result, got %s' % (
                                     'an empty dict' if data == {} else type(data).__name__))
    if title is None:
        title = 'linuxnet.netns: %s' % (', '.join(host for host, _info in hosts if host) or 'host')
    return _Diagram(hosts).render(title, legend)


class FilterModule(object):
    def filters(self):
        return {'topology_dot': topology_dot}
