# -*- coding: utf-8 -*-
# Copyright: linuxnet.netns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Netlink transport and namespace switching: the lowest layer of the engine.

pyroute2 encodes and decodes every message; this layer only moves bytes. Its own socket classes
cost 0.1-0.4 ms per request (more on 0.9.x than on 0.7.x), which at thousands of requests per
run is most of the time, so requests to one namespace are pipelined in a single sendmsg and the
acks read back in one pass. The message classes are the same on pyroute2 0.7.2 and 0.9.x.

Namespaces are entered with setns(2) on the calling thread only long enough to open a socket or
a file there: a socket stays bound to the namespace it was created in, so one socket per
namespace is reused for the whole run.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ctypes
import errno
import importlib.util
import os
import socket
import struct
import sys

from ansible_collections.linuxnet.netns.plugins.module_utils import _wire

# pyroute2 is imported when first used, not at module start: its package import costs 0.3-0.4 s
# (it loads IPRoute, IPDB, NDB...), paid by every module run, while the rtnetlink hot path uses
# _wire and the raw parsers. nf_tables messages, and the reference the _wire encoders are tested
# against, come from pyroute2.
try:
    HAS_PYROUTE2 = importlib.util.find_spec('pyroute2') is not None
except (ImportError, ValueError, AttributeError):  # pragma: no cover
    HAS_PYROUTE2 = False
PYROUTE2_IMPORT_ERROR = None if HAS_PYROUTE2 else 'No module named pyroute2'

_MESSAGES = {
    'ifinfmsg': 'pyroute2.netlink.rtnl.ifinfmsg',
    'ifaddrmsg': 'pyroute2.netlink.rtnl.ifaddrmsg',
    'rtmsg': 'pyroute2.netlink.rtnl.rtmsg',
    'nsidmsg': 'pyroute2.netlink.rtnl.nsidmsg',
}


def pyroute2_module(name):
    """Import one pyroute2 submodule (pyroute2.netlink...) without pyroute2's package __init__,
    which imports IPRoute, NDB, IPDB and conntrack: half the cost of a module run's imports, for
    classes the engine never uses. The stand-in package is taken out again afterwards, so that an
    `import pyroute2` later in the same process gets the real one."""
    if 'pyroute2' in sys.modules:
        return importlib.import_module(name)
    spec = importlib.util.find_spec('pyroute2')
    if spec is None:
        raise ImportError('No module named pyroute2', name='pyroute2')
    package = importlib.util.module_from_spec(spec)  # not executed: only its __path__ is needed
    before = set(sys.modules)
    sys.modules['pyroute2'] = package
    try:
        return importlib.import_module(name)
    finally:
        # what was imported under the stand-in goes too: a later `import pyroute2.x` in the same
        # process then builds the real package and its submodules, attributes and all (the
        # engine keeps its references to the ones it got)
        for loaded in set(sys.modules) - before:
            if loaded == 'pyroute2' or loaded.startswith('pyroute2.'):
                del sys.modules[loaded]


def __getattr__(name):
    """pyroute2's rtnetlink message classes, imported on first use (PEP 562)."""
    if name in _MESSAGES:
        cls = getattr(pyroute2_module(_MESSAGES[name]), name)
        globals()[name] = cls
        return cls
    raise AttributeError(name)


NETNS_RUN_DIR = '/run/netns'

CLONE_NEWNET = 0x40000000
MS_BIND = 0x1000
MS_REC = 0x4000
MS_SHARED = 1 << 20
MNT_DETACH = 2

NETLINK_ROUTE = 0
NETLINK_NETFILTER = 12
SOL_NETLINK = 270
NETLINK_CAP_ACK = 10
NETLINK_EXT_ACK = 11

NLM_F_REQUEST = 0x1
NLM_F_MULTI = 0x2
NLM_F_ACK = 0x4
NLM_F_ROOT = 0x100
NLM_F_MATCH = 0x200
NLM_F_DUMP = NLM_F_ROOT | NLM_F_MATCH
NLM_F_REPLACE = 0x100
NLM_F_EXCL = 0x200
NLM_F_CREATE = 0x400
NLM_F_ACK_TLVS = 0x200

NLMSG_ERROR = 2
NLMSG_DONE = 3

RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK, RTM_SETLINK = 16, 17, 18, 19
RTM_NEWADDR, RTM_DELADDR, RTM_GETADDR = 20, 21, 22
RTM_NEWROUTE, RTM_DELROUTE, RTM_GETROUTE = 24, 25, 26
RTM_GETNSID = 90

IFF_UP = 0x1

# Keep one sendmsg well below the default socket send buffer and the acks of one batch well
# below the receive buffer, so that no ack is ever dropped (ENOBUFS).
MAX_BATCH_BYTES = 48 * 1024
MAX_BATCH_MSGS = 256

_HDR = struct.Struct('=IHHII')
_NLA = struct.Struct('=HH')


def attributes(data, offset, wanted=None):
    """{type: payload} of the netlink attributes in data[offset:] (nested flag masked off); with
    `wanted` (a set of types), only those: a link message carries some fifty attributes."""
    found = {}
    end = len(data)
    unpack = _NLA.unpack_from
    while offset + 4 <= end:
        length, kind = unpack(data, offset)
        if length < 4:
            break
        kind &= 0x3fff
        if wanted is None or kind in wanted:
            found[kind] = data[offset + 4:offset + length]
        offset += (length + 3) & ~3
    return found


def nla(kind, payload):
    """One encoded netlink attribute."""
    return _NLA.pack(4 + len(payload), kind) + payload + b'\0' * (-len(payload) % 4)


class NetlinkError(Exception):
    """A request the kernel refused: errno, the kernel's own extended-ack text, and what we asked."""

    def __init__(self, code, what, kernel_msg=None):
        self.code = code
        self.what = what
        self.kernel_msg = kernel_msg
        text = '%s: %s' % (what, os.strerror(code))
        if kernel_msg:
            text += ' (kernel: %s)' % kernel_msg
        super(NetlinkError, self).__init__(text)


class NamespaceError(Exception):
    pass


_libc = None


def libc():
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
        _libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong,
                                ctypes.c_void_p]
        _libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
    return _libc


def _check(ret, what):
    if ret != 0:
        code = ctypes.get_errno()
        raise OSError(code, '%s: %s' % (what, os.strerror(code)))


def setns(fd):
    _check(libc().setns(fd, CLONE_NEWNET), 'setns')


def netns_path(name):
    return os.path.join(NETNS_RUN_DIR, name)


class Request(object):
    """One encoded netlink message and the words that describe it in an error."""

    __slots__ = ('data', 'what', 'ignore')

    def __init__(self, data, what, ignore=()):
        self.data = data
        self.what = what
        self.ignore = ignore


def encode(cls, msg_type, flags, fields, attrs):
    msg = cls()
    for key, value in fields.items():
        msg[key] = value
    msg['attrs'] = attrs
    msg['header']['type'] = msg_type
    msg['header']['flags'] = flags | NLM_F_REQUEST
    msg.encode()
    return bytearray(msg.data)


def _ext_ack_text(data, offset, length, flags):
    """The kernel's extended ack message (NLMSGERR_ATTR_MSG) of an error, if it sent one."""
    if not flags & NLM_F_ACK_TLVS:
        return None
    # struct nlmsgerr: int error + the request's header (NETLINK_CAP_ACK: header only)
    pos = offset + 16 + 4 + 16
    end = offset + length
    while pos + 4 <= end:
        nla_len, nla_type = struct.unpack_from('=HH', data, pos)
        if nla_len < 4:
            break
        if nla_type & 0x3fff == 1:
            return bytes(data[pos + 4:pos + nla_len]).rstrip(b'\0').decode('utf-8', 'replace')
        pos += (nla_len + 3) & ~3
    return None


class Netlink(object):
    """A raw netlink socket (bound to the namespace it was opened in) with pipelined requests."""

    def __init__(self, protocol=NETLINK_ROUTE):
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, protocol)
        self.sock.bind((0, 0))
        self.sock.connect((0, 0))
        for opt in (NETLINK_CAP_ACK, NETLINK_EXT_ACK):
            try:
                self.sock.setsockopt(SOL_NETLINK, opt, 1)
            except OSError:
                pass
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, 33, 4 * 1024 * 1024)  # SO_RCVBUFFORCE
        except OSError:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
        self.seq = 0

    def close(self):
        self.sock.close()

    def _number(self, data):
        self.seq += 1
        struct.pack_into('=I', data, 8, self.seq)
        return self.seq

    _buffer = None

    def _recv(self):
        # recv_into one reused buffer: recv(1 MiB) would allocate and shrink a 1 MiB object per call
        if Netlink._buffer is None:
            Netlink._buffer = bytearray(1024 * 1024)
        size = self.sock.recv_into(Netlink._buffer)
        return bytes(Netlink._buffer[:size])

    def request(self, requests):
        """Send requests (each with NLM_F_ACK added), in as few sendmsg calls as the buffers allow.

        Stops at the first refused request that is not in its `ignore` list and raises
        NetlinkError for it; the requests after it in the same batch are still executed by the
        kernel only if they were already sent, which is why callers group requests so that a
        failure leaves nothing a re-run cannot repair.
        """
        start = 0
        while start < len(requests):
            end, size = start, 0
            while end < len(requests) and end - start < MAX_BATCH_MSGS and (
                    size + len(requests[end].data) <= MAX_BATCH_BYTES or end == start):
                size += len(requests[end].data)
                end += 1
            self._send_batch(requests[start:end])
            start = end

    def _send_batch(self, batch):
        pending = {}
        chunks = []
        for req in batch:
            data = bytearray(req.data)
            flags = struct.unpack_from('=H', data, 6)[0] | NLM_F_ACK
            struct.pack_into('=H', data, 6, flags)
            pending[self._number(data)] = req
            chunks.append(bytes(data))
        self.sock.send(b''.join(chunks))
        failures = []

        def ack(req, msg_type, flags, data, offset, length):
            code = -struct.unpack_from('=i', data, offset + 16)[0] if msg_type == NLMSG_ERROR else 0
            if code and code not in req.ignore:
                failures.append(NetlinkError(code, req.what, _ext_ack_text(data, offset, length, flags)))
        self._collect(pending, ack)
        if failures:
            raise failures[0]

    def _collect(self, pending, take):
        """Receive until each request in `pending` ({seq: what}) has its one answer (an ack, an
        error or the object a get asked for): take(what, msg_type, flags, data, offset, length)."""
        while pending:
            data = self._recv()
            offset = 0
            while offset + 16 <= len(data):
                length, msg_type, flags, seq, _pid = _HDR.unpack_from(data, offset)
                if length < 16:
                    break
                if seq in pending:
                    take(pending.pop(seq), msg_type, flags, data, offset, length)
                offset += (length + 3) & ~3

    def get_many(self, requests, batch_size=64):
        """Many gets (not dumps), `batch_size` to a sendmsg: [(msg_type, body)] -> the payload of
        each answer, or None where the kernel refused that one. A batch's answers (a link's is
        about 1 KiB) stay far below the smallest receive buffer we may get (rmem_max, when
        SO_RCVBUFFORCE is not allowed), so none is dropped."""
        answers = []
        for start in range(0, len(requests), batch_size):
            batch = requests[start:start + batch_size]
            seqs, chunks = [], []
            for msg_type, body in batch:
                data = _wire.message(msg_type, 0, body)
                seqs.append(self._number(data))
                chunks.append(bytes(data))
            self.sock.send(b''.join(chunks))
            found = [None] * len(batch)

            def answer(index, msg_type, _flags, data, offset, length, found=found):
                if msg_type != NLMSG_ERROR:
                    found[index] = data[offset + 16:offset + length]
            self._collect(dict((seq, index) for index, seq in enumerate(seqs)), answer)
            answers.extend(found)
        return answers

    def dump_raw(self, msg_type, body, flags=NLM_F_DUMP):
        """The payloads (bytes after the netlink header) of one dump or get, undecoded.

        `body` is the request after its header: the family struct and any attributes. Reading
        state is the hot path of a run: the callers parse only the few attributes they use,
        which costs a fraction of decoding every attribute of every message.
        """
        return [message[16:] for message in self._query(_wire.message(msg_type, flags, body))]

    def _query(self, data):
        """Send one get or dump request; its answer, as whole messages (header included)."""
        seq = self._number(data)
        self.sock.send(bytes(data))
        result = []
        while True:
            chunk = self._recv()
            offset = 0
            while offset + 16 <= len(chunk):
                length, mtype, mflags, mseq, _pid = _HDR.unpack_from(chunk, offset)
                if length < 16:
                    return result
                if mseq == seq:
                    if mtype == NLMSG_DONE:
                        return result
                    if mtype == NLMSG_ERROR:
                        code = -struct.unpack_from('=i', chunk, offset + 16)[0]
                        if code:
                            raise NetlinkError(code, 'netlink query', _ext_ack_text(chunk, offset, length, mflags))
                        return result
                    result.append(chunk[offset:offset + length])
                    if not mflags & NLM_F_MULTI:
                        return result
                offset += (length + 3) & ~3

    def dump(self, cls, msg_type, fields=None, attrs=None, flags=NLM_F_DUMP):
        """All messages of one dump (or one get), decoded by cls."""
        messages = []
        for raw in self._query(encode(cls, msg_type, flags, fields or {}, attrs or [])):
            msg = cls(raw)
            msg.decode()
            messages.append(msg)
        return messages


class Namespaces(object):
    """The namespaces of one run: where we came from, one netlink socket per namespace.

    `None` names the namespace the module runs in (the host's, as far as the user is concerned).
    """

    def __init__(self):
        self.home = os.open('/proc/thread-self/ns/net', os.O_RDONLY | os.O_CLOEXEC)
        self._sockets = {}
        self._nft = {}
        self._released = []  # sockets in namespaces delete() removed, until release()

    def close(self):
        self.release()
        for sock in list(self._sockets.values()) + list(self._nft.values()):
            sock.close()
        self._sockets.clear()
        self._nft.clear()
        os.close(self.home)

    # --- entering namespaces -------------------------------------------------------------
    def open_fd(self, name):
        try:
            return os.open(netns_path(name), os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                raise NamespaceError('network namespace %r does not exist (no %s)' % (name, netns_path(name)))
            raise

    def run_in(self, name, func):
        """Call func() with this thread inside namespace `name` (None: where we started)."""
        if name is None:
            return func()
        fd = self.open_fd(name)
        try:
            setns(fd)
        finally:
            os.close(fd)
        try:
            return func()
        finally:
            setns(self.home)

    def rtnl(self, name):
        sock = self._sockets.get(name)
        if sock is None:
            sock = self._sockets[name] = self.run_in(name, Netlink)
        return sock

    def nfnl(self, name):
        sock = self._nft.get(name)
        if sock is None:
            sock = self._nft[name] = self.run_in(name, lambda: Netlink(NETLINK_NETFILTER))
        return sock

    # --- named namespaces (the /run/netns files that `ip netns` uses too) -------------------
    @staticmethod
    def mounted():
        """Names of the namespaces mounted under /run/netns. A bare file there (a half-made or
        half-removed namespace) is not one."""
        found = []
        prefix = NETNS_RUN_DIR + '/'
        with open('/proc/thread-self/mountinfo') as mounts:
            for line in mounts:
                head, _sep, tail = line.partition(' - ')
                mount_point = head.split()[4]
                if tail.split()[0] == 'nsfs' and mount_point.startswith(prefix):
                    name = mount_point[len(prefix):]
                    if '/' not in name:
                        found.append(name.replace('\\040', ' '))
        return sorted(set(found))

    @staticmethod
    def _prepare_run_dir():
        """Make /run/netns a shared mount point, as `ip netns add` does, so that namespaces we
        mount are seen by every mount namespace that shares it (and the other way round)."""
        if not os.path.isdir(NETNS_RUN_DIR):
            os.makedirs(NETNS_RUN_DIR, 0o755)
        lib = libc()
        path = NETNS_RUN_DIR.encode()
        if lib.mount(b'none', path, b'none', MS_SHARED | MS_REC, None) == 0:
            return
        if ctypes.get_errno() != errno.EINVAL:
            _check(-1, 'mount --make-shared %s' % NETNS_RUN_DIR)
        _check(lib.mount(path, path, b'none', MS_BIND | MS_REC, None), 'mount --bind %s' % NETNS_RUN_DIR)
        _check(lib.mount(b'none', path, b'none', MS_SHARED | MS_REC, None), 'mount --make-shared %s' % NETNS_RUN_DIR)

    _run_dir_ready = False

    def create(self, name):
        """Create a named namespace; returns its netlink socket (opened inside, no extra setns)."""
        if not self._run_dir_ready:
            self._prepare_run_dir()
            Namespaces._run_dir_ready = True
        path = netns_path(name)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o444)
        except OSError as exc:
            if exc.errno != errno.EEXIST or name in self.mounted():
                raise
            # a bare file, no namespace mounted on it: left by a run killed between the two steps
            # (or by `ip netns add` killed likewise); the caller holds the lock, so take it over
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        os.close(fd)
        lib = libc()
        try:
            _check(lib.unshare(CLONE_NEWNET), 'unshare(CLONE_NEWNET)')
        except OSError:
            os.unlink(path)
            raise
        try:
            _check(lib.mount(b'/proc/thread-self/ns/net', path.encode(), b'none', MS_BIND, None),
                   'mount --bind %s' % path)
            sock = self._sockets[name] = Netlink()
        except Exception:
            setns(self.home)
            self._unmount(path)
            raise
        setns(self.home)
        return sock

    @staticmethod
    def _unmount(path):
        lib = libc()
        if lib.umount2(path.encode(), MNT_DETACH) != 0 and ctypes.get_errno() not in (errno.EINVAL, errno.ENOENT):
            _check(-1, 'umount %s' % path)
        try:
            os.unlink(path)
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                raise

    def delete(self, name):
        """Remove the name; our sockets in the namespace are closed by release(), once every
        namespace of the run is unmounted: closing them sets the kernel's teardown of the
        namespaces going, and an umount that competes with it costs ten times the CPU (0.3 s
        for a thousand namespaces instead of 0.03 s; the teardown itself takes as long)."""
        self._unmount(netns_path(name))
        for cache in (self._sockets, self._nft):
            sock = cache.pop(name, None)
            if sock is not None:
                self._released.append(sock)

    def release(self):
        """Close the sockets of the namespaces delete() removed."""
        while self._released:
            self._released.pop().close()

    def inode(self, name):
        return os.stat(netns_path(name)).st_ino if name is not None else os.fstat(self.home).st_ino


def holders(inodes, nsfs_dev=None):
    """{inode: [(pid, how), ...]}: what keeps each of these namespaces alive besides its name - a
    process inside it, a process holding a descriptor of it (as container runtimes do), or another
    mount of it (pid 0, how = the mount point)."""
    found = {}
    if not inodes:
        return found
    wanted = set(inodes)
    targets = dict(('net:[%d]' % ino, ino) for ino in wanted)
    if nsfs_dev is None:
        nsfs_dev = os.stat('/proc/self/ns/net').st_dev
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        pid = int(entry)
        try:
            ino = os.stat('/proc/%s/ns/net' % entry).st_ino
        except OSError:
            continue
        if ino in wanted:
            found.setdefault(ino, []).append((pid, 'inside'))
        try:
            fds = os.listdir('/proc/%s/fd' % entry)
        except OSError:
            continue
        for fd in fds:
            path = '/proc/%s/fd/%s' % (entry, fd)
            try:
                target = os.readlink(path)
                # a descriptor opened through a mount shows its path; only stat tells the inode
                if target.startswith(('socket:', 'pipe:', 'anon_inode:', '/dev/')) or pid == os.getpid():
                    continue
                info = os.stat(path)
            except OSError:
                continue
            if info.st_ino in wanted and info.st_dev == nsfs_dev:
                found.setdefault(info.st_ino, []).append((pid, 'descriptor'))
    with open('/proc/self/mountinfo') as mounts:
        for line in mounts:
            head, _sep, tail = line.partition(' - ')
            fields = head.split()
            if tail.split()[0] == 'nsfs' and fields[3] in targets and not fields[4].startswith(NETNS_RUN_DIR + '/'):
                found.setdefault(targets[fields[3]], []).append((0, fields[4]))
    return found


def capabilities():
    """The effective capability mask of this process."""
    with open('/proc/self/status') as status:
        for line in status:
            if line.startswith('CapEff:'):
                return int(line.split()[1], 16)
    return 0


CAP_NET_ADMIN = 12
CAP_SYS_ADMIN = 21
