"""The state machine, table-tested: every (state, trigger) pair is either in this table or
must be refused. The expected table is written out here, not read from the code."""

from __future__ import annotations

import itertools

import pytest

from svarinn_daemon.errors import IllegalTransitionError
from svarinn_daemon.ledger.states import (
    CLAIMABLE,
    LEASABLE,
    Lease,
    SeenAction,
    State,
    Trigger,
    Work,
    seen_action,
    transition,
    work_for,
)

S = State
T = Trigger
EXPECTED: dict[tuple[State | None, Trigger], tuple[State, Lease]] = {
    (None, T.SEE): (S.SEEN, Lease.NONE),
    (S.SEEN, T.CLAIM): (S.CLAIMED, Lease.HELD),
    (S.RETRY_SCHEDULED, T.CLAIM): (S.CLAIMED, Lease.HELD),
    (S.CLAIMED, T.CLAIM): (S.CLAIMED, Lease.HELD),
    (S.ARCHIVED, T.CLAIM): (S.ARCHIVED, Lease.HELD),
    (S.FAILED_PERMANENTLY, T.CLAIM): (S.FAILED_PERMANENTLY, Lease.HELD),
    (S.CLAIMED, T.ARCHIVE): (S.ARCHIVED, Lease.KEPT),
    (S.ARCHIVED, T.ACKNOWLEDGE): (S.ACKNOWLEDGED, Lease.CLEARED),
    (S.CLAIMED, T.SCHEDULE_RETRY): (S.RETRY_SCHEDULED, Lease.CLEARED),
    (S.ARCHIVED, T.SCHEDULE_RETRY): (S.ARCHIVED, Lease.CLEARED),
    (S.FAILED_PERMANENTLY, T.SCHEDULE_RETRY): (S.FAILED_PERMANENTLY, Lease.CLEARED),
    (S.CLAIMED, T.FAIL): (S.FAILED_PERMANENTLY, Lease.KEPT),
    (S.FAILED_PERMANENTLY, T.REPORT): (S.REPORTED, Lease.CLEARED),
    (S.CLAIMED, T.RELEASE): (S.SEEN, Lease.CLEARED),
    (S.ARCHIVED, T.RELEASE): (S.ARCHIVED, Lease.CLEARED),
    (S.FAILED_PERMANENTLY, T.RELEASE): (S.FAILED_PERMANENTLY, Lease.CLEARED),
    (S.CLAIMED, T.EXPIRE): (S.SEEN, Lease.CLEARED),
    (S.ARCHIVED, T.EXPIRE): (S.ARCHIVED, Lease.CLEARED),
    (S.FAILED_PERMANENTLY, T.EXPIRE): (S.FAILED_PERMANENTLY, Lease.CLEARED),
    (S.ACKNOWLEDGED, T.SEEN_AGAIN): (S.ARCHIVED, Lease.NONE),
    (S.REPORTED, T.SEEN_AGAIN): (S.FAILED_PERMANENTLY, Lease.NONE),
    (S.RETRY_SCHEDULED, T.OPERATOR_RETRY): (S.SEEN, Lease.NONE),
    (S.FAILED_PERMANENTLY, T.OPERATOR_RETRY): (S.SEEN, Lease.NONE),
    (S.ARCHIVED, T.OPERATOR_RETRY): (S.ARCHIVED, Lease.NONE),
    # an archive that answers later (Fiks Arkiv): sent, then its reply decides
    (S.CLAIMED, T.SEND): (S.SENT, Lease.CLEARED),
    (S.SENT, T.CLAIM): (S.CLAIMED, Lease.HELD),
    (S.SENT, T.ARCHIVE_RECEIVED): (S.SENT, Lease.NONE),
    (S.SENT, T.ARCHIVE): (S.ARCHIVED, Lease.NONE),
    (S.SENT, T.FAIL): (S.FAILED_PERMANENTLY, Lease.NONE),
    (S.SENT, T.SCHEDULE_RETRY): (S.RETRY_SCHEDULED, Lease.NONE),
    (S.RETRY_SCHEDULED, T.ARCHIVE): (S.ARCHIVED, Lease.NONE),
    (S.FAILED_PERMANENTLY, T.ARCHIVE): (S.ARCHIVED, Lease.NONE),
    (S.SENT, T.OPERATOR_RETRY): (S.SEEN, Lease.NONE),
}
ALL_PAIRS = list(itertools.product([None, *State], Trigger))


@pytest.mark.parametrize(("state", "trigger"), ALL_PAIRS)
def test_every_pair_is_legal_exactly_as_the_table_says(
    state: State | None, trigger: Trigger
) -> None:
    if (state, trigger) in EXPECTED:
        assert transition(state, trigger) == EXPECTED[(state, trigger)]
    else:
        with pytest.raises(IllegalTransitionError, match=trigger.value):
            transition(state, trigger)


def test_an_archived_letter_can_never_go_to_the_adapter_or_to_paper() -> None:
    # Only a CLAIMED letter is handed to the adapter, and nothing leads from archived back
    # to claimed, seen or failed_permanently except through acknowledged -> archived.
    reachable = {to for (frm, _), (to, _) in EXPECTED.items() if frm is S.ARCHIVED}
    assert reachable == {S.ARCHIVED, S.ACKNOWLEDGED}
    reachable_from_ack = {to for (frm, _), (to, _) in EXPECTED.items() if frm is S.ACKNOWLEDGED}
    assert reachable_from_ack == {S.ARCHIVED}
    with pytest.raises(IllegalTransitionError):
        transition(S.ARCHIVED, T.FAIL)


def test_work_follows_from_the_state() -> None:
    assert work_for(S.CLAIMED) is Work.IMPORT
    assert work_for(S.ARCHIVED) is Work.ACKNOWLEDGE
    assert work_for(S.FAILED_PERMANENTLY) is Work.REPORT
    for state in (S.SEEN, S.RETRY_SCHEDULED, S.ACKNOWLEDGED, S.REPORTED, S.SENT):
        with pytest.raises(IllegalTransitionError):
            work_for(state)
    assert set(LEASABLE) == {S.CLAIMED, S.ARCHIVED, S.FAILED_PERMANENTLY}
    assert set(CLAIMABLE) == {
        S.SEEN,
        S.RETRY_SCHEDULED,
        S.CLAIMED,
        S.ARCHIVED,
        S.FAILED_PERMANENTLY,
        S.SENT,  # no reply by its kvittering timeout: claimed to be sent again
    }


@pytest.mark.parametrize(
    ("state", "action"),
    [
        (S.SEEN, SeenAction.IN_PROGRESS),
        (S.CLAIMED, SeenAction.IN_PROGRESS),
        (S.ARCHIVED, SeenAction.IN_PROGRESS),
        (S.RETRY_SCHEDULED, SeenAction.IN_PROGRESS),
        (S.FAILED_PERMANENTLY, SeenAction.IN_PROGRESS),
        (S.ACKNOWLEDGED, SeenAction.REACKNOWLEDGE),
        (S.REPORTED, SeenAction.REREPORT),
    ],
)
def test_seen_again_action(state: State, action: SeenAction) -> None:
    assert seen_action(state) is action
