"""Role READMEs are generated from meta/argument_specs.yml and agree with defaults/main.yml."""
import glob
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ROLES = sorted(os.path.dirname(os.path.dirname(p))
               for p in glob.glob(os.path.join(REPO, 'roles', '*', 'meta', 'argument_specs.yml')))


@pytest.mark.parametrize('role', ROLES, ids=[os.path.basename(r) for r in ROLES])
def test_readme_is_current(role):
    tool = os.path.join(REPO, 'tests', 'tools', 'role_readme.py')
    out = subprocess.run([sys.executable, tool, '--check', role], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, universal_newlines=True, check=False)
    assert out.returncode == 0, out.stdout


def test_check_mode_notices_a_stale_readme(tmp_path):
    role = tmp_path / 'roles' / 'demo'
    (role / 'meta').mkdir(parents=True)
    (role / 'defaults').mkdir()
    (role / 'meta' / 'argument_specs.yml').write_text(
        'argument_specs:\n  main:\n    short_description: Demo\n    options:\n'
        '      demo_x:\n        description: An C(x).\n        type: int\n        default: 1\n')
    (role / 'defaults' / 'main.yml').write_text('demo_x: 1\n')
    tool = os.path.join(REPO, 'tests', 'tools', 'role_readme.py')
    assert subprocess.call([sys.executable, tool, '--check', str(role)], stderr=subprocess.DEVNULL) == 1
    assert subprocess.call([sys.executable, tool, str(role)], stdout=subprocess.DEVNULL) == 0
    assert '| `demo_x` | int | `1` |  | An `x`. |' in (role / 'README.md').read_text()
    assert subprocess.call([sys.executable, tool, '--check', str(role)]) == 0
    (role / 'defaults' / 'main.yml').write_text('demo_x: 2\n')
    assert subprocess.call([sys.executable, tool, '--check', str(role)], stderr=subprocess.DEVNULL) == 1
