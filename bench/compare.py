#!/usr/bin/env python
"""The engine against an earlier commit of itself: module CPU time (user + system of the module's
process) of the bridge recipe at N namespaces - converge, identical re-run, teardown - as one
linuxnet.netns.network call, old and new interleaved in one run, best of --repeat each.

    tests/sandbox.sh python3 bench/compare.py --old 2235a8a [--n 1000] [--repeat 5] [--limit 5]

Prints one row per step with both figures, the ratio new/old and PASS/FAIL against --limit (in
percent: new may be at most that much slower). The old commit is exported with `git archive` into a
temporary directory; nothing in the work tree changes.
"""
import argparse
import atexit
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from modules import REPO, as_one, recipe, teardown  # noqa: E402


def collection(source):
    """A collections root whose linuxnet.netns is `source`, plus the ansible-only directory."""
    root = tempfile.mkdtemp(prefix='lncompare-')
    atexit.register(shutil.rmtree, root, True)
    os.makedirs(os.path.join(root, 'ansible_collections', 'linuxnet'))
    os.symlink(source, os.path.join(root, 'ansible_collections', 'linuxnet', 'netns'))
    import ansible
    os.makedirs(os.path.join(root, 'ansible_only'))
    os.symlink(os.path.dirname(ansible.__file__), os.path.join(root, 'ansible_only', 'ansible'))
    return root


def export(ref):
    """The tree of commit `ref`, extracted into a temporary directory."""
    target = tempfile.mkdtemp(prefix='lncompare-src-')
    atexit.register(shutil.rmtree, target, True)
    archive = subprocess.run(['git', '-C', REPO, 'archive', ref], stdout=subprocess.PIPE, check=True).stdout
    subprocess.run(['tar', '-x', '-C', target], input=archive, check=True)
    return target


def cpu_run(python, coll, source, steps):
    """CPU seconds (user + system) of the modules' processes, and whether any changed something."""
    total, changed = 0.0, False
    for name, args in steps:
        with tempfile.NamedTemporaryFile('w', suffix='.json', delete=False) as handle:
            json.dump({'ANSIBLE_MODULE_ARGS': args}, handle)
        env = dict(os.environ, PYTHONPATH='%s:%s/ansible_only' % (coll, coll))
        proc = subprocess.Popen([python, os.path.join(source, 'plugins', 'modules', name + '.py'), handle.name],
                                stdout=subprocess.PIPE, env=env, universal_newlines=True)
        out = proc.stdout.read()
        _pid, _status, usage = os.wait4(proc.pid, 0)
        proc.returncode = 0
        os.unlink(handle.name)
        result = json.loads(out)
        if result.get('failed'):
            sys.exit('%s (%s) failed: %s' % (name, source, result.get('msg')))
        total += usage.ru_utime + usage.ru_stime
        changed = changed or result['changed']
    return total, changed


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--old', required=True, help='the commit to compare with')
    parser.add_argument('--new', help='another commit to compare (default: this work tree)')
    parser.add_argument('--n', type=int, default=1000)
    parser.add_argument('--repeat', type=int, default=5)
    parser.add_argument('--limit', type=float, default=5.0, help='percent new may be slower than old')
    parser.add_argument('--python', default=sys.executable)
    args = parser.parse_args()
    if os.environ.get('LINUXNET_SANDBOX') != '1':
        sys.exit('run me inside tests/sandbox.sh')
    engines = {'old': export(args.old), 'new': export(args.new) if args.new else REPO}
    colls = dict((label, collection(source)) for label, source in engines.items())
    steps = {'converge': as_one(recipe(args.n)), 're-run': as_one(recipe(args.n)), 'teardown': as_one(teardown(args.n))}
    best = dict((label, {}) for label in engines)
    for _round in range(args.repeat):
        for label in ('old', 'new'):
            for step in ('converge', 're-run', 'teardown'):
                cpu, changed = cpu_run(args.python, colls[label], engines[label], steps[step])
                if step == 're-run' and changed:
                    sys.exit('%s: the re-run changed something' % label)
                best[label][step] = min(cpu, best[label].get(step, cpu))
    print('module CPU time, N=%d, best of %d, old = %s, new = %s'
          % (args.n, args.repeat, args.old, args.new or 'the work tree'))
    failed = False
    for step in ('converge', 're-run', 'teardown'):
        old, new = best['old'][step], best['new'][step]
        ok = new <= old * (1 + args.limit / 100.0)
        failed = failed or not ok
        print('%-9s old %.3f s  new %.3f s  new/old %.3f  %s' % (step, old, new, new / old, 'PASS' if ok else 'FAIL'))
    sys.exit(1 if failed else 0)


if __name__ == '__main__':
    main()
