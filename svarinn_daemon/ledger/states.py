"""The forsendelse state machine: pure, explicit, and the only place transitions are decided.

A letter's *state* says how far it has durably come; a *lease* (worker id + expiry) says who
is working on it right now. Three states can carry a lease, and the state alone tells the
worker what work the lease is for (:func:`work_for`):

    state                lease work    what the worker does
    claimed              IMPORT        download, decrypt, verify, hand to the archive adapter
    archived             ACKNOWLEDGE   kvitterMottak only -- never the adapter again
    failed_permanently   REPORT        mottakFeilet with permanent=true

An archive that answers later (Fiks Arkiv over Fiks IO) gets the letter as a message: the
letter is then *sent*, without a lease, until the archive's reply is matched to it
(:mod:`.replies`): a kvittering makes it archived (its receipt is due), a refusal about its
content failed_permanently, any other failure retry_scheduled. A sent letter whose reply has
not come by its ``next_attempt_at`` (``kvittering_timeout``) is claimed and sent again, under
the same message id for the archive to drop as a duplicate.

So an archived letter is claimable, but only for its receipt: "receipt only" is not a flag
that could be forgotten, it follows from the state. ``mark_archived`` and
``mark_failed_permanently`` keep the lease, so the worker that archived a letter goes straight
on to acknowledge it; a later claim of an archived letter (after a crash, or a receipt retry)
is receipt-only work.

The transition table (``TRANSITIONS``), ``*`` = the lease after the transition:

    from                 trigger          to                   lease after
    (none)               SEE              seen                 -
    seen                 CLAIM            claimed              held *
    retry_scheduled      CLAIM            claimed              held *
    claimed              CLAIM            claimed              held * (only once the lease expired)
    archived             CLAIM            archived             held * (receipt work)
    failed_permanently   CLAIM            failed_permanently   held * (report work)
    claimed              ARCHIVE          archived             kept *
    claimed              SEND             sent                 cleared (waits for the reply)
    sent                 CLAIM            claimed              held * (no reply in time: send again)
    sent                 ARCHIVE_RECEIVED sent                 -  (the archive has the message)
    sent                 ARCHIVE          archived             -  (kvittering)
    sent                 FAIL             failed_permanently   -  (refused: this letter's content)
    sent                 SCHEDULE_RETRY   retry_scheduled      -  (any other failure reply)
    retry_scheduled      ARCHIVE          archived             -  (a late kvittering)
    failed_permanently   ARCHIVE          archived             -  (a late kvittering, not reported)
    archived             ACKNOWLEDGE      acknowledged         cleared
    claimed              SCHEDULE_RETRY   retry_scheduled      cleared
    archived             SCHEDULE_RETRY   archived             cleared (receipt retried later)
    failed_permanently   SCHEDULE_RETRY   failed_permanently   cleared (report retried later)
    claimed              FAIL             failed_permanently   kept *
    failed_permanently   REPORT           reported             cleared
    claimed              RELEASE/EXPIRE   seen                 cleared
    archived             RELEASE/EXPIRE   archived             cleared
    failed_permanently   RELEASE/EXPIRE   failed_permanently   cleared
    acknowledged         SEEN_AGAIN       archived             -  (acknowledge again)
    reported             SEEN_AGAIN       failed_permanently   -  (report again)
    retry_scheduled      OPERATOR_RETRY   seen                 -
    failed_permanently   OPERATOR_RETRY   seen                 -
    archived             OPERATOR_RETRY   archived             -  (receipt due now)
    sent                 OPERATOR_RETRY   seen                 -  (send again now)

Shadow mode (an account with ``receipts = false``, see :mod:`.shadow`) changes no state: an
archived or failed letter's receipt is *withheld* (RELEASE, the lease given back, and a mark
that keeps claims away), and made due again (RELEASE) when receipts are turned on.

A reply changes a letter only while nobody holds a lease on it; a kvittering that comes while
a worker sends the letter again is kept and applied when that worker records the send.

Deliberately absent: archived -> failed_permanently (a letter in the archive must never be
sent on to paper), and anything out of acknowledged or reported except SEEN_AGAIN.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType

from svarinn_daemon.errors import IllegalTransitionError


class State(enum.StrEnum):
    SEEN = "seen"
    CLAIMED = "claimed"
    ARCHIVED = "archived"
    ACKNOWLEDGED = "acknowledged"
    RETRY_SCHEDULED = "retry_scheduled"
    FAILED_PERMANENTLY = "failed_permanently"
    REPORTED = "reported"
    SENT = "sent"  # sent to an archive that answers later; waiting for its reply


class Trigger(enum.StrEnum):
    """What happened; recorded as the event's kind in the audit trail."""

    SEE = "see"
    CLAIM = "claim"
    ARCHIVE = "archive"
    ACKNOWLEDGE = "acknowledge"
    SCHEDULE_RETRY = "schedule_retry"
    FAIL = "fail"
    REPORT = "report"
    RELEASE = "release"
    EXPIRE = "expire"
    SEEN_AGAIN = "seen_again"
    OPERATOR_RETRY = "operator_retry"
    SEND = "send"
    ARCHIVE_RECEIVED = "archive_received"


class Work(enum.StrEnum):
    """What a lease on a letter is for."""

    IMPORT = "import"
    ACKNOWLEDGE = "acknowledge"
    REPORT = "report"


class SeenAction(enum.StrEnum):
    """What ``record_seen`` tells the poller about one forsendelse id."""

    NEW = "new"  # first time: recorded as seen, to be imported
    IN_PROGRESS = "in_progress"  # already known and not finished: nothing to do
    REACKNOWLEDGE = "reacknowledge"  # acknowledged before; back to archived for its receipt
    REREPORT = "rereport"  # reported before; back to failed_permanently for mottakFeilet


class Lease(enum.Enum):
    """What a transition does to the lease."""

    NONE = "none"  # the trigger neither needs nor gives a lease
    HELD = "held"  # the transition takes the lease (a claim)
    KEPT = "kept"  # needs the worker's lease and keeps it
    CLEARED = "cleared"  # needs the worker's lease (or its expiry) and clears it


_T = Trigger
_S = State
TRANSITIONS: Mapping[tuple[State | None, Trigger], tuple[State, Lease]] = MappingProxyType(
    {
        (None, _T.SEE): (_S.SEEN, Lease.NONE),
        (_S.SEEN, _T.CLAIM): (_S.CLAIMED, Lease.HELD),
        (_S.RETRY_SCHEDULED, _T.CLAIM): (_S.CLAIMED, Lease.HELD),
        (_S.CLAIMED, _T.CLAIM): (_S.CLAIMED, Lease.HELD),
        (_S.ARCHIVED, _T.CLAIM): (_S.ARCHIVED, Lease.HELD),
        (_S.FAILED_PERMANENTLY, _T.CLAIM): (_S.FAILED_PERMANENTLY, Lease.HELD),
        (_S.CLAIMED, _T.ARCHIVE): (_S.ARCHIVED, Lease.KEPT),
        (_S.ARCHIVED, _T.ACKNOWLEDGE): (_S.ACKNOWLEDGED, Lease.CLEARED),
        (_S.CLAIMED, _T.SCHEDULE_RETRY): (_S.RETRY_SCHEDULED, Lease.CLEARED),
        (_S.ARCHIVED, _T.SCHEDULE_RETRY): (_S.ARCHIVED, Lease.CLEARED),
        (_S.FAILED_PERMANENTLY, _T.SCHEDULE_RETRY): (_S.FAILED_PERMANENTLY, Lease.CLEARED),
        (_S.CLAIMED, _T.FAIL): (_S.FAILED_PERMANENTLY, Lease.KEPT),
        (_S.FAILED_PERMANENTLY, _T.REPORT): (_S.REPORTED, Lease.CLEARED),
        (_S.CLAIMED, _T.RELEASE): (_S.SEEN, Lease.CLEARED),
        (_S.ARCHIVED, _T.RELEASE): (_S.ARCHIVED, Lease.CLEARED),
        (_S.FAILED_PERMANENTLY, _T.RELEASE): (_S.FAILED_PERMANENTLY, Lease.CLEARED),
        (_S.CLAIMED, _T.EXPIRE): (_S.SEEN, Lease.CLEARED),
        (_S.ARCHIVED, _T.EXPIRE): (_S.ARCHIVED, Lease.CLEARED),
        (_S.FAILED_PERMANENTLY, _T.EXPIRE): (_S.FAILED_PERMANENTLY, Lease.CLEARED),
        (_S.ACKNOWLEDGED, _T.SEEN_AGAIN): (_S.ARCHIVED, Lease.NONE),
        (_S.REPORTED, _T.SEEN_AGAIN): (_S.FAILED_PERMANENTLY, Lease.NONE),
        (_S.RETRY_SCHEDULED, _T.OPERATOR_RETRY): (_S.SEEN, Lease.NONE),
        (_S.FAILED_PERMANENTLY, _T.OPERATOR_RETRY): (_S.SEEN, Lease.NONE),
        (_S.ARCHIVED, _T.OPERATOR_RETRY): (_S.ARCHIVED, Lease.NONE),
        (_S.CLAIMED, _T.SEND): (_S.SENT, Lease.CLEARED),
        (_S.SENT, _T.CLAIM): (_S.CLAIMED, Lease.HELD),
        (_S.SENT, _T.ARCHIVE_RECEIVED): (_S.SENT, Lease.NONE),
        (_S.SENT, _T.ARCHIVE): (_S.ARCHIVED, Lease.NONE),
        (_S.SENT, _T.FAIL): (_S.FAILED_PERMANENTLY, Lease.NONE),
        (_S.SENT, _T.SCHEDULE_RETRY): (_S.RETRY_SCHEDULED, Lease.NONE),
        (_S.RETRY_SCHEDULED, _T.ARCHIVE): (_S.ARCHIVED, Lease.NONE),
        (_S.FAILED_PERMANENTLY, _T.ARCHIVE): (_S.ARCHIVED, Lease.NONE),
        (_S.SENT, _T.OPERATOR_RETRY): (_S.SEEN, Lease.NONE),
    }
)

# States a claim may pick up when no live lease is held and the retry time has come. A
# claimed letter whose lease expired is taken over directly, without waiting for the reaper.
CLAIMABLE: tuple[State, ...] = tuple(s for (s, t) in TRANSITIONS if t is Trigger.CLAIM and s)
# States in which a lease may be held.
LEASABLE: frozenset[State] = frozenset(
    to for (to, lease) in TRANSITIONS.values() if lease in (Lease.HELD, Lease.KEPT)
)
FINISHED: frozenset[State] = frozenset({State.ACKNOWLEDGED, State.REPORTED})
# Writes SQLite commits without a sync (``synchronous=NORMAL``): a power cut may undo them
# whole, which loses nothing. A claim only takes a lease; a receipt's record only spares
# sending the receipt again. The next durable commit syncs them with it.
NOT_DURABLE: frozenset[Trigger] = frozenset({Trigger.CLAIM, Trigger.ACKNOWLEDGE})
# The order a claim prefers: receipts first (cheap, and SvarUt's clock is running), then
# reports, then imports oldest first -- whether new, due for a retry or taken over.
CLAIM_ORDER: tuple[tuple[State, ...], ...] = (
    (State.ARCHIVED,),
    (State.FAILED_PERMANENTLY,),
    (State.SEEN, State.RETRY_SCHEDULED, State.CLAIMED, State.SENT),
)
CLAIM_PRIORITY: Mapping[State, int] = MappingProxyType(
    {state: rank for rank, group in enumerate(CLAIM_ORDER) for state in group}
)

_WORK = MappingProxyType(
    {
        State.CLAIMED: Work.IMPORT,
        State.ARCHIVED: Work.ACKNOWLEDGE,
        State.FAILED_PERMANENTLY: Work.REPORT,
    }
)
_SEEN_ACTION = MappingProxyType(
    {State.ACKNOWLEDGED: SeenAction.REACKNOWLEDGE, State.REPORTED: SeenAction.REREPORT}
)


def transition(state: State | None, trigger: Trigger) -> tuple[State, Lease]:
    """The state after ``trigger`` and what happens to the lease; raises if not allowed."""
    try:
        return TRANSITIONS[(state, trigger)]
    except KeyError:
        where = state.value if state is not None else "a new letter"
        allowed = sorted(t.value for (s, t) in TRANSITIONS if s is state)
        raise IllegalTransitionError(
            f"{trigger.value} is not allowed for {where} "
            f"(allowed: {', '.join(allowed) or 'nothing'})"
        ) from None


def work_for(state: State) -> Work:
    """What a lease on a letter in ``state`` is for."""
    try:
        return _WORK[state]
    except KeyError:
        raise IllegalTransitionError(f"a letter in state {state.value} holds no lease") from None


def seen_action(state: State) -> SeenAction:
    """What to do about a known letter that hentNyeForsendelser lists again."""
    return _SEEN_ACTION.get(state, SeenAction.IN_PROGRESS)
