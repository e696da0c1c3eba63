"""The role's action (plugins/action/bridge_network_host.py) with Ansible's module runs replaced by a
script of results: what it runs, in what order, and what it returns. No host, no kernel."""
import base64
import json
import os

import pytest
import yaml
from ansible.errors import AnsibleActionFail

from ansible_collections.linuxnet.netns.plugins.action import bridge_network_host as action_module
from ansible_collections.linuxnet.netns.tests.unit.test_bridge_network import info, settings

MISSING = {'failed': True, 'missing_library': 'pyroute2', 'msg': 'Failed to import the required Python library (pyroute2)'}


class Task(object):
    def __init__(self, args, check_mode=False):
        self.args, self.check_mode = args, check_mode


class Action(action_module.ActionModule):
    """The action with ActionBase's constructor and module runs replaced: `results` {module: [result, ...]}
    answers each run in turn; `runs` records (module, args)."""

    def __init__(self, args, results, check_mode=False):  # pylint: disable=super-init-not-called
        self._task = Task(args, check_mode)
        self.results = dict((name, list(answers)) for name, answers in results.items())
        self.runs = []

    def _execute_module(self, module_name=None, module_args=None, task_vars=None, **kw):
        self.runs.append((module_name, module_args))
        return dict(self.results[module_name].pop(0))


@pytest.fixture(autouse=True)
def no_action_base(monkeypatch):
    # ActionBase.run checks the arguments against _VALID_ARGS and needs a real task; the rest is ours
    monkeypatch.setattr(action_module.ActionBase, 'run', lambda self, tmp=None, task_vars=None: {})


def run(action, task_vars=None):
    return action.run(None, task_vars or {})


def read_result(**kw):
    return dict(info(), changed=False, **kw)


def test_the_read_keeps_the_module_runs_own_facts_beside_the_note():
    """The interpreter Ansible discovered for the host comes back in the module run's ansible_facts;
    the read adds _bridge_network_local to them instead of replacing them."""
    action = Action({'step': 'read', 'settings': settings()},
                    {'linuxnet.netns.netns_info': [read_result(ansible_facts={'discovered_interpreter_python': '/usr/bin/python3'})]})
    result = run(action)
    assert result['ansible_facts']['discovered_interpreter_python'] == '/usr/bin/python3'
    assert result['ansible_facts']['_bridge_network_local'] == result['local']
    assert result['local']['uplink'] == 'up0' and result['_ansible_facts_cacheable'] is True
    assert [name for name, _args in action.runs] == ['linuxnet.netns.netns_info']


@pytest.mark.parametrize('install_deps', ['false', False, 'no'])
def test_without_install_deps_a_missing_pyroute2_fails_the_read_as_the_module_said(install_deps):
    action = Action({'step': 'read', 'settings': settings(), 'install_deps': install_deps},
                    {'linuxnet.netns.netns_info': [MISSING]})
    result = run(action)
    assert result['failed'] and result['missing_library'] == 'pyroute2' and 'deps' not in result
    assert len(action.runs) == 1


def test_a_missing_pyroute2_is_installed_and_the_module_run_again():
    action = Action({'step': 'read', 'settings': settings(), 'install_deps': 'true'},
                    {'linuxnet.netns.netns_info': [MISSING, read_result()],
                     'ansible.builtin.setup': [{'ansible_facts': {'ansible_os_family': 'Debian'}}],
                     'ansible.builtin.apt': [{'changed': True}]})
    result = run(action)
    assert [name for name, _args in action.runs] == [
        'linuxnet.netns.netns_info', 'ansible.builtin.setup', 'ansible.builtin.apt', 'linuxnet.netns.netns_info']
    assert action.runs[2][1] == {'name': 'python3-pyroute2', 'state': 'present'}
    assert not result.get('failed') and result['changed'] is True
    assert result['deps'] == {'os_family': 'Debian', 'package': 'python3-pyroute2', 'changed': True,
                              'msg': 'python3-pyroute2 installed'}


def test_still_missing_after_the_install_fails_saying_what_the_install_did_check_mode_included():
    action = Action({'step': 'read', 'settings': settings(), 'install_deps': True},
                    {'linuxnet.netns.netns_info': [MISSING, MISSING], 'ansible.builtin.apt': [{'changed': True}]},
                    check_mode=True)
    result = run(action, {'ansible_facts': {'os_family': 'Debian'}})  # known: no setup
    assert [name for name, _args in action.runs] == [
        'linuxnet.netns.netns_info', 'ansible.builtin.apt', 'linuxnet.netns.netns_info']
    assert result['failed']
    assert result['msg'].endswith('(bridge_network_install_deps: python3-pyroute2 would be installed (check mode))')


def test_another_os_family_installs_nothing_and_says_so():
    action = Action({'step': 'read', 'settings': settings(), 'install_deps': True},
                    {'linuxnet.netns.netns_info': [MISSING, MISSING]})
    result = run(action, {'ansible_facts': {'os_family': 'RedHat'}})
    assert [name for name, _args in action.runs] == ['linuxnet.netns.netns_info', 'linuxnet.netns.netns_info']
    assert 'no package known for the OS family RedHat' in result['msg']


def test_the_apply_runs_network_with_the_plan_and_its_warnings():
    read = dict(read_result(), local={'uplink': 'up0', 'underlay': '192.0.2.11', 'current': None})
    action = Action({'step': 'apply', 'settings': settings(namespaces=2, subnet='10.200.5.0/24'),
                     'inputs': {'host': 'h1', 'fleet': None, 'subnets': {'h1': '10.200.5.0/24'}, 'underlays': {}},
                     'save': {'name': 'bridge_network', 'state': 'present'}},
                    {'linuxnet.netns.network': [{'changed': True, 'warnings': ['from the module']}]})
    result = run(action, {'_bridge_network_info': read})
    (name, args), = action.runs
    assert name == 'linuxnet.netns.network' and args['purge'] is True and args['save']['name'] == 'bridge_network'
    lists = json.loads(args['definition'])
    assert [ns['name'] for ns in lists['namespaces']] == ['lnns1', 'lnns2']
    assert sorted(lists) == sorted(option for option, _key in action_module.LISTS)
    assert result['changed'] and result['warnings'][-1] == 'from the module'


def test_a_plan_with_errors_fails_before_any_module_run():
    # an interface of someone else's where the role's bridge would be
    read = dict(info({'lnbr0': {'kind': 'dummy', 'addresses': [], 'ours': False}}), changed=False,
                local={'uplink': 'up0', 'underlay': '192.0.2.11', 'current': None})
    action = Action({'step': 'apply', 'settings': settings(namespaces=2, subnet='10.200.5.0/24'),
                     'inputs': {'host': 'h1', 'fleet': None, 'subnets': {'h1': '10.200.5.0/24'}, 'underlays': {}}},
                    {})
    result = run(action, {'_bridge_network_info': read})
    assert result['failed'] and 'bridge_network_bridge=lnbr0' in result['msg'] and action.runs == []


def test_the_apply_without_the_read_and_an_entry_point_of_the_other_state_refuse():
    with pytest.raises(AnsibleActionFail, match='needs the role\'s read'):
        run(Action({'step': 'apply', 'settings': settings(), 'inputs': {}}, {}))
    with pytest.raises(AnsibleActionFail, match='entry point of the role is for bridge_network_state=absent'):
        run(Action({'step': 'apply', 'settings': settings(state='present'), 'state': 'absent'}, {}))
    with pytest.raises(AnsibleActionFail, match='step must be one of read, apply'):
        run(Action({'step': 'plan', 'settings': settings()}, {}))


REPO = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, os.pardir)


class Templar(object):
    """Values as the play gives them, nothing to render."""

    @staticmethod
    def template(value):
        return value


def role_defaults():
    with open(os.path.join(REPO, 'roles', 'bridge_network', 'defaults', 'main.yml')) as handle:
        return yaml.safe_load(handle)


@pytest.mark.parametrize('step', ['read', 'apply'])
def test_validate_checks_the_roles_variables_first_and_runs_nothing_when_they_are_wrong(step):
    """validate: the role's variables against its meta/argument_specs.yml, as Ansible's validation
    task does (which the role's playbooks turn off); the errors before any module run."""
    variables = dict(role_defaults(), bridge_network_namespaces='many', bridge_network_mode='mesh',
                     bridge_network_state='absent' if step == 'apply' else 'present')
    action = Action({'step': step, 'validate': True, 'settings': settings()}, {})
    action._templar = Templar()
    result = run(action, variables)
    assert result['failed'] and not result['changed'] and action.runs == []
    assert result['msg'].startswith('Validation of arguments failed:\n')
    assert len(result['argument_errors']) == 2, result['argument_errors']
    assert any('bridge_network_namespaces' in error and 'int' in error for error in result['argument_errors'])
    assert any('bridge_network_mode' in error and 'mesh' in error for error in result['argument_errors'])


def test_validate_passes_the_roles_defaults_and_the_read_goes_on():
    action = Action({'step': 'read', 'validate': True, 'settings': settings()},
                    {'linuxnet.netns.netns_info': [read_result()]})
    action._templar = Templar()
    result = run(action, role_defaults())
    assert not result.get('failed') and [name for name, _args in action.runs] == ['linuxnet.netns.netns_info']


def test_the_role_options_are_those_of_every_entry_point():
    """One set of options serves each entry point (the spec file shares them with an anchor)."""
    with open(action_module.SPECS) as handle:
        specs = yaml.safe_load(handle)['argument_specs']
    assert set(specs) == {'main', 'teardown', 'facts'}
    assert all(entry['options'] == action_module.role_options() for entry in specs.values())


# --- the engine run without the module wrapper (option direct) --------------------------------------

class Shell(object):
    SHELL_FAMILY = 'sh'

    @staticmethod
    def build_module_command(env_string, shebang, cmd, arg_path=None):
        return ' '.join(part for part in (env_string, shebang.replace('#!', ''), cmd) if part)


class Connection(object):
    def __init__(self, pipelining=True):
        self._shell = Shell()
        self.pipelining = pipelining

    def is_pipelining_enabled(self, wrap_async=False):
        return self.pipelining


class DirectAction(Action):
    """The action with a connection: `sent` records (cmd, script) of each direct run, answered by
    `direct` {module: [low-level result, ...]}."""

    def __init__(self, args, results, direct, pipelining=True, **task):  # pylint: disable=super-init-not-called
        super(DirectAction, self).__init__(dict(args, direct=True), results)
        self._task.delegate_to, self._task.async_val, self._task.diff = task.get('delegate_to'), task.get('async_val', 0), False
        self._connection = Connection(pipelining)
        self._templar = type('Templar', (), {'template': staticmethod(lambda value: value)})()
        self._play_context = type('PlayContext', (), {'remote_addr': 'h1'})()
        self.direct = dict((name, list(answers)) for name, answers in direct.items())
        self.sent = []

    def _compute_environment_string(self, raw_environment_out=None):
        return 'LANG=C'

    def _low_level_execute_command(self, cmd, sudoable=True, in_data=None, **kw):
        assert isinstance(in_data, bytes)  # as the connections take it (local's communicate() needs bytes)
        request = json.loads(base64.b64decode(in_data.decode().rsplit('(', 1)[1].split("'")[1]))
        self.sent.append((cmd, request))
        return self.direct[request['module']].pop(0)


def printed(result, rc=0):
    return {'rc': rc, 'stdout': json.dumps(result) + '\n', 'stderr': ''}


READ = {'step': 'read', 'settings': settings()}
PYTHON = {'ansible_python_interpreter': '/usr/bin/python3'}


def test_direct_reads_the_host_without_a_module_run():
    action = DirectAction(READ, {}, {'netns_info': [printed(read_result())]})
    result = run(action, PYTHON)
    (cmd, request), = action.sent
    assert cmd == 'LANG=C /usr/bin/python3' and action.runs == []
    assert request['module'] == 'netns_info' and request['args'] == action_module.read_args(settings())
    assert request['check_mode'] is False and '_direct' in request['sources'] and '_module' not in request['sources']
    assert result['engine_run'] == 'direct' and result['local']['uplink'] == 'up0'


@pytest.mark.parametrize('why, make', [
    ('pipelining off', lambda: DirectAction(READ, {}, {}, pipelining=False)),
    ('delegated', lambda: DirectAction(READ, {}, {}, delegate_to='other')),
    ('async', lambda: DirectAction(READ, {}, {}, async_val=30)),
])
def test_where_ansible_would_not_pipeline_the_module_runs(why, make):
    action = make()
    action.results = {'linuxnet.netns.netns_info': [read_result()]}
    result = run(action, PYTHON)
    assert action.sent == [] and [name for name, _args in action.runs] == ['linuxnet.netns.netns_info'], why
    assert result['engine_run'] == 'module'


@pytest.mark.parametrize('answer', [
    printed({'linuxnet_netns_declined': 'arguments Ansible would convert or refuse'}),
    {'rc': 127, 'stdout': '', 'stderr': '/bin/sh: 1: /usr/bin/python3: not found'},
])
def test_a_declined_run_or_a_python_that_did_not_start_leaves_it_to_the_module(answer):
    action = DirectAction(READ, {'linuxnet.netns.netns_info': [read_result()]}, {'netns_info': [answer]})
    result = run(action, PYTHON)
    assert len(action.sent) == 1 and len(action.runs) == 1 and result['engine_run'] == 'module'


def test_a_run_that_printed_no_result_fails_saying_what_it_printed():
    action = DirectAction(READ, {}, {'netns_info': [{'rc': 1, 'stdout': 'Traceback ...', 'stderr': 'boom'}]})
    result = run(action, PYTHON)
    assert result['failed'] and result['module_stderr'] == 'boom' and 'MODULE FAILURE' in result['msg']
    assert action.runs == []  # a run that may have started is not run again


def test_a_missing_pyroute2_is_installed_and_the_direct_run_made_again():
    missing = printed(dict(MISSING, changed=False), rc=1)
    action = DirectAction(dict(READ, install_deps=True), {'ansible.builtin.apt': [{'changed': True}]},
                          {'netns_info': [missing, printed(read_result())]})
    result = run(action, dict(PYTHON, ansible_facts={'os_family': 'Debian'}))
    assert [request['module'] for _cmd, request in action.sent] == ['netns_info', 'netns_info']
    assert result['engine_run'] == 'direct' and result['deps']['changed'] and not result.get('failed')


def test_the_python_is_discovered_once_as_a_module_run_would_and_kept_as_its_fact(monkeypatch):
    found = []
    monkeypatch.setattr(action_module, 'discover_interpreter',
                        lambda **kw: found.append(kw['discovery_mode']) or '/usr/bin/python3.11')
    action = DirectAction(READ, {'linuxnet.netns.netns_info': [read_result()]},
                          {'netns_info': [printed({'linuxnet_netns_declined': 'why not'})]})
    task_vars = {'ansible_python_interpreter': 'auto_silent', 'ansible_facts': {}}
    result = run(action, task_vars)
    assert found == ['auto_silent'] and action.sent[0][0].endswith('/usr/bin/python3.11')
    # kept where a module run keeps it (the module run after the decline finds it there), and returned
    assert task_vars['ansible_facts']['discovered_interpreter_python'] == '/usr/bin/python3.11'
    assert result['engine_run'] == 'module'
    assert result['ansible_facts']['discovered_interpreter_python'] == '/usr/bin/python3.11'
    # a host whose Python an earlier task discovered is not asked again
    action = DirectAction(READ, {}, {'netns_info': [printed(read_result())]})
    run(action, {'ansible_facts': {'discovered_interpreter_python': '/usr/bin/python3.9'}})
    assert found == ['auto_silent'] and action.sent[0][0].endswith('/usr/bin/python3.9')


def test_the_apply_goes_direct_in_check_mode_too():
    read = dict(read_result(), local={'uplink': 'up0', 'underlay': '192.0.2.11', 'current': None})
    action = DirectAction({'step': 'apply', 'settings': settings(namespaces=2, subnet='10.200.5.0/24'),
                           'inputs': {'host': 'h1', 'fleet': None, 'subnets': {'h1': '10.200.5.0/24'}, 'underlays': {}}},
                          {}, {'network': [printed({'changed': True, 'actions': ['...']})]})
    action._task.check_mode = True
    result = run(action, dict(PYTHON, _bridge_network_info=read))
    (_cmd, request), = action.sent
    assert request['check_mode'] is True and json.loads(request['args']['definition'])['namespaces'][1]['name'] == 'lnns2'
    assert result['changed'] and result['engine_run'] == 'direct'
