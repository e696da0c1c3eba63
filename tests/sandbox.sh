#!/usr/bin/env bash
# Run a command inside a throwaway sandbox: fresh network, mount, pid and uts namespaces, with private
# tmpfs on /run/netns and /etc/sysctl.d. Everything made inside (namespaces, links, nft tables, sysctl
# files, processes) disappears when the command exits, however it exits.
#   tests/sandbox.sh CMD [ARGS...]
set -euo pipefail
if [ "${LINUXNET_SANDBOX:-}" = 1 ]; then exec "$@"; fi
mkdir -p /run/netns /etc/sysctl.d
exec unshare --net --mount --pid --uts --fork --kill-child --mount-proc --propagation private \
  env LINUXNET_SANDBOX=1 bash -c '
    set -e
    mount -t tmpfs -o mode=0755 linuxnet-netns /run/netns
    mount -t tmpfs -o mode=0755 linuxnet-sysctl /etc/sysctl.d
    hostname linuxnet-sandbox
    ip link set lo up
    exec "$@"' sandbox "$@"
