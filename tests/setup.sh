#!/usr/bin/env bash
# Install what the test suite, the lab fleet, the benchmark and ./quickstart need on a Debian or
# Ubuntu machine, as root. Idempotent and quiet: installs only what is missing, prints one line, and
# shows the tools' output only when they fail. Used by ./quickstart and .ci/run. Everything that needs
# the package index happens here, so that tests/run (in the offline sandbox) needs no network:
#
#   1. Debian packages (apt-get): the kernel tools, sshd for the lab hosts, Debian's python3-pyroute2 ...
#   2. a virtualenv, LINUXNET_VENV (default ~/.cache/linuxnet-netns/venv), made with the python3 on
#      PATH, and into it the pip requirement files tests/requirements*.txt, tests/lab/requirements.txt
#      and bench/requirements.txt. Nothing is ever pip-installed into the python3 on PATH itself.
#   3. ansible-test's sanity environments (tests/tools/sanity.sh sanity --prime-venvs), cached under
#      ~/.cache/linuxnet-netns/ansible-test-home.
#
#   tests/setup.sh                 install what is missing
#   tests/setup.sh --python        print the controller Python the tests run with; install nothing
set -euo pipefail
cd "$(dirname "$0")/.."

cache=${XDG_CACHE_HOME:-$HOME/.cache}/linuxnet-netns
venv=${LINUXNET_VENV:-$cache/venv}
python=${LINUXNET_PYTHON:-$venv/bin/python3}

if [ "${1:-}" = --python ]; then echo "$python"; exit 0; fi
if [ "$(id -u)" != 0 ]; then echo "tests/setup.sh: run as root (it installs packages)" >&2; exit 1; fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
quiet() {  # run quietly; on failure show what it said
  if ! "$@" >"$log" 2>&1; then
    echo "tests/setup.sh: failed: $*" >&2
    cat "$log" >&2
    exit 1
  fi
}

# --- 1. Debian packages ---------------------------------------------------------------------------
packages=(iproute2 nftables iptables iputils-ping openssh-server openssh-client python3 python3-pyroute2
          python3-venv util-linux procps git
          shellcheck graphviz)  # ansible-test's shellcheck sanity test; dot for playbooks/diagram.yml
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  quiet apt-get update -qq
  quiet apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# --- 2. the controller's virtualenv and the pip requirements ---------------------------------------
requirements=(tests/requirements.txt tests/requirements-lint.txt tests/lab/requirements.txt bench/requirements.txt)
stamp=$venv/.linuxnet-requirements
wanted=$(cat "${requirements[@]}" | sha256sum | cut -d' ' -f1)
pip_installed=no
if [ -z "${LINUXNET_PYTHON:-}" ]; then
  if [ ! -x "$python" ]; then
    base=$(command -v python3) || { echo "tests/setup.sh: no python3 on PATH" >&2; exit 1; }
    mkdir -p "$(dirname "$venv")"
    quiet "$base" -m venv "$venv"
  fi
  if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
    args=()
    for file in "${requirements[@]}"; do args+=(-r "$file"); done
    quiet "$python" -m pip install --disable-pip-version-check --root-user-action=ignore -q "${args[@]}"
    echo "$wanted" >"$stamp"
    pip_installed=yes
  fi
fi

# --- 3. ansible-test's sanity environments ---------------------------------------------------------
# ansible-test runs each sanity test in a virtualenv it makes with pip: make them here, where the
# package index is reachable (tests/tools/sanity.sh leaves a stamp that test_ecosystem.py looks for)
if ! LINUXNET_PYTHON=$python tests/tools/sanity.sh --primed; then
  quiet env LINUXNET_PYTHON="$python" tests/tools/sanity.sh sanity --prime-venvs
fi

echo "setup: ${#missing[@]} Debian packages installed${missing[*]:+ (${missing[*]})};" \
     "pip requirements $([ $pip_installed = yes ] && echo installed || echo up to date) in $venv;" \
     "controller Python $python ($("$python" -c 'import ansible.release; print("ansible-core", ansible.release.__version__)'))"
