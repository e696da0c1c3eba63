# -*- coding: utf-8 -*-
# Copyright: linuxnet.netns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
# Do not use this from other collections or standalone plugins/modules!
"""Files the engine writes on the host (sysctl.d files, saved plans, systemd units and drop-ins,
per-namespace resolvers, the boot code): written whole through a temporary file renamed over the
old one, so that a run killed mid-write leaves the previous file intact, never half of the new one.
Only operations' closures call these, at apply time."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import os
import tempfile


def write_atomic(path, content, keep=False, mode=0o644, dir_mode=0o755):
    """Write `path` whole, through a temporary file in the same directory renamed over it (the
    data synced first). With `keep` (someone else's file) the file a symbolic link points to is
    written, not the link, and its mode and owner stay; without, the file is ours, with `mode`.
    Missing directories are made with `dir_mode`."""
    existing = None
    if keep and os.path.exists(path):
        path = os.path.realpath(path)
        existing = os.stat(path)
    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        os.makedirs(directory, dir_mode)
    fd, tmp = tempfile.mkstemp(prefix='.linuxnet-', dir=directory)
    try:
        with os.fdopen(fd, 'wb' if isinstance(content, bytes) else 'w') as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        if existing is None:
            os.chmod(tmp, mode)
        else:
            os.chown(tmp, existing.st_uid, existing.st_gid)
            os.chmod(tmp, existing.st_mode & 0o7777)
        os.rename(tmp, path)
    except Exception:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _sync_dir(directory)


def write_in_place(path, content):
    """Rewrite an existing file through its own inode (truncate, write, sync): for a file that
    running processes see through a bind mount (a namespace's resolv.conf bound over a service's
    /etc/resolv.conf), which a file renamed over it would leave on the old inode. A missing file is
    written atomically instead."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW)
    except OSError as exc:
        if exc.errno != errno.ENOENT:
            raise
        write_atomic(path, content)
        return
    with os.fdopen(fd, 'w') as handle:
        handle.truncate(0)
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())


def _sync_dir(directory):
    # the rename itself is durable only once its directory is
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove(path, prune=()):
    """Remove `path` (gone already is fine), then each directory of `prune` that is left empty,
    in order (innermost first)."""
    try:
        os.unlink(path)
    except OSError as exc:
        if exc.errno != errno.ENOENT:
            raise
    for directory in prune:
        try:
            os.rmdir(directory)
        except OSError as exc:
            # EBUSY: a mount point (a test's, or an administrator's) stays, empty
            if exc.errno not in (errno.ENOENT, errno.ENOTEMPTY, errno.EEXIST, errno.EBUSY):
                raise


def symlink(target, path):
    """`path` a symbolic link to `target` (what `systemctl enable` makes), replaced atomically."""
    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        os.makedirs(directory, 0o755)
    tmp = os.path.join(directory, '.linuxnet-%d-%s' % (os.getpid(), os.path.basename(path)))
    if os.path.lexists(tmp):
        os.unlink(tmp)
    os.symlink(target, tmp)
    os.rename(tmp, path)


def daemon_reload():
    """`systemctl daemon-reload`: None when it worked, else what went wrong (systemctl's words)."""
    import subprocess
    try:
        proc = subprocess.run(['systemctl', 'daemon-reload'], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              universal_newlines=True, timeout=120, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        return str(exc)
    return None if proc.returncode == 0 else (proc.stdout.strip() or 'exit code %d' % proc.returncode)


def try_restart(unit):
    """`systemctl try-restart --no-block UNIT` (a stopped unit stays stopped): None when systemd took
    the job, else what went wrong (systemctl's words). Not waited for: the unit is ordered after the
    boot unit, whose start waits for the run lock that the run calling this holds."""
    import subprocess
    try:
        proc = subprocess.run(['systemctl', 'try-restart', '--no-block', unit], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              universal_newlines=True, timeout=300, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        return str(exc)
    return None if proc.returncode == 0 else (proc.stdout.strip() or 'exit code %d' % proc.returncode)
