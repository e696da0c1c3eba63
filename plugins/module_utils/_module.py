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
import errno
import os

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.linuxnet.netns.plugins.module_utils import _apply
from ansible_collections.linuxnet.netns.plugins.module_utils import _codec
from ansible_collections.linuxnet.netns.plugins.module_utils import _kinds
from ansible_collections.linuxnet.netns.plugins.module_utils import _plan as P
from ansible_collections.linuxnet.netns.plugins.module_utils import _state as S
from ansible_collections.linuxnet.netns.plugins.module_utils import _transport
from ansible_collections.linuxnet.netns.plugins.module_utils import _validate as V
from ansible_collections.linuxnet.netns.plugins.module_utils._common import EngineError, ValidationError, fail
from ansible_collections.linuxnet.netns.plugins.module_utils._common import quiet_collector

INSTALL_HINT = ('On Debian/Ubuntu: apt-get install python3-pyroute2; elsewhere: pip install pyroute2 '
                '(0.7.2 or later) for the Python that runs the module')


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


def _fix_param(text):
    # Top-level objects have an empty path: ".name=..." reads better as "name=...".
    return text[1:] if text.startswith('.') else text


def check_privileges(module):
    caps = _transport.capabilities()
    missing = [name for bit, name in ((_transport.CAP_NET_ADMIN, 'CAP_NET_ADMIN'),
                                      (_transport.CAP_SYS_ADMIN, 'CAP_SYS_ADMIN'))
               if not caps & (1 << bit)]
    if missing:
        module.fail_json(msg='%s needs root (or the %s capabilit%s) to change network namespaces, links, '
                             'routes and nf_tables; it runs as uid %d without. Use become: true.' % (
                                 module._name, ' and '.join(missing), 'ies' if len(missing) > 1 else 'y',
                                 os.geteuid()))


# the run lock (flock on /run/netns) lives with the transport: the boot runner (_saved) takes it too
Lock = _transport.Lock


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


PURGE_OPTION = dict(type='bool', default=False)

# past this many objects in a call, a single module whose kind has `compact` returns its objects'
# states that way (port_publish: a line each)
STATES_LISTED = 100


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


def run(module, planner, read_only=False):
    """planner(plan, reader) -> result dict; fills the plan. Everything else happens here."""
    if not _codec.HAS_PYROUTE2:
        # missing_library: what the bridge_network role installs, then runs the module again
        module.fail_json(msg=missing_required_lib('pyroute2') + ' ' + INSTALL_HINT, missing_library='pyroute2',
                         exception=str(_codec.PYROUTE2_IMPORT_ERROR))
    check_privileges(module)
    nofile = _transport.raise_nofile()
    if nofile is not None and nofile < _transport.MIN_NOFILE:
        # refused before anything is read or changed: a run would fail half-way
        module.fail_json(msg='the limit on open files is %d (ulimit -n, hard limit included); this module needs at '
                             'least %d, whatever the number of namespaces: raise it (LimitNOFILE=, ulimit -Hn)'
                             % (nofile, _transport.MIN_NOFILE), changed=False)
    # check mode assumes what earlier tasks of the play make (they made nothing): see Plan.assume
    plan = P.Plan(assume_missing=module.check_mode, diff=bool(module._diff) and not read_only)
    session = None
    try:
        with Lock(exclusive=not (read_only or module.check_mode)):
            session = _transport.Namespaces()
            reader = S.Reader(session, _kinds.comment_parsers())
            result = planner(plan, reader)
            if plan.ops and not module.check_mode:
                _apply.apply_plan(plan, session)
    except EngineError as exc:
        # a refusal, made before anything was applied. Nothing else is caught as one: a ValueError
        # of other origin is a bug, and its traceback is what tells so
        module.fail_json(msg=_fix_param(str(exc)), changed=False)
    except _transport.NamespaceError as exc:
        module.fail_json(msg=str(exc), changed=plan.started, actions=plan.actions if plan.started else [])
    except _transport.NetlinkError as exc:
        module.fail_json(msg='%s' % exc, errno=exc.code, actions=plan.actions,
                         changed=plan.started, hint=_errno_hint(exc.code))
    except OSError as exc:
        if exc.errno == errno.EPERM:
            module.fail_json(msg='%s: permission denied (%s). Run as root or with CAP_NET_ADMIN and '
                                 'CAP_SYS_ADMIN (become: true).' % (module._name, exc))
        raise
    finally:
        if session is not None:
            session.close()
    for warning in plan.warnings:
        module.warn(warning)
    result = dict(result or {})
    result['changed'] = plan.changed
    result['actions'] = plan.actions
    if plan.diff_wanted:
        result['diff'] = plan.diff()
    result['invocation'] = {'module_args': echo(module.params)}
    module.exit_json(**result)


# Ansible echoes a module's arguments back in its result (`invocation`, shown with -vvv). A list of
# a thousand namespaces would come back whole, through every stage of Ansible's result handling -
# about 0.4 s at that size for nothing anyone reads - so long lists come back abbreviated.
ECHO_ITEMS = 10
ECHO_TEXT = 200  # characters of a long text argument echoed back


def echo(params):
    """The arguments as the result's `invocation` shows them: lists cut to ECHO_ITEMS items, long
    texts (a network's definition) to a line saying how long they are."""
    shown = {}
    for name, value in params.items():
        if isinstance(value, list) and len(value) > ECHO_ITEMS:
            value = value[:ECHO_ITEMS] + ['(%d more items, not echoed back)' % (len(value) - ECHO_ITEMS)]
        elif isinstance(value, str) and len(value) > ECHO_TEXT:
            value = value[:ECHO_TEXT] + '... (%d characters in all, not echoed back)' % len(value)
        shown[name] = value
    return shown


def _errno_hint(code):
    return {
        errno.EEXIST: 'something of that name appeared meanwhile; re-run to converge',
        errno.EINTR: 'links or addresses kept changing while they were read; re-run once they settle',
        errno.EPERM: 'needs root or CAP_NET_ADMIN',
        errno.EOPNOTSUPP: 'the kernel lacks the feature (module not loaded?)',
    }.get(code, '')
