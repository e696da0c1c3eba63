"""Pure logic: validation and planning, no kernel."""
import ipaddress

import pytest

from ansible_collections.linuxnet.netns.plugins.module_utils import _common, _kind_forwarding, _kind_veth, _plan, _validate
from ansible_collections.linuxnet.netns.plugins.module_utils._kind_route import RouteSpec

from ansible_collections.linuxnet.netns.tests.unit.fakekernel import FakeKernel


@pytest.mark.parametrize('name', ['eth0', 'veth-host', 'a' * 15, 'br.100', 'x_y'])
def test_ifname_ok(name):
    assert _validate.ifname(name, 'name') == name


@pytest.mark.parametrize('name, fragment', [
    ('a' * 16, '16 bytes'), ('', 'non-empty'), ('a/b', '"/"'), ('a b', 'whitespace'), ('a:1', '":"'),
    ('caf\u00e9', 'non-ASCII'), ('..', '".."'), ('tab\t', 'whitespace'), (None, 'non-empty'),
])
def test_ifname_bad(name, fragment):
    with pytest.raises(_validate.ValidationError) as err:
        _validate.ifname(name, 'peer.name')
    assert 'peer.name=' in str(err.value) and fragment in str(err.value)


@pytest.mark.parametrize('name', ['../etc', 'a/b', '.', '..', 'with space', '\x01', 'x' * 256])
def test_netns_name_bad(name):
    with pytest.raises(_validate.ValidationError) as err:
        _validate.netns_name(name, 'netns')
    assert 'netns=' in str(err.value)


def test_prefix_and_addresses():
    v = _validate
    assert v.prefix('default', 'dest') == ipaddress.ip_network('0.0.0.0/0')
    assert v.prefix('fd00::/64', 'dest').version == 6
    with pytest.raises(v.ValidationError, match='did you mean 10.0.0.0/24'):
        v.prefix('10.0.0.5/24', 'dest')
    assert str(v.interface_address('10.0.0.1/24', 'a')) == '10.0.0.1/24'
    assert str(v.interface_address('10.0.0.0/31', 'a')) == '10.0.0.0/31'
    with pytest.raises(v.ValidationError, match='network address'):
        v.interface_address('10.0.0.0/24', 'a')
    with pytest.raises(v.ValidationError, match='CIDR'):
        v.interface_address('10.0.0.1', 'a')


@pytest.mark.parametrize('text', [
    '10.0.0.1/24', '10.0.0.1/255.255.255.0', '10.0.0.1/0.0.0.255', '10.64.3.5/31', '10.0.0.1/32', '10.0.0.1/0',
    '10.0.0.1/', '10.0.0.1/33', '10.0.0.1/24/5', '010.0.0.1/24', '10.0.0.256/24', '1.2.3/24', ' 10.0.0.1/24',
    '10.0.0.1/ 24', '10.0.0.1/+24', '10.0.0.1/-1', '10.0.0.1/\u0662\u0664', '10.0.0.1/24\n', '/24', 'abc/24',
    'fd00::1/64', 'fe80::1%eth0/64', '::ffff:1.2.3.4/96', 'fd00::1/129',
])
def test_interface_address_parsed_as_ipaddress_does(text):
    # the IPv4 shortcut (from the address's number) takes and refuses what ip_interface() does
    try:
        expected = ipaddress.ip_interface(text)
    except ValueError:
        with pytest.raises(ValueError):
            _validate._ip_interface(text)
        return
    found = _validate._ip_interface(text)
    assert (type(found), found, str(found), found.network, hash(found)) == (
        type(expected), expected, str(expected), expected.network, hash(expected))


def test_printable_ascii():
    for text in ['abc', 'a!~', '', 'a b', 'a\tb', 'caf\u00e9', 'a\x7f', 'a\x00']:
        assert _validate._printable_ascii(text) == all(33 <= ord(c) <= 126 for c in text)


def test_unique():
    v = _validate
    v.unique([1, 2, 3], lambda x: x, 'items')
    with pytest.raises(v.ValidationError, match=r'items\[2\].*declared twice.*items\[0\]'):
        v.unique(['a', 'b', 'a'], lambda x: x, 'items')


def test_route_spec_family_rules():
    six = RouteSpec({'gateway': 'fd00::1'}, 'r')
    assert six.dest == ipaddress.ip_network('::/0') and six.metric == 1024
    four = RouteSpec({'gateway': '10.0.0.1'}, 'r')
    assert four.metric == 0 and four.key == (None, ipaddress.ip_network('0.0.0.0/0'), 254, 0)
    with pytest.raises(_validate.ValidationError, match='is IPv6 but'):
        RouteSpec({'dest': '10.0.0.0/8', 'gateway': 'fd00::1'}, 'r')


def test_route_spec_ipv6_metric_zero_is_1024():
    # what the kernel stores for it: a re-run must look for that route, not one of metric 0
    assert RouteSpec({'gateway': 'fd00::1', 'metric': 0}, 'r').metric == 1024
    assert RouteSpec({'gateway': 'fd00::1', 'metric': 1}, 'r').metric == 1
    assert RouteSpec({'gateway': '10.0.0.1', 'metric': 0}, 'r').metric == 0


@pytest.mark.parametrize('table', [1, 253, 254, 256, 0xffffffff])
def test_route_spec_table_ok(table):
    assert RouteSpec({'gateway': '10.0.0.1', 'table': table}, 'r').table == table


@pytest.mark.parametrize('option, value, fragment', [
    ('table', 0, 'is outside 1..4294967295'),  # RT_TABLE_UNSPEC: the kernel would write to main
    ('table', 255, "the kernel's local table"),
    ('table', 0x100000000, 'is outside'),
    ('table', -1, 'is outside'),
    ('table', True, 'is not an integer'),  # Ansible's int type lets a boolean through
    ('metric', -1, 'is outside 0..4294967295'),
    ('metric', 0x100000000, 'is outside'),
    ('metric', False, 'is not an integer'),
])
def test_route_spec_integers_bad(option, value, fragment):
    with pytest.raises(_validate.ValidationError) as err:
        RouteSpec({'gateway': '10.0.0.1', option: value}, 'routes[3]')
    assert str(err.value).startswith('routes[3].%s=%r ' % (option, value)) and fragment in str(err.value)


@pytest.mark.parametrize('value, ok', [(67, False), (68, True), (65535, True), (65536, False), (True, False),
                                       (None, True)])
def test_mtu_bounds(value, ok):
    if ok:
        assert _validate.mtu(value, 'mtu') == value
    else:
        with pytest.raises(_validate.ValidationError, match='mtu=%r' % value):
            _validate.mtu(value, 'mtu')


def fake_reader(mounted=()):
    """The engine's Reader on a fake kernel holding the namespaces `mounted`."""
    kernel = FakeKernel()
    for name in mounted:
        kernel.netns(name)
    return kernel.reader()


def test_plan_new_veth_orders_stages():
    reader = fake_reader(mounted=['ns1'])
    plan = _plan.Plan()
    pair = _kind_veth.VethPair({'name': 'vh', 'addresses': ['10.0.0.1/24'], 'up': True,
                                'peer': {'name': 'vn', 'netns': 'ns1', 'addresses': ['10.0.0.2/24'], 'up': True}}, 'p')
    _kind_veth.plan_veth(plan, reader, pair)
    assert plan.actions[0] == 'create veth vh in the host with peer vn in netns ns1'
    stages = [op.stage for op in sorted(plan.ops, key=lambda op: op.stage)]
    assert stages == sorted(stages)
    assert plan.actions.index('add address 10.0.0.2/24 to vn in netns ns1') > plan.actions.index('set vn up in netns ns1')
    assert plan.diff()['before'] == {} and set(plan.diff()['after']) == {'veth (host) vh', 'veth ns1 vn'}


def test_plan_refuses_missing_namespace():
    with pytest.raises(_common.PlanError, match="'ns9' does not exist"):
        _kind_veth.plan_veth(_plan.Plan(), fake_reader(), _kind_veth.VethPair({'name': 'a', 'peer': {'name': 'b', 'netns': 'ns9'}}, 'p'))


def test_sysctl_render():
    text = _kind_forwarding.render({'ipv6': False, 'ipv4': True})
    assert text.splitlines()[1:] == ['net.ipv4.ip_forward = 1', 'net.ipv6.conf.all.forwarding = 0']


@pytest.mark.parametrize('before, values, after', [
    # the file: the value is replaced on its line, the user's spacing kept
    ('# mine\nvm.swappiness = 10\nnet.ipv4.ip_forward=0\n', {'ipv4': True},
     '# mine\nvm.swappiness = 10\nnet.ipv4.ip_forward=1\n'),
    # a key no line sets is appended; one the call does not declare is left alone
    ('vm.swappiness = 10\nnet.ipv6.conf.all.forwarding = 0\n', {'ipv4': True},
     'vm.swappiness = 10\nnet.ipv6.conf.all.forwarding = 0\nnet.ipv4.ip_forward = 1\n'),
    ('vm.swappiness = 10', {'ipv6': False, 'ipv4': True},
     'vm.swappiness = 10\nnet.ipv4.ip_forward = 1\nnet.ipv6.conf.all.forwarding = 0\n'),
    ('', {'ipv4': True}, 'net.ipv4.ip_forward = 1\n'),
    # comments stay, even one naming the key; every line that sets it changes (the last one counts)
    ('# net.ipv4.ip_forward = 0\n; net.ipv4.ip_forward = 0\nnet.ipv4.ip_forward = 0\n\nnet.ipv4.ip_forward\t=  0  \n',
     {'ipv4': True},
     '# net.ipv4.ip_forward = 0\n; net.ipv4.ip_forward = 0\nnet.ipv4.ip_forward = 1\n\nnet.ipv4.ip_forward\t=  1  \n'),
    # the '/' spelling and systemd's "-" prefix are the same key; an empty value gets one
    ('-net/ipv4/ip_forward = 0\r\nnet.ipv6.conf.all.forwarding =\n', {'ipv4': True, 'ipv6': True},
     '-net/ipv4/ip_forward = 1\r\nnet.ipv6.conf.all.forwarding =1\n'),
    # a longer key that starts like ours is another key
    ('net.ipv4.ip_forward_use_pmtu = 0\n', {'ipv4': False},
     'net.ipv4.ip_forward_use_pmtu = 0\nnet.ipv4.ip_forward = 0\n'),
])
def test_sysctl_edit_someone_elses_file(before, values, after):
    assert not _kind_forwarding.ours(before)
    assert _kind_forwarding.edit(before, values) == after
    assert _kind_forwarding.edit(after, values) == after


def test_sysctl_ours():
    assert _kind_forwarding.ours(None)
    assert _kind_forwarding.ours(_kind_forwarding.render({'ipv4': True}))
    assert not _kind_forwarding.ours('# mine\n' + _kind_forwarding.render({'ipv4': True}))


@pytest.mark.parametrize('wildcard, target', [('0.0.0.0', '10.0.0.2'), ('::', 'fd00::2')])
def test_publish_host_address_wildcard_is_all_addresses(wildcard, target):
    # documented: 0.0.0.0 and :: say what omitting host_address says, as in Docker's -p 0.0.0.0:80:80
    from ansible_collections.linuxnet.netns.plugins.module_utils._kind_publish import Publish
    given = Publish({'host_port': 80, 'target': target, 'host_address': wildcard}, 'ports[0]')
    omitted = Publish({'host_port': 80, 'target': target}, 'ports[0]')
    for obj in (given, omitted):
        assert obj.host_address is None and str(obj.listen) == wildcard
    assert (given.key, given.describe(), given.mappings()) == (omitted.key, omitted.describe(), omitted.mappings())
    # with target_netns the family comes from the wildcard alone
    assert Publish({'host_port': 80, 'target_netns': 'ns1', 'host_address': '::'}, 'p').version == 6


@pytest.mark.parametrize('address', ['224.0.0.1', '255.255.255.255', 'ff02::1'])
def test_publish_host_address_multicast_refused(address):
    from ansible_collections.linuxnet.netns.plugins.module_utils._kind_publish import Publish
    target = '10.0.0.2' if '.' in address else 'fd00::2'
    with pytest.raises(_validate.ValidationError, match=r"ports\[0\]\.host_address='%s' is a multicast" % address):
        Publish({'host_port': 80, 'target': target, 'host_address': address}, 'ports[0]')


SPEC = {'name': {'type': 'str'}, 'state': {'type': 'str', 'choices': ['present', 'absent']},
        'file': {'type': 'path'}, 'mtu': {'type': 'int'},
        'peer': {'type': 'dict', 'options': {'name': {'type': 'str'}}},
        'items': {'type': 'list', 'elements': 'dict', 'options': {'name': {'type': 'str'},
                                                                  'addresses': {'type': 'list', 'elements': 'str'}}}}


@pytest.mark.parametrize('params, message', [
    ({'name': ['a']}, "name=['a'] is a list, not a string"),
    ({'name': {'a': 1}}, "name={'a': 1} is a mapping, not a string"),
    ({'name': False}, 'name=False is a boolean, not a string'),  # YAML's `name: no`
    ({'file': ['/a.conf']}, "file=['/a.conf'] is a list"),
    ({'peer': {'name': True}}, 'peer.name=True is a boolean'),
    ({'items': [{'name': 'a'}, {'addresses': ['10.0.0.1/24', ['x']]}]}, "items[1].addresses[1]=['x'] is a list"),
])
def test_unconverted_refused(params, message):
    with pytest.raises(_validate.ValidationError) as err:
        _validate.unconverted(SPEC, params)
    assert str(err.value).startswith(message)


@pytest.mark.parametrize('params', [
    {'name': 'a', 'file': '/a.conf', 'mtu': 1500, 'peer': {'name': 'b'}, 'items': [{'name': 'c', 'addresses': []}]},
    {'name': 5},  # a number: Ansible's conversion to "5" stands
    {'state': True},  # an option with choices: Ansible checks it
    {'peer': 'name=b'}, {'items': 'x'}, {'name': None},  # Ansible's own conversions and checks
])
def test_unconverted_accepted(params):
    _validate.unconverted(SPEC, params)


@pytest.mark.parametrize('value, ports', [(1, (1, 1)), (65535, (65535, 65535)), ('1-65535', (1, 65535)),
                                          ('8080', (8080, 8080)), ('80-80', (80, 80))])
def test_publish_port_range_ends(value, ports):
    from ansible_collections.linuxnet.netns.plugins.module_utils._kind_publish import port_range
    assert port_range(value, 'host_port') == ports
