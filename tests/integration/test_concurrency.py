"""Four runs at the same time on one host: the same spec four times, and four different specs that
touch the same namespaces. No run fails ("File exists" or otherwise), exactly one of four identical
runs reports a change, and the final state (read with netns_info) is what the specs say together.
Also the tutorial playbook twice at once. Each test runs in a fresh host namespace (the `host`
fixture), with pip's pyroute2 and with Debian's.
"""
import json
import os
import re
import subprocess
import sys

import pytest

from conftest import REPO

N = 24


def start(host, name, args, check=False):
    """Host.module, in the background."""
    host.calls += 1
    path = host.tmp / ('args%d.json' % host.calls)
    path.write_text(json.dumps({'ANSIBLE_MODULE_ARGS': dict(args, _ansible_check_mode=check, _ansible_diff=False)}))
    env = dict(os.environ, PYTHONPATH='%s:%s' % (host.collections, host.collections / 'ansible_only'))
    return subprocess.Popen(['nsenter', '--net=/run/netns/' + host.name, host.python,
                             os.path.join(REPO, 'plugins', 'modules', name + '.py'), str(path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, env=env)


def together(host, calls):
    """Start every (module, args) at once; returns their results, in order. A run that printed no
    JSON (a traceback) counts as failed, with its stderr as the message."""
    procs = [start(host, module, args) for module, args in calls]
    results = []
    for (module, _args), proc in zip(calls, procs):
        out, err = proc.communicate()
        try:
            result = json.loads(out)
        except ValueError:
            result = {'failed': True, 'msg': 'no JSON (rc %s): %s %s' % (proc.returncode, out, err[-2000:])}
        result['_module'] = module
        results.append(result)
    return results


def assert_all_ok(results):
    failed = ['%s: %s' % (r['_module'], r.get('msg')) for r in results if r.get('failed')]
    assert not failed, '\n'.join(failed)
    assert not [r for r in results if 'File exists' in json.dumps(r)]


def subnet(i, last):
    return '10.%d.%d.%d' % (70 + i // 64, 0, (i % 64) * 4 + last)


def test_same_spec_four_times(host):
    names = [host.ns('s%d' % i) for i in range(N)]
    pairs = [{'name': host.prefix + 's%d' % i, 'addresses': ['%s/30' % subnet(i, 1)],
              'peer': {'name': 'eth0', 'netns': names[i], 'addresses': ['%s/30' % subnet(i, 2)]}} for i in range(N)]
    steps = [
        ('netns', {'namespaces': [{'name': n} for n in names]}),
        ('veth', {'pairs': pairs}),
        ('netns_route', {'routes': [{'netns': names[i], 'gateway': subnet(i, 1)} for i in range(N)]}),
        ('nat_masquerade', {'rules': [{'source': '10.70.0.0/24', 'out_interface': 'up0'},
                                      {'source': '10.70.0.0/24', 'out_interface': 'eth0', 'netns': names[0]}]}),
    ]
    for module, args in steps:
        results = together(host, [(module, args)] * 4)
        assert_all_ok(results)
        # the runs take turns (a lock): the first one does the work, the others find it done
        assert sorted(r['changed'] for r in results) == [False, False, False, True], \
            '%s x4: %s' % (module, [(r['changed'], len(r['actions'])) for r in results])

    info = host.ok('netns_info', {'netns': names})
    assert sorted(info['netns']) == sorted(names)
    for i, ns in enumerate(names):
        view = info['netns'][ns]
        assert view['lo_up'] and sorted(view['interfaces']) == ['eth0', 'lo']
        assert view['interfaces']['eth0']['addresses'] == ['%s/30' % subnet(i, 2)]
        assert {'dest': '0.0.0.0/0', 'gateway': subnet(i, 1), 'dev': 'eth0', 'metric': 0, 'table': 254, 'ours': True} in view['routes']
        assert info['host']['interfaces'][host.prefix + 's%d' % i]['addresses'] == ['%s/30' % subnet(i, 1)]
    assert sorted((r['netns'] or '', r['source'], r['out_interface']) for r in info['nat'] if 'source' in r) == \
        [('', '10.70.0.0/24', 'up0'), (names[0], '10.70.0.0/24', 'eth0')]

    gone = together(host, [('netns', {'namespaces': [{'name': n, 'state': 'absent'} for n in names]})] * 4)
    assert_all_ok(gone)
    assert sorted(r['changed'] for r in gone) == [False, False, False, True]
    assert host.netns_list() == []
    assert [line.split()[0] for line in host.sh('ip -br link').splitlines()] == ['lo']


def test_different_specs_on_the_same_namespaces(host):
    names = [host.ns('d%d' % i) for i in range(N)]
    host.ok('netns', {'namespaces': [{'name': n} for n in names[:8]]})
    first = names[:8]

    # two overlapping sets of namespaces to create, a veth pair into each existing one, NAT in them
    results = together(host, [
        ('netns', {'namespaces': [{'name': n} for n in names[:16]]}),
        ('netns', {'namespaces': [{'name': n} for n in names[4:]]}),
        ('veth', {'pairs': [{'name': host.prefix + 'e%d' % i, 'addresses': ['%s/30' % subnet(i, 1)],
                             'peer': {'name': 'eth0', 'netns': ns, 'addresses': ['%s/30' % subnet(i, 2)]}}
                            for i, ns in enumerate(first)]}),
        ('nat_masquerade', {'rules': [{'source': '10.71.0.0/24', 'out_interface': 'eth0', 'netns': ns} for ns in first]}),
    ])
    assert_all_ok(results)

    # four veth runs, each adding a pair of its own inside every one of the same namespaces
    results = together(host, [
        ('veth', {'pairs': [{'name': 'k%d' % k, 'netns': ns, 'addresses': ['192.168.%d.1/24' % k],
                             'peer': {'name': 'k%dp' % k, 'netns': ns}} for ns in first]})
        for k in range(4)])
    assert_all_ok(results)

    # routes and forwarding in them, a bridge in each, and half of the new namespaces removed
    results = together(host, [
        ('netns_route', {'routes': [{'netns': ns, 'gateway': subnet(i, 1)} for i, ns in enumerate(first)]}),
        ('sysctl_forward', {'settings': [{'netns': ns, 'ipv4': True} for ns in first]}),
        ('bridge', {'bridges': [{'name': 'br0', 'netns': ns, 'addresses': ['172.29.0.1/24']} for ns in first]}),
        ('netns', {'namespaces': [{'name': n, 'state': 'absent'} for n in names[16:]]}),
    ])
    assert_all_ok(results)

    info = host.ok('netns_info', {})
    mine = sorted(n for n in info['namespaces'] if n.startswith(host.prefix) and n != host.name)
    assert mine == sorted(names[:16])
    for i, ns in enumerate(first):
        view = info['netns'][ns]
        assert sorted(view['interfaces']) == sorted(['lo', 'eth0', 'br0'] + ['k%d' % k for k in range(4)] +
                                                    ['k%dp' % k for k in range(4)]), (ns, sorted(view['interfaces']))
        assert all(view['interfaces'][name]['ours'] for name in view['interfaces'] if name != 'lo')
        assert view['interfaces']['eth0']['addresses'] == ['%s/30' % subnet(i, 2)]
        assert view['interfaces']['k3']['addresses'] == ['192.168.3.1/24']
        assert {'dest': '0.0.0.0/0', 'gateway': subnet(i, 1), 'dev': 'eth0', 'metric': 0, 'table': 254, 'ours': True} in view['routes']
        assert view['forwarding']['ipv4'] is True
    for ns in names[8:16]:
        assert sorted(info['netns'][ns]['interfaces']) == ['lo'] and info['netns'][ns]['lo_up']
    assert sorted(r['netns'] for r in info['nat'] if r.get('source') == '10.71.0.0/24') == sorted(first)

    # every one of them again, all at once: nothing left to do
    again = together(host, [
        ('netns', {'namespaces': [{'name': n} for n in names[:16]]}),
        ('veth', {'pairs': [{'name': 'k%d' % k, 'netns': ns, 'addresses': ['192.168.%d.1/24' % k],
                             'peer': {'name': 'k%dp' % k, 'netns': ns}} for ns in first for k in range(4)]}),
        ('nat_masquerade', {'rules': [{'source': '10.71.0.0/24', 'out_interface': 'eth0', 'netns': ns} for ns in first]}),
        ('bridge', {'bridges': [{'name': 'br0', 'netns': ns, 'addresses': ['172.29.0.1/24']} for ns in first]}),
    ])
    assert_all_ok(again)
    assert [r['changed'] for r in again] == [False] * 4, [r['actions'][:3] for r in again]


RECAP = re.compile(r'^localhost\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)', re.M)


@pytest.mark.parametrize('python', [pytest.param(sys.executable, id='controller')])
def test_tutorial_playbook_twice_at_once(host, tmp_path):
    # ansible-playbook runs the modules with the controller's Python (pip's pyroute2): one case
    host.sh('ip link add up0 type veth peer name up0p && ip addr add 203.0.113.2/24 dev up0 && '
            'ip link set up0p up && ip link set up0 up && ip route add default via 203.0.113.1')
    ns = host.ns('ns1')

    def playbook():
        env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(host.collections), ANSIBLE_NOCOLOR='1',
                   ANSIBLE_PYTHON_INTERPRETER=host.python, ANSIBLE_LOCALHOST_WARNING='0',
                   ANSIBLE_LOCAL_TEMP=str(tmp_path / 'ansible-tmp'))
        return subprocess.Popen(['nsenter', '--net=/run/netns/' + host.name,
                                 os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'),
                                 '-i', 'localhost,', '-c', 'local', os.path.join(REPO, 'playbooks', 'tutorial.yml'),
                                 '-e', 'tutorial_uplink=up0', '-e', 'tutorial_netns=' + ns],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, env=env)

    def recap(proc):
        out, _err = proc.communicate()
        found = RECAP.search(out)
        assert proc.returncode == 0 and found, out
        assert 'File exists' not in out, out
        return int(found.group(2))

    try:
        runs = [playbook(), playbook()]
        changed = [recap(proc) for proc in runs]
        # each of the five tasks changed the host once, in one run or the other
        assert sum(changed) == 5, changed
        assert host.netns_list() == [ns]
        assert subprocess.call(['ip', 'netns', 'exec', ns, 'ping', '-c1', '-W2', '10.0.0.1'],
                               stdout=subprocess.DEVNULL) == 0
    finally:
        subprocess.call(['ip', 'netns', 'del', ns], stderr=subprocess.DEVNULL)
