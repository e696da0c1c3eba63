"""A safe router, on the lab fleet over SSH: after site.yml, a third host on the underlay (the lab's
bystander) cannot route through our host to the internet namespace, while our namespaces can.
With the restriction lifted the same probe gets through, so the check can fail."""
import os

import pytest

pytestmark = pytest.mark.skipif(os.environ.get('LINUXNET_SANDBOX') != '1',
                                reason='the lab changes networking: run inside tests/sandbox.sh')

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
INTERNET = '198.51.100.2'
LAB1 = '192.0.2.11'


def bystander_gets_through(lab):
    return lab.on('bystander', 'ping', '-c1', '-W1', INTERNET).returncode == 0


def test_bystander_cannot_route_through_our_host(make_lab):
    lab = make_lab(1, bystander=True)
    lab.ansible('ansible-playbook', os.path.join(REPO, 'playbooks', 'site.yml'), '-e', 'bridge_network_namespaces=2')
    # the bystander sends its internet traffic to lab1, as a stranger on the underlay could
    lab.on('bystander', 'ip', 'route', 'replace', '198.51.100.0/24', 'via', LAB1, check=True)
    assert lab.on('lab1', 'ip', 'netns', 'exec', 'lnns1', 'ping', '-c1', '-W2', INTERNET).returncode == 0, \
        'our namespace cannot reach the internet'
    assert not bystander_gets_through(lab), 'lab1 routes for a stranger on the underlay'
    # lift the restriction: the same probe now gets through lab1 (the check above can fail)
    lab.ansible('ansible', 'lab1', '-m', 'linuxnet.netns.sysctl_forward', '-a', '{"restrict_to": []}')
    assert bystander_gets_through(lab), 'control: with forwarding unrestricted the bystander should pass'
