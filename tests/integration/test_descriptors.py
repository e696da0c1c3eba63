"""The transport's descriptor bounds against the real kernel: sockets closed and opened again as a
run moves through more namespaces than it keeps sockets for, a read ahead that opens each
namespace once all the same, and a whole network of 300 namespaces converged, re-run and torn
down by a module limited to 256 open files (the engine used to hold a socket and a descriptor per
namespace: 600 and more), and a limit below what any run needs refused before anything changes."""
import errno
import io
import json
import os
import resource
import socket
import subprocess

import pytest

from ansible_collections.linuxnet.netns.plugins.module_utils import _apply as A
from ansible_collections.linuxnet.netns.plugins.module_utils import _codec as C
from ansible_collections.linuxnet.netns.plugins.module_utils import _direct as D
from ansible_collections.linuxnet.netns.plugins.module_utils import _state as S
from ansible_collections.linuxnet.netns.plugins.module_utils import _transport as T
from ansible_collections.linuxnet.netns.plugins.module_utils._common import OWNER_ALIAS
from conftest import IN_SANDBOX, REPO

pytestmark = pytest.mark.skipif(not IN_SANDBOX, reason='runs only inside tests/sandbox.sh')


def open_fds():
    return len(os.listdir('/proc/self/fd'))


def test_sockets_are_bounded_and_opened_again(tmp_path):
    names = ['lru-%s-%d' % (tmp_path.name[-6:], i) for i in range(12)]
    session = T.Namespaces(budget=(4, 4))
    try:
        start = open_fds()
        for name in names:
            session.create(name)
            assert open_fds() - start <= 4
        for _round in range(2):  # every namespace again: each socket was closed and is opened again
            for name in names:
                links = [C.Link(p) for p in session.rtnl(name).dump_raw(C.RTM_GETLINK, C.links_request())]
                assert [link.name for link in links] == ['lo']
                assert open_fds() - start <= 4
        assert len(session._sockets) == 4
    finally:
        for name in names:
            if os.path.exists(T.netns_path(name)):
                session.delete(name)
        session.close()
    assert not [name for name in names if os.path.exists(T.netns_path(name))]


def test_names_go_together_from_threads_and_every_failure_is_told(tmp_path):
    """delete() only takes a name; release() unmounts them all at once (threads sharing the kernel's
    RCU grace periods), tries every name, then raises one error that names each failure."""
    tag = tmp_path.name[-6:]
    names = ['rel-%s-%d' % (tag, i) for i in range(40)]
    bad = ['rel-%s-dir%d' % (tag, i) for i in range(2)]
    session = T.Namespaces(budget=(4, 4))
    try:
        for name in names:
            session.create(name)
        for name in names:
            session.delete(name)
        assert set(names) <= set(session.mounted())  # nothing goes before release()
        session.release()
        assert not set(names) & set(session.mounted())
        assert not [name for name in names if os.path.exists(T.netns_path(name))]

        # a directory where a name would be: not a mount point (skipped), and no file to unlink
        for name in bad:
            os.mkdir(T.netns_path(name))
        session.create(names[0])
        for name in bad + [names[0]]:
            session.delete(name)
        with pytest.raises(T.NamespaceError) as failed:
            session.release()
        text = str(failed.value)
        assert text == '2 namespace name(s) could not be removed (the others were): %s' % '; '.join(
            "%s: [Errno %d] %s: '%s'" % (T.netns_path(name), errno.EISDIR, os.strerror(errno.EISDIR), T.netns_path(name))
            for name in bad), text
        assert names[0] not in session.mounted() and not os.path.exists(T.netns_path(names[0]))
    finally:
        for name in bad:
            if os.path.isdir(T.netns_path(name)):
                os.rmdir(T.netns_path(name))
        for name in names:
            if name in session.mounted():
                session.delete(name)
        session.close()


def test_an_index_by_name_without_a_netlink_message(tmp_path):
    """Netlink.index_of (SIOCGIFINDEX on the namespace's socket) gives what the kernel's get by name
    gives, in the host and in a namespace; a missing name is ENODEV, told with the name."""
    name = 'idx-%s' % tmp_path.name[-6:]
    session = T.Namespaces()
    try:
        session.create(name)
        subprocess.check_call(['ip', 'link', 'add', name + 'h', 'type', 'veth', 'peer', 'name', 'e1', 'netns', name])
        for ns, link in ((None, name + 'h'), (name, 'e1'), (name, 'lo')):
            assert session.rtnl(ns).index_of(link) == S.link_named(session, ns, link).index
        # settle: the link state the driver reports once the kernel's pending work for the link is
        # done - the host end down (no carrier), then both ends up; none for a name that is not there
        assert session.rtnl(None).settle(name + 'h') is False
        subprocess.check_call(['ip', 'link', 'set', name + 'h', 'up'])
        subprocess.check_call(['ip', '-n', name, 'link', 'set', 'e1', 'up'])
        assert session.rtnl(None).settle(name + 'h') is True and session.rtnl(name).settle('e1') is True
        # lo: down in a namespace just made; a name that is not there: no answer
        assert session.rtnl(name).settle('lo') is False and session.rtnl(name).settle('missing0') is None
        shown = json.loads(subprocess.check_output(['ip', '-j', 'link', 'show', 'dev', name + 'h'], universal_newlines=True))
        assert shown[0]['operstate'] == 'UP'  # linkwatch's work for it done: no 'UNKNOWN' or 'DOWN' in between
        with pytest.raises(T.NetlinkError) as missing:
            session.rtnl(name).index_of(name + 'h')  # the host's end: not in the namespace
        assert missing.value.code == errno.ENODEV
        assert str(missing.value) == 'look up the index of interface %sh: %s' % (name, os.strerror(errno.ENODEV))
    finally:
        subprocess.call(['ip', 'link', 'del', name + 'h'], stderr=subprocess.DEVNULL)
        session.delete(name)
        session.close()


def limited(host, name, args, nofile, fails=False):
    """host.module(), with the module's limit on open files (soft and hard) at `nofile`; the
    result, which must not have failed (or must have, with fails=True)."""
    path = host.tmp / ('limited-%s.json' % len(os.listdir(str(host.tmp))))
    path.write_text(json.dumps({'ANSIBLE_MODULE_ARGS': args}))
    env = dict(os.environ, PYTHONPATH='%s:%s' % (host.collections, host.collections / 'ansible_only'))
    out = subprocess.run(
        ['nsenter', '--net=/run/netns/' + host.name, host.python, os.path.join(REPO, 'plugins', 'modules', name + '.py'),
         str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, env=env, check=False,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile)))
    try:
        result = json.loads(out.stdout)
    except ValueError:
        raise AssertionError('module printed no JSON (rc %d): %s %s' % (out.returncode, out.stdout, out.stderr))
    assert bool(result.get('failed')) == fails, result.get('msg')
    return result


def test_a_limit_below_what_a_run_needs_is_refused_before_any_change(host):
    names = [host.ns('low%d' % i) for i in range(3)]
    spec = {'namespaces': [{'name': ns} for ns in names],
            'pairs': [{'name': 'lowp%d' % i, 'peer': {'name': 'eth0', 'netns': ns}} for i, ns in enumerate(names)]}
    result = limited(host, 'network', spec, T.MIN_NOFILE - 1, fails=True)
    assert not result['changed']
    assert 'limit on open files is %d' % (T.MIN_NOFILE - 1) in result['msg'] and str(T.MIN_NOFILE) in result['msg']
    assert host.netns_list() == [] and 'lowp' not in host.sh('ip -br link')
    # a failure echoes the arguments as a result does: a long list abbreviated
    many = {'namespaces': [{'name': host.ns('low%d' % i)} for i in range(25)]}
    echoed = limited(host, 'network', many, T.MIN_NOFILE - 1, fails=True)['invocation']['module_args']['namespaces']
    assert len(echoed) == 11 and echoed[-1] == '(15 more items, not echoed back)'
    assert limited(host, 'network', spec, T.MIN_NOFILE)['changed']  # the least it needs is enough
    assert sorted(host.netns_list()) == sorted(names)
    limited(host, 'network', {'namespaces': [{'name': ns, 'state': 'absent'} for ns in names]}, T.MIN_NOFILE)
    assert host.netns_list() == []


def test_a_large_network_under_a_low_descriptor_limit(host):
    count = 300
    names = [host.ns('f%d' % i) for i in range(count)]
    spec = {
        'namespaces': [{'name': ns} for ns in names],
        'bridges': [{'name': 'br0', 'addresses': ['10.60.0.1/16']}],
        'pairs': [{'name': 'fp%d' % i, 'master': 'br0',
                   'peer': {'name': 'eth0', 'netns': ns, 'addresses': ['10.60.%d.%d/16' % ((i + 2) // 256, (i + 2) % 256)]}}
                  for i, ns in enumerate(names)],
        'routes': [{'netns': ns, 'gateway': '10.60.0.1'} for ns in names],
    }
    assert limited(host, 'network', spec, 256)['changed']
    assert len(host.netns_list()) == count
    last = host.sh('ip -n %s -br addr show eth0; ip -n %s route show default' % (names[-1], names[-1]))
    assert '10.60.1.45/16' in last and 'default via 10.60.0.1' in last
    assert not limited(host, 'network', spec, 256)['changed']
    teardown = {'namespaces': [{'name': ns, 'state': 'absent'} for ns in names],
                'bridges': [{'name': 'br0', 'state': 'absent'}]}
    assert limited(host, 'network', teardown, 256)['changed']
    assert host.netns_list() == [] and 'fp' not in host.sh('ip -br link')


def _paired(session, names, prefix):
    """Make the namespaces `names`, each with a veth pair PREFIX<i> (host) - eth0 (in it); returns names."""
    for i, name in enumerate(names):
        session.create(name)
        subprocess.check_call(['ip', 'link', 'add', '%s%d' % (prefix, i), 'type', 'veth', 'peer', 'name', 'eth0',
                               'netns', name])
    return names


@pytest.mark.parametrize('count', [6, T.MAX_LOOKUP_FDS + 8])
def test_a_read_ahead_opens_each_namespace_once_and_finds_the_ids_the_kernel_gives(tmp_path, count):
    """Reader.prefetch, as the network module reads a declared network: each namespace opened once
    (its links, addresses and routes, and the id the host knows it by) however few sockets are
    kept, and that id taken from a pair whose ends agree - as the kernel gives it - or else asked:
    the one id to ask is asked once all are read (its namespace opened again). Past
    MAX_LOOKUP_FDS namespaces the host's links come from a thread while the namespaces are read."""
    tag = tmp_path.name[-6:]
    names = ['pf-%s-%d' % (tag, i) for i in range(count)]
    session = T.Namespaces(budget=(2, 8))
    try:
        for i, name in enumerate(_paired(session, names, 'pf' + tag)):
            subprocess.check_call(['ip', '-n', name, 'addr', 'add', '10.61.%d.1/24' % i, 'dev', 'eth0'])
            subprocess.check_call(['ip', '-n', name, 'link', 'set', 'eth0', 'up'])
            subprocess.check_call(['ip', '-n', name, 'route', 'add', 'default', 'via', '10.61.%d.2' % i])
        # the last pair as declared crosses two real ones: its host end's peer is the eth0 of another
        # namespace (same index: both made alike), so the id is asked of the kernel, not taken from it
        pairs = [(None, 'pf%s%d' % (tag, i), name, 'eth0') for i, name in enumerate(names[:-1])]
        pairs.append((None, 'pf%s0' % tag, names[-1], 'eth0'))
        opened = []
        open_fd = session.open_fd
        session.open_fd = lambda name: opened.append(name) or open_fd(name)
        reader = S.Reader(session, {})
        reader.prefetch(set([None] + names), dict((name, {socket.AF_INET}) for name in names), pairs)
        for name in names:
            view = reader.view(name)
            assert set(view.links) == {'lo', 'eth0'} and [str(a) for a in view.links['eth0'].addresses] == [
                '10.61.%d.1/24' % names.index(name)]
            assert sorted(str(route.dest) for route in view.routes_of(socket.AF_INET)) == [
                '0.0.0.0/0', '10.61.%d.0/24' % names.index(name)]
        # once each, though only two sockets are kept
        assert sorted(opened) == sorted(names + [names[-1]])
        asked = S.Reader(session, {})
        assert [reader.nsid(None, name) for name in names] == [asked.nsid(None, name) for name in names]
        assert None not in [reader.nsid(None, name) for name in names]
    finally:
        for name in names:
            if os.path.exists(T.netns_path(name)):
                session.delete(name)
        session.close()


def _read_whole(reader):
    """What a reader holds of every namespace it read: links (their fields and addresses), routes
    where read, and the ids it learnt."""
    seen = {}
    for ns, state in reader.states.items():
        links = sorted((link.name, link.index, link.kind, link.up, link.mtu, link.master, link.peer_index,
                        link.peer_nsid, tuple(str(a) for a in link.addresses), link.ipv6)
                       for link in state.links.values())
        routes = dict((key, sorted((str(r.dest), r.table, r.metric, str(r.gateway), r.oif) for r in found))
                      for key, found in state._by_family.items() if key[0] == 'routes')
        seen[ns] = (links, routes)
    return seen, dict(reader._nsids)


@pytest.mark.parametrize('how', ['met', 'child', 'failed'])
def test_a_read_ahead_shared_with_a_child_process_reads_what_one_process_alone_reads(tmp_path, monkeypatch, how):
    """Past READ_APART_MIN namespaces a child process reads them from the last down (and the
    host's links) while the module reads from the first up: the state, routes and ids are those
    one process reads alone - where they meet anywhere ('met'), where the child reads all but the
    first ('child': the module claims none; the first, refused by both, it reads once the child
    is done), and where the child fails ('failed': the module reads everything itself). The child
    is waited for."""
    tag = tmp_path.name[-6:]
    count = 24
    names = ['sp-%s-%d' % (tag, i) for i in range(count)]
    session = T.Namespaces(budget=(4, 8))
    parent = os.getpid()
    try:
        for i, name in enumerate(_paired(session, names, 'sp' + tag)):
            subprocess.check_call(['ip', '-n', name, 'addr', 'add', '10.62.%d.1/24' % i, 'dev', 'eth0'])
            subprocess.check_call(['ip', '-n', name, 'link', 'set', 'eth0', 'up'])
            subprocess.check_call(['ip', '-n', name, 'route', 'add', 'default', 'via', '10.62.%d.2' % i])
        subprocess.check_call(['ip', 'addr', 'add', '10.62.0.2/24', 'dev', 'sp%s0' % tag])
        pairs = [(None, 'sp%s%d' % (tag, i), name, 'eth0') for i, name in enumerate(names)]
        wanted = (set([None] + names), dict((name, {socket.AF_INET}) for name in names), pairs)
        alone = S.Reader(session, {})
        alone.prefetch(*wanted)
        expected = _read_whole(alone)

        children, through = [], []
        start = T.Apart.start
        monkeypatch.setattr(T.Apart, 'start', classmethod(
            lambda cls, work: children.append(start(work)) or children[-1]))
        netlink_through = T.netlink_through

        def counted(fd, home, protocol=C.NETLINK_ROUTE):
            if os.getpid() == parent:
                through.append(fd)
            elif how == 'failed':
                raise OSError(errno.EPERM, 'the child fails here')
            return netlink_through(fd, home, protocol)
        monkeypatch.setattr(T, 'netlink_through', counted)
        if how == 'child':
            mine = T.Split.mine
            monkeypatch.setattr(T.Split, 'mine', lambda split, index: mine(split, index) and False)
        monkeypatch.setattr(S.Reader, 'READ_APART_MIN', 8)
        shared = S.Reader(session, {})
        shared.prefetch(*wanted)
        assert _read_whole(shared) == expected
        assert len(children) == 1 and children[0] is not None
        with pytest.raises(ChildProcessError):
            os.waitpid(children[0].pid, os.WNOHANG)
        # a socket for each namespace this process read: all of them, one, or its share
        assert len(through) == count if how == 'failed' else len(through) <= (1 if how == 'child' else count)
    finally:
        for name in names:
            if os.path.exists(T.netns_path(name)):
                session.delete(name)
        session.close()


def _network_in_process(args):
    """The network module's run in this process (as the role's direct runner runs it): its result."""
    out = io.StringIO()
    with pytest.raises(SystemExit):
        D.main({'module': 'network', 'args': args}, out=out)
    return json.loads(out.getvalue())


def _mounts(path):
    with open('/proc/self/mountinfo') as handle:
        return sum(1 for line in handle if line.split()[4] == path)


@pytest.mark.parametrize('how', ['met', 'child', 'both', 'failed', 'left'])
def test_namespaces_made_by_the_module_and_a_child_process_at_once(tmp_path, monkeypatch, how):
    """Past SHARE_MIN namespaces to make, a child process makes them from the last down while the
    module makes them from the first up: every namespace is made once (one mount of its name), its
    lo up and marked, whether they meet anywhere ('met'), the child makes all but the first
    ('child'), both take every one (as where they meet, at once: 'both'; the name file decides),
    the child fails at once ('failed': the module makes them all itself), or a bare
    name file left by a run killed half-way is refused by both ('left': the module takes it over
    once the child is done). The child is waited for; a second run changes nothing."""
    tag = tmp_path.name[-6:]
    count = 24
    names = ['sh-%s-%d' % (tag, i) for i in range(count)]
    parent = os.getpid()
    children, made_here = [], []
    start = T.Apart.start
    monkeypatch.setattr(T.Apart, 'start', classmethod(lambda cls, work: children.append(start(work)) or children[-1]))
    create = T.Namespaces.create

    def spied(session, name):
        if os.getpid() == parent:
            made_here.append(name)
        elif how == 'failed':
            raise OSError(errno.EPERM, 'the child fails here')
        return create(session, name)
    monkeypatch.setattr(T.Namespaces, 'create', spied)
    if how == 'child':
        mine = T.Split.mine
        monkeypatch.setattr(T.Split, 'mine', lambda split, index: mine(split, index) and False)
    if how == 'both':
        monkeypatch.setattr(T.Split, 'mine', lambda split, index: True)
        monkeypatch.setattr(T.Split, 'theirs', lambda split, index: True)
    monkeypatch.setattr(A, 'SHARE_MIN', 8)
    if how == 'left':
        os.makedirs(T.NETNS_RUN_DIR, exist_ok=True)
        open(T.netns_path(names[2]), 'w').close()  # a bare file: no namespace mounted on it
    try:
        result = _network_in_process({'namespaces': [{'name': name} for name in names]})
        assert result.get('changed') and not result.get('failed'), result
        assert len(children) == 1 and children[0] is not None
        with pytest.raises(ChildProcessError):
            os.waitpid(children[0].pid, os.WNOHANG)
        for name in names:
            assert _mounts(T.netns_path(name)) == 1, name
            lo = subprocess.check_output(['ip', '-n', name, '-d', 'link', 'show', 'lo'], text=True)
            assert 'LOOPBACK,UP' in lo and 'alias %s' % OWNER_ALIAS in lo, (name, lo)
        # the module makes the first and its share; all of them, where the child made none; the
        # first (and at most the one where they met, left by both) where the child made the rest;
        # the one left by a killed run, which only the module takes over, once the child is done
        assert made_here[0] == names[0]
        if how in ('failed', 'both'):
            assert sorted(set(made_here)) == sorted(names)
        else:
            assert len(set(made_here)) < count
        if how == 'child':
            assert made_here in ([names[0]], names[:2])
        if how == 'left':
            assert names[2] in made_here
        assert not _network_in_process({'namespaces': [{'name': name} for name in names]})['changed']
    finally:
        teardown = _network_in_process({'namespaces': [{'name': name, 'state': 'absent'} for name in names]})
        assert not teardown.get('failed'), teardown
    assert not [name for name in names if os.path.exists(T.netns_path(name))]


@pytest.mark.parametrize('count', [6, T.MAX_LOOKUP_FDS + 4])
def test_the_ids_of_removed_namespaces_and_the_host_links_beside_them(tmp_path, count):
    """Reader.removed_ids(None), as a teardown plans: the host's ids of the namespaces it removes,
    as the kernel gives them one by one; past MAX_LOOKUP_FDS of them the host's links come from a
    thread meanwhile - all of them, each veth end under the id of its peer's namespace."""
    tag = tmp_path.name[-6:]
    names = ['rm-%s-%d' % (tag, i) for i in range(count)]
    session = T.Namespaces(budget=(2, 8))
    try:
        _paired(session, names, 'rm' + tag)
        reader = S.Reader(session, {})
        reader.removing.update((name, 'declared') for name in names)
        ids = reader.removed_ids(None)
        assert reader.state(None).links_read is (count > T.MAX_LOOKUP_FDS)
        asked = S.Reader(session, {})
        assert ids == set(asked.nsid(None, name) for name in names) and len(ids) == count
        links = reader.state(None).links
        assert set(links) == set(link.name for link in S.read_links(session, None, addresses=False))
        assert sorted(links['rm%s%d' % (tag, i)].peer_nsid for i in range(count)) == sorted(ids)
    finally:
        for name in names:
            if os.path.exists(T.netns_path(name)):
                session.delete(name)
        session.close()


def test_a_dump_and_a_get_in_one_round_trip_answer_as_each_alone(tmp_path):
    """dump_with_get: the links' dump and the namespace's id of the host, sent together, answer
    exactly what the two asked one after the other do - the id included, which the namespace
    gives the host only when something in it first names the host (its end of the pair, in the
    dump); a refused get raises as it would alone."""
    name, host_end = 'dwg-%s' % tmp_path.name[-6:], 'dwg%s' % tmp_path.name[-6:]
    session = T.Namespaces()
    try:
        session.create(name)
        subprocess.run(['ip', 'link', 'add', host_end, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', name], check=True)
        sock = session.rtnl(name)
        dump = C.message(C.RTM_GETLINK, C.NLM_F_DUMP, C.links_request())
        payloads, reply = sock.dump_with_get(dump, C.message(C.RTM_GETNSID, 0, C.nsid_request(session.home)))
        alone = sock.dump_raw(C.RTM_GETLINK, C.links_request())
        assert sorted(C.Link(p).name for p in payloads) == sorted(C.Link(p).name for p in alone) == ['eth0', 'lo']
        host_id = C.nsid_of(sock.dump_raw(C.RTM_GETNSID, C.nsid_request(session.home), flags=0)[0])
        assert host_id is not None and C.nsid_of(reply) == host_id
        eth0 = next(C.Link(p) for p in payloads if C.Link(p).name == 'eth0')
        assert eth0.peer_nsid == host_id  # the namespace end names the host by that id
        bad = os.open('/dev/null', os.O_RDONLY)  # not a namespace: the kernel refuses the get
        try:
            with pytest.raises(T.NetlinkError):
                sock.dump_with_get(dump, C.message(C.RTM_GETNSID, 0, C.nsid_request(bad)))
        finally:
            os.close(bad)
        # the socket is still in step: the next query gets its own answer
        assert len(sock.dump_raw(C.RTM_GETLINK, C.links_request())) == 2
    finally:
        subprocess.run(['ip', 'link', 'del', host_end], check=False, stderr=subprocess.DEVNULL)
        if os.path.exists(T.netns_path(name)):
            session.delete(name)
        session.close()
