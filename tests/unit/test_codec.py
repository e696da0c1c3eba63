"""The codec against pyroute2's own declarations, encoder and parser (the cases: codec_cases.py):
in-process with the pyroute2 the tests run with, and in a fresh interpreter once per pyroute2 (pip's,
and Debian's 0.7.2 where installed: the conftest's `python`), the run each_python.py shares with
test_pyroute2_import.py."""
import pytest

pytest.importorskip('pyroute2')

from ansible_collections.linuxnet.netns.tests.unit import codec_cases, each_python  # noqa: E402


@pytest.mark.parametrize('check', codec_cases.CHECKS, ids=lambda check: check.name)
def test_against_pyroute2(check):
    check()


def test_against_each_pyroute2(python, collections_dir):
    assert each_python.value(python, collections_dir, 'codec') == 'ok %d' % len(codec_cases.CHECKS)
