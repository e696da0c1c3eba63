#!/usr/bin/env bash
# Make a collections tree in which ansible_collections/linuxnet/netns is a symlink to this checkout,
# and print its path, for ANSIBLE_COLLECTIONS_PATH:
#
#   export ANSIBLE_COLLECTIONS_PATH="$(tests/lab/collections.sh)"
#   tests/lab/collections.sh DIR      # use DIR instead (molecule uses its ephemeral directory)
#
# The default directory is outside the repository (under ${TMPDIR:-/tmp}, one per checkout path),
# so nothing untracked appears in the work tree and nothing loops back into it. Idempotent and safe
# to run concurrently: the symlink is replaced atomically.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
if [ ! -f "$repo/galaxy.yml" ]; then
  echo "collections.sh: $repo has no galaxy.yml; is this script inside the linuxnet.netns checkout?" >&2
  exit 1
fi
checksum=$(printf '%s' "$repo" | cksum | cut -d' ' -f1)
dir=${1:-${LINUXNET_COLLECTIONS_DIR:-${TMPDIR:-/tmp}/linuxnet-netns-collections-$checksum}}
mkdir -p "$dir/ansible_collections/linuxnet"
dir=$(cd "$dir" && pwd -P)
link="$dir/ansible_collections/linuxnet/netns"
if [ "$(readlink "$link" 2>/dev/null || true)" != "$repo" ]; then
  if [ -e "$link" ] && [ ! -L "$link" ]; then
    echo "collections.sh: $link exists and is not a symlink; not touching it" >&2
    exit 1
  fi
  ln -s "$repo" "$link.$$"
  mv -T "$link.$$" "$link"
fi
echo "$dir"
