"""A saved network across a real reboot, with systemd as PID 1 (boot.py: a Debian 12 machine under
systemd-nspawn). The network module, run inside the machine with its own python3 and Debian's
pyroute2, saves a plan with a service placed in a namespace and the namespace's resolver; the
machine reboots; the boot units bring the network back, and real traffic shows it: the world
through NAT, names resolved (the host's /etc/resolv.conf is systemd-resolved's stub), the placed
service answering inside its namespace, a stranger refused right after boot, and the plan applied
again when systemd-networkd restarts - without restarting the service.

The sandbox's end of the machine's veth link plays the world (10.233.0.1, a DNS server on it) and,
with a route to the namespaces' subnet via the machine, the stranger."""
import os
import signal
import subprocess
import time

import pytest

from boot import BootedHost, boot_tree
from conftest import IN_SANDBOX

pytestmark = [
    pytest.mark.skipif(not IN_SANDBOX, reason='booting machines: run inside tests/sandbox.sh (tests/run)'),
    pytest.mark.skipif(boot_tree() is None, reason='no boot tree: tests/setup.sh makes it '
                       '(~/.cache/linuxnet-netns/bookworm, or LINUXNET_BOOT_TREE)'),
]

WORLD, MACHINE = '10.233.0.1', '10.233.0.2'
NAME, ANSWER = 'www.example.test', '192.0.2.80'

FILES = {
    # the uplink's address, from the machine's own network configuration (networkd), at each boot
    '/etc/systemd/network/50-host0.network':
        '[Match]\nName=host0\n\n[Network]\nAddress=%s/30\nGateway=%s\n' % (MACHINE, WORLD),
    # the host's resolver is systemd-resolved's stub, its real upstream in /run/systemd/resolve,
    # made at each boot (resolved itself is not in the minimal tree)
    '/etc/resolv.conf': 'nameserver 127.0.0.53\noptions edns0 trust-ad\n',
    '/etc/tmpfiles.d/linuxnet-test-resolved.conf': 'd /run/systemd/resolve 0755 root root -\n'
                                                   'f /run/systemd/resolve/resolv.conf 0644 root root - '
                                                   'nameserver %s\n' % WORLD,
    # a service to place in ns1: a web server on port 8080
    '/srv/index.html': 'hello from the web service\n',
    '/etc/systemd/system/web.service': '[Unit]\nDescription=a web server for the boot test\n\n[Service]\n'
                                       'ExecStart=/usr/bin/python3 -m http.server 8080 --directory /srv\n\n'
                                       '[Install]\nWantedBy=multi-user.target\n',
}

PLAN = {
    'namespaces': [{'name': 'ns1'}],
    'pairs': [{'name': 'veth-ns1', 'addresses': ['10.0.0.1/24'],
               'peer': {'name': 'eth0', 'netns': 'ns1', 'addresses': ['10.0.0.2/24']}}],
    'routes': [{'netns': 'ns1', 'gateway': '10.0.0.1'},
               # a route on the host via the uplink (as host-gw makes): the uplink unit's, and one that
               # systemd-networkd deletes when it restarts
               {'dest': '10.99.0.0/24', 'gateway': WORLD}],
    'forwarding': [{'ipv4': True, 'restrict_to': ['10.0.0.0/24'], 'inbound_from': []}],
    'masquerade': [{'source': '10.0.0.0/24', 'out_interface': 'host0'}],
    'dns': [{'netns': 'ns1'}],
    'services': [{'service': 'web', 'netns': 'ns1', 'restart': True}],
    'save': {'name': 'services'},
}

FETCH = ('import sys, urllib.request; '
         'sys.stdout.write(urllib.request.urlopen("http://10.0.0.2:8080/index.html", timeout=5).read().decode())')


def sandbox(*argv, check=True):
    return subprocess.run(argv, capture_output=True, text=True, check=check)


def wait_for(check, what, seconds=30):
    deadline = time.monotonic() + seconds
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError('timed out waiting for ' + what)
        time.sleep(0.2)


def unit_property(machine, unit, name):
    return machine.run(['systemctl', 'show', '-P', name, unit]).stdout.strip()


def test_a_saved_network_with_a_service_and_dns_comes_back_after_a_real_reboot(tmp_path):
    dns = subprocess.Popen(['dnsmasq', '--no-daemon', '--no-resolv', '--no-hosts', '--bind-dynamic',
                            '--listen-address=' + WORLD, '--address=/%s/%s' % (NAME, ANSWER),
                            '--pid-file=' + str(tmp_path / 'dnsmasq.pid'), '--user=root'],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        machine = BootedHost(tmp_path / 'm', name='saved')
        for path, text in FILES.items():
            machine.write(path, text)
        # the sandbox's end of the link is the world, up at every boot; the machine's end comes from
        # its own networkd
        machine.address(WORLD + '/30', None)
        with machine:
            machine.run(['systemctl', 'enable', '--now', 'systemd-networkd.service',
                         'systemd-networkd-wait-online.service', 'web.service'])
            wait_for(lambda: MACHINE in machine.sh('ip -br addr show host0'), 'networkd to address host0')
            applied = machine.run_module('network', PLAN)
            assert not applied.get('failed') and applied['changed'], applied
            assert 'systemctl daemon-reload' in applied['actions']
            assert machine.run_module('network', PLAN)['changed'] is False
            installed = machine.run(['systemctl', 'is-enabled', 'linuxnet-netns.service',
                                     'linuxnet-netns-uplink.service']).stdout.split()
            assert installed == ['enabled', 'enabled']
            verify = machine.run(['systemd-analyze', 'verify', 'linuxnet-netns.service', 'linuxnet-netns-uplink.service',
                                  'web.service'], check=False)
            assert verify.returncode == 0, verify.stdout + verify.stderr

            machine.reboot()
            # right after boot: both units done, the namespace back
            assert unit_property(machine, 'linuxnet-netns.service', 'ActiveState') == 'active'
            wait_for(lambda: unit_property(machine, 'linuxnet-netns-uplink.service', 'ActiveState') == 'active',
                     'the uplink unit')
            journal = machine.run(['journalctl', '-b', '-o', 'cat', '-u', 'linuxnet-netns.service',
                                   '-u', 'linuxnet-netns-uplink.service']).stdout
            assert 'plan services (part host): ' in journal and 'plan services (part uplink): ' in journal, journal
            assert machine.run(['ip', 'netns', 'list']).stdout.split()[0] == 'ns1'

            # a stranger with a route to the namespaces via the machine is refused
            sandbox('ip', 'route', 'add', '10.0.0.0/24', 'via', MACHINE)
            stranger = sandbox('ping', '-c', '1', '-W', '2', '10.0.0.2', check=False)
            sandbox('ip', 'route', 'del', '10.0.0.0/24', 'via', MACHINE)
            assert stranger.returncode != 0, 'a stranger routed into ns1 through the machine'

            # the world through NAT (the sandbox has no route back to 10.0.0.0/24)
            machine.run(['ip', 'netns', 'exec', 'ns1', 'ping', '-c', '1', '-W', '5', WORLD])
            # names resolve inside the namespace: its resolver names the real upstream, not the stub
            assert machine.run(['ip', 'netns', 'exec', 'ns1', 'getent', 'hosts', NAME]).stdout.split()[0] == ANSWER
            assert '127.0.0.53' not in machine.read('/etc/netns/ns1/resolv.conf')

            # the placed service: in ns1 (its /proc/PID/ns/net), answering there, resolving names
            pid = wait_for(lambda: int(unit_property(machine, 'web.service', 'MainPID')) or None, 'web.service')
            inode = machine.run(['stat', '-L', '-c', '%i', '/run/netns/ns1']).stdout.strip()
            assert machine.run(['stat', '-L', '-c', '%i', '/proc/%d/ns/net' % pid]).stdout.strip() == inode
            page = wait_for(lambda: machine.run(['python3', '-c', FETCH], check=False).stdout, 'the web service')
            assert page == 'hello from the web service\n'
            assert machine.run(['nsenter', '-t', str(pid), '-m', '-n', 'getent', 'hosts', NAME]).stdout.split()[0] == ANSWER

            # netns_info: the host matches the saved plan
            info = machine.run_module('netns_info', {'netns_details': False})
            saved, = info['saved_plans']
            assert saved['name'] == 'services' and saved['matches'], saved

            # systemd-networkd restarts and deletes the route it did not make: the uplink unit,
            # restarted with it, puts it back; the service keeps running (same PID)
            assert '10.99.0.0/24' in machine.sh('ip route show')
            before = unit_property(machine, 'linuxnet-netns-uplink.service', 'InvocationID')
            machine.run(['systemctl', 'restart', 'systemd-networkd.service'])
            wait_for(lambda: unit_property(machine, 'linuxnet-netns-uplink.service', 'InvocationID') != before,
                     'the uplink unit to run again')
            wait_for(lambda: '10.99.0.0/24' in machine.sh('ip route show'), 'the host route back')
            assert int(unit_property(machine, 'web.service', 'MainPID')) == pid
    finally:
        dns.send_signal(signal.SIGTERM)
        dns.wait(10)


def test_a_corrupt_plan_fails_the_boot_unit_with_one_line_and_changes_nothing(tmp_path):
    machine = BootedHost(tmp_path / 'm', name='corrupt')
    with machine:
        applied = machine.run_module('network', {'namespaces': [{'name': 'ns1'}], 'save': {'name': 'broken'}})
        assert applied['changed'], applied
        plan = machine.read('/etc/linuxnet-netns/plans/broken.json')
        machine.write('/etc/linuxnet-netns/plans/broken.json', plan[:len(plan) // 2], mode=0o600)
        machine.reboot()
        assert unit_property(machine, 'linuxnet-netns.service', 'ActiveState') == 'failed'
        lines = [line for line in machine.run(['journalctl', '-b', '-o', 'cat', '-u', 'linuxnet-netns.service']).stdout
                 .splitlines() if line.startswith('linuxnet-netns:')]
        assert len(lines) == 1 and 'broken.json is not JSON' in lines[0] and 'no saved plan was applied' in lines[0], lines
        assert machine.run(['ip', 'netns', 'list']).stdout.strip() == ''
        assert not os.path.exists('/run/netns/ns1')
