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
#   4. a Debian 12 tree for the tests that boot systemd as PID 1 (systemd-nspawn, tests/integration/
#      boot.py), LINUXNET_BOOT_TREE (default ~/.cache/linuxnet-netns/bookworm), made by debootstrap
#      from the Debian mirror apt uses. About a minute, once: rebuilt only when its package list changes.
#
#   tests/setup.sh                 install what is missing
#   tests/setup.sh --python        print the controller Python the tests run with; install nothing
set -euo pipefail
cd "$(dirname "$0")/.."

cache=${XDG_CACHE_HOME:-$HOME/.cache}/linuxnet-netns
venv=${LINUXNET_VENV:-$cache/venv}
boot_tree=${LINUXNET_BOOT_TREE:-$cache/bookworm}  # tests/integration/boot.py finds it the same way
python=${LINUXNET_PYTHON:-$venv/bin/python3}

if [ "${1:-}" = --python ]; then echo "$python"; exit 0; fi
if [ "$(id -u)" != 0 ]; then echo "tests/setup.sh: run as root (it installs packages)" >&2; exit 1; fi

log=$(mktemp)
partial=  # a boot tree being made, removed if the set-up stops before it is complete
# shellcheck disable=SC2317  # run by the trap
cleanup() { rm -f "$log"; [ -z "$partial" ] || rm -rf --one-file-system "$partial"; }
trap cleanup EXIT
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
          shellcheck graphviz   # ansible-test's shellcheck sanity test; dot for playbooks/diagram.yml
          debootstrap debian-archive-keyring systemd-container  # the booted tree (4.) and its nspawn
          dnsmasq-base)         # a real DNS server for the resolver tests
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

# --- 4. the tree that the boot tests start systemd in -----------------------------------------------
# What systemd, the collection's modules (python3, Debian's pyroute2) and the tests need inside; the
# stamp names it, so a changed list makes a new tree. The tree is made next to its final place and
# renamed when debootstrap has finished, so a half-made tree is never taken for a cached one.
boot_suite=bookworm
boot_include=systemd,systemd-sysv,iproute2,python3,python3-pyroute2,nftables,dnsmasq-base,procps,iputils-ping
boot_wanted="debootstrap --variant=minbase --include=$boot_include $boot_suite"
boot_built=no
if [ "$(cat "$boot_tree/.linuxnet-tree" 2>/dev/null)" != "$boot_wanted" ]; then
  # the mirror apt is configured with for that suite (so it works wherever apt works), else Debian's
  # shellcheck disable=SC2016  # $(REPO_URI) is apt's field, not the shell's
  mirror=$(apt-get indextargets --format '$(REPO_URI)' 'Created-By: Packages' "Codename: $boot_suite" \
             'Component: main' 'Target-Of: deb' 2>/dev/null | head -1)
  mkdir -p "$(dirname "$boot_tree")"
  partial=$(mktemp -d "$boot_tree.new.XXXXXX")
  chmod 0755 "$partial"  # it becomes the container's /
  quiet debootstrap --variant=minbase --include="$boot_include" \
    --keyring=/usr/share/keyrings/debian-archive-keyring.gpg "$boot_suite" "$partial" "${mirror:-http://deb.debian.org/debian/}"
  echo "$boot_wanted" >"$partial/.linuxnet-tree"
  rm -rf --one-file-system "$boot_tree"
  mv "$partial" "$boot_tree"
  partial=
  boot_built=yes
fi

echo "setup: ${#missing[@]} Debian packages installed${missing[*]:+ (${missing[*]})};" \
     "pip requirements $([ $pip_installed = yes ] && echo installed || echo up to date) in $venv;" \
     "boot tree $([ $boot_built = yes ] && echo made || echo up to date) in $boot_tree;" \
     "controller Python $python ($("$python" -c 'import ansible.release; print("ansible-core", ansible.release.__version__)'))"
