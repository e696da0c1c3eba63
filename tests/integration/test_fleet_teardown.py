"""The role's teardown on a fleet with host-gw routing, over SSH: state=absent reads nothing first and
removes the routes to the other hosts' subnets (marked as this collection's, protocol 76), the
namespaces, the bridge and the MASQUERADE rule - and leaves a route the user added by hand inside the
pool, and a namespace named like the role's that `ip netns add` made."""
import os

import pytest

pytestmark = pytest.mark.skipif(os.environ.get('LINUXNET_SANDBOX') != '1',
                                reason='the lab changes networking: run inside tests/sandbox.sh')

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def on(lab, node, command):
    return lab.on(node, 'sh', '-c', command, check=True).stdout


def playbook(lab, name):
    return lab.ansible('ansible-playbook', os.path.join(REPO, 'playbooks', name), '-e', 'bridge_network_namespaces=2',
                       '-e', 'bridge_network_host_gw=true').stdout


def test_host_gw_teardown_takes_only_ours(make_lab):
    lab = make_lab(2)
    playbook(lab, 'site.yml')
    routes = on(lab, 'lab1', 'ip route show proto 76')
    assert '10.200.' in routes, 'no host-gw route to lab2 marked as ours:\n' + routes
    # the user's: a route by hand inside the pool, a namespace named like the role's
    on(lab, 'lab1', 'ip route add 10.200.250.0/24 via 192.0.2.1 && ip netns add lnns9')

    out = playbook(lab, 'teardown.yml')
    assert 'changed=1' in out and 'failed=0' in out, out
    for node in ('lab1', 'lab2'):
        assert on(lab, node, 'ip route show proto 76') == '', node
        assert 'lnbr0' not in on(lab, node, 'ip -br link')
        assert 'linuxnet' not in on(lab, node, 'nft list ruleset')
    assert on(lab, 'lab1', 'ip netns list').split() == ['lnns9']
    assert on(lab, 'lab2', 'ip netns list').split() == []
    assert '10.200.250.0/24 via 192.0.2.1' in on(lab, 'lab1', 'ip route')
    again = playbook(lab, 'teardown.yml')
    assert 'changed=0' in again and 'failed=0' in again, again
