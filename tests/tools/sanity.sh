#!/usr/bin/env bash
# Run ansible-test on a copy of this checkout laid out as ansible-test wants it
# (.../ansible_collections/linuxnet/netns), with no ignore file.
#   tests/tools/sanity.sh [sanity|units] [ANSIBLE-TEST ARGS...]      (default: sanity)
#
# ansible-test runs each sanity test in a virtual environment of its own (even with --local), so
# their pinned linters (pylint, pycodestyle, yamllint, voluptuous ...) never meet the newer ones
# tests/requirements-lint.txt installs for ansible-lint and ruff. ansible-test bootstraps pip into
# those environments with a get-pip.py that only ansible's CI file host serves; where it is not
# cached we put tests/tools/get_pip.py, a stand-in that takes pip from Python's ensurepip and the
# pinned packages from the package index. All of ansible-test's state (that script, the cached
# environments) lives in its own HOME, $LINUXNET_ANSIBLE_TEST_HOME, never in the user's.
#
#   tests/tools/sanity.sh sanity --prime-venvs     # make the environments (needs the package index)
#   tests/tools/sanity.sh                          # every sanity test
#   tests/tools/sanity.sh sanity --test pylint     # one
#   tests/tools/sanity.sh units                    # tests/unit under ansible-test
#   tests/tools/sanity.sh --primed                 # exit 0 when the environments are made
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
command=sanity
case "${1:-}" in sanity|units|--primed) command=$1; shift ;; esac
# the controller Python (tests/setup.sh --python) and the ansible-test installed with it
python=${LINUXNET_PYTHON:-$(command -v python3)}
python_version=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
ansible_test=$(dirname "$python")/ansible-test
if [ ! -x "$ansible_test" ]; then
  ansible_test=$(command -v ansible-test) || { echo "ansible-test not found (tests/setup.sh installs it)" >&2; exit 2; }
fi

state=${LINUXNET_ANSIBLE_TEST_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/linuxnet-netns/ansible-test-home}
version=$("$ansible_test" --version | awk '{print $NF}')
primed="$state/primed-ansible-test-$version-python$python_version"
if [ "$command" = --primed ]; then [ -e "$primed" ]; exit; fi
mkdir -p "$state"
pip_version=$("$python" -c '
import types
from ansible_test._internal.python_requirements import get_venv_packages
print(get_venv_packages(types.SimpleNamespace(version="'"$python_version"'"))["pip"])')
get_pip="$state/.ansible/test/cache/get_pip_${pip_version//./_}.py"
if [ ! -s "$get_pip" ]; then
  mkdir -p "$(dirname "$get_pip")"
  cp "$here/tests/tools/get_pip.py" "$get_pip"
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/linuxnet-ansible-test.XXXXXX")
trap 'rm -rf "$work"' EXIT
dest="$work/ansible_collections/linuxnet/netns"
mkdir -p "$dest"
# The files git tracks (add new ones first), as they are in the work tree (not symlinked:
# ansible-test resolves the collection root from its real path).
if git -C "$here" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  (cd "$here" && git ls-files -z --cached \
     | while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done \
     | tar --null -T - -cf -) | tar -xf - -C "$dest"
else
  (cd "$here" && tar --exclude=./tests/output --exclude=__pycache__ --exclude=.pytest_cache -cf - .) \
    | tar -xf - -C "$dest"
fi

cd "$dest"
# ansible-test passes on only a few variables (HOME, PATH ...): pip in its environments reads the
# machine's pip configuration and keeps its cache under this HOME.
export HOME="$state"
status=0
"$ansible_test" "$command" --local --python "$python_version" --color no "$@" || status=$?
# `sanity --prime-venvs` makes the environments (it needs the package index); tests run later in
# the offline sandbox find them and this stamp (tests/integration/test_ecosystem.py looks for it).
case " $* " in *" --prime-venvs "*) [ "$status" = 0 ] && touch "$primed" ;; esac
exit "$status"
