# -*- coding: utf-8 -*-
# Copyright: linuxnet.netns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
# Do not use this from other collections or standalone plugins/modules!
"""A host's whole network in one call: every kind of object planned into one plan, against one
read of the host, and applied stage by stage (namespaces first, nf_tables and sysctls last).

Each kind keeps its own validation and planner; they see each other's work through the reader
(namespaces the run creates or removes) and the namespace views (links and addresses the run
adds), so a bridge, the veths on it and the routes over them can be declared together, and check
mode predicts all of it on a host where none of it exists yet.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import re
import sys

from ansible_collections.linuxnet.netns.plugins.module_utils import _kinds
from ansible_collections.linuxnet.netns.plugins.module_utils import _run
from ansible_collections.linuxnet.netns.plugins.module_utils import _saved
from ansible_collections.linuxnet.netns.plugins.module_utils import _validate as V
from ansible_collections.linuxnet.netns.plugins.module_utils._common import ValidationError, fail

KINDS = _kinds.KINDS


def argument_spec():
    spec = dict((kind.option, kind.list_spec()) for kind in KINDS)
    spec['purge'] = dict(_run.PURGE_OPTION)
    spec['purge_match'] = dict(type='dict', options=dict(
        (kind.option, dict(type='list', elements='str')) for kind in KINDS if kind.select))
    spec['save'] = dict(_saved.SAVE_OPTION)
    spec['definition'] = dict(type='raw')
    return spec


def _list_specs():
    return dict((kind.option, kind.list_spec()) for kind in KINDS)


class NotExact(Exception):
    """A definition whose items need Ansible's validator (with_definition(exact_only=True))."""


def with_definition(params, exact_only=False):
    """params with the lists of `definition` (a mapping of list options, or a JSON text of one) in
    place: validated by the same argument spec as the options given directly - each converted,
    defaulted and checked as Ansible does - and refused where the task also gives the list itself.

    Why a text: ansible-core (2.19) templates a task's arguments object by object, each element of
    each list copied and checked for templates; ten thousand namespaces' items cost the controller
    some six seconds a task, one JSON text of them a fraction of it.

    exact_only: where Ansible's validator is not at hand (a run without Ansible, _direct), a list it
    would have to convert or refuse raises NotExact instead."""
    given = params['definition']
    if isinstance(given, (str, bytes)):
        try:
            given = json.loads(given)
        except ValueError as exc:
            fail('definition', '%d characters' % len(given), 'is not a JSON text (%s)' % exc,
                 'give a mapping of list options, or a JSON text of one: "{{ my_network | to_json }}"')
    specs = _list_specs()
    if not isinstance(given, dict):
        fail('definition', type(given).__name__, 'is not a mapping', 'give a mapping of the list options (%s)'
             % ', '.join(sorted(specs)))
    unknown = sorted(str(key) for key in given if key not in specs)
    if unknown:
        fail('definition.' + unknown[0], '...', 'is not a list option of this module',
             'a definition holds only the list options: %s' % ', '.join(sorted(specs)))
    both = sorted(key for key in given if params.get(key) is not None)
    if both:
        fail('definition.' + both[0], '...', 'is also given as the option %s' % both[0],
             'give each list once: in the definition or as an option')
    merged = dict(params)
    rest = {}  # the lists Ansible's validator checks: those with an item exact_items() declines
    for key, items in given.items():
        check = V.exact_items(specs[key]['options']) if type(items) is list else None  # pylint: disable=unidiomatic-typecheck
        checked = [check(item) for item in items] if check is not None else [None]
        if None in checked:
            rest[key] = items
        else:
            merged[key] = checked
    if rest:
        if exact_only:
            raise NotExact(sorted(rest))
        from ansible.module_utils.common.arg_spec import ArgumentSpecValidator  # only such a list needs it
        V.unconverted(specs, rest, 'definition.')
        result = ArgumentSpecValidator(dict((key, specs[key]) for key in rest)).validate(rest)
        if result.error_messages:
            fail('definition', '...', 'is invalid: %s' % '; '.join(result.error_messages),
                 'each list takes what the option of the same name takes')
        merged.update(result.validated_parameters)
    return merged


def _name_matcher(patterns, param):
    compiled = []
    for index, pattern in enumerate(patterns):
        try:
            compiled.append(re.compile(pattern))
        except re.error as exc:
            fail('%s[%d]' % (param, index), pattern, 'is not a regular expression (%s)' % exc,
                 'write a Python regular expression; it must match the whole name, as in "lnns[0-9]+"')
    return lambda name: any(regex.fullmatch(name) for regex in compiled)


def _prefix_matcher(prefixes, param):
    networks = []
    for index, text in enumerate(prefixes):
        name = '%s[%d]' % (param, index)
        if text == 'default':
            # as a destination it means 0.0.0.0/0; as a selector that would be every IPv4 route
            fail(name, text, 'is ambiguous here', 'write 0.0.0.0/0 (or ::/0) to select everything of a family')
        networks.append(V.prefix(text, name))
    return lambda network: any(network.version == n.version and network.subnet_of(n) for n in networks)


def purge_selection(params):
    """{option: match} for the kinds a purge acts on: match(name or prefix) -> bool, or None for
    all of the kind's objects. Raises ValidationError for a bad pattern or prefix, and for a kind
    purge_match names whose list the call does not give (a purge acts only on the lists given)."""
    match = params.get('purge_match')
    if match is not None and not params.get('purge'):
        fail('purge_match', match, 'narrows a purge, but purge is false', 'set purge: true, or drop purge_match')
    selection = {}
    for kind in KINDS:
        if kind.purge is None:
            continue
        given = params.get(kind.option) is not None
        if match is not None and match.get(kind.option) is not None:
            param = 'purge_match.%s' % kind.option
            build = _name_matcher if kind.select == 'name' else _prefix_matcher
            matcher = build(match[kind.option], param)
            if not given:
                fail(param, match[kind.option], 'selects %s, but the task gives no %s list' % (
                    kind.option, kind.option), 'add %s: [] (or the %s to keep)' % (kind.option, kind.option))
            selection[kind.option] = matcher
        elif match is None and given:
            selection[kind.option] = None
    return selection


def parse(params):
    """{option: [objects]} for each kind the call gives; raises ValidationError naming the item."""
    parsed = {}
    for kind in KINDS:
        items = params.get(kind.option)
        if items is None:
            continue
        objects = [kind.factory(item, '%s[%d]' % (kind.option, index)) for index, item in enumerate(items)]
        V.unique(objects, lambda obj: obj.key, kind.option)
        parsed[kind.option] = objects
    return parsed


def required_one_of():
    """The options of which a call gives at least one (save alone: a saved plan removed, state
    absent, by a task that declares nothing else)."""
    return [[kind.option for kind in KINDS] + ['save', 'definition']]


def prepare(params, exact_only=False):
    """The planner of a call with these (validated) arguments: planner(plan, reader) -> result.
    Raises ValidationError naming the argument; NotExact (exact_only, see with_definition)."""
    params = with_definition(params, exact_only) if params.get('definition') is not None else params
    parsed = parse(params)
    purge = purge_selection(params) if params.get('purge') or params.get('purge_match') else None
    save = _saved.Save(params['save']) if params.get('save') else None
    if save is not None and save.state == 'present':
        _saved.refuse_persisted_forwarding(parsed)

    def plan_all(plan, reader):
        result = _saved.plan_declared(plan, reader, parsed, purge)
        if save is not None:
            # after the network it describes: written once that is in place (stage FILES)
            result['saved'] = _saved.plan_save(plan, reader, save, parsed, sys.executable)
        return result
    return plan_all


def main():
    # the module glue (AnsibleModule) only here: a run without Ansible (_direct) uses prepare()
    from ansible_collections.linuxnet.netns.plugins.module_utils import _module
    module = _module.new_module(argument_spec(), required_one_of=required_one_of())
    try:
        plan_all = prepare(module.params)
    except ValidationError as exc:
        module.fail_json(msg=str(exc), changed=False)
    _module.run(module, plan_all)
