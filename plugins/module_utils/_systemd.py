# -*- coding: utf-8 -*-
# Copyright: linuxnet.netns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
# Do not use this from other collections or standalone plugins/modules!
"""What the kinds that write systemd's files share: unit names, where units live, files written and
removed through the plan (with their diff), units enabled as `systemctl enable` does (a symbolic
link in TARGET.wants), and the one daemon-reload a run makes, only when something changed and only
where systemd runs: on a host without it (a container, the lab) the files are written and the
reload is skipped with a warning."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import posixpath
import re

from ansible_collections.linuxnet.netns.plugins.module_utils import _plan as P
from ansible_collections.linuxnet.netns.plugins.module_utils._common import fail
from ansible_collections.linuxnet.netns.plugins.module_utils._files import (
    daemon_reload, remove, symlink, write_atomic, write_in_place)

UNIT_DIR = '/etc/systemd/system'
# the units that apply the saved plans at boot: the host's part early (namespaces, bridges, veths,
# addresses, routes inside namespaces), the rest once the uplink has its address
BOOT_UNIT = 'linuxnet-netns.service'
UPLINK_UNIT = 'linuxnet-netns-uplink.service'
# where systemd looks for unit files, most important first (systemd.unit(5), system units)
SEARCH_PATH = ('/etc/systemd/system', '/run/systemd/system', '/usr/local/lib/systemd/system',
               '/lib/systemd/system', '/usr/lib/systemd/system')
# sd_booted(): the directory systemd makes when it is PID 1
RUNNING = '/run/systemd/system'

# systemd.unit(5): the unit types; a name ending in another word after a dot (an instance such as
# openvpn-client@my.vpn) is a service named without its suffix
UNIT_TYPES = ('service', 'socket', 'device', 'mount', 'automount', 'swap', 'target', 'path', 'timer', 'slice',
              'scope')
_NAME = re.compile(r'^[A-Za-z0-9:_.\\-]+(@[A-Za-z0-9:_.\\-]*)?$')
UNIT_NAME_MAX = 255


def service_name(text, param):
    """A service unit's full name (`nginx` -> `nginx.service`); refuses what is not one."""
    if not isinstance(text, str) or not text:
        fail(param, text, 'is not a service name', 'give a systemd service, like nginx or nginx.service')
    name = text if text.endswith('.service') else text + '.service'
    stem = name[:-len('.service')]
    suffix = text.rsplit('.', 1)[1] if '.' in text else None
    if suffix in UNIT_TYPES and suffix != 'service':
        fail(param, text, 'is not a service unit (%s)' % suffix,
             'give a .service unit; a namespace is a property of the process a service starts')
    if not _NAME.match(stem) or len(name) > UNIT_NAME_MAX or stem.endswith('@'):
        fail(param, text, 'is not a valid service name (systemd.unit(5): letters, digits, ":_.\\-", one "@" '
             'before an instance name; a template alone cannot run)', 'give a service like nginx or getty@tty1')
    return name


def template_of(name):
    """`foo@bar.service` -> `foo@.service`, the file an instance is made from; None if not an instance."""
    stem, _sep, suffix = name.rpartition('.')
    if '@' not in stem:
        return None
    return stem.split('@', 1)[0] + '@.' + suffix


def unit_file(reader, name):
    """The path of the file a unit is made from (an instance's template), or None: systemd would not
    find the unit."""
    for candidate in (name, template_of(name)):
        if candidate is None:
            continue
        for directory in SEARCH_PATH:
            path = posixpath.join(directory, candidate)
            if reader.text_file(path) is not None:
                return path
    return None


def running(reader):
    return reader.is_dir(RUNNING)


def write(plan, reader, path, content, what, mode=0o644, dir_mode=0o755, in_place=False):
    """`path` holding `content` (ours: written whole); its before/after in the diff as `file PATH`.
    `in_place`: an existing file is rewritten through its own inode (write_in_place), for files
    bound into running services. Returns whether it changes."""
    existing = reader.text_file(path)
    plan.record('file %s' % path, existing, content)
    if existing == content:
        return False
    rewrite = in_place and existing is not None

    def call(session):
        if rewrite:
            write_in_place(path, content)
        else:
            write_atomic(path, content, mode=mode, dir_mode=dir_mode)
    plan.add(P.FILES, None, '%s %s (%s)' % ('write' if existing is None else 'update', path, what), call=call)
    return True


def delete(plan, reader, path, what, prune=()):
    """`path` gone (and the directories of `prune` when left empty). Returns whether it changes."""
    existing = reader.text_file(path)
    target = reader.link_target(path)
    plan.record('file %s' % path, existing if target is None else '-> %s' % target, None)
    if existing is None and target is None:
        return False
    plan.add(P.FILES, None, 'remove %s (%s)' % (path, what), call=lambda session: remove(path, prune))
    return True


def enable(plan, reader, unit, target):
    """The unit pulled in by `target`, as `systemctl enable` does: TARGET.wants/UNIT -> the unit file."""
    path = posixpath.join(UNIT_DIR, target + '.wants', unit)
    wanted = posixpath.join(UNIT_DIR, unit)
    current = reader.link_target(path)
    plan.record('file %s' % path, None if current is None else '-> %s' % current, '-> %s' % wanted)
    if current == wanted:
        return False
    plan.add(P.FILES, None, 'enable %s (link in %s.wants)' % (unit, target),
             call=lambda session: symlink(wanted, path))
    return True


def disable(plan, reader, unit, target):
    path = posixpath.join(UNIT_DIR, target + '.wants', unit)
    return delete(plan, reader, path, 'disable %s' % unit, prune=(posixpath.dirname(path),))


def reload(plan, reader):
    """One `systemctl daemon-reload` after the run's unit files changed (whatever number changed);
    where systemd is not running, a warning instead."""
    if not plan.once('systemd daemon-reload'):
        return
    if not running(reader):
        plan.warnings.append('systemd is not running here (no %s): the unit files are written, and systemd '
                             'reads them when it starts; no daemon-reload' % RUNNING)
        return

    def call(session):
        problem = daemon_reload()
        if problem:
            plan.warnings.append('systemctl daemon-reload failed (%s): systemd uses the old unit files until '
                                 'it reloads' % problem)

    plan.add(P.SYSTEMD_RELOAD, None, 'systemctl daemon-reload', call=call)
