"""A safe router, on the lab fleet over SSH: after site.yml, a third host on the underlay (the lab's
bystander) cannot route through our host to the internet namespace, while our namespaces can.
With the restriction lifted the same probe gets through, so the check can fail."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(os.environ.get('LINUXNET_SANDBOX') != '1',
                                reason='the lab changes networking: run inside tests/sandbox.sh')

REPO = Path(__file__).resolve().parents[2]
LAB_PY = REPO / 'tests' / 'lab' / 'lab.py'
INTERNET = '198.51.100.2'
LAB1 = '192.0.2.11'


def run(argv, env=None, check=True):
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, check=False, timeout=300)
    if check:
        assert proc.returncode == 0, '%s -> %d\n%s%s' % (' '.join(argv), proc.returncode, proc.stdout, proc.stderr)
    return proc


@pytest.fixture
def lab(tmp_path):
    state = tmp_path / 'lab'
    run([sys.executable, str(LAB_PY), 'up', '--hosts', '1', '--bystander', '--dir', str(state)])
    collections = run(['bash', str(REPO / 'tests' / 'lab' / 'collections.sh'), str(tmp_path / 'coll')]).stdout.strip()
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collections, ANSIBLE_NOCOLOR='1')
    yield state, env
    run([sys.executable, str(LAB_PY), 'down', '--dir', str(state)], check=False)


def in_node(state, node, *argv, check=False):
    return run([sys.executable, str(LAB_PY), 'exec', '--dir', str(state), node, '--', *argv], check=check)


def bystander_gets_through(state):
    return in_node(state, 'bystander', 'ping', '-c1', '-W1', INTERNET).returncode == 0


def test_bystander_cannot_route_through_our_host(lab):
    state, env = lab
    bin_dir = os.path.dirname(sys.executable)
    inventory = str(state / 'inventory.yml')
    run([os.path.join(bin_dir, 'ansible-playbook'), '-i', inventory, str(REPO / 'playbooks' / 'site.yml'),
         '-e', 'bridge_network_namespaces=2'], env=env)
    # the bystander sends its internet traffic to lab1, as a stranger on the underlay could
    in_node(state, 'bystander', 'ip', 'route', 'replace', '198.51.100.0/24', 'via', LAB1, check=True)
    assert in_node(state, 'lab1', 'ip', 'netns', 'exec', 'lnns1', 'ping', '-c1', '-W2', INTERNET).returncode == 0, \
        'our namespace cannot reach the internet'
    assert not bystander_gets_through(state), 'lab1 routes for a stranger on the underlay'
    # lift the restriction: the same probe now gets through lab1 (the check above can fail)
    run([os.path.join(bin_dir, 'ansible'), '-i', inventory, 'lab1', '-m', 'linuxnet.netns.sysctl_forward',
         '-a', '{"restrict_to": []}'], env=env)
    assert bystander_gets_through(state), 'control: with forwarding unrestricted the bystander should pass'
