"""The collection as the Ansible ecosystem sees it: ansible-test sanity (no ignore file) and units,
ansible-lint's production profile, ruff, the changelog, the documentation ansible-doc lists, the
execution environment, and the built tarball installed and run.

Each check is one test. tests/setup.sh installs every tool they run: under tests/run a missing tool
fails its test; outside the sandbox it is skipped. The role README check runs in tests/unit/test_role_readme.py and the
diagram filter's unit tests in tests/unit/test_topology.py.
"""
import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
IN_SANDBOX = os.environ.get('LINUXNET_SANDBOX') == '1'
BIN = os.path.dirname(sys.executable)


def tool(name):
    """The tool next to this Python (pip's entry points) or on PATH. tests/setup.sh installs every
    one of them: under tests/run a missing tool fails the test (a skip would hide a whole check)."""
    for candidate in (os.path.join(BIN, name), shutil.which(name)):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    message = '%s is not installed: run tests/setup.sh (it installs tests/requirements-lint.txt)' % name
    if IN_SANDBOX:
        pytest.fail(message)
    pytest.skip(message)


def run(argv, cwd=REPO, env=None, timeout=1800):
    out = subprocess.run(argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
                         env=dict(os.environ, **(env or {})), timeout=timeout, check=False)
    assert out.returncode == 0, '%s exited %d:\n%s' % (' '.join(argv), out.returncode, out.stdout[-20000:])
    return out.stdout


def git_files(*extra):
    if not shutil.which('git') or subprocess.call(['git', '-C', REPO, 'rev-parse'], stdout=subprocess.DEVNULL,
                                                  stderr=subprocess.DEVNULL):
        return None
    return set(subprocess.check_output(['git', '-C', REPO, 'ls-files', '--cached'] + list(extra),
                                       universal_newlines=True).splitlines())


@pytest.fixture
def collections_path(tmp_path):
    """A collections path whose ansible_collections/linuxnet/netns is this checkout."""
    (tmp_path / 'ansible_collections' / 'linuxnet').mkdir(parents=True)
    os.symlink(REPO, str(tmp_path / 'ansible_collections' / 'linuxnet' / 'netns'))
    return tmp_path


# ansible-test

def test_ansible_test_sanity_with_no_ignore_file():
    tool('ansible-test')
    assert not glob.glob(os.path.join(REPO, 'tests', 'sanity', 'ignore-*.txt')), 'no ignore files'
    version = subprocess.check_output([tool('ansible-test'), '--version'], universal_newlines=True).split()[-1]
    home = os.environ.get('LINUXNET_ANSIBLE_TEST_HOME') or os.path.join(
        os.environ.get('XDG_CACHE_HOME') or os.path.expanduser('~/.cache'), 'linuxnet-netns', 'ansible-test-home')
    primed = os.path.join(home, 'primed-ansible-test-%s-python%d.%d' % ((version,) + sys.version_info[:2]))
    if IN_SANDBOX and not os.path.exists(primed):
        pytest.fail("ansible-test's sanity environments are not made yet, and making them needs the package "
                    'index, which the sandbox cannot reach: run tests/setup.sh first (./quickstart does)')
    out = run([os.path.join(REPO, 'tests', 'tools', 'sanity.sh'), 'sanity'], env={'LINUXNET_PYTHON': sys.executable})
    assert 'Running sanity test "validate-modules"' in out and 'Running sanity test "pylint"' in out
    # every sanity test ran: a missing program (shellcheck, pwsh for pslint) is only a warning there
    missing = re.findall(r'Required program "([^"]+)" not found', out)
    assert not [m for m in missing if m != 'pwsh'], 'install %s' % missing


def test_ansible_test_units():
    tool('ansible-test')
    out = run([os.path.join(REPO, 'tests', 'tools', 'sanity.sh'), 'units'], env={'LINUXNET_PYTHON': sys.executable})
    passed = re.search(r'(\d+) passed', out)
    assert passed and int(passed.group(1)) >= len(glob.glob(os.path.join(REPO, 'tests', 'unit', 'test_*.py'))), out


# linters

def test_ansible_lint_production_profile(collections_path, tmp_path):
    ansible_lint = tool('ansible-lint')
    with open(os.path.join(REPO, '.ansible-lint')) as handle:
        config = handle.read()
    assert re.search(r'^profile: production$', config, re.M)
    # offline (the config says so), with this checkout as the collection linuxnet.netns
    out = run([ansible_lint, '--nocolor'], env={'ANSIBLE_COLLECTIONS_PATH': str(collections_path),
                                                'ANSIBLE_HOME': str(tmp_path / 'ansible-home'),
                                                'NO_COLOR': '1'})
    assert "Profile 'production' was required, and it passed" in out, out


def test_ruff():
    run([tool('ruff'), 'check', '--no-cache', '.'])


# changelog

def test_changelog_lint_and_changelog_md_is_current(tmp_path):
    antsibull = tool('antsibull-changelog')
    run([antsibull, 'lint'])
    # generate into a copy, so that the check never changes the checkout
    copy = tmp_path / 'copy'
    copy.mkdir()
    for name in ('galaxy.yml', 'CHANGELOG.md', 'changelogs'):
        source = os.path.join(REPO, name)
        (shutil.copytree if os.path.isdir(source) else shutil.copy)(source, str(copy / name))
    run([antsibull, 'generate'], cwd=str(copy))
    for name in ('CHANGELOG.md', 'changelogs/changelog.yaml'):
        with open(os.path.join(REPO, name)) as ours:
            assert ours.read() == (copy / name).read_text(), \
                '%s is not what antsibull-changelog generate makes of changelogs/: run it' % name


# documentation

def test_ansible_doc_lists_every_module_and_filter(collections_path):
    ansible_doc = tool('ansible-doc')
    env = {'ANSIBLE_COLLECTIONS_PATH': str(collections_path)}
    modules = json.loads(run([ansible_doc, '-l', '-j', 'linuxnet.netns'], env=env))
    expected = sorted('linuxnet.netns.' + os.path.basename(p)[:-3]
                      for p in glob.glob(os.path.join(REPO, 'plugins', 'modules', '*.py')))
    assert sorted(modules) == expected
    assert all(summary and '\n' not in summary for summary in modules.values()), modules
    filters = json.loads(run([ansible_doc, '-t', 'filter', '-l', '-j', 'linuxnet.netns'], env=env))
    assert 'linuxnet.netns.topology_dot' in filters and all(filters.values()), filters
    doc = json.loads(run([ansible_doc, '-j', 'linuxnet.netns.veth'], env=env))['linuxnet.netns.veth']['doc']
    assert set(doc['attributes']) >= {'check_mode', 'diff_mode', 'idempotent'}
    pair = set(doc['options']['pairs']['suboptions'])
    assert {'name', 'netns', 'addresses', 'peer', 'state'} <= pair <= set(doc['options'])


# build, install, run

def build(tmp_path):
    galaxy = tool('ansible-galaxy')
    out_dir = tmp_path / 'dist'
    run([galaxy, 'collection', 'build', '--output-path', str(out_dir)])
    tarball, = glob.glob(str(out_dir / 'linuxnet-netns-*.tar.gz'))
    return galaxy, tarball


def test_built_tarball_has_only_sources(tmp_path):
    _galaxy, tarball = build(tmp_path)
    with tarfile.open(tarball) as tar:
        names = [m.name for m in tar.getmembers() if m.isfile()]
    assert {'MANIFEST.json', 'FILES.json', 'README.md', 'CHANGELOG.md', 'meta/runtime.yml',
            'meta/execution-environment.yml', 'requirements.txt', 'bindep.txt',
            'playbooks/site.yml', 'playbooks/diagram.yml'} <= set(names)
    leftovers = [n for n in names if re.search(
        r'(^|/)(__pycache__|\.pytest_cache|\.ruff_cache|\.benchmarks|\.ansible|\.cache|\.git|output|out|diagrams)/'
        r'|\.pyc$|\.tar\.gz$|^\.ci/|^changelogs/\.plugin-cache\.yaml$', n)]
    assert not leftovers
    known = git_files('--others', '--exclude-standard')
    if known is not None:
        # everything in the tarball is a file git knows (tracked, or new and not ignored)
        assert not sorted(set(names) - known - {'MANIFEST.json', 'FILES.json'})


HOST_INIT = r'''
set -e
mount -t tmpfs -o mode=0755 eco-netns /run/netns
mount -t tmpfs -o mode=0755 eco-sysctl /etc/sysctl.d
ip link set lo up
echo ready
exec sleep infinity
'''


@pytest.fixture
def managed_host():
    """A process in fresh network and mount namespaces (private /run/netns and /etc/sysctl.d) with an
    uplink up0 192.0.2.5/24 whose far end sits in a second, bare namespace: the managed host that
    playbooks run against with a local connection, through nsenter. Runs only in the sandbox."""
    if not IN_SANDBOX:
        pytest.skip('runs playbooks against the kernel: only inside tests/sandbox.sh')
    procs = []
    for argv in (['unshare', '--net', '--mount', '--propagation', 'private', 'sh', '-c', HOST_INIT],
                 ['unshare', '--net', 'sh', '-c', 'echo ready; exec sleep infinity']):
        procs.append(subprocess.Popen(argv, stdout=subprocess.PIPE, universal_newlines=True))
        assert procs[-1].stdout.readline().strip() == 'ready'
    host, far = procs
    for argv in (['nsenter', '-t', str(host.pid), '--net', 'sh', '-c',
                  'ip link add up0 type veth peer name up0p && ip link set up0p netns %d && '
                  'ip addr add 192.0.2.5/24 dev up0 && ip link set up0 up && ip route add default via 192.0.2.1'
                  % far.pid],
                 ['nsenter', '-t', str(far.pid), '--net', 'sh', '-c',
                  'ip addr add 192.0.2.1/24 dev up0p && ip link set up0p up']):
        subprocess.check_call(argv)
    yield host.pid
    for proc in procs:
        proc.send_signal(signal.SIGKILL)
        proc.wait()


def test_installed_tarball_runs_site_diagram_and_teardown(tmp_path, managed_host):
    galaxy, tarball = build(tmp_path)
    installed = tmp_path / 'collections'
    run([galaxy, 'collection', 'install', '--offline', '-p', str(installed), tarball])
    assert os.path.isfile(str(installed / 'ansible_collections' / 'linuxnet' / 'netns' / 'MANIFEST.json'))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(installed), ANSIBLE_NOCOLOR='1', ANSIBLE_FORCE_COLOR='0',
               ANSIBLE_LOCAL_TEMP=str(tmp_path / 'ansible-tmp'), ANSIBLE_RETRY_FILES_ENABLED='0',
               ANSIBLE_HOME=str(tmp_path / 'ansible-home'))
    diagrams = tmp_path / 'diagrams'

    def playbook(name, *extra):
        # by FQCN: the playbooks come from the installed tarball, not from this checkout
        argv = ['nsenter', '-t', str(managed_host), '--net', '--mount',
                os.path.join(BIN, 'ansible-playbook'), '-i', 'localhost,', '-c', 'local',
                '-e', 'ansible_python_interpreter=%s' % sys.executable, '-e', 'bridge_network_install_deps=false',
                'linuxnet.netns.' + name] + list(extra)
        out = subprocess.run(argv, cwd=str(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             universal_newlines=True, env=env, check=False)
        assert out.returncode == 0, out.stdout
        return out.stdout

    playbook('site')
    playbook('diagram', '-e', 'bridge_network_diagram_dir=%s' % diagrams)
    dot = (diagrams / 'localhost.dot').read_text()
    assert 'subgraph "cluster_localhost|lnns1"' in dot and 'MASQUERADE' in dot and 'lnbr0 (bridge)' in dot
    assert (diagrams / 'fleet.dot').read_text().startswith('graph "linuxnet.netns"')
    if shutil.which('dot'):
        for name in ('localhost.svg', 'localhost.png', 'fleet.svg', 'fleet.png'):
            assert (diagrams / name).stat().st_size > 0, name
    again = playbook('diagram', '-e', 'bridge_network_diagram_dir=%s' % diagrams)
    assert re.search(r'localhost\s+:\s+ok=\d+\s+changed=0\s', again), again
    playbook('teardown')
    left = subprocess.check_output(['nsenter', '-t', str(managed_host), '--net', '--mount', 'ip', 'netns', 'list'],
                                   universal_newlines=True)
    assert left.strip() == ''


# execution environment

def test_execution_environment(tmp_path):
    builder = tool('ansible-builder')
    galaxy, tarball = build(tmp_path)
    installed = tmp_path / 'collections'
    run([galaxy, 'collection', 'install', '--offline', '-p', str(installed), tarball])
    # what ansible-builder takes from the installed collection into an image
    deps = run([builder, 'introspect', str(installed)])
    assert re.search(r"^- 'pyroute2>=0\.7\.2 +# from collection linuxnet\.netns'$", deps, re.M), deps
    for package in ('iproute2 [platform:dpkg]', 'nftables', 'python3-pyroute2 [platform:dpkg]'):
        assert package in deps, deps
    # the example definition is valid ansible-builder 3 and makes a build context (no image is built)
    context = tmp_path / 'context'
    run([builder, 'create', '-f', os.path.join(REPO, 'docs', 'execution-environment.yml'), '-c', str(context)])
    containerfile, = [p for p in (context / 'Containerfile', context / 'Dockerfile') if p.exists()]
    assert 'ansible-galaxy collection install' in containerfile.read_text()
    bindep = shutil.which('bindep') or os.path.join(BIN, 'bindep')
    if os.access(bindep, os.X_OK):
        # 0: all there, 1: some missing; anything else is a file bindep cannot read
        code = subprocess.call([bindep, '-b', '-f', os.path.join(REPO, 'bindep.txt')], stdout=subprocess.DEVNULL)
        assert code in (0, 1)
