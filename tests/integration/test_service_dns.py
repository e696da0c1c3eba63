"""netns_service and netns_dns against real files and real traffic, inside the sandbox (its /etc
is a private overlay; /run/systemd gets a tmpfs of the test's own where a test writes there).

- A service's drop-in is written, re-run unchanged, accepted by `systemd-analyze verify` (which
  needs no running systemd), reported by netns_info and removed with its directory.
- A namespace connected by a veth to a DNS server running in another namespace (dnsmasq when
  installed, and a stdlib responder of this file) resolves a name with `ip netns exec NS getent
  hosts NAME` through a resolver of netns_dns - static, then upstream behind systemd-resolved's stub.
"""
import os
import shutil
import subprocess
import sys
import time

import pytest

UNIT_DIR = '/etc/systemd/system'
VERIFY = ['systemd-analyze', 'verify', '--man=no', '--recursive-errors=no']
DNS_HEADER = '# Managed by linuxnet.netns.netns_dns; edits here are overwritten.\n'

# A DNS server for one domain: A queries for NAME and the names under it get ADDRESS, their other
# queries an empty answer (glibc asks AAAA first, then A), other names NXDOMAIN.
# Run as: python3 -c RESPONDER LISTEN NAME ADDRESS
RESPONDER = r'''
import socket, struct, sys
listen, name, address = sys.argv[1], sys.argv[2].rstrip('.').lower(), socket.inet_aton(sys.argv[3])
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind((listen, 53))
while True:
    query, peer = sock.recvfrom(512)
    labels, at = [], 12
    while query[at]:
        labels.append(query[at + 1:at + 1 + query[at]].decode().lower())
        at += 1 + query[at]
    qtype = struct.unpack('!H', query[at + 1:at + 3])[0]
    question = query[12:at + 5]
    known = '.'.join(labels) == name or '.'.join(labels).endswith('.' + name)
    hit = known and qtype == 1
    flags = 0x8180 if known else 0x8183  # NXDOMAIN for other names
    answer = struct.pack('!HHHIH', 0xc00c, 1, 1, 60, 4) + address if hit else b''
    sock.sendto(query[:2] + struct.pack('!HHHHH', flags, 1, 1 if hit else 0, 0, 0) + question + answer, peer)
'''


def _which(name):
    return shutil.which(name, path=os.environ.get('PATH', '') + ':/usr/sbin:/sbin')


@pytest.fixture
def unit(host):
    """A dummy service unit in the sandbox's /etc/systemd/system: its name."""
    name = host.prefix + '-web'
    path = os.path.join(UNIT_DIR, name + '.service')
    os.makedirs(UNIT_DIR, exist_ok=True)
    with open(path, 'w') as handle:
        handle.write('[Unit]\nDescription=test service\n\n[Service]\nExecStart=/bin/sleep infinity\n')
    yield name
    os.unlink(path)
    shutil.rmtree(path + '.d', ignore_errors=True)


def verify(name):
    """systemd-analyze verify's (exit code, output). It needs no running systemd, but touches
    /run/systemd/systemd-units-load as a starting manager does: so on a tmpfs of its own, in a mount
    namespace of its own (the machine's /run/systemd is not the sandbox's)."""
    script = 'mount -t tmpfs -o mode=0755 verify-run-systemd /run/systemd && exec "$@"'
    proc = subprocess.run(['unshare', '--mount', '--propagation', 'private', 'sh', '-c', script, 'verify']
                          + VERIFY + [name + '.service'], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, check=False)
    return proc.returncode, proc.stdout


def test_service_dropin_lifecycle(host, unit):
    ns = host.ns('web')
    host.ok('netns', {'name': ns})
    dropin = '%s/%s.service.d/50-linuxnet-netns.conf' % (UNIT_DIR, unit)
    args = {'service': unit, 'netns': ns, 'restart': True}

    predicted = host.ok('netns_service', args, check=True)
    assert predicted['changed'] and not os.path.exists(dropin)
    made = host.ok('netns_service', args)
    assert made['actions'] == predicted['actions'] == ['write %s (place %s.service in netns %s)' % (dropin, unit, ns)]
    assert made['diff'] == predicted['diff']
    with open(dropin) as handle:
        assert handle.read() == made['diff']['after']['file ' + dropin]
    assert oct(os.stat(dropin).st_mode & 0o777) == '0o644'
    # no systemd as PID 1 here: no reload, no restart, a warning - and no failure
    assert 'systemd is not running' in str(made['warnings'])
    assert made['services'][0]['restarted'] is False
    assert verify(unit) == (0, '')

    again = host.ok('netns_service', args)
    assert not again['changed'] and again['actions'] == [] and 'warnings' not in again

    info = host.ok('netns_info', {'netns': [ns]})
    assert info['netns'][ns]['services'] == [unit + '.service']

    removed = host.ok('netns_service', {'service': unit, 'state': 'absent'})
    assert removed['changed'] and not os.path.exists(os.path.dirname(dropin))
    assert removed['diff']['before'] == made['diff']['after']
    assert not host.ok('netns_service', {'service': unit, 'state': 'absent'})['changed']


def test_service_verify_catches_a_broken_dropin_and_accepts_an_escaped_name(host, unit):
    """The check above means something: verify refuses a drop-in systemd would not take, and takes
    the one written for a namespace whose name holds a '%' (written '%%')."""
    ns = host.ns('a%Q')  # %Q: no specifier of systemd's
    host.ok('netns', {'name': ns})
    host.ok('netns_service', {'service': unit, 'netns': ns})
    dropin = '%s/%s.service.d/50-linuxnet-netns.conf' % (UNIT_DIR, unit)
    with open(dropin) as handle:
        text = handle.read()
    assert 'NetworkNamespacePath=/run/netns/%s\n' % ns.replace('%', '%%') in text
    assert verify(unit) == (0, '')
    with open(dropin, 'w') as handle:
        handle.write(text.replace('%%', '%'))
    code, out = verify(unit)
    assert code != 0 and 'Failed to resolve unit specifiers' in out


def test_service_refusals(host, unit):
    result = host.module('netns_service', {'service': host.prefix + '-nope', 'netns': 'x'})
    assert result['failed'] and not result['changed']
    assert result['msg'].startswith("service='%s-nope': systemd has no unit %s-nope.service" % (host.prefix, host.prefix))
    result = host.module('netns_service', {'service': unit, 'netns': host.ns('missing')})
    assert result['failed'] and "network namespace '%s' does not exist" % host.ns('missing') in result['msg']
    assert not os.path.exists('%s/%s.service.d' % (UNIT_DIR, unit))


# ---- DNS with real traffic -----------------------------------------------------------------------------

def _start_server(kind, srv, listen, name, address):
    if kind == 'dnsmasq':
        argv = [_which('dnsmasq'), '--keep-in-foreground', '--conf-file=/dev/null', '--no-resolv', '--no-hosts', '--pid-file',
                '--bind-interfaces', '--listen-address=' + listen, '--address=/%s/%s' % (name, address)]
    else:
        argv = [sys.executable, '-c', RESPONDER, listen, name, address]
    # ip netns exec execs the server: the PID is the server's
    return subprocess.Popen(['ip', 'netns', 'exec', srv] + argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def resolve(ns, name, attempts=50):
    """`ip netns exec NS getent hosts NAME`'s output, asked until it answers (the server starting)."""
    for _attempt in range(attempts):
        proc = subprocess.run(['ip', 'netns', 'exec', ns, 'getent', 'hosts', name], stdout=subprocess.PIPE,
                              universal_newlines=True, check=False)
        if proc.returncode == 0:
            return proc.stdout.split()
        time.sleep(0.1)
    return None


@pytest.fixture
def private_run_systemd():
    """A tmpfs over /run/systemd (the machine's own stays as it is), gone after the test."""
    os.makedirs('/run/systemd', exist_ok=True)
    subprocess.check_call(['mount', '-t', 'tmpfs', '-o', 'mode=0755', 'test-run-systemd', '/run/systemd'])
    try:
        yield '/run/systemd'
    finally:
        subprocess.check_call(['umount', '/run/systemd'])


@pytest.fixture
def host_resolv_conf(tmp_path):
    """/etc/resolv.conf as this test writes it: a file of the test's bound over it in this worker's
    own mount namespace (the sandbox's /etc is shared by the workers), unbound after the test."""
    path = '/etc/resolv.conf'
    own = tmp_path / 'resolv.conf'
    own.write_text(open(path).read() if os.path.exists(path) else '')
    subprocess.check_call(['mount', '--bind', str(own), path])
    try:
        yield path
    finally:
        subprocess.check_call(['umount', path])


@pytest.mark.parametrize('server', ['dnsmasq', 'stdlib'])
def test_dns_resolves_through_a_server_in_another_namespace(host, private_run_systemd, host_resolv_conf, server):
    if server == 'dnsmasq' and not _which('dnsmasq'):
        pytest.skip('no dnsmasq here (Debian package dnsmasq-base); the stdlib responder case runs')
    srv, cli = host.ns('srv'), host.ns('cli')
    host.ok('network', {'namespaces': [{'name': srv}, {'name': cli}],
                        'pairs': [{'name': 'dns0', 'netns': srv, 'addresses': ['10.53.0.1/24'],
                                   'peer': {'name': 'eth0', 'netns': cli, 'addresses': ['10.53.0.2/24']}}]})
    server = _start_server(server, srv, '10.53.0.1', 'svc.test', '10.53.0.99')
    try:
        # the host's resolver is systemd-resolved's stub: loopback, nothing answers inside cli
        with open(host_resolv_conf, 'w') as handle:
            handle.write('nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch lan\n')
        info = host.ok('netns_info', {'netns': [cli]})['netns'][cli]['resolver']
        assert info['file'] == '/etc/resolv.conf' and not info['ours']
        assert info['problem'].startswith('nameserver 127.0.0.53 (/etc/resolv.conf) is a loopback address')
        assert resolve(cli, 'www.svc.test', attempts=1) is None

        static = {'netns': cli, 'source': 'static', 'servers': ['10.53.0.1'], 'options': ['timeout:1']}
        predicted = host.ok('netns_dns', static, check=True)
        made = host.ok('netns_dns', static)
        assert made['changed'] and made['diff'] == predicted['diff'] and made['actions'] == predicted['actions']
        path = '/etc/netns/%s/resolv.conf' % cli
        with open(path) as handle:
            assert handle.read() == DNS_HEADER + '# source: static\nnameserver 10.53.0.1\noptions timeout:1\n'
        assert not host.ok('netns_dns', static)['changed']
        assert resolve(cli, 'www.svc.test') == ['10.53.0.99', 'www.svc.test']
        info = host.ok('netns_info', {'netns': [cli]})['netns'][cli]['resolver']
        assert info == {'file': path, 'servers': ['10.53.0.1'], 'ours': True, 'problem': None}

        # upstream: the stub names loopback only, so systemd-resolved's own list is read
        os.makedirs('/run/systemd/resolve')
        with open('/run/systemd/resolve/resolv.conf', 'w') as handle:
            handle.write('# resolved\nnameserver 10.53.0.1\nsearch svc.test\n')
        upstream = host.ok('netns_dns', {'netns': cli})
        assert upstream['resolvers'][0]['servers'] == ['10.53.0.1']
        assert upstream['resolvers'][0]['search'] == ['svc.test']
        assert not host.ok('netns_dns', {'netns': cli})['changed']
        assert resolve(cli, 'www') == ['10.53.0.99', 'www.svc.test']

        # neither file has a usable server: refused, the namespace's file as it was
        os.unlink('/run/systemd/resolve/resolv.conf')
        refused = host.module('netns_dns', {'netns': cli})
        assert refused['failed'] and 'found no usable server' in refused['msg']
        assert resolve(cli, 'www', attempts=1) == ['10.53.0.99', 'www.svc.test']

        gone = host.ok('netns_dns', {'netns': cli, 'state': 'absent'})
        assert gone['changed'] and not os.path.exists(os.path.dirname(path))
    finally:
        server.terminate()
        server.wait(timeout=10)
        shutil.rmtree('/etc/netns/%s' % cli, ignore_errors=True)
