"""Saved plans survive a reboot (simulated): a "machine" is a fresh network + mount + pid namespace
whose directories the collection writes in /etc and /usr/local/lib are those of a directory of the
test (its disk), and a tmpfs on /run/netns. The network module saves a plan there; the machine ends (everything in
the kernel and /run goes); a new machine on the same disk runs the ExecStart lines read from the
installed units, and real traffic shows the network back - NAT to the "world", a published port,
and a stranger that cannot route through the host, before the uplink part and after it.

The real boot, with systemd as PID 1, is in test_boot.py."""
import json
import os
import shlex
import subprocess
import sys

import pytest

from conftest import IN_SANDBOX, REPO

pytestmark = pytest.mark.skipif(not IN_SANDBOX, reason='integration tests run only inside tests/sandbox.sh')

# One machine (tests/lab/machine.sh: fresh namespaces, the collection's directories from the disk,
# /run/netns empty), with the links a host has from its own network configuration (eth0 to the
# world, eth1 to a stranger), addressed only once the script calls `uplink`, as networkd would.
MACHINE_SH = os.path.join(REPO, 'tests', 'lab', 'machine.sh')
MACHINE = r'''
set -e
ip netns add world
ip netns add stranger
ip link add eth0 type veth peer name eth0 netns world
ip link add eth1 type veth peer name eth0 netns stranger
ip link set eth0 up
ip link set eth1 up
ip -n world link set lo up
ip -n world link set eth0 up
ip -n world addr add 198.51.100.2/24 dev eth0
ip -n stranger link set lo up
ip -n stranger link set eth0 up
ip -n stranger addr add 192.0.2.66/24 dev eth0
ip -n stranger route add 10.0.0.0/24 via 192.0.2.1
uplink() {
  ip addr add 198.51.100.1/24 dev eth0
  ip addr add 192.0.2.1/24 dev eth1
}
exec 3>&1
. "$1"
'''

PLAN = {
    'namespaces': [{'name': 'ns1'}],
    'pairs': [{'name': 'veth-ns1', 'addresses': ['10.0.0.1/24'],
               'peer': {'name': 'eth0', 'netns': 'ns1', 'addresses': ['10.0.0.2/24']}}],
    'routes': [{'netns': 'ns1', 'gateway': '10.0.0.1'}],
    'forwarding': [{'ipv4': True, 'restrict_to': ['10.0.0.0/24'], 'inbound_from': []}],
    'masquerade': [{'source': '10.0.0.0/24', 'out_interface': 'eth0'}],
    'publish': [{'host_port': 8080, 'target': '10.0.0.2', 'target_port': 80}],
    'save': {'name': 'tutorial'},
}

# a TCP server in ns1 on port 80 that answers each connection with one line and closes
SERVER = r'''
ip netns exec ns1 %(python)s -c '
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("0.0.0.0", 80)); s.listen(8)
while True:
    c, peer = s.accept(); c.sendall(b"hello from ns1\n"); c.close()
' &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for i in $(seq 50); do ip netns exec ns1 ss -ltn | grep -q ":80 " && break; sleep 0.1; done
''' % dict(python=sys.executable)

PROBES = r'''
probe() { # name, command...: prints "name ok" or "name fails"
  name=$1; shift
  if "$@" >/dev/null 2>&1; then echo "$name ok" >&3; else echo "$name fails" >&3; fi
}
fetch() { # netns host port
  ip netns exec "$1" %(python)s -c '
import socket, sys
c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2); d = c.recv(100); sys.exit(d != b"hello from ns1\n")
' "$2" "$3"
}
probes() {
  probe world-via-nat ip netns exec ns1 ping -c1 -W1 198.51.100.2
  probe stranger-in ip netns exec stranger ping -c1 -W1 10.0.0.2
  probe published fetch world 198.51.100.1 8080
  echo "forwarding $(cat /proc/sys/net/ipv4/ip_forward)" >&3
}
''' % dict(python=sys.executable)


class Disk(object):
    """A host's persistent files, and the machines booted on them."""

    def __init__(self, tmp_path, collections):
        self.root = tmp_path / 'disk'
        self.root.mkdir()
        self.tmp = tmp_path
        self.collections = collections
        self.calls = 0

    def boot(self, script):
        """Run `script` (bash) in a fresh machine on this disk; returns its output lines (fd 3)."""
        self.calls += 1
        path = self.tmp / ('script%d.sh' % self.calls)
        path.write_text(PROBES + script)
        out = subprocess.run([MACHINE_SH, str(self.root), 'bash', '-c', MACHINE, 'machine', str(path)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, check=False)
        if out.returncode:
            raise AssertionError('machine failed (%d): %s\n%s' % (out.returncode, out.stdout, out.stderr))
        return out.stdout.splitlines(), out.stderr

    def module_line(self, name, args, check=False):
        """A shell line running module `name` with `args`, its JSON result on fd 3 as one line."""
        self.calls += 1
        path = self.tmp / ('args%d.json' % self.calls)
        path.write_text(json.dumps({'ANSIBLE_MODULE_ARGS': dict(args, _ansible_check_mode=check, _ansible_diff=True)}))
        return 'PYTHONPATH=%s:%s %s %s %s | tr -d "\\n" >&3; echo >&3\n' % (
            self.collections, self.collections / 'ansible_only', sys.executable,
            os.path.join(REPO, 'plugins', 'modules', name + '.py'), path)

    def path(self, path):
        """Where a file the machines write lies on the disk."""
        return self.root / path.lstrip('/')

    def file(self, path):
        """A file the machines wrote (None if none did)."""
        full = self.path(path)
        return full.read_text() if full.exists() else None


def exec_start(unit_text):
    lines = [line.split('=', 1)[1] for line in unit_text.splitlines() if line.startswith('ExecStart=')]
    assert len(lines) == 1, unit_text
    return lines[0]


def results(lines):
    return [json.loads(line) for line in lines if line.startswith('{')]


PROBE_NAMES = ('world-via-nat', 'stranger-in', 'published', 'forwarding')


def probes(lines):
    return dict(line.split(' ', 1) for line in lines if line.split(' ', 1)[0] in PROBE_NAMES)


@pytest.fixture
def disk(tmp_path, collections_dir):
    return Disk(tmp_path, collections_dir)


def test_a_saved_network_comes_back_at_boot_scoped_before_it_routes(disk):
    lines, _stderr = disk.boot('uplink\n' + disk.module_line('network', PLAN, check=True) + disk.module_line('network', PLAN)
                               + disk.module_line('network', PLAN) + SERVER + 'probes\n')
    check, first, again = results(lines)
    assert first['changed'] and not first.get('failed'), first
    assert check['actions'] == first['actions'], 'check mode predicts the real run exactly'
    assert not again['changed'], again['actions']
    assert probes(lines) == {'world-via-nat': 'ok', 'stranger-in': 'fails', 'published': 'ok', 'forwarding': '1'}
    assert first['saved']['path'] == '/etc/linuxnet-netns/plans/tutorial.json'

    saved = json.loads(disk.file('/etc/linuxnet-netns/plans/tutorial.json'))
    assert saved['format'] == 1 and saved['name'] == 'tutorial' and saved['python'] == sys.executable
    assert sorted(saved['network']) == ['forwarding', 'masquerade', 'namespaces', 'pairs', 'publish', 'routes']
    plan_file = disk.path('/etc/linuxnet-netns/plans/tutorial.json')
    assert oct(plan_file.stat().st_mode & 0o777) == '0o600' and oct(plan_file.parent.stat().st_mode & 0o777) == '0o700'
    host_unit = disk.file('/etc/systemd/system/linuxnet-netns.service')
    uplink_unit = disk.file('/etc/systemd/system/linuxnet-netns-uplink.service')
    for target in ('multi-user.target.wants', 'systemd-networkd.service.wants'):
        link = disk.path('/etc/systemd/system/%s/linuxnet-netns-uplink.service' % target)
        assert os.readlink(str(link)) == '/etc/systemd/system/linuxnet-netns-uplink.service'
    assert 'Before=network-pre.target' in host_unit and 'After=linuxnet-netns.service network-online.target' in uplink_unit

    # the reboot: a new machine on the same disk. The host's part runs before the uplink has an
    # address; the rest after, twice (the second finds everything in place)
    host_part, all_parts = exec_start(host_unit), exec_start(uplink_unit)
    assert host_part.endswith('--part host') and all_parts.endswith('--part uplink')
    lines, stderr = disk.boot(
        'ip netns list >&3\n'
        '%s >&3\n' % host_part + SERVER.replace('trap', '# trap') +
        'echo "after-host-part $(ip netns list | grep -c ns1) $(ip -n ns1 -br addr show eth0 | grep -c 10.0.0.2)'
        ' $(ip -n ns1 route show default | grep -c 10.0.0.1)" >&3\n'
        'probes\n'
        'uplink\n'
        '%s >&3\n' % all_parts +
        'probes\n'
        '%s >&3\n' % all_parts +
        disk.module_line('network', PLAN) +
        'trap "kill $server" EXIT\n')
    text = '\n'.join(lines)
    assert 'ns1' not in lines[0], 'a new machine starts without the namespace'
    assert 'linuxnet-netns: plan tutorial (part host): ' in text and 'after-host-part 1 1 1' in text, text
    before_uplink = probes(lines[:lines.index('after-host-part 1 1 1') + 5])
    assert before_uplink == {'world-via-nat': 'fails', 'stranger-in': 'fails', 'published': 'fails',
                             'forwarding': '0'}, 'forwarding stays off until the uplink part puts its scope in place'
    after = lines[lines.index('after-host-part 1 1 1') + 5:]
    assert probes(after) == {'world-via-nat': 'ok', 'stranger-in': 'fails', 'published': 'ok', 'forwarding': '1'}, text
    assert 'linuxnet-netns: plan tutorial (part uplink): in place, nothing to change' in text, text
    rerun, = results(lines)
    assert not rerun['changed'], 'the boot made exactly what the task declares: %s' % rerun['actions']


def test_netns_info_reports_saved_plans_and_drift(disk):
    info = {'netns_details': False}
    lines, _stderr = disk.boot('uplink\n' + disk.module_line('network', PLAN) + disk.module_line('netns_info', info) +
                               'ip -n ns1 route del default\n' + disk.module_line('netns_info', info))
    _applied, matching, drifted = results(lines)
    plan, = matching['saved_plans']
    assert plan['name'] == 'tutorial' and plan['matches'] and plan['drift'] == []
    assert plan['declared']['namespaces'] == 1
    plan, = drifted['saved_plans']
    assert not plan['matches'] and plan['drift'] == ['add route ns1 default via 10.0.0.1'], plan


BAD_FILES = [
    ('truncated', lambda good: good[:len(good) // 2], 'is not JSON'),
    ('corrupt', lambda good: good.replace('10.0.0.2/24', '10.0.0.3/24'), 'does not match its digest'),
    ('foreign', lambda good: '{"hello": "world"}', 'is not a plan saved by linuxnet.netns'),
    ('newer', lambda good: good.replace('"format": 1', '"format": 2'), 'has format 2, newer than'),
]


@pytest.mark.parametrize('name, spoil, problem', BAD_FILES, ids=[case[0] for case in BAD_FILES])
def test_a_bad_plan_file_fails_the_boot_with_one_line_and_changes_nothing(disk, name, spoil, problem):
    lines, _stderr = disk.boot('uplink\n' + disk.module_line('network', PLAN))
    assert results(lines)[0]['changed']
    plan_file = disk.path('/etc/linuxnet-netns/plans/tutorial.json')
    plan_file.write_text(spoil(plan_file.read_text()))
    unit = disk.file('/etc/systemd/system/linuxnet-netns.service')
    lines, stderr = disk.boot('%s || echo "exit $?" >&3\nip netns list >&3\nip link show veth-ns1 >&3 2>&1 || true\n'
                              % exec_start(unit))
    errors = [line for line in stderr.splitlines() if line.startswith('linuxnet-netns:')]
    assert len(errors) == 1 and problem in errors[0] and '/etc/linuxnet-netns/plans/tutorial.json' in errors[0], stderr
    assert 'no saved plan was applied' in errors[0]
    assert 'exit 3' in lines and 'Device "veth-ns1" does not exist.' in lines, lines
    assert not any(line.startswith('ns1') for line in lines), lines


def test_a_save_killed_before_its_rename_leaves_the_previous_plan(disk):
    lines, _stderr = disk.boot('uplink\n' + disk.module_line('network', PLAN))
    plan_file = disk.path('/etc/linuxnet-netns/plans/tutorial.json')
    before = plan_file.read_text()
    # the save of a changed plan, killed (SIGKILL) the moment its temporary file is complete
    kill = ('import os, signal, sys; sys.path[:0] = %r\n'
            'from ansible_collections.linuxnet.netns.plugins.module_utils import _files\n'
            'os.rename = lambda *a: os.kill(os.getpid(), signal.SIGKILL)\n'
            '_files.write_atomic("/etc/linuxnet-netns/plans/tutorial.json", "{half a new plan", mode=0o600)\n'
            % [str(disk.collections)])
    (disk.tmp / 'kill.py').write_text(kill)
    unit = disk.file('/etc/systemd/system/linuxnet-netns.service')
    lines, stderr = disk.boot('%s %s || echo "killed $?" >&3\n%s >&3\nip -n ns1 -br addr show eth0 >&3\n'
                              % (sys.executable, disk.tmp / 'kill.py', exec_start(unit)))
    assert 'killed 137' in lines
    assert plan_file.read_text() == before
    leftovers = [name for name in os.listdir(str(plan_file.parent)) if name.startswith('.linuxnet-')]
    assert leftovers, 'the killed write left its temporary file (and the boot ignores it)'
    assert any('10.0.0.2/24' in line for line in lines), (lines, stderr)


def test_removing_the_last_plan_removes_units_links_and_code_but_not_before(disk):
    other = dict(namespaces=[{'name': 'ns9'}], save={'name': 'other'})
    lines, _stderr = disk.boot(disk.module_line('network', other) + disk.module_line('network', PLAN) +
                               disk.module_line('network', dict(namespaces=[], save={'name': 'other', 'state': 'absent'})))
    _a, _b, removed_one = results(lines)
    assert removed_one['changed'] and removed_one['saved']['other_plans'] == 1
    assert removed_one['actions'] == ['remove saved plan other (/etc/linuxnet-netns/plans/other.json)']
    assert disk.file('/etc/systemd/system/linuxnet-netns.service') is not None
    lines, _stderr = disk.boot(disk.module_line('network', dict(namespaces=[], save={'name': 'tutorial', 'state': 'absent'}),
                                                check=True) +
                               disk.module_line('network', dict(namespaces=[], save={'name': 'tutorial', 'state': 'absent'})) +
                               disk.module_line('network', dict(namespaces=[], save={'name': 'tutorial', 'state': 'absent'})))
    check, last, again = results(lines)
    assert check['actions'] == last['actions'] and not again['changed']
    for path in ('/etc/linuxnet-netns/plans/tutorial.json', '/etc/systemd/system/linuxnet-netns.service',
                 '/etc/systemd/system/linuxnet-netns-uplink.service',
                 '/etc/systemd/system/multi-user.target.wants/linuxnet-netns.service'):
        assert disk.file(path) is None, path
    # (the machine's directories are mount points here, so they stay, empty)
    lines, _stderr = disk.boot('find /usr/local/lib/linuxnet-netns /etc/linuxnet-netns -mindepth 1 >&3\n'
                               'ls /etc/systemd/system/systemd-networkd.service.wants >&3 2>&1 || true\n')
    assert len(lines) == 1 and 'No such file' in lines[0], lines


def test_save_refuses_forwarding_persisted_to_sysctl_d_and_bad_names(disk):
    persisted = dict(PLAN, forwarding=[{'ipv4': True, 'restrict_to': ['10.0.0.0/24'], 'persist': True}])
    lines, _stderr = disk.boot(disk.module_line('network', persisted) +
                               disk.module_line('network', dict(PLAN, save={'name': '../escape'})) + 'ip netns list >&3\n')
    persist, escape = results(lines)
    assert persist['failed'] and 'forwarding[0].persist' in persist['msg'] and 'before the saved plan' in persist['msg']
    assert escape['failed'] and 'save.name' in escape['msg'] and '../escape' in escape['msg'], escape
    assert not any(line.startswith('ns1') for line in lines), 'refused before any change'


def test_the_units_pass_systemd_analyze_verify(disk):
    lines, _stderr = disk.boot(disk.module_line('network', PLAN) +
                               'systemd-analyze verify /etc/systemd/system/linuxnet-netns.service '
                               '/etc/systemd/system/linuxnet-netns-uplink.service >&3 2>&1; echo "verify $?" >&3\n')
    assert 'verify 0' in lines, lines


def test_the_boot_code_imports_no_ansible(disk):
    lines, _stderr = disk.boot(disk.module_line('network', dict(namespaces=[{'name': 'ns9'}], save={'name': 'x'})))
    unit = disk.file('/etc/systemd/system/linuxnet-netns.service')
    script = shlex.split(exec_start(unit))[2]
    lines, stderr = disk.boot('%s -I -c "import runpy, sys; sys.modules[\'ansible\'] = None; sys.argv = [%r, \'--part\', '
                              '\'host\']; runpy.run_path(%r, run_name=\'__main__\')" >&3 2>&1; echo "exit $?" >&3\n'
                              'ip netns list >&3\n' % (sys.executable, script, script))
    assert 'exit 0' in lines and any(line.startswith('ns9') for line in lines), (lines, stderr)


def test_a_plan_whose_host_part_fails_is_applied_whole_by_the_uplink_unit(disk):
    """A bridge the host's own network configuration makes (networkd) is not there before
    network-pre.target: the host part fails for that plan, and the uplink part, once it is there,
    applies the whole plan."""
    on_foreign = dict(PLAN, pairs=[{'name': 'veth-ns1', 'master': 'br-lan',
                                    'peer': {'name': 'eth0', 'netns': 'ns1', 'addresses': ['10.0.0.2/24']}}],
                      publish=[], masquerade=[])
    made = 'ip link add br-lan type bridge && ip addr add 10.0.0.1/24 dev br-lan && ip link set br-lan up\n'
    lines, _stderr = disk.boot(made + disk.module_line('network', on_foreign))
    first, = results(lines)
    assert first['changed'] and not first.get('failed'), first
    host_part = exec_start(disk.file('/etc/systemd/system/linuxnet-netns.service'))
    uplink_part = exec_start(disk.file('/etc/systemd/system/linuxnet-netns-uplink.service'))
    lines, stderr = disk.boot('%s || echo "host part $?" >&3\n' % host_part + made + 'uplink\n'
                              '%s >&3 2>&1 && echo "uplink part $?" >&3\n' % uplink_part +
                              'ip -n ns1 -br addr show eth0 >&3\nip -br link show master br-lan >&3\n')
    assert 'host part 1' in lines and 'br-lan' in stderr, (lines, stderr)
    assert 'uplink part 0' in lines and 'linuxnet-netns: plan tutorial (part all): ' in '\n'.join(lines), lines
    assert any('10.0.0.2/24' in line for line in lines) and any(line.startswith('veth-ns1') for line in lines), lines


def test_a_resolver_the_boot_cannot_write_does_not_keep_nat_from_coming_back(disk):
    """The host's only resolver is resolved's stub and resolved has written no upstream yet: the
    resolver of ns1 cannot be made, the rest of the uplink part is applied, and the unit fails (to
    be tried again)."""
    with_dns = dict(PLAN, dns=[{'netns': 'ns1'}])
    stub = ('mount --bind "$(mktemp)" /etc/resolv.conf && echo "nameserver 127.0.0.53" > /etc/resolv.conf\n'
            'mkdir -p /run/systemd/resolve\n')
    upstream = 'echo "nameserver 198.51.100.2" > /run/systemd/resolve/resolv.conf\n'
    lines, _stderr = disk.boot(stub + upstream + 'uplink\n' + disk.module_line('network', with_dns))
    assert results(lines)[0]['changed'], results(lines)[0]
    host_part = exec_start(disk.file('/etc/systemd/system/linuxnet-netns.service'))
    uplink_part = exec_start(disk.file('/etc/systemd/system/linuxnet-netns-uplink.service'))
    lines, stderr = disk.boot(stub + 'rm -f /run/systemd/resolve/resolv.conf\n%s >&3\nuplink\n' % host_part +
                              '%s || echo "uplink part $?" >&3\n' % uplink_part + 'probes\n')
    assert 'uplink part 1' in lines, (lines, stderr)
    assert 'plan tutorial (part uplink: dns): ' in stderr and 'no usable server' in stderr, stderr
    assert probes(lines)['world-via-nat'] == 'ok' and probes(lines)['forwarding'] == '1', (lines, stderr)
