"""The molecule scenario (molecule/default): `molecule test` end to end on a lab fleet of 3 hosts x 3
namespaces - destroy, create, a check-mode run, converge, idempotence, verify (the connectivity
matrix, NAT seen from the internet, namespace source addresses kept between hosts), destroy.

Runs in a sandbox of its own, nested in the suite's (tests/sandbox.sh with LINUXNET_SANDBOX unset),
so that its lab can never meet another test's, and with its own MOLECULE_EPHEMERAL_DIRECTORY.
Molecule runs offline: its dependency step and prerun are off in molecule.yml, and the sandbox
has no route anywhere. Takes about 2-3 minutes.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ACTIONS = ('destroy', 'create', 'check', 'converge', 'idempotence', 'verify', 'destroy')
ANSI = re.compile(r'\x1b\[[0-9;]*[A-Za-z]|\x1b\]8;;[^\x1b]*\x1b\\')

pytestmark = pytest.mark.skipif(os.environ.get('LINUXNET_SANDBOX') != '1',
                                reason='molecule builds a lab fleet: run inside tests/sandbox.sh (LINUXNET_SANDBOX=1)')


def molecule_bin():
    """molecule next to this Python (pip's console script), else on PATH."""
    beside = os.path.join(os.path.dirname(sys.executable), 'molecule')
    return beside if os.path.exists(beside) else shutil.which('molecule')


def test_molecule_default_scenario(tmp_path):
    molecule = molecule_bin()
    if not molecule:
        pytest.skip('molecule is not installed: python3 -m pip install -r tests/lab/requirements.txt')
    # short: SSH's ControlPath sockets live in it (cp/), and a Unix socket path has at most 107 bytes
    ephemeral = tempfile.mkdtemp(prefix='mol-', dir='/tmp')
    env = dict(os.environ, MOLECULE_EPHEMERAL_DIRECTORY=ephemeral, NO_COLOR='1',
               ANSIBLE_NOCOLOR='1', ANSIBLE_FORCE_COLOR='0', PY_COLORS='0', COLUMNS='200')
    env.pop('LINUXNET_SANDBOX')  # a fresh sandbox inside this one
    started = time.monotonic()
    try:
        out = subprocess.run([os.path.join(REPO, 'tests', 'sandbox.sh'), molecule, 'test', '--scenario-name', 'default'],
                             cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             universal_newlines=True, timeout=1200, check=False)
    finally:
        shutil.rmtree(ephemeral, ignore_errors=True)
    elapsed = time.monotonic() - started
    log = ANSI.sub('', out.stdout)
    (tmp_path / 'molecule.log').write_text(log)
    assert out.returncode == 0, 'molecule test failed after %.0f s:\n%s' % (elapsed, log[-20000:])
    done = re.findall(r'^\s*default\s+\S+\s+(\w+): Executed: Successful', log, re.M)
    assert done[-len(ACTIONS):] == list(ACTIONS), 'steps run: %s\n%s' % (done, log[-20000:])
    # verify ran all of its checks (any miss fails it, and molecule with it)
    for task in ('Show the matrix', 'Every ping got an answer',
                 "Namespaces on other hosts see the namespace's own address"):
        assert 'TASK [%s' % task in log, task
    print('molecule test: %.0f s' % elapsed)
