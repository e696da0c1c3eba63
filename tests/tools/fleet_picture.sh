#!/usr/bin/env bash
# Redraw docs/fleet.svg and docs/fleet.png, the picture in README.md: a 3-host lab fleet
# (tests/lab/lab.py) built by playbooks/site.yml with host-gw routing, drawn by playbooks/diagram.yml.
# Networking happens only inside tests/sandbox.sh; needs root, and Graphviz's dot.
#   tests/tools/fleet_picture.sh [HOSTS]        (default 3)
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
hosts=${1:-3}
python=$("$repo/tests/setup.sh" --python)
PATH="$(dirname "$python"):$PATH"
ANSIBLE_COLLECTIONS_PATH=$("$repo/tests/lab/collections.sh")
export PATH ANSIBLE_COLLECTIONS_PATH
work=$(mktemp -d "${TMPDIR:-/tmp}/linuxnet-fleet-picture.XXXXXX")
trap 'rm -rf "$work"' EXIT
# shellcheck disable=SC2016  # expanded by the inner shell, in the sandbox
"$repo/tests/sandbox.sh" "$python" "$repo/tests/lab/lab.py" run --hosts "$hosts" --dir "$work/lab" -- sh -c '
  set -e
  ansible-playbook -i "$LAB_INVENTORY" "$0/playbooks/site.yml" -e bridge_network_host_gw=true >"$1/site.log"
  ansible-playbook -i "$LAB_INVENTORY" "$0/playbooks/diagram.yml" -e bridge_network_diagram_dir="$1/diagrams" \
    >"$1/diagram.log"' "$repo" "$work" || { cat "$work"/*.log >&2 2>/dev/null; exit 1; }
cp "$work/diagrams/fleet.svg" "$work/diagrams/fleet.png" "$repo/docs/"
echo "docs/fleet.svg, docs/fleet.png: $(head -c 300 "$work/diagrams/fleet.dot" | sed -n 's/.*label="\([^"]*\)".*/\1/p' | head -1)"
