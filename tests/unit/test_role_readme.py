"""Role READMEs are generated from meta/argument_specs.yml and agree with defaults/main.yml."""
import contextlib
import glob
import io
import os
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ROLES = sorted(os.path.dirname(os.path.dirname(p))
               for p in glob.glob(os.path.join(REPO, 'roles', '*', 'meta', 'argument_specs.yml')))
sys.path.insert(0, os.path.join(REPO, 'tests', 'tools'))

import role_readme  # noqa: E402


def tool(*args):
    """`role_readme.py ARGS` run in this process (no interpreter to start, no yaml to import again):
    its exit status, and what it printed on stdout and stderr together."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            status = role_readme.main(list(args))
        except SystemExit as exc:  # as the interpreter reports it
            status = exc.code
            if status is not None and not isinstance(status, int):
                print(status, file=sys.stderr)
                status = 1
    return status or 0, out.getvalue()


@pytest.mark.parametrize('role', ROLES, ids=[os.path.basename(r) for r in ROLES])
def test_readme_is_current(role):
    status, out = tool('--check', role)
    assert status == 0, out


def test_check_mode_notices_a_stale_readme(tmp_path):
    role = tmp_path / 'roles' / 'demo'
    (role / 'meta').mkdir(parents=True)
    (role / 'defaults').mkdir()
    (role / 'meta' / 'argument_specs.yml').write_text(
        'argument_specs:\n  main:\n    short_description: Demo\n    options:\n'
        '      demo_x:\n        description: An C(x).\n        type: int\n        default: 1\n')
    (role / 'defaults' / 'main.yml').write_text('demo_x: 1\n')
    assert tool('--check', str(role))[0] == 1
    assert tool(str(role))[0] == 0
    assert '| `demo_x` | int | `1` |  | An `x`. |' in (role / 'README.md').read_text()
    assert tool('--check', str(role))[0] == 0
    (role / 'defaults' / 'main.yml').write_text('demo_x: 2\n')
    assert tool('--check', str(role))[0] == 1
