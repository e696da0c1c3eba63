"""Saved plans on the fake kernel: what a save plans (the plan file, the boot code, the units and
their links; nothing on a second run; the old code replaced), what a removal plans (the units and
code only with the last plan), how the boot splits a plan between its two units, and how a plan
file is refused."""
import json

import pytest

from ansible_collections.linuxnet.netns.plugins.module_utils import _saved
from ansible_collections.linuxnet.netns.plugins.module_utils import _systemd
from ansible_collections.linuxnet.netns.plugins.module_utils._common import ValidationError

from ansible_collections.linuxnet.netns.tests.unit.fakekernel import FakeKernel, Symlink

PYTHON = '/usr/bin/python3'
NETWORK = dict(
    namespaces=[{'name': 'ns1'}],
    pairs=[{'name': 'vh', 'addresses': ['10.0.0.1/24'], 'peer': {'name': 'vn', 'netns': 'ns1', 'addresses': ['10.0.0.2/24']}}],
    routes=[{'netns': 'ns1', 'gateway': '10.0.0.1'}, {'dest': '10.9.0.0/24', 'gateway': '10.0.0.2'}],
    forwarding=[{'ipv4': True, 'restrict_to': ['10.0.0.0/24']}, {'netns': 'ns1', 'ipv4': False}],
    masquerade=[{'source': '10.0.0.0/24', 'out_interface': 'eth0'}],
)
PLAN_PATH = '/etc/linuxnet-netns/plans/tutorial.json'
UNIT = '/etc/systemd/system/linuxnet-netns.service'
UPLINK = '/etc/systemd/system/linuxnet-netns-uplink.service'


def host():
    """A fake host with forwarding off, where ns1 exists or not as the plan says."""
    kernel = FakeKernel()
    kernel.ns(None).proc['/proc/sys/net/ipv4/ip_forward'] = False
    return kernel


def parsed(network=None):
    from ansible_collections.linuxnet.netns.plugins.module_utils import _kinds
    params = dict((kind.option, None) for kind in _kinds.KINDS)
    params.update(network or NETWORK)
    from ansible_collections.linuxnet.netns.plugins.module_utils import _network
    return _network.parse(params)


def installed(kernel, name='tutorial', network=None):
    """Put on the fake host what a save of `network` under `name` leaves: the files, the links."""
    files = _saved.engine_files()
    directory = '%s/engine-%s' % (_saved.CODE_ROOT, _saved.engine_hash(files))
    script = directory + '/' + _saved.BOOT_SCRIPT
    kernel.files['/etc/linuxnet-netns/plans/%s.json' % name] = _saved.render(
        _saved.document(name, parsed(network), PYTHON))
    kernel.files[directory + '/' + _saved.MANIFEST] = _saved.manifest(files)
    kernel.files[UNIT] = _saved.boot_unit(PYTHON, script)
    kernel.files[UPLINK] = _saved.uplink_unit(PYTHON, script)
    for unit, targets in _saved.UNITS:
        for target in targets:
            kernel.files['/etc/systemd/system/%s.wants/%s' % (target, unit)] = Symlink('/etc/systemd/system/' + unit)
    return directory


def test_a_first_save_writes_the_plan_the_code_and_the_units_then_nothing_more():
    kernel = host()
    plan, _reader = kernel.plan_network(save={'name': 'tutorial'}, **NETWORK)
    tail = plan.actions[-7:]
    assert tail[0] == 'write saved plan tutorial (%s)' % PLAN_PATH
    assert tail[1].startswith('install the boot code in /usr/local/lib/linuxnet-netns/engine-')
    assert tail[2:4] == ['write %s (boot unit)' % UNIT, 'write %s (boot unit)' % UPLINK]
    assert tail[4:] == ['enable linuxnet-netns.service (link in multi-user.target.wants)',
                        'enable linuxnet-netns-uplink.service (link in multi-user.target.wants)',
                        'enable linuxnet-netns-uplink.service (link in systemd-networkd.service.wants)']
    # no systemd here: no reload, a warning
    assert not any('daemon-reload' in action for action in plan.actions)
    assert any('systemd is not running here' in warning for warning in plan.warnings)
    saved = plan.after['saved plan tutorial']
    assert saved['network']['namespaces'] == [{'name': 'ns1'}] and plan.before['saved plan tutorial'] is None
    assert saved['python'] == PYTHON and saved['format'] == 1

    installed(kernel)
    plan, _reader = kernel.plan_network(save={'name': 'tutorial'}, **NETWORK)
    assert not [action for action in plan.actions if 'saved plan' in action or 'boot' in action or 'enable' in action]


def test_where_systemd_runs_one_reload_follows_the_changed_units():
    kernel = host()
    kernel.dirs.add(_systemd.RUNNING)
    plan, _reader = kernel.plan_network(save={'name': 'tutorial'}, **NETWORK)
    assert plan.actions[-1] == 'systemctl daemon-reload' and plan.actions.count('systemctl daemon-reload') == 1
    installed(kernel)
    plan, _reader = kernel.plan_network(save={'name': 'tutorial'}, namespaces=[{'name': 'ns1'}, {'name': 'ns2'}])
    assert 'update saved plan tutorial (%s)' % PLAN_PATH in plan.actions
    assert 'systemctl daemon-reload' not in plan.actions, 'a changed plan is not a changed unit'


def test_new_boot_code_replaces_the_old_and_the_units_follow_it():
    kernel = host()
    current = installed(kernel)
    old = _saved.CODE_ROOT + '/engine-0123456789abcdef'
    kernel.files[old + '/' + _saved.MANIFEST] = 'old\n'
    kernel.files[UNIT] = _saved.boot_unit(PYTHON, old + '/' + _saved.BOOT_SCRIPT)
    plan, _reader = kernel.plan_network(save={'name': 'tutorial'}, **NETWORK)
    assert 'remove the old boot code %s' % old in plan.actions
    assert 'update %s (boot unit)' % UNIT in plan.actions and not any(current in a for a in plan.actions)


def test_removing_a_plan_keeps_the_units_while_another_is_saved():
    kernel = host()
    installed(kernel)
    installed(kernel, 'other', {'namespaces': [{'name': 'ns9'}]})
    plan, _reader = kernel.plan_network(save={'name': 'other', 'state': 'absent'}, namespaces=[])
    assert plan.actions == ['remove saved plan other (/etc/linuxnet-netns/plans/other.json)']
    plan, _reader = kernel.plan_network(save={'name': 'nothing', 'state': 'absent'}, namespaces=[])
    assert plan.actions == [], 'a plan that is not saved has nothing to remove while others are'


def test_removing_the_last_plan_removes_units_links_and_code():
    kernel = host()
    directory = installed(kernel)
    plan, _reader = kernel.plan_network(save={'name': 'tutorial', 'state': 'absent'}, namespaces=[])
    assert plan.actions[0] == 'remove saved plan tutorial (%s)' % PLAN_PATH
    for unit, targets in _saved.UNITS:
        for target in targets:
            assert any(a.startswith('remove /etc/systemd/system/%s.wants/%s' % (target, unit)) for a in plan.actions)
    assert 'remove %s (boot unit)' % UNIT in plan.actions and 'remove %s (boot unit)' % UPLINK in plan.actions
    assert 'remove the boot code %s (no saved plan is left)' % directory in plan.actions
    assert plan.after.get('saved plan tutorial') is None and plan.before['saved plan tutorial']['network']['namespaces']


def test_the_boot_splits_a_plan_between_its_units():
    objects = parsed()
    host = _saved.part_of(objects, 'host')
    uplink = _saved.part_of(objects, 'uplink')
    assert sorted(host) == ['forwarding', 'namespaces', 'pairs', 'routes']
    assert [obj.ns for obj in host['routes']] == ['ns1'] and [obj.ns for obj in host['forwarding']] == ['ns1']
    assert sorted(uplink) == ['forwarding', 'masquerade', 'routes']
    assert [obj.ns for obj in uplink['routes']] == [None] and [obj.ns for obj in uplink['forwarding']] == [None]
    both = _saved.part_of(objects, 'all')
    assert dict((k, len(v)) for k, v in both.items()) == dict((k, len(v)) for k, v in objects.items())


def good_text():
    return _saved.render(_saved.document('tutorial', parsed(), PYTHON))


@pytest.mark.parametrize('spoil, problem', [
    (lambda text: text[:40], 'is not JSON'),
    (lambda text: '', 'is not JSON'),
    (lambda text: '[1, 2]', 'is not a plan saved by linuxnet.netns'),
    (lambda text: text.replace('"format": 1', '"format": 7'), 'has format 7, newer than this boot code reads (1)'),
    (lambda text: text.replace('"format": 1', '"format": "1"'), 'has no format version'),
    (lambda text: text.replace('10.0.0.2/24', '10.0.0.9/24'), 'does not match its digest'),
    (lambda text: text.replace('"name": "tutorial"', '"name": "other"'), "names plan 'other', but its file is tutorial.json"),
])
def test_a_bad_plan_file_is_refused_saying_why(spoil, problem):
    with pytest.raises(_saved.SavedPlanError, match=problem.replace('(', r'\(').replace(')', r'\)')):
        _saved.load(PLAN_PATH, spoil(good_text()))


def test_a_plan_file_with_an_invalid_item_or_an_unknown_list_is_refused():
    doc = _saved.document('tutorial', parsed(), PYTHON)
    doc['network']['pairs'][0]['peer']['name'] = 'a-name-far-too-long-for-linux'
    assert NETWORK['pairs'][0]['peer']['name'] == 'vn', 'the saved items are copies'
    doc['digest'] = _saved.digest(doc['network'])
    with pytest.raises(_saved.SavedPlanError, match=r'holds an invalid item: pairs\[0\]\.peer\.name'):
        _saved.load(PLAN_PATH, _saved.render(doc))
    doc = _saved.document('tutorial', parsed(), PYTHON)
    doc['network']['tunnels'] = []
    doc['digest'] = _saved.digest(doc['network'])
    with pytest.raises(_saved.SavedPlanError, match=r'has lists this boot code does not know \(tunnels\)'):
        _saved.load(PLAN_PATH, _saved.render(doc))


def test_a_good_plan_file_loads_back_into_the_same_objects():
    name, python, objects = _saved.load(PLAN_PATH, good_text())
    assert (name, python) == ('tutorial', PYTHON)
    assert dict((k, [o.item for o in v]) for k, v in objects.items()) == dict(
        (k, [o.item for o in v]) for k, v in parsed().items())


@pytest.mark.parametrize('name', ['', '../x', '.hidden', 'a/b', 'x' * 65, 'sp ace', None])
def test_a_plan_name_that_is_not_a_plain_file_name_is_refused(name):
    with pytest.raises(ValidationError, match='save.name'):
        _saved.Save({'name': name})


def test_forwarding_persisted_to_sysctl_d_is_refused_in_a_saved_plan():
    with pytest.raises(ValidationError, match=r'forwarding\[0\]\.persist'):
        _saved.refuse_persisted_forwarding(parsed(dict(NETWORK, forwarding=[{'ipv4': True, 'persist': True}])))
    _saved.refuse_persisted_forwarding(parsed(dict(NETWORK, forwarding=[{'ipv4': False, 'persist': True}])))


def test_the_saved_plan_is_the_same_text_for_the_same_network():
    assert good_text() == good_text() and json.loads(good_text())['digest'] == _saved.digest(
        json.loads(good_text())['network'])


def test_the_boot_leaves_drop_ins_to_systemd_and_writes_resolvers_once_the_uplink_is_up():
    kernel = host()
    kernel.files['/lib/systemd/system/web.service'] = '[Service]\nExecStart=/bin/true\n'
    objects = parsed(dict(NETWORK, services=[{'service': 'web', 'netns': 'ns1'}], dns=[{'netns': 'ns1'}]))
    assert 'services' not in _saved.part_of(objects, 'host') and 'services' not in _saved.part_of(objects, 'uplink')
    assert [obj.ns for obj in _saved.part_of(objects, 'uplink')['dns']] == ['ns1']
    assert 'dns' not in _saved.part_of(objects, 'host')


def test_a_saved_plan_that_turns_forwarding_on_removes_our_old_sysctl_d_file_and_names_anyone_elses():
    kernel = host()
    kernel.files['/etc/sysctl.d/90-linuxnet-netns.conf'] = (
        '# Managed by linuxnet.netns.sysctl_forward; edits here are overwritten.\nnet.ipv4.ip_forward = 1\n')
    plan, _reader = kernel.plan_network(save={'name': 'tutorial'}, **NETWORK)
    assert any(a.startswith('remove /etc/sysctl.d/90-linuxnet-netns.conf') for a in plan.actions), plan.actions
    kernel.files['/etc/sysctl.d/90-linuxnet-netns.conf'] = 'net.ipv4.ip_forward=1\n'
    plan, _reader = kernel.plan_network(save={'name': 'tutorial'}, **NETWORK)
    assert not any('sysctl.d' in a for a in plan.actions)
    assert any('90-linuxnet-netns.conf turns forwarding on at boot' in w for w in plan.warnings)
    plan, _reader = kernel.plan_network(**NETWORK)
    assert not any('sysctl.d' in a for a in plan.actions), 'without save, the file stays as it is'


@pytest.mark.parametrize('given, name', [('openvpn-client@my.vpn', 'openvpn-client@my.vpn.service'),
                                         ('nginx', 'nginx.service'), ('a.b.service', 'a.b.service')])
def test_service_names_with_dots_in_the_instance_are_services(given, name):
    assert _systemd.service_name(given, 'service') == name


def test_the_boot_code_is_what_the_boot_script_imports_however_the_engine_came():
    """engine_files follows the imports from _saved (the boot script's entry point): the same files
    for a module run, whose zip holds what that module imports, and for a direct run, sent them all.
    The pattern it reads imports with must find what Python's own parser finds."""
    import ast
    import os
    here = os.path.dirname(_saved.__file__)

    def parsed_imports(name):
        with open(os.path.join(here, name + '.py')) as handle:
            tree = ast.parse(handle.read())
        found = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == _saved.PACKAGE:
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and (node.module or '').startswith(_saved.PACKAGE + '.'):
                found.add(node.module[len(_saved.PACKAGE) + 1:])
        return found
    for name in sorted(entry[:-3] for entry in os.listdir(here) if entry.endswith('.py')):
        with open(os.path.join(here, name + '.py')) as handle:
            # (the boot script's text in _saved names _saved itself)
            assert _saved.imported(handle.read()) - {name} == parsed_imports(name) - {name}, name
    closure, todo = set(), ['_saved']
    while todo:
        name = todo.pop()
        if name not in closure:
            closure.add(name)
            todo.extend(parsed_imports(name))
    files = _saved.engine_files()
    base = _saved.PACKAGE.replace('.', '/') + '/'
    assert sorted(path[len(base):-3] for path in files if path.startswith(base)) == sorted(closure)
    assert not closure & set(_saved.NOT_INSTALLED) and '_kind_veth' in closure and '_info' not in closure
