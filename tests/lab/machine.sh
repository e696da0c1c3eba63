#!/usr/bin/env bash
# A throwaway "machine" on a disk, inside the sandbox (tests/sandbox.sh): fresh network, mount and
# pid namespaces, an empty /run/netns and /run/linuxnet-netns, and the directories the collection
# keeps across reboots (saved plans, units, resolvers, the boot code, sysctl.d) bound from DISK, so
# that a second machine on the same DISK is the same host after a reboot: only those files are left.
# Bind mounts, not an overlay of /etc: the sandbox's /etc is one already (two under a test worker),
# and the kernel stacks overlays no deeper. The mount points are made in the sandbox's own /etc.
#   tests/lab/machine.sh DISK CMD [ARGS...]
# Used by tests/integration/test_saved.py (simulated reboots) and bench/boot.py.
set -euo pipefail
if [ "${LINUXNET_SANDBOX:-}" != 1 ]; then
  echo "machine.sh: run it inside the sandbox (tests/sandbox.sh)" >&2
  exit 2
fi
if [ "${LINUXNET_MACHINE:-}" != 1 ]; then
  exec env LINUXNET_MACHINE=1 unshare --net --mount --pid --fork --kill-child --propagation private "$0" "$@"
fi
disk=$1
shift
for dir in /etc/linuxnet-netns /etc/netns /etc/systemd/system /etc/sysctl.d /usr/local/lib/linuxnet-netns; do
  mkdir -p "$dir" "$disk$dir"
  mount --bind "$disk$dir" "$dir"
done
mount -t tmpfs -o mode=0755 machine-netns /run/netns
mkdir -p /run/linuxnet-netns
mount -t tmpfs -o mode=0755 machine-run /run/linuxnet-netns
ip link set lo up
exec "$@"
