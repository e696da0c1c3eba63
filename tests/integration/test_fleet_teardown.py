"""The role's teardown on a fleet with host-gw routing, over SSH: state=absent reads nothing first and
removes the routes to the other hosts' subnets (marked as this collection's, protocol 76), the
namespaces, the bridge and the MASQUERADE rule - and leaves a route the user added by hand inside the
pool, and a namespace named like the role's that `ip netns add` made."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(os.environ.get('LINUXNET_SANDBOX') != '1',
                                reason='the lab changes networking: run inside tests/sandbox.sh')

REPO = Path(__file__).resolve().parents[2]
LAB_PY = REPO / 'tests' / 'lab' / 'lab.py'
BIN = os.path.dirname(sys.executable)


def run(argv, env=None, check=True):
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, check=False, timeout=300)
    if check:
        assert proc.returncode == 0, '%s -> %d\n%s%s' % (' '.join(argv), proc.returncode, proc.stdout, proc.stderr)
    return proc


@pytest.fixture
def lab(tmp_path):
    state = tmp_path / 'lab'
    run([sys.executable, str(LAB_PY), 'up', '--hosts', '2', '--dir', str(state)])
    collections = run(['bash', str(REPO / 'tests' / 'lab' / 'collections.sh'), str(tmp_path / 'coll')]).stdout.strip()
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collections, ANSIBLE_NOCOLOR='1')
    yield state, env
    run([sys.executable, str(LAB_PY), 'down', '--dir', str(state)], check=False)


def on(state, node, command):
    return run([sys.executable, str(LAB_PY), 'exec', '--dir', str(state), node, '--', 'sh', '-c', command]).stdout


def playbook(state, env, name, *extra):
    return run([os.path.join(BIN, 'ansible-playbook'), '-i', str(state / 'inventory.yml'),
                str(REPO / 'playbooks' / name), '-e', 'bridge_network_namespaces=2',
                '-e', 'bridge_network_host_gw=true'] + list(extra), env=env).stdout


def test_host_gw_teardown_takes_only_ours(lab):
    state, env = lab
    playbook(state, env, 'site.yml')
    routes = on(state, 'lab1', 'ip route show proto 76')
    assert '10.200.' in routes, 'no host-gw route to lab2 marked as ours:\n' + routes
    # the user's: a route by hand inside the pool, a namespace named like the role's
    on(state, 'lab1', 'ip route add 10.200.250.0/24 via 192.0.2.1 && ip netns add lnns9')

    out = playbook(state, env, 'teardown.yml')
    assert 'changed=1' in out and 'failed=0' in out, out
    for node in ('lab1', 'lab2'):
        assert on(state, node, 'ip route show proto 76') == '', node
        assert 'lnbr0' not in on(state, node, 'ip -br link')
        assert 'linuxnet' not in on(state, node, 'nft list ruleset')
    assert on(state, 'lab1', 'ip netns list').split() == ['lnns9']
    assert on(state, 'lab2', 'ip netns list').split() == []
    assert '10.200.250.0/24 via 192.0.2.1' in on(state, 'lab1', 'ip route')
    again = playbook(state, env, 'teardown.yml')
    assert 'changed=0' in again and 'failed=0' in again, again
