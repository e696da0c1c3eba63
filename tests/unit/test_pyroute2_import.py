"""The engine imports pyroute2's nf_tables and rtnetlink submodules without the package's
__init__ (IPRoute, NDB, IPDB: tens of milliseconds a module run), and leaves the process able to
import pyroute2 as usual afterwards. Each case runs in a fresh interpreter, once per pyroute2
(pip's, and Debian's 0.7.2 where installed)."""
import os
import subprocess
import sys

import pytest

SYSTEM_PYTHON = '/usr/bin/python3'
PYTHONS = [pytest.param(sys.executable, id='pyroute2-pip')]
if os.path.exists(SYSTEM_PYTHON) and subprocess.call([SYSTEM_PYTHON, '-c', 'import pyroute2'],
                                                     stderr=subprocess.DEVNULL) == 0:
    PYTHONS.append(pytest.param(SYSTEM_PYTHON, id='pyroute2-debian'))

ENGINE = ('from ansible_collections.linuxnet.netns.plugins.module_utils import _codec, _nft_apply, _nft_codec, '
          '_nft_plan, _nft_state, _transport\n')


def run(python, collections_dir, code):
    out = subprocess.run([python, '-c', code], env=dict(os.environ, PYTHONPATH=str(collections_dir)),
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, check=False)
    assert out.returncode == 0, out.stdout
    return out.stdout.strip()


@pytest.mark.parametrize('python', PYTHONS)
def test_the_package_init_does_not_run(python, collections_dir):
    code = ENGINE + ('import sys\n_codec.ifinfmsg\n'
                     'print(sorted(m for m in ("pyroute2.iproute", "pyroute2.ndb", "pyroute2.ipdb") if m in sys.modules),'
                     ' _codec.HAS_PYROUTE2, _nft_codec.nft_rule_msg.__name__)')
    assert run(python, collections_dir, code) == "[] True nft_rule_msg"


@pytest.mark.parametrize('python', PYTHONS)
def test_pyroute2_imports_whole_afterwards(python, collections_dir):
    code = ENGINE + ('_codec.ifinfmsg\nimport pyroute2.netlink.rtnl\nfrom pyroute2 import IPRoute\n'
                     'print(pyroute2.netlink.rtnl.ifinfmsg.ifinfmsg.__name__, IPRoute.__name__)')
    assert run(python, collections_dir, code) == 'ifinfmsg IPRoute'
