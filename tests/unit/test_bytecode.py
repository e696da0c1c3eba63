"""_bytecode: a module run imports the engine from Ansible's payload zip with code compiled once and
kept on the host. Each case runs a fresh interpreter on a zip laid out as AnsiballZ lays it out
(the packages' __init__.py, _bytecode.py itself, a module of ours), with the cache in a temporary
directory (LINUXNET_NETNS_PYCACHE)."""
import marshal
import os
import subprocess
import sys
import zipfile
from importlib.util import MAGIC_NUMBER

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
PACKAGE = 'ansible_collections.linuxnet.netns.plugins.module_utils'
BASE = PACKAGE.replace('.', '/')
with open(os.path.join(HERE, '..', '..', 'plugins', 'module_utils', '_bytecode.py')) as _handle:
    BYTECODE = _handle.read()

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason='the cache is root\'s alone')

DEMO = '''
VALUE = %r


def boom():
    raise RuntimeError('from the demo module')
'''

# what a module stub does: _bytecode first, then the engine
RUN = '''
import builtins, sys, traceback
sys.path.insert(0, sys.argv[1])
from ansible_collections.linuxnet.netns.plugins.module_utils import _bytecode
compiled = []
real_compile = builtins.compile
def counting_compile(source, filename, *args, **kwargs):
    compiled.append(filename)
    return real_compile(source, filename, *args, **kwargs)
builtins.compile = counting_compile  # zipimport's compiles too
from ansible_collections.linuxnet.netns.plugins.module_utils import _demo
builtins.compile = real_compile
print('compiled', len([name for name in compiled if name.endswith('_demo.py')]))
print('installed', any(isinstance(f, _bytecode.Finder) for f in sys.meta_path))
print('loader', type(_demo.__loader__).__name__)
print('value', _demo.VALUE)
try:
    _demo.boom()
except RuntimeError:
    print('trace', traceback.format_exc().strip().splitlines()[-2].strip())
'''


def payload(tmp_path, value='one', name='payload.zip', demo=None):
    """The zip; `demo`: (file name, content) of the demo module, its source with `value` by default."""
    path = str(tmp_path / name)
    with zipfile.ZipFile(path, 'w') as archive:
        parts = BASE.split('/')
        for depth in range(1, len(parts) + 1):
            archive.writestr('/'.join(parts[:depth]) + '/__init__.py', '')
        archive.writestr(BASE + '/_bytecode.py', BYTECODE)
        archive.writestr(*(demo or (BASE + '/_demo.py', DEMO % value)))
    return path


def run(zip_path, cache):
    env = dict(os.environ, LINUXNET_NETNS_PYCACHE=str(cache))
    env.pop('PYTHONDONTWRITEBYTECODE', None)
    out = subprocess.run([sys.executable, '-c', RUN, zip_path], env=env, check=True,
                         stdout=subprocess.PIPE, universal_newlines=True).stdout
    return dict(line.split(' ', 1) for line in out.splitlines())


def entries(cache):
    return sorted(os.listdir(str(cache))) if os.path.isdir(str(cache)) else []


@pytest.fixture
def cache(tmp_path):
    return tmp_path / 'cache'


def test_the_first_run_compiles_and_keeps_each_module_the_next_runs_the_kept_code(tmp_path, cache):
    zip_path = payload(tmp_path)
    first = run(zip_path, cache)
    assert first['installed'] == 'True' and first['loader'] == 'Loader' and first['value'] == 'one'
    # once: zipimport alone compiles a module twice (to learn its file name, then to run it)
    assert first['compiled'] == '1'
    assert run(zip_path, cache)['compiled'] == '0'
    kept = entries(cache)
    assert [name.split('.')[0] for name in kept] == ['_demo']  # _bytecode itself came before the finder
    assert oct(os.stat(str(cache)).st_mode & 0o777) == '0o700'
    # the kept file is what the next run executes: replace its code, and the run says so
    path = os.path.join(str(cache), kept[0])
    other = compile(DEMO % 'from the cache', BASE + '/_demo.py', 'exec')
    with open(path, 'wb') as handle:
        handle.write(MAGIC_NUMBER + marshal.dumps(other))
    assert run(zip_path, cache)['value'] == 'from the cache'


def test_a_changed_source_is_compiled_again_and_its_old_file_goes(tmp_path, cache):
    run(payload(tmp_path, 'one'), cache)
    before = entries(cache)
    assert run(payload(tmp_path, 'two', name='payload2.zip'), cache)['value'] == 'two'
    after = entries(cache)
    assert len(after) == 1 and after != before


@pytest.mark.parametrize('content', [b'', b'not code at all', MAGIC_NUMBER + b'\x00garbage',
                                     b'\x00\x00\x00\x00' + marshal.dumps(compile('VALUE = 1', 'x', 'exec')),
                                     MAGIC_NUMBER + marshal.dumps('a string, not code')])
def test_a_file_that_does_not_read_back_as_code_is_compiled_again(tmp_path, cache, content):
    zip_path = payload(tmp_path)
    run(zip_path, cache)
    path = os.path.join(str(cache), entries(cache)[0])
    with open(path, 'wb') as handle:
        handle.write(content)
    assert run(zip_path, cache)['value'] == 'one'
    with open(path, 'rb') as handle:
        assert handle.read().startswith(MAGIC_NUMBER)  # written again


def test_tracebacks_show_the_source_line(tmp_path, cache):
    zip_path = payload(tmp_path)
    run(zip_path, cache)
    second = run(zip_path, cache)  # from the kept code
    assert second['trace'] == "raise RuntimeError('from the demo module')"


@pytest.mark.parametrize('mode', [0o770, 0o722, 0o757])
def test_a_directory_others_may_write_is_not_used(tmp_path, cache, mode):
    os.mkdir(str(cache))
    os.chmod(str(cache), mode)
    result = run(payload(tmp_path), cache)
    assert result['installed'] == 'False' and result['value'] == 'one'
    assert entries(cache) == []


def test_a_directory_of_another_owner_is_not_used(tmp_path, cache):
    os.mkdir(str(cache), 0o700)
    os.chown(str(cache), 65534, -1)
    result = run(payload(tmp_path), cache)
    assert result['installed'] == 'False' and result['loader'] == 'zipimporter'
    assert entries(cache) == []


def test_a_symbolic_link_is_not_used(tmp_path, cache):
    real = tmp_path / 'real'
    os.mkdir(str(real), 0o700)
    os.symlink(str(real), str(cache))
    assert run(payload(tmp_path), cache)['installed'] == 'False'
    assert entries(real) == []


def test_switched_off_python_imports_as_always(tmp_path):
    result = run(payload(tmp_path), '0')
    assert result['installed'] == 'False' and result['loader'] == 'zipimporter'


def test_outside_a_payload_zip_python_imports_as_always(tmp_path, cache):
    """On the controller and in tests the engine is files, which Python caches itself."""
    tree = tmp_path / 'tree'
    with zipfile.ZipFile(payload(tmp_path)) as archive:
        archive.extractall(str(tree))
    result = run(str(tree), cache)
    assert result['installed'] == 'False' and result['loader'] == 'SourceFileLoader'
    assert entries(cache) == []


def test_a_module_shipped_compiled_is_imported_as_zipimport_would(tmp_path, cache):
    """A zip holding a module's compiled code and no source (not what Ansible ships): nothing to key
    the cache by, so the code is taken as it is and nothing is kept."""
    code = compile(DEMO % 'compiled', BASE + '/_demo.py', 'exec')
    # a .pyc as Python 3.7+ writes it: magic, flags (0: checked by timestamp), mtime, source size
    pyc = MAGIC_NUMBER + b'\x00\x00\x00\x00' + b'\x00\x00\x00\x00' + b'\x00\x00\x00\x00' + marshal.dumps(code)
    result = run(payload(tmp_path, name='compiled.zip', demo=(BASE + '/_demo.pyc', pyc)), cache)
    assert result['installed'] == 'True' and result['value'] == 'compiled'
    assert entries(cache) == []
