#!/usr/bin/env bash
# Install what the test suite, the lab fleet and ./quickstart need on a Debian or Ubuntu machine, as
# root. Idempotent and quiet: installs only what is missing, prints one line, and shows the tools'
# output only when they fail. Used by .ci/run and ./quickstart.
#
#   tests/setup.sh                 install (apt packages, then pip requirements)
#   tests/setup.sh --python        print the controller Python the tests run with; install nothing
#
# The controller Python is `python3` from PATH when pip may install into it (a pyenv or venv Python).
# A distribution's own Python is "externally managed" (PEP 668), and pip's pyroute2 there would
# shadow Debian's python3-pyroute2, which the lab hosts and half of the module tests run with
# (/usr/bin/python3): then the requirements go into a virtualenv of their own,
# LINUXNET_VENV (default ~/.cache/linuxnet-netns/venv), which tests/run picks up.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=${LINUXNET_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/linuxnet-netns/venv}

pip_may_install() {  # python3 on PATH is not a distribution's externally managed Python
  command -v python3 >/dev/null && python3 - <<'EOF'
import os, sys, sysconfig
managed = sys.prefix == sys.base_prefix and os.path.exists(os.path.join(sysconfig.get_path('stdlib'), 'EXTERNALLY-MANAGED'))
sys.exit(1 if managed else 0)
EOF
}

controller_python() {
  if [ -n "${LINUXNET_PYTHON:-}" ]; then echo "$LINUXNET_PYTHON"
  elif pip_may_install; then command -v python3
  else echo "$venv/bin/python3"
  fi
}

if [ "${1:-}" = --python ]; then controller_python; exit 0; fi
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

# --- Debian packages: the kernel tools, sshd for the lab hosts, Debian's pyroute2 -----------------
packages=(iproute2 nftables iptables iputils-ping openssh-server openssh-client python3 python3-pyroute2
          util-linux procps
          shellcheck graphviz)  # ansible-test's shellcheck sanity test; dot for playbooks/diagram.yml
python=$(controller_python)
if [ "$python" = "$venv/bin/python3" ]; then packages+=(python3-venv); fi
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  quiet apt-get update -qq
  quiet apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# --- Python packages on the controller: ansible-core, pytest, pip's pyroute2, molecule ------------
if [ "$python" = "$venv/bin/python3" ] && [ ! -x "$python" ]; then
  quiet python3 -m venv "$venv"
fi
requirements=()
for file in tests/requirements.txt tests/requirements-*.txt tests/lab/requirements.txt; do
  [ -f "$file" ] && requirements+=(-r "$file")
done
quiet "$python" -m pip install --disable-pip-version-check --root-user-action=ignore -q "${requirements[@]}"

echo "setup: ${#missing[@]} Debian packages installed${missing[*]:+ (${missing[*]})}; controller Python $python" \
     "($("$python" -c 'import ansible.release; print("ansible-core", ansible.release.__version__)'))"
