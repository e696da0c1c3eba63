# -*- coding: utf-8 -*-
# Copyright: linuxnet.netns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
# Do not use this from other collections or standalone plugins/modules!
"""Saved plans: a `network` task's declared network kept on the host and applied again at boot,
by two systemd units running this same engine (no Ansible, no `ip`/`nft`).

On the host:
  /etc/linuxnet-netns/plans/NAME.json          one file a saved plan (root only, written atomically):
                                               the validated items, a format version, a digest
  /usr/local/lib/linuxnet-netns/engine-HASH/   the engine's files and the boot script, named by the
                                               hash of their content; replaced when it changes
  /etc/systemd/system/linuxnet-netns.service         the host's part, before network-pre.target
  /etc/systemd/system/linuxnet-netns-uplink.service  the rest, after network-online.target, and
                                               again whenever systemd-networkd restarts (PartOf)

The units, their links and the code go with the last plan. At boot every plan file is read and
validated before anything changes: one that is corrupt, truncated, foreign or of a newer format
fails the unit with one line naming the file and the problem, and nothing is applied.

This file imports no Ansible: it is the boot script's entry point.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import importlib
import json
import os
import posixpath
import re
import socket
import sys

from ansible_collections.linuxnet.netns.plugins.module_utils import _apply
from ansible_collections.linuxnet.netns.plugins.module_utils import _kinds
from ansible_collections.linuxnet.netns.plugins.module_utils import _plan as P
from ansible_collections.linuxnet.netns.plugins.module_utils import _state as S
from ansible_collections.linuxnet.netns.plugins.module_utils import _systemd
from ansible_collections.linuxnet.netns.plugins.module_utils import _transport
from ansible_collections.linuxnet.netns.plugins.module_utils import _validate as V
from ansible_collections.linuxnet.netns.plugins.module_utils._common import EngineError, ValidationError, fail
from ansible_collections.linuxnet.netns.plugins.module_utils._common import quiet_collector
from ansible_collections.linuxnet.netns.plugins.module_utils._files import remove, write_atomic

FORMAT = 1
MARK = 'linuxnet.netns saved plan'
PLANS_DIR = '/etc/linuxnet-netns/plans'
CODE_ROOT = '/usr/local/lib/linuxnet-netns'
BOOT_SCRIPT = 'linuxnet-netns-boot'
MANIFEST = 'MANIFEST'  # written last: an engine directory without it is incomplete
PACKAGE = 'ansible_collections.linuxnet.netns.plugins.module_utils'
# what the boot code never holds, whatever imports it: they import Ansible, serve a module run's
# imports (_bytecode) or run the engine for one (_run, _direct)
NOT_INSTALLED = ('_bytecode', '_direct', '_module', '_network', '_run')
# host: what needs only the host (early); uplink: the rest (once the uplink is up, and again when
# systemd-networkd restarts); all: both, in order (by hand, and what netns_info's drift plans)
PARTS = ('host', 'uplink', 'all')
# what the host part leaves for the uplink part of the same boot: a plan whose host part was applied
# (NAME.host); one without it gets the whole plan from the uplink part (a bridge another service
# makes may only be there by then). In /run: gone at the next boot.
RUN_DIR = '/run/linuxnet-netns'
# applied apart, after the rest of the plan: a resolver the boot cannot write (no upstream server
# yet) must not keep NAT and forwarding from coming back
APART = ('dns',)
EXIT_BAD_PLAN = 3  # a plan file the boot cannot read: the uplink unit does not try again

_NAME = re.compile(r'^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$')
UNIT_HEADER = '# Managed by linuxnet.netns.network (saved plans); edits here are overwritten.\n'


class SavedPlanError(Exception):
    """A plan file the boot units cannot apply."""


class Save(object):
    """The `save` option of linuxnet.netns.network."""

    def __init__(self, spec, param='save'):
        self.name = spec.get('name')
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            fail(param + '.name', self.name, 'is not a plan name (letters, digits, "_", "." and "-", at most 64, '
                 'not starting with "." or "-": it names a file in %s)' % PLANS_DIR, 'give a name like bridge_network')
        self.state = spec.get('state') or 'present'
        if self.state not in ('present', 'absent'):
            fail(param + '.state', self.state, 'is neither present nor absent', 'give present or absent')
        self.path = posixpath.join(PLANS_DIR, self.name + '.json')


SAVE_OPTION = dict(type='dict', options=dict(
    name=dict(type='str', required=True),
    state=dict(type='str', choices=['present', 'absent'], default='present'),
))


# --- what a plan file holds ------------------------------------------------------------------------

def digest(network):
    return hashlib.sha256(json.dumps(network, sort_keys=True, separators=(',', ':')).encode()).hexdigest()


def document(name, parsed, python):
    """The saved plan of `parsed` ({option: [objects]}, validated): what each kind's `saved` gives
    back, which its factory takes again at boot."""
    by_option = dict((kind.option, kind) for kind in _kinds.KINDS)
    network = dict((option, [by_option[option].saved(obj) for obj in objects])
                   for option, objects in sorted(parsed.items()))
    return {'format': FORMAT, 'mark': MARK, 'name': name, 'python': python, 'digest': digest(network),
            'network': network}


def render(doc):
    return json.dumps(doc, sort_keys=True, indent=1) + '\n'


def load(path, text=None):
    """(name, python, {option: [objects]}) of a plan file, validated as the module validates its
    arguments; raises SavedPlanError saying what is wrong."""
    if text is None:
        try:
            with open(path, 'rb') as handle:
                raw = handle.read()
        except (IOError, OSError) as exc:
            raise SavedPlanError('cannot be read (%s)' % exc)
        try:
            text = raw.decode('utf-8')
        except UnicodeDecodeError:
            raise SavedPlanError('is not text (corrupt?)')
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise SavedPlanError('is not JSON (%s): truncated or corrupt' % exc)
    if not isinstance(doc, dict) or doc.get('mark') != MARK:
        raise SavedPlanError('is not a plan saved by linuxnet.netns (no "mark": %r)' % MARK)
    version = doc.get('format')
    if not isinstance(version, int) or isinstance(version, bool):
        raise SavedPlanError('has no format version')
    if version > FORMAT:
        raise SavedPlanError('has format %d, newer than this boot code reads (%d): run the network task that '
                             'saved it again, which installs the boot code that reads it' % (version, FORMAT))
    if version < 1:
        raise SavedPlanError('has format %d, which no version wrote' % version)
    network = doc.get('network')
    if not isinstance(network, dict):
        raise SavedPlanError('has no network')
    if doc.get('digest') != digest(network):
        raise SavedPlanError('does not match its digest: edited by hand or corrupt')
    expected = posixpath.basename(path)[:-len('.json')] if path.endswith('.json') else None
    if expected is not None and doc.get('name') != expected:
        raise SavedPlanError('names plan %r, but its file is %s' % (doc.get('name'), posixpath.basename(path)))
    by_option = dict((kind.option, kind) for kind in _kinds.KINDS)
    unknown = sorted(option for option in network if option not in by_option)
    if unknown:
        raise SavedPlanError('has lists this boot code does not know (%s): run the network task that saved it '
                             'again' % ', '.join(unknown))
    parsed = {}
    try:
        for option, items in network.items():
            kind = by_option[option]
            if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
                raise SavedPlanError('has a %s list that is not a list of items' % option)
            objects = [kind.factory(item, '%s[%d]' % (option, index)) for index, item in enumerate(items)]
            V.unique(objects, lambda obj: obj.key, option)
            parsed[option] = objects
    except ValidationError as exc:
        raise SavedPlanError('holds an invalid item: %s' % exc)
    return doc['name'], doc.get('python'), parsed


def part_of(parsed, part):
    """The objects a boot unit applies (Kind.boot says which): part 'host' those that need only the
    host, 'uplink' the rest - planned against what the host part made, without reading and planning
    the host part's objects again (at a thousand namespaces, most of the work) - and 'all' both."""
    wanted = {'host': ('host',), 'uplink': ('uplink',), 'all': ('host', 'uplink')}[part]
    by_option = dict((kind.option, kind) for kind in _kinds.KINDS)
    chosen = {}
    for option, objects in parsed.items():
        kept = [obj for obj in objects if by_option[option].boot(obj.item) in wanted]
        if kept or part == 'all':
            chosen[option] = kept
    return chosen


# --- planning a declared network (the network module and the boot script alike) -------------------

def plan_declared(plan, reader, parsed, purge=None):
    """Plan every kind's objects of `parsed` in planning order (purge: {option: match} adds what the
    kinds find of ours and not declared). Returns the network module's result."""
    # The objects' after-states are not returned: at a thousand namespaces they are most of the
    # result, and Ansible's handling of a result grows with its size. `actions` and the diff tell
    # what changed; netns_info reads the state.
    counts, purged = {}, []
    _read_ahead(reader, parsed)
    for kind in _kinds.KINDS:
        if kind.option not in parsed:
            continue
        objects = parsed[kind.option]
        extra = kind.purge(reader, objects, purge[kind.option]) if purge and kind.option in purge else []
        kind.planner(plan, reader, objects + extra)
        counts[kind.option] = len(objects)
        purged.extend(obj.describe() for obj in extra)
    result = {'declared': counts}
    if purge is not None:
        result['purged'] = purged
    return result


def _read_ahead(reader, parsed):
    """Read what the planners of `parsed` read in each namespace, a namespace at a time
    (Reader.prefetch): the links of those that hold declared links (read whole anyway; read first,
    the namespace planner finds lo there instead of asking for it on its own), the routes of those
    that hold declared routes (and their links, for a route that names its device), and the ids
    the veth planner checks a pair across the host and a namespace with."""
    links, routes, pairs = set(), {}, []
    for obj in parsed.get('pairs', []) + parsed.get('bridges', []):
        for iface in obj.ifaces():
            links.add(iface.ns)
    for pair in parsed.get('pairs', []):
        if pair.peer is not None and pair.end.ns != pair.peer.ns:
            pairs.append((pair.end.ns, pair.end.name, pair.peer.ns, pair.peer.name))
    for route in parsed.get('routes', []):
        routes.setdefault(route.ns, set()).add(socket.AF_INET if route.dest.version == 4 else socket.AF_INET6)
        if route.dev is not None:
            links.add(route.ns)
    reader.prefetch(links, routes, pairs)


# --- the boot code installed on the host -----------------------------------------------------------

BOOT_SOURCE = '''\
# Generated by linuxnet.netns: applies the saved plans in %(plans)s (systemd runs it at boot:
# %(boot)s, %(uplink)s). Changing this file changes nothing: it is rewritten by the next run.
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ansible_collections.linuxnet.netns.plugins.module_utils import _saved  # noqa: E402

sys.exit(_saved.boot(sys.argv[1:]))
''' % dict(plans=PLANS_DIR, boot=_systemd.BOOT_UNIT, uplink=_systemd.UPLINK_UNIT)


# an import of an engine file, as the engine writes them: "from PACKAGE import _x [as y]", "from
# PACKAGE._x import ...", "import PACKAGE._x"
_IMPORTS = re.compile(r'(?:from|import) +ansible_collections\.linuxnet\.netns\.plugins\.module_utils'
                      r'(?: +import +([\w ,]+)|\.(\w+))')


def imported(source):
    """The engine files (names) `source` imports, wherever in it."""
    names = set()
    for listed, dotted in _IMPORTS.findall(source):
        if dotted:
            names.add(dotted)
        for part in listed.split(','):
            name = part.split()[0] if part.split() else ''
            if name.startswith('_'):
                names.add(name)
    return names


def engine_files():
    """{relative path: source} of the boot code: this file and every engine file it imports, and they
    import, read through their loaders (a module run by Ansible reads them from its zip), and the boot
    script. Followed from the imports, not listed from the package: the same files however the engine
    came to the host (a module's zip holds what that module imports; a direct run gets them all)."""
    files = {}
    base = PACKAGE.replace('.', '/')
    wanted, done = ['_saved'], set()
    while wanted:
        name = wanted.pop()
        if name in done or name in NOT_INSTALLED:
            continue
        done.add(name)
        module = importlib.import_module(PACKAGE + '.' + name)
        source = module.__loader__.get_source(module.__name__)
        if isinstance(source, bytes):  # ansible-test's collection loader gives bytes
            source = source.decode('utf-8')
        if source is None:
            raise EngineError('cannot read the source of %s to install the boot code' % module.__name__)
        files['%s/%s.py' % (base, name)] = source
        wanted.extend(sorted(imported(source) - done))
    files[BOOT_SCRIPT] = BOOT_SOURCE
    return files


def engine_hash(files):
    digest_ = hashlib.sha256()
    for path in sorted(files):
        digest_.update(path.encode() + b'\0' + files[path].encode() + b'\0')
    return digest_.hexdigest()[:16]


def manifest(files):
    return ''.join('%s %s\n' % (hashlib.sha256(files[path].encode()).hexdigest(), path) for path in sorted(files))


def _install(directory, files):
    for path, source in sorted(files.items()):
        write_atomic(posixpath.join(directory, path), source, mode=0o755 if path == BOOT_SCRIPT else 0o644)
    write_atomic(posixpath.join(directory, MANIFEST), manifest(files))


def _remove_tree(directory):
    import shutil
    # the manifest first: a removal cut short leaves a directory that no run takes for installed
    remove(posixpath.join(directory, MANIFEST))
    shutil.rmtree(directory, ignore_errors=True)
    remove(posixpath.join(directory, MANIFEST), prune=(CODE_ROOT,))


def boot_unit(python, script):
    return UNIT_HEADER + '''\
[Unit]
Description=linuxnet.netns saved networks: namespaces, bridges, veth pairs, addresses, routes inside namespaces
DefaultDependencies=no
After=local-fs.target systemd-modules-load.service systemd-sysctl.service
Before=network-pre.target shutdown.target
Wants=network-pre.target
Conflicts=shutdown.target
ConditionDirectoryNotEmpty=%(plans)s

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=%(python)s -I %(script)s --part host

[Install]
WantedBy=multi-user.target
''' % dict(plans=PLANS_DIR, python=python, script=script)


def uplink_unit(python, script):
    return UNIT_HEADER + '''\
[Unit]
Description=linuxnet.netns saved networks: routes via other hosts, masquerade, published ports, forwarding
Wants=%(boot)s network-online.target
After=%(boot)s network-online.target systemd-networkd.service
# systemd-networkd deletes the routes it did not make when it restarts: restarted with it, this
# applies the plans again (the services placed in namespaces depend on %(boot)s only, and stay)
PartOf=systemd-networkd.service
ConditionDirectoryNotEmpty=%(plans)s

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=%(python)s -I %(script)s --part uplink
# a gateway not reachable yet (no wait-online service), a resolver without upstream: tried again; a
# plan file that cannot be read (exit %(bad)d) is not
Restart=on-failure
RestartSec=10s
RestartPreventExitStatus=%(bad)d

[Install]
WantedBy=multi-user.target systemd-networkd.service
''' % dict(plans=PLANS_DIR, python=python, script=script, boot=_systemd.BOOT_UNIT, bad=EXIT_BAD_PLAN)


UNITS = ((_systemd.BOOT_UNIT, ('multi-user.target',)),
         (_systemd.UPLINK_UNIT, ('multi-user.target', 'systemd-networkd.service')))


def plan_save(plan, reader, save, parsed, python):
    """Plan the saved plan `save` (a Save) of `parsed`: its file, and the boot code and units it
    needs; or, state absent, its removal, and theirs when no other plan is left. Returns the
    module's `saved` result."""
    key = 'saved plan %s' % save.name
    existing = reader.text_file(save.path)
    try:
        before = json.loads(existing) if existing is not None else None
    except ValueError:
        before = '(unreadable: %d bytes)' % len(existing)
    others = [name for name in (reader.listdir(PLANS_DIR) or [])
              if name.endswith('.json') and not name.startswith('.') and name != save.name + '.json']
    if save.state == 'absent':
        plan.record(key, before, None)
        if existing is not None:
            plan.add(P.FILES, None, 'remove saved plan %s (%s)' % (save.name, save.path),
                     call=lambda session: remove(save.path, prune=(PLANS_DIR, posixpath.dirname(PLANS_DIR))))
        if not others:
            changed = False
            for unit, targets in UNITS:
                for target in targets:
                    changed = _systemd.disable(plan, reader, unit, target) or changed
                changed = _systemd.delete(plan, reader, posixpath.join(_systemd.UNIT_DIR, unit), 'boot unit') or changed
            if changed:
                _systemd.reload(plan, reader)
            for name in reader.listdir(CODE_ROOT) or []:
                directory = posixpath.join(CODE_ROOT, name)
                plan.record('boot code %s' % directory, 'installed', None)
                plan.add(P.FILES, None, 'remove the boot code %s (no saved plan is left)' % directory,
                         call=lambda session, d=directory: _remove_tree(d))
        return {'name': save.name, 'path': save.path, 'state': 'absent', 'other_plans': len(others)}

    doc = document(save.name, parsed, python)
    content = render(doc)
    plan.record(key, before, doc)
    if existing != content:
        verb = 'write' if existing is None else 'update'
        plan.add(P.FILES, None, '%s saved plan %s (%s)' % (verb, save.name, save.path),
                 call=lambda session: _write_plan(save.path, content))
    _drop_persisted_forwarding(plan, reader, parsed)
    files = engine_files()
    version = engine_hash(files)
    directory = posixpath.join(CODE_ROOT, 'engine-' + version)
    script = posixpath.join(directory, BOOT_SCRIPT)
    installed = reader.text_file(posixpath.join(directory, MANIFEST)) == manifest(files)
    plan.record('boot code', 'engine-' + version if installed else None, 'engine-' + version)
    if not installed:
        plan.add(P.FILES, None, 'install the boot code in %s' % directory,
                 call=lambda session: _install(directory, files))
    for name in reader.listdir(CODE_ROOT) or []:
        if name != 'engine-' + version:
            old = posixpath.join(CODE_ROOT, name)
            plan.record('boot code %s' % old, 'installed', None)
            # after the units point at the new code and systemd has read them
            plan.add(P.FILES_CLEANUP, None, 'remove the old boot code %s' % old,
                     call=lambda session, d=old: _remove_tree(d))
    changed = False
    for unit, render_unit in ((_systemd.BOOT_UNIT, boot_unit), (_systemd.UPLINK_UNIT, uplink_unit)):
        changed = _systemd.write(plan, reader, posixpath.join(_systemd.UNIT_DIR, unit), render_unit(python, script),
                                 'boot unit') or changed
    for unit, targets in UNITS:
        for target in targets:
            changed = _systemd.enable(plan, reader, unit, target) or changed
    if changed:
        _systemd.reload(plan, reader)
    return {'name': save.name, 'path': save.path, 'state': 'present', 'engine': directory,
            'units': [unit for unit, _targets in UNITS], 'other_plans': len(others)}


def _write_plan(path, content):
    write_atomic(path, content, mode=0o600, dir_mode=0o700)
    os.chmod(posixpath.dirname(path), 0o700)  # root only, also where the directory was there before


def _drop_persisted_forwarding(plan, reader, parsed):
    """A saved plan that turns the host's forwarding on owns it at boot: the sysctl.d file this
    collection wrote earlier (persist: true, or the role's persist_forwarding) would turn it on
    before the plan's scope is in place, so it goes. Someone else's file is left, with a warning."""
    from ansible_collections.linuxnet.netns.plugins.module_utils import _kind_forwarding as F
    if not any(obj.ns is None and any(obj.wanted.values()) for obj in parsed.get('forwarding', [])):
        return
    path = F.DEFAULT_PERSIST_FILE
    text = reader.text_file(path)
    if text is None:
        return
    keys = ('net.ipv4.ip_forward', 'net.ipv6.conf.all.forwarding')
    settings = [F.setting(line) for line in text.splitlines()]
    if F.ours(text):
        _systemd.delete(plan, reader, path, 'forwarding at boot is the saved plan\'s, once its scope is in place')
    elif any(found is not None and found[0] in keys and found[1] == '1' for found in settings):
        plan.warnings.append('%s turns forwarding on at boot, before the saved plan puts its scope in place: '
                             'remove the setting there' % path)


def refuse_persisted_forwarding(parsed):
    """A saved plan turns forwarding on at boot after its scope is in place; a sysctl.d file would
    turn it on before (systemd-sysctl runs first), an open router until then."""
    for index, obj in enumerate(parsed.get('forwarding', [])):
        if obj.persist and any(obj.wanted.values()):
            fail('forwarding[%d].persist' % index, True, 'would turn forwarding on at boot from %s, before the saved '
                 'plan puts its scope (restrict_to) in place' % obj.persist_file,
                 'drop persist: the saved plan turns forwarding on at boot, once its scope is there')


# --- the saved plans as netns_info reports them ---------------------------------------------------

def report(session, drift):
    """[{name, path, problem | declared, matches, drift}] of the plans saved on this host; with
    `drift`, each valid plan is planned against the host as the boot's second unit would apply it
    (nothing is applied): `drift` lists what that would change, `matches` whether nothing."""
    plans = []
    for path in _plan_files():
        entry = {'name': posixpath.basename(path)[:-len('.json')], 'path': path}
        try:
            _name, python, parsed = load(path)
        except SavedPlanError as exc:
            entry['problem'] = str(exc)
            plans.append(entry)
            continue
        entry['python'] = python
        entry['declared'] = dict((option, len(objects)) for option, objects in parsed.items())
        if drift:
            plan = P.Plan()
            reader = S.Reader(session, _kinds.comment_parsers())
            try:
                plan_declared(plan, reader, parsed)  # services' drop-ins too, which the boot leaves alone
            except EngineError as exc:
                entry['problem'] = 'cannot be applied here: %s' % exc
            else:
                entry['drift'] = plan.actions
                entry['matches'] = not plan.changed
        plans.append(entry)
    return plans


def _plan_files(directory=PLANS_DIR):
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return []
    # a name starting with "." is a write in progress (or killed mid-write): the plan is the old file
    return [posixpath.join(directory, name) for name in names if name.endswith('.json') and not name.startswith('.')]


# --- the boot script -------------------------------------------------------------------------------

def _say(text, stream=None):
    # one line a message: the journal shows each as it is
    (stream or sys.stdout).write('linuxnet-netns: %s\n' % text)
    (stream or sys.stdout).flush()


def boot(argv):
    """The boot units' command: `--part host` (early), `--part uplink` (the rest) or `--part all`
    (both), optionally `--plans DIR`.
    Exit 0 when every plan is in place, 1 when a plan cannot be read or applied."""
    quiet_collector()
    part, directory = 'all', PLANS_DIR
    args = list(argv)
    while args:
        arg = args.pop(0)
        if arg == '--part' and args and args[0] in PARTS:
            part = args.pop(0)
        elif arg == '--plans' and args:
            directory = args.pop(0)
        else:
            _say('usage: %s [--part host|uplink|all] [--plans DIR] (got %r)' % (BOOT_SCRIPT, arg), sys.stderr)
            return 2
    from ansible_collections.linuxnet.netns.plugins.module_utils import _codec
    if not _codec.HAS_PYROUTE2:
        _say('%s has no pyroute2 (python3-pyroute2, or pip install pyroute2); no saved plan was applied'
             % sys.executable, sys.stderr)
        return 1
    loaded = []
    for path in _plan_files(directory):
        try:
            loaded.append(load(path))
        except SavedPlanError as exc:
            _say('%s %s; no saved plan was applied' % (path, exc), sys.stderr)
            return EXIT_BAD_PLAN
    if not loaded:
        _say('no saved plans in %s' % directory)
        return 0
    caps = _transport.capabilities()
    if not (caps & (1 << _transport.CAP_NET_ADMIN) and caps & (1 << _transport.CAP_SYS_ADMIN)):
        _say('needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN) to apply the saved plans; nothing was changed', sys.stderr)
        return 1
    nofile = _transport.raise_nofile()
    if nofile is not None and nofile < _transport.MIN_NOFILE:
        _say('the limit on open files is %d; at least %d are needed (LimitNOFILE=); nothing was changed'
             % (nofile, _transport.MIN_NOFILE), sys.stderr)
        return 1
    status = 0
    for name, _python, parsed in loaded:
        marker = posixpath.join(RUN_DIR, name + '.host')
        this = part
        if part == 'uplink' and not os.path.exists(marker):
            this = 'all'  # the host part did not apply this plan (it failed, or did not run)
        chosen = part_of(parsed, this)
        apart = dict((option, chosen.pop(option)) for option in APART if option in chosen)
        ok = _apply_part(name, this, chosen)
        if ok and this == 'host':
            if not os.path.isdir(RUN_DIR):
                os.makedirs(RUN_DIR, 0o755)
            with open(marker, 'w'):
                pass
        if ok and apart:
            ok = _apply_part(name, '%s: %s' % (this, ', '.join(sorted(apart))), apart)
        status = status if ok else 1
    return status


def _apply_part(name, part, chosen):
    """Plan and apply `chosen` of plan `name`, saying what happened in one line; whether it worked."""
    plan = P.Plan()
    session = None
    try:
        with _transport.Lock(exclusive=True):
            session = _transport.Namespaces()
            reader = S.Reader(session, _kinds.comment_parsers())
            plan_declared(plan, reader, chosen)
            if plan.ops:
                _apply.apply_plan(plan, session)
    except (EngineError, _transport.NamespaceError, _transport.NetlinkError, OSError) as exc:
        _say('plan %s (part %s): %s%s' % (name, part, exc, '' if plan.started else '; nothing was changed'),
             sys.stderr)
        return False
    finally:
        if session is not None:
            session.close()
    for warning in plan.warnings:
        _say('plan %s: warning: %s' % (name, warning))
    _say('plan %s (part %s): %s' % (name, part, '%d changes' % len(plan.actions) if plan.changed
                                    else 'in place, nothing to change'))
    return True
