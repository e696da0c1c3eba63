# -*- coding: utf-8 -*-
# Copyright: linuxnet.netns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
# Do not use this from other collections or standalone plugins/modules!
"""One run of the engine around a planner: privileges, the limit on open files, the lock, one plan
for check/diff/real runs, the errors as a module reports them, the result. Imports no Ansible: a
module run (_module) and a run without Ansible's module wrapper (_direct) share it."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import os
import socket
import sys

from ansible_collections.linuxnet.netns.plugins.module_utils import _apply
from ansible_collections.linuxnet.netns.plugins.module_utils import _codec
from ansible_collections.linuxnet.netns.plugins.module_utils import _kinds
from ansible_collections.linuxnet.netns.plugins.module_utils import _plan as P
from ansible_collections.linuxnet.netns.plugins.module_utils import _state as S
from ansible_collections.linuxnet.netns.plugins.module_utils import _transport
from ansible_collections.linuxnet.netns.plugins.module_utils._common import EngineError

INSTALL_HINT = ('On Debian/Ubuntu: apt-get install python3-pyroute2; elsewhere: pip install pyroute2 '
                '(0.7.2 or later) for the Python that runs the module')


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


PURGE_OPTION = dict(type='bool', default=False)

# past this many objects in a call, a single module whose kind has `compact` returns its objects'
# states that way (port_publish: a line each)
STATES_LISTED = 100


def missing_library(name):
    """What a run without `name` says (Ansible's missing_required_lib words it for a module run)."""
    return ('Failed to import the required Python library (%s) on %s\'s Python %s. Please read the module '
            'documentation and install it in the appropriate location. If the required library is installed, but '
            'Ansible is using the wrong Python interpreter, please consult the documentation on '
            'ansible_python_interpreter' % (name, socket.gethostname(), sys.executable))


def run(module, planner, read_only=False, missing=missing_library):
    """planner(plan, reader) -> result dict; fills the plan. Everything else happens here. `module`:
    an AnsibleModule (_module.run), or what stands in for one where the engine runs without Ansible
    (_direct.Runner): params, check_mode, _diff, _name, warn, fail_json, exit_json. `missing`: the
    words for a missing library."""
    if not _codec.HAS_PYROUTE2:
        # missing_library: what the bridge_network role installs, then runs the module again
        module.fail_json(msg=missing('pyroute2') + ' ' + INSTALL_HINT, missing_library='pyroute2',
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
