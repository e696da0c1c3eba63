"""The bridge_network role end to end, through playbooks/site.yml, verify.yml and teardown.yml with
a local connection, against the real kernel.

Each test gets a host of its own: a process in fresh network and mount namespaces (private tmpfs on
/run/netns and /etc/sysctl.d) whose uplink `up0` (192.0.2.5/24, default route via 192.0.2.1) leads
to a second, unnamed namespace playing the internet: it holds 192.0.2.1 and 198.51.100.1 and has no
route back to the namespaces' subnets, so only masqueraded traffic gets an answer. Every command
runs in the host through nsenter; nothing outside it is touched. Runs only inside tests/sandbox.sh.
"""
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
IN_SANDBOX = os.environ.get('LINUXNET_SANDBOX') == '1'
INTERNET = '198.51.100.1'
RECAP = re.compile(r'^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)', re.M)

pytestmark = pytest.mark.skipif(not IN_SANDBOX, reason='integration tests run only inside tests/sandbox.sh')

HOST_INIT = r'''
set -e
mount -t tmpfs -o mode=0755 role-netns /run/netns
mount -t tmpfs -o mode=0755 role-sysctl /etc/sysctl.d
ip link set lo up
echo ready
exec sleep infinity
'''
INTERNET_INIT = 'echo ready; exec sleep infinity'


def _start(argv):
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, universal_newlines=True)
    assert proc.stdout.readline().strip() == 'ready'
    return proc


class Host(object):
    def __init__(self, collections, python):
        self.collections = collections
        self.python = python
        self.proc = _start(['unshare', '--net', '--mount', '--propagation', 'private', 'sh', '-c', HOST_INIT])
        self.internet = _start(['unshare', '--net', 'sh', '-c', INTERNET_INIT])
        self.sh('ip link add up0 type veth peer name up0p && ip link set up0p netns %d' % self.internet.pid)
        self.sh('ip addr add 192.0.2.5/24 dev up0 && ip link set up0 up && ip route add default via 192.0.2.1')
        self.inet_sh('ip link set lo up && ip addr add %s/32 dev lo && ip addr add 192.0.2.1/24 dev up0p '
                     '&& ip link set up0p up' % INTERNET)

    def run(self, argv, pid=None, check=True):
        out = subprocess.run(['nsenter', '-t', str(pid or self.proc.pid), '--net', '--mount'] + argv,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, check=False)
        if check and out.returncode:
            raise AssertionError('%s failed (%d):\n%s' % (' '.join(argv), out.returncode, out.stdout))
        return out

    def sh(self, command, check=True):
        return self.run(['sh', '-c', command], check=check).stdout

    def inet_sh(self, command):
        out = subprocess.run(['nsenter', '-t', str(self.internet.pid), '--net', 'sh', '-c', command],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, check=False)
        assert out.returncode == 0, out.stdout
        return out.stdout

    def playbook(self, name, *extra, **kw):
        argv = [os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'),
                '-i', 'localhost,', '-c', 'local',
                '-e', 'ansible_python_interpreter=%s' % self.python,
                '-e', 'bridge_network_install_deps=false',
                os.path.join(REPO, 'playbooks', name)] + list(extra)
        env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(self.collections), ANSIBLE_NOCOLOR='1',
                   ANSIBLE_FORCE_COLOR='0', ANSIBLE_LOCAL_TEMP='/tmp/.ansible-role-test',
                   ANSIBLE_RETRY_FILES_ENABLED='0')
        out = subprocess.run(['nsenter', '-t', str(self.proc.pid), '--net', '--mount'] + argv,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, env=env,
                             check=False)
        recap = dict((m.group(1), dict(ok=int(m.group(2)), changed=int(m.group(3)), unreachable=int(m.group(4)),
                                       failed=int(m.group(5)))) for m in RECAP.finditer(out.stdout))
        if kw.get('check', True):
            assert out.returncode == 0, out.stdout
        return out, recap.get('localhost')

    def netns(self):
        return sorted(line.split()[0] for line in self.sh('ip netns list').splitlines() if line.strip())

    def links(self, kind=None):
        for _attempt in range(10):
            out = self.sh('ip -j -d addr show' + (' type %s' % kind if kind else ''))
            # the kernel marks a dump that changes meanwhile (a thousand new links still getting
            # their IPv6 link-local addresses) and `ip` says so before the JSON: ask again
            if not out.startswith('Dump was interrupted'):
                break
            time.sleep(0.2)
        return dict((link['ifname'], link) for link in json.loads(out))

    def ping(self, ns, address):
        # a reply within two seconds, the request sent again after one: the first can meet a
        # neighbour entry still failed from a refused ping just before (isolation turned off)
        return self.run(['ip', 'netns', 'exec', ns, 'ping', '-c1', '-w2', address], check=False).returncode == 0

    def close(self):
        for proc in (self.proc, self.internet):
            proc.send_signal(signal.SIGKILL)
            proc.wait()


@pytest.fixture
def make_host(collections_dir):
    made = []

    def make(python=sys.executable):
        made.append(Host(collections_dir, python))
        return made[-1]
    yield make
    for host in made:
        host.close()


def _addresses(link):
    return sorted('%s/%d' % (a['local'], a['prefixlen']) for a in link.get('addr_info', [])
                  if a['family'] == 'inet')


def assert_nothing_left(host):
    assert host.netns() == []
    links = host.links()
    assert sorted(links) == ['lo', 'up0'], sorted(links)
    assert '10.200.' not in host.sh('ip route show table all')
    assert 'linuxnet' not in host.sh('nft list ruleset')


def test_bridge_network_lifecycle(make_host, python):
    host = make_host(python)  # with pip's pyroute2 and with Debian's 0.7.2
    out, recap = host.playbook('site.yml', '-e', 'bridge_network_namespaces=3')
    assert recap['changed'] > 0 and recap['failed'] == 0

    assert host.netns() == ['lnns1', 'lnns2', 'lnns3']
    bridge = host.links()['lnbr0']
    gateway_cidr = _addresses(bridge)
    assert len(gateway_cidr) == 1 and gateway_cidr[0].startswith('10.200.') and gateway_cidr[0].endswith('.1/24')
    gateway = gateway_cidr[0].split('/')[0]
    ports = host.links('veth')
    for i in (1, 2, 3):
        assert ports['lnv%d' % i].get('master') == 'lnbr0'
        assert _addresses(ports['lnv%d' % i]) == []
        assert host.sh('ip -n lnns%d route show default' % i).split()[:3] == ['default', 'via', gateway]
        assert host.ping('lnns%d' % i, gateway), 'lnns%d cannot reach its gateway %s' % (i, gateway)
        assert host.ping('lnns%d' % i, INTERNET), 'lnns%d cannot reach the internet through NAT' % i
    assert host.sh('sysctl -n net.ipv4.ip_forward').strip() == '1'
    subnet = gateway_cidr[0].rsplit('.', 1)[0] + '.0/24'
    assert 'ip saddr %s oifname "up0" masquerade' % subnet in host.sh('nft list table inet linuxnet_netns')
    # the module runs took the engine from Ansible's payload zip and kept its compiled code (_bytecode),
    # in a directory root alone may write
    listing = host.sh('stat -c "%a %U %n" /run/linuxnet-netns/pycache /run/linuxnet-netns/pycache/*').splitlines()
    assert listing[0] == '700 root /run/linuxnet-netns/pycache', listing
    kept = set(line.rsplit('/', 1)[1].split('.')[0] for line in listing[1:] if line.startswith('600 root '))
    assert {'_network', '_module', '_info', '_transport', '_kind_veth'} <= kept, listing

    out, recap = host.playbook('site.yml', '-e', 'bridge_network_namespaces=3')
    assert recap['changed'] == 0, out.stdout

    out, recap = host.playbook('verify.yml', '-e', 'bridge_network_namespaces=3',
                               '-e', 'bridge_network_verify_internet=%s' % INTERNET)
    # the matrix: host, subnet, namespace count, then gateway and internet
    assert re.search(r'\\nlocalhost +%s +3 +ok +ok"' % re.escape(subnet), out.stdout), out.stdout

    # fewer namespaces: the extra one goes, with its veth pair
    out, recap = host.playbook('site.yml', '-e', 'bridge_network_namespaces=2')
    assert host.netns() == ['lnns1', 'lnns2'] and 'lnv3' not in host.links()

    out, recap = host.playbook('teardown.yml')
    assert recap['changed'] > 0
    assert_nothing_left(host)
    assert host.sh('sysctl -n net.ipv4.ip_forward').strip() == '1'  # left as it is
    out, recap = host.playbook('teardown.yml')
    assert recap['changed'] == 0, out.stdout


def test_leaves_namespaces_it_did_not_make(make_host):
    """A namespace named like the role's but made with `ip netns add` survives a converge that no
    longer wants that number, and a teardown; a check-mode teardown predicts the real one."""
    host = make_host()
    host.sh('ip netns add lnns7')
    host.playbook('site.yml', '-e', 'bridge_network_namespaces=2')
    assert host.netns() == ['lnns1', 'lnns2', 'lnns7']
    out, recap = host.playbook('teardown.yml', '--check', '--diff')
    assert recap['changed'] == 1 and host.netns() == ['lnns1', 'lnns2', 'lnns7'], out.stdout
    # the diff's before-state names what goes
    for what in ('"netns lnns1"', '"netns lnns2"', '"bridge (host) lnbr0"'):
        assert what in out.stdout, out.stdout
    assert 'lnns7' not in out.stdout
    host.playbook('teardown.yml')
    assert host.netns() == ['lnns7'] and 'lnbr0' not in host.links()


STALE = """
- name: Objects of this collection that the role no longer wants (a route into the pool, an old NAT rule)
  hosts: all
  gather_facts: false
  tasks:
    - name: A route into the pool, marked as this collection's (protocol 76)
      linuxnet.netns.netns_route:
        dest: 10.200.250.0/24
        gateway: 192.0.2.1
    - name: The host's subnet masqueraded out another uplink
      linuxnet.netns.nat_masquerade:
        source: 10.200.77.0/24
        out_interface: old0
"""


def test_teardown_looks_the_fleet_up_once_and_a_host_of_another_fleet_itself(make_host, tmp_path):
    """teardown.yml takes the fleet's pinned and remembered subnets from one step for the play; a host
    whose bridge_network_fleet differs from the play's looks them up itself. Both plan the same
    removal here (check mode: nothing changes); a second host, `other`, shares this one's kernel."""
    host = make_host()
    host.playbook('site.yml', '-e', 'bridge_network_namespaces=2')
    inventory = tmp_path / 'other.yml'
    inventory.write_text('all:\n  hosts:\n    other:\n      ansible_connection: local\n'
                         '      bridge_network_fleet: [other]\n')
    out, recap = host.playbook('teardown.yml', '-i', str(inventory), '--check')
    recaps = dict((m.group(1), (int(m.group(3)), int(m.group(5)))) for m in RECAP.finditer(out.stdout))
    assert recaps == {'localhost': (1, 0), 'other': (1, 0)}, out.stdout
    assert 'TASK [linuxnet.netns.bridge_network : The fleet\'s subnets, once for the play - allocated for a converge, ' \
        'pinned and remembered for a teardown]' in out.stdout
    assert host.netns() == ['lnns1', 'lnns2']
    host.playbook('teardown.yml')
    assert_nothing_left(host)


def test_converge_removes_the_roles_stale_objects_as_a_teardown_finds_them(make_host, tmp_path):
    """A converge finds the role's objects no longer wanted as a teardown does (purge_match). After a
    switch to p2p mode, another subnet and fewer namespaces: the bridge, a namespace, a route into the
    pool and the MASQUERADE rules of the old subnet that this collection made go; a route into the pool
    added by hand and a namespace that `ip netns add` made stay; the re-run changes nothing."""
    host = make_host()
    host.playbook('site.yml', '-e', 'bridge_network_namespaces=3', '-e', 'bridge_network_subnet=10.200.77.0/24')
    stale = tmp_path / 'stale.yml'
    stale.write_text(STALE)
    host.playbook(str(stale))
    host.sh('ip route add 10.200.251.0/24 via 192.0.2.1 && ip netns add lnns9')
    assert '10.200.250.0/24 via 192.0.2.1 dev up0 proto 76' in host.sh('ip route')
    assert 'oifname "old0"' in host.sh('nft list table inet linuxnet_netns')

    args = ('-e', 'bridge_network_mode=p2p', '-e', 'bridge_network_namespaces=2',
            '-e', 'bridge_network_subnet=10.200.78.0/24')
    out, recap = host.playbook('site.yml', *args)
    assert recap['changed'] == 1, out.stdout
    assert host.netns() == ['lnns1', 'lnns2', 'lnns9']
    assert 'lnbr0' not in host.links() and 'lnv3' not in host.links()
    routes = host.sh('ip route')
    assert '10.200.250.0/24' not in routes and '10.200.251.0/24 via 192.0.2.1' in routes, routes
    ruleset = host.sh('nft list table inet linuxnet_netns')
    assert '10.200.77.0/24' not in ruleset, ruleset  # the old subnet's rules, out old0 and out up0
    assert 'ip saddr 10.200.78.0/24 oifname "up0" masquerade' in ruleset, ruleset
    assert host.ping('lnns2', INTERNET)
    out, recap = host.playbook('site.yml', *args)
    assert recap['changed'] == 0, out.stdout


def test_p2p_mode_is_the_tutorial_per_namespace(make_host):
    host = make_host()
    args = ('-e', 'bridge_network_mode=p2p', '-e', 'bridge_network_namespaces=3',
            '-e', 'bridge_network_subnet=10.200.77.0/24')
    host.playbook('site.yml', *args)
    links = host.links()
    assert 'lnbr0' not in links
    for i in (1, 2, 3):
        host_end = '10.200.77.%d' % (4 * (i - 1) + 1)
        assert _addresses(links['lnv%d' % i]) == ['%s/30' % host_end]
        ns_links = json.loads(host.sh('ip -n lnns%d -j addr show eth0' % i))
        assert _addresses(ns_links[0]) == ['10.200.77.%d/30' % (4 * (i - 1) + 2)]
        assert host.ping('lnns%d' % i, host_end)
        assert host.ping('lnns%d' % i, INTERNET)
    out, recap = host.playbook('site.yml', *args)
    assert recap['changed'] == 0, out.stdout
    host.playbook('teardown.yml', '-e', 'bridge_network_subnet=10.200.77.0/24')
    assert_nothing_left(host)


def test_refuses_a_subnet_overlapping_a_route(make_host):
    host = make_host()
    host.sh('ip route add 10.200.0.0/16 via 192.0.2.1')
    out, recap = host.playbook('site.yml', check=False)
    assert out.returncode != 0 and recap['failed'] == 1
    assert 'overlaps the route 10.200.0.0/16 via 192.0.2.1 dev up0' in out.stdout, out.stdout
    assert host.netns() == [] and 'lnbr0' not in host.links()


def test_the_roles_variables_are_checked_by_its_first_task_in_every_playbook(make_host):
    """The role's playbooks turn Ansible's own validation task off (rolespec_validate: false); the
    role's first task on a host checks the variables itself - the same errors, before anything is
    read or changed - in a converge, a teardown (which has no read) and verify's read."""
    host = make_host()
    for playbook in ('site.yml', 'teardown.yml', 'verify.yml'):
        out, recap = host.playbook(playbook, '-e', 'bridge_network_namespaces=many', '-e', 'bridge_network_mode=mesh',
                                   check=False)
        assert out.returncode != 0 and recap['failed'] == 1, out.stdout
        assert 'Validating arguments' not in out.stdout, out.stdout  # no task of Ansible's own
        assert 'Validation of arguments failed' in out.stdout and 'bridge_network_namespaces' in out.stdout, out.stdout
        assert "bridge_network_mode must be one of: bridge, p2p, got: mesh" in out.stdout, out.stdout
        assert recap['ok'] == 0 or playbook != 'site.yml', out.stdout
    assert host.netns() == [] and 'lnbr0' not in host.links()
    out, recap = host.playbook('site.yml', '-e', 'bridge_network_namespaces=2')
    assert recap['failed'] == 0 and host.netns() == ['lnns1', 'lnns2']


@pytest.mark.parametrize('mode, addresses, gateways', [
    ('bridge', ('10.200.77.2', '10.200.77.3'), ('10.200.77.1', '10.200.77.1')),
    ('p2p', ('10.200.77.2', '10.200.77.6'), ('10.200.77.1', '10.200.77.5')),
])
def test_isolate_keeps_the_roles_namespaces_apart(make_host, mode, addresses, gateways):
    """bridge_network_isolate: the namespaces cannot reach each other (bridge mode: isolated bridge
    ports; p2p mode: the safe router's forward chain), but each reaches its gateway and the internet;
    false turns it off again, as check mode predicts."""
    host = make_host()
    base = ('-e', 'bridge_network_mode=%s' % mode, '-e', 'bridge_network_namespaces=2',
            '-e', 'bridge_network_subnet=10.200.77.0/24')
    isolated = base + ('-e', 'bridge_network_isolate=true')
    out, recap = host.playbook('site.yml', *isolated)
    assert recap['changed'] == 1, out.stdout
    assert not host.ping('lnns1', addresses[1]) and not host.ping('lnns2', addresses[0])
    for ns, gateway in zip(('lnns1', 'lnns2'), gateways):
        assert host.ping(ns, gateway) and host.ping(ns, INTERNET), ns
    out, recap = host.playbook('site.yml', *isolated)
    assert recap['changed'] == 0, out.stdout

    plain = base + ('-e', 'bridge_network_isolate=false')
    out, recap = host.playbook('site.yml', *plain, '--check', '--diff')
    assert recap['changed'] == 1 and ('"isolated": true' if mode == 'bridge' else 'fwd-isolate') in out.stdout, out.stdout
    assert not host.ping('lnns1', addresses[1])
    out, recap = host.playbook('site.yml', *plain)
    assert recap['changed'] == 1, out.stdout
    assert host.ping('lnns1', addresses[1]) and host.ping('lnns2', addresses[0])
    out, recap = host.playbook('site.yml', *plain)
    assert recap['changed'] == 0, out.stdout

    host.playbook('site.yml', *isolated)
    host.playbook('teardown.yml', '-e', 'bridge_network_subnet=10.200.77.0/24')
    assert_nothing_left(host)


def test_past_a_thousand_namespaces_further_bridges_join_the_first_and_nothing_moves(make_host):
    """Bridge mode beyond the kernel's 1023 ports a bridge: the upgrade from one bridge to a segment
    of two (namespaces 1001.. on lnbr0-1, joined to lnbr0 by the veth pair lnbr0-1a/-1b), with no
    namespace changing address or bridge; the namespaces on the second bridge reach the gateway, the
    internet and the namespaces on the first; isolate keeps them apart across the bridges too;
    shrinking back removes the second bridge and its join; a teardown leaves nothing. Where bridged
    frames pass the IP hooks (br_netfilter), the role refuses the second bridge instead."""
    host = make_host()
    subnet = ('-e', 'bridge_network_subnet=10.200.64.0/20')

    def reaches(ns, address):
        # the first packets over a segment made a moment ago may go before its ports forward: the
        # first of three answered is an answer
        return host.run(['ip', 'netns', 'exec', ns, 'ping', '-c3', '-i0.2', '-W1', address], check=False).returncode == 0
    out, recap = host.playbook('site.yml', '-e', 'bridge_network_namespaces=1000', *subnet)
    before = host.links('veth')
    assert set(link.get('master') for name, link in before.items() if name.startswith('lnv')) == {'lnbr0'}
    first = host.sh('ip -n lnns1 -br addr show eth0')

    # bridged frames through the IP hooks (br_netfilter, per network namespace): NAT across joined
    # bridges would break, so the role refuses, changing nothing
    nf_call = '/proc/sys/net/bridge/bridge-nf-call-iptables'
    if os.path.exists(nf_call):
        host.sh('echo 1 > %s' % nf_call)
        out, recap = host.playbook('site.yml', '-e', 'bridge_network_namespaces=1002', *subnet, check=False)
        assert recap['failed'] == 1 and 'bridge-nf-call-iptables = 1' in out.stdout, out.stdout
        assert 'lnbr0-1' not in host.links() and len(host.netns()) == 1000
        host.sh('echo 0 > %s' % nf_call)

    out, recap = host.playbook('site.yml', '-e', 'bridge_network_namespaces=1002', *subnet)
    assert recap['changed'] == 1, out.stdout
    after = host.links('veth')
    assert all(after['lnv%d' % i].get('master') == 'lnbr0' for i in range(1, 1001))
    assert after['lnv1001'].get('master') == after['lnv1002'].get('master') == 'lnbr0-1'
    assert after['lnbr0-1a'].get('master') == 'lnbr0' and after['lnbr0-1b'].get('master') == 'lnbr0-1'
    assert host.sh('ip -n lnns1 -br addr show eth0') == first
    assert _addresses(host.links()['lnbr0-1']) == []
    assert host.sh('ip -n lnns1002 route show default').split()[:3] == ['default', 'via', '10.200.64.1']
    for target in ('10.200.64.1', INTERNET, '10.200.64.2', '10.200.64.3'):  # gateway, internet, lnns1, lnns2
        assert reaches('lnns1002', target), target
    assert reaches('lnns1001', '10.200.67.235')  # lnns1002 (the 1003rd address), on the same new bridge
    out, recap = host.playbook('site.yml', '-e', 'bridge_network_namespaces=1002', *subnet)
    assert recap['changed'] == 0, out.stdout

    out, recap = host.playbook('site.yml', '-e', 'bridge_network_namespaces=1002', '-e', 'bridge_network_isolate=true',
                               *subnet)
    assert recap['changed'] == 1, out.stdout
    assert reaches('lnns1002', '10.200.64.1') and reaches('lnns1002', INTERNET)
    assert not host.ping('lnns1002', '10.200.64.2') and not host.ping('lnns1002', '10.200.67.234')
    assert not host.ping('lnns1', '10.200.64.3')

    out, recap = host.playbook('site.yml', '-e', 'bridge_network_namespaces=5', *subnet)
    assert recap['changed'] == 1, out.stdout
    links = host.links()
    assert 'lnbr0-1' not in links and 'lnbr0-1a' not in links and 'lnbr0-1b' not in links
    assert host.netns() == ['lnns%d' % i for i in range(1, 6)]
    host.playbook('teardown.yml', *subnet)
    assert_nothing_left(host)


def test_install_deps_costs_nothing_where_pyroute2_is_there_and_retries_where_it_is_not(make_host, tmp_path):
    """bridge_network_install_deps (the default): a host whose Python has pyroute2 runs no setup or
    package module and no extra task; one whose Python lacks it gets the install path inside the
    role's read (OS family, package), then the read again - which, the package serving another Python
    than this one, fails naming pyroute2 and what the install did."""
    host = make_host()
    out, recap = host.playbook('site.yml', '-v', '-e', 'bridge_network_namespaces=2', '-e', 'bridge_network_install_deps=true')
    assert recap['failed'] == 0 and host.netns() == ['lnns1', 'lnns2']
    # the read's and the apply's results (-v) say nothing of an install; the tasks are the role's own:
    # the read (which checks the variables too), the fleet's step and the apply
    assert '"deps"' not in out.stdout and '"missing_library"' not in out.stdout, out.stdout
    assert out.stdout.count('TASK [') == 3, out.stdout
    # the entry point `teardown` refuses bridge_network_state=present, changing nothing
    out, recap = host.playbook('teardown.yml', '-e', 'bridge_network_state=present', check=False)
    assert recap['failed'] == 1 and 'is for bridge_network_state=absent' in out.stdout, out.stdout
    assert host.netns() == ['lnns1', 'lnns2']
    out, recap = host.playbook('teardown.yml', '-v', '-e', 'bridge_network_install_deps=true')
    assert '"deps"' not in out.stdout and '"missing_library"' not in out.stdout, out.stdout
    assert_nothing_left(host)

    # a Python without pyroute2 (a bare virtual environment of one that has neither it nor Ansible's deps)
    bare = tmp_path / 'bare'
    subprocess.run([sys.executable, '-m', 'venv', '--without-pip', str(bare)], check=True)
    python = str(bare / 'bin' / 'python3')
    assert subprocess.run([python, '-c', 'import pyroute2'], check=False, stderr=subprocess.DEVNULL).returncode
    for playbook in ('site.yml', 'teardown.yml'):
        out, recap = host.playbook(playbook, '-e', 'bridge_network_namespaces=2', '-e', 'bridge_network_install_deps=true',
                                   '-e', 'ansible_python_interpreter=%s' % python, '--check', check=False)
        assert recap['failed'] == 1 and host.netns() == [], out.stdout
        # the install path ran (Debian family: the package, there for /usr/bin/python3), and the module
        # run again refuses, naming what is missing and what the install did, instead of going on
        assert '"os_family": "Debian", "package": "python3-pyroute2"' in out.stdout, out.stdout
        assert 'Failed to import the required Python library (pyroute2)' in out.stdout
        assert '(bridge_network_install_deps: python3-pyroute2 ' in out.stdout
    # without bridge_network_install_deps: no install path
    out, recap = host.playbook('site.yml', '-e', 'bridge_network_namespaces=2',
                               '-e', 'ansible_python_interpreter=%s' % python, '--check', check=False)
    assert recap['failed'] == 1 and '"deps"' not in out.stdout and 'pyroute2' in out.stdout, out.stdout


def test_where_ansible_pipelines_the_role_runs_the_engine_without_the_module_wrapper(make_host, tmp_path):
    """bridge_network_direct (the default): with pipelining on, the read and the apply run the engine
    on the host without Ansible's module wrapper (engine_run: direct); the modules find in place what
    it made, and with pipelining off (or bridge_network_direct false) the modules run. A Python
    without pyroute2 gets the install path and the refusal a module run gets."""
    host = make_host()
    direct = ('-e', 'ansible_pipelining=true', '-v')
    out, recap = host.playbook('site.yml', '-e', 'bridge_network_namespaces=2', *direct)
    assert recap['failed'] == 0 and recap['changed'] > 0 and host.netns() == ['lnns1', 'lnns2']
    assert out.stdout.count('"engine_run": "direct"') == 2 and '"engine_run": "module"' not in out.stdout, out.stdout
    assert host.ping('lnns2', INTERNET)
    # the plan was saved, with the boot code taken from the sources the run was sent
    assert '"saved": {' in out.stdout, out.stdout
    # what the direct runs made, the modules find in place, and the other way round
    for extra in (('-v',), ('-e', 'ansible_pipelining=true', '-e', 'bridge_network_direct=false', '-v'),
                  direct + ('--check', '--diff')):
        out, recap = host.playbook('site.yml', '-e', 'bridge_network_namespaces=2', *extra)
        assert recap['changed'] == 0, out.stdout
        assert out.stdout.count('"engine_run": "%s"' % ('direct' if extra[-1] == '--diff' else 'module')) == 2, out.stdout
    # a change, planned (check mode: nothing made) and then applied directly
    out, recap = host.playbook('site.yml', '-e', 'bridge_network_namespaces=3', '--check', '--diff', *direct)
    assert recap['changed'] == 1 and host.netns() == ['lnns1', 'lnns2'] and '"create netns lnns3"' in out.stdout, out.stdout
    out, recap = host.playbook('site.yml', '-e', 'bridge_network_namespaces=3', *direct)
    assert recap['changed'] == 1 and host.netns() == ['lnns1', 'lnns2', 'lnns3']

    bare = tmp_path / 'bare'
    subprocess.run([sys.executable, '-m', 'venv', '--without-pip', str(bare)], check=True)
    out, recap = host.playbook('site.yml', '-e', 'bridge_network_namespaces=3', '-e', 'bridge_network_install_deps=true',
                               '-e', 'ansible_python_interpreter=%s' % (bare / 'bin' / 'python3'), '--check',
                               *direct, check=False)
    assert recap['failed'] == 1 and '"os_family": "Debian", "package": "python3-pyroute2"' in out.stdout, out.stdout
    assert 'Failed to import the required Python library (pyroute2)' in out.stdout, out.stdout

    out, recap = host.playbook('teardown.yml', *direct)
    assert recap['changed'] > 0 and out.stdout.count('"engine_run": "direct"') == 1, out.stdout
    assert_nothing_left(host)


def test_services_and_dns_in_the_roles_namespaces(make_host, tmp_path):
    """bridge_network_services and bridge_network_dns: a drop-in for a service in the second
    namespace, a resolver in each, re-run unchanged; a namespace resolves a name through NAT from a
    DNS server on the 'internet'; dropping them from the variables removes the files (purge)."""
    from test_service_dns import RESPONDER
    host = make_host()
    # the host's units and resolvers on tmpfs of its own mount namespace
    host.sh('mkdir -p /etc/systemd/system /etc/netns && mount -t tmpfs role-units /etc/systemd/system '
            '&& mount -t tmpfs role-netns-etc /etc/netns '
            '&& printf "[Service]\\nExecStart=/bin/sleep infinity\\n" > /etc/systemd/system/web.service')
    server = subprocess.Popen(['nsenter', '-t', str(host.internet.pid), '--net', sys.executable, '-c', RESPONDER,
                               '192.0.2.1', 'svc.test', '203.0.113.9'])
    try:
        wanted = tmp_path / 'wanted.json'
        wanted.write_text(json.dumps({'bridge_network_namespaces': 2, 'bridge_network_dns': ['192.0.2.1'],
                                      'bridge_network_services': [{'service': 'web', 'namespace': 2}]}))
        out, recap = host.playbook('site.yml', '-e', '@%s' % wanted)
        dropin = host.sh('cat /etc/systemd/system/web.service.d/50-linuxnet-netns.conf')
        assert 'NetworkNamespacePath=/run/netns/lnns2\n' in dropin, dropin
        for ns in ('lnns1', 'lnns2'):
            assert host.sh('cat /etc/netns/%s/resolv.conf' % ns).endswith('\nnameserver 192.0.2.1\n')
        for _attempt in range(50):
            found = host.run(['ip', 'netns', 'exec', 'lnns1', 'getent', 'hosts', 'www.svc.test'], check=False)
            if found.returncode == 0:
                break
            time.sleep(0.1)
        assert found.stdout.split() == ['203.0.113.9', 'www.svc.test'], found.stdout
        out, recap = host.playbook('site.yml', '-e', '@%s' % wanted)
        assert recap['changed'] == 0, out.stdout

        out, recap = host.playbook('site.yml', '-e', 'bridge_network_namespaces=2')
        assert recap['changed'] == 1, out.stdout
        # the drop-in and the resolvers gone; the boot units of the role's saved plan (bridge_network_persist) stay
        assert host.sh('ls -A /etc/systemd/system /etc/netns') == (
            '/etc/netns:\n\n/etc/systemd/system:\nlinuxnet-netns-uplink.service\nlinuxnet-netns.service\n'
            'multi-user.target.wants\nsystemd-networkd.service.wants\nweb.service\n')
        host.playbook('site.yml', '-e', '@%s' % wanted)
        host.playbook('teardown.yml')
        assert_nothing_left(host)
        assert host.sh('ls -A /etc/systemd/system /etc/netns') == '/etc/netns:\n\n/etc/systemd/system:\nweb.service\n'
    finally:
        server.terminate()
        server.wait(timeout=10)
