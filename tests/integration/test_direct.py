"""The engine run without Ansible's module wrapper (module_utils/_direct.py), as the role's action
sends it (plugins/action/bridge_network_host.py: direct_script): the script fed to the host's Python
on stdin gives what the module gives, key for key, against the real kernel; it declines what it
cannot check exactly as the module would, and keeps the engine's compiled code like a module run."""
import json
import os
import subprocess

import pytest

from ansible_collections.linuxnet.netns.plugins.action import bridge_network_host as action
from ansible_collections.linuxnet.netns.plugins.module_utils import _direct

IN_SANDBOX = os.environ.get('LINUXNET_SANDBOX') == '1'
pytestmark = pytest.mark.skipif(not IN_SANDBOX, reason='integration tests run only inside tests/sandbox.sh')


def direct(host, module, args, check=False, diff=True, cache=None):
    """The script's result, run in the host's namespace with its Python; (result, rc, stderr)."""
    env = dict(os.environ, LINUXNET_NETNS_PYCACHE=str(cache) if cache else '0')
    env.pop('PYTHONPATH', None)  # nothing of the collection but what the script brings
    out = subprocess.run(['nsenter', '--net=/run/netns/' + host.name, host.python, '-'],
                         input=action.direct_script(module, args, check, diff), capture_output=True, text=True,
                         env=env, check=False)
    result = action.direct_result({'rc': out.returncode, 'stdout': out.stdout, 'stderr': out.stderr})
    return result, out.returncode, out.stderr


def network(host):
    a, b = host.ns('a'), host.ns('b')
    return {'namespaces': [{'name': a}, {'name': b}],
            'pairs': [{'name': host.ns('va'), 'addresses': ['10.77.0.1/30'], 'mtu': None,
                       'peer': {'name': 'eth0', 'netns': a, 'addresses': ['10.77.0.2/30']}}],
            'routes': [{'netns': a, 'dest': 'default', 'gateway': '10.77.0.1'}],
            'purge': True, 'purge_match': {'namespaces': [host.prefix + '-.*']}}


def test_a_direct_run_gives_what_the_module_gives(host):
    args = network(host)
    planned, rc, err = direct(host, 'network', args, check=True)
    assert rc == 0 and not planned.get('failed'), (planned, err)
    assert planned == host.module('network', args, check=True)  # check mode: the same plan, word for word

    made, rc, _err = direct(host, 'network', args)
    assert rc == 0 and made['changed'] and made['actions'] == planned['actions']
    assert host.ns('a') in host.netns_list() and '10.77.0.1/30' in host.sh('ip -br addr show ' + host.ns('va'))
    # what one made, the other finds in place
    assert host.module('network', args)['changed'] is False
    again, rc, _err = direct(host, 'network', args)
    assert rc == 0 and again['changed'] is False and again['actions'] == []

    query = {'netns': [host.ns('a')], 'saved_plans': 'none'}
    seen, rc, _err = direct(host, 'netns_info', query)
    assert rc == 0 and seen == host.module('netns_info', query)
    assert seen['namespaces'] == [host.ns('a')]

    gone, rc, _err = direct(host, 'network', {'namespaces': [], 'pairs': [], 'purge': True,
                                              'purge_match': {'namespaces': [host.prefix + '-.*'],
                                                              'pairs': [host.ns('v') + '.*']}})
    assert rc == 0 and gone['changed'] and host.netns_list() == []


def test_a_refusal_fails_as_the_module_fails_and_changes_nothing(host):
    args = {'namespaces': [{'name': host.ns('a')}],
            'routes': [{'netns': host.ns('a'), 'dest': '10.9.0.0/33', 'gateway': '10.77.0.1'}]}
    refused, rc, _err = direct(host, 'network', args)
    assert rc == 1 and refused['failed'] and refused['changed'] is False
    assert refused == host.module('network', args)
    assert host.netns_list() == []


@pytest.mark.parametrize('module, args, why', [
    ('network', {'namespaces': [{'name': 'x'}], 'purge': 'yes'}, 'convert or refuse'),
    ('network', {'definition': '{"namespaces": [{"name": "x", "lo_up": "no"}]}'}, 'definition lists'),
    ('network', {'colour': 'red'}, 'unknown option colour'),
    ('network', {}, 'none of'),
    ('netns_info', {'saved_plans': 'all'}, 'arguments Ansible would convert or refuse'),
])
def test_what_the_module_would_convert_or_refuse_is_declined_untouched(host, module, args, why):
    declined, rc, err = direct(host, module, args)
    assert rc == 0 and why in declined[_direct.DECLINED], (declined, err)
    assert host.netns_list() == []


def test_the_engine_code_is_kept_compiled_for_the_next_run(host, tmp_path):
    cache = tmp_path / 'pycache'
    cache.mkdir(mode=0o700)
    query = {'netns': [], 'saved_plans': 'none'}
    first, rc, _err = direct(host, 'netns_info', query, cache=cache)
    kept = sorted(os.listdir(cache))
    written = dict((name, os.stat(cache / name).st_ino) for name in kept)
    assert rc == 0 and not first.get('failed')
    assert {'_direct', '_info', '_run', '_transport', '_codec'} <= set(name.split('.')[0] for name in kept), kept
    assert '_module' not in set(name.split('.')[0] for name in kept)  # the module glue is not even sent
    second, rc, _err = direct(host, 'netns_info', query, cache=cache)
    assert rc == 0 and second == first and sorted(os.listdir(cache)) == kept
    # read back, not written again (a new file would be a new inode: they are renamed into place)
    assert dict((name, os.stat(cache / name).st_ino) for name in kept) == written


def test_the_script_carries_every_engine_file_but_the_module_glue():
    sent = action.engine_sources()
    here = os.path.join(os.path.dirname(action.__file__), '..', 'module_utils')
    files = sorted(name[:-3] for name in os.listdir(here) if name.endswith('.py') and name.startswith('_'))
    assert sorted(sent) == [name for name in files if name != '_module']
    assert action.DECLINED == _direct.DECLINED
    # the request travels as one line of base64 in the script, whatever the sources hold
    script = action.direct_script('netns_info', {}, False, False)
    assert json.loads(__import__('base64').b64decode(script.rsplit('(', 1)[1].split("'")[1]))['module'] == 'netns_info'
