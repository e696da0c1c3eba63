"""Deleting namespaces: the PIDs still inside are named, nothing of a busy namespace stays reachable
from the host, and re-creating a namespace and its veth pair right after deleting it works (no race
with the kernel's asynchronous namespace teardown). Each test runs in a fresh host namespace (the
`host` fixture), with pip's pyroute2 and with Debian's.
"""
import json
import os
import subprocess
import time

import pytest

LOOPS = int(os.environ.get('LINUXNET_RECREATE_LOOPS', '20'))


def host_links(host):
    return [line.split()[0].split('@')[0] for line in host.sh('ip -br link').splitlines() if line.strip()]


def enter(ns, argv=('sleep', '120')):
    """A process inside namespace `ns` (nsenter execs it: the PID is the process itself), once it is in."""
    proc = subprocess.Popen(['nsenter', '--net=/run/netns/' + ns] + list(argv))
    inode = os.stat('/run/netns/' + ns).st_ino
    deadline = time.monotonic() + 30  # a bound, not a wait: seconds only on a loaded machine
    while time.monotonic() < deadline:
        try:
            if os.stat('/proc/%d/ns/net' % proc.pid).st_ino == inode:
                return proc
        except OSError:
            pass
        time.sleep(0.002)
    raise AssertionError('process %d never entered %s' % (proc.pid, ns))


def warning_texts(result):
    """The run's warnings as text (ansible-core 2.19 reports each as a structured event)."""
    texts = []
    for warning in result.get('warnings') or []:
        if isinstance(warning, dict):
            warning = (warning.get('event') or {}).get('msg') or json.dumps(warning)
        texts.append(warning)
    return texts


def with_children(pids):
    """The PIDs and those of their children (which share their namespace), sorted."""
    found = set(pids)
    for pid in pids:
        with open('/proc/%d/task/%d/children' % (pid, pid)) as children:
            found.update(int(c) for c in children.read().split())
    return sorted(found)


@pytest.fixture
def processes():
    started = []
    yield started
    for proc in started:
        try:
            children = with_children([proc.pid])
        except OSError:
            children = []
        proc.kill()
        proc.wait()
        for pid in children:
            if pid != proc.pid:
                try:
                    os.kill(pid, 9)
                except OSError:
                    pass


def test_absent_names_every_pid_in_every_busy_namespace(host, processes):
    busy_a, busy_b, idle = host.ns('a'), host.ns('b'), host.ns('idle')
    host.ok('netns', {'namespaces': [{'name': n} for n in (busy_a, busy_b, idle)]})
    host.ok('veth', {'pairs': [{'name': host.prefix + 'a', 'addresses': ['10.1.0.1/24'],
                                'peer': {'name': 'eth0', 'netns': busy_a, 'addresses': ['10.1.0.2/24']}},
                               {'name': host.prefix + 'b', 'peer': {'name': 'eth0', 'netns': busy_b}},
                               {'name': 'x1', 'netns': busy_b, 'peer': {'name': 'x2', 'netns': busy_b}},
                               {'name': host.prefix + 'i', 'peer': {'name': 'eth0', 'netns': idle}}]})
    # two sleeps and a shell with a child in one namespace, a sleep in the other
    processes.extend([enter(busy_a), enter(busy_a), enter(busy_a, ['sh', '-c', 'sleep 120; :']), enter(busy_b)])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # until the shell has forked its sleep
        if len(with_children([processes[2].pid])) == 2:
            break
        time.sleep(0.002)
    wanted = {busy_a: with_children([p.pid for p in processes[:3]]), busy_b: [processes[3].pid]}
    assert len(wanted[busy_a]) == 4
    spec = {'namespaces': [{'name': n, 'state': 'absent'} for n in (busy_a, busy_b, idle)]}

    predicted = host.ok('netns', spec, check=True)
    assert predicted['changed'] and sorted(host.netns_list()) == sorted([busy_a, busy_b, idle])
    result = host.ok('netns', spec)
    assert result['changed'] and result['actions'] == predicted['actions']
    pids = dict((item['name'], item.get('pids')) for item in result['namespaces'])
    assert pids == {busy_a: wanted[busy_a], busy_b: wanted[busy_b], idle: []}
    assert dict((item['name'], item.get('pids')) for item in predicted['namespaces']) == pids

    warnings = warning_texts(result)
    for ns, ns_pids in wanted.items():
        text = [w for w in warnings if ns in w]
        assert len(text) == 1, 'one warning for %s: %s' % (ns, warnings)
        for pid in ns_pids:
            assert 'PID %d' % pid in text[0], 'PID %d not named for %s: %s' % (pid, ns, text[0])
    assert not [w for w in warnings if idle in w], warnings
    assert warning_texts(predicted) == warnings

    # the names are gone, nothing of the three namespaces reaches the host any more ...
    assert host.netns_list() == []
    assert host_links(host) == ['lo'], host_links(host)
    # ... and the busy ones, kept alive by their processes, are empty
    for proc in processes:
        inside = subprocess.run(['nsenter', '-t', str(proc.pid), '--net', 'ip', '-br', 'link'],
                                stdout=subprocess.PIPE, universal_newlines=True, check=False).stdout
        assert [line.split()[0] for line in inside.splitlines()] == ['lo'], inside
    assert not host.ok('netns', spec)['changed']


def test_absent_with_a_namespace_held_open_by_a_descriptor(host, processes):
    """A process outside the namespace holding it open (as container runtimes do) keeps it alive
    like a process inside: the run must not wait for the host-side veth end in vain."""
    ns = host.ns('held')
    host.ok('netns', {'name': ns})
    host.ok('veth', {'name': host.prefix + 'h', 'peer': {'name': 'eth0', 'netns': ns}})
    holder = subprocess.Popen(['sh', '-c', 'exec 3</run/netns/%s; echo ready; exec sleep 120' % ns],
                              stdout=subprocess.PIPE, universal_newlines=True)
    processes.append(holder)
    assert holder.stdout.readline().strip() == 'ready'
    started = time.time()
    result = host.module('netns', {'name': ns, 'state': 'absent'})
    elapsed = time.time() - started
    assert not result.get('failed'), result.get('msg')
    assert host.netns_list() == []
    assert host.prefix + 'h' not in host_links(host), 'host-side veth survived a namespace held open'
    assert [w for w in warning_texts(result) if 'PID %d' % holder.pid in w], warning_texts(result)
    assert elapsed < 5, 'took %.1f s' % elapsed


def test_recreate_right_after_delete(host, figures):
    """Delete a namespace (its veth pair goes with it) and at once make the same names again."""
    ns = host.ns('r')
    hostend = host.prefix + 'r'
    pair = {'name': hostend, 'addresses': ['10.2.0.1/24'],
            'peer': {'name': 'eth0', 'netns': ns, 'addresses': ['10.2.0.2/24']}}
    started = time.time()
    failures = []
    for loop in range(LOOPS):
        made = host.module('netns', {'name': ns})
        linked = host.module('veth', pair) if not made.get('failed') else made
        for what, result in (('netns', made), ('veth', linked)):
            if result.get('failed') or not result.get('changed'):
                failures.append('loop %d, %s: %s' % (loop, what, result.get('msg') or 'changed=false'))
        gone = host.module('netns', {'name': ns, 'state': 'absent'})
        if gone.get('failed') or not gone.get('changed'):
            failures.append('loop %d, netns absent: %s' % (loop, gone.get('msg') or 'changed=false'))
        left = [link for link in host_links(host) if link != 'lo']
        if left:
            failures.append('loop %d: %s still on the host after netns absent returned' % (loop, left))
        if failures:
            break
    figures('re-create after delete [%s]: %d loops, %.2f s per loop (create netns, veth, delete)' % (
        os.path.basename(host.python), loop + 1, (time.time() - started) / (loop + 1)))
    assert not failures, '\n'.join(failures)
    assert host.netns_list() == []


def test_recreate_after_delete_by_hand(host):
    """`ip netns del` (the user's, with no wait) and at once the modules: the host-side veth end
    may still exist for a moment, its peer in a namespace being torn down."""
    ns = host.ns('h')
    hostend = host.prefix + 'h'
    pair = {'name': hostend, 'peer': {'name': 'eth0', 'netns': ns}}
    failures = []
    for loop in range(3):
        host.ok('netns', {'name': ns})
        host.ok('veth', pair)
        subprocess.check_call(['ip', 'netns', 'del', ns])
        made = host.module('netns', {'name': ns})
        linked = host.module('veth', pair)
        for what, result in (('netns', made), ('veth', linked)):
            if result.get('failed'):
                failures.append('loop %d, %s: %s' % (loop, what, result.get('msg')))
        host.module('netns', {'name': ns, 'state': 'absent'})
    assert not failures, '\n'.join(failures)


def test_teardown_runs_twice(host):
    """A teardown in the usual order - NAT, routes, veth pairs, then the namespaces - run a second
    time (or after a first run that stopped half-way) finds nothing to do: removing what is in a
    namespace that is gone already is not an error."""
    ns = host.ns('t')
    host.ok('netns', {'name': ns})
    host.ok('veth', {'name': host.prefix + 't', 'addresses': ['10.3.0.1/24'],
                     'peer': {'name': 'eth0', 'netns': ns, 'addresses': ['10.3.0.2/24']}})
    host.ok('netns_route', {'netns': ns, 'gateway': '10.3.0.1'})
    host.ok('nat_masquerade', {'source': '10.9.0.0/24', 'out_interface': 'eth0', 'netns': ns})
    teardown = [
        ('nat_masquerade', {'source': '10.9.0.0/24', 'out_interface': 'eth0', 'netns': ns, 'state': 'absent'}),
        ('netns_route', {'netns': ns, 'gateway': '10.3.0.1', 'state': 'absent'}),
        ('veth', {'name': host.prefix + 't', 'peer': {'name': 'eth0', 'netns': ns}, 'state': 'absent'}),
        ('netns', {'name': ns, 'state': 'absent'}),
    ]
    first = [host.module(module, args) for module, args in teardown]
    assert not [r.get('msg') for r in first if r.get('failed')]
    assert host.netns_list() == []
    second = [host.module(module, args) for module, args in teardown]
    problems = ['%s: %s' % (module, r.get('msg') or r.get('actions'))
                for (module, _args), r in zip(teardown, second) if r.get('failed') or r.get('changed')]
    assert not problems, '\n'.join(problems)
