"""netns_service (a drop-in placing an existing systemd service in a namespace) and netns_dns (a
namespace's own resolver file) on the fake kernel: the files each plans, with their diff; one
daemon-reload a run; refusals before any change; ownership; purge; what netns_info reports."""
import pytest

from ansible_collections.linuxnet.netns.plugins.module_utils import _info, _kinds
from ansible_collections.linuxnet.netns.plugins.module_utils import _plan as P
from ansible_collections.linuxnet.netns.plugins.module_utils._common import PlanError, ValidationError

from ansible_collections.linuxnet.netns.tests.unit.fakekernel import FakeKernel

DROPIN = '/etc/systemd/system/nginx.service.d/50-linuxnet-netns.conf'
NGINX = '/lib/systemd/system/nginx.service'
SERVICE_TEXT = ('# Managed by linuxnet.netns.netns_service; edits here are overwritten.\n'
                '[Unit]\nWants=linuxnet-netns.service\nAfter=linuxnet-netns.service\n\n'
                '[Service]\nNetworkNamespacePath=/run/netns/ns1\n'
                'BindReadOnlyPaths=-/etc/netns/ns1/resolv.conf:/etc/resolv.conf\n')
RESOLVER = '/etc/netns/ns1/resolv.conf'
DNS_HEADER = '# Managed by linuxnet.netns.netns_dns; edits here are overwritten.\n'


def host(systemd=False):
    kernel = FakeKernel()
    kernel.netns('ns1')
    kernel.files[NGINX] = '[Service]\nExecStart=/usr/sbin/nginx\n'
    if systemd:
        kernel.dirs.add('/run/systemd/system')
    return kernel


def unchanged(plan):
    assert plan.ops == [] and plan.actions == [] and plan.diff() == {'before': {}, 'after': {}}


# ---- netns_service ---------------------------------------------------------------------------------

def test_service_dropin_written_reload_skipped_without_systemd():
    plan, result = host().plan_kind('services', [{'service': 'nginx', 'netns': 'ns1'}])
    assert plan.actions == ['write %s (place nginx.service in netns ns1)' % DROPIN]
    assert plan.diff() == {'before': {}, 'after': {'file ' + DROPIN: SERVICE_TEXT}}
    assert [w for w in plan.warnings if 'systemd is not running' in w]
    assert result == [{'service': 'nginx.service', 'state': 'present', 'dropin': DROPIN, 'netns': 'ns1',
                       'resolv_conf': True, 'unit_file': NGINX, 'restarted': False}]


def test_service_reload_once_then_restart_where_systemd_runs():
    kernel = host(systemd=True)
    kernel.files['/etc/systemd/system/app@.service'] = '[Service]\nExecStart=/bin/true\n'
    plan, result = kernel.plan_kind('services', [
        {'service': 'nginx.service', 'netns': 'ns1', 'restart': True},
        {'service': 'app@blue', 'netns': 'ns1'}])
    assert plan.actions == ['write %s (place nginx.service in netns ns1)' % DROPIN,
                            'write /etc/systemd/system/app@blue.service.d/50-linuxnet-netns.conf '
                            '(place app@blue.service in netns ns1)',
                            'systemctl daemon-reload', 'systemctl try-restart --no-block nginx.service']
    assert [op.stage for op in sorted(plan.ops, key=lambda op: op.stage)][-2:] == [P.SYSTEMD_RELOAD, P.SYSTEMD_RESTART]
    assert plan.warnings == []
    assert result[0]['restarted'] is True and result[1]['unit_file'] == '/etc/systemd/system/app@.service'


def test_service_as_declared_is_nothing_to_do_and_no_restart():
    kernel = host(systemd=True)
    kernel.files[DROPIN] = SERVICE_TEXT
    plan, result = kernel.plan_kind('services', [{'service': 'nginx', 'netns': 'ns1', 'restart': True}])
    unchanged(plan)
    assert plan.warnings == [] and result[0]['restarted'] is False


def test_service_changed_namespace_and_resolv_conf_off():
    kernel = host()
    kernel.netns('ns2')
    kernel.files[DROPIN] = SERVICE_TEXT
    plan, _result = kernel.plan_kind('services', [{'service': 'nginx', 'netns': 'ns2', 'resolv_conf': False}])
    after = plan.diff()['after']['file ' + DROPIN]
    assert plan.diff()['before']['file ' + DROPIN] == SERVICE_TEXT
    assert after.endswith('[Service]\nNetworkNamespacePath=/run/netns/ns2\n')
    assert plan.actions == ['update %s (place nginx.service in netns ns2)' % DROPIN]


def test_service_percent_is_escaped_and_separators_refused():
    kernel = host()
    kernel.netns('a%b')
    plan, _result = kernel.plan_kind('services', [{'service': 'nginx', 'netns': 'a%b'}])
    text = plan.diff()['after']['file ' + DROPIN]
    assert 'NetworkNamespacePath=/run/netns/a%%b\n' in text and '-/etc/netns/a%%b/resolv.conf:' in text
    with pytest.raises(ValidationError, match=r"services\[0\]\.netns='a:b' holds one of"):
        kernel.plan_kind('services', [{'service': 'nginx', 'netns': 'a:b'}])
    kernel.netns('a:b')
    plan, _result = kernel.plan_kind('services', [{'service': 'nginx', 'netns': 'a:b', 'resolv_conf': False}])
    assert 'NetworkNamespacePath=/run/netns/a:b\n' in plan.diff()['after']['file ' + DROPIN]


@pytest.mark.parametrize('item, error, text', [
    ({'service': 'nginx', 'netns': '../etc'}, ValidationError, r"services\[0\]\.netns='\.\./etc' is not a plain name"),
    ({'service': 'nginx'}, ValidationError, r'services\[0\]\.netns=None is required'),
    ({'service': 'nginx.socket', 'netns': 'ns1'}, ValidationError,
     r"services\[0\]\.service='nginx.socket' is not a service unit"),
    ({'service': 'apache2', 'netns': 'ns1'}, PlanError,
     r"services\[0\]\.service='apache2': systemd has no unit apache2.service"),
    ({'service': 'getty@tty1', 'netns': 'ns1'}, PlanError, r'nor its template getty@.service'),
    ({'service': 'nginx', 'netns': 'nope'}, PlanError,
     r"services\[0\]\.netns='nope': network namespace 'nope' does not exist"),
])
def test_service_refusals(item, error, text):
    with pytest.raises(error, match=text):
        host().plan_kind('services', [item])


def test_service_check_mode_assumes_what_earlier_tasks_make():
    plan, _result = host().plan_kind('services', [{'service': 'apache2', 'netns': 'later'}], check_mode=True)
    assert plan.actions == ['write /etc/systemd/system/apache2.service.d/50-linuxnet-netns.conf '
                            '(place apache2.service in netns later)']
    assert any('service apache2.service not found; assumed installed' in w for w in plan.warnings)
    assert any('netns later does not exist; assumed created' in w for w in plan.warnings)


def test_service_into_a_namespace_the_same_task_creates():
    kernel = FakeKernel()
    kernel.files[NGINX] = ''
    plan, _reader = kernel.plan_network(namespaces=[{'name': 'new'}], services=[{'service': 'nginx', 'netns': 'new'}])
    assert plan.actions[0] == 'create netns new' and plan.actions[-1].startswith('write ' + DROPIN)
    with pytest.raises(PlanError, match='declared absent in the same task'):
        host().plan_network(namespaces=[{'name': 'ns1', 'state': 'absent'}],
                            services=[{'service': 'nginx', 'netns': 'ns1'}])


def test_service_absent_removes_ours_only():
    kernel = host(systemd=True)
    kernel.files[DROPIN] = SERVICE_TEXT
    plan, result = kernel.plan_kind('services', [{'service': 'nginx', 'state': 'absent'}])
    assert plan.actions == ['remove %s (take nginx.service out of its namespace)' % DROPIN, 'systemctl daemon-reload']
    assert plan.diff() == {'before': {'file ' + DROPIN: SERVICE_TEXT}, 'after': {}}
    assert result == [{'service': 'nginx.service', 'state': 'absent', 'dropin': DROPIN, 'netns': None}]
    # gone already (and the service too): nothing, no refusal
    del kernel.files[DROPIN], kernel.files[NGINX]
    plan, _result = kernel.plan_kind('services', [{'service': 'nginx', 'state': 'absent'}])
    unchanged(plan)


def test_service_someone_elses_file_is_refused_or_left():
    kernel = host()
    kernel.files[DROPIN] = '[Service]\nNetworkNamespacePath=/run/netns/mine\n'
    with pytest.raises(PlanError, match=r"service='nginx': .*50-linuxnet-netns.conf exists and was not written by "
                                        r'linuxnet.netns'):
        kernel.plan_kind('services', [{'service': 'nginx', 'netns': 'ns1'}])
    plan, _result = kernel.plan_kind('services', [{'service': 'nginx', 'state': 'absent'}])
    unchanged(plan)
    assert any('was not written by linuxnet.netns' in w and 'left as it is' in w for w in plan.warnings)


def test_service_purge_and_report():
    kernel = host()
    kernel.files[DROPIN] = SERVICE_TEXT
    kernel.files['/etc/systemd/system/old.service.d/50-linuxnet-netns.conf'] = SERVICE_TEXT.replace('ns1', 'gone')
    kernel.files['/etc/systemd/system/user.service.d/50-linuxnet-netns.conf'] = '[Service]\n'
    kernel.files['/etc/systemd/system/user.service.d/10-other.conf'] = '[Service]\n'
    plan, _reader = kernel.plan_network(services=[{'service': 'nginx', 'netns': 'ns1'}], purge=True)
    assert plan.actions == ['remove /etc/systemd/system/old.service.d/50-linuxnet-netns.conf '
                            '(take old.service out of its namespace)']
    # purge_match names the namespaces whose services go (a role's namespaces, by their names)
    plan, _reader = kernel.plan_network(services=[], purge=True, purge_match={'services': ['ns[0-9]']})
    assert plan.actions == ['remove %s (take nginx.service out of its namespace)' % DROPIN]
    info = _info.gather(kernel.reader(), _info.InfoQuery({}), _kinds.KINDS)
    assert info['netns']['ns1']['services'] == ['nginx.service']
    assert info['host']['services'] == {'ns1': ['nginx.service'], 'gone': ['old.service']}


# ---- netns_dns -------------------------------------------------------------------------------------

def dns_host(etc='nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch lan\n',
             resolved='nameserver 192.0.2.1\nnameserver 2001:db8::1\nsearch corp.example\n'):
    kernel = host()
    if etc is not None:
        kernel.files['/etc/resolv.conf'] = etc
    if resolved is not None:
        kernel.files['/run/systemd/resolve/resolv.conf'] = resolved
    return kernel


def test_dns_upstream_behind_the_resolved_stub():
    plan, result = dns_host().plan_kind('dns', [{'netns': 'ns1'}])
    text = (DNS_HEADER + '# source: upstream (/run/systemd/resolve/resolv.conf)\n'
            'nameserver 192.0.2.1\nnameserver 2001:db8::1\nsearch corp.example\n')
    assert plan.diff() == {'before': {}, 'after': {'file ' + RESOLVER: text}}
    assert plan.actions == ['write %s (resolver of netns ns1)' % RESOLVER]
    assert result == [{'netns': 'ns1', 'state': 'present', 'source': 'upstream', 'path': RESOLVER,
                       'servers': ['192.0.2.1', '2001:db8::1'], 'ours': True, 'search': ['corp.example'],
                       'options': []}]
    # and no daemon-reload: a resolver is no unit file
    assert not [w for w in plan.warnings if 'daemon-reload' in w]
    kernel = dns_host()
    kernel.files[RESOLVER] = text
    unchanged(kernel.plan_kind('dns', [{'netns': 'ns1'}])[0])


def test_dns_upstream_keeps_the_hosts_real_servers_and_lines():
    kernel = dns_host(etc='# dhcp\nnameserver 127.0.0.1\nnameserver 198.51.100.7\ndomain a.example\n'
                          'options ndots:2\noptions rotate\n', resolved=None)
    plan, result = kernel.plan_kind('dns', [{'netns': 'ns1'}])
    assert plan.diff()['after']['file ' + RESOLVER] == (
        DNS_HEADER + '# source: upstream (/etc/resolv.conf)\nnameserver 198.51.100.7\ndomain a.example\n'
        'options ndots:2\noptions rotate\n')
    assert result[0]['options'] == ['ndots:2', 'rotate']


@pytest.mark.parametrize('etc, resolved, text', [
    ('nameserver 127.0.0.53\n', None, r'/etc/resolv.conf: loopback servers only \(127.0.0.53\); '
                                      r'/run/systemd/resolve/resolv.conf: not there'),
    (None, 'search x\n', r'/etc/resolv.conf: not there; /run/systemd/resolve/resolv.conf: no nameserver'),
])
def test_dns_upstream_without_a_usable_server_is_refused(etc, resolved, text):
    with pytest.raises(PlanError, match=r"dns\[0\]\.source='upstream': source: upstream found no usable server "
                                        r"of the host's \(" + text):
        dns_host(etc, resolved).plan_kind('dns', [{'netns': 'ns1'}])


def test_dns_static():
    spec = {'netns': 'ns1', 'source': 'static', 'servers': ['10.0.0.1', ' fd00::0053'], 'search': ['a.example'],
            'options': ['ndots:1', 'edns0']}
    plan, result = dns_host().plan_kind('dns', [spec])
    assert plan.diff()['after']['file ' + RESOLVER] == (
        DNS_HEADER + '# source: static\nnameserver 10.0.0.1\nnameserver fd00::53\nsearch a.example\n'
        'options ndots:1 edns0\n')
    assert result[0]['servers'] == ['10.0.0.1', 'fd00::53'] and result[0]['options'] == ['ndots:1', 'edns0']


@pytest.mark.parametrize('item, text', [
    ({'source': 'static', 'servers': ['10.0.0.1', 'dns.example']},
     r"dns\[0\]\.servers\[1\]='dns.example' is not an IPv4 or IPv6 address"),
    ({'source': 'static', 'servers': ['10.0.0.%d' % i for i in range(1, 5)]},
     r'dns\[0\]\.servers=.* has 4 servers; the resolver \(glibc, MAXNS\) uses the first 3'),
    ({'source': 'static', 'servers': []}, r'dns\[0\]\.servers=\[\] is empty'),
    ({'source': 'static', 'servers': ['10.0.0.1', '10.0.0.1']}, r'dns\[0\]\.servers'),
    ({'servers': ['10.0.0.1']}, r'dns\[0\]\.servers=.* is for source: static \(source is upstream\)'),
    ({'source': 'upstream', 'search': ['x']}, r'dns\[0\]\.search=.* is for source: static'),
    ({'source': 'static', 'servers': ['10.0.0.1'], 'search': ['a b']}, r"dns\[0\]\.search\[0\]='a b' is not a"),
    ({'netns': None}, r'dns\[0\]\.netns=None is required'),
])
def test_dns_refused_input(item, text):
    with pytest.raises(ValidationError, match=text):
        dns_host().plan_kind('dns', [dict({'netns': 'ns1'}, **item)])


def test_dns_someone_elses_file():
    kernel = dns_host()
    kernel.files[RESOLVER] = 'nameserver 10.9.9.9\n'
    with pytest.raises(PlanError, match=r"dns\[0\]\.netns='ns1': /etc/netns/ns1/resolv.conf was not written by "
                                        r'linuxnet.netns .*; take_over: true replaces it'):
        kernel.plan_kind('dns', [{'netns': 'ns1'}])
    plan, _result = kernel.plan_kind('dns', [{'netns': 'ns1', 'take_over': True}])
    assert plan.actions == ['update %s (resolver of netns ns1)' % RESOLVER]
    for spec in ({'netns': 'ns1', 'state': 'absent'}, {'netns': 'ns1', 'source': 'none'}):
        plan, _result = kernel.plan_kind('dns', [spec])
        unchanged(plan)
        assert any('left as it is (take_over: true removes it)' in w for w in plan.warnings)
    plan, _result = kernel.plan_kind('dns', [{'netns': 'ns1', 'state': 'absent', 'take_over': True}])
    assert plan.actions == ['remove %s (resolver of netns ns1)' % RESOLVER]


def test_dns_absent_and_none_remove_ours_without_the_namespace():
    kernel = dns_host()
    kernel.files['/etc/netns/gone/resolv.conf'] = DNS_HEADER + 'nameserver 10.0.0.1\n'
    for spec in ({'netns': 'gone', 'state': 'absent'}, {'netns': 'gone', 'source': 'none'}):
        plan, result = kernel.plan_kind('dns', [spec])
        assert plan.actions == ['remove /etc/netns/gone/resolv.conf (resolver of netns gone)']
        assert plan.diff()['after'] == {} and result[0]['servers'] == []
    with pytest.raises(PlanError, match="dns\\[0\\].netns='gone': network namespace 'gone' does not exist"):
        kernel.plan_kind('dns', [{'netns': 'gone'}])


def test_dns_purge():
    kernel = dns_host()
    kernel.netns('ns2')
    for ns in ('ns1', 'ns2', 'old'):
        kernel.files['/etc/netns/%s/resolv.conf' % ns] = DNS_HEADER + 'nameserver 10.0.0.1\n'
    kernel.files['/etc/netns/user/resolv.conf'] = 'nameserver 10.0.0.1\n'
    kernel.dirs.add('/etc/netns/empty')
    plan, _reader = kernel.plan_network(dns=[{'netns': 'ns1', 'source': 'static', 'servers': ['10.0.0.1']}],
                                        purge=True, purge_match={'dns': ['ns.*', 'old']})
    assert plan.actions == ['update /etc/netns/ns1/resolv.conf (resolver of netns ns1)',
                            'remove /etc/netns/ns2/resolv.conf (resolver of netns ns2)',
                            'remove /etc/netns/old/resolv.conf (resolver of netns old)']


def test_dns_report():
    kernel = dns_host()
    kernel.netns('ns2')
    kernel.netns('ns3')
    kernel.files['/etc/netns/ns2/resolv.conf'] = DNS_HEADER + 'nameserver 10.0.0.1\n'
    kernel.files['/etc/netns/ns3/resolv.conf'] = 'nameserver 127.0.0.1\nnameserver ::1\n'
    kernel.ns('ns3').listeners[('udp', 4, 53)] = [(42, 'dnsmasq')]
    info = _info.gather(kernel.reader(), _info.InfoQuery({}), _kinds.KINDS)
    ns1, ns2, ns3 = (info['netns'][ns]['resolver'] for ns in ('ns1', 'ns2', 'ns3'))
    assert ns1['file'] == '/etc/resolv.conf' and ns1['servers'] == ['127.0.0.53'] and not ns1['ours']
    assert ns1['problem'].startswith('nameserver 127.0.0.53 (/etc/resolv.conf) is a loopback address and nothing in '
                                     'netns ns1 listens on UDP port 53')
    assert ns2 == {'file': '/etc/netns/ns2/resolv.conf', 'servers': ['10.0.0.1'], 'ours': True, 'problem': None}
    assert ns3['problem'].startswith('nameserver ::1 (/etc/netns/ns3/resolv.conf)')
    # the sockets of a namespace are read only where a loopback server is named
    assert sorted(ns for ns, _ports in kernel.listener_queries) == ['ns1', 'ns3']
