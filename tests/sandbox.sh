#!/usr/bin/env bash
# Run a command inside a throwaway sandbox: fresh network, mount, pid and uts namespaces, with private
# tmpfs on /run/netns, /etc/sysctl.d and each directory the collection writes in /etc, /usr/local/lib
# and /run (saved plans, systemd units and drop-ins, /etc/netns resolvers, the boot code, the boot's
# marks in /run/linuxnet-netns, what systemd-analyze writes in /run/systemd): the machine's own files never change. Everything made
# inside (namespaces, links, nft tables, files, processes) disappears when the command exits, however
# it exits.
#   tests/sandbox.sh CMD [ARGS...]
# The outermost sandbox also puts /etc, /usr/local/lib and /run under overlays whose upper
# layers are a private tmpfs, so that the mount points of those directories - and whatever else a
# test writes there - never reach the machine. A sandbox nested in it (a test worker's) mounts its
# own tmpfs on the same directories and stacks no overlay: the kernel stacks overlays two deep only.
set -euo pipefail
if [ "${LINUXNET_SANDBOX:-}" = 1 ]; then exec "$@"; fi
mkdir -p /run/netns /etc/sysctl.d
# shellcheck disable=SC2016  # the script below is bash's to expand, inside the sandbox
exec unshare --net --mount --pid --uts --fork --kill-child --mount-proc --propagation private \
  env LINUXNET_SANDBOX=1 bash -c '
    set -e
    if [ "${LINUXNET_SANDBOX_OVERLAYS:-}" != 1 ]; then
      # the overlays upper layers live on a tmpfs that the real /run/netns tmpfs then hides
      mount -t tmpfs -o mode=0700 linuxnet-overlays /run/netns
      for dir in /etc /usr/local/lib /run; do
        [ -d "$dir" ] || continue
        layer=/run/netns/layers$dir
        mkdir -p "$layer/upper" "$layer/work"
        mount -t overlay -o "lowerdir=$dir,upperdir=$layer/upper,workdir=$layer/work" linuxnet-overlay "$dir"
      done
      export LINUXNET_SANDBOX_OVERLAYS=1
    fi
    mount -t tmpfs -o mode=0755 linuxnet-netns /run/netns
    mount -t tmpfs -o mode=0755 linuxnet-sysctl /etc/sysctl.d
    for dir in /etc/linuxnet-netns /etc/netns /etc/systemd/system /usr/local/lib/linuxnet-netns /run/systemd \
               /run/linuxnet-netns; do
      mkdir -p "$dir"  # in the outermost sandbox overlay, never on the machine
      mount -t tmpfs -o mode=0755 linuxnet-files "$dir"
    done
    hostname linuxnet-sandbox
    ip link set lo up
    exec "$@"' sandbox "$@"
