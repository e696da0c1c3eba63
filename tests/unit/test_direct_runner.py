"""The host side of a run without Ansible's module wrapper (module_utils/_direct.py), without a host:
its checks of the arguments against AnsibleModule's validation, what it declines, and its result
for an exception no code of the engine caught (as Ansible's module loader words one)."""
import io
import json

import pytest
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.linuxnet.netns.plugins.module_utils import _direct, _info, _network

SPEC = {'name': dict(type='str'), 'flag': dict(type='bool', default=True),
        'mode': dict(type='str', choices=['a', 'b']), 'size': dict(type='int', required=True)}


@pytest.mark.parametrize('args', [
    {'size': 3}, {'size': 3, 'name': None}, {'size': 3, 'name': 'x', 'flag': False, 'mode': 'b'},
])
def test_what_it_checks_comes_out_as_ansibles_validator_leaves_it(args):
    expected = ArgumentSpecValidator(SPEC).validate(dict(args))
    assert not expected.error_messages
    assert _direct.checked(SPEC, args) == expected.validated_parameters


@pytest.mark.parametrize('args', [
    {'size': '3'},                 # converted by Ansible
    {'size': 3, 'flag': 'yes'},    # converted by Ansible
    {'size': 3, 'mode': None},     # refused by Ansible: null is not one of the choices
    {'size': None},                # refused by Ansible: required
    {'size': 3, 'colour': 'red'},  # refused by Ansible: unknown
    {'name': 'x'},                 # refused by Ansible: size missing
])
def test_what_ansibles_validator_would_convert_or_refuse_is_declined(args):
    with pytest.raises(_direct.Declined):
        _direct.checked(SPEC, args)


def test_the_modules_specs_are_checked_whole():
    assert _direct.checked(_info.ARGUMENT_SPEC, {'saved_plans': 'none'})['routes'] is True
    with pytest.raises(_direct.Declined, match='none of'):
        _direct.checked(_network.argument_spec(), {'purge': True}, _network.required_one_of())


def run(request, monkeypatch, planner):
    monkeypatch.setitem(_direct.RUNS, 'netns_info', (dict, lambda params: planner, True))
    out = io.StringIO()
    with pytest.raises(SystemExit) as ended:
        _direct.main(dict(request, module='netns_info', name='linuxnet.netns.netns_info'), out)
    return ended.value.code, json.loads(out.getvalue())


def test_an_exception_no_code_caught_is_a_failed_result_with_its_traceback(monkeypatch):
    def broken(plan, reader):
        raise ValueError('an engine bug')
    monkeypatch.setattr(_direct._run, 'run', lambda module, planner, read_only: planner(None, None))
    code, result = run({'args': {'netns': ['x']}}, monkeypatch, broken)
    assert code == 1 and result['failed'] and result['msg'] == 'ValueError: an engine bug'
    assert 'Traceback' in result['exception'] and result['invocation'] == {'module_args': {'netns': ['x']}}


def test_declined_is_a_result_of_its_own_and_warnings_come_back(monkeypatch):
    def declined(args):
        raise _direct.Declined('why not')
    monkeypatch.setitem(_direct.RUNS, 'network', (declined, None, False))
    out = io.StringIO()
    with pytest.raises(SystemExit) as ended:
        _direct.main({'module': 'network', 'args': {}}, out)
    assert ended.value.code == 0 and json.loads(out.getvalue()) == {_direct.DECLINED: 'why not'}

    def warned(module, planner, read_only):
        module.warn('careful')
        module.exit_json(changed=False)
    monkeypatch.setattr(_direct._run, 'run', warned)
    code, result = run({'args': {}}, monkeypatch, None)
    assert code == 0 and result == {'changed': False, 'warnings': ['careful']}
