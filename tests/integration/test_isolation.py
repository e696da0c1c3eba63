"""Isolation between namespaces against the real kernel, with real traffic both ways.

Bridge mode: bridge port isolation (`isolated` on a veth end that is a port; IFLA_BRPORT_ISOLATED,
no br_netfilter). An isolated port forwards only to and from the ports that are not isolated, and
the bridge device is no port: namespaces on isolated ports cannot reach each other, but reach
their gateway (the bridge's address on the host), the host's services, and the uplink through the
host's MASQUERADE. p2p mode (each namespace on a veth of its own, routed by the host): the safe
router's forward chain drops what goes between two addresses of one managed prefix
(sysctl_forward's `isolate`).

Each change is first run in check mode, which must predict exactly what the real run then does;
every re-run changes nothing. The host's uplink is test_network's `uplink` fixture (up0
10.255.0.2/24 to a namespace holding 10.255.0.1 with no route back: a reply proves MASQUERADE).
"""
import json

# uplink and services are fixtures: pytest finds them by these names
from test_network import UPLINK, UPLINK_GW, bridge_network, ping, uplink  # noqa: F401 pylint: disable=unused-import
from test_publish import ask, services  # noqa: F401 pylint: disable=unused-import

HOST_IP = UPLINK.split('/', maxsplit=1)[0]


def converge(host, module, spec):
    """Check mode, then the real run: the real run does exactly what check mode predicted, and a
    re-run (and its check mode) changes nothing. Returns the real run's actions."""
    predicted = host.ok(module, spec, check=True)
    real = host.ok(module, spec)
    assert real['actions'] == predicted['actions'] and real['diff'] == predicted['diff']
    assert real['changed'] == predicted['changed']
    again = host.ok(module, spec)
    assert not again['changed'] and again['actions'] == [], again['actions']
    assert not host.ok(module, spec, check=True)['changed']
    return real


def port_isolated(host, name):
    (link,) = json.loads(host.sh('ip -d -j link show dev %s' % name))
    return link['linkinfo']['info_slave_data']['isolated']


def apart(a, b, a_ip, b_ip):
    """Neither namespace reaches the other: ping and TCP, both ways (servers on port 80 in both)."""
    return not ping(a, b_ip) and not ping(b, a_ip) and \
        ask(a, 'tcp', b_ip, 80).startswith('ERROR') and ask(b, 'tcp', a_ip, 80).startswith('ERROR')


def together(a, b, a_ip, b_ip):
    return ping(a, b_ip) and ping(b, a_ip) and \
        ask(a, 'tcp', b_ip, 80) == '%s %s' % (b, a_ip) and ask(b, 'tcp', a_ip, 80) == '%s %s' % (a, b_ip)


def out_and_home(host, ns, ns_ip, gateway, inet):
    """`ns` reaches its gateway and a service of the host there, and the uplink's far side, masqueraded."""
    assert ping(ns, gateway) and ask(ns, 'tcp', gateway, 7000) == '%s %s' % (host.name, ns_ip)
    assert ping(ns, UPLINK_GW) and ask(ns, 'tcp', UPLINK_GW, 80) == '%s %s' % (inet, HOST_IP)


def test_isolated_bridge_ports_keep_namespaces_apart_and_let_them_out(host, uplink, services):  # noqa: F811
    names, spec = bridge_network(host, 3)
    app1, app2, app3 = names
    ports = ['%sp%d' % (host.prefix, i) for i in (1, 2, 3)]
    ips = ['172.30.0.11', '172.30.0.12', '172.30.0.13']
    # app1 and app2 on isolated ports, app3 on a plain one
    for pair, isolated in zip(spec['pairs'], (True, True, False)):
        pair['isolated'] = isolated
    spec['forwarding'] = [{'ipv4': True, 'restrict_to': ['172.30.0.0/24']}]
    spec['masquerade'] = [{'source': '172.30.0.0/24', 'out_interface': 'up0'}]
    created = converge(host, 'network', spec)
    for port in ports[:2]:
        assert created['actions'].index('attach %s to bridge br0 in the host' % port) < created['actions'].index(
            'set isolated on on %s, a port of bridge br0 in the host' % port)
        assert created['diff']['after']['veth (host) %s' % port]['isolated'] is True
    assert 'isolated' not in created['diff']['after']['veth (host) %s' % ports[2]]
    assert [port_isolated(host, port) for port in ports] == [True, True, False]

    for ns in names + [uplink]:
        services.start(ns, 'tcp', 80)
    services.start(host.name, 'tcp', 7000)
    assert apart(app1, app2, ips[0], ips[1])
    # an isolated port still talks to a port that is not isolated
    assert together(app1, app3, ips[0], ips[2]) and together(app2, app3, ips[1], ips[2])
    for ns, ip in zip(names, ips):
        out_and_home(host, ns, ip, '172.30.0.1', uplink)

    # isolation off (the default): exactly the two ports change, and the namespaces meet again
    plain = dict(spec, pairs=[dict(pair, isolated=False) for pair in spec['pairs']])
    off = converge(host, 'network', plain)
    assert off['actions'] == ['set isolated off on %s, a port of bridge br0 in the host' % port for port in ports[:2]]
    assert off['diff']['before']['veth (host) %s' % ports[0]]['isolated'] is True
    assert 'isolated' not in off['diff']['after']['veth (host) %s' % ports[0]]
    assert [port_isolated(host, port) for port in ports] == [False, False, False]
    assert together(app1, app2, ips[0], ips[1])

    # on again, on the ports as they are, with the single veth module
    pairs = [dict(pair, isolated=True) for pair in plain['pairs'][:2]]
    on = converge(host, 'veth', {'pairs': pairs})
    assert on['actions'] == ['set isolated on on %s, a port of bridge br0 in the host' % port for port in ports[:2]]
    assert apart(app1, app2, ips[0], ips[1])
    out_and_home(host, app1, ips[0], '172.30.0.1', uplink)


def p2p_network(host, isolate):
    """The tutorial's topology twice: ns1 (10.0.0.2, host end 10.0.0.1) and ns2 (10.0.0.6, host end
    10.0.0.5), each on a /30 veth of its own, routed and masqueraded by the host, forwarding scoped to
    10.0.0.0/24."""
    names = [host.ns('ns1'), host.ns('ns2')]
    return names, {
        'namespaces': [{'name': ns} for ns in names],
        'pairs': [{'name': '%sh%d' % (host.prefix, i), 'addresses': ['10.0.0.%d/30' % (4 * i - 3)],
                   'peer': {'name': 'eth0', 'netns': ns, 'addresses': ['10.0.0.%d/30' % (4 * i - 2)]}}
                  for i, ns in enumerate(names, 1)],
        'routes': [{'netns': ns, 'gateway': '10.0.0.%d' % (4 * i - 3)} for i, ns in enumerate(names, 1)],
        'forwarding': [{'ipv4': True, 'restrict_to': ['10.0.0.0/24'], 'isolate': isolate}],
        'masquerade': [{'source': '10.0.0.0/24', 'out_interface': 'up0'}],
    }


def test_p2p_namespaces_are_kept_apart_by_the_forward_chain(host, uplink, services):  # noqa: F811
    (ns1, ns2), spec = p2p_network(host, isolate=True)
    created = converge(host, 'network', spec)
    assert 'ip saddr 10.0.0.0/24 ip daddr 10.0.0.0/24 drop comment "linuxnet:fwd-isolate 10.0.0.0/24"' in \
        host.sh('nft list chain inet linuxnet_netns forward')
    assert created['diff']['after']['nftables (host)']['chains']['forward']['rules'][0] == \
        'ip saddr 10.0.0.0/24 ip daddr 10.0.0.0/24 drop comment "linuxnet:fwd-isolate 10.0.0.0/24"'
    for ns in (ns1, ns2, uplink):
        services.start(ns, 'tcp', 80)
    services.start(host.name, 'tcp', 7000)
    assert apart(ns1, ns2, '10.0.0.2', '10.0.0.6')
    out_and_home(host, ns1, '10.0.0.2', '10.0.0.1', uplink)
    out_and_home(host, ns2, '10.0.0.6', '10.0.0.5', uplink)
    # a port published to ns2 stays reachable from ns1, through the host
    converge(host, 'port_publish', {'ports': [{'host_port': 8080, 'target': '10.0.0.6', 'target_port': 80}]})
    assert ask(ns1, 'tcp', '10.0.0.1', 8080) == '%s 10.0.0.2' % ns2
    assert ask(ns1, 'tcp', '10.0.0.6', 80).startswith('ERROR')

    # isolation off: only the drop goes, in one transaction; the namespaces meet again
    off = converge(host, 'network', dict(spec, forwarding=[dict(spec['forwarding'][0], isolate=False)]))
    isolating = [line for line in off['actions'] if 'fwd-isolate' in line]
    assert len(isolating) == 1 and isolating[0].startswith('delete rule')
    assert 'fwd-isolate' not in host.sh('nft list ruleset')
    assert together(ns1, ns2, '10.0.0.2', '10.0.0.6')
    out_and_home(host, ns1, '10.0.0.2', '10.0.0.1', uplink)
