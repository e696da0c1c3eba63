# -*- coding: utf-8 -*-
# Copyright: linuxnet.netns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The bridge_network role's work on one host, in one task per module run: `step: read` runs
netns_info and works out the host's uplink, underlay address and current subnet; `step: apply`
plans the host's network (or its teardown), refuses a plan with errors before anything changes and
runs linuxnet.netns.network with it. Where a module run finds pyroute2 missing (install_deps), the
task installs it and runs the module again.

Each task of a role costs every host a round of the play - a process forked for it on the
controller, its templates compiled again there, the play waiting for the slowest host - whether it
does anything or is skipped. The role's read, its note of the uplink and the pyroute2 fallback were
four tasks; the plan, the refusal, the apply and the fallback four more. Here they are two: what the
role needs between them is the fleet-wide allocation, once for the play (a run_once task)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import json
import os

import yaml

from ansible import constants as C
from ansible.errors import AnsibleActionFail
from ansible.executor.interpreter_discovery import discover_interpreter
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.common.text.converters import to_bytes
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.linuxnet.netns.plugins.filter.bridge_network import (
    bridge_network_local, bridge_network_plan, bridge_network_teardown)

display = Display()

STEPS = ('read', 'apply')
PACKAGES = {'Debian': 'python3-pyroute2'}  # by OS family: the distributions' own packages
# the network module's lists, by the plan's names for them
LISTS = (('namespaces', 'namespaces'), ('bridges', 'bridges'), ('pairs', 'pairs'), ('routes', 'routes'),
         ('masquerade', 'nat'), ('publish', 'publish'), ('services', 'services'), ('dns', 'dns'),
         ('forwarding', 'forwarding'))


# the role's variables, as its meta/argument_specs.yml declares them (every entry point the same)
SPECS = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, os.pardir, 'roles', 'bridge_network',
                     'meta', 'argument_specs.yml')
_OPTIONS = []


def role_options():
    """The options of the role's entry point `main`, read once per process."""
    if not _OPTIONS:
        with open(SPECS) as handle:
            specs = yaml.load(handle, Loader=getattr(yaml, 'CSafeLoader', yaml.SafeLoader))
        _OPTIONS.append(specs['argument_specs']['main']['options'])
    return _OPTIONS[0]


# --- the engine run without Ansible's module wrapper (module_utils/_direct.py) ----------------------
MODULE_UTILS = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, 'module_utils')
PACKAGE = 'ansible_collections.linuxnet.netns.plugins.module_utils'
# the engine files a direct run imports: all but the module glue, which imports Ansible
NOT_SENT = ('_module',)
_SOURCES = {}

# What the host's Python reads on stdin, as it reads a pipelined module: the package made of the
# sources sent (their code from the host's cache, _bytecode), then _direct.main with the request.
BOOTSTRAP = '''import sys
# as the module wrapper does, first: nothing is imported from the directory the run starts in
sys.path[:] = [entry for entry in sys.path if entry not in ('', '.')]
import base64, json, types


def _linuxnet_netns_direct(data):
    request = json.loads(base64.b64decode(data).decode('utf-8'))
    if sys.version_info < (3, 7):
        print(json.dumps({'linuxnet_netns_declined': 'Python %%d.%%d' %% sys.version_info[:2]}))
        return
    package = request['package']
    parts = package.split('.')
    for end in range(1, len(parts) + 1):
        module = types.ModuleType('.'.join(parts[:end]))
        module.__path__ = []
        sys.modules[module.__name__] = module
        if end > 1:
            setattr(sys.modules['.'.join(parts[:end - 1])], parts[end - 1], module)
    sources = request.pop('sources')
    bytecode = types.ModuleType(package + '._bytecode')
    sys.modules[bytecode.__name__] = bytecode
    exec(compile(sources['_bytecode'], package.replace('.', '/') + '/_bytecode.py', 'exec'), bytecode.__dict__)
    bytecode.SourceFinder(sources, bytecode.cache_dir()).install(sys.modules[package])
    __import__(package + '._direct', fromlist=['main']).main(request)


_linuxnet_netns_direct(%r)
'''


# the modules a direct run can be (module_utils/_direct.py: RUNS, by their short names)
DIRECT = frozenset(('linuxnet.netns.netns_info', 'linuxnet.netns.network'))
# the key of a direct run's result that means "run the module instead" (_direct.DECLINED)
DECLINED = 'linuxnet_netns_declined'


def engine_sources():
    """{name: source} of the engine files a direct run imports, read once per process."""
    if not _SOURCES:
        for entry in sorted(os.listdir(MODULE_UTILS)):
            name, ext = os.path.splitext(entry)
            if ext == '.py' and name.startswith('_') and name not in NOT_SENT:
                with open(os.path.join(MODULE_UTILS, entry), 'rb') as handle:
                    _SOURCES[name] = handle.read().decode('utf-8')
    return _SOURCES


def direct_script(module, args, check_mode, diff):
    """The script a direct run of `module` (netns_info, network) feeds the host's Python."""
    request = {'package': PACKAGE, 'module': module, 'name': 'linuxnet.netns.' + module, 'args': args,
               'check_mode': bool(check_mode), 'diff': bool(diff), 'sources': engine_sources()}
    data = base64.b64encode(json.dumps(request, separators=(',', ':')).encode('utf-8')).decode('ascii')
    return BOOTSTRAP % data


def direct_result(res):
    """A direct run's result from its low-level one (rc, stdout, stderr): the JSON line it printed,
    or a failure as Ansible words a module that returned none."""
    out = res.get('stdout') or ''
    for line in out.splitlines():
        if line.startswith('{'):
            try:
                result = json.loads(line)
            except ValueError:
                break
            if isinstance(result, dict):
                return result
            break
    return {'failed': True, 'rc': res.get('rc'), 'module_stdout': out, 'module_stderr': res.get('stderr') or '',
            'msg': 'MODULE FAILURE: the engine run on the host (without the module wrapper) returned no result; '
                   'see stdout/stderr for the exact error (bridge_network_direct: false runs the module instead)'}


def read_args(settings):
    """netns_info's options for the role's read: the host alone, whatever the number of namespaces (the
    plan needs nothing from inside them); no pairing, port lists or (in bridge mode) ports - a thousand
    of them would come back for nothing; no nf_tables rules (the network module finds the role's stale
    MASQUERADE rules itself, purge_match) and no saved plans (the network task writes the role's)."""
    return {'netns_details': False, 'veth_pairs': False, 'bridges': False,
            'bridge_ports': settings['mode'] != 'bridge', 'nat': False, 'saved_plans': 'none'}


def network_args(plan, save):
    """linuxnet.netns.network's options for a plan. The lists go as one JSON text (`definition`):
    Ansible walks a module's arguments element by element on their way to the host, and one text is
    one string to it."""
    return {'definition': json.dumps(dict((option, plan[key]) for option, key in LISTS), separators=(',', ':')),
            'purge': plan['purge'], 'purge_match': plan['purge_match'], 'save': save}


class ActionModule(ActionBase):

    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(('step', 'settings', 'install_deps', 'inputs', 'save', 'state', 'validate', 'direct'))

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp  # not used
        args = self._task.args
        step = args.get('step')
        if step not in STEPS:
            raise AnsibleActionFail('step must be one of %s, not %r' % (', '.join(STEPS), step))
        if boolean(args.get('validate', False), strict=False):
            errors = self._validate(task_vars)
            if errors:
                return dict(result, failed=True, changed=False, argument_errors=errors,
                            msg='Validation of arguments failed:\n%s' % '\n'.join(errors))
        settings = args.get('settings')
        if not isinstance(settings, dict):
            raise AnsibleActionFail('settings must be the role\'s _bridge_network_settings (a dict), not %r' % (settings,))
        try:
            # as the role's variable comes: a bool, or a string from the command line (-e ...=false)
            self._install_deps = boolean(args.get('install_deps', False), strict=True)
        except TypeError as exc:
            raise AnsibleActionFail('install_deps: %s' % exc)
        self._deps = None
        self._direct_discovered = None
        try:
            self._direct = boolean(args.get('direct', False), strict=True)
        except TypeError as exc:
            raise AnsibleActionFail('direct: %s' % exc)
        if args.get('state') not in (None, settings.get('state')):
            # the entry point `teardown` (state: absent) with bridge_network_state present, say
            raise AnsibleActionFail('this entry point of the role is for bridge_network_state=%s, not %r'
                                    % (args['state'], settings.get('state')))
        if step == 'read':
            result.update(self._read(settings, task_vars))
        else:
            result.update(self._apply(settings, args.get('inputs') or {}, args.get('save'), task_vars))
        if self._deps is not None:
            result['deps'] = self._deps
            result['changed'] = result.get('changed', False) or self._deps['changed']
        return result

    def _validate(self, task_vars):
        """The role's variables checked against its argument spec, as Ansible's own validation task
        does (ansible.builtin.validate_argument_spec, which the role's playbooks turn off with
        rolespec_validate: false): a task per host less, the same errors, before anything is read.
        Returns the errors."""
        options = role_options()
        given = self._templar.template(dict((name, task_vars[name]) for name in options if name in task_vars))
        return ArgumentSpecValidator(options).validate(given).error_messages

    def _read(self, settings, task_vars):
        info = self._module('linuxnet.netns.netns_info', read_args(settings), task_vars)
        if info.get('failed'):
            return info
        local = bridge_network_local(info, settings)
        # a fact, kept by a fact cache: hosts outside a later play keep their subnet and next hop known;
        # beside the module run's own (the interpreter Ansible discovered for the host, if it did)
        facts = dict(info.get('ansible_facts') or {}, _bridge_network_local=local)
        return dict(info, local=local, ansible_facts=facts, _ansible_facts_cacheable=True)

    def _apply(self, settings, inputs, save, task_vars):
        if settings['state'] == 'present':
            info = task_vars.get('_bridge_network_info')
            if not isinstance(info, dict) or info.get('failed') or 'local' not in info:
                raise AnsibleActionFail('the apply needs the role\'s read of this host (_bridge_network_info): '
                                        'run the role from its start, not from this task')
            plan = bridge_network_plan(info, dict(settings, local=info['local'], **inputs))
        else:
            plan = bridge_network_teardown(dict(settings, **inputs))
        if plan['errors']:
            # before anything changed
            return {'failed': True, 'changed': False, 'msg': '; '.join(plan['errors']), 'warnings': plan['warnings']}
        applied = self._module('linuxnet.netns.network', network_args(plan, save), task_vars)
        applied['warnings'] = list(plan['warnings']) + list(applied.get('warnings') or [])
        return applied

    def _module(self, name, module_args, task_vars):
        """The module's result; where pyroute2 is missing (and install_deps), the package installed and
        the module run again - whose failure then says what was tried."""
        result = self._engine(name, module_args, task_vars)
        if not (result.get('failed') and result.get('missing_library') == 'pyroute2' and self._install_deps):
            return result
        installed = self._install_pyroute2(task_vars)
        if installed.get('failed'):
            return installed
        again = self._engine(name, module_args, task_vars)
        if again.get('failed') and again.get('missing_library') == 'pyroute2':
            again['msg'] = '%s (bridge_network_install_deps: %s)' % (again.get('msg'), self._deps['msg'])
        return again

    def _engine(self, name, module_args, task_vars):
        """One run of the module `name`: without Ansible's module wrapper where the task allows it
        (option direct, _direct_run), else as the module. `engine_run` in the result says which."""
        result = None
        if self._direct and name in DIRECT:
            result = self._direct_run(name.rpartition('.')[2], module_args, task_vars)
            if result is not None:
                result['engine_run'] = 'direct'
        if result is None:
            result = self._execute_module(module_name=name, module_args=module_args, task_vars=task_vars)
            result['engine_run'] = 'module'
        if self._direct_discovered is not None and not result.get('failed'):
            # discovered here, as a module run returns it: the host's later tasks use it
            result.setdefault('ansible_facts', {})['discovered_interpreter_python'] = self._direct_discovered
        return result

    def _direct_run(self, module, args, task_vars):
        """The engine run as `module` on the host without the module wrapper (module_utils/_direct.py):
        its script fed to the host's Python as Ansible feeds a pipelined module, through the task's
        connection, become and environment. None where it cannot run so - where Ansible would not
        pipeline a module (pipelining off, keep_remote_files, a become method that cannot), a
        delegated or async task, no Python known for the host, or arguments the run declines -
        and the module runs instead."""
        why = self._direct_unfit()
        interpreter = None
        if why is None:
            interpreter, why = self._direct_interpreter(task_vars)
        if why is not None:
            display.vvv('linuxnet.netns: %s runs as a module (%s)' % (module, why), host=self._play_context.remote_addr)
            return None
        display.vvv('linuxnet.netns: %s runs without the module wrapper (%s)' % (module, interpreter),
                    host=self._play_context.remote_addr)
        cmd = self._connection._shell.build_module_command(self._compute_environment_string(), '#!' + interpreter, '')
        res = self._low_level_execute_command(cmd.strip(), sudoable=True,
                                              in_data=to_bytes(direct_script(module, args, self._task.check_mode,
                                                                             self._task.diff)))
        if res.get('rc') in (126, 127) and not (res.get('stdout') or '').strip():
            # the interpreter did not start: the module run says so in Ansible's words
            display.vvv('linuxnet.netns: %s did not start (%s): runs as a module' % (interpreter, res.get('stderr')))
            return None
        result = direct_result(res)
        if DECLINED in result:
            display.vvv('linuxnet.netns: %s runs as a module (declined: %s)' % (module, result[DECLINED]))
            return None
        warnings = list(getattr(self, '_discovery_warnings', None) or [])  # ansible-core < 2.19 keeps them here
        if warnings:
            result['warnings'] = warnings + list(result.get('warnings') or [])
        return result

    def _direct_unfit(self):
        """Why this task's engine run cannot go without the module wrapper, or None."""
        if self._task.delegate_to:
            return 'a delegated task'
        if self._task.async_val:
            return 'an async task'
        if getattr(self._connection, '_remote_is_local', False):
            return 'the connection runs modules on the controller'
        if getattr(self._connection._shell, 'SHELL_FAMILY', None) != 'sh':
            return 'not a POSIX shell'
        pipelining = getattr(self._connection, 'is_pipelining_enabled', None)
        if pipelining is None or not pipelining():
            return 'Ansible would not pipeline a module here: pipelining off, keep_remote_files, or the become method'
        return None

    def _direct_interpreter(self, task_vars):
        """(the host's Python, None), or (None, why not): the interpreter setting
        (ansible_python_interpreter, interpreter_python), or with auto the one discovered - by an
        earlier task, or now, as a module run discovers it."""
        try:
            configured = C.config.get_config_value('INTERPRETER_PYTHON', variables=task_vars)
            configured = (self._templar.template(configured) if configured else '') or ''
        except Exception as exc:  # pylint: disable=broad-except
            return None, 'the interpreter setting: %s' % exc
        configured = str(configured).strip()
        if configured and not configured.startswith('auto'):
            return configured, None
        facts = task_vars.get('ansible_facts') or {}
        if facts.get('discovered_interpreter_python'):
            return str(facts['discovered_interpreter_python']), None
        try:
            found = discover_interpreter(action=self, interpreter_name='python', discovery_mode=configured or 'auto',
                                         task_vars=task_vars)
        except Exception as exc:  # pylint: disable=broad-except
            return None, 'interpreter discovery: %s' % exc
        if not found:
            return None, 'no Python found on the host'
        # kept as a module run keeps it: a module run after this one (declined, or the pyroute2
        # install's) does not discover it again
        self._direct_discovered = found
        facts = task_vars.get('ansible_facts')
        if isinstance(facts, dict):
            facts['discovered_interpreter_python'] = found
        return str(found), None

    def _install_pyroute2(self, task_vars):
        family = (task_vars.get('ansible_facts') or {}).get('os_family')
        if not family:
            gathered = self._execute_module(module_name='ansible.builtin.setup', module_args={'gather_subset': ['min']},
                                            task_vars=task_vars)
            if gathered.get('failed'):
                return dict(gathered, msg='gathering the OS family to install pyroute2: %s' % gathered.get('msg'))
            family = (gathered.get('ansible_facts') or {}).get('ansible_os_family')
        package = PACKAGES.get(family)
        self._deps = {'os_family': family, 'package': package, 'changed': False}
        if package is None:
            self._deps['msg'] = 'no package known for the OS family %s: install pyroute2 for the host\'s Python' % family
            return {}
        installed = self._execute_module(module_name='ansible.builtin.apt', module_args={'name': package, 'state': 'present'},
                                         task_vars=task_vars)
        if installed.get('failed'):
            return dict(installed, msg='installing %s for pyroute2: %s' % (package, installed.get('msg')))
        self._deps['changed'] = bool(installed.get('changed'))
        self._deps['msg'] = '%s %s' % (package, 'was there already' if not installed.get('changed') else
                                       'would be installed (check mode)' if self._task.check_mode else 'installed')
        return {}
