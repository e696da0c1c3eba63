"""The transport's bounds, without a kernel: the descriptor budget, the socket cache, and the apply
sending what it built before it holds more namespace descriptors than the budget allows."""
import errno
import os
import threading
import time

import pytest

from ansible_collections.linuxnet.netns.plugins.module_utils import _apply
from ansible_collections.linuxnet.netns.plugins.module_utils import _codec as C
from ansible_collections.linuxnet.netns.plugins.module_utils import _plan as P
from ansible_collections.linuxnet.netns.plugins.module_utils import _transport as T


@pytest.mark.parametrize('soft', [64, 256, 512, 1024, 2048, 4096, 20000, 1 << 20])
def test_descriptor_budget_fits_the_limit(soft):
    sockets, ns_fds = T.descriptor_budget(soft)
    assert T.MIN_SOCKETS <= sockets <= T.MAX_SOCKETS and T.MIN_NS_FDS <= ns_fds <= T.MAX_NS_FDS
    if soft >= 256:
        # both protocols' sockets, the apply's namespace descriptors, the lookups and the rest
        assert 2 * sockets + ns_fds + T.RESERVED_FDS <= soft
    if soft >= 4096:  # the descriptor limit of many hosts: nothing shrinks
        assert (sockets, ns_fds) == (T.MAX_SOCKETS, T.MAX_NS_FDS)
    # whatever the limit allows, the engine's own descriptors stay under one constant
    assert 2 * sockets + ns_fds + T.MAX_LOOKUP_FDS <= T.ENGINE_DESCRIPTORS < 256


@pytest.mark.parametrize('soft', [T.MIN_NOFILE, T.MIN_NOFILE + 1, 200])
def test_the_smallest_limit_a_run_accepts_still_fits_the_smallest_budget(soft):
    sockets, ns_fds = T.descriptor_budget(soft)
    assert (sockets, ns_fds) >= (T.MIN_SOCKETS, T.MIN_NS_FDS)
    assert 2 * sockets + ns_fds + T.RESERVED_FDS <= soft


class FakeSocket(object):
    def __init__(self, name):
        self.name = name
        self.closed = False

    def close(self):
        self.closed = True


def test_socket_cache_closes_the_least_recently_used():
    cache = T._Sockets(3)
    made = dict((name, cache.put(name, FakeSocket(name))) for name in 'abc')
    assert cache.get('a') is made['a']
    cache.move_to_end('a')  # as Namespaces.rtnl does on a hit
    cache.put('d', FakeSocket('d'))
    assert sorted(cache) == ['a', 'c', 'd'] and made['b'].closed and not made['a'].closed
    cache.put('e', FakeSocket('e'))
    assert sorted(cache) == ['a', 'd', 'e'] and made['c'].closed


class FakeNetlink(object):
    def __init__(self, session, ns):
        self.session = session
        self.ns = ns

    def request(self, requests):
        for req in requests:
            # the descriptor a request carries must still be open when it is sent
            assert req.data in self.session.open, (req.what, req.data)
        self.session.sent.append((self.ns, [req.what for req in requests]))


class FakeSession(object):
    """Descriptors by number, to count them; requests recorded as sent, per namespace."""

    home = 0

    def __init__(self, max_ns_fds):
        self.max_ns_fds = max_ns_fds
        self.open = set([0])
        self.peak = 0
        self.next_fd = 100
        self.sent = []

    def open_fd(self, ns):
        self.next_fd += 1
        self.open.add(self.next_fd)
        self.peak = max(self.peak, len(self.open) - 1)
        return self.next_fd

    def close_fd(self, fd):
        self.open.remove(fd)

    def rtnl(self, ns):
        return FakeNetlink(self, ns)


def test_apply_holds_at_most_the_budget_of_namespace_descriptors():
    plan = P.Plan()
    for i in range(10):
        # a veth made on the host with its peer in namespace n<i>, and something inside n<i>
        plan.add(P.LINK_CREATE, None, 'veth %d' % i,
                 requests=lambda r, i=i: T.Request(r.ns_fd('n%d' % i), 'veth %d' % i))
        plan.add(P.LINK_CREATE, 'n%d' % i, 'inside %d' % i, requests=lambda r, i=i: T.Request(0, 'inside %d' % i))
    session = FakeSession(max_ns_fds=3)
    _apply.apply_plan(plan, session)
    assert session.peak == 3 and session.open == set([0])
    # each namespace's requests in their order, every one sent once, the host's in batches of three
    host = [what for ns, batch in session.sent if ns is None for what in batch]
    assert host == ['veth %d' % i for i in range(10)]
    assert [len(batch) for ns, batch in session.sent if ns is None] == [3, 3, 3, 1]
    assert sorted(what for _ns, batch in session.sent for what in batch) == sorted(
        ['veth %d' % i for i in range(10)] + ['inside %d' % i for i in range(10)])
    assert plan.started


def test_apply_within_the_budget_sends_each_namespace_once():
    plan = P.Plan()
    for i in range(4):
        plan.add(P.LINK_CREATE, None, 'veth %d' % i, requests=lambda r, i=i: T.Request(r.ns_fd('n%d' % i), 'veth %d' % i))
    session = FakeSession(max_ns_fds=8)
    _apply.apply_plan(plan, session)
    assert session.sent == [(None, ['veth 0', 'veth 1', 'veth 2', 'veth 3'])] and session.peak == 4


class CachingSession(FakeSession):
    """A session whose sockets are kept as Namespaces keeps them (_transport._Sockets, least
    recently used closed beyond `max_sockets`): counts the sockets opened, per namespace."""

    def __init__(self, max_sockets):
        super(CachingSession, self).__init__(max_ns_fds=8)
        self.max_sockets = max_sockets
        self._cache = T._Sockets(max_sockets)
        self.opened = []

    def rtnl(self, ns):
        sock = self._cache.get(ns)
        if sock is None:
            self.opened.append(ns)
            sock = self._cache.put(ns, FakeNetlink(self, ns))
            sock.close = lambda: None
        else:
            self._cache.move_to_end(ns)
        return sock


def _local_plan(namespaces, stages=(P.LINK_SET, P.ADDR_ADD, P.ROUTE_ADD)):
    plan = P.Plan()
    for stage in stages:  # planned kind by kind, as the planners do: stage order is the apply's
        for ns in [None] + namespaces:
            what = '%s %s' % (ns, stage)
            plan.add(stage, ns, what, requests=lambda r, w=what: T.Request(0, w))
    return plan


@pytest.mark.parametrize('max_sockets', [3, 8, 64])
def test_settings_addresses_and_routes_go_namespace_group_by_group_each_socket_opened_once(max_sockets):
    names = ['n%d' % i for i in range(20)]
    session = CachingSession(max_sockets)
    plan = _local_plan(names)
    _apply.apply_plan(plan, session)
    # every namespace's socket opened once, though the stages are three and the sockets kept fewer
    # than the namespaces: stage after stage over all twenty would open each three times
    assert sorted(session.opened, key=str) == sorted([None] + names, key=str)
    # each namespace gets its stages in order, one batch a stage
    for ns in [None] + names:
        assert [batch for sent_ns, batch in session.sent if sent_ns == ns] == [
            ['%s %s' % (ns, stage)] for stage in (P.LINK_SET, P.ADDR_ADD, P.ROUTE_ADD)]
    # stage after stage within a group of namespaces that fits the sockets kept
    group = max_sockets - 1
    first = [ns for ns, _batch in session.sent][:3 * group]
    assert first == ([None] + names)[:group] * 3
    assert plan.started


def test_a_call_among_the_settings_keeps_the_stages_one_after_the_other():
    names = ['n%d' % i for i in range(5)]
    session = CachingSession(3)
    plan = _local_plan(names)
    done = []
    plan.add(P.ADDR_ADD, None, 'a call', call=lambda s: done.append(len(s.sent)))
    _apply.apply_plan(plan, session)
    # a call is no request sent to one namespace: its stage waits for every earlier one, the
    # later for it (the settings of all six, then the call and the addresses, then the routes)
    assert [batch[0].split()[1] for _ns, batch in session.sent] == \
        ['%d' % P.LINK_SET] * 6 + ['%d' % P.ADDR_ADD] * 6 + ['%d' % P.ROUTE_ADD] * 6
    assert done == [6]
    assert len(session.opened) == 6 * 3  # stage after stage: each opened again at every stage


@pytest.mark.parametrize('count, threads', [
    (0, 0), (1, 1), (15, 15), (100, 16), (1000, 16), (3000, 30), (10000, 64), (50000, 64)])
def test_names_are_unmounted_from_more_threads_the_more_they_are(count, threads):
    assert T.Namespaces.unmount_threads(count) == threads


class FakeDumpSocket(object):
    """Answers each dump request sent with two link messages and NLMSG_DONE; the first `interrupted`
    answers have NLM_F_DUMP_INTR on their second message (`on='part'`) or on their NLMSG_DONE alone
    (`on='done'`), as the kernel marks a dump that changed."""

    def __init__(self, interrupted, on='part'):
        self.interrupted = interrupted
        self.on = on
        self.sent = []
        self.pending = []

    def send(self, data):
        seq = T._SEQ.unpack_from(data, 8)[0]
        self.sent.append(seq)
        intr = C.NLM_F_DUMP_INTR if len(self.sent) <= self.interrupted else 0
        part_intr, done_intr = (intr, 0) if self.on == 'part' else (0, intr)
        body = b'\0' * 16
        for flags in (C.NLM_F_MULTI, C.NLM_F_MULTI | part_intr):
            self.pending.append(C.HEADER.pack(16 + len(body), C.RTM_NEWLINK, flags, seq, 0) + body)
        self.pending.append(C.HEADER.pack(20, C.NLMSG_DONE, C.NLM_F_MULTI | done_intr, seq, 0) + b'\0' * 4)
        return len(data)

    def recv_into(self, buffer, *args):
        chunk = b''.join(self.pending)
        self.pending = []
        buffer[:len(chunk)] = chunk
        return len(chunk)


def _netlink(sock):
    netlink = T.Netlink.__new__(T.Netlink)
    netlink.sock, netlink.seq = sock, 0
    return netlink


@pytest.fixture
def pauses(monkeypatch):
    """The pauses between the tries of a dump, recorded instead of slept."""
    slept = []
    monkeypatch.setattr(T.time, 'sleep', slept.append)
    return slept


@pytest.mark.parametrize('on', ['part', 'done'])
@pytest.mark.parametrize('interrupted, asked', [(0, 1), (1, 2), (3, 4), (T.DUMP_ATTEMPTS - 1, T.DUMP_ATTEMPTS)])
def test_a_dump_the_kernel_marks_interrupted_is_asked_again(interrupted, asked, on, pauses):
    sock = FakeDumpSocket(interrupted, on)
    answer = _netlink(sock).dump_raw(C.RTM_GETLINK, b'\0' * 16)
    assert len(answer) == 2 and len(sock.sent) == asked
    assert sock.sent == list(range(1, asked + 1))  # each time under a sequence number of its own
    # a short pause before each new try, none before the first
    assert len(pauses) == asked - 1 and all(0 < pause <= 0.05 for pause in pauses)


@pytest.mark.parametrize('on', ['part', 'done'])
@pytest.mark.parametrize('interrupted', [T.DUMP_ATTEMPTS, T.DUMP_ATTEMPTS + 2])
def test_a_dump_still_interrupted_after_the_last_try_is_refused(interrupted, on, pauses):
    sock = FakeDumpSocket(interrupted, on)
    with pytest.raises(T.NetlinkError) as failed:
        _netlink(sock).dump_raw(C.RTM_GETLINK, b'\0' * 16)
    assert len(sock.sent) == T.DUMP_ATTEMPTS and len(pauses) == T.DUMP_ATTEMPTS - 1
    assert failed.value.code == errno.EINTR and 'interrupted' in str(failed.value)
    assert '%d times' % T.DUMP_ATTEMPTS in str(failed.value)


def test_a_get_is_never_asked_again(pauses):
    sock = FakeDumpSocket(5)
    _netlink(sock).dump_raw(C.RTM_GETLINK, b'\0' * 16, flags=0)
    assert len(sock.sent) == 1 and not pauses


# --- a child process beside the caller (Apart) and the items it shares with it (Split) -------------

def _gone(pid):
    """Whether the child `pid` has been waited for (no zombie left)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return False


def test_a_child_passes_its_values_whole_and_in_order_even_past_the_pipe_buffer():
    big = bytes(bytearray(range(256))) * (3 * T.Apart.PIPE_SIZE // 256 + 7)  # three buffers and more

    def work(send):
        send((None, [b'host', 7]))
        send(('ns', {'links': [big], 'nsid': None}))
        send(('last', ()))
    child = T.Apart.start(work)
    assert child is not None
    values = []
    while len(values) < 3:
        values.extend(child.received())  # without waiting: what has come so far
        if child._ended:
            break
    values.extend(child.rest())  # the others, as they come
    assert values == [(None, [b'host', 7]), ('ns', {'links': [big], 'nsid': None}), ('last', ())]
    assert _gone(child.pid) and child.fd is None


def test_a_child_that_fails_gives_what_it_sent_before_and_nothing_half_sent():
    def work(send):
        send(1)
        send(b'two')
        raise RuntimeError('the child fails here')
    child = T.Apart.start(work)
    assert list(child.rest()) == [1, b'two']
    assert _gone(child.pid)


def test_no_child_is_forked_beside_another_thread():
    """A child of a process with other threads would inherit their locks held: the caller then
    does the work itself."""
    release = threading.Event()
    thread = threading.Thread(target=release.wait)
    thread.start()
    try:
        assert T.Apart.start(lambda send: send(1)) is None
    finally:
        release.set()
        thread.join()
    child = T.Apart.start(lambda send: send(1))
    assert list(child.rest()) == [1]


def test_an_abandoned_child_is_killed_and_waited_for():
    child = T.Apart.start(lambda send: time.sleep(60))
    started = time.monotonic()
    child.abandon()
    assert time.monotonic() - started < 10 and _gone(child.pid)


def test_a_split_gives_each_item_to_one_side_and_stops_both_where_they_meet():
    split = T.Split(7)
    mine, theirs = [], []
    up, down = 0, 6
    while True:  # the two sides in turn, each claiming the next item from its end
        took = False
        if up <= 6 and split.mine(up):
            mine.append(up)
            up, took = up + 1, True
        if down >= 0 and split.theirs(down):
            theirs.append(down)
            down, took = down - 1, True
        if not took:
            break
    assert mine == [0, 1, 2, 3] and theirs == [6, 5, 4]
    # the child claims an item the caller holds already: refused, and the other way round
    split = T.Split(4)
    assert split.mine(0) and split.mine(1)
    assert not split.theirs(1)
    split = T.Split(4)
    assert split.theirs(3) and split.theirs(2)
    assert not split.mine(2) and split.mine(1)


def test_a_split_shared_with_a_child_process():
    """The words live in memory both processes share: the child's claims stop the caller and the
    caller's stop the child, whoever comes first."""
    split = T.Split(1000)

    def claim_down(send):
        taken = []
        for i in range(999, -1, -1):
            if not split.theirs(i):
                break
            taken.append(i)
        send(taken)
    child = T.Apart.start(claim_down)
    mine = []
    for i in range(1000):
        if not split.mine(i):
            break
        mine.append(i)
    (theirs,) = list(child.rest())
    # each item done once (or, where both claimed it at once, twice or by neither: at most one)
    assert len(set(mine) & set(theirs)) <= 1
    assert len(set(range(1000)) - set(mine) - set(theirs)) <= 1


class MakingSession(object):
    """A stand-in session whose calls write what they make to a file both processes append to (a
    forked child's memory is its own): the name, and the process that made it."""

    forkable = True
    sharing = False

    def __init__(self, path, fails_in_child=(), taken=()):
        self.path, self.parent = path, os.getpid()
        self.fails_in_child, self.taken = set(fails_in_child), set(taken)

    def make(self, name):
        if name in self.taken:  # a name file left by a killed run: refused while sharing
            if self.sharing:
                raise T.Taken(name)
            self.taken.discard(name)
        if os.getpid() != self.parent and name in self.fails_in_child:
            raise OSError(errno.EPERM, 'the child fails at %s' % name)
        time.sleep(0.005)  # as a kernel's making takes its time: the child, forked meanwhile, gets its share
        with open(self.path, 'a') as log:
            log.write('%s %s\n' % (name, 'here' if os.getpid() == self.parent else 'child'))

    def made(self):
        with open(self.path) as log:
            return [tuple(line.split()) for line in log]


def _making_plan(count):
    plan = P.Plan()
    for i in range(count):
        plan.add(P.NETNS_CREATE, None, 'create netns n%d' % i, call=lambda s, i=i: s.make('n%d' % i), apart=True)
    return plan


@pytest.mark.parametrize('how', ['met', 'failed', 'taken', 'thread', 'few', 'stand-in'])
def test_a_stage_shared_with_a_child_makes_each_once(tmp_path, monkeypatch, how):
    """Calls marked apart, SHARE_MIN of them or more, are shared with a child process: each made
    once, by one of the two ('met'); where the child fails, the module makes what it left
    ('failed'); a name refused by both while they share is made by the module afterwards
    ('taken'); with another thread running, fewer calls than SHARE_MIN, or a session that is not
    the kernel's (no `forkable`), the module makes them all, in order."""
    count = 40
    monkeypatch.setattr(_apply, 'SHARE_MIN', 41 if how == 'few' else 8)
    session = MakingSession(str(tmp_path / 'made'), fails_in_child=['n30'] if how == 'failed' else (),
                            taken=['n20'] if how == 'taken' else ())
    if how == 'stand-in':
        session.forkable = False
    release = threading.Event()
    thread = threading.Thread(target=release.wait)
    if how == 'thread':
        thread.start()
    try:
        plan = _making_plan(count)
        _apply.apply_plan(plan, session)
    finally:
        release.set()
        if how == 'thread':
            thread.join()
    made = session.made()
    names = [name for name, _who in made]
    assert sorted(names) == sorted('n%d' % i for i in range(count)) and plan.started
    assert made[0] == ('n0', 'here') and not session.sharing
    by_child = [name for name, who in made if who == 'child']
    if how in ('thread', 'few', 'stand-in'):
        assert names == ['n%d' % i for i in range(count)] and not by_child
    else:
        assert by_child and 'n0' not in by_child
    if how == 'failed':
        # the child stops at its failure: that one and everything below it down to where the module stopped
        assert 'n30' not in by_child and all(int(name[1:]) > 30 for name in by_child)
    if how == 'taken':
        assert ('n20', 'here') in made and made.index(('n20', 'here')) >= len(made) - 2
