#!/usr/bin/env bash
# The README's two commands as a new user runs them: a fresh clone of this checkout's committed HEAD
# (or REF) in a temporary folder, a fresh HOME (so a fresh virtualenv and ansible-test cache under
# ~/.cache, no collections under ~/.ansible), no user site-packages and none of our variables. What
# was installed by hand on this machine cannot make it pass. Prints the time of each command and the
# pytest summary, and checks that the pip packages of the python3 on PATH are the same afterwards.
# As root (tests/setup.sh installs Debian packages). .ci/run is this script.
#
#   tests/fresh-machine.sh [REF] [-- PYTEST ARGS]     (LINUXNET_FRESH_KEEP=1 keeps the folder)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
ref=HEAD
if [ $# -gt 0 ] && [ "$1" != -- ]; then ref=$1; shift; fi
[ "${1:-}" = -- ] && shift

work=$(mktemp -d "${TMPDIR:-/tmp}/linuxnet-fresh.XXXXXX")
# shellcheck disable=SC2317  # run by the trap
cleanup() {
  if [ "${LINUXNET_FRESH_KEEP:-}" = 1 ]; then echo "fresh-machine: kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
git clone -q --no-local "$repo" "$work/clone"
git -C "$work/clone" checkout -q --detach "$(git -C "$repo" rev-parse "$ref")"
mkdir -p "$work/home"

# a fresh HOME and nothing of ours or of a virtualenv from the caller's environment
for var in $(compgen -e); do
  case "$var" in LINUXNET_*|ANSIBLE_*|XDG_*|VIRTUAL_ENV|PYTHONPATH|PYTHONHOME|PYTHONUSERBASE) unset "$var" ;; esac
done
export HOME="$work/home" PYTHONNOUSERSITE=1
pip_list() { python3 -m pip list --disable-pip-version-check 2>/dev/null || echo "(python3 on PATH has no pip)"; }
before=$(pip_list)

cd "$work/clone"
echo "fresh-machine: $(git log -1 --format='%h %s') in $work/clone, HOME=$HOME"
timed() {  # timed LABEL CMD...: run it, remember how long it took
  local start=$SECONDS status=0
  "${@:2}" || status=$?
  times+=("$1: $((SECONDS - start)) s (exit $status)")
  return "$status"
}
times=()
status=0
log="$work/tests-run.log"
timed ./quickstart ./quickstart || status=$?
# shellcheck disable=SC2317  # run by timed
run_tests() { tests/run "$@" 2>&1 | tee "$log"; }
[ "$status" = 0 ] && { timed tests/run run_tests "$@" || status=$?; }

after=$(pip_list)
if [ "$before" != "$after" ]; then
  echo "fresh-machine: the pip packages of $(command -v python3) changed:"
  diff <(echo "$before") <(echo "$after") || true
  status=1
fi
echo
echo "fresh-machine: ${times[*]/%/;}"
echo "fresh-machine: python3 on PATH ($(command -v python3)): pip packages unchanged: $([ "$before" = "$after" ] && echo yes || echo NO)"
# pytest's summary last, as tests/run printed it
[ -f "$log" ] && grep -E '^(=+ )?[0-9]+ (passed|failed|error)' "$log" | tail -1
exit "$status"
