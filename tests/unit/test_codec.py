"""The codec against pyroute2's own declarations, encoder and parser (the cases: codec_cases.py):
in-process with the pyroute2 the tests run with, and in a fresh interpreter once per pyroute2 (pip's,
and Debian's 0.7.2 where installed)."""
import os
import subprocess

import pytest

pytest.importorskip('pyroute2')

from ansible_collections.linuxnet.netns.tests.unit import codec_cases  # noqa: E402
from ansible_collections.linuxnet.netns.tests.conftest import _pythons  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.mark.parametrize('check', codec_cases.CHECKS, ids=lambda check: check.name)
def test_against_pyroute2(check):
    check()


@pytest.mark.parametrize('python', _pythons())
def test_against_each_pyroute2(python, collections_dir):
    out = subprocess.run([python, os.path.join(HERE, 'codec_cases.py')], universal_newlines=True,
                         env=dict(os.environ, PYTHONPATH=str(collections_dir)), stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, check=False)
    assert out.stdout.strip() == 'ok %d' % len(codec_cases.CHECKS), out.stdout
