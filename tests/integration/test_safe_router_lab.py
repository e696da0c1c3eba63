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


def ns_address(lab, host, ns='lnns1'):
    out = lab.on(host, 'ip', '-n', ns, '-4', '-o', 'addr', 'show', 'scope', 'global', check=True).stdout
    return out.split()[3].split('/')[0]


def test_the_namespaces_are_closed_to_strangers_but_open_to_the_fleet(make_lab):
    """The role's default inbound scope (bridge_network_inbound: closed): a stranger on the underlay
    with a route to lab1's namespaces via lab1 does not reach them; lab2's namespaces (host-gw) do,
    as do the replies to lab1's namespaces' own connections and a prefix the user allows."""
    lab = make_lab(2, bystander=True)
    site = os.path.join(REPO, 'playbooks', 'site.yml')
    lab.ansible('ansible-playbook', site, '-e', 'bridge_network_namespaces=2', '-e', 'bridge_network_host_gw=true')
    target = ns_address(lab, 'lab1')
    subnet = target.rsplit('.', 1)[0] + '.0/24'
    lab.on('bystander', 'ip', 'route', 'replace', subnet, 'via', LAB1, check=True)

    def stranger_gets_in():
        return lab.on('bystander', 'ping', '-c1', '-W1', target).returncode == 0
    assert not stranger_gets_in(), 'a stranger on the underlay reaches a namespace of lab1 directly'
    assert lab.on('lab2', 'ip', 'netns', 'exec', 'lnns1', 'ping', '-c1', '-W2', target).returncode == 0, \
        "lab2's namespace cannot reach lab1's"
    assert lab.on('lab1', 'ip', 'netns', 'exec', 'lnns1', 'ping', '-c1', '-W2', INTERNET).returncode == 0, \
        "the replies to lab1's namespace's own connections do not come back"
    lab.ansible('ansible-playbook', site, '-e', 'bridge_network_namespaces=2', '-e', 'bridge_network_host_gw=true',
                '-e', '{"bridge_network_inbound_from": ["192.0.2.200/32"]}')
    assert stranger_gets_in(), 'an allowed prefix does not get in'
    lab.ansible('ansible-playbook', site, '-e', 'bridge_network_namespaces=2', '-e', 'bridge_network_host_gw=true',
                '-e', 'bridge_network_inbound=open')
    lab.on('bystander', 'ip', 'route', 'replace', subnet, 'via', LAB1, check=True)
    assert stranger_gets_in(), 'control: with inbound open (as before 0.3.0) the stranger gets in'
