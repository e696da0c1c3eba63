"""purge_match's selection and the teardown's wait, without a kernel."""
import ipaddress

import pytest

from ansible_collections.linuxnet.netns.plugins.module_utils import _kind_netns, _network
from ansible_collections.linuxnet.netns.plugins.module_utils import _validate as V

LISTS = {'namespaces': [], 'bridges': [], 'pairs': [], 'routes': [], 'masquerade': []}


def select(**params):
    args = dict(LISTS, purge=True)
    args.update(params)
    return _network.purge_selection(args)


def net(text):
    return ipaddress.ip_network(text)


def test_without_purge_match_every_given_kind_is_purged_whole():
    selection = _network.purge_selection({'purge': True, 'namespaces': [], 'routes': None, 'forwarding': []})
    assert selection == {'namespaces': None}  # routes not given; forwarding has no purge


def test_names_match_whole_and_kinds_not_named_are_not_purged():
    selection = select(purge_match={'namespaces': ['lnns[0-9]+', 'a|b'], 'bridges': None})
    assert sorted(selection) == ['namespaces']
    match = selection['namespaces']
    assert match('lnns12') and match('a') and match('b')
    assert not match('lnns12x') and not match('xlnns1') and not match('ab')


def test_prefixes_contain_and_families_stay_apart():
    selection = select(purge_match={'routes': ['10.200.0.0/16', 'fd00::/8'], 'masquerade': ['0.0.0.0/0']})
    routes, masq = selection['routes'], selection['masquerade']
    assert routes(net('10.200.3.0/24')) and routes(net('10.200.0.0/16')) and routes(net('fd00:1::/64'))
    assert not routes(net('10.0.0.0/8')) and not routes(net('0.0.0.0/0')) and not routes(net('fe80::/64'))
    assert masq(net('192.168.1.0/24')) and not masq(net('fd00::/64'))


@pytest.mark.parametrize('params, fragment', [
    ({'purge_match': {'namespaces': ['x']}, 'purge': False}, 'purge_match='),
    ({'purge_match': {'namespaces': ['lnns[0-9']}}, 'purge_match.namespaces[0]='),
    ({'purge_match': {'routes': ['10.0.0.1/8']}}, 'host bits'),
    ({'purge_match': {'routes': ['default']}}, 'ambiguous'),
    ({'purge_match': {'masquerade': ['nonsense']}}, 'purge_match.masquerade[0]='),
    # a kind named without its list: refused, and a bad entry there is refused too
    ({'purge_match': {'pairs': ['lnv[0-9]+']}, 'pairs': None}, 'gives no pairs list'),
    ({'purge_match': {'pairs': ['[']}, 'pairs': None}, 'purge_match.pairs[0]='),
])
def test_bad_selections_are_refused(params, fragment):
    with pytest.raises(V.ValidationError) as exc:
        select(**params)
    assert fragment in str(exc.value)


class FakeKernel(object):
    """The host-side ends the kernel still has, going one by one as the clock advances."""

    def __init__(self, gone_at):
        self.gone_at = gone_at  # index -> time it disappears
        self.now = 0.0
        self.asked = []

    def existing(self, _session, ns, indexes):
        assert ns is None
        self.asked.append(len(list(indexes)))
        return set(i for i in indexes if self.gone_at[i] > self.now)

    def sleep(self, seconds):
        self.now += seconds


def wait(kernel, ends):
    teardown = _kind_netns.Teardown()
    teardown.host_peers = set(ends)
    teardown.wait(None, existing=kernel.existing, clock=lambda: kernel.now, sleep=kernel.sleep)


def test_wait_asks_about_one_end_until_it_goes_then_about_all():
    kernel = FakeKernel(dict((i, 0.5 + i / 1000.0) for i in range(1, 1001)))
    wait(kernel, range(1, 1001))
    assert kernel.now >= 1.5  # not before the last end went
    singles = [n for n in kernel.asked if n == 1]
    assert len(singles) >= len(kernel.asked) - 5  # almost every question is about one end
    assert max(kernel.asked) == 1000  # and all of them once the sentinel was gone


def test_wait_times_out_naming_only_what_is_left():
    kernel = FakeKernel({1: 0.1, 2: 999.0, 3: 999.0})
    with pytest.raises(Exception) as exc:
        wait(kernel, [1, 2, 3])
    assert '[2, 3]' in str(exc.value) and 'outlived' in str(exc.value)
    assert kernel.now >= _kind_netns.TEARDOWN_TIMEOUT


def test_wait_goes_on_while_the_kernel_keeps_removing_ends():
    """Ten thousand namespaces take the kernel's worker longer than the timeout: the wait ends
    when the last end went, not at the first deadline, for ends kept going meanwhile."""
    timeout = _kind_netns.TEARDOWN_TIMEOUT
    kernel = FakeKernel(dict((i, 0.5 + i * 3.0 * timeout / 10000) for i in range(1, 10001)))
    wait(kernel, range(1, 10001))
    assert kernel.now >= 3.0 * timeout  # until the last one went
    assert kernel.now < 3.0 * timeout + 1.0


def test_wait_ends_one_period_after_the_last_end_that_went():
    timeout = _kind_netns.TEARDOWN_TIMEOUT
    kernel = FakeKernel({1: 0.1, 2: 1.5 * timeout, 3: 999.0, 4: 999.0})
    with pytest.raises(Exception) as exc:
        wait(kernel, [1, 2, 3, 4])
    assert '[3, 4]' in str(exc.value) and 'none of them went' in str(exc.value)
    assert 2.0 * timeout <= kernel.now < 3.5 * timeout
