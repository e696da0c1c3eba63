# -*- coding: utf-8 -*-
# Copyright: linuxnet.netns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
# Do not use this from other collections or standalone plugins/modules!
"""Published ports (`docker run -p 8080:80`): a port of the host's own addresses forwarded to an
address and port behind it, with nf_tables rules in our table.

Each published port is two rules, named by one comment form `linuxnet:WORD PROTO HOST:PORT
TARGET:PORT [localhost]` (HOST is 0.0.0.0 or [::] for every address of the host):

  pub          prerouting  fib daddr type local [ip daddr HOST] tcp dport P dnat ip to T:TP
  pub-out      output      the same for the host's own connections (not to 127.0.0.0/8 unless
                           `localhost`)

and a few rules are shared by the ports of a namespace, there while one port needs them:

  pub-nat T S  postrouting hairpin: a neighbour of target T on its own network S reaching it
                           through HOST:P is masqueraded, so that the reply comes back through the
                           host (else it goes straight back, from an address the client never
                           spoke to)
  pub-lo T     postrouting 127.0.0.1:P (a port with `localhost`): masqueraded to the host's
                           address on the target's network
  pub-fwd-in T, pub-fwd-out T   forward: `ip daddr T ct status dnat accept` (and saddr, for the
                           replies) at the head of our forward chain: what the host translated to
                           T passes the safe router's drop, whatever restrict_to says
  pub-allow-in T, pub-allow-out T   the same at the head of other tables' forward-drop chains
                           (Docker's)

The identity of a port's rule is its comment's first three words: one host port (per protocol,
family, host address) has one target. The target is in the comment and checked against the
expressions. At a thousand ports that is two thousand rules in one transaction.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import re

from ansible_collections.linuxnet.netns.plugins.module_utils import _codec as C
from ansible_collections.linuxnet.netns.plugins.module_utils import _nft_plan
from ansible_collections.linuxnet.netns.plugins.module_utils import _plan as P
from ansible_collections.linuxnet.netns.plugins.module_utils import _validate as V
from ansible_collections.linuxnet.netns.plugins.module_utils._common import (
    PlanError, assume_namespace, fail, info_entry, ns_key, require_namespace, where)
from ansible_collections.linuxnet.netns.plugins.module_utils._kind import Kind, boot_late
from ansible_collections.linuxnet.netns.plugins.module_utils._links import link_request
from ansible_collections.linuxnet.netns.plugins.module_utils._nft_codec import NFPROTO_INET, NFPROTO_IPV4, NFPROTO_IPV6
from ansible_collections.linuxnet.netns.plugins.module_utils._nft_rules import (
    COMMENT_PREFIX,
    Dnat,
    Masquerade,
    MatchAddress,
    MatchDnat,
    MatchFamily,
    MatchLocal,
    MatchPort,
    PROTOCOLS,
    RuleSpec,
    Verdict,
)

OPTIONS = dict(
    host_port=dict(type='raw'),
    protocol=dict(type='str', choices=['tcp', 'udp'], default='tcp'),
    target=dict(type='str'),
    target_netns=dict(type='str'),
    target_port=dict(type='raw'),
    host_address=dict(type='str'),
    family=dict(type='str', choices=['ipv4', 'ipv6']),
    localhost=dict(type='bool', default=False),
    replace=dict(type='bool', default=False),
    netns=dict(type='str'),
    state=dict(type='str', choices=['present', 'absent'], default='present'),
)

LOOPBACK4 = ipaddress.ip_network('127.0.0.0/8')
LOOPBACK6 = ipaddress.ip_network('::1/128')
WILDCARD = {4: ipaddress.ip_address('0.0.0.0'), 6: ipaddress.ip_address('::')}
PORT_WORDS = ('pub', 'pub-out')  # a port's own rules
SHARED_WORDS = ('pub-nat', 'pub-lo', 'pub-fwd-in', 'pub-fwd-out')  # rules the ports of a namespace share
_PORTS = re.compile(r'^([0-9]{1,5})(?:-([0-9]{1,5}))?$')
ROUTE_LOCALNET = '/proc/sys/net/ipv4/conf/%s/route_localnet'


def port_range(value, param):
    """(first, last) of `8080`, `"8080"` or `"8000-8010"`."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        fail(param, value, 'is not a port or a port range', 'give a port like 8080 or a range like "8000-8010"')
    match = _PORTS.match(str(value).strip())
    if not match:
        fail(param, value, 'is not a port or a port range', 'give a port like 8080 or a range like "8000-8010"')
    first = int(match.group(1))
    last = int(match.group(2) or first)
    if not 1 <= first <= 65535 or not 1 <= last <= 65535:
        fail(param, value, 'is outside 1..65535', 'give ports from 1 to 65535')
    if last < first:
        fail(param, value, 'ends before it starts', 'write the range low-high, like "%d-%d"' % (last, first))
    return first, last


def _ports_text(first, last):
    return str(first) if first == last else '%d-%d' % (first, last)


def _endpoint(address, port):
    return ('%s:%d' if address.version == 4 else '[%s]:%d') % (address, port)


class Publish(object):
    """One published port or port range: validated input; the target is resolved by the planner."""

    def __init__(self, spec, param):
        self.item = spec
        self.param = param
        self.state = spec.get('state') or 'present'
        self.ns = V.netns_name(spec.get('netns'), param + '.netns')
        self.protocol = spec.get('protocol') or 'tcp'
        if spec.get('host_port') is None:
            fail(param + '.host_port', None, 'is missing', 'give the host port, like 8080, or a range like "8000-8010"')
        self.host_ports = port_range(spec['host_port'], param + '.host_port')
        count = self.host_ports[1] - self.host_ports[0]
        if spec.get('target_port') is None:
            self.target_ports = self.host_ports
        else:
            self.target_ports = port_range(spec['target_port'], param + '.target_port')
            if self.target_ports[1] - self.target_ports[0] != count:
                fail(param + '.target_port', spec['target_port'], 'is a range of %d ports, host_port %r one of %d' % (
                    self.target_ports[1] - self.target_ports[0] + 1, spec['host_port'], count + 1),
                    'give ranges of one length: each host port goes to one target port, in order')
        versions = {}
        self.host_address = None
        if spec.get('host_address') is not None:
            self.host_address = V.address(spec['host_address'], param + '.host_address')
            versions['host_address'] = self.host_address.version
            if self.host_address.is_multicast or self.host_address == ipaddress.ip_address('255.255.255.255'):
                # a rule matching it would never see a connection
                fail(param + '.host_address', spec['host_address'], 'is a multicast or broadcast address',
                     "give one of the host's own addresses, or omit host_address for all of them")
            if self.host_address.is_unspecified:
                # 0.0.0.0 / ::, Docker's "every address": the same as none (its family stays)
                self.host_address = None
        self.target = None
        if spec.get('target') is not None:
            self.target = V.address(spec['target'], param + '.target')
            versions['target'] = self.target.version
            if self.target.is_loopback or self.target.is_unspecified or self.target.is_multicast:
                fail(param + '.target', spec['target'], 'is not an address a namespace can hold',
                     "give the target's own address, like 10.0.0.2")
        self.target_netns = V.netns_name(spec.get('target_netns'), param + '.target_netns')
        if spec.get('family'):
            versions['family'] = 4 if spec['family'] == 'ipv4' else 6
        if len(set(versions.values())) > 1:
            first = next(iter(versions))
            other = next(k for k in versions if versions[k] != versions[first])
            fail(param + '.' + other, spec[other], 'is IPv%d but %s=%r is IPv%d' % (
                versions[other], first, spec[first], versions[first]), 'publish IPv4 and IPv6 as two entries')
        self.version = next(iter(versions.values()), 4)
        if self.state == 'present':
            if (self.target is None) == (self.target_netns is None):
                fail(param + '.target', spec.get('target'), 'and target_netns=%r: give exactly one' % (
                    spec.get('target_netns'),), 'name the target address (10.0.0.2) or its namespace (target_netns)')
        self.localhost = bool(spec.get('localhost'))
        if self.localhost and self.version != 4:
            fail(param + '.localhost', True, 'is IPv4 only: the kernel never routes ::1 off the host',
                 'drop localhost for IPv6 ports; publish the IPv6 port on the host\'s own addresses')
        if self.host_address is not None and self.host_address.version == 4 and self.host_address in LOOPBACK4 \
                and not self.localhost:
            fail(param + '.host_address', spec['host_address'], 'is a loopback address',
                 'set localhost: true to publish on 127.0.0.1, or give one of the host\'s own addresses')
        if self.localhost and self.host_address is not None and self.host_address not in LOOPBACK4:
            fail(param + '.localhost', True, 'publishes on 127.0.0.1 too, which host_address=%r leaves out' % (
                spec['host_address'],), 'drop host_address (every address and 127.0.0.1), or localhost')
        if self.host_address is not None and self.host_address.version == 6 and self.host_address.is_loopback:
            fail(param + '.host_address', spec['host_address'], 'is ::1, which the kernel never routes off the host',
                 'give one of the host\'s own IPv6 addresses')
        self.replace = bool(spec.get('replace'))

    @property
    def listen(self):
        return self.host_address if self.host_address is not None else WILDCARD[self.version]

    @property
    def key(self):
        return '%s %s:%s in %s' % (self.protocol, _endpoint(self.listen, self.host_ports[0]).rsplit(':', 1)[0],
                                   _ports_text(*self.host_ports), where(self.ns))

    def mappings(self):
        """[(host port, target port)]."""
        offset = self.target_ports[0] - self.host_ports[0]
        return [(port, port + offset) for port in range(self.host_ports[0], self.host_ports[1] + 1)]

    def describe(self):
        text = '%s %s' % (self.protocol, _endpoint(self.listen, self.host_ports[0]))
        if self.host_ports[0] != self.host_ports[1]:
            text += '-%d' % self.host_ports[1]
        if self.target is not None:
            text += ' -> %s' % _endpoint(self.target, self.target_ports[0])
        return 'published port %s in %s' % (text, where(self.ns))


# --- the rules ---------------------------------------------------------------------------------------

def _key(word, protocol, listen, port):
    return '%s%s %s %s' % (COMMENT_PREFIX, word, protocol, _endpoint(listen, port))


def _local_terms(listen, version, localhost):
    """The leading terms of a port's prerouting and output rules: which destinations are the
    host's. The same for every port of a host address (made once: a thousand ports share them)."""
    key = (listen, version, localhost)
    found = _LOCAL_TERMS.get(key)
    if found is None:
        if listen.is_unspecified:
            local = (MatchLocal(), MatchFamily(version))
        else:
            local = (MatchLocal(), MatchAddress('daddr', listen))
        output = local
        if listen.is_unspecified and not localhost:
            # the host's own connections to 127.0.0.1:P (::1, always) stay on the host: the kernel
            # would not route a loopback source off it
            output = (MatchLocal(), MatchAddress('daddr', LOOPBACK4 if version == 4 else LOOPBACK6, negate=True))
        found = _LOCAL_TERMS[key] = (local, output)
    return found


_LOCAL_TERMS = {}


def port_rules(protocol, listen, port, target, tport, localhost=False):
    """The two rules of one published port, {word: RuleSpec}."""
    to = _endpoint(target, tport)
    local, output = _local_terms(listen, target.version, localhost)
    dnat = (MatchPort(protocol, 'dport', port), Dnat(target, tport))
    pub, out = _key('pub', protocol, listen, port), _key('pub-out', protocol, listen, port)
    return {
        'pub': RuleSpec('prerouting', '%s %s' % (pub, to), local + dnat, key=pub),
        'pub-out': RuleSpec('output', '%s %s%s' % (out, to, ' localhost' if localhost else ''), output + dnat, key=out),
    }


def hairpin_rule(target, network):
    """pub-nat: connections from the target's own network to it that the host translated are
    masqueraded (containernetworking/plugins#68)."""
    key = '%spub-nat %s' % (COMMENT_PREFIX, target)
    return RuleSpec('postrouting', '%s %s' % (key, network), [
        MatchAddress('saddr', network), MatchAddress('daddr', target, nfproto=False), MatchDnat(), Masquerade()],
        key=key)


def localhost_rule(target):
    """pub-lo: the host's connections from 127.0.0.0/8 translated to the target are masqueraded."""
    return RuleSpec('postrouting', '%spub-lo %s' % (COMMENT_PREFIX, target), [
        MatchAddress('saddr', LOOPBACK4), MatchAddress('daddr', target, nfproto=False), MatchDnat(), Masquerade()])


def forward_rules(target, word='pub-fwd', family=NFPROTO_INET):
    """The accepts, at the head of a forward chain, for what the host translated to `target`:
    `ip daddr T ct status dnat accept` and `ip saddr T ct status dnat accept` (its replies). `word`
    pub-allow with the family of another table's chain (its own family check left out in an ip/ip6
    table, as iptables-nft lists rules)."""
    check = family == NFPROTO_INET
    return [RuleSpec('forward', '%s%s-%s %s' % (COMMENT_PREFIX, word, direction, target), [
        MatchAddress(field, target, nfproto=check), MatchDnat(), Verdict('accept')], head=True)
        for direction, field in (('in', 'daddr'), ('out', 'saddr'))]


def _parse_endpoint(text):
    if text.startswith('['):
        address, _sep, port = text[1:].partition(']:')
    else:
        address, _sep, port = text.rpartition(':')
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError('not a port: %r' % text)
    return ipaddress.ip_address(address), int(port)


def _parse_port(args):
    """(protocol, listen, port, target, tport, localhost) of a port rule's comment (after the word)."""
    words = args.split(' ')
    if len(words) not in (3, 4) or words[0] not in PROTOCOLS or words[3:] not in ([], ['localhost']):
        raise ValueError('not a published port comment: %r' % args)
    (listen, port), (target, tport) = _parse_endpoint(words[1]), _parse_endpoint(words[2])
    if listen.version != target.version:
        raise ValueError('not a published port comment: %r' % args)
    return words[0], listen, port, target, tport, words[3:] == ['localhost']


_PARSED = {}


def parse_comment(word):
    """The parser of `linuxnet:WORD ...` comments (Kind.nft_comments)."""
    def parse(args, canonical=None):
        if word in PORT_WORDS:
            # a port's two rules come from one comment's worth of words: built once for both
            key = args[:-len(' localhost')] if args.endswith(' localhost') else args
            rules = _PARSED.get((key, args != key))
            if rules is None:
                rules = _PARSED[(key, args != key)] = port_rules(*_parse_port(args))
            return rules[word]
        words = args.split(' ') if args else []
        if word in ('pub-fwd-in', 'pub-fwd-out') and len(words) == 1:
            return forward_rules(ipaddress.ip_address(words[0]))[0 if word == 'pub-fwd-in' else 1]
        if word == 'pub-nat' and len(words) == 2:
            target, network = ipaddress.ip_address(words[0]), ipaddress.ip_network(words[1], strict=True)
            if target.version == network.version:
                return hairpin_rule(target, network)
        if word == 'pub-lo' and len(words) == 1:
            target = ipaddress.ip_address(words[0])
            if target.version == 4:
                return localhost_rule(target)
        raise ValueError('not a published port comment: %r %r' % (word, args))
    return parse


# --- planning ----------------------------------------------------------------------------------------

def _existing(nft):
    """{(protocol, listen, port): (target, tport, localhost)} of the ports our rules publish."""
    found, localhost = {}, set()
    for rule in nft.rules:
        if rule.spec is None:
            continue
        word, _sep, args = rule.spec.comment[len(COMMENT_PREFIX):].partition(' ')
        if word == 'pub-out' and args.endswith(' localhost'):
            localhost.add(rule.key.split(' ', 1)[1])
        elif word == 'pub' and rule.chain == 'prerouting':
            protocol, listen, port, target, tport, _lo = _parse_port(args)
            found[(protocol, listen, port)] = (target, tport)
    return dict((key, value + ('%s %s' % (key[0], _endpoint(key[1], key[2])) in localhost,))
                for key, value in found.items())


def _by_port(existing):
    """{(protocol, family, port): [(listen, target, tport)]}: the existing ports a host port meets."""
    index = {}
    for (protocol, listen, port), (target, tport, _localhost) in existing.items():
        index.setdefault((protocol, listen.version, port), []).append((listen, target, tport))
    return index


def _overlaps(one, other):
    """Whether two listen addresses of one family catch the same packets."""
    return one == other or one.is_unspecified or other.is_unspecified


def _resolve(plan, reader, obj):
    """The target address of `obj`: given, or the first global address of its family in
    target_netns (what the same task adds there counts). None in check mode when the address is
    assumed to come from an earlier task."""
    if obj.target is not None:
        return obj.target
    name = obj.target_netns
    param = obj.param + '.target_netns'
    if not reader.will_exist(name) and not assume_namespace(plan, reader, name, param):
        raise PlanError('%s=%r: network namespace %r does not exist and the task does not create it'
                        % (param, name, name))
    view = reader.view(name)
    family = 2 if obj.version == 4 else 10
    for address in view.addresses_of(family):
        ip = address.iface.ip
        if view.link_name(address.index) != 'lo' and not ip.is_loopback and not ip.is_link_local:
            return ip
    if plan.assume(('address', name, obj.version), 'netns %s has no IPv%d address to publish to; assumed an '
                   'earlier task adds one (%s=%r), so the rules of %s cannot name their target yet' % (
                       name, obj.version, param.lstrip('.'), name, obj.describe())):
        return None
    raise PlanError('%s=%r: the namespace has no IPv%d address to publish to; address it first '
                    '(in the same task, or with linuxnet.netns.veth), or give target' % (param, name, obj.version))


def _facing(reader, ns, target):
    """(network, interface name) of the address of `ns` whose network holds `target`: where the
    target is a neighbour, and where hairpin traffic must be masqueraded. (None, None) when the
    target is reached through a router."""
    view = reader.view(ns)
    family = 2 if target.version == 4 else 10
    for address in view.addresses_of(family):
        if address.prefixlen < len(address.packed) * 8 and address.contains(target):
            return address.iface.network, view.link_name(address.index)
    return None, None


def plan_publish(plan, reader, objects):
    by_ns = {}
    for obj in objects:
        require_namespace(plan, reader, obj.ns, obj.param + '.netns', obj.state)
        by_ns.setdefault(obj.ns, []).append(obj)
    results = []
    for ns, group in by_ns.items():
        results.extend(_plan_ns(plan, reader, ns, group))
    return results


def _plan_ns(plan, reader, ns, group):
    alive = reader.will_exist(ns)
    nft = reader.nft(ns) if alive else None
    found = _existing(nft) if alive else {}
    existing = _by_port(found)
    # what the task declares, port by port: (protocol, family, port) -> [(listen, obj)]
    declared = {}
    for obj in group:
        for port, _tport in obj.mappings():
            taken = declared.setdefault((obj.protocol, obj.version, port), [])
            for listen, other in taken:
                # a port given up (state absent) by the same task makes way for another
                if obj.state == 'present' and other.state == 'present' and _overlaps(listen, obj.listen):
                    fail(obj.param + '.host_port', obj.item.get('host_port'), '%s %s is also declared by %s (%s)' % (
                        obj.protocol, _endpoint(obj.listen, port), other.param, other.describe()),
                        'publish each host port once per protocol and address')
            taken.append((obj.listen, obj))
    present, absent_keys, results, localnet, flush, facing_of = [], set(), [], {}, [], {}
    after = dict(found)  # (protocol, listen, port) -> (target, tport, localhost) once the plan is applied

    def drop(protocol, listen, port):
        absent_keys.update(_key(word, protocol, listen, port) for word in PORT_WORDS)
        after.pop((protocol, listen, port), None)

    for obj in group:
        result = {'netns': ns, 'protocol': obj.protocol,
                  'host_address': str(obj.host_address) if obj.host_address is not None else None,
                  'host_port': _ports_text(*obj.host_ports), 'target_port': _ports_text(*obj.target_ports),
                  'localhost': obj.localhost, 'state': obj.state, 'target_netns': obj.target_netns}
        results.append(result)
        if obj.state == 'absent' or not alive:
            for port, _tport in obj.mappings():
                drop(obj.protocol, obj.listen, port)
            result['target'] = str(obj.target) if obj.target is not None else None
            continue
        target = _resolve(plan, reader, obj)
        result['target'] = None if target is None else str(target)
        if target is None:
            _plan_unknown_target(plan, ns, obj)
            continue
        if target not in facing_of:
            facing_of[target] = _facing(reader, ns, target)
            if facing_of[target][1] is not None:
                _plan_hairpin(plan, reader, ns, target, obj, facing_of[target][1])
        facing = facing_of[target][1]
        if obj.localhost and facing is None:
            raise PlanError('%s.localhost: the target %s is not on a network of %s (it is reached through a router), '
                            'so 127.0.0.1 cannot be forwarded to it; publish on the host\'s own addresses instead'
                            % (obj.param, target, where(ns)))
        if obj.localhost:
            localnet[facing] = obj
        for port, tport in obj.mappings():
            for listen, other_target, other_tport in existing.get((obj.protocol, obj.version, port), ()):
                if not _overlaps(listen, obj.listen):
                    continue
                if listen == obj.listen and (obj.replace or (other_target, other_tport) == (target, tport)):
                    continue  # the same port again, or taken over: the new rules replace the old
                if listen != obj.listen and (obj.replace or any(
                        other.state == 'absent' for other_listen, other in declared.get((obj.protocol, obj.version, port), ())
                        if other_listen == listen)):
                    drop(obj.protocol, listen, port)
                    continue
                raise PlanError('%s: %s %s is already published to %s by this collection (by another task); set '
                                'replace: true to take the port over, or remove that one first (state: absent)' % (
                                    obj.param, obj.protocol, _endpoint(listen, port), _endpoint(other_target, other_tport)))
            rules = port_rules(obj.protocol, obj.listen, port, target, tport, obj.localhost)
            present.extend(rules.values())
            after[(obj.protocol, obj.listen, port)] = (target, tport, obj.localhost)
            if obj.protocol == 'udp':
                flush.append((rules['pub'], obj.version, port))
    if not alive:
        return results
    shared, gone = _shared_rules(reader, ns, nft, after, facing_of)
    own = _nft_plan.plan(nft, present + shared, absent_keys | gone)
    _warn_listeners(plan, reader, ns, [obj for obj in group if obj.state == 'present'], own)
    nft_plan = own
    if reader.exists(ns):
        targets = sorted(set(target for target, _tport, _localhost in after.values()), key=lambda t: (t.version, t))

        def wanted(family):
            return [spec for target in targets if family == NFPROTO_INET or family == (
                NFPROTO_IPV4 if target.version == 4 else NFPROTO_IPV6) for spec in forward_rules(target, 'pub-allow', family)]
        changes, before, after_rulesets = _nft_plan.plan_foreign_rules(reader.foreign_forward(ns), wanted, 'pub-allow-')
        if changes or before:
            nft_plan = _nft_plan.NftPlan(list(own) + changes, dict(own.before, other_rulesets=before),
                                         dict(own.after, other_rulesets=after_rulesets), nft.genid)
    _nft_plan.schedule(plan, reader, ns, nft_plan, label='published ports')
    _plan_localnet(plan, reader, ns, localnet)
    _plan_flush(plan, ns, own, flush)
    return results


def state_line(state):
    """One published port's state (an entry of port_publish's `ports`) as one line, every field
    of it there: `tcp *:8080 -> 10.0.0.2:80 (target_netns web1)`, `absent: udp 192.0.2.1:53 -> port 53
    of netns dns1 in netns edge`."""
    host = state['host_address'] or '*'
    line = '%s%s %s:%s -> ' % ('absent: ' if state['state'] == 'absent' else '', state['protocol'],
                               '[%s]' % host if ':' in host else host, state['host_port'])
    target = state['target']
    if target is not None:
        line += '%s:%s' % ('[%s]' % target if ':' in target else target, state['target_port'])
        if state['target_netns'] is not None:
            line += ' (target_netns %s)' % state['target_netns']
    elif state['target_netns'] is not None:
        # check mode, the namespace's address made by an earlier task; or a port to remove
        line += 'port %s of netns %s' % (state['target_port'], state['target_netns'])
    else:
        line += 'port %s' % state['target_port']
    if state['localhost']:
        line += ', also on 127.0.0.1'
    if state['netns'] is not None:
        line += ' in netns %s' % state['netns']
    return line


def compact_states(states):
    """What port_publish returns past _module.STATES_LISTED ports: a line each (state_line)."""
    return {'port_lines': [state_line(state) for state in states]}


def _shared_rules(reader, ns, nft, after, facing_of):
    """The rules the ports published once the plan is applied (`after`) share - pub-fwd, a pub-nat
    per target on a network of `ns`, a pub-lo per target a localhost port goes to - and the keys
    of the shared rules of ours no longer needed."""
    wanted, targets = {}, {}
    for target, _tport, localhost in after.values():
        targets[target] = targets.get(target, False) or localhost
    for target, localhost in targets.items():
        for spec in forward_rules(target):
            wanted[spec.key] = spec
        if target not in facing_of:
            facing_of[target] = _facing(reader, ns, target)
        network = facing_of[target][0]
        if network is not None:
            spec = hairpin_rule(target, network)
            wanted[spec.key] = spec
        if localhost:
            spec = localhost_rule(target)
            wanted[spec.key] = spec
    gone = set(rule.key for rule in nft.rules if rule.spec is not None and rule.key not in wanted and
               rule.key[len(COMMENT_PREFIX):].split(' ', 1)[0] in SHARED_WORDS)
    return list(wanted.values()), gone


def _plan_unknown_target(plan, ns, obj):
    """Check mode, the target's address assumed to come from an earlier task: the port is
    published, but its rules, which name the address, can only be planned once it is there."""
    listen = _endpoint(obj.listen, obj.host_ports[0]).rsplit(':', 1)[0]
    summary = 'publish %s %s:%s in %s to port %s of the IPv%d address of netns %s (not known in check mode)' % (
        obj.protocol, listen, _ports_text(*obj.host_ports), where(ns), _ports_text(*obj.target_ports), obj.version,
        obj.target_netns)
    plan.record('published port %s' % obj.key, None, {'target_netns': obj.target_netns,
                                                      'target_port': _ports_text(*obj.target_ports)})
    plan.add(P.NFT, ns, summary, call=_never_applied)


def _never_applied(session):
    raise AssertionError('a port whose target address is not known is planned in check mode only')


def _warn_listeners(plan, reader, ns, objects, nft_plan):
    """A process of the host listening on a port being published loses the connections to the
    host's addresses on that port: say so, naming it (when the port is published, not on every
    re-run)."""
    added = set(change.spec.key for change in nft_plan if isinstance(change, _nft_plan.AddRule))
    ports = dict(((obj.protocol, obj.version, port), obj) for obj in objects for port, _tport in obj.mappings()
                 if _key('pub', obj.protocol, obj.listen, port) in added)
    if not ports or not reader.exists(ns):
        return
    for (protocol, version, port), holders in sorted(reader.listeners(ns, ports).items()):
        obj = ports[(protocol, version, port)]
        who = ', '.join('pid %d (%s)' % holder for holder in holders) or 'a process this run cannot see'
        plan.warnings.append(
            '%s: %s port %d (IPv%d) is in use in %s by %s; once published, connections to %s on it go to the '
            'target instead%s' % (obj.param or 'host_port', protocol, port, version, where(ns), who,
                                  'the host\'s addresses' if obj.host_address is None else obj.host_address,
                                  '' if obj.localhost or version == 6 else ' (127.0.0.1 stays the process\'s)'))


def _plan_localnet(plan, reader, ns, facing):
    """route_localnet on each interface that faces a target published on 127.0.0.1 (the kernel
    routes 127.0.0.0/8 out of an interface only with it). Left on when the port goes, as Docker
    does: other ports, or the user, may rely on it; it goes with the interface."""
    for name, obj in sorted(facing.items()):
        path = ROUTE_LOCALNET % name
        exists = reader.exists(ns) and reader.state(ns).links.get(name) is not None
        current = reader.proc_values(ns, {'value': path})['value'] if exists else None
        plan.record('sysctl %s net.ipv4.conf.%s.route_localnet' % (ns_key(ns), name), current, True)
        if current is not True:
            plan.add(P.NFT, ns, 'set net.ipv4.conf.%s.route_localnet = 1 in %s (for %s)' % (name, where(ns), obj.describe()),
                     call=lambda session, p=path: session.write_proc(ns, p, '1\n'))


def _plan_hairpin(plan, reader, ns, target, obj, facing):
    """Hairpin mode on the bridge port that leads to the target. With br_netfilter, a DNATed
    packet whose new destination is on the bridge it came from is bridged, not routed - back out
    the port it came in on when a namespace reaches itself through HOST:PORT, which a bridge does
    only in hairpin mode (moby#6810). The port is found through the target's own veth: in
    target_netns, or in a namespace the task already read (the network module's declared pairs)."""
    view = reader.view(ns)
    bridge = view.links.get(facing)
    if bridge is None or bridge.kind != 'bridge':
        return
    names = [obj.target_netns] if obj.target_netns is not None else sorted(
        name for name in reader.views if name is not None and name != ns)
    family = 2 if target.version == 4 else 10
    for name in names:
        if not reader.will_exist(name):
            continue
        other = reader.view(name)
        for address in other.addresses_of(family):
            if address.iface.ip != target:
                continue
            link = other.by_index.get(address.index)
            if link is None or link.kind not in ('veth', None):
                return
            key = 'bridge port %s %s hairpin' % (ns_key(ns), facing)
            if link.index > 0 and reader.exists(name):
                # read: the port is the veth's peer, if that is in `ns` and on the bridge
                if link.peer_index is None or link.peer_nsid != reader.nsid(name, ns):
                    return
                port = view.by_index.get(link.peer_index)
                if port is None or port.master != bridge.index or port.hairpin:
                    return
                summary = 'set hairpin on for %s, the port of %s that leads to %s' % (port.name, facing, target)
                plan.record('%s %s' % (key, port.name), False, True)
                plan.add(P.LINK_SET + 1, ns, summary, requests=lambda resolver, i=port.index, s=summary: link_request(
                    C.RTM_NEWLINK, 0, s, index=i, info=C.hairpin_info(True)))
                return
            # the target's interface is made by this run: its peer is asked for once it exists
            summary = 'set hairpin on for the port of %s that leads to %s (%s in %s)' % (
                facing, target, link.name, where(name))
            plan.record('%s (%s)' % (key, target), None, True)

            def requests(resolver, name=name, ifname=link.name, summary=summary):
                peer = resolver.link(name, ifname).peer_index
                port = resolver.link_at(ns, peer) if peer is not None else None
                if port is None or port.master != resolver.index(ns, facing) or port.peer_index is None:
                    return []  # not a port of that bridge after all: nothing to do
                return link_request(C.RTM_NEWLINK, 0, summary, index=port.index, info=C.hairpin_info(True))
            plan.add(P.LINK_SET + 1, ns, summary, requests=requests)
            return


def _plan_flush(plan, ns, nft_plan, flush):
    """UDP sent to a port before its rule existed has a conntrack entry without the DNAT, which
    keeps the flow from the target until it expires: when a UDP port's rule is added or changed
    (never on an unchanged re-run), its entries go, right after the rules are in."""
    added = set(change.spec.comment for change in nft_plan if isinstance(change, _nft_plan.AddRule))
    for spec, version, port in flush:
        if spec.comment in added:
            plan.add(P.CONNTRACK, ns, 'delete the conntrack entries of udp port %d (IPv%d) in %s' % (port, version, where(ns)),
                     call=lambda session, v=version, p=port: session.conntrack_delete(ns, PROTOCOLS['udp'], v, p))


# --- netns_info and purge ------------------------------------------------------------------------------

def report_published(reader, views, query, result):
    """netns_info: the ports published (with `nat: true`), per namespace read."""
    if not query.nat:
        return
    for ns in views:
        info_entry(result, ns)['published'] = [
            {'protocol': protocol, 'host_address': None if listen.is_unspecified else str(listen), 'host_port': port,
             'target': str(target), 'target_port': tport, 'localhost': localhost}
            for (protocol, listen, port), (target, tport, localhost) in sorted(
                _existing(reader.nft(ns)).items(), key=lambda item: (item[0][0], item[0][1].version, item[0][2], str(item[0][1])))]


def purge_publish(reader, objects, match=None):
    """Our published ports, in the namespaces the call names, that it does not declare.
    match(target prefix), if given, narrows the choice to targets it holds."""
    declared = {}
    for obj in objects:
        for port, _tport in obj.mappings():
            declared[(obj.ns, obj.protocol, obj.listen, port)] = obj
    extra = []
    for ns in reader.scope(obj.ns for obj in objects):
        for (protocol, listen, port), (target, tport, _localhost) in sorted(_existing(reader.nft(ns)).items(), key=str):
            if (ns, protocol, listen, port) in declared:
                continue
            if match is not None and not match(ipaddress.ip_network(target)):
                continue
            item = {'netns': ns, 'protocol': protocol, 'host_port': port, 'state': 'absent',
                    'target': str(target), 'target_port': tport}
            if not listen.is_unspecified:
                item['host_address'] = str(listen)
            else:
                item['family'] = 'ipv4' if listen.version == 4 else 'ipv6'
            item['localhost'] = listen.version == 4 and listen in LOOPBACK4
            extra.append(Publish(item, 'purge'))
    return extra


KIND = Kind('port_publish', 'publish', 'ports', 'host_port', OPTIONS, Publish, plan_publish, order=55,
            phrase='a published port (host port to a target address and port)', purge=purge_publish,
            select='prefix', report=report_published,
            purge_doc='Prefixes; a published port is purged when its target address lies inside one of them.',
            nft_comments=dict((word, parse_comment(word)) for word in PORT_WORDS + SHARED_WORDS), boot=boot_late,
            compact=compact_states)
