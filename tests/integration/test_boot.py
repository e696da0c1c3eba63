"""The boot test infrastructure itself (boot.py): a Debian 12 machine with systemd as PID 1 under
systemd-nspawn boots, runs a service written into it, reboots with its files kept, carries traffic
over its veth link and runs this collection's modules inside, with no Ansible installed there.

Skipped only when the tree tests/setup.sh makes is missing; a machine that does not boot fails."""
import os
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

SERVICE = """[Unit]
Description=linuxnet boot test service

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/sh -c 'echo started at boot $(cat /proc/sys/kernel/random/boot_id) >>/var/lib/linuxnet-boot-test'

[Install]
WantedBy=multi-user.target
"""


def test_boot_service_reboot_traffic_and_module(tmp_path, figures):
    began = time.monotonic()
    with BootedHost(tmp_path / 'm') as machine:
        state = machine.run(['systemctl', 'is-system-running'], check=False).stdout.strip()
        assert state in ('running', 'degraded'), state
        if state == 'degraded':
            print('degraded; failed units:\n' + machine.failed_units)
        assert machine.run(['cat', '/proc/1/comm']).stdout.strip() == 'systemd'
        assert machine.run(['hostname']).stdout.strip() == machine.name

        # a unit written into /etc/systemd/system, enabled and started
        machine.write('/etc/systemd/system/linuxnet-boot-test.service', SERVICE)
        machine.run(['systemctl', 'daemon-reload'])
        machine.run(['systemctl', 'enable', '--now', 'linuxnet-boot-test.service'])
        assert machine.run(['systemctl', 'is-active', 'linuxnet-boot-test.service']).stdout.strip() == 'active'
        assert len(machine.read('/var/lib/linuxnet-boot-test').splitlines()) == 1

        # traffic over the veth link, both ways
        host_ip, guest_ip = machine.address('10.233.0.1/30', '10.233.0.2/30')
        subprocess.run(['ping', '-c', '1', '-W', '5', guest_ip], check=True, capture_output=True)
        machine.run(['ping', '-c', '1', '-W', '5', host_ip])

        # the reboot: a new boot (new boot id), the file and the enabled unit kept, which ran again
        boot_id = machine.read('/proc/sys/kernel/random/boot_id')
        rebooted = time.monotonic()
        machine.reboot()
        reboot_seconds = time.monotonic() - rebooted
        assert machine.read('/proc/sys/kernel/random/boot_id') != boot_id
        assert machine.run(['systemctl', 'is-active', 'linuxnet-boot-test.service']).stdout.strip() == 'active'
        runs = machine.read('/var/lib/linuxnet-boot-test').splitlines()
        assert len(runs) == 2 and runs[0] != runs[1], runs
        # the link is made anew at each boot; its addresses set again
        subprocess.run(['ping', '-c', '1', '-W', '5', guest_ip], check=True, capture_output=True)

        # this collection's module, run inside by the container's python3 with Debian's pyroute2
        name = 'bt' + machine.name[-6:]
        result = machine.run_module('netns', {'name': name})
        assert not result.get('failed'), result
        assert result['changed'] is True
        assert machine.run(['ip', 'netns', 'list']).stdout.split()[0] == name
        assert not os.path.exists('/run/netns/' + name)  # in the container, not in the sandbox
        assert machine.run_module('netns', {'name': name})['changed'] is False
        assert machine.run(['python3', '-c', 'import ansible.release'], check=False).returncode != 0, \
            'ansible importable inside without our path: the module run would not prove what it should'

    assert not machine.running
    assert not os.path.exists(os.path.join(machine.root, 'etc'))  # the overlay went with nspawn's namespace
    figures('boot test: first boot %.2f s, reboot %.2f s (boot %.2f s of it), whole test %.1f s'
            % (machine.boot_seconds[0], reboot_seconds, machine.boot_seconds[1], time.monotonic() - began))
