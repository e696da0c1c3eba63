# -*- coding: utf-8 -*-
# Copyright: linuxnet.netns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
# Do not use this from other collections or standalone plugins/modules!
"""What every module does around the engine: argument specs with a single and a list form,
validation before anything is touched, privileges, the lock, one plan for check/diff/real runs."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.linuxnet.netns.plugins.module_utils import _run
from ansible_collections.linuxnet.netns.plugins.module_utils import _validate as V
from ansible_collections.linuxnet.netns.plugins.module_utils._common import ValidationError, fail
from ansible_collections.linuxnet.netns.plugins.module_utils._common import quiet_collector
# the run itself imports no Ansible (_run); these names are the single modules' and the tests'
from ansible_collections.linuxnet.netns.plugins.module_utils._run import (  # noqa: F401 pylint: disable=unused-import
    INSTALL_HINT, PURGE_OPTION, STATES_LISTED, _fix_param, echo)


def list_form(options, list_name, identity):
    """Argument spec taking one object at the top level or many under `list_name`.

    `options` are the object's suboptions; `identity` is the option that names an object (it is
    the one that cannot be combined with the list).
    """
    spec = copy.deepcopy(options)
    spec[list_name] = dict(type='list', elements='dict', options=copy.deepcopy(options))
    if identity is None:
        # objects without a name of their own (a route, a namespace's settings): the list form is
        # used when given, the top-level options otherwise
        return spec, {}
    return spec, dict(mutually_exclusive=[(identity, list_name)], required_one_of=[(identity, list_name)])


def items_of(module, options, list_name):
    # an empty list is the list form too: it declares none (with purge, it removes all of ours)
    if module.params.get(list_name) is not None:
        stray = sorted(name for name, option in options.items()
                       if module.params.get(name) is not None and module.params[name] != option.get('default'))
        if stray:
            fail(stray[0], module.params[stray[0]], 'cannot be combined with %s' % list_name,
                 'put it into each item of %s' % list_name)
        return list_name, module.params[list_name]
    return None, [dict((name, module.params.get(name)) for name in options)]


def parse(module, options, list_name, factory):
    """Validate every object; refuse duplicates. Raises ValidationError with the parameter's path."""
    list_param, items = items_of(module, options, list_name)
    objects = []
    for index, item in enumerate(items):
        objects.append(factory(item, '%s[%d]' % (list_param, index) if list_param else ''))
    V.unique(objects, lambda obj: obj.key, list_param or list_name)
    return objects


def run(module, planner, read_only=False):
    """_run.run for a module run: a missing library worded by Ansible (missing_required_lib)."""
    _run.run(module, planner, read_only, missing_required_lib)


class _Module(AnsibleModule):
    """AnsibleModule whose failures echo the arguments as its results do (echo(): long lists
    abbreviated) - a refused call of ten thousand items would otherwise send them all back."""

    def _load_params(self):
        super(_Module, self)._load_params()
        # the arguments as given, for V.unconverted: validation converts a copy of them, and puts
        # each top-level value of it into params in place of the given one, which stays as it was.
        # (Asking _load_params() again would decode and copy all the arguments once more: a
        # thousand items cost some 20 ms.)
        self.given_params = dict(self.params)

    def _log_invocation(self):
        # Ansible logs every call to syslog or the journal with all its arguments, each list as
        # one string it then scans for passwords character by character: at ten thousand items,
        # 0.08 s of a run for a log line nobody reads whole. The line names the arguments as the
        # result's `invocation` does (echo(): long lists abbreviated).
        params = self.params
        self.params = echo(params)
        try:
            super(_Module, self)._log_invocation()
        finally:
            self.params = params

    def fail_json(self, msg, **kwargs):
        kwargs.setdefault('invocation', {'module_args': echo(self.params)})
        super(_Module, self).fail_json(msg=msg, **kwargs)


def new_module(argument_spec, **kwargs):
    quiet_collector()  # before Ansible validates the arguments: at ten thousand items, 40000 dicts
    module = _Module(argument_spec=argument_spec, supports_check_mode=True, **kwargs)
    try:
        # the arguments as given: module.params holds them converted already
        V.unconverted(argument_spec, module.given_params)
    except ValidationError as exc:
        module.fail_json(msg=str(exc), changed=False)
    return module


def main(kind):
    """The whole of a single module that manages one kind of object (a _kind.Kind): spec,
    validation, plan, apply, result. With a purge, the module takes a top-level `purge` option that
    adds (state absent) what this collection made and the call does not declare."""
    spec, list_constraints = list_form(kind.options, kind.list_option, kind.identity)
    if kind.purge is not None:
        spec['purge'] = dict(PURGE_OPTION)
    module = new_module(spec, **list_constraints)
    try:
        objects = parse(module, kind.options, kind.list_option, kind.factory)
    except ValidationError as exc:
        module.fail_json(msg=_fix_param(str(exc)), changed=False)

    def plan_all(plan, reader):
        extra = kind.purge(reader, objects) if kind.purge is not None and module.params.get('purge') else []
        states = kind.planner(plan, reader, objects + extra)
        if kind.compact is not None and len(states) > STATES_LISTED:
            result = kind.compact(states)
        else:
            result = {kind.list_option: states}
        if kind.purge is not None:
            result['purged'] = [obj.describe() for obj in extra]
        return result

    run(module, plan_all)
