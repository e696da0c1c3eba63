"""The network module's definition: items checked without Ansible's validator (V.exact_items)
must come out exactly as that validator returns them, and every item it would convert, refuse or
warn about must be left to it."""
import copy
import json
import random
import string

import pytest
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.linuxnet.netns.plugins.module_utils import _network
from ansible_collections.linuxnet.netns.plugins.module_utils import _validate as V
from ansible_collections.linuxnet.netns.plugins.module_utils._common import ValidationError

SPECS = _network._list_specs()


def ansible(option, items):
    """What Ansible's validator makes of `items` as the list option `option`: (list, errors)."""
    result = ArgumentSpecValidator({option: SPECS[option]}).validate({option: copy.deepcopy(items)})
    return result.validated_parameters.get(option), result.error_messages


def _text(rng):
    return ''.join(rng.choice(string.ascii_lowercase + string.digits + './-') for _unused in range(rng.randint(1, 12)))


def _value(rng, option):
    """A value of the option's own type (what exact_items takes as it is)."""
    kind, choices = option.get('type', 'str'), option.get('choices')
    if option.get('options') is not None:
        item = _item(rng, option['options'])
        return [item, _item(rng, option['options'])][:rng.randint(1, 2)] if kind == 'list' else item
    if kind == 'list':
        pick = (lambda: rng.choice(choices)) if choices else (lambda: _text(rng))
        return [pick() for _unused in range(rng.randint(0, 3))]
    if choices:
        return rng.choice(choices)
    return {'str': lambda: _text(rng), 'path': lambda: '/' + _text(rng), 'bool': lambda: rng.random() < 0.5,
            'int': lambda: rng.randint(0, 70000), 'dict': lambda: {_text(rng): _text(rng)},
            'raw': lambda: rng.choice([_text(rng), rng.randint(0, 9), [_text(rng)], {'k': _text(rng)}])}[kind]()


def _item(rng, spec):
    item = {}
    for name, option in spec.items():
        if option.get('required') or rng.random() < 0.5:
            # an optional option without a default, sometimes given as null (the role's plans do: mtu)
            null = not option.get('required') and option.get('default') is None and rng.random() < 0.15
            item[name] = None if null else _value(rng, option)
    return item


@pytest.mark.parametrize('option', sorted(SPECS))
def test_plain_items_come_out_as_ansible_makes_them(option):
    check = V.exact_items(SPECS[option]['options'])
    assert check is not None, 'the %s spec uses something exact_items does not know' % option
    rng = random.Random(option)
    for _unused in range(300):
        items = [_item(rng, SPECS[option]['options']) for _count in range(rng.randint(1, 4))]
        expected, errors = ansible(option, items)
        if errors:
            # a combination the kind's own spec refuses (none so far): exact_items must not pass it
            assert None in [check(item) for item in items], (items, errors)
            continue
        assert [check(item) for item in items] == expected, items


# (option, item, change) -> an item exact_items must leave to Ansible's validator
DECLINED = [
    ('namespaces', {'name': 'ns1', 'lo_up': 'yes'}, 'a string where a boolean goes: converted'),
    ('namespaces', {'name': 'ns1', 'state': 'gone'}, 'outside the choices: refused'),
    ('namespaces', {'name': 'ns1', 'colour': 'red'}, 'an unknown key: refused'),
    ('namespaces', {'name': 'ns1', 'state': None}, 'a None where choices are: refused'),
    ('namespaces', {'name': 'ns1', 'lo_up': None}, 'a None where a default goes: the validator decides'),
    ('namespaces', {'name': 1}, 'a number where a string goes: converted'),
    ('pairs', {'name': 'v0', 'mtu': '1500', 'peer': {'name': 'eth0'}}, 'a numeric string where an int goes'),
    ('pairs', {'name': 'v0', 'mtu': True, 'peer': {'name': 'eth0'}}, 'a boolean where an int goes'),
    ('pairs', {'name': 'v0', 'peer': {'name': 'eth0', 'ipv6': 'no'}}, 'a conversion inside a suboption'),
    ('pairs', {'name': 'v0', 'addresses': ['10.0.0.1/24', 7], 'peer': {'name': 'eth0'}}, 'a list element to convert'),
    ('pairs', {'name': 'v0', 'addresses': '10.0.0.1/24', 'peer': {'name': 'eth0'}}, 'a string where a list goes'),
    ('routes', 'not a mapping', 'an item that is not a mapping'),
]


@pytest.mark.parametrize('option, item, why', DECLINED)
def test_items_ansible_would_convert_or_refuse_are_left_to_it(option, item, why):
    assert V.exact_items(SPECS[option]['options'])(item) is None, why


def test_a_spec_with_more_than_it_knows_is_never_taken():
    assert V.exact_items({'name': dict(type='str', aliases=['n'])}) is None
    assert V.exact_items({'name': dict(type='str', required=True)})({}) is None  # Ansible says it is missing
    assert V.exact_items({'when': dict(type='float')}) is None
    assert V.exact_items({'flag': dict(type='bool', default='yes')}) is None  # a default the validator converts
    assert V.exact_items({'tags': dict(type='list', elements='int')}) is None
    assert V.exact_items({'home': dict(type='path')})({'home': '~/x'}) is None
    assert V.exact_items({'home': dict(type='path')})({'home': '/x'}) == {'home': '/x'}


def _params(**lists):
    params = dict((key, None) for key in _network.argument_spec())
    params['definition'] = json.dumps(lists)
    return params


def test_a_definition_mixing_plain_and_converted_items_is_what_ansible_makes_of_it():
    plain = [{'name': 'ns%d' % i} for i in range(5)]
    pairs = [{'name': 'v0', 'mtu': '1400', 'peer': {'name': 'eth0', 'netns': 'ns0', 'ipv6': 'no'}}]
    merged = _network.with_definition(_params(namespaces=plain, pairs=pairs))
    assert merged['namespaces'] == ansible('namespaces', plain)[0]
    assert merged['pairs'] == ansible('pairs', pairs)[0]
    assert merged['pairs'][0]['mtu'] == 1400 and merged['pairs'][0]['peer']['ipv6'] is False
    with pytest.raises(ValidationError, match='state'):
        _network.with_definition(_params(namespaces=plain + [{'name': 'x', 'state': 'gone'}]))
    with pytest.raises(ValidationError, match='definition.namespaces'):
        # what the module refuses before Ansible converts: a list where a name goes
        _network.with_definition(_params(namespaces=[{'name': ['a']}]))
