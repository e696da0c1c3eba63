"""The role's action (plugins/action/bridge_network_host.py) with Ansible's module runs replaced by a
script of results: what it runs, in what order, and what it returns. No host, no kernel."""
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
