#!/usr/bin/env bash
# Run a command inside a throwaway sandbox: fresh network, mount, pid and uts namespaces, with private
# tmpfs on /run/netns and /etc/sysctl.d, and /etc, /usr/local/lib and /run/systemd each under an
# overlay whose upper layer is a private tmpfs (saved plans, systemd units and drop-ins, /etc/netns resolvers and
# the boot code are written there: the machine's own files never change). Everything made inside
# (namespaces, links, nft tables, files, processes) disappears when the command exits, however it exits.
#   tests/sandbox.sh CMD [ARGS...]
set -euo pipefail
if [ "${LINUXNET_SANDBOX:-}" = 1 ]; then exec "$@"; fi
mkdir -p /run/netns /etc/sysctl.d
exec unshare --net --mount --pid --uts --fork --kill-child --mount-proc --propagation private \
  env LINUXNET_SANDBOX=1 bash -c '
    set -e
    # the overlays upper layers live on a tmpfs that the real /run/netns tmpfs then hides
    mount -t tmpfs -o mode=0700 linuxnet-overlays /run/netns
    # /run/systemd too: systemd-analyze verify writes there (systemd-units-load), as a starting systemd does
    for dir in /etc /usr/local/lib /run/systemd; do
      [ -d "$dir" ] || continue
      layer=/run/netns/layers$dir
      mkdir -p "$layer/upper" "$layer/work"
      mount -t overlay -o "lowerdir=$dir,upperdir=$layer/upper,workdir=$layer/work" linuxnet-overlay "$dir"
    done
    mount -t tmpfs -o mode=0755 linuxnet-netns /run/netns
    mount -t tmpfs -o mode=0755 linuxnet-sysctl /etc/sysctl.d
    hostname linuxnet-sandbox
    ip link set lo up
    exec "$@"' sandbox "$@"
