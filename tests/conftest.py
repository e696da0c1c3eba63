"""Shared fixtures. Integration tests run only inside tests/sandbox.sh (LINUXNET_SANDBOX=1)."""
import atexit
import functools
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import uuid

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IN_SANDBOX = os.environ.get('LINUXNET_SANDBOX') == '1'
SYSTEM_PYTHON = '/usr/bin/python3'  # Debian's python3 with python3-pyroute2 0.7.2
LAB_PY = os.path.join(REPO, 'tests', 'lab', 'lab.py')
SANDBOX_SH = os.path.join(REPO, 'tests', 'sandbox.sh')


def _make_collection_importable():
    """Let test modules import this checkout as Ansible does, as ansible_collections.linuxnet.netns.

    Under ansible-test the collection is importable already and this does nothing; elsewhere it puts
    on sys.path a temporary ansible_collections/linuxnet/netns -> this repo, removed at exit."""
    try:
        import ansible_collections.linuxnet.netns.plugins  # noqa: F401
    except ImportError:
        root = tempfile.mkdtemp(prefix='linuxnet-tests-')
        os.makedirs(os.path.join(root, 'ansible_collections', 'linuxnet'))
        os.symlink(REPO, os.path.join(root, 'ansible_collections', 'linuxnet', 'netns'))
        sys.path.insert(0, root)
        atexit.register(shutil.rmtree, root, True)  # removes the link, never follows it


_make_collection_importable()


@pytest.fixture(scope='session')
def collections_dir(tmp_path_factory):
    """A collections path holding linuxnet.netns (this checkout) and, for the module runner, a
    directory with just the `ansible` package, so that the system Python can import
    ansible.module_utils without picking up pip's pyroute2."""
    root = tmp_path_factory.mktemp('collections')
    ns_dir = root / 'ansible_collections' / 'linuxnet'
    ns_dir.mkdir(parents=True)
    os.symlink(REPO, str(ns_dir / 'netns'))
    import ansible
    ansible_only = root / 'ansible_only'
    ansible_only.mkdir()
    os.symlink(os.path.dirname(ansible.__file__), str(ansible_only / 'ansible'))
    return root


@functools.lru_cache(maxsize=None)  # asks /usr/bin/python3 once, not at every parametrize
def _pythons():
    found = [pytest.param(sys.executable, id='pyroute2-pip')]
    if os.path.exists(SYSTEM_PYTHON) and subprocess.call(
            [SYSTEM_PYTHON, '-c', 'import pyroute2'], stderr=subprocess.DEVNULL) == 0:
        found.append(pytest.param(SYSTEM_PYTHON, id='pyroute2-debian'))
    return tuple(found)


@pytest.fixture(params=_pythons())
def python(request):
    return request.param


def pythons_for(cases, reads_state):
    """Values for `parametrize('python, ARGS', ...)` of a table of refused inputs (each case a tuple
    of ARGS, or one value): every case with pip's pyroute2, and with Debian's too the cases for
    which reads_state(case) is true - refusals that come from reading the kernel's state (a
    namespace, interface or connected subnet that is or is not there). A refusal by argument
    validation comes before the module sends or reads any netlink message; its only pyroute2 is the
    import every module run makes, which the other tests of the module run on both versions. So the
    pyroute2 version cannot change it: it runs once. (test_bad_input.py draws the same line.)"""
    params = []
    for param in _pythons():
        python, pyid = param.values[0], param.id
        for index, case in enumerate(cases):
            if pyid == 'pyroute2-pip' or reads_state(case):
                values = case if isinstance(case, tuple) else (case,)
                params.append(pytest.param(python, *values, id='%s-%d' % (pyid, index)))
    return params


class Host(object):
    """A fresh network namespace standing in for a managed host; modules run inside it."""

    def __init__(self, collections, python, tmp_path):
        self.collections = collections
        self.python = python
        self.tmp = tmp_path
        self.prefix = 't' + uuid.uuid4().hex[:6]
        self.name = self.prefix + '-host'
        subprocess.check_call(['ip', 'netns', 'add', self.name])
        self.sh('ip link set lo up')
        self.calls = 0

    def ns(self, suffix):
        return '%s-%s' % (self.prefix, suffix)

    def sh(self, command, check=True):
        out = subprocess.run(['ip', 'netns', 'exec', self.name, 'sh', '-c', command],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, check=False)
        if check and out.returncode:
            raise AssertionError('%s failed (%d): %s' % (command, out.returncode, out.stdout))
        return out.stdout

    def module(self, name, args, check=False, diff=True):
        self.calls += 1
        payload = dict(args, _ansible_check_mode=check, _ansible_diff=diff)
        path = self.tmp / ('args%d.json' % self.calls)
        path.write_text(json.dumps({'ANSIBLE_MODULE_ARGS': payload}))
        env = dict(os.environ, PYTHONPATH='%s:%s' % (self.collections, self.collections / 'ansible_only'))
        out = subprocess.run(
            ['nsenter', '--net=/run/netns/' + self.name, self.python,
             os.path.join(REPO, 'plugins', 'modules', name + '.py'), str(path)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, env=env, check=False)
        try:
            return json.loads(out.stdout)
        except ValueError:
            raise AssertionError('module %s printed no JSON (rc %d): %s %s' % (name, out.returncode, out.stdout, out.stderr))

    def ok(self, name, args, **kw):
        result = self.module(name, args, **kw)
        assert not result.get('failed'), result.get('msg')
        return result

    def links(self, ns=None):
        """{name: `ip -j -d addr` entry} of the host's interfaces, or of namespace `ns`'s."""
        cmd = 'ip -j -d addr show' if ns is None else 'ip -n %s -j -d addr show' % ns
        return dict((link['ifname'], link) for link in json.loads(self.sh(cmd)))

    @staticmethod
    def addrs(link):
        """A links() entry's addresses in CIDR form, link-local ones left out."""
        return sorted('%s/%d' % (a['local'], a['prefixlen']) for a in link.get('addr_info', [])
                      if a.get('scope') != 'link')

    def netns_list(self):
        return sorted(n for n in os.listdir('/run/netns') if n.startswith(self.prefix) and n != self.name)

    def cleanup(self):
        for name in os.listdir('/run/netns'):
            if name.startswith(self.prefix):
                subprocess.call(['ip', 'netns', 'del', name], stderr=subprocess.DEVNULL)


@pytest.fixture
def host(collections_dir, python, tmp_path):
    if not IN_SANDBOX:
        pytest.skip('integration tests run only inside tests/sandbox.sh')
    h = Host(collections_dir, python, tmp_path)
    yield h
    h.cleanup()


class Lab(object):
    """A lab fleet (tests/lab/lab.py: hosts with their own sshd on an underlay, a router, an
    internet) for one test, with a collections path holding this checkout."""

    def __init__(self, tmp_path, hosts, bystander=False):
        self.state = tmp_path / 'lab'
        self.inventory = str(self.state / 'inventory.yml')
        self.env = None
        self.run([sys.executable, LAB_PY, 'up', '--hosts', str(hosts), '--dir', str(self.state)]
                 + (['--bystander'] if bystander else []))
        collections = self.run(['bash', os.path.join(REPO, 'tests', 'lab', 'collections.sh'),
                                str(tmp_path / 'coll')]).stdout.strip()
        self.env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collections, ANSIBLE_NOCOLOR='1')

    def run(self, argv, check=True):
        proc = subprocess.run(argv, capture_output=True, text=True, env=self.env, check=False, timeout=300)
        if check:
            assert proc.returncode == 0, '%s -> %d\n%s%s' % (' '.join(argv), proc.returncode, proc.stdout, proc.stderr)
        return proc

    def on(self, node, *argv, check=False):
        """Run argv on a lab node (lab.py exec)."""
        return self.run([sys.executable, LAB_PY, 'exec', '--dir', str(self.state), node, '--'] + list(argv),
                        check=check)

    def ansible(self, tool, *args):
        """ansible-playbook, ansible... (next to this Python) against the lab's inventory."""
        return self.run([os.path.join(os.path.dirname(sys.executable), tool), '-i', self.inventory] + list(args))

    def down(self):
        self.run([sys.executable, LAB_PY, 'down', '--dir', str(self.state)], check=False)


@pytest.fixture
def make_lab(tmp_path):
    """make_lab(hosts, bystander=False) -> Lab; every lab made is taken down after the test."""
    if not IN_SANDBOX:
        pytest.skip('the lab changes networking: run inside tests/sandbox.sh')
    made = []

    def make(hosts, bystander=False):
        made.append(Lab(tmp_path, hosts, bystander))
        return made[-1]
    yield make
    for lab in made:
        lab.down()


# ---- running on several workers (pytest-xdist: tests/run -n 2) -------------------------------------

def pytest_configure(config):
    """Every xdist worker started from inside the sandbox runs in a throwaway sandbox of its own,
    nested in the suite's (tests/sandbox.sh): its own network namespace (links, routes, nf_tables,
    ip_forward of its root), /run/netns, /etc/sysctl.d, pid and uts namespaces. The tests were written
    for one sandbox each - fixed names (lab-br0, ns1, the lab's 192.0.2.0/24), /run/netns compared in
    full (test_bad_input) - so two workers may never share one; this holds whatever the command line
    (`-n 2`, `--tx 3*popen`), not only under tests/run."""
    specs = getattr(config.option, 'tx', None)
    if not IN_SANDBOX or not specs or hasattr(config, 'workerinput'):
        return
    # execnet starts a popen worker as `<python> -u -c ...`, the python given as a shell word list
    python = 'env -u LINUXNET_SANDBOX %s %s' % (shlex.quote(SANDBOX_SH), shlex.quote(sys.executable))
    nested = []
    for spec in specs:
        count, star, rest = spec.partition('*')
        if not star:
            count, rest = '', spec
        parts = rest.split('//')
        if parts[0] != 'popen' or any(p.startswith(('python=', 'chdir=')) for p in parts[1:]):
            raise pytest.UsageError('tests: --tx %s: only local workers (popen) can run in a sandbox of their own; '
                                    'use -n N' % spec)
        nested.append('%s%spopen//python=%s' % (count, star, python) + ''.join('//' + p for p in parts[1:]))
    config.option.tx = nested


# Tests that go to one worker, one after the other (every other test goes on its own to whichever
# worker is free): (file, test name prefix) -> why.
ONE_WORKER = {
    ('test_bad_input.py', ''): 'the module fixture `outcomes` runs the whole table at once',
    ('test_lab.py', ''): 'one lab serves the module, in this order: the last tests take it down',
    ('test_ecosystem.py', 'test_ansible_test_'): "sanity and units share ansible-test's HOME (tests/tools/sanity.sh)",
}
# The long files first (on a worker, where the scheduler takes the order from): one picked up near
# the end would leave the other worker idle for its whole length.
LONG_FIRST = ('test_molecule.py', 'test_bad_input.py', 'test_ecosystem.py', 'test_crash.py',
              'test_fleet_teardown.py', 'test_role.py', 'test_bench_smoke.py', 'test_tutorial.py',
              'test_safe_router_lab.py', 'test_publish_lab.py', 'test_deletion.py', 'test_lab.py', 'test_concurrency.py')


def _together(nodeid):
    """The scheduling unit of a test: its ONE_WORKER entry, or the test itself."""
    path, _sep, name = nodeid.partition('::')
    for key in ONE_WORKER:
        if path.rsplit('/', 1)[-1] == key[0] and name.startswith(key[1]):
            return '%s::%s' % key
    return nodeid


@pytest.hookimpl(tryfirst=True, optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """`-n N` (xdist's --dist load): the tests one at a time, ONE_WORKER's entries whole. (Not xdist's
    loadgroup and xdist_group marks: with pytest 9, xdist 3.8 marks the group in item._nodeid, which
    pytest no longer reads, and the groups are silently split.)"""
    if config.getvalue('dist') != 'load':
        return None
    from xdist.scheduler import LoadScopeScheduling

    class Together(LoadScopeScheduling):
        def _split_scope(self, nodeid):
            return _together(nodeid)
    config.option.loadscopereorder = False  # LONG_FIRST's order, not the largest group first
    return Together(config, log)


def pytest_collection_modifyitems(config, items):
    """On xdist workers (each collects the same items, in the same order): the long files first."""
    if not hasattr(config, 'workerinput'):
        return
    rank = dict((name, i) for i, name in enumerate(LONG_FIRST))
    items.sort(key=lambda item: rank.get(os.path.basename(str(item.fspath)), len(rank)))


# ---- figures a test prints (timings, counts) -------------------------------------------------------

@pytest.fixture
def figures(request):
    """figures(text): a line for the reader, shown in the 'figures' section at the end of the run
    (an xdist worker's output is not shown, so not printed where the test runs)."""
    def show(text):
        request.node.user_properties.append(('figures', text.strip('\n')))
    return show


_FIGURES = {}


def pytest_runtest_logreport(report):
    if report.when == 'teardown':
        lines = [value for name, value in report.user_properties if name == 'figures']
        if lines:
            _FIGURES[report.nodeid] = lines


def pytest_terminal_summary(terminalreporter):
    if _FIGURES:
        terminalreporter.section('figures')
        for lines in _FIGURES.values():
            for line in lines:
                terminalreporter.write_line(line)


def pytest_report_header(config):
    return 'sandbox: %s; ip: %s' % (IN_SANDBOX, shutil.which('ip'))
