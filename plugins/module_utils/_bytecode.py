# -*- coding: utf-8 -*-
# Copyright: linuxnet.netns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
# Do not use this from other collections or standalone plugins/modules!
"""The engine's compiled code, kept on the managed host from one module run to the next.

Ansible sends a module with the module_utils it imports as one zip (AnsiballZ), and Python imports
them from it with zipimport, which compiles every source file on every run - twice: its find_spec
compiles a module to learn its file name, its loader compiles it again to run it - and keeps nothing:
for this engine 120-160 ms of each module run, where the same imports from compiled code take 10-15 ms.
On a fleet - a read and an apply on every host per converge - that was most of what a module run
cost beyond Ansible's own least (a ping).

Importing this module (each module stub does, before the engine) puts a finder in front of Python's
own that serves this package's modules from the payload zip with code compiled once per source
text and kept in CACHE_DIR: a file per module, named by the SHA-256 of its source and the
interpreter's cache tag, so a changed source or another Python never runs stale code. Only for root,
only in a directory root owns and no one else may write, only for modules that zipimport would load
(never on the controller or in tests, whose files Python caches itself); anything unexpected - no
such directory, another owner, a file that does not read back as code - and the module is compiled
as zipimport would. /run is emptied at boot, and a module's older file goes when a new one is
written: nothing piles up. LINUXNET_NETNS_PYCACHE in the module's environment: 0, nothing is read or
written; an absolute path, the directory to use instead (held to the same rules)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import marshal
import os
import stat
import sys
import tempfile
import types

try:
    import zipimport
    from importlib.util import MAGIC_NUMBER, spec_from_file_location, spec_from_loader
except ImportError:  # Python 2: no finder of this kind; everything is compiled as before
    zipimport = None

PACKAGE = __name__.rpartition('.')[0]
CACHE_DIR = '/run/linuxnet-netns/pycache'
ENV = 'LINUXNET_NETNS_PYCACHE'


def cache_dir(path=CACHE_DIR):
    """The directory (`path`, or the one LINUXNET_NETNS_PYCACHE names), made if missing, where it may
    hold code this process runs; else None. Whoever can write a file there can run code as root in
    the next module run: the directory must be root's (the only user for whom there is a cache) and
    writable by no one else."""
    setting = os.environ.get(ENV, '')
    if setting == '0' or os.geteuid() != 0:
        return None
    if setting.startswith('/'):
        path = setting
    try:
        if not os.path.isdir(path):
            os.makedirs(path, 0o700)
        info = os.lstat(path)
    except OSError:
        return None
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != 0 or info.st_mode & 0o022:
        return None
    return path


class Finder(object):
    """The module spec zipimport would give, with a Loader that takes the code from the cache."""

    def __init__(self, directory):
        self.directory = directory

    def find_spec(self, fullname, path=None, target=None):
        if not fullname.startswith(PACKAGE + '.') or path is None:
            return None
        # zipimport's own find_spec compiles the module to learn its file name (get_filename), and
        # its loader compiles it again: the spec is made here, from the zip's list of files alone
        for entry in path:
            importer = sys.path_importer_cache.get(entry)
            if not isinstance(importer, zipimport.zipimporter):
                return None  # the rest of sys.meta_path finds it as before
            try:
                if importer.is_package(fullname):
                    return None
            except zipimport.ZipImportError:
                continue  # not in this part of the package's path
            return spec_from_file_location(fullname, os.path.join(entry, fullname.rpartition('.')[2] + '.py'),
                                           loader=Loader(importer, self.directory), submodule_search_locations=None)
        return None


class Loader(object):
    """One module of the payload zip: its source from zipimport, its code from the cache."""

    def __init__(self, zip_loader, directory):
        self.zip_loader, self.directory = zip_loader, directory

    def create_module(self, spec):
        return None  # the default module object

    def exec_module(self, module):
        exec(self.get_code(module.__name__), module.__dict__)  # pylint: disable=exec-used

    def is_package(self, fullname):
        return False

    def get_source(self, fullname):
        # tracebacks (linecache) and the boot code (_saved.engine_files) read the source through here
        return self.zip_loader.get_source(fullname)

    def get_code(self, fullname):
        source = self.get_source(fullname)
        if source is None:  # compiled code alone in the zip: nothing to compile, nothing to keep
            return self.zip_loader.get_code(fullname)
        return cached_code(fullname, source, self.directory)


def cached_code(fullname, source, directory):
    """The code of the module `fullname` with this source: from the cache in `directory` (None: no
    cache), compiled and kept there if missing."""
    name = fullname.rpartition('.')[2]
    # the file name Python would show for the module's own file, the same in every run (the
    # payload's path changes each time); the lines come from the loader's get_source
    filename = '%s/%s.py' % (PACKAGE.replace('.', '/'), name)
    if directory is None:
        return compile(source, filename, 'exec', dont_inherit=True)
    key = '%s.%s.%s' % (name, hashlib.sha256(source.encode('utf-8')).hexdigest()[:32], sys.implementation.cache_tag)
    path = os.path.join(directory, key)
    code = load(path)
    if code is None:
        code = compile(source, filename, 'exec', dont_inherit=True)
        store(path, code, stale=name + '.')
    return code


# the package's __path__ entry, and its finder's key in sys.path_importer_cache, in a run that has
# the engine's sources in memory
# (absolute, though no such path exists: importlib.invalidate_caches drops relative entries' finders)
SOURCES_ENTRY = '/<linuxnet.netns engine sources>'


class SourceFinder(object):
    """The package's modules from sources in memory ({name: source text}), with code from the cache
    in `directory` (None: compiled each time): how the engine is imported where it runs without
    Ansible's module wrapper, sent whole by the controller (_direct). The finder of the package's one
    path entry (install()): imports find the modules through it, and pkgutil.iter_modules lists them;
    get_source gives their text (tracebacks, and _saved.engine_files for the boot code)."""

    def __init__(self, sources, directory):
        self.sources, self.directory = sources, directory

    def find_spec(self, fullname, target=None):
        name = fullname.rpartition('.')[2]
        if fullname != PACKAGE + '.' + name or name not in self.sources:
            return None
        return spec_from_loader(fullname, SourceLoader(self, name),
                                origin='%s/%s.py' % (PACKAGE.replace('.', '/'), name))

    def iter_modules(self, prefix=''):
        for name in sorted(self.sources):
            yield prefix + name, False

    def invalidate_caches(self):
        pass

    def install(self, package):
        """Make this the finder of `package` (the module object of PACKAGE)."""
        package.__path__ = [SOURCES_ENTRY]
        sys.path_importer_cache[SOURCES_ENTRY] = self


class SourceLoader(Loader):
    """One module of a SourceFinder: its source from memory, its code as Loader gives it."""

    def __init__(self, finder, name):
        super(SourceLoader, self).__init__(None, finder.directory)
        self.source = finder.sources[name]

    def get_source(self, fullname):
        return self.source


def load(path):
    """The code kept in `path`, or None (missing, or not code of this interpreter)."""
    try:
        with open(path, 'rb') as handle:
            data = handle.read()
        if data[:len(MAGIC_NUMBER)] != MAGIC_NUMBER:
            return None
        code = marshal.loads(data[len(MAGIC_NUMBER):])
    except (OSError, EOFError, ValueError, TypeError):
        return None
    return code if isinstance(code, types.CodeType) else None


def store(path, code, stale):
    """Keep `code` in `path` (written whole, then renamed: another run reads the old file or the new
    one, never half), and drop the module's files for other sources (names starting with `stale`).
    A cache that cannot be written costs the next run a compile, nothing else."""
    directory = os.path.dirname(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix='.new-', dir=directory)
    except OSError:
        return
    try:
        with os.fdopen(fd, 'wb') as handle:
            handle.write(MAGIC_NUMBER + marshal.dumps(code))
        os.rename(tmp, path)
        for entry in os.listdir(directory):
            if entry.startswith(stale) and entry != os.path.basename(path):
                os.unlink(os.path.join(directory, entry))
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass


def install(loader):
    """Put the Finder first in sys.meta_path, once, where this module came from a payload zip."""
    if zipimport is None or not isinstance(loader, zipimport.zipimporter):
        return False
    if any(isinstance(finder, Finder) for finder in sys.meta_path):
        return True
    directory = cache_dir()
    if directory is None:
        return False
    sys.meta_path.insert(0, Finder(directory))
    return True


install(globals().get('__loader__'))
