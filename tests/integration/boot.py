"""A Debian 12 machine booted with systemd as PID 1 (systemd-nspawn), for tests of what happens at
boot: units that re-apply saved networks, reboots, services. Inside tests/sandbox.sh only. Stdlib only.

    with BootedHost(tmp_path / 'm') as m:          # boots; stops it however the test ends
        m.address('10.233.0.1/30', '10.233.0.2/30')  # the veth link: sandbox side, container side
        m.run(['ip', 'netns', 'list'])              # a CompletedProcess (text); check=True raises
        m.run_module('netns', {'name': ['a']})     # this checkout's module, run inside, its JSON
        m.reboot()                                  # systemctl reboot -> nspawn exits 133 -> boots

The root is an overlay: the cached tree tests/setup.sh makes (never written) under an upper layer in
the given directory, which survives reboots, so a reboot keeps what was written before it; nothing
is copied. Each boot runs nspawn in a mount namespace of its own (the overlay, a tmpfs on /run so
nspawn's runtime files never reach the machine's /run) and in a cgroup of its own, so that machines
booted side by side (two in one test, or xdist workers) never share one, and none is left behind.
"""
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TREE_STAMP = '.linuxnet-tree'  # written by tests/setup.sh when the tree is complete
RUNNING = ('running', 'degraded')
REBOOT_EXIT = 133  # systemd-nspawn's exit code when the container asked for a reboot
# where the collection and ansible-core's pure-python package are bound (read-only) inside
INSIDE = '/opt/linuxnet-test'
INSIDE_COLLECTION = INSIDE + '/ansible_collections/linuxnet/netns'
INSIDE_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'


def boot_tree():
    """The tree tests/setup.sh made (found as it finds it), or None when it is missing or half made."""
    path = os.environ.get('LINUXNET_BOOT_TREE') or os.path.join(
        os.environ.get('XDG_CACHE_HOME') or os.path.expanduser('~/.cache'), 'linuxnet-netns', 'bookworm')
    return path if os.path.isfile(os.path.join(path, TREE_STAMP)) else None


class BootFailed(AssertionError):
    """The machine did not boot, reboot or stop as expected, or a command inside failed."""


def _own_cgroups():
    """[(mount point, our path)] of the cgroup hierarchies nspawn and systemd track processes in: the
    v1 name=systemd one (hybrid hosts) and the v2 one."""
    wanted = {}
    with open('/proc/self/cgroup') as f:
        for line in f:
            number, controllers, path = line.rstrip('\n').split(':', 2)
            if controllers == 'name=systemd':
                wanted['name=systemd'] = path
            elif number == '0' and controllers == '':
                wanted['cgroup2'] = path
    found = []
    with open('/proc/self/mountinfo') as f:
        for line in f:
            fields = line.split()
            sep = fields.index('-')
            root, mountpoint, fstype, options = fields[3], fields[4], fields[sep + 1], fields[sep + 3]
            key = 'cgroup2' if fstype == 'cgroup2' else (
                'name=systemd' if fstype == 'cgroup' and 'name=systemd' in options.split(',') else None)
            if key in wanted and root == '/':
                found.append((mountpoint, wanted.pop(key)))
    return found


def _remove_cgroup(path, wait=5):
    """rmdir a cgroup and what the container's systemd made below it. A v1 cgroup stays busy for a
    moment after its last process has been reaped: try again for a while. False if it stayed."""
    deadline = time.monotonic() + wait
    while True:
        for parent, dirs, _files in os.walk(path, topdown=False):
            for name in dirs:
                try:
                    os.rmdir(os.path.join(parent, name))
                except OSError:
                    pass
        try:
            os.rmdir(path)
            return True
        except FileNotFoundError:
            return True
        except OSError:
            if time.monotonic() > deadline:
                return False
        time.sleep(0.02)


def _children(pid):
    found = []
    try:
        for task in os.listdir('/proc/%d/task' % pid):
            with open('/proc/%d/task/%s/children' % (pid, task)) as f:
                found.extend(int(child) for child in f.read().split())
    except OSError:
        pass
    return found


def _comm(pid):
    try:
        with open('/proc/%d/comm' % pid) as f:
            return f.read().strip()
    except OSError:
        return None


class BootedHost(object):
    """A booted machine: `with BootedHost(directory) as m:`, or start() and stop() by hand.

    directory   this machine's own files (overlay layers, console log); made if missing. Give each
                machine its own, e.g. tmp_path / 'm'. Reboots keep it; a new BootedHost on the same
                directory boots what the last one left.
    name        machine name and hostname, at most 12 characters (the sandbox's end of the veth is
                ve-NAME); random by default.
    network     'veth' (its own network namespace and a veth pair: host0 inside, ve-NAME in the
                sandbox's), 'private' (its own network namespace with only lo), or None (it shares
                the sandbox's: then nspawn drops CAP_NET_ADMIN from its services).
    collection  bind this checkout (as ansible_collections/linuxnet/netns) and ansible-core's
                `ansible` package read-only under /opt/linuxnet-test, for run_module().
    timeout     seconds a boot, reboot or stop may take before BootFailed.
    """

    def __init__(self, directory, name=None, network='veth', collection=True, timeout=60, tree=None):
        self.tree = tree or boot_tree()
        if not self.tree:
            raise BootFailed('no boot tree: run tests/setup.sh (it makes ~/.cache/linuxnet-netns/bookworm, '
                             'or LINUXNET_BOOT_TREE)')
        self.name = name or 'b' + uuid.uuid4().hex[:8]
        if len(self.name) > 12:
            raise ValueError('name %r: at most 12 characters, so that ve-NAME fits in an interface name' % self.name)
        if network not in ('veth', 'private', None):
            raise ValueError("network %r: one of 'veth', 'private', None" % (network,))
        self.network = network
        self.timeout = timeout
        self.directory = str(directory)
        self.upper = os.path.join(self.directory, 'upper')
        self.root = os.path.join(self.directory, 'root')  # mounted only in nspawn's namespace
        self.console = os.path.join(self.directory, 'console.log')  # every boot's, appended
        for path in (self.upper, os.path.join(self.directory, 'work'), self.root):
            os.makedirs(path, exist_ok=True)
        self.host_ifname = 've-' + self.name if network == 'veth' else None
        self.guest_ifname = 'host0' if network == 'veth' else None
        self.binds = self._collection_binds() if collection else []
        self.process = None  # the systemd-nspawn we started
        self.pid1 = None  # the container's systemd, as this sandbox numbers it
        self.cgroups = []
        self.addresses = None
        self.boot_seconds = []  # per boot: from starting nspawn to running (or degraded)
        self.failed_units = ''  # `systemctl --failed` when the last boot ended degraded
        if not os.path.exists(os.path.join(self.upper, 'etc', 'hostname')):
            # systemd takes the hostname from there, which debootstrap copied from the machine
            self.write('/etc/hostname', self.name + '\n')

    @staticmethod
    def _collection_binds():
        spec = importlib.util.find_spec('ansible')
        if spec is None or not spec.submodule_search_locations:
            raise BootFailed('collection=True needs ansible-core importable by the tests\' Python')
        return ['--bind-ro=%s:%s' % (REPO, INSIDE_COLLECTION),
                '--bind-ro=%s:%s/ansible_only/ansible' % (list(spec.submodule_search_locations)[0], INSIDE)]

    # --- boot and stop ----------------------------------------------------------------------------
    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc):
        self.stop()

    @property
    def running(self):
        return self.process is not None and self.process.poll() is None

    def start(self):
        """Boot, and wait until systemd says running or degraded."""
        if self.running:
            raise BootFailed('%s is running already' % self.name)
        started = time.monotonic()
        self._make_cgroups()
        lower = self.tree
        options = 'lowerdir=%s,upperdir=%s,workdir=%s' % (lower, self.upper, os.path.join(self.directory, 'work'))
        network = {'veth': ['--network-veth'], 'private': ['--private-network'], None: []}[self.network]
        nspawn = (['systemd-nspawn', '--directory', self.root, '--machine', self.name, '--register=no',
                   '--keep-unit', '--boot', '--console=passive', '--link-journal=no'] + network + self.binds)
        # $1: the root; $2...: our cgroups' cgroup.procs; after --: nspawn's command line
        script = ('set -e; root=$1; shift; while [ "$1" != -- ]; do echo $$ >"$1"; shift; done; shift; '
                  'mount -t tmpfs -o mode=0755 linuxnet-boot-run /run; '
                  'mount -t overlay -o "$0" linuxnet-boot "$root"; exec "$@"')
        procs = [os.path.join(path, 'cgroup.procs') for path in self.cgroups]
        with open(self.console, 'ab') as console:
            console.write(('--- boot %d\n' % (len(self.boot_seconds) + 1)).encode())
            console.flush()
            self.process = subprocess.Popen(
                ['unshare', '--mount', '--propagation', 'private', 'sh', '-c', script, options, self.root]
                + procs + ['--'] + nspawn,
                stdin=subprocess.DEVNULL, stdout=console, stderr=subprocess.STDOUT)
        self.pid1 = self._find_pid1(started + self.timeout)
        if self.addresses:
            # the sandbox's end up while the machine boots, as its uplink's switch would be: units
            # waiting for network-online.target inside wait for a carrier on host0
            self._set_host_address(started + self.timeout)
        self._wait_running(started + self.timeout)
        self.boot_seconds.append(time.monotonic() - started)
        if self.addresses:
            self._set_addresses()

    def _make_cgroups(self):
        self.cgroups = []
        # one name in every hierarchy: on a hybrid host nspawn makes its v2 path in name=systemd too
        leaf = 'linuxnet-boot-%s-%s' % (self.name, uuid.uuid4().hex[:6])
        for mountpoint, path in _own_cgroups():
            cgroup = os.path.join(mountpoint + path, leaf)
            os.mkdir(cgroup)
            self.cgroups.append(cgroup)

    def _find_pid1(self, deadline):
        """The container's systemd: the process below our nspawn that has exec'd systemd and is PID 1
        of its own PID namespace."""
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BootFailed('systemd-nspawn exited %d before systemd started:\n%s'
                                 % (self.process.returncode, self.console_tail()))
            todo = [self.process.pid]
            while todo:
                pid = todo.pop()
                for child in _children(pid):
                    if _comm(child) == 'systemd' and self._nspid(child) == '1':
                        return child
                    todo.append(child)
            time.sleep(0.02)
        raise BootFailed('no systemd in %s after %ds:\n%s' % (self.name, self.timeout, self.console_tail()))

    @staticmethod
    def _nspid(pid):
        try:
            with open('/proc/%d/status' % pid) as f:
                for line in f:
                    if line.startswith('NSpid:'):
                        return line.split()[-1]
        except OSError:
            pass
        return None

    def _wait_running(self, deadline):
        state = ''
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BootFailed('systemd-nspawn exited %d during boot:\n%s'
                                 % (self.process.returncode, self.console_tail()))
            # refused until systemd listens on its private socket; then --wait waits out the start
            out = self.run(['systemctl', 'is-system-running', '--wait'], check=False,
                           timeout=max(1, deadline - time.monotonic()))
            state = out.stdout.strip()
            if state in RUNNING:
                self.failed_units = self.run(['systemctl', '--failed', '--no-legend', '--plain'],
                                             check=False).stdout if state == 'degraded' else ''
                return state
            time.sleep(0.05)
        raise BootFailed('%s not running after %ds (systemctl is-system-running: %r):\n%s'
                         % (self.name, self.timeout, state, self.console_tail()))

    def reboot(self):
        """`systemctl reboot` inside; nspawn must exit 133; boot again on the same files."""
        self.run(['systemctl', 'reboot'], check=False)
        code = self._wait_exit()
        if code != REBOOT_EXIT:
            raise BootFailed('systemd-nspawn exited %d after systemctl reboot, not %d:\n%s'
                             % (code, REBOOT_EXIT, self.console_tail()))
        self.start()

    def stop(self):
        """Power off (or, if that hangs, kill the machine); returns nspawn's exit code, or None if it
        was not running. Safe to call twice."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            # SIGTERM makes nspawn send the container's systemd SIGRTMIN+3: an orderly poweroff
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(self.timeout)
            except subprocess.TimeoutExpired:
                # killing PID 1 of a PID namespace kills everything in it, then nspawn exits
                for pid in (self.pid1, self.process.pid):
                    if pid and self.process.poll() is None:
                        try:
                            os.kill(pid, signal.SIGKILL)
                        except ProcessLookupError:
                            pass
                        try:
                            self.process.wait(10)
                        except subprocess.TimeoutExpired:
                            pass
        code = self.process.wait()
        self._after_exit()
        return code

    def _wait_exit(self):
        try:
            code = self.process.wait(self.timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise BootFailed('%s did not go down within %ds:\n%s' % (self.name, self.timeout, self.console_tail()))
        self._after_exit()
        return code

    def _after_exit(self):
        self.pid1 = None
        left = [cgroup for cgroup in self.cgroups if not _remove_cgroup(cgroup)]
        self.cgroups = []
        if left:
            raise BootFailed('%s: cgroups still busy after the machine went down: %s' % (self.name, left))

    def console_tail(self, lines=30):
        with open(self.console, errors='replace') as f:
            return ''.join(f.readlines()[-lines:])

    # --- inside -----------------------------------------------------------------------------------
    def run(self, argv, input=None, check=True, env=None, timeout=60):
        """argv inside the container (all its namespaces, its root), with a clean environment plus
        env. Text in and out; check=True raises BootFailed on a non-zero exit."""
        if self.pid1 is None:
            raise BootFailed('%s is not running' % self.name)
        environment = dict({'PATH': INSIDE_PATH, 'LANG': 'C.UTF-8', 'HOME': '/root'}, **(env or {}))
        command = (['nsenter', '--target', str(self.pid1), '--all', 'env', '-i']
                   + ['%s=%s' % item for item in sorted(environment.items())] + list(argv))
        out = subprocess.run(command, input=input, capture_output=True, text=True, timeout=timeout, check=False)
        if check and out.returncode:
            raise BootFailed('in %s: %s -> %d\n%s%s' % (self.name, ' '.join(argv), out.returncode, out.stdout, out.stderr))
        return out

    def sh(self, command, check=True):
        """A shell command inside; its output."""
        return self.run(['sh', '-c', command], check=check).stdout

    def write(self, path, text, mode=0o644):
        """Write a file inside: through the running machine, or, while it is down, into its upper
        layer (read at the next boot)."""
        if self.running:
            self.run(['sh', '-c', 'mkdir -p "$(dirname "$1")" && cat >"$1" && chmod "$2" "$1"',
                      'write', path, '%o' % mode], input=text)
            return
        target = os.path.join(self.upper, path.lstrip('/'))
        made = os.path.dirname(target)
        missing = []
        while not os.path.isdir(made):
            missing.append(made)
            made = os.path.dirname(made)
        for directory in reversed(missing):  # as the tree has it (its mode), else 0755
            lower = os.path.join(self.tree, os.path.relpath(directory, self.upper))
            os.mkdir(directory)
            if os.path.isdir(lower):
                shutil.copystat(lower, directory)
            else:
                os.chmod(directory, 0o755)
        with open(target, 'w') as f:
            f.write(text)
        os.chmod(target, mode)

    def read(self, path):
        return self.run(['cat', path]).stdout

    def run_module(self, name, args, check_mode=False, diff=True):
        """This checkout's module NAME run inside by the container's python3 (Debian's pyroute2), as
        Ansible would run it there; its result. Needs collection=True. No Ansible is installed
        inside: only ansible-core's `ansible` package is on the path, next to the collection."""
        payload = {'ANSIBLE_MODULE_ARGS': dict(args, _ansible_check_mode=check_mode, _ansible_diff=diff)}
        out = self.run(['python3', '%s/plugins/modules/%s.py' % (INSIDE_COLLECTION, name)],
                       input=json.dumps(payload), check=False,
                       env={'PYTHONPATH': '%s:%s/ansible_only' % (INSIDE, INSIDE),
                            # compiled once per machine, kept across its reboots
                            'PYTHONPYCACHEPREFIX': '/var/cache/linuxnet-test-pycache'})
        try:
            return json.loads(out.stdout)
        except ValueError:
            raise BootFailed('module %s printed no JSON (rc %d): %s %s' % (name, out.returncode, out.stdout, out.stderr))

    # --- the veth link ----------------------------------------------------------------------------
    def address(self, host, guest):
        """Addresses (CIDR) for the sandbox's end (ve-NAME) and the container's (host0), both set up;
        set again at every boot (nspawn makes the pair anew): the sandbox's end as soon as it exists,
        the container's once it runs. guest=None leaves host0 to the machine's own network
        configuration. Returns the two addresses without prefix length, for ping and the like."""
        if self.network != 'veth':
            raise BootFailed("address() needs network='veth'")
        self.addresses = (host, guest)
        if self.running:
            self._set_addresses()
        return host.split('/')[0], guest.split('/')[0] if guest else None

    def _set_host_address(self, deadline):
        while True:
            try:
                socket.if_nametoindex(self.host_ifname)  # in this network namespace (/sys shows another's)
                break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise BootFailed('no %s after %ds' % (self.host_ifname, self.timeout))
            time.sleep(0.01)
        for argv in (['ip', 'addr', 'replace', self.addresses[0], 'dev', self.host_ifname],
                     ['ip', 'link', 'set', self.host_ifname, 'up']):
            subprocess.run(argv, check=True, capture_output=True)

    def _set_addresses(self):
        host, guest = self.addresses
        for argv in (['ip', 'addr', 'replace', host, 'dev', self.host_ifname],
                     ['ip', 'link', 'set', self.host_ifname, 'up']):
            subprocess.run(argv, check=True, capture_output=True)
        if guest:
            self.run(['ip', 'addr', 'replace', guest, 'dev', self.guest_ifname])
            self.run(['ip', 'link', 'set', self.guest_ifname, 'up'])
