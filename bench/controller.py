#!/usr/bin/env python
"""The controller's side of the bridge_network role at fleet scale (issue 16, part 4): the filters the
role calls (its action linuxnet.netns.bridge_network_host on each host, tasks/fleet.yml once for the
play), called as the role calls them, fed a recorded netns_info result
(bench/fixtures/netns_info_host.json: a bridge-mode host of the lab fleet, as the role reads it) for
each of H hosts, each host with its own uplink name, underlay address and subnet (a converged fleet:
every host's bridge carries the subnet the allocation gives it, so every host is remembered).

Two ways, side by side, both timed over the whole fleet:

  once       what the role does now: each host's bridge_network_local; once for the play the
             allocation (subnet_allocate), the underlay addresses and bridge_network_fleet; then each
             host's bridge_network_plan with that `fleet`
  per-host   what the role did before: each host's bridge_network_local, then every host builds the
             fleet's pinned, remembered and underlay maps, allocates the whole fleet and plans alone
             (`fleet` None)

The maps that the role builds in Jinja from hostvars are built here as plain dicts, where the role
builds them: once, or once per host. Ansible's own cost (templating, task handling) is not in the
numbers. Both ways must give every host the same plan; the run fails if they do not.

    python3 bench/controller.py                 # H = 10, 100, 1000
    python3 bench/controller.py --sizes 3,10    # small fleets
"""
import argparse
import copy
import gc
import json
import os
import sys
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH)
FIXTURE = os.path.join(BENCH, 'fixtures', 'netns_info_host.json')
SIZES = (10, 100, 1000)
# The whole-fleet targets of issue 16 (part 4)
LIMIT_S, LIMIT_HOSTS, RATIO, RATIO_FROM = 10.0, 1000, 12.0, 100
# A pool with room for a thousand hosts' /24 (4096 slots), clear of the recorded routes; the
# underlay is one link (198.18.0.0/15, the benchmarking range) so that host-gw can reach every host.
POOL, PREFIXLEN = '10.64.0.0/12', 24
UNDERLAY_NET = (198 << 24) | (18 << 16)
UPLINKS = ('eth0', 'ens3', 'enp1s0')


def _import_filters():
    """The collection's filters as Ansible imports them (ansible_collections.linuxnet.netns), from this
    checkout: through a temporary ansible_collections/linuxnet/netns link when it is not installed."""
    try:
        import ansible_collections.linuxnet.netns.plugins  # noqa: F401
    except ImportError:
        import atexit
        import shutil
        import tempfile
        root = tempfile.mkdtemp(prefix='linuxnet-bench-')
        os.makedirs(os.path.join(root, 'ansible_collections', 'linuxnet'))
        os.symlink(REPO, os.path.join(root, 'ansible_collections', 'linuxnet', 'netns'))
        sys.path.insert(0, root)
        atexit.register(shutil.rmtree, root, True)
    from ansible_collections.linuxnet.netns.plugins.filter import bridge_network, subnet_allocate
    return bridge_network, subnet_allocate


bridge_network, subnet_allocate = _import_filters()


def role_settings(**kw):
    """_bridge_network_settings as vars/main.yml builds it from the role's defaults (and `kw`)."""
    import yaml
    with open(os.path.join(REPO, 'roles', 'bridge_network', 'defaults', 'main.yml')) as stream:
        defaults = yaml.safe_load(stream)
    found = dict((key, defaults['bridge_network_' + key]) for key in bridge_network.SETTINGS)
    found.update(pool=POOL, subnet_prefixlen=PREFIXLEN, namespaces=2)
    found.update(kw)
    return found


def _address(value):
    return '%d.%d.%d.%d' % (value >> 24, (value >> 16) & 255, (value >> 8) & 255, value & 255)


def recorded_fleet(hosts, settings):
    """{host: netns_info result}: the recorded host, each with its own uplink (name and underlay
    address) and, on its bridge, the subnet the allocation gives it (what a converged fleet reads)."""
    with open(FIXTURE) as stream:
        template = json.load(stream)
    subnets = subnet_allocate.subnet_allocate(hosts, settings['pool'], settings['subnet_prefixlen'])
    infos = {}
    for index, host in enumerate(hosts):
        info = copy.deepcopy(template)
        interfaces, uplink = info['host']['interfaces'], UPLINKS[index % len(UPLINKS)]
        interfaces[uplink] = interfaces.pop('eth0')
        interfaces[uplink]['addresses'] = ['%s/15' % _address(UNDERLAY_NET + 10 + index)]
        subnet = subnets[host]
        gateway = subnet.split('/')[0].rsplit('.', 1)[0] + '.1'
        interfaces[settings['bridge']]['addresses'] = ['%s/%d' % (gateway, settings['subnet_prefixlen'])]
        for route in info['host']['routes']:
            if route['dev'] == 'eth0':
                route['dev'] = uplink
            if route['dest'] == '0.0.0.0/0':
                route['gateway'] = _address(UNDERLAY_NET + 1)
            elif route['dest'] == '192.0.2.0/24':
                route['dest'] = '198.18.0.0/15'
            elif route['dev'] == settings['bridge'] and route['dest'].startswith('10.'):
                route['dest'] = subnet
        infos[host] = info
    return infos


def _plan_args(settings, host, subnets, underlays, local, fleet):
    return dict(settings, host=host, subnets=subnets, underlays=underlays, local=local, fleet=fleet)


def once_per_play(infos, settings):
    """facts.yml now. Returns {host: plan} and the seconds of the once-per-play step and of the rest."""
    hosts = sorted(infos)
    started = time.perf_counter()
    local = dict((h, bridge_network.bridge_network_local(infos[h], settings)) for h in hosts)
    after_local = time.perf_counter()
    # run_once: _bridge_network_pinned, _bridge_network_remembered and the underlays, from hostvars
    pinned = dict((h, None) for h in hosts)
    remembered = dict((h, local[h]['current']) for h in hosts)
    subnets = subnet_allocate.subnet_allocate(hosts, settings['pool'], settings['subnet_prefixlen'],
                                              explicit=pinned, current=remembered, partial=settings['state'] == 'absent')
    underlays = dict((h, local[h]['underlay']) for h in hosts)
    fleet = bridge_network.bridge_network_fleet(subnets, dict(settings, underlays=underlays))
    after_once = time.perf_counter()
    plans = dict((h, bridge_network.bridge_network_plan(infos[h], _plan_args(
        settings, h, subnets, fleet['underlays'], local[h], fleet))) for h in hosts)
    done = time.perf_counter()
    return plans, {'once': after_once - after_local, 'per_host': (after_local - started) + (done - after_once),
                   'total': done - started}


def per_host(infos, settings):
    """facts.yml before: every host allocates the whole fleet and builds its maps itself."""
    hosts = sorted(infos)
    started = time.perf_counter()
    local = dict((h, bridge_network.bridge_network_local(infos[h], settings)) for h in hosts)
    plans = {}
    for host in hosts:
        explicit = dict((h, None) for h in hosts)
        explicit[host] = settings['subnet']
        remembered = dict((h, local[h]['current']) for h in hosts)
        subnets = subnet_allocate.subnet_allocate(hosts, settings['pool'], settings['subnet_prefixlen'],
                                                  explicit=explicit, current=remembered,
                                                  partial=settings['state'] == 'absent')
        underlays = dict((h, local[h]['underlay']) for h in subnets)
        plans[host] = bridge_network.bridge_network_plan(infos[host], _plan_args(
            settings, host, subnets, underlays, local[host], None))
    done = time.perf_counter()
    return plans, {'once': 0.0, 'per_host': done - started, 'total': done - started}


def measure(sizes=SIZES, repeat=3, old=True, variants=('default',), log=None):
    """Rows {method, hosts, variant, seconds, once, per_host, ms_per_host, same}: the best of `repeat`
    runs of each way (one run of the per-host way from 1000 hosts up: it is the slow one)."""
    rows = []
    for variant in variants:
        settings = role_settings(host_gw=True) if variant == 'host-gw' else role_settings()
        for hosts in sizes:
            infos = recorded_fleet(['host%04d' % i for i in range(hosts)], settings)
            ways = [('once', once_per_play)] + ([('per-host', per_host)] if old else [])
            plans = {}
            for method, way in ways:
                runs = repeat if method == 'once' or hosts < 1000 else 1
                best = None
                for _attempt in range(max(1, runs)):
                    plans.pop(method, None)
                    gc.collect()  # the previous run's garbage is not this run's to collect
                    plans[method], times = way(infos, settings)
                    if best is None or times['total'] < best['total']:
                        best = times
                rows.append({'method': method, 'variant': variant, 'hosts': hosts, 'seconds': best['total'],
                             'once': best['once'], 'per_host': best['per_host'],
                             'ms_per_host': best['total'] * 1000.0 / hosts})
                if log:
                    log('controller %s %s H=%d: %.3f s' % (variant, method, hosts, best['total']))
            errors = [p for p in plans['once'].values() if p['errors']]
            if errors:
                raise RuntimeError('the recorded fleet does not plan cleanly: %s' % errors[0]['errors'])
            same = 'per-host' not in plans or plans['once'] == plans['per-host']
            for row in rows[-len(ways):]:
                row['same'] = same
            if not same:
                raise RuntimeError('H=%d (%s): the once-per-play plans differ from the per-host ones' % (hosts, variant))
    return rows


def find(rows, method, hosts, variant='default'):
    for row in rows:
        if row['method'] == method and row['hosts'] == hosts and row['variant'] == variant:
            return row
    return None


def verdict(ok):
    """A target's verdict, as bench/run.py words it (this script runs on its own too)."""
    return 'PASS' if ok else 'FAIL'


def targets(rows):
    """(label, measured, PASS/FAIL/n/a/info): issue 16's two targets, on the once-per-play way."""
    big, small = find(rows, 'once', LIMIT_HOSTS), find(rows, 'once', RATIO_FROM)
    label = 'controller: allocation and planning for H=%d <= %g s' % (LIMIT_HOSTS, LIMIT_S)
    out = [(label, '%.2f s' % big['seconds'], verdict(big['seconds'] <= LIMIT_S)) if big
           else (label, 'not measured', 'n/a')]
    label = 'controller: linear, H=%d <= %gx H=%d' % (LIMIT_HOSTS, RATIO, RATIO_FROM)
    out.append((label, '%.1fx (%.3f s / %.3f s)' % (big['seconds'] / small['seconds'], big['seconds'], small['seconds']),
                verdict(big['seconds'] <= RATIO * small['seconds'])) if big and small
               else (label, 'not measured', 'n/a'))
    old = find(rows, 'per-host', LIMIT_HOSTS)
    if big and old:
        out.append(('(for comparison) H=%d, every host allocating the fleet itself (before)' % LIMIT_HOSTS,
                    '%.2f s, %.0fx the once-per-play way' % (old['seconds'], old['seconds'] / big['seconds']), 'info'))
    return out


def table(rows):
    header = ['variant', 'H', 'way', 'total s', 'once-per-play s', 'per-host s', 'ms/host', 'x per-host way',
              'plans equal']
    lines = []
    for row in sorted(rows, key=lambda r: (r['variant'], r['hosts'], r['method'] != 'once')):
        old = find(rows, 'per-host', row['hosts'], row['variant'])
        speedup = '%.1f' % (old['seconds'] / row['seconds']) if old and row['method'] == 'once' else '-'
        lines.append([row['variant'], str(row['hosts']), row['method'], '%.3f' % row['seconds'], '%.3f' % row['once'],
                      '%.3f' % row['per_host'], '%.3f' % row['ms_per_host'], speedup, 'yes' if row['same'] else 'NO'])
    return header, lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n', maxsplit=1)[0])
    parser.add_argument('--sizes', type=lambda s: [int(x) for x in s.split(',') if x], default=list(SIZES),
                        help='fleet sizes H (default 10,100,1000)')
    parser.add_argument('--repeat', type=int, default=3, help='runs of each way; the best counts (default 3)')
    parser.add_argument('--no-old', action='store_true', help='leave out the per-host way (the slow one)')
    parser.add_argument('--host-gw', action='store_true',
                        help='also with bridge_network_host_gw (a route to every other host: O(H) per host by nature)')
    parser.add_argument('--json', help='write the rows to this file')
    args = parser.parse_args()
    rows = measure(args.sizes, args.repeat, not args.no_old, ('default', 'host-gw') if args.host_gw else ('default',),
                   log=lambda m: sys.stderr.write(m + '\n'))
    header, lines = table(rows)
    widths = [max(len(x) for x in col) for col in zip(header, *lines)]
    for line in [header, ['-' * w for w in widths]] + lines:
        print('  '.join(x.ljust(w) for x, w in zip(line, widths)))
    print()
    for label, measured, verdict in targets(rows):
        print('%-4s  %s: %s' % (verdict, label, measured))
    if args.json:
        with open(args.json, 'w') as stream:
            json.dump(rows, stream, indent=1)
    return 0 if all(v in ('PASS', 'info', 'n/a') for _l, _m, v in targets(rows)) else 1


if __name__ == '__main__':
    sys.exit(main())
