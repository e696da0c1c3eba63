# -*- coding: utf-8 -*-
# Copyright: linuxnet.netns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
# Do not use this from other collections or standalone plugins/modules!
"""Netlink transport and namespace switching: sockets, entering namespaces, one receive loop,
batches. It moves bytes; _codec and _nft_codec say what they mean.

pyroute2's own socket classes cost 0.1-0.4 ms per request (more on 0.9.x than on 0.7.x), which at
thousands of requests per run is most of the time, so requests to one namespace are pipelined in
a single sendmsg and the answers read back in one pass.

Namespaces are entered with setns(2) on the calling thread only long enough to open a socket or
a file there: a socket stays bound to the namespace it was created in, so a socket per namespace
is reused for the run - up to a bound (MAX_SOCKETS, below), so that the descriptors a run holds
stay bounded however many namespaces it touches.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import collections
import ctypes
import errno
import fcntl
import gc
import marshal
import mmap
import os
import resource
import select
import signal
import socket
import struct
import threading
import time

from ansible_collections.linuxnet.netns.plugins.module_utils import _codec as C

NETNS_RUN_DIR = '/run/netns'

CLONE_NEWNET = 0x40000000
MS_BIND = 0x1000
MS_REC = 0x4000
MS_SHARED = 1 << 20
MNT_DETACH = 2
SIOCGIFINDEX = 0x8933
_IFREQ = struct.Struct('16si20x')  # struct ifreq: the name, then (a union of 24 bytes) the index
SIOCETHTOOL = 0x8946
_IFREQ_DATA = struct.Struct('16sP16x')  # struct ifreq with ifr_data: a pointer to the ethtool command
_ETHTOOL_VALUE = struct.Struct('II')  # struct ethtool_value: cmd, data
_ETHTOOL_GLINK = _ETHTOOL_VALUE.pack(0x0000000a, 0)
CAP_NET_ADMIN = 12
CAP_SYS_ADMIN = 21

# Keep one sendmsg well below the default socket send buffer and the acks of one batch well
# below the receive buffer, so that no ack is ever dropped (ENOBUFS).
MAX_BATCH_BYTES = 48 * 1024
MAX_BATCH_MSGS = 256

# Descriptors, bounded by a constant whatever the number of namespaces a run touches and whatever
# the limit on open files allows (ENGINE_DESCRIPTORS: 224, below 256):
# - sockets, one per namespace and protocol (rtnetlink, nfnetlink), up to MAX_SOCKETS each; beyond
#   that the least recently used is closed. Reopening one costs about 20 us (open, setns, socket,
#   setns back) and the apply visits the namespaces stage after stage, so a bound below the number
#   of namespaces costs that at every stage: at 1000 namespaces this bound of 80 against none cost
#   12-21% of a converge's module CPU time (1.58 s -> 1.78-1.92 s, bench/compare.py, best of 5 and
#   of 3 on a busy 2-core machine; re-run and teardown within the noise) - the price of a run that
#   holds the same descriptors at ten thousand namespaces as at a hundred. The settings, addresses
#   and routes, most of a converge's visits, go a group of namespaces at a time instead, each
#   group as large as this bound allows (_apply._apply_local): one socket a namespace for the three;
# - namespace descriptors for requests that name a namespace (IFLA_NET_NS_FD), MAX_NS_FDS at once:
#   the apply sends what it has built before it opens more (see _apply.Resolver);
# - the descriptors a reader holds to learn namespace ids, MAX_LOOKUP_FDS at once (_state).
# Where the soft limit on open files leaves less room (the module raises it to the hard limit
# first), the first two shrink to fit: descriptor_budget(); below MIN_NOFILE a run is refused
# before it changes anything.
MAX_SOCKETS = 80
MAX_NS_FDS = 32
MAX_LOOKUP_FDS = 32
MIN_SOCKETS = MIN_NS_FDS = 8
# what the rest of the process may hold meanwhile: the lookups above, and Python's and Ansible's
# own files, pipes and the lock
RESERVED_FDS = MAX_LOOKUP_FDS + 64
ENGINE_DESCRIPTORS = 2 * MAX_SOCKETS + MAX_NS_FDS + MAX_LOOKUP_FDS
MIN_NOFILE = 2 * MIN_SOCKETS + MIN_NS_FDS + RESERVED_FDS


def descriptor_budget(soft_limit=None):
    """(sockets kept per protocol, namespace descriptors held for requests) that fit under the
    soft limit on open files, up to (MAX_SOCKETS, MAX_NS_FDS)."""
    if soft_limit is None:
        soft_limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft_limit == resource.RLIM_INFINITY or soft_limit >= RESERVED_FDS + MAX_NS_FDS + 2 * MAX_SOCKETS:
        return MAX_SOCKETS, MAX_NS_FDS
    room = max(0, soft_limit - RESERVED_FDS)
    ns_fds = max(MIN_NS_FDS, min(MAX_NS_FDS, room // 4))
    return max(MIN_SOCKETS, min(MAX_SOCKETS, (room - ns_fds) // 2)), ns_fds


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


class Taken(Exception):
    """The name of a namespace to make is taken already, while this process and a child make
    namespaces at once (Namespaces.sharing): made by the other - or a bare file left by a run
    killed half-way, taken over once the child is done."""


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


class Behind(threading.Thread):
    """Runs `work` on a thread of its own from now on; result() waits for it, and returns what it
    returned or raises what it raised. The work must share nothing with the caller meanwhile (a
    socket of its own: see Namespaces.dump_apart)."""

    def __init__(self, work):
        super(Behind, self).__init__()
        self.daemon = True  # a run that fails meanwhile does not wait for it
        self.work, self.value, self.error = work, None, None
        self.start()

    def run(self):
        try:
            self.value = self.work()
        except BaseException as exc:  # pylint: disable=broad-except  # handed to result()
            self.error = exc

    def result(self):
        self.join()
        if self.error is not None:
            raise self.error
        return self.value


class Apart(object):
    """Runs work(send) in a child process (fork) from now on: work that is mostly the kernel's -
    dumps of many namespaces, or their making - done beside the caller's, on the machine's other
    core. A thread would not do: it runs Python under the interpreter's lock, handed over at each
    of its system calls, and two threads reading namespaces took twice as long as one (two
    processes: half).

    The child passes values to the caller with send(value), made of what marshal carries (bytes,
    numbers, None, lists, tuples, dicts), through a pipe: received() gives those come so far,
    without waiting - the caller takes them between its own steps, while the child goes on -
    and rest() the others as they come, until the child ends. A value is whole or not given; a
    child that fails ends early, and what it did not send the caller does itself.

    start() returns None where no child is to be had (other threads running, whose locks a
    child would inherit held; no process to be had). The child shares nothing with the caller
    but what it was forked with: it opens sockets of its own, exits without the caller's exit
    handlers or buffered output, and is killed if the caller dies first (PR_SET_PDEATHSIG)."""

    PIPE_SIZE = 1024 * 1024  # the pipe's buffer, where the kernel allows it (F_SETPIPE_SZ)

    def __init__(self, pid, fd):
        self.pid, self.fd = pid, fd
        self._pending = bytearray()
        self._ended = False

    @classmethod
    def start(cls, work):
        if threading.active_count() > 1:
            return None
        read_end, write_end = os.pipe()
        try:
            fcntl.fcntl(write_end, F_SETPIPE_SZ, cls.PIPE_SIZE)
        except (IOError, OSError):
            pass  # the default buffer: the child waits for the caller more often
        parent = os.getpid()
        try:
            pid = os.fork()
        except OSError:
            os.close(read_end)
            os.close(write_end)
            return None
        if pid == 0:
            code = 1
            try:
                # the collector would walk every object the child was forked with, copying each
                # page the parent shares with it: the child's own objects are few and short-lived
                gc.disable()
                os.close(read_end)
                libc().prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
                if os.getppid() == parent:  # else the caller is gone already

                    def send(value):
                        data = marshal.dumps(value)
                        data = memoryview(_FRAME.pack(len(data)) + data)
                        while data:
                            data = data[os.write(write_end, data):]
                    work(send)
                    code = 0
            finally:
                os._exit(code)  # pylint: disable=protected-access  # a forked child's only way out
        os.close(write_end)
        fl = fcntl.fcntl(read_end, fcntl.F_GETFL)
        fcntl.fcntl(read_end, fcntl.F_SETFL, fl | os.O_NONBLOCK)
        return cls(pid, read_end)

    def received(self):
        """The values the child has sent since the last call, without waiting."""
        self.drain()
        return self._values()

    def drain(self):
        """Take what the pipe holds, without waiting: the child, whose writes wait once the pipe
        is full, goes on meanwhile; received() or rest() give the values later."""
        while not self._ended:
            try:
                data = os.read(self.fd, self.PIPE_SIZE)
            except (IOError, OSError) as exc:
                if exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK):
                    return
                raise
            if not data:
                self._ended = True
            self._pending += data

    def _values(self):
        values, pending, offset = [], self._pending, 0
        while len(pending) - offset >= _FRAME.size:
            size = _FRAME.unpack_from(pending, offset)[0]
            if len(pending) - offset - _FRAME.size < size:
                break
            start = offset + _FRAME.size
            values.append(marshal.loads(bytes(pending[start:start + size])))
            offset = start + size
        del pending[:offset]
        return values

    def rest(self):
        """The values the child sends from now on, as they come (a generator), until it ends:
        between two, what the pipe holds is taken from it, so that the child never waits for
        what the caller does with each. The child is waited for at the end."""
        try:
            while True:
                values = self.received()
                for value in values:
                    yield value
                    self.drain()
                if self._ended and not values:
                    return
                if not values:
                    select.select([self.fd], [], [])
        finally:
            self._close()

    def _close(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
            os.waitpid(self.pid, 0)

    def abandon(self):
        """Kill the child and wait for it (the caller failed meanwhile)."""
        try:
            os.kill(self.pid, signal.SIGKILL)
        except OSError:
            pass
        self._close()


F_SETPIPE_SZ = 1031
_FRAME = struct.Struct('=I')
PR_SET_PDEATHSIG = 1
_SPLIT = struct.Struct('=q')


class Split(object):
    """Items 0..count-1 shared out between this process, which takes them from the first up, and a
    child (Apart), which takes them from the last down: each claims an item before it does it,
    and stops at the first the other has claimed. Two words in memory both processes share: the
    first item this process has not claimed, the last the child has.

    Claiming is a store then a load of the other's word, without a lock: where both claim the
    same item at once, both may do it (the caller keeps one), or neither (the caller, seeing it
    done by none, does it then) - never a wrong answer, at most one item of work twice."""

    def __init__(self, count):
        self.shared = mmap.mmap(-1, 2 * _SPLIT.size)  # anonymous and shared: the child writes here too
        _SPLIT.pack_into(self.shared, 0, 0)
        _SPLIT.pack_into(self.shared, _SPLIT.size, count)

    def mine(self, index):
        """This process claims item `index` (ascending); False once the child has it."""
        _SPLIT.pack_into(self.shared, 0, index + 1)
        return index < _SPLIT.unpack_from(self.shared, _SPLIT.size)[0]

    def theirs(self, index):
        """The child claims item `index` (descending); False once this process has it."""
        _SPLIT.pack_into(self.shared, _SPLIT.size, index)
        return index >= _SPLIT.unpack_from(self.shared, 0)[0]


def setns(fd):
    _check(libc().setns(fd, CLONE_NEWNET), 'setns')


def netlink_through(fd, home, protocol=C.NETLINK_ROUTE):
    """A netlink socket opened in the namespace of descriptor `fd`; the thread then goes back to
    the namespace of descriptor `home`."""
    setns(fd)
    try:
        return Netlink(protocol)
    finally:
        setns(home)


def netns_path(name):
    return os.path.join(NETNS_RUN_DIR, name)


class Request(object):
    """One encoded netlink message and the words that describe it in an error."""

    __slots__ = ('data', 'what', 'ignore')

    def __init__(self, data, what, ignore=()):
        self.data = data
        self.what = what
        self.ignore = ignore


# in the header of a message: its flags and sequence number; after an NLMSG_ERROR's header, its errno
_FLAGS = struct.Struct('=H')
_SEQ = C.U32
_ERRNO = C.ERROR
_MULTI = C.NLM_F_MULTI
_DONE, _ERROR = C.NLMSG_DONE, C.NLMSG_ERROR
_CONTROL = (_DONE, _ERROR)
_unpack_header = C.HEADER.unpack_from
DUMP_ATTEMPTS = 5
DUMP_RETRY_DELAY = 0.005  # seconds, times the attempt: 5 ms, 10 ms ... 50 ms in all


class Netlink(object):
    """A raw netlink socket (bound to the namespace it was opened in) with pipelined requests."""

    def __init__(self, protocol=C.NETLINK_ROUTE):
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, protocol)
        self.sock.bind((0, 0))
        self.sock.connect((0, 0))
        for opt in (C.NETLINK_CAP_ACK, C.NETLINK_EXT_ACK):
            try:
                self.sock.setsockopt(C.SOL_NETLINK, opt, 1)
            except OSError:
                pass
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, 33, 4 * 1024 * 1024)  # SO_RCVBUFFORCE
        except OSError:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
        self.seq = 0

    def close(self):
        self.sock.close()

    def index_of(self, name):
        """The index of interface `name` in the socket's namespace: SIOCGIFINDEX, which any socket
        answers from the kernel's table of names. A get by name would have the kernel fill in the
        whole link - for a veth end on the host, a walk through the host's ids of every other
        namespace (peernet2id), the biggest cost of a thousand ends' addresses."""
        try:
            reply = fcntl.ioctl(self.sock.fileno(), SIOCGIFINDEX, _IFREQ.pack(name.encode(), 0))
        except (IOError, OSError) as exc:
            raise NetlinkError(exc.errno, 'look up the index of interface %s' % name)
        return _IFREQ.unpack(reply)[1]

    def settle(self, name):
        """Have the kernel do now the link-state work it has pending for interface `name`
        (linkwatch_sync_dev, which ETHTOOL_GLINK does first, as a netlink get does): until its
        worker gets to it, an end brought up after its peer reports no state, and sends nothing
        (its queues wait to be started). Returns the link state the driver reports (True, False),
        or None where the call failed: an interface without it is left alone, and nothing of the
        run depends on the answer."""
        value = ctypes.create_string_buffer(_ETHTOOL_GLINK, _ETHTOOL_VALUE.size)
        try:
            fcntl.ioctl(self.sock.fileno(), SIOCETHTOOL, _IFREQ_DATA.pack(name.encode(), ctypes.addressof(value)))
        except (IOError, OSError):
            return None
        return bool(_ETHTOOL_VALUE.unpack(value.raw)[1])

    def _number(self, data):
        self.seq += 1
        _SEQ.pack_into(data, 8, self.seq)  # nlmsghdr.nlmsg_seq
        return self.seq

    # recv_into one reused buffer: recv(1 MiB) would allocate and shrink a 1 MiB object per call
    _buffer = None

    def _receive(self, take, timeout=None, seq=None, parts=None):
        """The one receive loop: every message that comes goes to
        take(msg_type, flags, seq, data, offset, length), until it returns True - except, given
        `parts` (a list), the parts of a multipart answer to request `seq`, which are appended to
        it whole: a dump's bulk, taken without a call per message.

        Without `timeout`, it waits as long as it takes and stops at that message. With one, it
        waits at most `timeout` seconds in all (OSError ETIMEDOUT), and once take() returned True
        it reads on, without waiting, whatever else is queued (the other answers of a batch).
        """
        buffer = self._buffer  # a socket's own (one a thread reads), or the one all others share
        if buffer is None:
            buffer = Netlink._buffer = bytearray(1024 * 1024)
        deadline = None if timeout is None else time.monotonic() + timeout
        finished = False
        unpack = _unpack_header
        while True:
            if deadline is None:
                size = self.sock.recv_into(buffer)
            else:
                try:
                    size = self.sock.recv_into(buffer, 0, socket.MSG_DONTWAIT)
                except (OSError, socket.error) as exc:
                    if exc.errno not in (errno.EAGAIN, errno.EWOULDBLOCK):
                        raise
                    if finished:
                        return
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise OSError(errno.ETIMEDOUT, os.strerror(errno.ETIMEDOUT))
                    select.select([self.sock], [], [], left)
                    continue
            data = bytes(buffer[:size])
            offset = 0
            while offset + 16 <= size:
                length, msg_type, flags, mseq, _pid = unpack(data, offset)
                if length < 16:
                    break
                if parts is not None and mseq == seq and flags & _MULTI and msg_type not in _CONTROL:
                    parts.append(data[offset:offset + length])
                elif take(msg_type, flags, mseq, data, offset, length):
                    if deadline is None:
                        return
                    finished = True
                offset += (length + 3) & ~3

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
            self._send_acked(requests[start:end])
            start = end

    def _send_acked(self, batch):
        pending = {}
        chunks = []
        for req in batch:
            data = bytearray(req.data)
            _FLAGS.pack_into(data, 6, _FLAGS.unpack_from(data, 6)[0] | C.NLM_F_ACK)  # nlmsghdr.nlmsg_flags
            pending[self._number(data)] = req
            chunks.append(bytes(data))
        self.sock.send(b''.join(chunks))
        failures = []

        def ack(msg_type, flags, seq, data, offset, length):
            # each request has its one answer: an ack, or an error
            req = pending.pop(seq, None)
            if req is not None and msg_type == _ERROR:
                code = -_ERRNO.unpack_from(data, offset + 16)[0]
                if code and code not in req.ignore:
                    failures.append(NetlinkError(code, req.what, C.ext_ack_text(data, offset, length, flags)))
            return not pending
        self._receive(ack)
        if failures:
            raise failures[0]

    def get_many(self, requests, batch_size=64):
        """Many gets (not dumps), `batch_size` to a sendmsg: [(msg_type, body)] -> the payload of
        each answer, or None where the kernel refused that one. A batch's answers (a link's is
        about 1 KiB) stay far below the smallest receive buffer we may get (rmem_max, when
        SO_RCVBUFFORCE is not allowed), so none is dropped."""
        answers = []
        for start in range(0, len(requests), batch_size):
            batch = requests[start:start + batch_size]
            index_of, chunks = {}, []
            for index, (msg_type, body) in enumerate(batch):
                data = C.message(msg_type, 0, body)
                index_of[self._number(data)] = index
                chunks.append(bytes(data))
            self.sock.send(b''.join(chunks))
            found = [None] * len(batch)

            self._receive(_answers_into(found, index_of))
            answers.extend(found)
        return answers

    def dump_raw(self, msg_type, body, flags=C.NLM_F_DUMP):
        """The payloads (bytes after the netlink header) of one dump or get, undecoded.

        `body` is the request after its header: the family struct and any attributes. Reading
        state is the hot path of a run: the callers parse only the few attributes they use,
        which costs a fraction of decoding every attribute of every message.
        """
        return [message[16:] for message in self.query(C.message(msg_type, flags, body))]

    def query(self, data):
        """Send one get or dump request (an encoded message); its answer, as whole messages
        (header included). A refusal raises NetlinkError. A dump the kernel marks interrupted (what
        it lists changed meanwhile: links still getting their addresses) is asked again, a few
        milliseconds later, up to DUMP_ATTEMPTS times in all, so that a plan is not made from a
        half-old, half-new list; still interrupted after that, it raises NetlinkError (EINTR)."""
        if _FLAGS.unpack_from(data, 6)[0] & C.NLM_F_DUMP != C.NLM_F_DUMP:
            return self._query(data)[0]
        for attempt in range(DUMP_ATTEMPTS):
            if attempt:
                # the change the kernel saw is mostly one burst (a thousand new links getting
                # their link-local addresses): asking again at once would likely meet it again
                time.sleep(DUMP_RETRY_DELAY * attempt)
            result, interrupted, _answer = self._query(data)
            if not interrupted:
                return result
        raise NetlinkError(errno.EINTR, 'netlink dump of message type %d, marked interrupted by the kernel %d times '
                                        'in a row (what it lists kept changing while it was read)'
                           % (C.HEADER.unpack_from(data)[1], DUMP_ATTEMPTS))

    def dump_with_get(self, dump, get):
        """A dump and a get (encoded messages) in one sendmsg: the dump's answer as query() gives
        it, and the get's payload (a refusal of either raises NetlinkError). The kernel answers a
        get at once, even beside a dump it is still running (a second dump on the socket it
        refuses, EBUSY), so the pair costs one round trip. The get is answered after the dump's
        first part is made (as if asked after a dump that fits one part). A dump the kernel marks
        interrupted is asked again through query(), with its retries."""
        result, interrupted, answer = self._query(dump, get)
        if interrupted:
            result = self.query(dump)
        return [message[16:] for message in result], answer

    def _query(self, data, get=None):
        """One request's answer, and whether the kernel marked it interrupted (any part, or only
        its NLMSG_DONE); with `get`, a get sent after it in the same sendmsg, whose payload comes
        third (a veth's peer namespace gets its id when a dump reports it: the dump goes first).
        """
        seq = self._number(data)
        get_seq = self._number(get) if get is not None else None
        self.sock.send(bytes(data) + (bytes(get) if get is not None else b''))
        result, answer, failure, interrupted = [], [], [], []
        waiting = set([seq] if get is None else [seq, get_seq])

        def end(msg_type, flags, mseq, chunk, offset, length):
            # the parts of a dump go straight into `result`: here come its end, or a single answer
            if mseq not in waiting:
                return False
            waiting.discard(mseq)
            if msg_type == _ERROR:
                code = -_ERRNO.unpack_from(chunk, offset + 16)[0]
                if code:
                    failure.append(NetlinkError(code, 'netlink query', C.ext_ack_text(chunk, offset, length, flags)))
            elif mseq == get_seq:
                answer.append(chunk[offset + 16:offset + length])
            elif msg_type != _DONE:
                result.append(chunk[offset:offset + length])
            elif flags & C.NLM_F_DUMP_INTR:
                interrupted.append(True)
            return not waiting
        self._receive(end, None, seq, result)
        if failure:
            raise failure[0]
        interrupted = bool(interrupted) or any(_FLAGS.unpack_from(message, 6)[0] & C.NLM_F_DUMP_INTR
                                               for message in result)
        return result, interrupted, (answer[0] if answer else None)

    def send_batch(self, messages):
        """Send encoded messages in one sendmsg, as an nfnetlink batch must go (the kernel takes
        it whole or not at all); their sequence numbers, in order."""
        seqs = [self._number(data) for data in messages]
        payload = b''.join(bytes(data) for data in messages)
        current = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)
        if len(payload) + 1024 > current:
            try:
                self.sock.setsockopt(socket.SOL_SOCKET, 32, len(payload) + 4096)  # SO_SNDBUFFORCE
            except OSError:
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, len(payload) + 4096)
        self.sock.send(payload)
        return seqs

    def batch_answers(self, seqs, timeout):
        """The answers to a batch send_batch() sent: {index in the batch: (errno, kernel text)},
        errno 0 for an ack.

        Waits for the answer to the last message before END (the one that asks for an ack, so its
        answer comes after all others) or for an error answering BEGIN or END (a batch-wide
        failure, which may come alone), then takes what else is queued. OSError ETIMEDOUT if
        neither comes within `timeout` seconds, ENOBUFS if the answers overflowed the buffer.
        """
        index_of = dict((seq, index) for index, seq in enumerate(seqs))
        last, whole = seqs[-2], (seqs[0], seqs[-1])
        answers = {}

        def take(msg_type, flags, seq, data, offset, length):
            if msg_type != _ERROR or seq not in index_of:
                return False
            code = -_ERRNO.unpack_from(data, offset + 16)[0]
            answers[index_of[seq]] = (code, C.ext_ack_text(data, offset, length, flags))
            return seq == last or bool(code and seq in whole)
        self._receive(take, timeout)
        return answers


class _Sockets(collections.OrderedDict):
    """Sockets by namespace, least recently used first, closed beyond `capacity`."""

    def __init__(self, capacity):
        super(_Sockets, self).__init__()
        self.capacity = capacity

    def put(self, name, sock):
        self[name] = sock
        while len(self) > self.capacity:
            self.popitem(last=False)[1].close()
        return sock


def raise_nofile():
    """The soft limit on open files raised to the hard one (the engine's descriptors are bounded,
    _transport.ENGINE_DESCRIPTORS, but fewer of them cost time at large N); the limit then, or None
    when there is none."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    return None if soft == resource.RLIM_INFINITY else soft


class Lock(object):
    """Serialises runs on one host: flock on /run/netns itself, so no lock file is left behind."""

    def __init__(self, exclusive):
        self.exclusive = exclusive
        self.fd = None

    def __enter__(self):
        if not os.path.isdir(NETNS_RUN_DIR):
            os.makedirs(NETNS_RUN_DIR, 0o755)
        self.fd = os.open(NETNS_RUN_DIR, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        fcntl.flock(self.fd, fcntl.LOCK_EX if self.exclusive else fcntl.LOCK_SH)
        return self

    def __exit__(self, *exc):
        os.close(self.fd)


class Namespaces(object):
    """The namespaces of one run: where we came from, a netlink socket per namespace.

    `None` names the namespace the module runs in (the host's, as far as the user is concerned).
    """

    def __init__(self, budget=None):
        self.home = os.open('/proc/thread-self/ns/net', os.O_RDONLY | os.O_CLOEXEC)
        # sockets kept per protocol; namespace descriptors an apply may hold (_apply.Resolver)
        self.max_sockets, self.max_ns_fds = budget or descriptor_budget()
        self._sockets = _Sockets(self.max_sockets)
        self._nft = _Sockets(self.max_sockets)
        self._released = []  # sockets in namespaces delete() removed, until release()
        self._unmounting = []  # their names, until release()

    def close(self):
        self.release()
        for sock in list(self._sockets.values()) + list(self._nft.values()):
            sock.close()
        self._sockets.clear()
        self._nft.clear()
        os.close(self.home)

    # --- entering namespaces -------------------------------------------------------------
    def open_fd(self, name):
        """A descriptor of namespace `name` (the caller closes it with close_fd)."""
        try:
            return os.open(netns_path(name), os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                raise NamespaceError('network namespace %r does not exist (no %s)' % (name, netns_path(name)))
            raise

    @staticmethod
    def close_fd(fd):
        os.close(fd)

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

    def write_proc(self, name, path, text):
        """Write a /proc/sys file inside namespace `name`."""
        def write():
            with open(path, 'w') as handle:
                handle.write(text)
        self.run_in(name, write)

    def conntrack_delete(self, name, proto, version, dport):
        """Delete the conntrack entries of namespace `name` whose original tuple has IP protocol
        `proto` (a number), IP `version` and destination port `dport`; how many went. An entry
        gone meanwhile (ENOENT) is skipped. The dump walks a hash all namespaces share (~12 ms
        even for nothing), so a namespace with no entries is not dumped at all."""
        count = self.run_in(name, lambda: _read_text('/proc/sys/net/netfilter/nf_conntrack_count'))
        if count is not None and count.strip() == '0':
            return 0
        family = socket.AF_INET if version == 4 else socket.AF_INET6
        sock = self.nfnl(name)
        found = C.ct_matches(sock.dump_raw(C.IPCTNL_MSG_CT_GET, C.ct_dump_request(family, proto, dport)),
                             family, proto, dport)
        sock.request([Request(C.message(C.IPCTNL_MSG_CT_DELETE, 0, body), 'delete ' + what, ignore=(errno.ENOENT,))
                      for what, body in found])
        return len(found)

    def rtnl(self, name):
        """The rtnetlink socket of namespace `name`; use it at once (it may be closed later to
        make room for others)."""
        sock = self._sockets.get(name)
        if sock is None:
            return self._sockets.put(name, self.run_in(name, Netlink))
        self._sockets.move_to_end(name)
        return sock

    def dump_apart(self, msg_type, body):
        """A dump of the namespace the module runs in, for a thread (Behind) to make: a socket and a
        receive buffer of its own, opened here (the thread that calls this is in that namespace),
        closed once the dump is read. Returns what the thread runs; it returns dump_raw()'s list."""
        sock = Netlink()
        sock._buffer = bytearray(1024 * 1024)

        def run():
            try:
                return sock.dump_raw(msg_type, body)
            finally:
                sock.close()
        return run

    def open_with_rtnl(self, name):
        """A descriptor of namespace `name` (the caller closes it with close_fd), with its
        rtnetlink socket opened through that descriptor if there is none yet: a reader that wants
        both (the namespace's state, and the id another namespace knows it by) opens it once."""
        fd = self.open_fd(name)
        try:
            if name not in self._sockets:
                self._sockets.put(name, netlink_through(fd, self.home))
        except BaseException:
            os.close(fd)
            raise
        return fd

    def nfnl(self, name):
        """The nfnetlink socket of namespace `name`, as rtnl()."""
        sock = self._nft.get(name)
        if sock is None:
            return self._nft.put(name, self.run_in(name, lambda: Netlink(C.NETLINK_NETFILTER)))
        self._nft.move_to_end(name)
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
    # what a session changes is the kernel's (and the file system's), which a forked child changes
    # as well: _apply may share a stage's calls with one (a stand-in session of tests may not)
    forkable = True
    # while this process and a child make namespaces at once: a name file found is the other's
    # (Taken), not one to take over
    sharing = False

    def create(self, name):
        """Create a named namespace; returns its netlink socket (opened inside, no extra setns)."""
        if not self._run_dir_ready:
            self._prepare_run_dir()
            Namespaces._run_dir_ready = True
        path = netns_path(name)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o444)
        except OSError as exc:
            if exc.errno == errno.EEXIST and self.sharing:
                raise Taken(name)
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
            sock = Netlink()
        except Exception:
            setns(self.home)
            self._unmount(path)
            raise
        setns(self.home)
        return self._sockets.put(name, sock)

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
        """Remove the name - at release(), with the names of every other namespace the stage
        removes. Our sockets in the namespace are closed then too, once every namespace of the run
        is unmounted: closing them sets the kernel's teardown of the namespaces going, and an umount
        that competes with it costs ten times the CPU (0.3 s for a thousand namespaces instead of
        0.03 s; the teardown itself takes as long)."""
        self._unmounting.append(netns_path(name))
        for cache in (self._sockets, self._nft):
            sock = cache.pop(name, None)
            if sock is not None:
                self._released.append(sock)

    # Each umount waits for an RCU grace period after the mount is gone (namespace_unlock), 0.2 to
    # 0.9 ms while the kernel tears down namespaces beside it: ten thousand in a row took 6 to 9 s.
    # Waiters at once share a grace period, so the names go from threads of their own, one for each
    # UNMOUNT_PER_THREAD names, from UNMOUNT_THREADS[0] up to UNMOUNT_THREADS[1]. Measured: ten
    # thousand p2p names from 16 threads 1.35-2.98 s (mean 2.14 s, five runs), from 64 0.90-1.57 s
    # (mean 1.24 s), from 128 no less; three thousand from 16 0.43-0.54 s, from 64 0.29-0.30 s; but
    # a thousand (bridge) from 16 mostly 0.03-0.05 s (4 runs of 6), from 32 or 64 0.21-0.36 s.
    UNMOUNT_THREADS = (16, 64)
    UNMOUNT_PER_THREAD = 100

    @classmethod
    def unmount_threads(cls, count):
        """How many threads unmount `count` names."""
        low, high = cls.UNMOUNT_THREADS
        return min(count, max(low, min(high, count // cls.UNMOUNT_PER_THREAD)))

    def release(self):
        """Unmount and unlink the names delete() took, then close the sockets in those namespaces.
        Every name is tried; a failure is raised once all were."""
        paths, self._unmounting = self._unmounting, []
        failed = []
        threads = []
        count = self.unmount_threads(len(paths))
        for chunk in [paths[i::count] for i in range(count)]:
            thread = threading.Thread(target=self._unmount_all, args=(chunk, failed))
            try:
                thread.start()
            except RuntimeError:  # no thread to be had (a limit on tasks): this one does it
                self._unmount_all(chunk, failed)
            else:
                threads.append(thread)
        for thread in threads:
            thread.join()
        while self._released:
            self._released.pop().close()
        if failed:
            failed.sort(key=lambda item: item[0])
            denied = any(getattr(exc, 'errno', None) == errno.EPERM for _path, exc in failed)
            raise NamespaceError('%d namespace name(s) could not be removed (the others were): %s%s' % (
                len(failed), '; '.join('%s: %s' % (path, exc) for path, exc in failed),
                '. Run as root or with CAP_SYS_ADMIN (become: true).' if denied else ''))

    @classmethod
    def _unmount_all(cls, paths, failed):
        for path in paths:
            try:
                cls._unmount(path)
            except Exception as exc:  # pylint: disable=broad-except  # each told in release()'s error
                failed.append((path, exc))  # list.append is atomic

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


def socket_holders(inodes):
    """{socket inode: [pid]} of the processes holding the sockets `inodes` (one /proc scan)."""
    links = dict(('socket:[%d]' % inode, inode) for inode in inodes)
    held = {}
    for pid in os.listdir('/proc'):
        if not pid.isdigit():
            continue
        fd_dir = '/proc/%s/fd' % pid
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue  # gone, or not ours to read
        for fd in fds:
            try:
                inode = links.get(os.readlink('%s/%s' % (fd_dir, fd)))
            except OSError:
                continue
            if inode is not None:
                held.setdefault(inode, []).append(int(pid))
    return held


def _read_text(path):
    try:
        with open(path) as handle:
            return handle.read()
    except (IOError, OSError):
        return None


def capabilities():
    """The effective capability mask of this process."""
    with open('/proc/self/status') as status:
        for line in status:
            if line.startswith('CapEff:'):
                return int(line.split()[1], 16)
    return 0


def _answers_into(found, index_of):
    """A receive callback for one batch of gets: each has its one answer, the object or an error;
    found[i] gets the payload of the i-th get's. Done when every get has its answer."""
    def answer(msg_type, _flags, seq, data, offset, length):
        index = index_of.pop(seq, None)
        if index is not None and msg_type != _ERROR:
            found[index] = data[offset + 16:offset + length]
        return not index_of
    return answer
