# -*- coding: utf-8 -*-
# Copyright: linuxnet.netns contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
# Do not use this from other collections or standalone plugins/modules!
"""nf_tables transactions: a plan (_nft_plan) sent as one nfnetlink batch over the transport, which
the kernel commits atomically or not at all, and its answers turned into errors that name the
change the kernel refused."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno

from ansible_collections.linuxnet.netns.plugins.module_utils import _nft_codec as N
from ansible_collections.linuxnet.netns.plugins.module_utils._nft_state import read
from ansible_collections.linuxnet.netns.plugins.module_utils._transport import NetlinkError

ERESTART = getattr(errno, 'ERESTART', 85)

# How long apply() waits for the kernel's answer. The kernel processes a batch inside our
# sendmsg() call, so every answer is queued before send() returns; the wait is a safety net.
ANSWER_TIMEOUT = 10.0


class NftError(NetlinkError):
    """The kernel refused a transaction; `change` is the change it refused, if it named one."""

    def __init__(self, code, what, kernel_msg=None, change=None):
        super(NftError, self).__init__(code, what, kernel_msg)
        self.change = change


class NftConflict(NftError):
    """The ruleset changed between read() and apply() (ERESTART): read and plan again."""


def batch(plan_or_changes, genid=None):
    """The encoded batch: [(bytes, change or None)], BEGIN and END included.

    How the kernel answers a batch (nfnetlink_rcv_batch; checked on 6.18, see tests):
    - every message in between that fails gets an error, whatever its flags; it does not stop
      the kernel from checking the rest, and then nothing of the batch is committed;
    - a message with NLM_F_ACK also gets an ack when it succeeds; errors and acks come in batch
      order, after the whole batch was processed;
    - batch-wide failures (no CAP_NET_ADMIN, a stale NFNL_BATCH_GENID -> ERESTART, no memory,
      a commit that fails) are one error carrying BEGIN's sequence number, and may come with no
      per-message answer at all;
    - BEGIN and END are acked only on kernels >= 6.10 and only when they ask for it (END only
      after a successful commit), so we never ask: older kernels would leave us waiting;
    - a batch without END is dropped silently (acks, no commit): ours always ends in END, in the
      same sendmsg.
    So NLM_F_ACK goes on the last change only: its answer comes after every other one, and the
    number of answers stays small however big the batch (no receive buffer overflow).
    """
    out = [(N.batch_begin(genid), None)]
    body = []
    for change in plan_or_changes:
        for cls, nft_msg, flags, attrs in change.messages():
            # rules (cls None) are encoded here; tables and chains, few, by pyroute2's classes
            data = N.rule_message(nft_msg, flags, attrs, change.family) if cls is None else \
                N.nft_message(cls, nft_msg, flags, attrs, change.family)
            body.append((data, change))
    if body:
        N.want_ack(body[-1][0])
    out.extend(body)
    out.append((N.batch_end(), None))
    return out


def apply(sock, plan_or_changes, genid=None, timeout=ANSWER_TIMEOUT):
    """Send the changes as one nf_tables transaction; nothing is changed unless all succeed.

    With `genid` (a plan carries the one it was planned against; pass genid=False to skip the
    check) the kernel refuses the batch if the ruleset changed since it was read: NftConflict.
    Any refusal raises NftError with the kernel's errno and extended-ack text, naming the change
    it refused when the kernel names one (the first one, in batch order).
    """
    changes = list(plan_or_changes)
    if not changes:
        return
    if genid is None:
        genid = getattr(plan_or_changes, 'genid', None)
    messages = batch(changes, genid or None)
    try:
        seqs = sock.send_batch([data for data, _change in messages])
    except (OSError, IOError) as exc:
        raise NftError(exc.errno or errno.EIO, 'nf_tables transaction of %d changes (%d bytes): could not '
                       'send it; nothing was changed' % (len(changes), sum(len(data) for data, _c in messages)))
    try:
        answers = sock.batch_answers(seqs, timeout)
    except (OSError, IOError) as exc:
        if exc.errno == errno.ETIMEDOUT:
            raise NftError(errno.ETIMEDOUT, 'nf_tables transaction of %d changes: no answer from '
                           'the kernel; read the ruleset again to learn whether it was applied' % len(changes))
        if exc.errno == errno.ENOBUFS:
            raise NftError(errno.ENOBUFS, 'nf_tables transaction of %d changes: the kernel\'s answers '
                           'overflowed the receive buffer; read the ruleset again to learn whether it '
                           'was applied' % len(changes))
        raise

    errors = []  # (index in batch, code, kernel text)
    batch_error = None
    for index, (code, text) in answers.items():  # in the order they came
        if code and messages[index][1] is None:
            # BEGIN (EPERM, ENOMEM, ERESTART, a failed commit) or END: the whole batch
            batch_error = (code, text)
        elif code:
            errors.append((index, code, text))
    if errors:
        index, code, text = min(errors)
        change = messages[index][1]
        more = ' (and %d more refused)' % (len(errors) - 1) if len(errors) > 1 else ''
        raise NftError(code, 'nf_tables: %s%s' % (change.text, more), text, change)
    if batch_error is not None:
        code, text = batch_error
        if code == ERESTART:
            raise NftConflict(code, 'nf_tables transaction of %d changes: the ruleset changed since it '
                              'was read; read it again and plan again' % len(changes), text)
        raise NftError(code, 'nf_tables transaction of %d changes' % len(changes), text)


def ensure(sock, parsers, make_plan, check_mode=False, attempts=3):
    """read -> make_plan(state) -> apply, again from the start if the ruleset changed meanwhile.

    Returns the plan that was applied (or, in check mode, that would be).
    """
    for attempt in range(attempts):
        current = read(sock, parsers)
        result = make_plan(current)
        if check_mode or not result:
            return result
        try:
            apply(sock, result)
            return result
        except NftConflict:
            if attempt == attempts - 1:
                raise
    return None  # pragma: no cover
