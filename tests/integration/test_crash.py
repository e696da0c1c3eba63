"""SIGKILL at random points of large applies: the next run converges, and nothing is left over.

A host (the `host` fixture: a fresh namespace, modules run inside it) goes through a cycle of
large calls - N namespaces, N veth pairs (one end in each namespace, both addressed), N default
routes, bridges, MASQUERADE rules, then all of it removed again - and every call of the cycle is
one trial: the module is started, killed with SIGKILL after a random delay between 0 and the
measured duration of the same call run in full, then run again (it must succeed) and a third time
(it must report no change). After the cycle's last call and at the end, nothing may be left: no
veth or bridge, no namespace file or nsfs mount under /run/netns, no nf_tables table or rule, no
route. The random seed is printed; LINUXNET_CRASH_SEED, LINUXNET_CRASH_TRIALS and LINUXNET_CRASH_N
override the defaults.
"""
import json
import os
import random
import signal
import subprocess
import time

import pytest

from conftest import REPO, _pythons

SEED = int(os.environ.get('LINUXNET_CRASH_SEED', '20250605'))
TRIALS = int(os.environ.get('LINUXNET_CRASH_TRIALS', '50'))  # in all, shared by the pyroute2 versions
N = int(os.environ.get('LINUXNET_CRASH_N', '100'))
BRIDGES = 8
OWNER_ALIAS = 'linuxnet.netns'


def phases(host):
    """The cycle: (label, module, args), each call's pre-state being the previous call's result."""
    names = [host.ns('c%d' % i) for i in range(N)]
    ends = [host.prefix + 'v%d' % i for i in range(N)]  # 7 + 1 + 3 <= 15 bytes

    def net(i, last):  # a /30 per namespace, 64 to a /24
        return '10.%d.0.%d' % (60 + i // 64, (i % 64) * 4 + last)
    pairs = [{'name': ends[i], 'addresses': ['%s/30' % net(i, 1)],
              'peer': {'name': 'eth0', 'netns': names[i], 'addresses': ['%s/30' % net(i, 2)]}} for i in range(N)]
    routes = [{'netns': names[i], 'gateway': net(i, 1)} for i in range(N)]
    bridges = [{'name': host.prefix + 'b%d' % i, 'addresses': ['172.31.%d.1/24' % i], 'mtu': 9000}
               for i in range(BRIDGES)]
    rules = [{'source': '10.%d.0.0/24' % (60 + i), 'out_interface': 'up%d' % j}
             for i in range((N + 63) // 64) for j in range(4)]
    absent = [dict(item, state='absent') for item in pairs]
    return [
        ('netns create', 'netns', {'namespaces': [{'name': n} for n in names]}),
        ('veth create', 'veth', {'pairs': pairs}),
        ('route create', 'netns_route', {'routes': routes}),
        ('bridge create', 'bridge', {'bridges': bridges}),
        ('nat create', 'nat_masquerade', {'rules': rules}),
        ('nat remove', 'nat_masquerade', {'rules': [dict(r, state='absent') for r in rules]}),
        ('bridge remove', 'bridge', {'bridges': [dict(b, state='absent') for b in bridges]}),
        ('veth remove', 'veth', {'pairs': absent[:N // 2]}),
        ('netns remove', 'netns', {'namespaces': [{'name': n, 'state': 'absent'} for n in names]}),
    ]


def start(host, name, args):
    """Host.module, in the background: the process is the module itself (nsenter execs it)."""
    host.calls += 1
    path = host.tmp / ('args%d.json' % host.calls)
    path.write_text(json.dumps({'ANSIBLE_MODULE_ARGS': dict(args, _ansible_check_mode=False, _ansible_diff=False)}))
    env = dict(os.environ, PYTHONPATH='%s:%s' % (host.collections, host.collections / 'ansible_only'))
    return subprocess.Popen(['nsenter', '--net=/run/netns/' + host.name, host.python,
                             os.path.join(REPO, 'plugins', 'modules', name + '.py'), str(path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, env=env)


def run(host, module, args):
    """host.module, with a crash (no JSON) reported as a failure instead of raised."""
    try:
        return host.module(module, args, diff=False)
    except AssertionError as exc:
        return {'failed': True, 'msg': str(exc)[-600:], 'actions': []}


def routes(host):
    return set(r.strip() for r in host.sh('ip route show table all; ip -6 route show table all').splitlines())


def leftovers(host, fresh_routes):
    """Everything of this host's that survived a full teardown."""
    found = []
    links = [line.split()[0] for line in host.sh('ip -br link').splitlines() if line.strip()]
    found += ['link %s' % name for name in links if name != 'lo']
    found += ['file /run/netns/%s' % n for n in os.listdir('/run/netns')
              if n.startswith(host.prefix) and n != host.name]
    with open('/proc/self/mountinfo') as mounts:
        for line in mounts:
            point = line.split()[4]
            if point.startswith('/run/netns/' + host.prefix) and point != '/run/netns/' + host.name:
                found.append('mount %s' % point)
    ruleset = host.sh('nft list ruleset').strip()
    if ruleset:
        found.append('nft: %s' % ruleset)
    found += ['route %s' % r for r in sorted(routes(host) - fresh_routes)]
    return found


def unmarked(host, names):
    """Interfaces we made that do not carry our alias (netns_info: ours false)."""
    info = host.ok('netns_info', {'netns': names, 'routes': False, 'nat': False})
    bad = ['%s (host)' % n for n, i in info['host']['interfaces'].items() if n != 'lo' and not i['ours']]
    for ns in names:
        bad += ['%s (%s)' % (n, ns) for n, i in info['netns'][ns]['interfaces'].items() if n != 'lo' and not i['ours']]
    return bad


def test_sigkill_during_large_applies(host, capsys):
    figures = {'trials': 0, 'partial': 0, 'before_work': 0, 'after_work': 0, 'leftovers': 0}
    rng = random.Random('%s-%s' % (SEED, os.path.basename(host.python)))
    pythons = len(_pythons())
    trials = -(-TRIALS // pythons)
    cycle = phases(host)
    names = cycle[0][2]['namespaces']
    started = time.time()
    problems = []
    fresh_routes = routes(host)

    # the duration of every call of the cycle, run in full (and the number of actions it takes)
    full = {}
    for label, module, args in cycle:
        t = time.time()
        result = host.ok(module, args)
        full[label] = (time.time() - t, len(result['actions']))
    assert leftovers(host, fresh_routes) == []

    for trial in range(trials):
        label, module, args = cycle[trial % len(cycle)]
        duration, actions = full[label]
        delay = rng.uniform(0, duration)
        proc = start(host, module, args)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        out, err = proc.communicate()
        finished = proc.returncode != -signal.SIGKILL

        rerun = run(host, module, args)
        if rerun.get('failed'):
            problems.append('trial %d (%s, killed after %.3f s): the re-run failed: %s' % (
                trial, label, delay, rerun.get('msg')))
            rerun = run(host, module, args)  # to go on with the next trials
            if rerun.get('failed'):
                problems.append('trial %d (%s): a second re-run failed too: %s' % (trial, label, rerun.get('msg')))
                break
        done = len(rerun['actions'])
        if finished or done == 0:
            figures['after_work'] += 1
        elif done >= actions:
            figures['before_work'] += 1
        else:
            figures['partial'] += 1
        third = run(host, module, args)
        if third.get('failed') or third.get('changed'):
            problems.append('trial %d (%s, killed after %.3f s): the third run %s: %s' % (
                trial, label, delay, 'failed' if third.get('failed') else 'still changed',
                third.get('msg') or third.get('actions')[:5]))
        if label in ('veth create', 'bridge create'):
            bad = unmarked(host, [n['name'] for n in names])
            if bad:
                problems.append('trial %d (%s, killed after %.3f s, %d of %d actions left): made but not marked '
                                'ours: %s' % (trial, label, delay, done, actions, ', '.join(sorted(bad)[:6])))
        if label == 'netns remove':
            left = leftovers(host, fresh_routes)
            figures['leftovers'] += len(left)
            if left:
                problems.append('trial %d (%s, killed after %.3f s): left over: %s' % (trial, label, delay, left[:6]))
                host.cleanup()
        figures['trials'] += 1

    # tear down whatever the last trial left, then nothing may remain
    for label, module, args in cycle[len(cycle) - 4:]:
        result = run(host, module, args)
        if result.get('failed'):
            problems.append('teardown (%s) failed: %s' % (label, result.get('msg')))
    left = leftovers(host, fresh_routes)
    figures['leftovers'] += len(left)
    figures['seconds'] = time.time() - started
    with capsys.disabled():
        print('\ncrash [%s]: seed %s, %d trials of N=%d (%s), kills landing: %d before any change, %d mid-apply, '
              '%d after the last change; leftovers found: %d; problems: %d; %.1f s' % (
                  os.path.basename(host.python), SEED, figures['trials'], N,
                  ', '.join('%s %.2fs/%d' % (k, v[0], v[1]) for k, v in full.items()),
                  figures['before_work'], figures['partial'], figures['after_work'], figures['leftovers'],
                  len(problems), figures['seconds']))
    assert not problems, '\n'.join(problems)
    assert left == [], left
