"""The engine imports pyroute2's nf_tables and rtnetlink submodules without the package's
__init__ (IPRoute, NDB, IPDB: tens of milliseconds a module run), and leaves the process able to
import pyroute2 as usual afterwards. Checked in a fresh interpreter, once per pyroute2 (pip's, and
Debian's 0.7.2 where installed: the conftest's `python`), the run each_python.py shares with
test_codec.py."""
from ansible_collections.linuxnet.netns.tests.unit import each_python


def test_the_package_init_does_not_run(python, collections_dir):
    assert each_python.value(python, collections_dir, 'engine') == [[], True, 'nft_rule_msg', []]


def test_pyroute2_imports_whole_afterwards(python, collections_dir):
    assert each_python.value(python, collections_dir, 'whole') == ['ifinfmsg', 'IPRoute', True]
