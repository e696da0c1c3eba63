"""bench/run.py --smoke: the benchmark still runs end to end (role converge, re-run, teardown, the
ip -batch floor, a tiny command loop, 20 published ports beside their nft -f floor) and writes its
table and plot. Not a measurement: the real benchmark is `tests/sandbox.sh python3 bench/run.py`,
outside the test suite. Runs only inside tests/sandbox.sh; the benchmark nests its own namespace,
so nothing it makes reaches this sandbox.
"""
import json
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
IN_SANDBOX = os.environ.get('LINUXNET_SANDBOX') == '1'

pytestmark = pytest.mark.skipif(not IN_SANDBOX, reason='integration tests run only inside tests/sandbox.sh')


def _mtime(path):
    return os.stat(path).st_mtime if os.path.exists(path) else None


def test_bench_smoke(tmp_path):
    docs = [os.path.join(REPO, 'docs', name) for name in ('benchmark.md', 'benchmark.png')]
    before = [_mtime(path) for path in docs]
    netns_before = sorted(os.listdir('/run/netns'))
    results = tmp_path / 'results.json'
    out = subprocess.run([sys.executable, os.path.join(REPO, 'bench', 'run.py'), '--smoke',
                          '--out', str(tmp_path), '--json', str(results)],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, timeout=300, check=False)
    assert out.returncode == 0, out.stdout[-5000:]

    data = json.loads(results.read_text())
    rows = dict(((r['method'], r['step'], r['n']), r) for r in data['rows'])
    converge, rerun, teardown = (rows[('role', step, 5)] for step in ('converge', 're-run', 'teardown'))
    assert converge['changed'] > 0 and rerun['changed'] == 0
    # a teardown skips the read of the host as one task (facts.yml is included)
    assert converge['tasks'] == rerun['tasks'] > teardown['tasks'] > 0
    assert converge['module'] > 0 and converge['wall'] >= converge['module']
    assert rows[('ip -batch', 'converge', 5)]['wall'] > 0
    assert rows[('command loop', 'converge', 1)]['module_runs'] == 9 + 5
    # the comparison with community.general.ip_netns (bench/requirements.txt brings it) runs for real
    assert rows[('community.general.ip_netns loop', 'converge (netns only)', 2)]['module_runs'] == 2
    assert ('re-run: changed=0 (every N, and the fleet)', 'changed=0 over 1 re-runs', 'PASS') in \
        [tuple(t) for t in data['targets']]
    # published ports (issue 14), 20 in one task of each module: one nf_tables transaction for the
    # converge and for the teardown, none for the re-run; the floor loads the same rules
    floor = rows[('nft -f', 'converge', 20)]
    assert floor['wall'] > 0 and floor['generations'] == 1 and floor['rules'] >= 20
    for module in ('port_publish', 'network'):
        steps = [rows[('publish: ' + module, step, 20)] for step in ('converge', 're-run', 'teardown')]
        assert [step['generations'] for step in steps] == [1, 0, 1], module
        assert [step['changed'] for step in steps] == [1, 0, 1], module
        assert [step['module_runs'] for step in steps] == [1, 1, 1], module
        assert steps[0]['rules'] == floor['rules'] and steps[0]['module'] > 0
    # p2p at scale (issue 16), 20 namespaces in one network task under a hard limit on open files:
    # converge, identical re-run, teardown, each with the module's peak RSS; the floor beside them
    scale = [rows[('network: p2p (nofile 4096)', step, 20)] for step in ('converge', 're-run', 'teardown')]
    assert [step['changed'] for step in scale] == [1, 0, 1]
    assert all(step['rss'] > 0 and step['module'] > 0 and step['ping'] > 0 for step in scale)
    # and both floors: the project's (batches from a process setns()ed into each namespace) and the
    # issue's (each batch started through nsenter), each built and torn down
    for floor in ('ip -batch p2p', 'ip -batch p2p via nsenter'):
        assert rows[(floor, 'converge', 20)]['wall'] > 0 and rows[(floor, 'teardown', 20)]['wall'] > 0
        assert rows[(floor, 'converge', 20)]['module_runs'] == 20 + 2
    verdicts = dict((t[0], t[2]) for t in data['targets'])
    assert verdicts['published ports: one nf_tables transaction per converge and teardown, none on re-run (every N)'] \
        == 'PASS'
    assert verdicts['published ports re-run: changed=0 (every N, both modules)'] == 'PASS'

    assert (tmp_path / 'benchmark.png').stat().st_size > 10000
    md = (tmp_path / 'benchmark.md').read_text()
    assert '| role | converge | 5 |' in md and '## Targets' in md
    assert '| publish: port_publish | converge | 20 |' in md and '| nft -f | converge | 20 |' in md
    assert 'role' in out.stdout and 'ip -batch' in out.stdout  # the printed table
    assert [_mtime(path) for path in docs] == before  # docs/ holds the full run only
    assert sorted(os.listdir('/run/netns')) == netns_before
