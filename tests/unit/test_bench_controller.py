"""bench/controller.py at small H: the recorded fleet plans cleanly, and the once-per-play way
(run_once allocation and bridge_network_fleet, then each host's plan) gives every host the plan the
per-host way (every host allocating the fleet itself, as the role did before) gives it. Not timed."""
import importlib.util
import os

import pytest

BENCH = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), 'bench')


def _controller():
    spec = importlib.util.spec_from_file_location('bench_controller', os.path.join(BENCH, 'controller.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


controller = _controller()


@pytest.mark.parametrize('variant', ['default', 'host-gw'])
@pytest.mark.parametrize('hosts', [3, 10])
def test_once_per_play_plans_equal_the_per_host_ones(hosts, variant):
    settings = controller.role_settings(host_gw=variant == 'host-gw')
    infos = controller.recorded_fleet(['host%04d' % i for i in range(hosts)], settings)
    once = controller.once_per_play(infos, settings)[0]
    alone = controller.per_host(infos, settings)[0]
    assert sorted(once) == sorted(infos)
    assert once == alone
    subnets = set(plan['subnet'] for plan in once.values())
    assert len(subnets) == hosts  # every host its own subnet: the one its bridge already has
    for host, plan in once.items():
        assert plan['errors'] == [] and plan['warnings'] == []
        assert infos[host]['host']['interfaces']['lnbr0']['addresses'] == [plan['bridges'][0]['addresses'][0]]
        if variant == 'host-gw':
            assert len(plan['routes']) == 2 + hosts - 1  # a default route per namespace, one per other host


def test_measure_rows_and_targets():
    rows = controller.measure([3, 10], repeat=1)
    assert sorted((r['method'], r['hosts']) for r in rows) == [
        ('once', 3), ('once', 10), ('per-host', 3), ('per-host', 10)]
    assert all(r['same'] for r in rows)
    # H=1000 not measured: the targets say so rather than pass or fail
    assert [verdict for _label, _measured, verdict in controller.targets(rows)] == ['n/a', 'n/a']
