"""SIGKILL at random points of large applies: the next run converges, and nothing is left over.

A host (the `host` fixture: a fresh namespace, modules run inside it) goes through a cycle of
large calls - N namespaces, N veth pairs (one end in each namespace, both addressed), N default
routes, bridges, MASQUERADE rules, then all of it removed again - and every call of the cycle is
one trial: the module is started and killed with SIGKILL - a third of the time after a random delay
between 0 and the measured duration of the same call run in full (mostly start-up: imports,
arguments, the state read), otherwise once a random number of its namespaces or host links has
appeared or gone (or, where the work cannot be watched, at a random time after the start-up).
Then it is run again (it must succeed) and, if that run changed something, a third time (it must
report no change); links made by the killed run must carry our ownership mark. After each
"netns remove" trial and at the end, nothing may be left: no veth or bridge, no namespace file or
nsfs mount under /run/netns, no nf_tables table or rule, no route. The trials are shared by the
pyroute2 versions. The random seed is printed; LINUXNET_CRASH_SEED, LINUXNET_CRASH_TRIALS (all
pyroute2 versions together) and LINUXNET_CRASH_N override the defaults.
"""
import json
import os
import random
import signal
import subprocess
import time

from conftest import REPO, _pythons

SEED = int(os.environ.get('LINUXNET_CRASH_SEED', '20250605'))
TRIALS = int(os.environ.get('LINUXNET_CRASH_TRIALS', '50'))  # in all, shared by the pyroute2 versions
N = int(os.environ.get('LINUXNET_CRASH_N', '200'))
BRIDGES = 8
OWNER_ALIAS = 'linuxnet.netns'


def phases(host):
    """The cycle: (label, module, args, progress), each call's pre-state being the previous call's
    result; `progress` names what grows or shrinks one by one as the call works (see Progress)."""
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
        ('netns create', 'netns', {'namespaces': [{'name': n} for n in names]}, 'netns'),
        ('veth create', 'veth', {'pairs': pairs}, 'links'),
        ('route create', 'netns_route', {'routes': routes}, None),
        ('bridge create', 'bridge', {'bridges': bridges}, 'links'),
        ('nat create', 'nat_masquerade', {'rules': rules}, None),  # one atomic nf_tables batch
        ('nat remove', 'nat_masquerade', {'rules': [dict(r, state='absent') for r in rules]}, None),
        ('bridge remove', 'bridge', {'bridges': [dict(b, state='absent') for b in bridges]}, 'links'),
        ('veth remove', 'veth', {'pairs': absent[:N // 2]}, 'links'),  # the other half goes with the namespaces
        ('netns remove', 'netns', {'namespaces': [{'name': n, 'state': 'absent'} for n in names]}, 'netns'),
    ]


FIRST_REMOVAL = 5


class Progress(object):
    """How far a call has got, read without disturbing it: the namespaces under /run/netns, or the
    links of the host (through /proc/PID/net/dev of a process that sleeps in the host's namespace)."""

    def __init__(self, host):
        self.host = host
        self.sleeper = subprocess.Popen(['nsenter', '--net=/run/netns/' + host.name, 'sleep', '3600'])

    def netns(self):
        return sum(1 for n in os.listdir('/run/netns') if n.startswith(self.host.prefix + '-c'))

    def links(self):
        with open('/proc/%d/net/dev' % self.sleeper.pid) as dev:
            return len(dev.readlines()) - 2

    def close(self):
        self.sleeper.kill()
        self.sleeper.wait()


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


def kill_at(proc, rng, how, duration, idle, progress, before, after):
    """SIGKILL `proc` at a random point; returns a description of the point."""
    if how == 'progress':
        low, high = sorted((before, after))
        target = rng.randint(low + 1, high - 1)
        t = time.time()
        while proc.poll() is None and time.time() - t < 60:
            value = progress()
            if (after > before and value >= target) or (after < before and value <= target):
                break
            time.sleep(0.0003)
        proc.send_signal(signal.SIGKILL)
        return 'at %d of %d..%d' % (target, before, after)
    delay = rng.uniform(0, duration) if how == 'timed' else rng.uniform(min(idle, duration) * 0.9, duration)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    return 'after %.3f s' % delay


def test_sigkill_during_large_applies(host, capsys, figures):
    counts = {'trials': 0, 'partial': 0, 'before_work': 0, 'after_work': 0, 'finished': 0, 'leftovers': 0}
    rng = random.Random('%s-%s' % (SEED, os.path.basename(host.python)))
    trials = -(-TRIALS // len(_pythons()))
    cycle = phases(host)
    names = [n['name'] for n in cycle[0][2]['namespaces']]
    started = time.time()
    problems = []
    fresh_routes = routes(host)
    progress = Progress(host)
    index = -1
    known_unmarked = set()
    marks = {'mid_apply': 0, 'problems': []}
    try:
        # every call of the cycle run in full: how long it takes (started as the trials start it), how
        # many actions it has and how far its progress measure goes. How long a call takes with
        # nothing to do is learnt from the trials' third runs.
        calibration = {}
        for label, module, args, measure in cycle:
            read = getattr(progress, measure) if measure else (lambda: 0)
            before = read()
            t = time.time()
            proc = start(host, module, args)
            out, err = proc.communicate()
            duration = time.time() - t
            result = json.loads(out)
            assert not result.get('failed'), result.get('msg')
            calibration[label] = dict(full=duration, idle=duration * 0.6, actions=len(result['actions']),
                                      before=before, after=read())
        assert leftovers(host, fresh_routes) == []

        def one_trial(trial, forced=None):
            nonlocal index
            index = trial % len(cycle)
            label, module, args, measure = cycle[index]
            cal = calibration[label]
            # a third of the kills at any time of the call (most of which is start-up: imports,
            # arguments, the state read), the others while it changes things
            if forced and label in ('veth create', 'bridge create'):
                how = forced
            elif trial % 3 == 0:
                how = 'timed'
            elif measure and abs(cal['after'] - cal['before']) >= 2:
                how = 'progress'
            else:
                how = 'timed-late'
            proc = start(host, module, args)
            point = kill_at(proc, rng, how, cal['full'], cal['idle'],
                            getattr(progress, measure) if measure else None, cal['before'], cal['after'])
            proc.communicate()
            finished = proc.returncode != -signal.SIGKILL
            what = 'trial %d (%s, killed %s)' % (trial, label, point)

            rerun = run(host, module, args)
            if rerun.get('failed'):
                problems.append('%s: the re-run failed: %s' % (what, rerun.get('msg')))
                rerun = run(host, module, args)  # to go on with the next trials
                if rerun.get('failed'):
                    problems.append('%s: a second re-run failed too: %s' % (what, rerun.get('msg')))
                    return False
            left_to_do = len(rerun['actions'])
            if os.environ.get('LINUXNET_CRASH_VERBOSE'):
                with capsys.disabled():
                    print('%s: rc %s, %d of %d actions left' % (what, proc.returncode, left_to_do, cal['actions']))
            if finished:
                counts['finished'] += 1
            elif left_to_do == 0:
                counts['after_work'] += 1
            elif left_to_do >= cal['actions']:
                counts['before_work'] += 1
            else:
                counts['partial'] += 1
            if rerun['changed']:
                t = time.time()
                third = run(host, module, args)
                cal['idle'] = time.time() - t
            else:
                third = rerun  # the re-run found nothing to do: it was the run with no change
            if third.get('failed') or third.get('changed'):
                problems.append('%s: the third run %s: %s' % (
                    what, 'failed' if third.get('failed') else 'still changed',
                    third.get('msg') or third.get('actions')[:5]))
            if label in ('veth create', 'bridge create'):
                bad = set(unmarked(host, names)) - known_unmarked
                known_unmarked.update(bad)
                if not finished and 0 < left_to_do < cal['actions']:
                    marks['mid_apply'] += 1
                if bad:
                    bad = sorted(bad, key=lambda n: ('(host)' not in n, n))
                    marks['problems'].append(
                        '%s, %d of %d actions left for the re-run: %d interfaces made but not marked ours (no alias %s), '
                        'e.g. %s' % (what, left_to_do, cal['actions'], len(bad), OWNER_ALIAS, ', '.join(bad[:3] + bad[-2:])))
            if label == 'netns remove':
                left = leftovers(host, fresh_routes)
                counts['leftovers'] += len(left)
                if left:
                    problems.append('%s: left over: %s' % (what, left[:6]))
                    host.cleanup()
                known_unmarked.clear()
            counts['trials'] += 1
            return True

        trial = 0
        while trial < trials and one_trial(trial):
            trial += 1
        # a kill in the middle of a create is what shows that links made before their mark get it on
        # the re-run; random kills can miss it, so more trials (kills by progress) until one lands
        bound = trials + 4 * len(cycle)
        while not marks['mid_apply'] and trials <= trial < bound and one_trial(trial, forced='progress'):
            trial += 1

        # finish the teardown from where the last trial stopped, then nothing may remain
        for label, module, args, _measure in cycle[max(FIRST_REMOVAL, index + 1):]:
            result = run(host, module, args)
            if result.get('failed'):
                problems.append('teardown (%s) failed: %s' % (label, result.get('msg')))
    finally:
        progress.close()
    left = leftovers(host, fresh_routes)
    counts['leftovers'] += len(left)
    figures('crash [%s]: seed %s, %d trials of N=%d, kills landing: %d before any change, %d mid-apply, '
            '%d after the last change, %d too late (the call had finished); leftovers found: %d; '
            'problems: %d (and %d trials leaving links unmarked); %.1f s\n  calls in full / with nothing to do: %s' % (
                os.path.basename(host.python), SEED, counts['trials'], N, counts['before_work'],
                counts['partial'], counts['after_work'], counts['finished'], counts['leftovers'],
                len(problems), len(marks['problems']), time.time() - started,
                ', '.join('%s %.2f/%.2f s' % (k, v['full'], v['idle']) for k, v in calibration.items())))
    assert not problems, '\n'.join(problems)
    assert left == [], left
    # every link the collection made carries its alias (netns_info: ours), also those made by a run
    # killed between creating them and marking them, once the re-run has converged
    assert marks['mid_apply'], 'no kill landed in the middle of a veth or bridge create, in %d trials' % counts['trials']
    assert not marks['problems'], '\n'.join(marks['problems'])


def test_bare_namespace_file_left_by_a_killed_run(host):
    """The states a kill can leave between the two steps of making or removing a named namespace
    (the file under /run/netns, the nsfs mount on it), made on purpose: a bare file. `present`
    turns it into a namespace; `absent` removes it; neither fails."""
    made, dropped = host.ns('bare1'), host.ns('bare2')
    for name in (made, dropped):
        open('/run/netns/' + name, 'w').close()
    result = run(host, 'netns', {'namespaces': [{'name': made}, {'name': dropped, 'state': 'absent'}]})
    assert not result.get('failed'), result.get('msg')
    assert host.netns_list() == [made]
    with open('/proc/self/mountinfo') as mounts:
        assert '/run/netns/%s ' % made in mounts.read()
    assert host.sh('ip -n %s -br link show lo' % made).split()[1] == 'UNKNOWN'  # up
    again = run(host, 'netns', {'namespaces': [{'name': made}, {'name': dropped, 'state': 'absent'}]})
    assert not again.get('failed') and not again['changed'], again
