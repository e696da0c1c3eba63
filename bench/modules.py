#!/usr/bin/env python
"""Module time for the bridge recipe at N namespaces: converge, identical re-run, teardown; as one
linuxnet.netns.network call and as four single-module calls, side by side.

Runs the modules directly (no ansible-playbook), inside the sandbox:
    tests/sandbox.sh python3 bench/modules.py [N ...] [--python /usr/bin/python3]
Prints one row per N; a partial answer to the scale issue (the full benchmark compares with
`command:` loops and `ip -batch` in the same run).
"""
import argparse
import atexit
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def collections():
    root = tempfile.mkdtemp(prefix='lnbench-')
    atexit.register(shutil.rmtree, root, True)
    os.makedirs(os.path.join(root, 'ansible_collections', 'linuxnet'))
    os.symlink(REPO, os.path.join(root, 'ansible_collections', 'linuxnet', 'netns'))
    import ansible
    os.makedirs(os.path.join(root, 'ansible_only'))
    os.symlink(os.path.dirname(ansible.__file__), os.path.join(root, 'ansible_only', 'ansible'))
    return root


def module(python, coll, name, args):
    with tempfile.NamedTemporaryFile('w', suffix='.json', delete=False) as handle:
        json.dump({'ANSIBLE_MODULE_ARGS': args}, handle)
    env = dict(os.environ, PYTHONPATH='%s:%s/ansible_only' % (coll, coll))
    start = time.time()
    out = subprocess.run([python, os.path.join(REPO, 'plugins', 'modules', name + '.py'), handle.name],
                         stdout=subprocess.PIPE, env=env, universal_newlines=True, check=False)
    elapsed = time.time() - start
    os.unlink(handle.name)
    result = json.loads(out.stdout)
    if result.get('failed'):
        sys.exit('%s failed: %s' % (name, result.get('msg')))
    return elapsed, result['changed']


def recipe(n):
    """The bridge recipe as the single modules take it: four calls."""
    names = ['b%d' % i for i in range(n)]
    return [
        ('netns', {'namespaces': [{'name': ns} for ns in names]}),
        ('bridge', {'name': 'lnbr0', 'addresses': ['10.88.0.1/16']}),
        ('veth', {'pairs': [{'name': 'lnv%d' % i, 'master': 'lnbr0',
                             'peer': {'name': 'eth0', 'netns': ns,
                                      'addresses': ['10.88.%d.%d/16' % ((i + 2) // 256, (i + 2) % 256)]}}
                            for i, ns in enumerate(names)]}),
        ('netns_route', {'routes': [{'netns': ns, 'gateway': '10.88.0.1'} for ns in names]}),
    ]


def teardown(n):
    return [('netns', {'namespaces': [{'name': 'b%d' % i, 'state': 'absent'} for i in range(n)]}),
            ('bridge', {'name': 'lnbr0', 'state': 'absent'})]


def as_one(steps):
    """The same calls as one linuxnet.netns.network call."""
    lists = {'netns': 'namespaces', 'bridge': 'bridges', 'veth': 'pairs', 'netns_route': 'routes'}
    args = {}
    for name, step in steps:
        args[lists[name]] = step.get(lists[name]) or [step]
    return [('network', args)]


def run(python, coll, steps):
    total, changed = 0.0, False
    for name, args in steps:
        elapsed, step_changed = module(python, coll, name, args)
        total += elapsed
        changed = changed or step_changed
    return total, changed


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('n', nargs='*', type=int, default=[10, 100, 1000])
    parser.add_argument('--python', default=sys.executable)
    args = parser.parse_args()
    if os.environ.get('LINUXNET_SANDBOX') != '1':
        sys.exit('run me inside tests/sandbox.sh')
    coll = collections()
    print('%-6s %-22s %-12s %-12s %-12s %s' % ('N', 'calls', 'converge s', 're-run s', 'teardown s', 'python'))
    for n in args.n:
        for label, shape in (('network (1 call)', as_one), ('4 modules (4 calls)', list)):
            steps = shape(recipe(n))
            converge, _unused = run(args.python, coll, steps)
            rerun, changed = run(args.python, coll, steps)
            assert not changed, 're-run changed something'
            down, _unused = run(args.python, coll, shape(teardown(n)))
            print('%-6d %-22s %-12.2f %-12.2f %-12.2f %s' % (n, label, converge, rerun, down, args.python))


if __name__ == '__main__':
    main()
