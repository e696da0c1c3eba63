# -*- coding: utf-8 -*-
# Copyright: linuxnet.netns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
# Do not use this from other collections or standalone plugins/modules!
"""MASQUERADE rules as plan operations: one nf_tables read and one atomic batch per namespace."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress

from ansible_collections.linuxnet.netns.plugins.module_utils import _nft_plan
from ansible_collections.linuxnet.netns.plugins.module_utils import _nft_rules
from ansible_collections.linuxnet.netns.plugins.module_utils import _validate as V
from ansible_collections.linuxnet.netns.plugins.module_utils._common import fail, require_namespace, where
from ansible_collections.linuxnet.netns.plugins.module_utils._kind import Kind, boot_late

OPTIONS = dict(
    source=dict(type='str'),
    out_interface=dict(type='str'),
    exclude_destinations=dict(type='list', elements='str'),
    netns=dict(type='str'),
    state=dict(type='str', choices=['present', 'absent'], default='present'),
)


class MasqRule(object):
    def __init__(self, spec, param):
        self.item = spec
        self.param = param
        self.state = spec.get('state') or 'present'
        self.ns = V.netns_name(spec.get('netns'), param + '.netns')
        if not spec.get('source'):
            fail(param + '.source', spec.get('source'), 'is missing', 'give the prefix to masquerade, like 10.0.0.0/24')
        self.source = V.prefix(spec['source'], param + '.source', allow_default=False)
        if not spec.get('out_interface'):
            fail(param + '.out_interface', spec.get('out_interface'), 'is missing',
                 'give the uplink interface, like eth0')
        self.out_interface = V.ifname(spec['out_interface'], param + '.out_interface')
        try:
            _nft_rules.validate_ifname(self.out_interface, 'oifname')
        except ValueError:
            fail(param + '.out_interface', self.out_interface, 'contains a character nf_tables treats specially '
                 '("*" is a wildcard there, quotes and backslashes end the name)', 'name the interface exactly')
        self.exclude = []
        for index, item in enumerate(spec.get('exclude_destinations') or []):
            name = '%s.exclude_destinations[%d]' % (param, index)
            net = V.prefix(item, name, allow_default=False)
            V.same_family(name, net, self.source.version, param + '.source', self.source)
            self.exclude.append(net)
        V.unique(self.exclude, str, param + '.exclude_destinations')

    @property
    def key(self):
        return (self.ns, str(self.source), self.out_interface)

    def describe(self):
        return 'masquerade %s out %s in %s' % (self.source, self.out_interface, where(self.ns))


def purge_masquerade(reader, rules, match=None):
    """Our MASQUERADE rules, in the namespaces the call names, that it does not declare.
    match(source), if given, narrows the choice."""
    declared = set(rule.key for rule in rules)
    extra = []
    # the host always, as for bridges and veths: an empty list purges the host's rules
    for ns in reader.scope(rule.ns for rule in rules):
        for found in reader.nft(ns).rules:
            if found.chain != 'postrouting' or found.spec is None or not found.key.startswith('linuxnet:masq '):
                continue
            _kind, source, oif = found.key.split(' ')
            if (ns, source, oif) not in declared and (match is None or _matches(match, source)):
                extra.append(MasqRule({'source': source, 'out_interface': oif, 'netns': ns, 'state': 'absent'}, 'purge'))
    return extra


def _matches(match, source):
    try:
        return match(ipaddress.ip_network(source))
    except ValueError:  # a comment edited by hand: not a rule this purge can tell is in scope
        return False


def plan_masquerade(plan, reader, rules):
    by_ns = {}
    for rule in rules:
        require_namespace(plan, reader, rule.ns, rule.param + '.netns', rule.state)
        by_ns.setdefault(rule.ns, []).append(rule)
    results = []
    for ns, group in by_ns.items():
        # a namespace that is gone took its ruleset with it: its (absent) rules need nothing
        if reader.will_exist(ns):
            _nft_plan.schedule(plan, reader, ns, _nft_plan.plan_masquerade_rules(reader.nft(ns), [
                (str(r.source), r.out_interface, r.state, [str(n) for n in r.exclude]) for r in group]))
        for rule in group:
            excluded = [str(n) for n in rule.exclude]
            results.append({'netns': ns, 'source': str(rule.source), 'out_interface': rule.out_interface,
                            'state': rule.state, 'exclude_destinations': excluded,
                            'rule': _nft_rules.masquerade_rule(str(rule.source), rule.out_interface, excluded).text})
    return results


def report_nat(reader, views, query, result):
    """netns_info: our rules (with `nat: true`), in the host and each namespace read."""
    result['nat'] = []
    for ns in views if query.nat else ():
        for rule in reader.nft(ns).rules:
            entry = {'netns': ns, 'chain': rule.chain, 'rule': rule.text, 'verified': rule.verified}
            if rule.spec is not None and rule.chain == 'postrouting' and rule.key.startswith('linuxnet:masq '):
                _kind, source, oif = rule.spec.key.split(' ')
                entry.update(source=source, out_interface=oif, exclude_destinations=[
                    str(term.network) for term in rule.spec.terms
                    if isinstance(term, _nft_rules.MatchAddress) and term.field == 'daddr'])
            result['nat'].append(entry)


KIND = Kind('nat_masquerade', 'masquerade', 'rules', 'source', OPTIONS, MasqRule, plan_masquerade, order=50,
            phrase='a MASQUERADE rule', purge=purge_masquerade, select='prefix', report=report_nat,
            purge_doc='Prefixes; a MASQUERADE rule is purged when its source lies inside one of them.',
            nft_comments={'masq': _nft_rules.parse_masq_comment}, boot=boot_late)
