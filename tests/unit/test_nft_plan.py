"""nf_tables (_nft_*.py) without a kernel: planning on made-up states, expression encoding and decoding, batches."""
import struct

import pytest

from ansible_collections.linuxnet.netns.plugins.module_utils import (
    _codec,
    _nft_apply,
    _nft_codec,
    _nft_plan,
    _nft_rules,
    _nft_state,
)
from ansible_collections.linuxnet.netns.plugins.module_utils._kinds import comment_parsers

PARSERS = comment_parsers()

POSTROUTING = _nft_state.ChainInfo('postrouting', 1, 'nat', 'postrouting', 100, 'accept')


def rule(handle, source, oifname, chain='postrouting', comment=None, canonical=None):
    spec = _nft_rules.masquerade_rule(source, oifname)
    return _nft_state.RuleInfo(chain, handle, comment if comment is not None else spec.comment,
                               canonical if canonical is not None else spec.canonical(), PARSERS)


def state(*rules, **kw):
    chains = kw.get('chains', {'postrouting': POSTROUTING})
    table = {'handle': 1, 'flags': kw.get('flags', 0), 'use': kw.get('use', len(chains))}
    return _nft_state.NftState(genid=7, table=table, chains=chains, rules=list(rules))


EMPTY = _nft_state.NftState(genid=3)


def actions(plan):
    return [change.action for change in plan]


# --- planning -----------------------------------------------------------------------------------

def test_first_rule_creates_table_and_chain():
    plan = _nft_plan.plan_masquerade_rules(EMPTY, [('10.0.0.0/24', 'eth0', 'present')])
    assert actions(plan) == ['add_table', 'add_chain', 'add_rule']
    assert plan.lines() == [
        'add table inet linuxnet_netns',
        'add chain inet linuxnet_netns postrouting { type nat hook postrouting priority 100; policy accept; }',
        'add rule inet linuxnet_netns postrouting ip saddr 10.0.0.0/24 oifname "eth0" masquerade '
        'comment "linuxnet:masq 10.0.0.0/24 eth0"']
    assert plan.changed and plan.genid == 3
    assert plan.diff() == {'before': {}, 'after': {
        'table': 'inet linuxnet_netns',
        'chains': {'postrouting': {
            'chain': 'type nat hook postrouting priority 100; policy accept;',
            'rules': ['ip saddr 10.0.0.0/24 oifname "eth0" masquerade comment "linuxnet:masq 10.0.0.0/24 eth0"']}}}}


def test_present_rule_is_no_change():
    current = state(rule(2, '10.0.0.0/24', 'eth0'))
    plan = _nft_plan.plan_masquerade_rules(current, [('10.0.0.0/24', 'eth0', 'present')])
    assert plan == [] and not plan.changed and plan.before == plan.after == current.view()


def test_host_bits_and_repeats_name_the_same_rule():
    current = state(rule(2, '10.0.0.0/24', 'eth0'))
    assert _nft_plan.plan_masquerade_rules(current, [('10.0.0.1/24', 'eth0', 'present'),
                                                     ('10.0.0.0/24', 'eth0', 'present')]) == []


def test_second_rule_only_adds_the_rule():
    current = state(rule(2, '10.0.0.0/24', 'eth0'))
    plan = _nft_plan.plan_masquerade_rules(current, [('10.0.0.0/24', 'eth0', 'present'), ('fd00::/64', 'eth0', 'present')])
    assert actions(plan) == ['add_rule']
    assert plan.after['chains']['postrouting']['rules'][-1] == \
        'ip6 saddr fd00::/64 oifname "eth0" masquerade comment "linuxnet:masq fd00::/64 eth0"'


def test_duplicate_is_deleted():
    current = state(rule(2, '10.0.0.0/24', 'eth0'), rule(3, '10.0.0.0/24', 'eth0'))
    plan = _nft_plan.plan_masquerade_rules(current, [('10.0.0.0/24', 'eth0', 'present')])
    assert actions(plan) == ['delete_rule'] and plan[0].rule.handle == 3
    assert plan.lines() == ['delete rule inet linuxnet_netns postrouting handle 3 '
                            '# linuxnet:masq 10.0.0.0/24 eth0 (duplicate)']


def test_rule_that_does_not_match_its_comment_is_replaced():
    wrong = _nft_rules.masquerade_rule('10.0.0.0/24', 'eth1').canonical()
    current = state(rule(2, '10.0.0.0/24', 'eth0', canonical=wrong))
    assert not current.rules[0].verified
    plan = _nft_plan.plan_masquerade_rules(current, [('10.0.0.0/24', 'eth0', 'present')])
    assert actions(plan) == ['delete_rule', 'add_rule'] and plan[1].replaces
    assert 'does not match its comment' in plan.lines()[0]


def test_non_canonical_comment_is_replaced():
    current = state(rule(2, '10.0.0.0/24', 'eth0', comment='linuxnet:masq 10.0.0.1/24 eth0'))
    assert current.rules[0].key == 'linuxnet:masq 10.0.0.0/24 eth0' and not current.rules[0].verified
    assert actions(_nft_plan.plan_masquerade_rules(current, [('10.0.0.0/24', 'eth0', 'present')])) == ['delete_rule', 'add_rule']


def test_rule_in_the_wrong_chain_is_replaced():
    forward = _nft_state.ChainInfo('forward', 2, 'filter', 'forward', 0, 'accept')
    current = state(rule(2, '10.0.0.0/24', 'eth0', chain='forward'),
                    chains={'postrouting': POSTROUTING, 'forward': forward})
    assert actions(_nft_plan.plan_masquerade_rules(current, [('10.0.0.0/24', 'eth0', 'present')])) == ['delete_rule', 'add_rule']


def test_absent_of_last_rule_deletes_table():
    current = state(rule(2, '10.0.0.0/24', 'eth0'))
    plan = _nft_plan.plan_masquerade_rules(current, [('10.0.0.0/24', 'eth0', 'absent')])
    assert actions(plan) == ['delete_rule', 'delete_table']
    assert plan.lines()[-1] == 'delete table inet linuxnet_netns (no rules left in it)'
    assert plan.after == {}


def test_absent_of_one_of_two_keeps_the_table():
    current = state(rule(2, '10.0.0.0/24', 'eth0'), rule(3, '10.1.0.0/24', 'eth1'))
    plan = _nft_plan.plan_masquerade_rules(current, [('10.0.0.0/24', 'eth0', 'absent')])
    assert actions(plan) == ['delete_rule']
    assert plan.after['chains']['postrouting']['rules'] == [current.rules[1].text]


def test_absent_of_missing_rule_is_no_change():
    assert _nft_plan.plan_masquerade_rules(EMPTY, [('10.0.0.0/24', 'eth0', 'absent')]) == []
    current = state(rule(2, '10.0.0.0/24', 'eth0'))
    assert _nft_plan.plan_masquerade_rules(current, [('10.9.0.0/24', 'eth0', 'absent')]) == []


def test_foreign_rule_keeps_the_table():
    foreign = _nft_state.RuleInfo('postrouting', 9, None, (('unknown', 'counter'),), PARSERS)
    assert not foreign.ours and 'not managed' in foreign.text
    current = state(rule(2, '10.0.0.0/24', 'eth0'), foreign)
    assert actions(_nft_plan.plan_masquerade_rules(current, [('10.0.0.0/24', 'eth0', 'absent')])) == ['delete_rule']


def test_foreign_objects_keep_the_table():
    current = state(rule(2, '10.0.0.0/24', 'eth0'), use=2)
    assert current.foreign_objects() == 1
    assert actions(_nft_plan.plan_masquerade_rules(current, [('10.0.0.0/24', 'eth0', 'absent')])) == ['delete_rule']


def test_unknown_kind_of_ours_is_left_alone():
    """A comment of a kind this version does not know (a newer one made it) is not touched."""
    other = _nft_state.RuleInfo('postrouting', 5, 'linuxnet:future something', (), PARSERS)
    assert other.spec is None
    current = state(rule(2, '10.0.0.0/24', 'eth0'), other)
    assert actions(_nft_plan.plan_masquerade_rules(current, [('10.0.0.0/24', 'eth0', 'absent')])) == ['delete_rule']


def test_empty_table_of_ours_is_removed():
    assert actions(_nft_plan.plan_masquerade_rules(state(), [])) == ['delete_table']


def test_wrong_chain_is_replaced_with_its_rules():
    bad = _nft_state.ChainInfo('postrouting', 1, 'nat', 'postrouting', 0, 'accept')
    current = state(rule(2, '10.1.0.0/24', 'eth1'), chains={'postrouting': bad})
    plan = _nft_plan.plan_masquerade_rules(current, [('10.0.0.0/24', 'eth0', 'present')])
    assert actions(plan) == ['delete_rule', 'delete_chain', 'add_chain', 'add_rule', 'add_rule']
    assert plan.lines()[1] == ('delete chain inet linuxnet_netns postrouting (it is type nat hook postrouting '
                               'priority 0; policy accept;, wanted type nat hook postrouting priority 100; '
                               'policy accept;)')
    assert sorted(plan.after['chains']['postrouting']['rules']) == sorted(
        [current.rules[0].text, _nft_rules.masquerade_rule('10.0.0.0/24', 'eth0').text])


def test_wrong_chain_re_adds_a_duplicate_once():
    bad = _nft_state.ChainInfo('postrouting', 1, 'nat', 'postrouting', 0, 'accept')
    current = state(rule(2, '10.1.0.0/24', 'eth1'), rule(3, '10.1.0.0/24', 'eth1'), chains={'postrouting': bad})
    plan = _nft_plan.plan_masquerade_rules(current, [('10.0.0.0/24', 'eth0', 'present')])
    assert actions(plan) == ['delete_rule', 'delete_rule', 'delete_chain', 'add_chain', 'add_rule', 'add_rule']


def test_dormant_table_is_woken():
    current = state(rule(2, '10.0.0.0/24', 'eth0'), flags=_nft_codec.NFT_TABLE_F_DORMANT)
    assert current.view()['dormant'] is True
    plan = _nft_plan.plan_masquerade_rules(current, [('10.0.0.0/24', 'eth0', 'present')])
    assert actions(plan) == ['wake_table'] and 'dormant' not in plan.after


@pytest.mark.parametrize('desired, message', [
    ([('10.0.0.0/33', 'eth0', 'present')], "source '10.0.0.0/33' is not an IPv4 or IPv6 prefix"),
    ([('eth0', 'eth0', 'present')], "source 'eth0' is not an IPv4 or IPv6 prefix"),
    ([('10.0.0.0/24', 'eth0*', 'present')], "oifname 'eth0*' is not a valid interface name"),
    ([('10.0.0.0/24', 'a' * 16, 'present')], 'longer than 15 bytes'),
    ([('10.0.0.0/24', '', 'present')], 'oifname must be a non-empty string'),
    ([('10.0.0.0/24', 'eth 0', 'present')], 'is not a valid interface name'),
    ([('10.0.0.0/24', 'eth0', 'gone')], "state must be 'present' or 'absent', not 'gone'"),
    ([('10.0.0.0/24', 'eth0')], 'must be (source, oifname, state'),
    ([('10.0.0.0/24', 'eth0', 'present'), ('10.0.0.5/24', 'eth0', 'absent')],
     'masq 10.0.0.0/24 eth0 is listed with state present and with state absent'),
])
def test_bad_input_names_the_value(desired, message):
    with pytest.raises(ValueError) as caught:
        _nft_plan.plan_masquerade_rules(EMPTY, desired)
    assert message in str(caught.value)


def test_spec_from_comment():
    assert _nft_rules.spec_from_comment('linuxnet:masq fd00::/64 wan0', None, PARSERS) == _nft_rules.masquerade_rule('fd00::/64', 'wan0')
    for comment in (None, '', 'hello', 'linuxnet:masq', 'linuxnet:masq 10.0.0.0/24', 'linuxnet:masq x eth0',
                    'linuxnet:masq 10.0.0.0/24 eth0 extra', 'linuxnet:nope a b'):
        assert _nft_rules.spec_from_comment(comment, None, PARSERS) is None


# --- encoding and decoding ----------------------------------------------------------------------

def encode_rule(expressions, comment=None):
    attrs = [('NFTA_RULE_TABLE', _nft_rules.TABLE), ('NFTA_RULE_CHAIN', 'postrouting'),
             ('NFTA_RULE_EXPRESSIONS', expressions)]
    if comment is not None:
        attrs.append(('NFTA_RULE_USERDATA', _nft_codec.comment_userdata(comment)))
    data = _codec.encode(_nft_codec.nft_rule_raw_msg, _nft_codec.msg_type(_nft_codec.NFT_MSG_NEWRULE), 0, dict(_nft_codec.FIELDS), attrs)
    msg = _nft_codec.nft_rule_raw_msg(bytes(data))
    msg.decode()
    return msg


@pytest.mark.parametrize('source', ['10.0.0.0/24', '10.0.0.0/25', '0.0.0.0/0', '10.0.0.1/32',
                                    'fd00::/64', 'fd00::/60', '::/0', 'fd00::1/128'])
def test_encode_decode_round_trip(source):
    spec = _nft_rules.masquerade_rule(source, 'eth0')
    msg = encode_rule(spec.expressions(), spec.comment)
    assert _nft_codec.decode_expressions(msg.get_attr('NFTA_RULE_EXPRESSIONS')) == spec.canonical()
    assert _nft_codec.parse_userdata(msg.get_attr('NFTA_RULE_USERDATA')) == spec.comment


def _payload(offset, length):
    return _nft_codec.expression('payload', [('NFTA_PAYLOAD_DREG', 1), ('NFTA_PAYLOAD_BASE', 1),
                                             ('NFTA_PAYLOAD_OFFSET', offset), ('NFTA_PAYLOAD_LEN', length)])


def _bitwise(mask):
    return _nft_codec.expression('bitwise', [('NFTA_BITWISE_SREG', 1), ('NFTA_BITWISE_DREG', 1),
                                             ('NFTA_BITWISE_LEN', len(mask)),
                                             ('NFTA_BITWISE_MASK', _nft_codec.value_data(mask)),
                                             ('NFTA_BITWISE_XOR', _nft_codec.value_data(b'\0' * len(mask)))])


def _meta(key):
    return _nft_codec.expression('meta', [('NFTA_META_DREG', 1), ('NFTA_META_KEY', key)])


def test_older_nft_prefix_encoding_is_the_same_rule():
    """nft before 0.9.x loaded the whole address and masked it even for a /24."""
    spec = _nft_rules.masquerade_rule('10.0.0.0/24', 'eth0')
    exprs = [_meta(15), _nft_codec.cmp_expression(0, b'\x02'), _payload(12, 4), _bitwise(b'\xff\xff\xff\x00'),
             _nft_codec.cmp_expression(0, b'\x0a\x00\x00\x00')] + spec.expressions()[-3:]
    assert _nft_codec.decode_expressions(encode_rule(exprs).get_attr('NFTA_RULE_EXPRESSIONS')) == spec.canonical()


def test_iptables_name_compare_is_the_same_rule():
    spec = _nft_rules.masquerade_rule('10.0.0.0/24', 'eth0')
    exprs = spec.expressions()[:4] + [_meta(7), _nft_codec.cmp_expression(0, b'eth0\0'), _nft_rules.Masquerade().expressions()[0]]
    assert _nft_codec.decode_expressions(encode_rule(exprs).get_attr('NFTA_RULE_EXPRESSIONS')) == spec.canonical()


@pytest.mark.parametrize('change', ['wildcard', 'other_prefix', 'counter', 'negated', 'no_nfproto', 'daddr'])
def test_different_rules_do_not_verify(change):
    spec = _nft_rules.masquerade_rule('10.0.0.0/24', 'eth0')
    exprs = spec.expressions()
    if change == 'wildcard':  # oifname "eth0*"
        exprs = exprs[:4] + [_meta(7), _nft_codec.cmp_expression(0, b'eth0')] + exprs[-1:]
    elif change == 'other_prefix':
        exprs = _nft_rules.masquerade_rule('10.0.0.0/16', 'eth0').expressions()
    elif change == 'counter':
        exprs = exprs[:-1] + [_nft_codec.expression('counter', [])] + exprs[-1:]
    elif change == 'negated':
        exprs = exprs[:3] + [_nft_codec.cmp_expression(1, b'\x0a\x00\x00')] + exprs[4:]
    elif change == 'no_nfproto':
        exprs = exprs[2:]
    elif change == 'daddr':
        exprs = exprs[:2] + [_payload(16, 3)] + exprs[3:]
    assert _nft_codec.decode_expressions(encode_rule(exprs).get_attr('NFTA_RULE_EXPRESSIONS')) != spec.canonical()


def test_userdata():
    assert _nft_codec.comment_userdata('ab') == b'\x00\x03ab\x00'
    assert _nft_codec.parse_userdata(b'\x00\x03ab\x00') == 'ab'
    assert _nft_codec.parse_userdata(b'\x01\x01x\x00\x03ab\x00') == 'ab'  # another TLV first
    assert _nft_codec.parse_userdata(b'\x00\x09ab') is None  # truncated
    assert _nft_codec.parse_userdata(None) is None
    with pytest.raises(ValueError):
        _nft_codec.comment_userdata('x' * 255)


def test_batch_flags_and_genid():
    plan = _nft_plan.plan_masquerade_rules(EMPTY, [('10.0.0.0/24', 'eth0', 'present'), ('10.1.0.0/24', 'eth0', 'present')])
    messages = _nft_apply.batch(plan, genid=1234)
    assert len(messages) == len(plan) + 2
    types = [struct.unpack_from('=H', data, 4)[0] for data, _c in messages]
    flags = [struct.unpack_from('=H', data, 6)[0] for data, _c in messages]
    assert types[0] == _nft_codec.NFNL_MSG_BATCH_BEGIN and types[-1] == _nft_codec.NFNL_MSG_BATCH_END
    assert [bool(f & _codec.NLM_F_ACK) for f in flags] == [False, False, False, False, True, False]
    assert [c for _d, c in messages][1:-1] == list(plan)
    begin = _nft_codec.nfnl_batch_msg(bytes(messages[0][0]))
    begin.decode()
    assert begin['res_id'] == _nft_codec.NFNL_SUBSYS_NFTABLES and begin.get_attr('NFNL_BATCH_GENID') == 1234
    begin = _nft_codec.nfnl_batch_msg(bytes(_nft_apply.batch(plan)[0][0]))
    begin.decode()
    assert begin.get_attr('NFNL_BATCH_GENID') is None


def test_masquerade_with_exclusions_round_trips():
    """Excluded destinations are read back from the expressions; the comment only carries a hash."""
    spec = _nft_rules.masquerade_rule('10.200.1.0/24', 'eth0', ['10.200.3.0/24', '10.200.2.0/24'])
    assert spec.key == 'linuxnet:masq 10.200.1.0/24 eth0'
    assert spec.comment.startswith(spec.key + ' except=')
    assert spec.text.startswith('ip saddr 10.200.1.0/24 ip daddr != 10.200.2.0/24 ip daddr != 10.200.3.0/24 oifname "eth0"')
    back = _nft_rules.spec_from_comment(spec.comment, spec.canonical(), PARSERS)
    assert back == spec
    # a rule whose exclusions were edited does not verify against its comment's hash
    other = _nft_rules.masquerade_rule('10.200.1.0/24', 'eth0', ['10.200.2.0/24'])
    assert _nft_rules.spec_from_comment(spec.comment, other.canonical(), PARSERS) != spec
    with pytest.raises(ValueError, match='IPv6'):
        _nft_rules.masquerade_rule('10.0.0.0/24', 'eth0', ['fd00::/64'])


def test_changed_exclusions_replace_the_rule():
    old = _nft_rules.masquerade_rule('10.200.1.0/24', 'eth0', ['10.200.2.0/24'])
    current = state(_nft_state.RuleInfo('postrouting', 5, old.comment, old.canonical(), PARSERS))
    assert _nft_plan.plan_masquerade_rules(current, [('10.200.1.0/24', 'eth0', 'present', ['10.200.2.0/24'])]) == []
    plan = _nft_plan.plan_masquerade_rules(current, [('10.200.1.0/24', 'eth0', 'present', ['10.200.2.0/24', '10.200.3.0/24'])])
    assert [change.action for change in plan] == ['delete_rule', 'add_rule']
    plan = _nft_plan.plan_masquerade_rules(current, [('10.200.1.0/24', 'eth0', 'absent')])
    assert [change.action for change in plan][0] == 'delete_rule'
