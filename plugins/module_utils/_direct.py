# -*- coding: utf-8 -*-
# Copyright: linuxnet.netns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
# Do not use this from other collections or standalone plugins/modules!
"""A module run without Ansible's module wrapper: the engine run on the host as `netns_info` or
`network` would run it, sent by the bridge_network role's action over the task's connection
(plugins/action/bridge_network_host.py, which writes the script that imports this file).

Why: a module run starts Ansible's wrapper (AnsiballZ), which imports Ansible's own module_utils -
compiled from its zip on every run, before any code of ours - and AnsibleModule: on a 2-core host
0.15-0.2 s of CPU a run, what a whole `ping` costs; the engine itself needs 10-50 ms for a read of
a host or a re-run of fifty namespaces. The controller sends the engine's sources (the host keeps
their compiled code: _bytecode), the arguments and the run's flags on the interpreter's stdin, as
Ansible sends a module when it pipelines; the result comes back as a module's would.

Nothing here imports Ansible. The arguments are checked as AnsibleModule would check them only
where that is exact (_validate.exact_items: every value already of its type, nothing to convert
or refuse); anything else - and a Python older than 3.6 - is declined, and the action runs the
module itself, whose validation then speaks. The result is the module's, key for key."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import sys
import traceback

from ansible_collections.linuxnet.netns.plugins.module_utils import _run
from ansible_collections.linuxnet.netns.plugins.module_utils import _validate as V
from ansible_collections.linuxnet.netns.plugins.module_utils._common import ValidationError, quiet_collector

# what the controller reads: this key in a result means "not run here, run the module instead"
DECLINED = 'linuxnet_netns_declined'


class Declined(Exception):
    """Arguments this runner cannot check as Ansible would: the module must run instead."""


def checked(spec, args, required_one_of=()):
    """The arguments as AnsibleModule's validation leaves them - the options given, each exactly of
    its type (V.exact_items), and every other option at its default (or None) - or Declined."""
    unknown = sorted(name for name in args if name not in spec)
    if unknown:
        raise Declined('unknown option %s' % ', '.join(unknown))
    given = dict(args)
    missing = sorted(name for name, option in spec.items() if option.get('required') and name not in given)
    if missing:
        raise Declined('missing required arguments: %s' % ', '.join(missing))
    check = V.exact_items(dict((name, spec[name]) for name in given))
    params = check(given) if check is not None else None
    if params is None:
        raise Declined('arguments Ansible would convert or refuse')
    for group in required_one_of:
        if all(params.get(name) is None for name in group):
            raise Declined('none of %s' % ', '.join(group))
    full = dict((name, option.get('default')) for name, option in spec.items())
    full.update(params)
    return full


def _info_params(args):
    from ansible_collections.linuxnet.netns.plugins.module_utils import _info
    return checked(_info.ARGUMENT_SPEC, args)


def _info_read(params):
    from ansible_collections.linuxnet.netns.plugins.module_utils import _info
    return _info.prepare(params)


def _network_params(args):
    from ansible_collections.linuxnet.netns.plugins.module_utils import _network as N
    return checked(N.argument_spec(), args, N.required_one_of())


def _network_plan(params):
    from ansible_collections.linuxnet.netns.plugins.module_utils import _network as N
    try:
        return N.prepare(params, exact_only=True)
    except N.NotExact as exc:
        raise Declined('definition lists Ansible would convert or refuse: %s' % ', '.join(exc.args[0]))


# module: (its arguments checked, its planner, whether it only reads)
RUNS = {'netns_info': (_info_params, _info_read, True), 'network': (_network_params, _network_plan, False)}


class Runner(object):
    """What _run.run asks of an AnsibleModule, for one run: its validated params, the check and
    diff flags, warnings, and the result written as the module's JSON on stdout."""

    def __init__(self, name, check_mode, diff, out=None):
        self._name, self.check_mode, self._diff = name, check_mode, diff
        self.params = {}
        self.warnings = []
        self.out = out or sys.stdout

    def warn(self, warning):
        self.warnings.append(warning)

    def _write(self, result):
        if self.warnings:
            result['warnings'] = list(self.warnings)
        self.out.write(json.dumps(result, default=_plain) + '\n')
        self.out.flush()

    def exit_json(self, **result):
        self._write(result)
        raise SystemExit(0)  # as AnsibleModule.exit_json ends the run

    def fail_json(self, msg, **result):
        result['failed'] = True
        result['msg'] = msg
        result.setdefault('invocation', {'module_args': _run.echo(self.params)})
        self._write(result)
        raise SystemExit(1)  # as AnsibleModule.fail_json ends the run


def _plain(value):
    """json.dumps for what a result may hold besides JSON's own types."""
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)


def main(request, out=None):
    """Run request['module'] with request['args'] (check_mode, diff): its result on `out`, then
    exit as the module would (1: failed). Declined: {DECLINED: why}, exit 0."""
    quiet_collector()
    # named as Ansible names a module run (its messages say "linuxnet.netns.network needs root ...")
    runner = Runner(request.get('name', request['module']), bool(request.get('check_mode')), bool(request.get('diff')),
                    out)
    params, prepare, read_only = RUNS[request['module']]
    try:
        runner.params = params(request['args'])
        planner = prepare(runner.params)
    except Declined as exc:
        runner.exit_json(**{DECLINED: str(exc)})
    except ValidationError as exc:
        # as each module words it: netns_info's failure has no `changed`
        runner.fail_json(msg=str(exc), **({} if read_only else {'changed': False}))
    try:
        _run.run(runner, planner, read_only)
    except Exception as exc:  # pylint: disable=broad-except
        # what Ansible's module loader returns for an exception no code of the module caught
        runner.fail_json(msg='%s: %s' % (type(exc).__name__, exc), exception=traceback.format_exc())
