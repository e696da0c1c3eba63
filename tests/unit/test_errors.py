"""The engine's errors: its refusals are EngineErrors with the messages users see, and _module.run
turns those - and nothing else - into a failed result. A ValueError or TypeError of any other
origin is a bug and must come out as a traceback, not as a refusal with changed=false."""
import ipaddress

import pytest

from ansible_collections.linuxnet.netns.plugins.module_utils import (
    _codec, _common, _kind_forwarding, _kind_masquerade, _module, _run, _network, _nft_plan, _nft_rules, _nft_state, _state,
    _transport,
    _validate)
from ansible_collections.linuxnet.netns.plugins.module_utils._kinds import comment_parsers


# --- refusals are the engine's own errors ----------------------------------------------------------

def test_hierarchy():
    assert issubclass(_common.ValidationError, _common.EngineError)
    assert issubclass(_common.PlanError, _common.EngineError)
    # what the nf_tables comment parsers and the role's filters catch: see _common.EngineError
    assert issubclass(_common.EngineError, ValueError)
    assert _validate.ValidationError is _common.ValidationError


def test_fail_names_the_parameter_the_value_and_the_fix():
    with pytest.raises(_common.ValidationError) as caught:
        _common.fail('pairs[2].peer.name', 'x y', 'contains whitespace', 'use letters')
    assert str(caught.value) == "pairs[2].peer.name='x y' contains whitespace; use letters"


@pytest.mark.parametrize('refuse, error, message', [
    (lambda: _validate.ifname('a' * 16, 'name'), _common.ValidationError,
     "name='aaaaaaaaaaaaaaaa' is 16 bytes long; interface names are at most 15 bytes (IFNAMSIZ)"),
    (lambda: _validate.prefix('10.0.0.5/24', 'routes[0].dest'), _common.ValidationError,
     "routes[0].dest='10.0.0.5/24' has host bits set; did you mean 10.0.0.0/24?"),
    # nf_tables' own refusals: the same text as when they were bare ValueErrors
    (lambda: _nft_rules.validate_ifname('eth0*', 'oifname'), _common.PlanError,
     "oifname 'eth0*' is not a valid interface name (printable ASCII without spaces, / : * \" or \\)"),
    (lambda: _nft_plan.plan_masquerade_rules(_nft_state.NftState(), [('10.0.0.0/24', 'eth0', 'gone')]), _common.PlanError,
     "masquerade entry 0 (10.0.0.0/24 via eth0): state must be 'present' or 'absent', not 'gone'"),
    (lambda: _nft_rules.masquerade_rule('10.0.0.0/33', 'eth0'), _common.PlanError,
     "source '10.0.0.0/33' is not an IPv4 or IPv6 prefix"),
    (lambda: _nft_rules.RuleSpec('postrouting', 'linuxnet:' + 'x' * 250, []), _common.PlanError,
     'is longer than 254 bytes'),
    # nf_tables' refusal, reworded by the masquerade kind with the parameter's path
    (lambda: _kind_masquerade.MasqRule({'source': '10.0.0.0/24', 'out_interface': 'eth0*'}, 'rules[1]'),
     _common.ValidationError, "rules[1].out_interface='eth0*' contains a character nf_tables treats specially"),
    # open() refused this one with a bare ValueError ("embedded null byte") at planning time
    (lambda: _kind_forwarding.Forward({'ipv4': True, 'persist': True, 'persist_file': '/etc/sysctl.d/a\0.conf'}, 'settings[0]'),
     _common.ValidationError, "settings[0].persist_file='/etc/sysctl.d/a\\x00.conf' contains a NUL character"),
    (lambda: _network.purge_selection({'purge': True, 'namespaces': [], 'purge_match': {'namespaces': ['(']}}),
     _common.ValidationError, "purge_match.namespaces[0]='(' is not a regular expression"),
])
def test_refusals_are_engine_errors(refuse, error, message):
    with pytest.raises(error) as caught:
        refuse()
    assert message in str(caught.value)


def test_the_comment_parsers_still_read_a_refused_comment_as_not_ours():
    # masquerade_rule refuses the source with a PlanError; spec_from_comment catches ValueError
    assert _nft_rules.spec_from_comment('linuxnet:masq 10.0.0.0/33 eth0', None, comment_parsers()) is None
    assert _nft_rules.spec_from_comment('linuxnet:masq 10.0.0.0/24 eth0*', None, comment_parsers()) is None


# --- what _module.run makes of them -----------------------------------------------------------------

class Failed(Exception):
    """AnsibleModule.fail_json ends the module; so does this."""


class FakeModule(object):
    check_mode = True
    _diff = False
    _name = 'linuxnet.netns.test'

    def __init__(self):
        self.params = {}
        self.result = None

    def fail_json(self, **result):
        raise Failed(result)

    def exit_json(self, **result):
        self.result = result

    def warn(self, warning):
        raise AssertionError(warning)


class FakeSession(object):
    def close(self):
        pass


class FakeLock(object):
    def __init__(self, exclusive):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass


@pytest.fixture
def no_kernel(monkeypatch):
    """_module.run with the host left out: no privileges check, lock, session or kernel read. The
    host exists with an empty nf_tables state, no namespace does."""
    real = _state.Reader

    def reader(session, parsers):
        made = real(session, parsers)
        made._mounted = set()
        made._nft[None] = _nft_state.NftState()
        return made
    monkeypatch.setattr(_codec, 'HAS_PYROUTE2', True)
    monkeypatch.setattr(_transport, 'Namespaces', FakeSession)
    monkeypatch.setattr(_state, 'Reader', reader)
    monkeypatch.setattr(_run, 'check_privileges', lambda module: None)
    monkeypatch.setattr(_run, 'Lock', FakeLock)


def masquerade(*rules):
    objects = [_kind_masquerade.MasqRule(dict(rule, out_interface='eth0'), 'rules[%d]' % index) for index, rule in enumerate(rules)]
    return lambda plan, reader: {'rules': _kind_masquerade.plan_masquerade(plan, reader, objects)}


def test_run_plans_and_reports(no_kernel):
    module = FakeModule()
    _module.run(module, masquerade({'source': '10.0.0.0/24'}))
    assert module.result['changed'] and module.result['rules'][0]['source'] == '10.0.0.0/24'


def test_run_turns_a_refusal_into_a_failed_result(no_kernel):
    module = FakeModule()
    module.check_mode = False  # a real run: check mode assumes the namespace (the next test)
    with pytest.raises(Failed) as caught:
        _module.run(module, masquerade({'source': '10.0.0.0/24', 'netns': 'ns9'}))
    assert caught.value.args[0] == {
        'msg': "rules[0].netns='ns9': network namespace 'ns9' does not exist; create it first with linuxnet.netns.netns",
        'changed': False}


def test_run_in_check_mode_warns_of_what_it_assumes(no_kernel):
    class Warned(FakeModule):
        def warn(self, warning):
            self.warnings.append(warning)
    module = Warned()
    module.warnings = []
    _module.run(module, masquerade({'source': '10.0.0.0/24', 'netns': 'ns9'}))
    assert module.warnings == [
        "check mode: netns ns9 does not exist; assumed created by an earlier task (rules[0].netns='ns9')"]
    # planned as in the namespace the earlier task makes: empty, so the whole ruleset is new
    assert module.result['changed'] and module.result['actions'][0] == 'add table inet linuxnet_netns in netns ns9'
    assert module.result['actions'][-1].endswith('masquerade comment "linuxnet:masq 10.0.0.0/24 eth0" in netns ns9')


def test_run_words_a_top_level_parameter_without_its_dot(no_kernel):
    def planner(plan, reader):
        _common.fail('.name', 'x', 'is wrong', 'fix it')
    with pytest.raises(Failed) as caught:
        _module.run(FakeModule(), planner)
    assert caught.value.args[0]['msg'] == "name='x' is wrong; fix it"


@pytest.mark.parametrize('bug', [ValueError('an engine bug'), TypeError('an engine bug')])
def test_run_lets_a_programming_error_through(no_kernel, monkeypatch, bug):
    def broken(current, desired):
        raise bug
    monkeypatch.setattr(_nft_plan, 'plan_masquerade_rules', broken)
    module = FakeModule()
    with pytest.raises(type(bug), match='an engine bug'):
        _module.run(module, masquerade({'source': '10.0.0.0/24'}))
    assert module.result is None


def test_run_lets_a_stray_ipaddress_error_through(no_kernel):
    with pytest.raises(ValueError) as caught:
        _module.run(FakeModule(), lambda plan, reader: ipaddress.ip_network('10.0.0.0/33'))
    assert not isinstance(caught.value, _common.EngineError)
