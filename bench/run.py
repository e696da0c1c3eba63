#!/usr/bin/env python
"""The scale benchmark (issue 4), in one run so that the ratios sit side by side:

  role       playbooks/site.yml (the bridge_network role) on one host, N namespaces: converge from
             scratch, the identical re-run (must report changed=0), playbooks/teardown.yml
  floor      the same operations through `ip -batch` (plus one `nft -f` and a /proc write)
  loop       the same network from the tutorial's `ip` commands as ansible.builtin.command tasks
             with `loop:` (bench/playbooks/command_loop.yml)
  ip_netns   community.general.ip_netns in a loop, namespaces only (bench/requirements.txt brings it)
  publish    1000 TCP ports published to 10 namespaces on a bridge (issue 14), in one task of
             linuxnet.netns.port_publish and one of linuxnet.netns.network's `publish`: converge,
             re-run, teardown, nf_tables transactions counted; beside the floor, the same rules
             loaded by one `nft -f`
  fleet      the lab fleet (tests/lab/lab.py): H hosts over SSH, 50 namespaces each: site.yml,
             re-run, verify.yml
  controller the role's filters alone (bench/controller.py) for a recorded fleet of H hosts: the
             allocation and planning once per play beside every host doing it all (issue 16); no
             kernel work
  boot       a saved bridge network (N=1000): the network module's converge of it with `save`, then the
             two boot units' ExecStart lines in a fresh machine on the same disk (bench/boot.py, issue 13)

Run it inside the sandbox, from the repository root:

    tests/sandbox.sh python3 bench/run.py            # full run; rewrites docs/benchmark.md and .png
    tests/sandbox.sh python3 bench/run.py --quick    # loop at N=10 only (N=100 extrapolated), H=5 only
    tests/sandbox.sh python3 bench/run.py --smoke --out DIR   # N=5, seconds; what the test suite runs
    tests/sandbox.sh python3 bench/run.py --sizes= --loop-sizes= --fleet= --no-ip-netns --out DIR
                                                   # the published ports only (1000)

"Module time" is the sum of the durations (runner start to result, as ansible.posix.profile_tasks
measures them) of the tasks that run linuxnet.netns modules, recorded by the callback plugin
bench/callback_plugins/linuxnet_bench.py; "wall" is the whole ansible-playbook process. The
benchmark re-executes itself in a fresh network+mount+pid namespace nested in the sandbox, which
plays the managed host (its uplink `uplink0` leads to a namespace acting as its router), so it never
disturbs the sandbox it runs in and everything it makes dies with it.
"""
import argparse
import ctypes
import datetime
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(REPO, 'bench')
LAB_PY = os.path.join(REPO, 'tests', 'lab', 'lab.py')
NESTED = 'LINUXNET_BENCH_NESTED'
sys.path.insert(0, BENCH)
import boot  # noqa: E402  (bench/boot.py, beside this file)
CLONE_NEWNET = 0x40000000

# The host's uplink: TEST-NET-3, clear of the role's pool (10.200.0.0/16), the loop's subnet
# (10.201.0.0/21), the floor's (10.202.0.0/21), the published ports' bridge (10.203.0.0/24) and the
# lab's underlay (192.0.2.0/24).
UPLINK, UPLINK_ADDRESS, ROUTER_ADDRESS = 'uplink0', '203.0.113.2/24', '203.0.113.1'
ROLE_PREFIXLEN = 21  # room for 1000 namespaces and the gateway in one bridge subnet
FLEET_NAMESPACES = 50
INTERNET = '198.51.100.2'  # the lab's echo server
PUBLISH_BRIDGE, PUBLISH_NET, PUBLISH_NAMESPACES = 'pbbr0', '10.203.0', 10
PUBLISH_FIRST_PORT, PUBLISH_TARGET_PORT = 20000, 80
PUBLISH_FLOOR_TABLE = 'lnbench_pubfloor'
PUBLISH_LIMIT = 1.0  # issue 14: 1000 ports, one transaction, at most 1 s of module time
NETLINK_NETFILTER, NFNL_SUBSYS_NFTABLES, NFT_MSG_GETGEN, NFTA_GEN_ID = 12, 10, 16, 1
# issue 16: p2p namespaces in one network task, under a hard limit on open files; a /31 each end
SCALE_NET, SCALE_PREFIX, SCALE_NOFILE = '10.64.0.0/16', 'scns', 4096
SCALE_CONVERGE_LIMIT, SCALE_RERUN_LIMIT, SCALE_RSS_LIMIT_MB = 30.0, 5.0, 300
SCALE_FLOOR_RATIO, SCALE_TEARDOWN_RATIO = 0.5, 1.2
# issue 16's floor: "one `ip -batch` per namespace started through `nsenter`"
SCALE_ISSUE_FLOOR = 'ip -batch p2p via nsenter'

TARGETS_NOTE = ('Targets (issue 4, 2-core machine): N=1000 converge <= 5 s module time and <= 1.5x the '
                'ip -batch floor; identical re-run of N=1000 <= 2 s module time with changed=0; '
                'teardown of N=1000 <= 2 s; tasks per host equal for N=10 and N=1000; N=100 end to end '
                '>= 100x faster than the command loop. Issue 14: 1000 published ports in one nf_tables '
                'transaction and <= 1 s module time.')


def log(message):
    sys.stderr.write('[bench %s] %s\n' % (time.strftime('%H:%M:%S'), message))
    sys.stderr.flush()


def sh(command, check=True, **kw):
    out = subprocess.run(command, shell=isinstance(command, str), stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, universal_newlines=True, check=False, **kw)
    if check and out.returncode:
        raise RuntimeError('%s failed (%d): %s' % (command, out.returncode, out.stdout[-3000:]))
    return out.stdout


def children_cpu():
    """CPU seconds (user + system) used so far by this process's waited-for descendants."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def self_cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def netns_names():
    try:
        return sorted(os.listdir('/run/netns'))
    except OSError:
        return []


def links():
    return set(line.split()[0].split('@')[0] for line in sh(['ip', '-br', 'link']).splitlines() if line.strip())


# ---------------------------------------------------------------------------------------------
# the host: this (nested) namespace, with an uplink to a router namespace


class Host(object):
    def __init__(self, tmp):
        self.tmp = tmp
        self.router = subprocess.Popen(['unshare', '--net', 'sh', '-c', 'echo ready; exec sleep infinity'],
                                       stdout=subprocess.PIPE, universal_newlines=True)
        assert self.router.stdout.readline().strip() == 'ready'
        sh(['ip', 'link', 'add', UPLINK, 'type', 'veth', 'peer', 'name', 'uplink0r', 'netns', str(self.router.pid)])
        sh(['nsenter', '-t', str(self.router.pid), '--net', 'sh', '-c',
            'ip link set lo up && ip addr add %s/24 dev uplink0r && ip link set uplink0r up' % ROUTER_ADDRESS])
        sh('ip addr add %s dev %s && ip link set %s up && ip route add default via %s'
           % (UPLINK_ADDRESS, UPLINK, UPLINK, ROUTER_ADDRESS))
        self.collections = os.path.join(tmp, 'collections')
        os.makedirs(os.path.join(self.collections, 'ansible_collections', 'linuxnet'))
        os.symlink(REPO, os.path.join(self.collections, 'ansible_collections', 'linuxnet', 'netns'))
        self.runs = 0

    def playbook(self, playbook, extra_vars, inventory=('-i', 'localhost,', '-c', 'local'), forks=None,
                 check=True, prefix=()):
        """Run ansible-playbook (after `prefix`, a command such as prlimit); return wall time, the
        callback's task records and the recap. A failed run raises, unless check=False (then Run.rc
        and Run.output tell)."""
        self.runs += 1
        timings = os.path.join(self.tmp, 'timings%d.json' % self.runs)
        argv = list(prefix) + [os.path.join(os.path.dirname(sys.executable), 'ansible-playbook')] + list(inventory)
        if forks:
            argv += ['--forks', str(forks)]
        # from a file: a thousand published ports' items outgrow one argument (MAX_ARG_STRLEN, 128 KiB)
        extra = os.path.join(self.tmp, 'extra%d.json' % self.runs)
        with open(extra, 'w') as handle:
            json.dump(extra_vars, handle)
        argv += ['-e', '@' + extra, playbook]
        env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=self.collections,
                   ANSIBLE_CALLBACK_PLUGINS=os.path.join(BENCH, 'callback_plugins'),
                   ANSIBLE_CALLBACKS_ENABLED='linuxnet_bench', LINUXNET_BENCH_TIMINGS=timings,
                   ANSIBLE_NOCOLOR='1', ANSIBLE_FORCE_COLOR='0', ANSIBLE_RETRY_FILES_ENABLED='0',
                   ANSIBLE_LOCAL_TEMP=os.path.join(self.tmp, 'ansible-local'),
                   ANSIBLE_DEPRECATION_WARNINGS='0', ANSIBLE_HOST_KEY_CHECKING='0')
        cpu = children_cpu()
        start = time.perf_counter()
        out = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
                             env=env, cwd=self.tmp, check=False)
        wall = time.perf_counter() - start
        cpu = children_cpu() - cpu
        if out.returncode and (check or not os.path.exists(timings)):
            raise RuntimeError('%s failed (rc %d):\n%s' % (os.path.basename(playbook), out.returncode,
                                                           out.stdout[-3000:]))
        with open(timings) as handle:
            data = json.load(handle)
        run = Run(wall, data['tasks'], data['recap'])
        run.rc, run.output, run.cpu = out.returncode, out.stdout, cpu
        return run

    def close(self):
        cleanup_local(uplink=True)
        if self.router.poll() is None:
            self.router.kill()
            self.router.wait()


class Run(object):
    def __init__(self, wall, tasks, recap):
        self.wall, self.tasks, self.recap = wall, tasks, recap

    def hosts(self):
        return sorted(self.recap)

    def module_time(self, host=None, prefix='linuxnet.netns.'):
        return sum(t['duration'] for t in self.tasks if t['action'].startswith(prefix)
                   and t['status'] != 'skipped' and (host is None or t['host'] == host))

    def max_host_module_time(self, prefix='linuxnet.netns.'):
        return max(self.module_time(h, prefix) for h in self.hosts())

    def task_count(self, host=None, run_once=True):
        """Task results of one host; run_once=False leaves out the tasks Ansible runs (and reports)
        for the first host only."""
        host = host or self.hosts()[0]
        return sum(1 for t in self.tasks if t['host'] == host and (run_once or not t.get('run_once')))

    def module_runs(self, host=None, prefix='linuxnet.netns.'):
        host = host or self.hosts()[0]
        return sum((t['items'] or 1) for t in self.tasks
                   if t['host'] == host and t['action'].startswith(prefix) and t['status'] != 'skipped')

    def changed(self):
        return sum(r['changed'] for r in self.recap.values())

    def failed(self):
        return sum(r['failures'] + r['unreachable'] for r in self.recap.values())


def cleanup_local(uplink=False):
    """Whatever any step left in this namespace: namespaces, our links, our nf_tables and iptables
    rules (and the uplink, at the end)."""
    names = netns_names()
    if names:
        batch = os.path.join(tempfile.gettempdir(), 'lnbench-cleanup-%d.batch' % os.getpid())
        with open(batch, 'w') as handle:
            handle.write(''.join('netns del %s\n' % name for name in names))
        sh(['ip', '-force', '-batch', batch], check=False)
        os.unlink(batch)
    # bridge mode past 1000: the further bridges, and the pairs joining them (deleting a bridge leaves
    # its ports; deleting one end of a pair takes the other)
    further = sorted(name for name in links() if re.match(r'lnbr0-[0-9]+[ab]?$', name))
    for link in ['lnbr0', 'clbr0', 'flbr0', PUBLISH_BRIDGE] + further + ([UPLINK] if uplink else []):
        if link in links():
            sh(['ip', 'link', 'del', link], check=False)
    for table in ('inet linuxnet_netns', 'ip lnbench_floor', 'inet ' + PUBLISH_FLOOR_TABLE):
        sh('nft delete table %s' % table, check=False)
    sh('iptables -t nat -F POSTROUTING', check=False)


# ---------------------------------------------------------------------------------------------
# the measurements


def role_step(host, python, n, rows, repeat=1):
    """Converge, identical re-run, teardown; `repeat` times, keeping for each step the sample with
    the least module time (the one least disturbed by whatever else the machine was doing)."""
    samples = []
    for attempt in range(repeat):
        samples.append([])
        role_cycle(host, python, n, samples[-1], '' if repeat == 1 else ' (%d/%d)' % (attempt + 1, repeat))
    for i in range(len(samples[0])):
        best = min((sample[i] for sample in samples), key=lambda row: row['module'])
        rows.append(dict(best, samples=len(samples), module_samples=[sample[i]['module'] for sample in samples],
                         wall_samples=[sample[i]['wall'] for sample in samples]))


def role_cycle(host, python, n, rows, label):
    base = {'bridge_network_namespaces': n, 'bridge_network_subnet_prefixlen': ROLE_PREFIXLEN,
            'bridge_network_install_deps': False, 'ansible_python_interpreter': python}
    site = os.path.join(REPO, 'playbooks', 'site.yml')
    teardown = os.path.join(REPO, 'playbooks', 'teardown.yml')

    def row(step, run):
        rows.append(dict(method='role', step=step, n=n, wall=run.wall, module=run.module_time(), cpu=run.cpu,
                         other=run.module_time(prefix='') - run.module_time(),
                         tasks=run.task_count(), module_runs=run.module_runs(), changed=run.changed(),
                         detail=[(t['task'], t['action'], t['status'], t['changed'], round(t['duration'], 3))
                                 for t in run.tasks]))
    log('role N=%d: converge%s' % (n, label))
    row('converge', host.playbook(site, base))
    made = [name for name in netns_names() if name.startswith('lnns')]
    if len(made) != n or 'lnbr0' not in links():
        raise RuntimeError('site.yml N=%d made %d namespaces (bridge: %s)' % (n, len(made), 'lnbr0' in links()))
    log('role N=%d: re-run%s' % (n, label))
    row('re-run', host.playbook(site, base))
    log('role N=%d: teardown%s' % (n, label))
    row('teardown', host.playbook(teardown, base))
    left = [name for name in netns_names() if name.startswith('lnns')]
    if left or 'lnbr0' in links():
        raise RuntimeError('teardown.yml N=%d left %d namespaces (bridge: %s)' % (n, len(left), 'lnbr0' in links()))


def _setns(fd):
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def wait_gone(prefix, deadline):
    """Until no interface of this namespace is named prefix*."""
    while any(name.startswith(prefix) for _index, name in socket.if_nameindex()):
        if time.monotonic() > deadline:
            raise RuntimeError('interfaces %s* still here after the namespaces were deleted' % prefix)
        time.sleep(0.002)


def floor_build(host_batch, ns_files, nft, ipv6_off=(), host_then=None, nsenter=False):
    """The floor's build, timed: one `ip -batch` on the host, one per namespace started from a
    parent setns()ed into it ([(namespace, batch file)]) - or, with `nsenter`, started through
    `nsenter --net=/run/netns/NS`, as issue 16 defines its floor -, forwarding on (a /proc write)
    and one `nft -f`. With `ipv6_off` (host interfaces, made down by the first batch), IPv6 off on
    each, as the module does to the host ends of an IPv4-only network (a /proc write each, no
    process), then the second host batch `host_then` (addresses, up). (wall seconds, CPU seconds)"""
    own = os.open('/proc/self/ns/net', os.O_RDONLY)
    cpu = children_cpu() + self_cpu()
    start = time.perf_counter()
    subprocess.run(['ip', '-batch', host_batch], check=True)
    for name in ipv6_off:
        with open('/proc/sys/net/ipv6/conf/%s/disable_ipv6' % name, 'w') as handle:
            handle.write('1\n')
    if host_then is not None:
        subprocess.run(['ip', '-batch', host_then], check=True)
    try:
        for ns, path in ns_files:
            if nsenter:
                subprocess.run(['nsenter', '--net=/run/netns/' + ns, 'ip', '-batch', path], check=True)
                continue
            fd = os.open('/run/netns/' + ns, os.O_RDONLY)
            try:
                _setns(fd)
                subprocess.run(['ip', '-batch', path], check=True)
            finally:
                _setns(own)
                os.close(fd)
    finally:
        os.close(own)
    with open('/proc/sys/net/ipv4/ip_forward', 'w') as handle:
        handle.write('1\n')
    subprocess.run(['nft', '-f', nft], check=True)
    return time.perf_counter() - start, children_cpu() + self_cpu() - cpu


def floor_step(tmp, n, repeat=1):
    """floor_cycle `repeat` times; the fastest build and the fastest teardown."""
    samples = [floor_cycle(tmp, n) for _attempt in range(repeat)]
    return [dict(min((sample[i] for sample in samples), key=lambda row: row['wall']), samples=len(samples),
                 wall_samples=[sample[i]['wall'] for sample in samples]) for i in range(len(samples[0]))]


def floor_cycle(tmp, n):
    """The bridge recipe through `ip -batch`: one batch on the host (bridge, namespaces, veth pairs
    with the peer created in its namespace, ports on the bridge and up), then one `ip -batch` per
    namespace (lo up, address, eth0 up, default route) - `ip -batch` lines cannot switch namespace,
    and `ip -n NS` unshares a mount namespace per call, which copies all N /run/netns mounts, so
    each batch is started from a parent that has setns()ed into the namespace. Plus forwarding (a
    /proc write) and the MASQUERADE rule (one `nft -f`)."""
    gateway = '10.202.0.1'
    host_lines = ['link add flbr0 type bridge', 'addr add %s/21 dev flbr0' % gateway, 'link set flbr0 up']
    ns_files, up_lines = [], []
    for i in range(1, n + 1):
        ns = 'flns%d' % i
        host_lines += ['netns add %s' % ns, 'link add flv%d type veth peer name eth0 netns %s' % (i, ns)]
        up_lines.append('link set flv%d master flbr0 up' % i)
        address = 1 + i
        path = os.path.join(tmp, 'floor-%s.batch' % ns)
        with open(path, 'w') as handle:
            handle.write('link set lo up\naddr add 10.202.%d.%d/21 dev eth0\nlink set eth0 up\n'
                         'route add default via %s\n' % (address // 256, address % 256, gateway))
        ns_files.append((ns, path))
    host_batch, host_then = os.path.join(tmp, 'floor-host.batch'), os.path.join(tmp, 'floor-host-up.batch')
    with open(host_batch, 'w') as handle:
        handle.write('\n'.join(host_lines) + '\n')
    with open(host_then, 'w') as handle:
        handle.write('\n'.join(up_lines) + '\n')
    nft = os.path.join(tmp, 'floor.nft')
    with open(nft, 'w') as handle:
        handle.write('table ip lnbench_floor {\n chain postrouting {\n  type nat hook postrouting priority 100;\n'
                     '  ip saddr 10.202.0.0/21 oifname "%s" masquerade\n }\n}\n' % UPLINK)
    log('floor N=%d: ip -batch' % n)
    # the host ends are bridge ports without addresses: IPv6 off on them, as the module does
    build, build_cpu = floor_build(host_batch, ns_files, nft, ['flv%d' % i for i in range(1, n + 1)], host_then)
    made = [name for name in netns_names() if name.startswith('flns')]
    if len(made) != n:
        raise RuntimeError('ip -batch made %d namespaces, not %d' % (len(made), n))
    if n and 'default via %s' % gateway not in sh(['ip', '-n', 'flns%d' % n, 'route']):
        raise RuntimeError('ip -batch: no default route in flns%d' % n)
    del_batch = os.path.join(tmp, 'floor-del.batch')
    with open(del_batch, 'w') as handle:
        handle.write(''.join('netns del flns%d\n' % i for i in range(1, n + 1)))
    cpu = children_cpu() + self_cpu()
    start = time.perf_counter()
    subprocess.run(['ip', '-batch', del_batch], check=True)
    subprocess.run(['nft', 'delete', 'table', 'ip', 'lnbench_floor'], check=True)
    # `netns del` only unmounts: the kernel destroys the namespace, and with it the host-side veth
    # ends, a moment later. Wait for them, as the netns module does, so that the next run starts clean.
    wait_gone('flv', deadline=time.monotonic() + 60)
    # the bridge last, as the engine does: with its thousand ports gone, deleting it costs nothing
    subprocess.run(['ip', 'link', 'del', 'flbr0'], check=True)
    teardown = time.perf_counter() - start
    teardown_cpu = children_cpu() + self_cpu() - cpu
    if any(name.startswith('flns') for name in netns_names()) or 'flbr0' in links():
        raise RuntimeError('ip -batch teardown left something behind')
    return [dict(method='ip -batch', step='converge', n=n, wall=build, module=build, cpu=build_cpu, tasks=None,
                 module_runs=n + 2, changed=None),
            dict(method='ip -batch', step='teardown', n=n, wall=teardown, module=teardown, cpu=teardown_cpu,
                 tasks=None, module_runs=2, changed=None)]


def loop_step(host, python, n):
    log('command loop N=%d (about 2 s per namespace)' % n)
    run = host.playbook(os.path.join(BENCH, 'playbooks', 'command_loop.yml'),
                        {'bench_count': n, 'bench_uplink': UPLINK, 'ansible_python_interpreter': python})
    made = [name for name in netns_names() if name.startswith('clns')]
    if len(made) != n:
        raise RuntimeError('command loop made %d namespaces, not %d' % (len(made), n))
    if 'default via 10.201.0.1' not in sh(['ip', '-n', 'clns%d' % n, 'route']):
        raise RuntimeError('command loop: no default route in clns%d' % n)
    cleanup_local_prefix('clns', 'clbr0')
    sh('iptables -t nat -F POSTROUTING', check=False)
    return dict(method='command loop', step='converge', n=n, wall=run.wall, cpu=run.cpu,
                module=run.module_time(prefix='ansible.builtin.command'), tasks=run.task_count(),
                module_runs=run.module_runs(prefix='ansible.builtin.command'), changed=run.changed(),
                loop_time=sum(t['duration'] for t in run.tasks if t['items']),
                once_time=sum(t['duration'] for t in run.tasks if not t['items']))


def extrapolate_loop(measured, n):
    """The loop at n from a measurement at a smaller N: its looped tasks scale with N, the rest (the
    once-only tasks and ansible-playbook's own start-up) does not."""
    per_ns = measured['loop_time'] / measured['n']
    fixed_wall = measured['wall'] - measured['loop_time']
    fixed_module = measured['module'] - measured['loop_time']
    cpu = measured['cpu'] * (fixed_wall + per_ns * n) / measured['wall']
    return dict(measured, n=n, wall=fixed_wall + per_ns * n, module=fixed_module + per_ns * n, cpu=cpu,
                module_runs=measured['module_runs'] - 9 * measured['n'] + 9 * n, changed=None,
                loop_time=per_ns * n, extrapolated_from=measured['n'])


def cleanup_local_prefix(prefix, bridge):
    names = [name for name in netns_names() if name.startswith(prefix)]
    if names:
        path = os.path.join(tempfile.gettempdir(), 'lnbench-del-%d.batch' % os.getpid())
        with open(path, 'w') as handle:
            handle.write(''.join('netns del %s\n' % name for name in names))
        sh(['ip', '-batch', path])
        os.unlink(path)
    if bridge in links():
        sh(['ip', 'link', 'del', bridge])


def community_general_available():
    try:
        import importlib.util
        return importlib.util.find_spec('ansible_collections.community.general') is not None
    except ImportError:
        return False


def ip_netns_step(host, python, n, rows):
    log('community.general.ip_netns loop N=%d' % n)
    playbook = os.path.join(BENCH, 'playbooks', 'ip_netns_loop.yml')
    base = {'bench_count': n, 'ansible_python_interpreter': python}
    up = host.playbook(playbook, base)
    made = [name for name in netns_names() if name.startswith('cgns')]
    if len(made) != n:
        raise RuntimeError('ip_netns made %d namespaces, not %d' % (len(made), n))
    down = host.playbook(playbook, dict(base, bench_state='absent'))
    if any(name.startswith('cgns') for name in netns_names()):
        raise RuntimeError('ip_netns absent left namespaces behind')
    for step, run in (('converge (netns only)', up), ('teardown (netns only)', down)):
        rows.append(dict(method='community.general.ip_netns loop', step=step, n=n, wall=run.wall, cpu=run.cpu,
                         module=run.module_time(prefix='community.general.ip_netns'), tasks=run.task_count(),
                         module_runs=run.module_runs(prefix='community.general.ip_netns'),
                         changed=run.changed()))


def nft_generation():
    """The nf_tables generation of this network namespace's ruleset: the kernel counts one for each
    committed transaction (a batch that changes nothing commits none), so the difference over a step
    is the number of transactions it made."""
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
    try:
        sock.bind((0, 0))
        # nlmsghdr (NLM_F_REQUEST) + nfgenmsg (AF_UNSPEC, NFNETLINK_V0, res_id 0)
        sock.send(struct.pack('=LHHLL', 20, NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_GETGEN, 1, 1, 0)
                  + struct.pack('!BBH', 0, 0, 0))
        data = sock.recv(65536)
    finally:
        sock.close()
    length, kind = struct.unpack_from('=LH', data)
    if kind == 2:  # NLMSG_ERROR
        raise RuntimeError('NFT_MSG_GETGEN failed: errno %d' % -struct.unpack_from('=i', data, 16)[0])
    offset = 20
    while offset + 4 <= length:
        size, attr = struct.unpack_from('=HH', data, offset)
        if attr & 0x3fff == NFTA_GEN_ID:
            return struct.unpack_from('!L', data, offset + 4)[0]
        offset += (size + 3) & ~3
    raise RuntimeError('NFT_MSG_GETGEN: no NFTA_GEN_ID in the answer')


def publish_ports(n, state='present'):
    """n TCP ports: host port 20000 + i to namespace i % 10, port 80 + i // 10 - one port_publish
    `ports` item each, as a user publishing many services lists them."""
    ports = []
    for i in range(n):
        item = {'host_port': PUBLISH_FIRST_PORT + i, 'target_netns': 'pbns%d' % (i % PUBLISH_NAMESPACES),
                'target_port': PUBLISH_TARGET_PORT + i // PUBLISH_NAMESPACES}
        if state == 'absent':
            item['state'] = 'absent'
        ports.append(item)
    return ports


def publish_network(tmp):
    """The published ports' targets, made with `ip` (not measured): the bridge pbbr0 and 10
    namespaces on it, pbns0..9 at 10.203.0.11-20."""
    lines = ['link add %s type bridge' % PUBLISH_BRIDGE, 'addr add %s.1/24 dev %s' % (PUBLISH_NET, PUBLISH_BRIDGE),
             'link set %s up' % PUBLISH_BRIDGE]
    for k in range(PUBLISH_NAMESPACES):
        lines += ['netns add pbns%d' % k, 'link add pbv%d type veth peer name eth0 netns pbns%d' % (k, k),
                  'link set pbv%d master %s up' % (k, PUBLISH_BRIDGE)]
    path = os.path.join(tmp, 'publish-host.batch')
    with open(path, 'w') as handle:
        handle.write('\n'.join(lines) + '\n')
    sh(['ip', '-batch', path])
    for k in range(PUBLISH_NAMESPACES):
        path = os.path.join(tmp, 'publish-pbns%d.batch' % k)
        with open(path, 'w') as handle:
            handle.write('link set lo up\naddr add %s.%d/24 dev eth0\nlink set eth0 up\n' % (PUBLISH_NET, 11 + k))
        sh(['ip', '-n', 'pbns%d' % k, '-batch', path])


def our_rules(text, word='pub'):
    return sum(1 for line in text.splitlines() if 'comment "linuxnet:%s ' % word in line)


def publish_step(host, python, n, rows, repeat=1):
    """publish_cycle `repeat` times with each module; for each step the sample with the least
    module time (the floor: the least wall time), with every sample's transaction count."""
    log('publish N=%d: bridge and %d namespaces (ip)' % (n, PUBLISH_NAMESPACES))
    publish_network(host.tmp)
    try:
        for module in ('port_publish', 'network'):
            samples = [publish_cycle(host, python, n, module, '' if repeat == 1 else ' (%d/%d)' % (attempt + 1, repeat))
                       for attempt in range(repeat)]
            for i in range(len(samples[0])):
                key = 'wall' if samples[0][i]['method'] == 'nft -f' else 'module'
                best = min((sample[i] for sample in samples), key=lambda row, key=key: row[key])
                rows.append(dict(best, samples=len(samples),
                                 module_samples=[sample[i]['module'] for sample in samples],
                                 generation_samples=[sample[i]['generations'] for sample in samples]))
    finally:
        cleanup_local_prefix('pbns', PUBLISH_BRIDGE)
        sh('nft delete table inet linuxnet_netns', check=False)


def publish_cycle(host, python, n, module, label):
    """Converge, identical re-run and teardown of n published ports through `module` in one task,
    counting nf_tables generations around each; with port_publish, then the floor: the rules the
    converge made, as `nft list table` prints them, loaded into a fresh table by one `nft -f`."""
    playbook = os.path.join(BENCH, 'playbooks', 'publish.yml')
    method = 'publish: ' + module
    rows = []

    def step(name, state):
        log('publish N=%d %s: %s%s' % (n, module, name, label))
        generation = nft_generation()
        run = host.playbook(playbook, {'bench_module': module, 'bench_ports': publish_ports(n, state),
                                       'ansible_python_interpreter': python})
        rows.append(dict(method=method, step=name, n=n, wall=run.wall, module=run.module_time(), cpu=run.cpu,
                         tasks=run.task_count(), module_runs=run.module_runs(), changed=run.changed(),
                         generations=nft_generation() - generation,
                         ping=run.module_time(prefix='ansible.builtin.ping')))
        return rows[-1]
    step('converge', 'present')
    made = sh(['nft', 'list', 'table', 'inet', 'linuxnet_netns'])
    rows[-1]['rules'] = made.count('comment "linuxnet:pub')
    if our_rules(made) != n:
        raise RuntimeError('%s made %d prerouting rules for %d ports' % (module, our_rules(made), n))
    step('re-run', 'present')
    rows[-1]['rules'] = rows[0]['rules']
    step('teardown', 'absent')
    if 'linuxnet:pub' in sh(['nft', 'list', 'ruleset']):
        raise RuntimeError('%s state=absent left published port rules behind' % module)
    if module == 'port_publish':
        rows.append(publish_floor(host.tmp, n, made))
    return rows


def publish_floor(tmp, n, made):
    header = 'table inet linuxnet_netns {'
    if not made.startswith(header):
        raise RuntimeError('nft list table printed %r, not %r' % (made[:60], header))
    path = os.path.join(tmp, 'publish-floor.nft')
    with open(path, 'w') as handle:
        handle.write('table inet %s {%s' % (PUBLISH_FLOOR_TABLE, made[len(header):]))
    log('publish N=%d: nft -f floor' % n)
    generation = nft_generation()
    cpu = children_cpu()
    start = time.perf_counter()
    subprocess.run(['nft', '-f', path], check=True)
    wall = time.perf_counter() - start
    cpu = children_cpu() - cpu
    generations = nft_generation() - generation
    loaded = sh(['nft', 'list', 'table', 'inet', PUBLISH_FLOOR_TABLE])
    sh(['nft', 'delete', 'table', 'inet', PUBLISH_FLOOR_TABLE])
    if our_rules(loaded) != n:
        raise RuntimeError('nft -f loaded %d prerouting rules for %d ports' % (our_rules(loaded), n))
    return dict(method='nft -f', step='converge', n=n, wall=wall, module=wall, cpu=cpu, tasks=None, module_runs=1,
                changed=None, generations=generations, rules=loaded.count('comment "linuxnet:pub'))


BRIDGE_SCALE_N = 3000
BRIDGE_NF_CALL = '/proc/sys/net/bridge/bridge-nf-call-iptables'


def bridge_scale_step(host, python, n, rows):
    """The role in bridge mode past the kernel's 1023 ports a bridge (issue 16): playbooks/site.yml
    with n namespaces on one host (a bridge per thousand, joined to the first), its re-run, the
    teardown; the step passes when each does what it says and nothing is left. Bridged frames do
    not pass the IP hooks in this host (br_netfilter's bridge-nf-call-iptables, per network
    namespace, set to 0 here): with them the role refuses more than one bridge (NAT across joined
    bridges breaks)."""
    base = {'bridge_network_namespaces': n, 'bridge_network_subnet_prefixlen': 20,
            'bridge_network_install_deps': False, 'ansible_python_interpreter': python}
    if os.path.exists(BRIDGE_NF_CALL):
        with open(BRIDGE_NF_CALL, 'w') as handle:
            handle.write('0\n')
    site = os.path.join(REPO, 'playbooks', 'site.yml')
    # the names the role gives them, from the role's own filter: the bridges, and the veth pairs
    # joining each further bridge to the first
    sys.path.insert(0, BENCH)
    import controller
    bridges, joins = controller.bridge_network.segment_bridges('lnbr0', n)
    join_ends = [end for pair in joins for end in pair]
    checks = {}
    for step, playbook in (('converge', site), ('re-run', site),
                           ('teardown', os.path.join(REPO, 'playbooks', 'teardown.yml'))):
        quiet_first('bridge N=%d: %s' % (n, step))
        log('bridge N=%d: %s' % (n, step))
        run = host.playbook(playbook, base)
        made = [name for name in netns_names() if name.startswith('lnns')]
        present = links()
        if step == 'teardown':
            ok = not made and not [name for name in bridges + join_ends if name in present] and not [
                name for name in present if name.startswith('lnv')]
        else:
            ok = (len(made) == n and all(name in present for name in bridges + join_ends)
                  and (step == 'converge' or not run.changed()))
        checks[step] = ok
        rows.append(dict(method='role bridge', step=step, n=n, wall=run.wall, module=run.module_time(), cpu=run.cpu,
                         tasks=run.task_count(), module_runs=run.module_runs(), changed=run.changed(), ok=ok,
                         bridges=len(bridges)))
    return checks


def verdict(ok):
    """A target's verdict, as every table of the report words it."""
    return 'PASS' if ok else 'FAIL'


def settle(limit=600, busy_below=0.1):
    """Wait until the machine is quiet: the kernel frees a removed namespace's memory on workers of
    its own (kvfree_rcu_reclaim, cleanup_net) for minutes after ten thousand namespaces went, and a
    step measured meanwhile measures that too. Quiet: two half-second samples of /proc/stat in a row
    with less than `busy_below` of the CPUs busy. Returns the seconds waited (None: never quiet)."""
    def sample():
        with open('/proc/stat') as handle:
            fields = [int(x) for x in handle.readline().split()[1:]]
        return sum(fields), fields[3] + fields[4]  # total, idle + iowait
    start, quiet = time.monotonic(), 0
    before = sample()
    while time.monotonic() - start < limit:
        time.sleep(0.5)
        after = sample()
        total, idle = after[0] - before[0], after[1] - before[1]
        before = after
        quiet = quiet + 1 if total and (total - idle) / float(total) < busy_below else 0
        if quiet >= 2:
            return time.monotonic() - start
    return None


# how long a step waits for a quiet machine: --smoke (a check that the benchmark runs, inside a test
# suite whose other worker keeps the machine busy) does not wait
SETTLE_LIMIT = [600]


def quiet_first(what):
    if not SETTLE_LIMIT[0]:
        return
    waited = settle(SETTLE_LIMIT[0])
    log('%s: %s' % (what, 'machine quiet after %.0f s' % waited if waited is not None
                    else 'machine still busy after %d s; measured anyway' % SETTLE_LIMIT[0]))


def scale_network(n, state='present'):
    """The `network` module's arguments for n p2p namespaces scns0.. (absent: the namespaces, the
    rule and forwarding off; the veth pairs go with their namespaces)."""
    import ipaddress
    net = ipaddress.ip_network(SCALE_NET)
    if state == 'absent':
        return {'namespaces': [{'name': '%s%d' % (SCALE_PREFIX, i), 'state': 'absent'} for i in range(n)],
                'masquerade': [{'source': SCALE_NET, 'out_interface': UPLINK, 'state': 'absent'}],
                'forwarding': [{'ipv4': False}]}
    namespaces, pairs, routes = [], [], []
    for i in range(n):
        ns, host_end = '%s%d' % (SCALE_PREFIX, i), net.network_address + 2 * i
        namespaces.append({'name': ns})
        pairs.append({'name': 'scv%d' % i, 'addresses': ['%s/31' % host_end],
                      'peer': {'name': 'eth0', 'netns': ns, 'addresses': ['%s/31' % (host_end + 1)]}})
        routes.append({'netns': ns, 'gateway': str(host_end)})
    return {'namespaces': namespaces, 'pairs': pairs, 'routes': routes,
            'forwarding': [{'ipv4': True, 'restrict_to': [SCALE_NET]}],
            'masquerade': [{'source': SCALE_NET, 'out_interface': UPLINK}]}


def rss_interpreter(tmp, python):
    """An interpreter for the modules that runs `python` and appends the peak RSS (KiB) of what it
    ran to a file: the module's own peak, whatever Ansible does around it."""
    path, log_path = os.path.join(tmp, 'rss-python'), os.path.join(tmp, 'rss.log')
    with open(path, 'w') as handle:
        handle.write('#!%s\nimport resource, subprocess, sys\nrc = subprocess.call([%r] + sys.argv[1:])\n'
                     'with open(%r, "a") as log:\n    log.write("%%d\\n" %% '
                     'resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\nsys.exit(rc)\n'
                     % (sys.executable, python, log_path))
    os.chmod(path, 0o755)
    return path, log_path


def scale_step(host, python, n, rows, nofile=SCALE_NOFILE):
    """p2p N namespaces in one `network` task under a hard limit of `nofile` open files: converge,
    identical re-run, teardown, each with the module's peak RSS; then the floor: the same network
    through one `ip -batch` on the host and one per namespace, and torn down by one."""
    playbook = os.path.join(BENCH, 'playbooks', 'scale.yml')
    interpreter, rss_log = rss_interpreter(host.tmp, python)
    prefix = ['prlimit', '--nofile=%d:%d' % (nofile, nofile)] if nofile else []
    label = 'p2p (nofile %d)' % nofile if nofile else 'p2p'
    for step, state in (('converge', 'present'), ('re-run', 'present'), ('teardown', 'absent')):
        quiet_first('scale N=%d %s: %s' % (n, label, step))
        log('scale N=%d %s: %s' % (n, label, step))
        if os.path.exists(rss_log):
            os.unlink(rss_log)
        definition = os.path.join(host.tmp, 'scale-%s.json' % state)
        with open(definition, 'w') as handle:
            json.dump(scale_network(n, state), handle)
        run = host.playbook(playbook, {'bench_definition': definition, 'ansible_python_interpreter': interpreter},
                            prefix=prefix)
        with open(rss_log) as handle:
            rss = max(int(line) for line in handle if line.strip()) / 1024.0
        rows.append(dict(method='network: ' + label, step=step, n=n, wall=run.wall, module=run.module_time(),
                         cpu=run.cpu, tasks=run.task_count(), module_runs=run.module_runs(), changed=run.changed(),
                         ping=run.module_time(prefix='ansible.builtin.ping'), rss=rss))
        made = [name for name in netns_names() if name.startswith(SCALE_PREFIX)]
        if len(made) != (0 if state == 'absent' else n):
            raise RuntimeError('scale N=%d %s: %d namespaces after the %s' % (n, label, len(made), step))
    if any(name.startswith('scv') for name in links()):
        raise RuntimeError('scale N=%d: host-side veth ends left after the teardown' % n)
    rows.extend(scale_floor(host.tmp, n))


def scale_floor(tmp, n):
    """The p2p recipe through `ip -batch`: one batch on the host (namespaces, veth pairs with the
    peer made in its namespace, the host ends addressed and up), one per namespace (lo up, address,
    eth0 up, default route), forwarding and one `nft -f`; the teardown one `ip -batch` of `netns
    del`, then the wait for the host ends, as floor_cycle. Twice: each namespace's batch started
    from this process setns()ed into it (the project's floor), then through nsenter (issue 16's)."""
    import ipaddress
    net = ipaddress.ip_network(SCALE_NET)
    host_lines, ns_files, up_lines = [], [], []
    for i in range(n):
        ns, host_end = 'scfl%d' % i, net.network_address + 2 * i
        host_lines += ['netns add %s' % ns, 'link add scf%d type veth peer name eth0 netns %s' % (i, ns)]
        up_lines += ['addr add %s/31 dev scf%d' % (host_end, i), 'link set scf%d up' % i]
        path = os.path.join(tmp, 'scale-%s.batch' % ns)
        with open(path, 'w') as handle:
            handle.write('link set lo up\naddr add %s/31 dev eth0\nlink set eth0 up\nroute add default via %s\n'
                         % (host_end + 1, host_end))
        ns_files.append((ns, path))
    host_batch, host_then = os.path.join(tmp, 'scale-host.batch'), os.path.join(tmp, 'scale-host-up.batch')
    with open(host_batch, 'w') as handle:
        handle.write('\n'.join(host_lines) + '\n')
    with open(host_then, 'w') as handle:
        handle.write('\n'.join(up_lines) + '\n')
    nft = os.path.join(tmp, 'scale.nft')
    with open(nft, 'w') as handle:
        handle.write('table ip lnbench_floor {\n chain postrouting {\n  type nat hook postrouting priority 100;\n'
                     '  ip saddr %s oifname "%s" masquerade\n }\n}\n' % (SCALE_NET, UPLINK))
    del_batch = os.path.join(tmp, 'scale-del.batch')
    with open(del_batch, 'w') as handle:
        handle.write(''.join('netns del scfl%d\n' % i for i in range(n)))
    rows = []
    # the project's floor (from this process setns()ed into each namespace: no nsenter process),
    # then the floor as issue 16 defines it (each namespace's batch started through nsenter)
    for method, via_nsenter in (('ip -batch p2p', False), (SCALE_ISSUE_FLOOR, True)):
        quiet_first('scale N=%d: %s floor' % (n, method))
        log('scale N=%d: %s floor' % (n, method))
        # the host ends are IPv4-only: IPv6 off on them before they come up, as the module does
        build, build_cpu = floor_build(host_batch, ns_files, nft, ['scf%d' % i for i in range(n)], host_then,
                                       nsenter=via_nsenter)
        made = [name for name in netns_names() if name.startswith('scfl')]
        if len(made) != n:
            raise RuntimeError('%s made %d namespaces, not %d' % (method, len(made), n))
        quiet_first('scale N=%d: %s floor teardown' % (n, method))
        log('scale N=%d: %s floor teardown' % (n, method))
        cpu = children_cpu() + self_cpu()
        start = time.perf_counter()
        subprocess.run(['ip', '-batch', del_batch], check=True)
        subprocess.run(['nft', 'delete', 'table', 'ip', 'lnbench_floor'], check=True)
        wait_gone('scf', deadline=time.monotonic() + 600)
        with open('/proc/sys/net/ipv4/ip_forward', 'w') as handle:
            handle.write('0\n')
        teardown = time.perf_counter() - start
        teardown_cpu = children_cpu() + self_cpu() - cpu
        rows += [dict(method=method, step='converge', n=n, wall=build, module=build, cpu=build_cpu, tasks=None,
                      module_runs=n + 2, changed=None),
                 dict(method=method, step='teardown', n=n, wall=teardown, module=teardown, cpu=teardown_cpu,
                      tasks=None, module_runs=1, changed=None)]
    return rows


def neighbour_table():
    """The kernel's IPv4 neighbour table fill, which all namespaces of the machine share: the lab's
    hosts are namespaces of one kernel, so H x 50 namespaces and their gateways' entries count
    against one net.ipv4.neigh.default.gc_thresh3 (1024 by default)."""
    text = sh(['ip', '-s', 'ntable', 'show', 'name', 'arp_cache'], check=False)
    entries, thresh = re.search(r'entries (\d+)', text), re.search(r'thresh3 (\d+)', text)
    if not entries or not thresh:
        return ''
    return (' (kernel ARP table, shared by every namespace on the machine: %s entries, gc_thresh3 %s%s)'
            % (entries.group(1), thresh.group(1),
               ': full, so namespaces lose their neighbours' if int(entries.group(1)) >= int(thresh.group(1)) - 32
               else ''))


def fleet_step(host, hosts, cross_host, rows, notes):
    """site.yml, its re-run, verify.yml and teardown.yml on H lab hosts over SSH. verify.yml pings
    from every namespace at once; with the full matrix (gateway, internet, every other host) that is
    H x 50 x (H + 2) pings, which a 2-core machine cannot answer within ping's 1 s for H=20, so
    cross_host=False keeps it to the gateway and the internet, and verify.yml runs on at most 5
    hosts at a time (--forks 5)."""
    log('fleet H=%d: lab up' % hosts)
    lab_dir = os.path.join(host.tmp, 'lab%d' % hosts)
    sh([sys.executable, LAB_PY, 'up', '--hosts', str(hosts), '--dir', lab_dir, '--timeout', '60'])
    try:
        inventory = ('-i', os.path.join(lab_dir, 'inventory.yml'))
        base = {'bridge_network_namespaces': FLEET_NAMESPACES, 'bridge_network_host_gw': True,
                'bridge_network_install_deps': False}
        site = os.path.join(REPO, 'playbooks', 'site.yml')

        def row(step, run):
            rows.append(dict(method='fleet', step=step, hosts=hosts, n=FLEET_NAMESPACES, wall=run.wall, cpu=run.cpu,
                             module=run.max_host_module_time(), tasks=run.task_count(),
                             tasks_equal=len(set(run.task_count(h, run_once=False) for h in run.hosts())) == 1,
                             changed=run.changed(), failed=run.failed()))
        # The first playbook opens the SSH connections and every later one reuses them (ControlPersist,
        # 60 s from the last use): the yardstick is the second ping, over open connections like every
        # run it is compared with. The first is reported, not compared: it would flatter the role.
        log('fleet H=%d: one ping task, connections new' % hosts)
        row('ping, connections new', host.playbook(os.path.join(BENCH, 'playbooks', 'ping.yml'), base, inventory,
                                                   forks=hosts))
        log('fleet H=%d: one ping task' % hosts)
        row('ping', host.playbook(os.path.join(BENCH, 'playbooks', 'ping.yml'), base, inventory, forks=hosts))
        log('fleet H=%d: site.yml' % hosts)
        row('converge', host.playbook(site, base, inventory, forks=hosts))
        log('fleet H=%d: re-run' % hosts)
        row('re-run', host.playbook(site, base, inventory, forks=hosts))
        # the same two without pipelining (the lab's inventory turns it on): what it saves
        off = dict(base, ansible_pipelining=False)
        log('fleet H=%d: one ping task, pipelining off' % hosts)
        row('ping, pipelining off', host.playbook(os.path.join(BENCH, 'playbooks', 'ping.yml'), off, inventory,
                                                  forks=hosts))
        log('fleet H=%d: re-run, pipelining off' % hosts)
        row('re-run, pipelining off', host.playbook(site, off, inventory, forks=hosts))
        log('fleet H=%d: verify.yml' % hosts)
        checked = host.playbook(os.path.join(REPO, 'playbooks', 'verify.yml'),
                                dict(base, bridge_network_verify_internet=INTERNET,
                                     bridge_network_verify_cross_host=cross_host),
                                inventory, forks=min(hosts, 5), check=False)
        row('verify (gateway, internet%s)' % (', every other host' if cross_host else ''), checked)
        if checked.rc:
            misses = [line for line in checked.output.splitlines() if 'no answer' in line]
            notes.append('fleet H=%d: verify.yml failed on %d hosts%s%s' % (
                hosts, checked.failed(), neighbour_table(), (': ' + misses[0][:240] + ' ...') if misses else ''))
        log('fleet H=%d: teardown.yml' % hosts)
        row('teardown', host.playbook(os.path.join(REPO, 'playbooks', 'teardown.yml'), base, inventory,
                                      forks=hosts))
    finally:
        log('fleet H=%d: lab down' % hosts)
        sh([sys.executable, LAB_PY, 'down', '--dir', lab_dir, '--purge'], check=False)


# ---------------------------------------------------------------------------------------------
# report


def find(rows, method, step, n, **kw):
    for row in rows:
        if row['method'] == method and row['step'] == step and row['n'] == n and \
                all(row.get(k) == v for k, v in kw.items()):
            return row
    return None


def targets(rows):
    """[(target, measured, PASS/FAIL/n/a)]"""
    out = []
    conv = find(rows, 'role', 'converge', 1000)
    rerun = find(rows, 'role', 're-run', 1000)
    down = find(rows, 'role', 'teardown', 1000)
    floor = find(rows, 'ip -batch', 'converge', 1000)

    if conv:
        out.append(('N=1000 converge: module time <= 5 s', '%.2f s' % conv['module'], verdict(conv['module'] <= 5)))
    else:
        out.append(('N=1000 converge: module time <= 5 s', 'not measured', 'n/a'))
    if conv and floor:
        ratio = conv['module'] / floor['wall']
        out.append(('N=1000 converge: module time <= 1.5x the ip -batch floor',
                    '%.2fx (%.2f s / %.2f s)' % (ratio, conv['module'], floor['wall']), verdict(ratio <= 1.5)))
    else:
        out.append(('N=1000 converge: module time <= 1.5x the ip -batch floor', 'not measured', 'n/a'))
    if rerun:
        out.append(('N=1000 re-run: module time <= 2 s', '%.2f s' % rerun['module'], verdict(rerun['module'] <= 2)))
    else:
        out.append(('N=1000 re-run: module time <= 2 s', 'not measured', 'n/a'))
    reruns = [r for r in rows if r['method'] in ('role', 'fleet') and r['step'] == 're-run']
    changed = sum(r['changed'] for r in reruns)
    out.append(('re-run: changed=0 (every N, and the fleet)',
                'changed=%d over %d re-runs' % (changed, len(reruns)), verdict(changed == 0) if reruns else 'n/a'))
    if down:
        out.append(('N=1000 teardown: module time <= 2 s', '%.2f s' % down['module'], verdict(down['module'] <= 2)))
    else:
        out.append(('N=1000 teardown: module time <= 2 s', 'not measured', 'n/a'))
    sizes = sorted(set(r['n'] for r in rows if r['method'] == 'role'))
    if len(sizes) > 1:
        counts = dict((n, tuple(find(rows, 'role', s, n)['tasks'] for s in ('converge', 're-run', 'teardown')))
                      for n in sizes)
        low, high = sizes[0], sizes[-1]
        out.append(('tasks per host: N=%d == N=%d (converge, re-run, teardown)' % (low, high),
                    ' / '.join('N=%d: %s' % (n, ', '.join(map(str, counts[n]))) for n in sizes),
                    verdict(len(set(counts.values())) == 1)))
    else:
        out.append(('tasks per host: N=10 == N=1000', 'one N only', 'n/a'))
    role100 = find(rows, 'role', 'converge', 100)
    loop100 = find(rows, 'command loop', 'converge', 100)
    if role100 and loop100:
        ratio = loop100['wall'] / role100['wall']
        label = ' (loop extrapolated from N=%d)' % loop100['extrapolated_from'] if loop100.get('extrapolated_from') else ''
        out.append(('N=100: end to end >= 100x faster than the command loop',
                    '%.0fx (%.1f s / %.2f s)%s' % (ratio, loop100['wall'], role100['wall'], label),
                    verdict(ratio >= 100)))
        ratio = '%.0fx (%.1f s / %.2f s)%s' % (loop100['module'] / role100['module'], loop100['module'],
                                               role100['module'], label)
        out.append(('(for comparison) N=100 module time vs the loop\'s command tasks', ratio, 'info'))
    else:
        out.append(('N=100: end to end >= 100x faster than the command loop', 'not measured', 'n/a'))
    return (out + publish_targets(rows) + scale_targets(rows) + bridge_scale_targets(rows) + fleet_targets(rows)
            + controller_targets(rows) + boot.boot_targets(rows))


def publish_targets(rows):
    """Issue 14: 1000 published ports in one task are one nf_tables transaction and <= 1 s of
    module time; the ratio to the nft -f floor for information."""
    out = []
    for module in ('port_publish', 'network'):
        conv = find(rows, 'publish: ' + module, 'converge', 1000)
        label = 'N=1000 published ports, one %s task: module time <= %g s' % (module, PUBLISH_LIMIT)
        out.append((label, '%.2f s' % conv['module'], verdict(conv['module'] <= PUBLISH_LIMIT)) if conv
                   else (label, 'not measured', 'n/a'))
        if conv:
            # Ansible's own cost of a task, measured by a ping task in the same play: what is left
            # is the module's (and Ansible's handling of its thousand items in and out)
            out.append(('(for comparison) the same, net of a ping task in the same play (%s)' % module,
                        '%.2f s (%.2f s - ping %.2f s)' % (conv['module'] - conv['ping'], conv['module'], conv['ping']),
                        'info'))
    runs = [r for r in rows if r['method'].startswith('publish: ')]
    label = 'published ports: one nf_tables transaction per converge and teardown, none on re-run (every N)'
    if not runs:
        return out + [(label, 'not measured', 'n/a')]
    want = {'converge': 1, 're-run': 0, 'teardown': 1}
    seen = dict((step, sorted(set(g for r in runs if r['step'] == step for g in r['generation_samples'])))
                for step in want)
    out.append((label, '; '.join('%s: %s' % (step, '/'.join(map(str, seen[step]))) for step in want) +
                ' (%d runs)' % sum(len(r['generation_samples']) for r in runs),
                verdict(all(seen[step] == [count] for step, count in want.items()))))
    reruns = [r for r in runs if r['step'] == 're-run']
    out.append(('published ports re-run: changed=0 (every N, both modules)',
                'changed=%d over %d re-runs' % (sum(r['changed'] for r in reruns), len(reruns)),
                verdict(not any(r['changed'] for r in reruns))))
    n = max(r['n'] for r in runs)
    floor = find(rows, 'nft -f', 'converge', n)
    if floor:
        ratios = ['%s %.1fx (%.2f s / %.3f s)' % (r['method'].split(' ')[1], r['module'] / floor['wall'], r['module'],
                                                  floor['wall'])
                  for r in runs if r['n'] == n and r['step'] == 'converge']
        out.append(('(for comparison) N=%d published ports: module time vs one nft -f of the same rules' % n,
                    ', '.join(ratios), 'info'))
    return out


def fmt(value, spec='%.2f'):
    return '-' if value is None else spec % value


def main_table(rows):
    header = ['method', 'step', 'N', 'tasks/host', 'module runs', 'module s', 'wall s', 'CPU s', 'ms/ns module',
              'ms/ns wall', 'changed']
    lines = []
    methods = ['role', 'ip -batch', 'command loop', 'community.general.ip_netns loop']
    ordered = sorted((row for row in rows if row['method'] in methods),
                     key=lambda row: (methods.index(row['method']), row['n']))
    for row in ordered:
        n = row['n']
        extrapolated = row.get('extrapolated_from')
        method = row['method'] + (' (extrapolated from N=%d)' % extrapolated if extrapolated else '')
        lines.append([method, row['step'], str(n), fmt(row.get('tasks'), '%d'), fmt(row.get('module_runs'), '%d'),
                      fmt(row['module']), fmt(row['wall']), fmt(row.get('cpu')),
                      fmt(row['module'] * 1000.0 / n if n else None, '%.1f'),
                      fmt(row['wall'] * 1000.0 / n if n else None, '%.1f'), fmt(row.get('changed'), '%d')])
    return header, lines


def publish_table(rows):
    header = ['method', 'step', 'ports', 'rules', 'nf_tables transactions', 'module s', 'wall s', 'CPU s',
              'x nft -f floor', 'changed']
    methods = ['publish: port_publish', 'publish: network', 'nft -f']
    lines = []
    for row in sorted((r for r in rows if r['method'] in methods), key=lambda r: (r['n'], methods.index(r['method']))):
        floor = find(rows, 'nft -f', 'converge', row['n'])
        ratio = '%.1f' % (row['module'] / floor['wall']) if floor and row['step'] == 'converge' else '-'
        lines.append([row['method'], row['step'], str(row['n']), fmt(row.get('rules'), '%d'),
                      ' '.join(map(str, row.get('generation_samples') or [row['generations']])),
                      fmt(row['module']), fmt(row['wall']), fmt(row.get('cpu')), ratio, fmt(row.get('changed'), '%d')])
    return header, lines


def scale_table(rows):
    header = ['method', 'step', 'N', 'module s', 'ping task s', 'wall s', 'CPU s', 'ms/ns module', 'module peak RSS MB',
              'x ip -batch floor', 'x floor via nsenter', 'changed']
    lines = []
    for row in sorted((r for r in rows if r['method'].startswith(('network: p2p', 'ip -batch p2p'))),
                      key=lambda r: (r['n'], r['method'].startswith('ip'), r['method'])):
        ratios = []
        for method in ('ip -batch p2p', SCALE_ISSUE_FLOOR):
            floor = find(rows, method, row['step'], row['n'])
            ratios.append('%.2f' % (row['module'] / floor['wall']) if floor and not row['method'].startswith('ip')
                          else '-')
        lines.append([row['method'], row['step'], str(row['n']), fmt(row['module']), fmt(row.get('ping')),
                      fmt(row['wall']), fmt(row.get('cpu')), fmt(row['module'] * 1000.0 / row['n'], '%.2f'),
                      fmt(row.get('rss'), '%.0f')] + ratios + [fmt(row.get('changed'), '%d')])
    return header, lines


FLEET_HOSTS, FLEET_CONVERGE_RATIO, FLEET_TEARDOWN_RATIO = 20, 2.5, 1.3


def bridge_scale_targets(rows):
    runs = dict((r['step'], r) for r in rows if r['method'] == 'role bridge')
    label = 'bridge mode N=%d on one host: converges, re-runs with changed=0, tears down with nothing left' % (
        BRIDGE_SCALE_N)
    if not runs:
        return [(label, 'not measured', 'n/a')]
    n = max(r['n'] for r in runs.values())
    text = '; '.join('%s %.1f s %s' % (step, runs[step]['module'], 'ok' if runs[step]['ok'] else 'NOT OK')
                     for step in ('converge', 're-run', 'teardown') if step in runs)
    return [(label.replace('N=%d' % BRIDGE_SCALE_N, 'N=%d' % n), '%s (%d bridges)' % (text, runs['converge']['bridges']),
             'PASS' if len(runs) == 3 and all(r['ok'] for r in runs.values()) else 'FAIL')]


def fleet_targets(rows):
    """Issue 16: the role over a fleet costs little more than Ansible's own least (one ping task)."""
    runs = dict((r['step'], r) for r in rows if r['method'] == 'fleet' and r['hosts'] == FLEET_HOSTS)
    out = []
    for step, limit in (('converge', FLEET_CONVERGE_RATIO), ('teardown', FLEET_TEARDOWN_RATIO)):
        label = 'fleet of %d lab hosts x %d namespaces: %s wall <= %gx one ping task\'s' % (
            FLEET_HOSTS, FLEET_NAMESPACES, step, limit)
        if step in runs and 'ping' in runs:
            ratio = runs[step]['wall'] / runs['ping']['wall']
            out.append((label, '%.2fx (%.1f s / %.1f s)' % (ratio, runs[step]['wall'], runs['ping']['wall']),
                        verdict(ratio <= limit)))
        else:
            out.append((label, 'not measured', 'n/a'))
    return out


def scale_targets(rows):
    """Issue 16: p2p N=10000 under a hard limit of 4096 open files, in one network task."""
    n = 10000
    label = 'p2p N=%d (hard nofile %d), one network task' % (n, SCALE_NOFILE)
    method = 'network: p2p (nofile %d)' % SCALE_NOFILE
    conv, rerun, down = (find(rows, method, step, n) for step in ('converge', 're-run', 'teardown'))
    fconv, fdown = find(rows, SCALE_ISSUE_FLOOR, 'converge', n), find(rows, 'ip -batch p2p', 'teardown', n)
    strict = find(rows, 'ip -batch p2p', 'converge', n)
    if not conv:
        return [(label + ': converge, re-run, teardown, RSS', 'not measured', 'n/a')]
    out = [(label + ': converge <= %g s module time' % SCALE_CONVERGE_LIMIT, '%.1f s' % conv['module'],
            verdict(conv['module'] <= SCALE_CONVERGE_LIMIT))]
    if fconv:
        # the issue's floor decides; the project's stricter one is told beside it
        beside = '; %.2fx the stricter floor without nsenter (%.1f s)' % (
            conv['module'] / strict['wall'], strict['wall']) if strict else ''
        out.append((label + ': converge <= %gx the per-namespace ip -batch floor (each batch through nsenter)'
                    % SCALE_FLOOR_RATIO,
                    '%.2fx (%.1f s / %.1f s)%s' % (conv['module'] / fconv['wall'], conv['module'], fconv['wall'],
                                                   beside),
                    verdict(conv['module'] <= SCALE_FLOOR_RATIO * fconv['wall'])))
    if rerun:
        out.append((label + ': re-run <= %g s with changed=0' % SCALE_RERUN_LIMIT,
                    '%.1f s, changed=%d' % (rerun['module'], rerun['changed']),
                    verdict(rerun['module'] <= SCALE_RERUN_LIMIT and not rerun['changed'])))
    if down and fdown:
        out.append((label + ': teardown <= %gx the floor\'s' % SCALE_TEARDOWN_RATIO,
                    '%.2fx (%.1f s / %.1f s)' % (down['module'] / fdown['wall'], down['module'], fdown['wall']),
                    verdict(down['module'] <= SCALE_TEARDOWN_RATIO * fdown['wall'])))
    peak = max(r['rss'] for r in (conv, rerun, down) if r)
    out.append((label + ': module peak RSS <= %d MB' % SCALE_RSS_LIMIT_MB, '%.0f MB' % peak,
                verdict(peak <= SCALE_RSS_LIMIT_MB)))
    return out


def controller_rows(sizes, repeat):
    """bench/controller.py's measurement, as rows of this report: method 'controller: once' or
    'controller: per-host', step 'plan', n = H."""
    sys.path.insert(0, BENCH)
    import controller
    rows = []
    for row in controller.measure(sizes, repeat, log=log):
        rows.append(dict(row, method='controller: ' + row['method'], step='plan', n=row['hosts'],
                         wall=row['seconds'], module=None))
    return rows


def controller_table(rows):
    header = ['H', 'way', 'total s', 'once-per-play s', 'per-host s', 'ms/host', 'x per-host way', 'plans equal']
    lines = []
    mine = sorted((r for r in rows if r['method'].startswith('controller: ')),
                  key=lambda r: (r['n'], r['method'] != 'controller: once'))
    for row in mine:
        old = find(rows, 'controller: per-host', 'plan', row['n'])
        speedup = '%.1f' % (old['wall'] / row['wall']) if old and row['method'] == 'controller: once' else '-'
        lines.append([str(row['n']), row['method'].split(': ', 1)[1], '%.3f' % row['wall'], '%.3f' % row['once'],
                      '%.3f' % row['per_host'], '%.3f' % row['ms_per_host'], speedup, 'yes' if row['same'] else 'NO'])
    return header, lines


def controller_targets(rows):
    """Issue 16: the controller's allocation and planning for H=1000 hosts <= 10 s, and linear."""
    sys.path.insert(0, BENCH)
    import controller
    mine = [dict(r, method=r['method'].split(': ', 1)[1], seconds=r['wall'])
            for r in rows if r['method'].startswith('controller: ')]
    return controller.targets(mine)


def fleet_table(rows):
    header = ['hosts', 'namespaces/host', 'step', 'tasks/host (all equal but run_once)', 'module s (slowest host)',
              'wall s', 'CPU s (controller)', 'changed', 'failed']
    lines = [[str(r['hosts']), str(r['n']), r['step'], '%d (%s)' % (r['tasks'], 'yes' if r['tasks_equal'] else 'NO'),
              fmt(r['module']), fmt(r['wall']), fmt(r.get('cpu')), str(r['changed']), str(r['failed'])]
             for r in rows if r['method'] == 'fleet']
    return header, lines


def text_table(header, lines):
    widths = [max(len(x) for x in col) for col in zip(header, *lines)] if lines else [len(h) for h in header]
    out = ['  '.join(h.ljust(w) for h, w in zip(header, widths)), '  '.join('-' * w for w in widths)]
    out += ['  '.join(c.ljust(w) for c, w in zip(line, widths)) for line in lines]
    return '\n'.join(out)


def md_table(header, lines):
    out = ['| ' + ' | '.join(header) + ' |', '|' + '|'.join(' --- ' for _column in header) + '|']
    out += ['| ' + ' | '.join(line) + ' |' for line in lines]
    return '\n'.join(out)


def plot(rows, path, title):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fleet = [r for r in rows if r['method'] == 'fleet']
    fig, axes = plt.subplots(1, 2 if fleet else 1, figsize=(13 if fleet else 8, 6.5), squeeze=False)
    ax = axes[0][0]

    def series(method, step, key, label, style, **kw):
        points = sorted((r['n'], r[key]) for r in rows if r['method'] == method and r['step'] == step
                        and not r.get('extrapolated_from'))
        if points:
            ax.plot([p[0] for p in points], [p[1] for p in points], style, label=label, **kw)
        return points
    series('role', 'converge', 'wall', 'role converge, playbook wall', 'o-', color='tab:blue')
    series('role', 'converge', 'module', 'role converge, module time', 's-', color='tab:cyan')
    series('role', 're-run', 'module', 'identical re-run, module time', '^-', color='tab:green')
    series('role', 'teardown', 'module', 'teardown, module time', 'v-', color='tab:olive')
    series('ip -batch', 'converge', 'wall', 'ip -batch floor', 'D-', color='black')
    loop = series('command loop', 'converge', 'wall', 'command: loop (measured)', 'x-', color='tab:red', markersize=9)
    series('community.general.ip_netns loop', 'converge (netns only)', 'wall',
           'community.general.ip_netns loop, namespaces only', '+-', color='tab:purple', markersize=9)
    sizes = sorted(set(r['n'] for r in rows if r['method'] in ('role', 'ip -batch')))
    if loop and sizes:
        base = [r for r in rows if r['method'] == 'command loop' and not r.get('extrapolated_from')]
        biggest = max(base, key=lambda r: r['n'])
        xs = sorted(set(sizes + [p[0] for p in loop]))
        ys = [extrapolate_loop(biggest, x)['wall'] for x in xs]
        ax.plot(xs, ys, ':', color='tab:red', label='command: loop, extrapolated (%.2f s/ns)'
                % (biggest['loop_time'] / biggest['n']))
    ax.set_xscale('log')
    ax.set_yscale('log')
    ax.set_xlabel('namespaces on one host (N)')
    ax.set_ylabel('seconds')
    ax.set_title('One host: time against N')
    ax.grid(True, which='both', alpha=0.3)
    if ax.get_legend_handles_labels()[0]:  # a run of the published ports only draws no line here
        ax.legend(fontsize=8, loc='upper center', bbox_to_anchor=(0.5, -0.13), ncol=2)
    if fleet:
        ax = axes[0][1]
        for step, style, color in (('converge', 'o-', 'tab:blue'), ('re-run', '^-', 'tab:green'),
                                   ('verify', 's-', 'tab:orange'), ('teardown', 'v-', 'tab:olive')):
            points = sorted((r['hosts'], r['wall']) for r in fleet if r['step'].split(' ')[0] == step)
            if points:
                ax.plot([p[0] for p in points], [p[1] for p in points], style, color=color,
                        label={'converge': 'site.yml', 're-run': 'site.yml again (no change)',
                               'verify': 'verify.yml', 'teardown': 'teardown.yml'}[step])
        ax.set_xticks(sorted(set(r['hosts'] for r in fleet)))
        ax.set_xlabel('lab hosts over SSH (H), %d namespaces each' % FLEET_NAMESPACES)
        ax.set_ylabel('seconds (playbook wall time)')
        ax.set_title('Fleet: time against H')
        ax.set_ylim(bottom=0)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8, loc='upper center', bbox_to_anchor=(0.5, -0.13), ncol=2)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def environment(python):
    def version(argv):
        try:
            return sh(argv, check=False).strip().splitlines()[-1]
        except (OSError, IndexError):
            return '?'
    head = version(['git', '-C', REPO, 'log', '-1', '--format=%h %s'])
    engine = version(['git', '-C', REPO, 'log', '-1', '--format=%h %ad', '--date=iso', '--', 'plugins/module_utils'])
    dirty = sh(['git', '-C', REPO, 'status', '--porcelain', '--', 'plugins'], check=False).strip()
    return {
        'date': datetime.datetime.now().strftime('%Y-%m-%d %H:%M'),
        'cpus': os.cpu_count(),
        'kernel': platform.release(),
        'python': '%s (%s)' % (python, version([python, '-c', 'import sys; print(sys.version.split()[0])'])),
        'pyroute2': version([python, '-c', 'import pyroute2; print(getattr(pyroute2, "__version__", "?"))']),
        'ansible-core': version([sys.executable, '-c', 'import ansible.release as r; print(r.__version__)']),
        'ip': version(['ip', '-V']),
        'commit': head,
        'engine commit': engine + (' (plugins/ has uncommitted changes)' if dirty else ''),
        'load': open('/proc/loadavg').read().split()[:3],
    }


def breakdown_table(rows):
    """Module time per task of the role at the largest N, for each step: a row per task (the role's
    read and apply are both its action, told apart by their names)."""
    sizes = [r['n'] for r in rows if r['method'] == 'role' and r.get('detail')]
    if not sizes:
        return None, None, None
    n = max(sizes)
    steps = [find(rows, 'role', step, n) for step in ('converge', 're-run', 'teardown')]
    steps = [step for step in steps if step]
    order = []
    for step in steps:
        for task in step['detail']:
            key = (task[1], task[0].split(' : ')[-1])
            if key not in order and (task[1].startswith('linuxnet.netns.') or task[4] >= 0.2):
                order.append(key)
    lines = []
    for action, name in order:
        cells = []
        for step in steps:
            ran = [t for t in step['detail'] if (t[1], t[0].split(' : ')[-1]) == (action, name) and t[2] != 'skipped']
            cells.append('%.2f%s' % (sum(t[4] for t in ran), ' (changed)' if any(t[3] for t in ran) else '')
                         if ran else '-')
        lines.append(['%s (%s)' % (name, action)] + cells)
    return n, ['task (action)'] + [step['step'] + ' s' for step in steps], lines


def report(rows, env, notes, args_repeat):
    header, lines = main_table(rows)
    fheader, flines = fleet_table(rows)
    pheader, plines = publish_table(rows)
    sheader, slines = scale_table(rows)
    cheader, clines = controller_table(rows)
    goals = targets(rows)
    text = [text_table(header, lines)]
    if plines:
        text += ['', text_table(pheader, plines)]
    if slines:
        text += ['', text_table(sheader, slines)]
    if flines:
        text += ['', text_table(fheader, flines)]
    if clines:
        text += ['', text_table(cheader, clines)]
    text += ['', text_table(['target', 'measured', 'verdict'], [list(g) for g in goals])]
    text += [''] + ['note: ' + n for n in notes]
    md = ['# Benchmark: 1000 namespaces per host, side by side', '',
          '<!-- generated by bench/run.py; do not edit by hand -->', '',
          'Regenerate (as root; this run took %.0f minutes):' % (env['seconds'] / 60.0), '',
          '```sh', 'tests/sandbox.sh python3 bench/run.py', '```', '',
          'Measured %s on %d CPUs, kernel %s, load average %s at the start and %s at the end; '
          'ansible-core %s, modules run by %s with pyroute2 %s; %s. Repository at %s; engine '
          '(plugins/module_utils) at %s.'
          % (env['date'], env['cpus'], env['kernel'], ' '.join(env['load']), ' '.join(env['load_end']),
             env['ansible-core'], env['python'], env['pyroute2'], env['ip'], env['commit'], env['engine commit']),
          '', '![time against N](benchmark.png)', '',
          '## Targets', '', md_table(['target', 'measured', 'verdict'], [list(g) for g in goals]), '',
          '## One host, N namespaces', '', md_table(header, lines), '']
    n, bheader, blines = breakdown_table(rows)
    if blines:
        md += ['## Where the module time goes at N=%d' % n, '',
               'Seconds per task (runner start to result) of the role run kept in the table above.', '',
               md_table(bheader, blines), '']
    if plines:
        md += ['## Published ports: one task, one host', '', md_table(pheader, plines), '']
    if slines:
        md += ['## Ten thousand namespaces: p2p in one task, one host', '', md_table(sheader, slines), '']
    if flines:
        md += ['## The fleet over SSH', '', md_table(fheader, flines), '']
    if clines:
        md += ['## The controller at fleet scale', '',
               'The role\'s filters alone (`bench/controller.py`), fed a recorded `netns_info` result per host; '
               'seconds for the whole fleet. **once**: what the role does (the allocation and the fleet\'s index '
               'once per play, then each host\'s own plan); **per-host**: every host allocating the whole fleet '
               'and planning alone, as the role did before.', '', md_table(cheader, clines), '']
    md += ['## What is measured', '',
           '- **role**: `playbooks/site.yml` (role `bridge_network`, bridge mode, a /%d subnet, NAT out the '
           'uplink) against the host with a local connection; **re-run** is the identical second run, '
           '**teardown** is `playbooks/teardown.yml` (one module run: the role reads nothing first, the '
           '`network` module purges what matches its names and prefixes). The host is a fresh network namespace whose '
           'default route leaves through `uplink0` to a namespace acting as its router.' % ROLE_PREFIXLEN,
           '- **module s**: the sum of the durations (runner start to result, what '
           '`ansible.posix.profile_tasks` reports) of the tasks running `linuxnet.netns.*` modules '
           '(for the loops: of the `command` / `ip_netns` tasks), recorded by '
           '`bench/callback_plugins/linuxnet_bench.py`. It includes Ansible\'s per-task cost (0.2 s '
           'or more: templating, shipping and starting the module; compare N=10). **wall s**: the whole '
           '`ansible-playbook` process, start-up, fact tasks and templating included. **CPU s**: user + '
           'system CPU seconds of everything the step started (getrusage of the waited-for children), '
           'which other load on the machine disturbs far less than the clock.',
           '- The role and the floor run %d times at each N%s; the table keeps, for each step, the run '
           'with the least module time (the floor: the least wall time). The command loop, '
           'ip_netns and the fleet run once.' % (args_repeat, ' (converge, re-run, teardown, again)'
                                                 if args_repeat > 1 else ''),
           '- **tasks/host**: task results for the host in the callback data (skipped ones included); '
           '**module runs**: module executions (a looped task counts one per item).',
           '- **ip -batch**: the floor. One `ip -batch` on the host (bridge, `netns add`, `link add ... '
           'peer name eth0 netns NS`, port on the bridge and up) and one `ip -batch` per namespace (lo '
           'up, address, eth0 up, default route), started from a parent that `setns()`es into the '
           'namespace (batch lines cannot switch namespace, and `ip -n NS` copies the mount table, '
           'all N `/run/netns` mounts, on every call), plus the forwarding sysctl and one `nft -f` '
           'for the MASQUERADE rule; `time.perf_counter()` around all of it. Teardown: one batch of '
           '`netns del`, until the kernel has removed the host-side veth ends, then the bridge (by '
           'then without ports, as the engine orders it).',
           '- **command loop**: `bench/playbooks/command_loop.yml`, the tutorial\'s `ip` commands as '
           '`ansible.builtin.command` tasks with `loop:` (netns add, lo up, veth add, set netns, addr add, '
           'link up, master, host end up, route add: 9 module runs per namespace). Rows marked '
           '*extrapolated* scale the looped tasks linearly from the measured N.',
           '- **community.general.ip_netns loop**: `bench/playbooks/ip_netns_loop.yml`; that module '
           'manages namespaces only, so the row is one step of the network, not all of it.',
           '- **published ports** (issue 14): a bridge and %d namespaces on it made with `ip` (not measured), '
           'then host ports %d.. (TCP) published to the namespaces in turn (`target_netns`, port %d.. in '
           'each), one `ports` item per port, in ONE task of `linuxnet.netns.port_publish` and, separately, '
           'of `linuxnet.netns.network`\'s `publish` (`bench/playbooks/publish.yml`): converge, identical '
           're-run, teardown (the same items with `state: absent`); each runs as often as the role. **rules**: '
           'rules of ours in the table after the converge (DNAT in prerouting and output, the hairpin '
           'masquerade, the forward accepts). **nf_tables transactions**: the ruleset generation (the '
           'kernel counts one per committed transaction) after the step less the one before, for each '
           'sample. **nft -f**: the floor, the table exactly as `nft list table inet linuxnet_netns` '
           'printed it after the converge, renamed and loaded into a fresh table by one `nft -f` '
           '(`time.perf_counter()` around the process), in the same run after the teardown.'
           % (PUBLISH_NAMESPACES, PUBLISH_FIRST_PORT, PUBLISH_TARGET_PORT),
           '- **p2p at scale** (issue 16): `bench/playbooks/scale.yml`, N namespaces `%s0..` each joined '
           'to the host by its own veth pair, a /31 at each end from %s, a default route via the host '
           'end, forwarding scoped to the prefix and MASQUERADE out of the uplink, all in ONE '
           '`linuxnet.netns.network` task, its lists as one `definition` read from a JSON file by the '
           '`file` lookup, run by `ansible-playbook` under `prlimit --nofile=%d:%d` '
           '(the module inherits the hard limit); converge, identical re-run, teardown once each. **ping '
           'task s**: an `ansible.builtin.ping` task in the same play, what any module task costs before '
           'the module does anything. **module peak RSS**: the module process\'s maximum resident set '
           '(getrusage of a wrapper set as the interpreter). **ip -batch p2p**: the floor, as for the '
           'bridge: one batch on the host (`netns add`, `link add scfI type veth peer name eth0 netns '
           'NS`, the host end\'s address, up), one per namespace from a parent setns()ed into it (lo up, '
           'address, eth0 up, default route), the forwarding write and one `nft -f`; its teardown one '
           'batch of `netns del` and the wait for the host ends. **ip -batch p2p via nsenter**: the floor '
           'as issue 16 defines it, the same batches with each namespace\'s started through `nsenter '
           '--net=/run/netns/NS` (one more process per namespace); the converge target is against it, the '
           'stricter floor told beside. Each step starts once the machine is '
           'quiet (the kernel frees removed namespaces on workers of its own for minutes after thousands '
           'went): two half-second samples in a row with less than 10%% of the CPUs busy.'
           % (SCALE_PREFIX, SCALE_NET, SCALE_NOFILE, SCALE_NOFILE),
           '- **role bridge** (issue 16): `playbooks/site.yml` in bridge mode with %d namespaces on one host, '
           'a /20 subnet: a bridge per thousand namespaces, each further one joined to the first by a veth pair; '
           'converge, identical re-run, teardown, each checked (namespaces, bridges, nothing left). Bridged frames '
           'do not pass the IP hooks in the benchmark\'s host (`net.bridge.bridge-nf-call-iptables` = 0 in its '
           'own network namespace): where they do, the role refuses a second bridge.' % BRIDGE_SCALE_N,
           '- **fleet**: `tests/lab/lab.py` hosts (own sshd, pipelining, `--forks` = H), %d namespaces '
           'each, host-gw routes between the hosts; the yardstick `ping` runs over the SSH connections the '
           'one before it (`ping, connections new`) opened, as every later run does; module s is the slowest host\'s sum, CPU s counts '
           'the controller only (the modules run under the hosts\' sshd). `verify.yml` pings from every '
           'namespace at once; it runs with `--forks 5`, and for H > 5 without the host-to-host columns '
           '(H x 50 x (H + 2) pings at once swamp 2 CPUs). The lab\'s hosts are namespaces of one '
           'kernel, whose IPv4 neighbour (ARP) table is shared by all of them and holds '
           '`net.ipv4.neigh.default.gc_thresh3` entries (1024 by default): with H=20 x 50 namespaces '
           'it is full and some pings go unanswered (see the notes) - a limit of one kernel carrying '
           'about 500 or more talking namespaces, which a single host with N=1000 meets too, not of '
           'SSH or of the fleet.' % FLEET_NAMESPACES,
           '- **controller** (issue 16): `bench/controller.py`, the filters the role calls (its action '
           '`linuxnet.netns.bridge_network_host` on each host, `tasks/fleet.yml` once for the play), '
           'called as the role calls them, in one Python process, for H hosts read from one recorded '
           '`netns_info` result (`bench/fixtures/netns_info_host.json`, a bridge-mode host of the lab fleet), each '
           'with its own uplink, underlay address and the subnet the allocation gives it (a converged fleet: every '
           'host remembers its subnet). The best of %d runs (the per-host way at H >= 1000 once); Ansible\'s own '
           'cost of templating and tasks is not in it. Both ways must plan every host alike.' % args_repeat,
           '- Everything runs on the same 2-core machine as Ansible itself (controller and managed host '
           'share the CPUs), while other work may be running: compare rows of one run with each other, '
           'and expect a few tens of percent between runs.', '']
    if notes:
        md += ['## Notes from this run', ''] + ['- ' + n for n in notes] + ['']
    return '\n'.join(text), '\n'.join(md)


# ---------------------------------------------------------------------------------------------


def nest():
    """Re-execute inside a fresh net+mount+pid namespace nested in the sandbox."""
    script = ('set -e; mount -t tmpfs -o mode=0755 lnbench-netns /run/netns; '
              'mount -t tmpfs -o mode=0755 lnbench-sysctl /etc/sysctl.d; ip link set lo up; exec "$@"')
    argv = ['unshare', '--net', '--mount', '--pid', '--fork', '--kill-child', '--mount-proc',
            '--propagation', 'private', 'env', '%s=1' % NESTED, 'bash', '-c', script, 'bench',
            sys.executable, os.path.abspath(__file__)] + sys.argv[1:]
    proc = subprocess.Popen(argv)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        proc.send_signal(signal.SIGTERM)
        return proc.wait()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n', maxsplit=1)[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--quick', action='store_true',
                        help='command loop at N=10 only (N=100 extrapolated), fleet H=5 only; writes to --out')
    parser.add_argument('--smoke', action='store_true',
                        help='N=5 only, loop N=1, 20 published ports, no fleet: seconds; writes to --out (required)')
    parser.add_argument('--out', help='directory for benchmark.md/.png/.json (default: docs/ for the full run)')
    parser.add_argument('--python', default=sys.executable,
                        help='interpreter the modules run with (default: this one; /usr/bin/python3 has '
                             "Debian's pyroute2 0.7.2)")
    parser.add_argument('--sizes', type=lambda s: [int(x) for x in s.split(',') if x],
                        help='comma-separated N for the role and the floor (default 10,100,1000; empty: none)')
    parser.add_argument('--loop-sizes', type=lambda s: [int(x) for x in s.split(',') if x],
                        help='comma-separated N for the command loop (default 10,100; empty: none)')
    parser.add_argument('--publish-sizes', type=lambda s: [int(x) for x in s.split(',') if x],
                        help='comma-separated numbers of published ports (default 1000, --smoke 20; empty: none)')
    parser.add_argument('--scale-sizes', type=lambda s: [int(x) for x in s.split(',') if x],
                        help='comma-separated N for p2p namespaces in one network task (default 3000,10000, '
                             '--quick 1000, --smoke 20; empty: none)')
    parser.add_argument('--bridge-sizes', type=lambda s: [int(x) for x in s.split(',') if x],
                        help='comma-separated N for the role in bridge mode past a thousand namespaces (default '
                             '%d; --quick and --smoke: none; empty: none)' % BRIDGE_SCALE_N)
    parser.add_argument('--scale-nofile', type=int, default=SCALE_NOFILE,
                        help='hard limit on open files for the p2p runs (default %(default)s; 0: none)')
    parser.add_argument('--fleet', type=lambda s: [int(x) for x in s.split(',') if x],
                        help='comma-separated lab host counts (default 5,20; empty: none)')
    parser.add_argument('--controller-sizes', type=lambda s: [int(x) for x in s.split(',') if x],
                        help='comma-separated fleet sizes H for the controller-side measurement '
                             '(default 10,100,1000, --smoke 10,100; empty: none)')
    parser.add_argument('--boot-sizes', type=lambda s: [int(x) for x in s.split(',') if x],
                        help='comma-separated N for the boot re-apply of a saved bridge network against its '
                             'converge (bench/boot.py; default 1000, --smoke 5; empty: none)')
    parser.add_argument('--json', help='also write every measurement as JSON to this file')
    parser.add_argument('--repeat', type=int,
                        help='runs of the role and the floor at each N; the table keeps the fastest (default: '
                             '3, or 1 with --quick and --smoke)')
    parser.add_argument('--no-ip-netns', action='store_true', help='skip community.general.ip_netns')
    args = parser.parse_args()
    if os.environ.get('LINUXNET_SANDBOX') != '1':
        sys.exit('bench/run.py changes networking: run it inside the sandbox, '
                 'tests/sandbox.sh python3 bench/run.py')
    if os.geteuid() != 0:
        sys.exit('bench/run.py needs root (inside tests/sandbox.sh)')
    if (args.quick or args.smoke) and not args.out:
        sys.exit('--quick and --smoke write their results to --out DIR (docs/ holds the full run)')
    if os.environ.get(NESTED) != '1':
        sys.exit(nest())

    if args.smoke:
        SETTLE_LIMIT[0] = 0
        sizes, loop_sizes, fleet, ip_netns = [5], [1], [], [2]
    elif args.quick:
        sizes, loop_sizes, fleet, ip_netns = [10, 100, 1000], [10], [5], [10]
    else:
        sizes, loop_sizes, fleet, ip_netns = [10, 100, 1000], [10, 100], [5, 20], [10, 100]
    repeat = args.repeat or (1 if args.quick or args.smoke else 3)
    publish_sizes = [20] if args.smoke else [1000]
    scale_sizes = [20] if args.smoke else [1000] if args.quick else [3000, 10000]
    scale_sizes = scale_sizes if args.scale_sizes is None else args.scale_sizes
    bridge_sizes = [] if args.smoke or args.quick else [BRIDGE_SCALE_N]
    bridge_sizes = bridge_sizes if args.bridge_sizes is None else args.bridge_sizes
    sizes = sizes if args.sizes is None else args.sizes
    loop_sizes = loop_sizes if args.loop_sizes is None else args.loop_sizes
    publish_sizes = publish_sizes if args.publish_sizes is None else args.publish_sizes
    fleet = fleet if args.fleet is None else args.fleet
    controller_sizes = [10, 100] if args.smoke else [10, 100, 1000]
    controller_sizes = controller_sizes if args.controller_sizes is None else args.controller_sizes
    boot_sizes = [5] if args.smoke else [1000]
    boot_sizes = boot_sizes if args.boot_sizes is None else args.boot_sizes
    if args.no_ip_netns:
        ip_netns = []
    out_dir = os.path.abspath(args.out or os.path.join(REPO, 'docs'))
    os.makedirs(out_dir, exist_ok=True)

    notes = []
    if args.smoke:
        notes.append('--smoke: N=5 only (20 published ports), a check that the benchmark runs, not a measurement.')
    env = environment(args.python)
    tmp = tempfile.mkdtemp(prefix='lnbench-')
    rows = []
    host = None
    started = time.perf_counter()
    failures = []

    def attempt(label, fn, *fargs):
        """One step; a failure is reported (table, notes, exit status) and the run goes on."""
        try:
            return fn(*fargs)
        except Exception as exc:  # noqa: BLE001 - any failure of a step is reported, then the next runs
            text = str(exc).strip() or exc.__class__.__name__
            log('%s FAILED: %s' % (label, text[-3000:]))
            failures.append('%s FAILED: %s' % (label, text.splitlines()[0][:300]))
            cleanup_local()
            return None
    try:
        host = Host(tmp)
        for n in sizes:
            attempt('role N=%d' % n, role_step, host, args.python, n, rows, repeat)
            rows += attempt('ip -batch N=%d' % n, floor_step, tmp, n, repeat) or []
        for n in publish_sizes:
            attempt('publish N=%d' % n, publish_step, host, args.python, n, rows, repeat)
        for n in scale_sizes:
            attempt('scale N=%d' % n, scale_step, host, args.python, n, rows, args.scale_nofile)
        for n in bridge_sizes:
            attempt('bridge N=%d' % n, bridge_scale_step, host, args.python, n, rows)
        measured_loops = []
        for n in loop_sizes:
            row = attempt('command loop N=%d' % n, loop_step, host, args.python, n)
            if row:
                rows.append(row)
                measured_loops.append(row)
        if measured_loops and not args.smoke:
            biggest = max(measured_loops, key=lambda r: r['n'])
            for n in (100,):
                if n > biggest['n'] and n in sizes:
                    rows.append(extrapolate_loop(biggest, n))
                    notes.append('The command loop ran at N=%d only; its N=%d row is extrapolated from it.'
                                 % (biggest['n'], n))
        if ip_netns:
            if community_general_available():
                for n in ip_netns:
                    attempt('community.general.ip_netns N=%d' % n, ip_netns_step, host, args.python, n, rows)
            else:
                failures.append('community.general.ip_netns FAILED: community.general is not installed '
                                '(bench/requirements.txt brings it with PyPI\'s ansible package; tests/setup.sh '
                                'installs it), or give --no-ip-netns')
        for hosts in fleet:
            attempt('fleet H=%d' % hosts, fleet_step, host, hosts, hosts <= 5, rows, notes)
        for n in boot_sizes:
            quiet_first('boot N=%d' % n)
            log('saved plan N=%d: converge, then the boot' % n)
            rows += attempt('boot N=%d' % n, boot.boot_rows, tmp, args.python, n, repeat) or []
        if controller_sizes:
            rows += attempt('controller H=%s' % ','.join(map(str, controller_sizes)), controller_rows,
                            controller_sizes, repeat) or []
    finally:
        if host:
            host.close()
        else:
            cleanup_local()
        shutil.rmtree(tmp, ignore_errors=True)
    env['load_end'] = open('/proc/loadavg').read().split()[:3]
    env['seconds'] = time.perf_counter() - started
    notes[:0] = failures
    notes.append('The whole benchmark took %.0f s.' % env['seconds'])
    title = 'linuxnet.netns bridge recipe - %s, %d CPUs, engine %s' % (
        env['date'], env['cpus'], env['engine commit'].split(' ')[0])
    text, md = report(rows, env, notes, repeat)
    print(text)
    plot(rows, os.path.join(out_dir, 'benchmark.png'), title)
    with open(os.path.join(out_dir, 'benchmark.md'), 'w') as handle:
        handle.write(md)
    if args.json:
        with open(args.json, 'w') as handle:
            json.dump({'environment': env, 'rows': rows, 'targets': targets(rows), 'notes': notes}, handle, indent=1)
    log('wrote %s/benchmark.md and benchmark.png' % out_dir)
    left = netns_names()
    if left:
        log('left behind (the nested namespace removes them on exit): %s' % left[:10])
    if failures:
        log('%d step(s) failed:\n  %s' % (len(failures), '\n  '.join(failures)))
        sys.exit(1)


if __name__ == '__main__':
    main()
