"""The topology_dot filter (plugins/filter/topology.py): netns_info facts -> Graphviz DOT text.

Works on real netns_info results (fixtures/netns_info_lab.json: the three hosts of the lab fleet,
as registered, after playbooks/site.yml with host-gw routing: on each, two namespaces on a bridge,
MASQUERADE out eth0 except to the other hosts' subnets, routes to them, and the forward filter of
sysctl_forward's restrict_to). Where Graphviz's `dot` is installed, the text is also given to it,
which is the real test of its syntax."""
import copy
import json
import os
import re
import shutil
import subprocess

import pytest

from ansible_collections.linuxnet.netns.plugins.filter import topology

FIXTURE = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'fixtures', 'netns_info_lab.json')
SUBNETS = {'lab1': '10.200.9', 'lab2': '10.200.162', 'lab3': '10.200.244'}
DOT = shutil.which('dot')


def fleet():
    with open(FIXTURE) as handle:
        return json.load(handle)


def lab1():
    return fleet()['lab1']


def nodes(dot):
    """node id -> attribute text, for every node statement."""
    return dict(re.findall(r'^\s*"([^"]+)" (\[.*\]);$', dot, re.M))


def edges(dot):
    return re.findall(r'^\s*"([^"]+)" -- "([^"]+)"', dot, re.M)


def clusters(dot):
    return re.findall(r'subgraph "cluster_([^"]+)"', dot)


def render(dot, tmp_path):
    """Give the text to Graphviz; returns the SVG (skips only the rendering when dot is missing)."""
    if not DOT:
        return None
    src = tmp_path / 'g.dot'
    src.write_text(dot)
    out = subprocess.run([DOT, '-Tsvg', str(src)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         universal_newlines=True, check=False)
    assert out.returncode == 0 and not out.stderr, out.stderr
    return out.stdout


def test_one_host_clusters_interfaces_and_edges(tmp_path):
    dot = topology.topology_dot(lab1(), name='lab1')
    assert dot.startswith('graph "linuxnet.netns" {') and dot.rstrip().endswith('}')
    assert clusters(dot) == ['lab1|', 'lab1|lnns1', 'lab1|lnns2']
    found = nodes(dot)
    assert {'lab1||eth0', 'lab1||lnbr0', 'lab1||lnv1', 'lab1||lnv2', 'lab1|lnns1|eth0', 'lab1|lnns2|eth0',
            'network|192.0.2.0/24'} <= set(found)
    assert not [node for node in found if node.endswith('|lo')], 'lo is a label, not a box'
    assert 'shape="box3d"' in found['lab1||lnbr0'] and '10.200.9.1/24' in found['lab1||lnbr0']
    assert 'penwidth="2"' in found['lab1|lnns1|eth0'], 'ours: bold'
    assert 'dashed' in found['lab1||eth0'], 'the uplink is not ours: dashed'
    drawn = edges(dot)
    assert ('lab1||lnv1', 'lab1|lnns1|eth0') in drawn and ('lab1||lnv2', 'lab1|lnns2|eth0') in drawn
    assert ('lab1||lnbr0', 'lab1||lnv1') in drawn and ('lab1||lnbr0', 'lab1||lnv2') in drawn
    assert ('network|192.0.2.0/24', 'lab1||eth0') in drawn
    nat = [node for node in found if 'masquerade' in node]
    assert nat == ['lab1||masquerade 10.200.9.0/24 eth0']
    assert ('lab1||eth0', nat[0]) in drawn and (nat[0], 'lab1||lnbr0') in drawn
    assert 'not to 10.200.162.0/24\\nnot to 10.200.244.0/24' in found[nat[0]]
    # forwarding, routes (host-gw) and the forward filter are in the labels
    assert 'default via 10.200.9.1 dev eth0' in dot and 'forwarding IPv4 on, IPv6 off' in dot
    assert '10.200.162.0/24 via 192.0.2.12 dev eth0' in dot
    assert 'forwards only to and from:<BR ALIGN="LEFT"/>  10.200.9.0/24, 10.200.162.0/24, 10.200.244.0/24' \
           '<BR ALIGN="LEFT"/>  and drops the rest' in dot
    svg = render(dot, tmp_path)
    if svg is not None:
        assert 'MASQUERADE' in svg and 'lnns2' in svg


def published(info):
    """lab1 with ports published as bridge_network_publish makes them: 8080 to lnns1:80, 8000-8002 to
    lnns2:9000-9002 with 127.0.0.1 too, udp 53 on one address to lnns2:53, and 7000 to an address
    behind a router; and their rules in `nat`, as netns_info lists our rules."""
    entry = dict(protocol='tcp', host_address=None, localhost=False)
    info['host']['published'] = [
        dict(entry, host_port=8080, target='10.200.9.2', target_port=80),
        dict(entry, host_port=8002, target='10.200.9.3', target_port=9002, localhost=True),
        dict(entry, host_port=8000, target='10.200.9.3', target_port=9000, localhost=True),
        dict(entry, host_port=8001, target='10.200.9.3', target_port=9001, localhost=True),
        dict(entry, protocol='udp', host_address='192.0.2.11', host_port=53, target='10.200.9.3', target_port=53),
        dict(entry, host_port=7000, target='172.31.0.9', target_port=7000),
    ]
    info['nat'] += [
        {'netns': None, 'chain': 'prerouting', 'verified': True, 'rule': 'fib daddr type local meta nfproto ipv4 '
         'tcp dport 8080 dnat ip to 10.200.9.2:80 comment "linuxnet:pub tcp 0.0.0.0:8080 10.200.9.2:80"'},
        {'netns': None, 'chain': 'postrouting', 'verified': True, 'source': 'tcp', 'out_interface': '0.0.0.0:8080',
         'exclude_destinations': [], 'rule': 'ip saddr 10.200.9.0/24 ip daddr 10.200.9.2 tcp dport 80 ct status dnat '
         'masquerade comment "linuxnet:pub-nat tcp 0.0.0.0:8080 10.200.9.2:80 10.200.9.0/24"'},
        {'netns': None, 'chain': 'forward', 'verified': True, 'rule': 'ip daddr 10.200.9.2 tcp dport 80 ct status dnat '
         'accept comment "linuxnet:pub-fwd-in tcp 0.0.0.0:8080 10.200.9.2:80"'},
    ]
    return info


def test_published_ports_point_at_their_namespace(tmp_path):
    dot = topology.topology_dot(published(lab1()), name='lab1')
    found = nodes(dot)
    boxes = sorted(node for node in found if '|published ' in node)
    assert boxes == ['lab1||published tcp :7000', 'lab1||published tcp :8000-8002', 'lab1||published tcp :8080',
                     'lab1||published udp 192.0.2.11:53']
    assert 'label="published tcp 8080\\n-> lnns1:80\\n(10.200.9.2)"' in found['lab1||published tcp :8080']
    assert 'shape="cds"' in found['lab1||published tcp :8080']
    # consecutive ports to consecutive ports of one target: one box, a range
    assert 'published tcp 8000-8002\\n-> lnns2:9000-9002\\n(10.200.9.3)\\nand 127.0.0.1:8000-8002' \
        in found['lab1||published tcp :8000-8002']
    assert 'published udp 192.0.2.11:53\\n-> lnns2:53' in found['lab1||published udp 192.0.2.11:53']
    drawn = edges(dot)
    assert ('lab1||published tcp :8080', 'lab1|lnns1|eth0') in drawn
    assert ('lab1||published tcp :8000-8002', 'lab1|lnns2|eth0') in drawn
    assert ('lab1||published udp 192.0.2.11:53', 'lab1|lnns2|eth0') in drawn
    # a target no interface here holds: named by its address, no edge
    assert '-> 172.31.0.9:7000"' in found['lab1||published tcp :7000']
    assert not [edge for edge in drawn if edge[0] == 'lab1||published tcp :7000']
    # the ports' own rules are not drawn again, as MASQUERADE notes or as other rules
    assert [node for node in found if 'masquerade' in node] == ['lab1||masquerade 10.200.9.0/24 eth0']
    assert 'dnat' not in dot and 'linuxnet:pub' not in dot
    assert 'blue arrow: published port' in dot
    svg = render(dot, tmp_path)
    if svg is not None:
        assert 'published tcp 8080' in svg and '&#45;&gt; lnns1:80' in svg
    # without published ports the picture is the same as before they existed, but for the legend
    plain = topology.topology_dot(lab1(), name='lab1')
    assert not [node for node in nodes(plain) if '|published ' in node]


def test_same_facts_same_text_whatever_the_order():
    info = lab1()
    shuffled = copy.deepcopy(info)
    shuffled['netns'] = dict(reversed(list(shuffled['netns'].items())))
    shuffled['host']['interfaces'] = dict(reversed(list(shuffled['host']['interfaces'].items())))
    assert topology.topology_dot(info) == topology.topology_dot(shuffled)
    assert topology.topology_dot(fleet()) == topology.topology_dot(dict(reversed(list(fleet().items()))))
    ported = published(copy.deepcopy(info))
    reordered = copy.deepcopy(ported)
    reordered['host']['published'].reverse()
    assert topology.topology_dot(ported) == topology.topology_dot(reordered)


def test_fleet_shares_the_underlay_network(tmp_path):
    dot = topology.topology_dot(fleet(), title='The lab')
    assert 'label="The lab"' in dot
    assert [c for c in clusters(dot) if c.endswith('|')] == ['lab1|', 'lab2|', 'lab3|']
    found = nodes(dot)
    assert [node for node in found if node.startswith('network|')] == ['network|192.0.2.0/24']
    assert [tail for tail, head in edges(dot) if tail == 'network|192.0.2.0/24'] == ['network|192.0.2.0/24'] * 3
    for host, subnet in SUBNETS.items():
        assert '%s.2/24' % subnet in found['%s|lnns1|eth0' % host]
        assert ('%s||lnv1' % host, '%s|lnns1|eth0' % host) in edges(dot)
    render(dot, tmp_path)


def test_routes_and_other_rules():
    info = lab1()
    info['host']['routes'].append(
        {'dest': '10.9.0.0/16', 'gateway': '192.0.2.99', 'dev': 'eth0', 'metric': 5, 'table': 100})
    info['host']['routes'].append({'dest': '10.8.0.0/16', 'gateway': None, 'dev': 'eth0', 'metric': 0, 'table': 254})
    info['nat'] = [rule for rule in info['nat'] if 'fwd-drop' not in rule['rule']] + [
        {'chain': 'forward', 'netns': None, 'rule': 'tcp dport 22 accept comment "linuxnet:other"', 'verified': True}]
    dot = topology.topology_dot(info)
    assert '10.9.0.0/16 via 192.0.2.99 dev eth0 table 100' in dot
    assert '10.8.0.0/16' not in dot, 'connected routes are not listed'
    assert 'fe80' not in dot, 'no link-local routes or addresses'
    assert 'and drops the rest' not in dot and 'forward: tcp dport 22 accept<BR' in dot


def test_down_mtu_outside_peer_and_empty_namespace(tmp_path):
    info = lab1()
    info['host']['interfaces']['lnv2']['up'] = False
    info['host']['interfaces']['lnbr0']['mtu'] = 9000
    info['netns']['empty'] = {'forwarding': {'ipv4': False, 'ipv6': False}, 'lo_up': False, 'routes': [],
                              'interfaces': {'lo': {'addresses': [], 'index': 1, 'kind': None, 'mtu': 65536,
                                                    'ours': False, 'up': False}}}
    dot = topology.topology_dot(info)
    found = nodes(dot)
    assert 'DOWN' in found['||lnv2'] and 'grey' in found['||lnv2']
    assert 'mtu 9000' in found['||lnbr0']
    assert '|empty|' in found, 'an empty namespace still gets a cluster'
    assert 'lo DOWN' in dot
    # the uplink's peer is outside every namespace read: no edge to it, no error
    assert sorted(e for e in edges(dot) if '||eth0' in e) == [
        ('network|192.0.2.0/24', '||eth0'), ('||eth0', '||masquerade 10.200.9.0/24 eth0')]
    render(dot, tmp_path)


def test_names_are_escaped(tmp_path):
    info = lab1()
    info['netns']['a"b<&>'] = info['netns'].pop('lnns1')
    for pair in info['veth_pairs']:
        if pair['peer'].get('netns') == 'lnns1':
            pair['peer']['netns'] = 'a"b<&>'
    info['host']['interfaces']['v\\"x'] = info['host']['interfaces'].pop('lnv1')
    dot = topology.topology_dot(info, name='h"1', title='t "quoted"')
    assert 'subgraph "cluster_h\\"1|a\\"b<&>"' in dot
    assert '<B>netns a&quot;b&lt;&amp;&gt;</B>' in dot
    assert '"h\\"1||v\\\\\\"x"' in dot
    svg = render(dot, tmp_path)
    if svg is not None:
        assert 'netns a&quot;b&lt;&amp;&gt;' in svg or 'netns a"b&lt;&amp;&gt;' in svg


def test_no_legend():
    assert 'legend' in topology.topology_dot(lab1())
    assert 'legend' not in topology.topology_dot(lab1(), legend=False)


@pytest.mark.parametrize('data, message', [
    ({'lab1': {'host': {}}}, "the value for host 'lab1' is not a netns_info result (it lacks 'netns')"),
    ({'lab1': 'x'}, "the value for host 'lab1' is not a netns_info result"),
    ({}, 'got an empty dict'),
    ([1], 'got list'),
])
def test_bad_input_names_the_problem(data, message):
    from ansible.errors import AnsibleFilterError
    with pytest.raises(AnsibleFilterError) as exc:
        topology.topology_dot(data)
    assert message in str(exc.value)


def test_registered_as_a_filter():
    assert topology.FilterModule().filters() == {'topology_dot': topology.topology_dot}
