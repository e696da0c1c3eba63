"""A fake kernel for the planners: the state objects (_state.NsState, _nft_state.NftState, /proc
values, files, namespace holders) built from plain data, and a Reader with the interface of
_state.Reader that answers from that data - no session, no kernel.

    kernel = FakeKernel()
    kernel.netns('ns1', ours=True)
    kernel.veth(None, 'vh', 'ns1', 'vn', addresses_a=['10.0.0.1/24'])
    plan, result = kernel.plan_network(pairs=[...])   # as linuxnet.netns.network plans it
"""
import ipaddress
import socket

from ansible_collections.linuxnet.netns.plugins.module_utils import _codec as C
from ansible_collections.linuxnet.netns.plugins.module_utils import _kinds, _network, _nft_plan, _nft_rules, _nft_state, _saved
from ansible_collections.linuxnet.netns.plugins.module_utils import _plan as P
from ansible_collections.linuxnet.netns.plugins.module_utils import _state
from ansible_collections.linuxnet.netns.plugins.module_utils._common import OWNER_ALIAS

PARSERS = _kinds.comment_parsers()
POSTROUTING = _nft_state.ChainInfo('postrouting', 1, 'nat', 'postrouting', 100, 'accept')


class Namespace(object):
    """What one namespace holds, as plain data."""

    def __init__(self, name, ours=True, lo_up=True):
        self.name = name
        self.links = []
        self.addresses = []
        self.routes = []
        self.nft = _nft_state.NftState()
        self.foreign_forward = []  # [((family, table, chain), [_nft_state.ForeignRule])]
        self.proc = {}  # /proc/sys path -> bool (a path not given reads as not there: None)
        self.listeners = {}  # (protocol, version, port) -> [(pid, command)]: sockets on that port
        self.next_index = 1
        self.next_handle = 10  # of nf_tables rules: never reused, as the kernel's
        self.link('lo', kind=None, up=lo_up, mtu=65536, alias=OWNER_ALIAS if ours else None)

    def link(self, name, kind=None, up=True, mtu=1500, master=None, alias=None, peer_index=None, peer_nsid=None,
             addresses=(), index=None, hairpin=None, isolated=None, ipv6=True):
        """`isolated`: a bridge port's isolation (not isolated unless given; 'unsupported': a
        kernel that reports none); `ipv6`: IPv6 on the link (None: the kernel reports none)."""
        if index is None:
            index = self.next_index
        self.next_index = max(self.next_index, index) + 1
        master_index = self.find(master).index if master is not None else None
        port = master_index is not None and self.find(master).kind == 'bridge'
        if port and hairpin is None:
            hairpin = False  # a bridge port reports its hairpin mode
        if not port or isolated == 'unsupported':  # a kernel older than 4.18 reports no isolation
            isolated = None
        elif isolated is None:
            isolated = False
        link = C.Link.of(index, name, kind, up, mtu, master_index, alias, peer_index, peer_nsid, hairpin, isolated,
                         ipv6)
        self.links.append(link)
        for text in addresses:
            iface = ipaddress.ip_interface(text)
            self.addresses.append(C.Address(index, socket.AF_INET if iface.version == 4 else socket.AF_INET6,
                                            iface.ip.packed, iface.network.prefixlen))
        return link

    def find(self, name):
        return next(link for link in self.links if link.name == name)

    def state(self):
        # fresh Link objects each time: the state reader adds the addresses to them
        links = [C.Link.of(link.index, link.name, link.kind, link.up, link.mtu, link.master, link.alias,
                           link.peer_index, link.peer_nsid, link.hairpin, link.isolated, link.ipv6)
                 for link in self.links]
        return _state.NsState.of(self.name, links, self.addresses, self.routes)


class Symlink(object):
    """A symbolic link among FakeKernel.files."""

    def __init__(self, target):
        self.target = target


class FakeKernel(object):
    def __init__(self):
        self.namespaces = {None: Namespace(None)}
        self.files = {}  # path -> text (or a Symlink)
        self.dirs = set()  # directories that exist, empty or not (those holding files exist anyway)
        self.holders = {}  # netns name -> [(pid, how, command)]
        self.bare = set()  # names of /run/netns files with no namespace mounted
        self.nsids = {}  # (from ns, to ns) -> id
        self.listener_queries = []  # [(ns, ports)]: what the planners asked Reader.listeners

    def netns(self, name, ours=True, lo_up=True):
        self.namespaces[name] = Namespace(name, ours, lo_up)
        return self.namespaces[name]

    def ns(self, name):
        return self.namespaces[name]

    def nsid(self, from_ns, to_ns):
        """The id `from_ns` knows `to_ns` by, assigned on first use (as a veth across them does)."""
        key = (from_ns, to_ns)
        if key not in self.nsids:
            self.nsids[key] = len([k for k in self.nsids if k[0] == from_ns])
        return self.nsids[key]

    def link(self, ns, name, **kw):
        return self.namespaces[ns].link(name, **kw)

    def bridge(self, ns, name, ours=True, **kw):
        return self.link(ns, name, kind='bridge', alias=OWNER_ALIAS if ours else None, **kw)

    def veth(self, a_ns, a_name, b_ns, b_name, ours=True, addresses_a=(), addresses_b=(), master=None, isolated=None,
             **kw):
        """A pair: two veth ends that name each other (index, and the nsid across namespaces);
        `master`: the bridge of the first end, `isolated` its isolation there."""
        a_space, b_space = self.namespaces[a_ns], self.namespaces[b_ns]
        alias = OWNER_ALIAS if ours else None
        a_index = a_space.next_index
        b_index = b_space.next_index + (1 if a_space is b_space else 0)
        cross = a_ns != b_ns
        a = a_space.link(a_name, kind='veth', alias=alias, peer_index=b_index, addresses=addresses_a, master=master,
                         peer_nsid=self.nsid(a_ns, b_ns) if cross else None, isolated=isolated, **kw)
        b = b_space.link(b_name, kind='veth', alias=alias, peer_index=a_index, addresses=addresses_b,
                         peer_nsid=self.nsid(b_ns, a_ns) if cross else None, index=b_index, **kw)
        return a, b

    def route(self, ns, dest, gateway=None, dev=None, table=C.RT_TABLE_MAIN, metric=0, ours=True):
        space = self.namespaces[ns]
        self.namespaces[ns].routes.append(C.Route.of(
            ipaddress.ip_network(dest), ipaddress.ip_address(gateway) if gateway else None,
            space.find(dev).index if dev else None, table, metric, C.RTPROT_LINUXNET if ours else C.RTPROT_BOOT,
            C.RT_SCOPE_UNIVERSE if gateway else C.RT_SCOPE_LINK))

    def masquerade(self, ns, source, oifname, comment=None):
        """A MASQUERADE rule in our table (`comment`: another comment than ours, or '' for none)."""
        spec = _nft_rules.masquerade_rule(source, oifname)
        self.nft_rule(ns, spec, spec.comment if comment is None else comment or None)

    def nft_rule(self, ns, spec, comment=None, canonical=None):
        """A rule in our table, as the kernel lists it: the spec's chain (made if missing), its
        comment and its canonical expressions unless others are given."""
        nft = self.namespaces[ns].nft
        if nft.table is None:
            nft.genid, nft.table = 5, {'handle': 1, 'flags': 0, 'use': 0}
        if spec.chain not in nft.chains:
            chain = _nft_rules.CHAINS[spec.chain]
            nft.chains[spec.chain] = _nft_state.ChainInfo(spec.chain, 1 + len(nft.chains), chain.type, chain.hook,
                                                          chain.priority, chain.policy)
            nft.table['use'] = len(nft.chains)
        rule = _nft_state.RuleInfo(spec.chain, self.handle(ns), spec.comment if comment is None else comment,
                                   spec.canonical() if canonical is None else canonical, PARSERS)
        if spec.head:
            at = next((i for i, other in enumerate(nft.rules) if other.chain == spec.chain), len(nft.rules))
            nft.rules.insert(at, rule)
        else:
            nft.rules.append(rule)
        return rule

    def handle(self, ns):
        """A new rule handle in `ns`."""
        space = self.namespaces[ns]
        space.next_handle += 1
        return space.next_handle - 1

    def apply_nft(self, plan):
        """What the plan's nf_tables transactions leave in our tables and in other tables' chains, as
        the kernel would list it to the next run."""
        for ns, entry in plan.nft_transactions.items():
            space = self.namespaces[ns]
            nft = space.nft
            for change in entry.merged:
                if isinstance(change, _nft_plan.DeleteTable):
                    space.nft = nft = _nft_state.NftState(genid=nft.genid)
                elif isinstance(change, (_nft_plan.AddTable, _nft_plan.WakeTable)):
                    nft.table = {'handle': 1, 'flags': 0, 'use': 0}
                elif isinstance(change, _nft_plan.DeleteChain):
                    del nft.chains[change.chain.name]
                elif isinstance(change, _nft_plan.AddChain):
                    chain = change.spec
                    nft.chains[chain.name] = _nft_state.ChainInfo(chain.name, 1 + len(nft.chains), chain.type,
                                                                  chain.hook, chain.priority, chain.policy)
                elif isinstance(change, _nft_plan.DeleteRule):
                    nft.rules = [rule for rule in nft.rules if rule.handle != change.rule.handle]
                elif isinstance(change, _nft_plan.AddRule):
                    self.nft_rule(ns, change.spec)
                elif isinstance(change, (_nft_plan.InsertForeignRule, _nft_plan.DeleteForeignRule)):
                    rules = next(rules for target, rules in space.foreign_forward
                                 if target == (change.family, change.table, change.chain))
                    if isinstance(change, _nft_plan.DeleteForeignRule):
                        rules[:] = [rule for rule in rules if rule.handle != change.rule.handle]
                    else:
                        rules.insert(0, _nft_state.ForeignRule(self.handle(ns), change.spec.comment,
                                                               change.spec.canonical()))
                else:
                    raise AssertionError('the fake kernel does not know %r' % (change,))
            if nft.table is not None:
                nft.table['use'] = len(nft.chains)
                nft.genid = (nft.genid or 0) + 1

    def foreign_chain(self, ns, family, table, chain, specs=()):
        """Another table's forward-drop chain (Docker's FORWARD DROP) and the rules in it (RuleSpecs),
        as _nft_state.read_foreign_forward gives them."""
        rules = [_nft_state.ForeignRule(self.handle(ns), spec.comment, spec.canonical()) for spec in specs]
        self.namespaces[ns].foreign_forward.append(((family, table, chain), rules))
        return rules

    def forward_scope(self, ns, prefixes, isolate=False):
        """Our forward chain as sysctl_forward's restrict_to (and isolate) leave it."""
        for spec in _nft_rules.forward_rules(prefixes, isolate=isolate):
            self.nft_rule(ns, spec)

    def reader(self):
        return FakeReader(self)

    def plan_network(self, purge=False, purge_match=None, check_mode=False, save=None, diff=True, **lists):
        """Plan a linuxnet.netns.network call as its main() does (`check_mode`: as under --check,
        assuming what earlier tasks make; `diff`: as with --diff); returns (plan, reader)."""
        params = dict((kind.option, None) for kind in _kinds.KINDS)
        params.update(lists, purge=purge, purge_match=purge_match)
        parsed = _network.parse(params)
        selection = _network.purge_selection(params) if purge or purge_match else None
        plan, reader = P.Plan(assume_missing=check_mode, diff=diff), self.reader()
        _saved.plan_declared(plan, reader, parsed, selection)
        if save is not None:
            _saved.plan_save(plan, reader, _saved.Save(save), parsed, '/usr/bin/python3')
        return plan, reader

    def plan_kind(self, option, items, check_mode=False):
        """Plan one kind's objects as its single module does (`check_mode`: as under --check);
        returns (plan, result)."""
        kind = next(kind for kind in _kinds.KINDS if kind.option == option)
        objects = [kind.factory(item, '%s[%d]' % (option, index)) for index, item in enumerate(items)]
        plan = P.Plan(assume_missing=check_mode)
        return plan, kind.planner(plan, self.reader(), objects)


class FakeReader(_state.Reader):
    """_state.Reader answering from a FakeKernel: every read the planners make, none from a kernel."""

    def __init__(self, kernel):
        super(FakeReader, self).__init__(None, PARSERS)
        self.kernel = kernel
        self._mounted = set(name for name in kernel.namespaces if name is not None)

    def _read_state(self, ns):
        space = self.kernel.namespaces.get(ns)
        return space.state() if space is not None else _state.NsState(None, ns, exists=False)

    def nft(self, ns):
        space = self.kernel.namespaces.get(ns)
        return space.nft if space is not None else _nft_state.NftState()

    def foreign_forward(self, ns):
        return self.kernel.namespaces[ns].foreign_forward

    def listeners(self, ns, ports):
        self.kernel.listener_queries.append((ns, sorted(ports)))
        listening = self.kernel.namespaces[ns].listeners
        return dict((key, sorted(listening[key])) for key in ports if key in listening)

    def holders(self, names):
        return dict((name, self.kernel.holders[name]) for name in names if name in self.kernel.holders)

    def bare_file(self, name):
        return name in self.kernel.bare

    def proc_values(self, ns, paths):
        proc = self.kernel.namespaces[ns].proc
        return dict((key, proc.get(path)) for key, path in paths.items())

    def text_file(self, path):
        text = self.kernel.files.get(path)
        return None if text is None or isinstance(text, Symlink) else text

    def listdir(self, path):
        prefix = path.rstrip('/') + '/'
        names = set(p[len(prefix):].split('/')[0] for p in self.kernel.files if p.startswith(prefix))
        names.update(d[len(prefix):].split('/')[0] for d in self.kernel.dirs if d.startswith(prefix))
        return sorted(names) if names or path.rstrip('/') in self.kernel.dirs else None

    def is_dir(self, path):
        return self.listdir(path) is not None

    def link_target(self, path):
        text = self.kernel.files.get(path)
        return text.target if isinstance(text, Symlink) else None

    def prefetch(self, links=(), routes=None, pairs=()):
        pass

    def prefetch_nsids(self, from_ns, targets):
        pass

    def nsid(self, from_ns, target_ns):
        return self.kernel.nsids.get((from_ns, target_ns))
