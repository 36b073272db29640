"""One state change of one letter, and freeing leases: the writes every verb is built on.

Each is a conditional UPDATE (``... WHERE id=? AND state=? AND claimed_by=? AND
lease_expires_at > now``) with its audit event, in the caller's transaction: when it touches
no row the lease is gone and :class:`LeaseLostError` is raised, and nothing is written. The
state machine in :mod:`~svarinn_daemon.ledger.states` decides every new state.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from svarinn_daemon.common import clip
from svarinn_daemon.errors import IllegalTransitionError, LeaseLostError, LetterNotFoundError
from svarinn_daemon.ledger import direct
from svarinn_daemon.ledger.events import NewEvent, insert_events
from svarinn_daemon.ledger.models import forsendelser as letters_t
from svarinn_daemon.ledger.queries import row_to_letter
from svarinn_daemon.ledger.records import Letter
from svarinn_daemon.ledger.states import Lease, State, Trigger, transition

__all__ = [
    "MAX_MESSAGE",
    "apply_transition",
    "clip_message",
    "free_leases",
    "lease_lost",
    "load",
    "measured",
]

MAX_MESSAGE = 2000
# Triggers after which a letter is no longer in a run of failures.
_ENDS_FAILURES = frozenset({Trigger.ARCHIVE, Trigger.ACKNOWLEDGE, Trigger.REPORT})


def clip_message(text: str | None) -> str | None:
    return None if text is None else clip(text, MAX_MESSAGE)


def measured(
    sha256: str | Sequence[str] | None, size: int | None, verified: bool | None
) -> dict[str, Any]:
    """What the daemon measured of a letter's download, as the row stores it."""
    hashes = [sha256] if isinstance(sha256, str) else list(sha256 or [])
    return {
        "actual_sha256": ",".join(h.lower() for h in hashes) or None,
        "actual_size": size,
        "verified": verified,
    }


# Built once: these run for every letter, and building SQLAlchemy expressions costs more CPU
# than SQLite takes to run them.
_LOAD = sa.select(letters_t).where(letters_t.c.id == sa.bindparam("t_id"))
# What a transition decides on; the UPDATE's RETURNING gives the whole row after it. Reading
# the whole row first too cost a second conversion of every column (dates above all).
_PEEK = sa.select(
    letters_t.c.state,
    letters_t.c.claimed_by,
    letters_t.c.lease_expires_at,
    letters_t.c.failing_since,
).where(letters_t.c.id == sa.bindparam("t_id"))
_MOVE = (
    sa.update(letters_t)
    .where(
        letters_t.c.id == sa.bindparam("t_id"),
        letters_t.c.state == sa.bindparam("t_from"),
        letters_t.c.claimed_by == sa.bindparam("t_worker"),
        letters_t.c.lease_expires_at > sa.bindparam("t_now", type_=letters_t.c.updated_at.type),
    )
    .returning(*letters_t.c)
)  # SET: the columns named in the parameters


def load(conn: sa.Connection, letter_id: int) -> Letter:
    found = direct.rows(conn, _LOAD, {"t_id": letter_id})
    if not found:
        raise LetterNotFoundError(f"the ledger has no letter {letter_id}")
    return row_to_letter(found[0])


def lease_lost(conn: sa.Connection, letter_id: int, worker_id: str, now: datetime) -> None:
    """Raise LeaseLostError, saying who holds the letter now."""
    letter = load(conn, letter_id)
    holder = letter.claimed_by if letter.leased(now) else "nobody"
    raise LeaseLostError(
        f"letter {letter_id}: worker {worker_id} no longer holds its lease "
        f"(state {letter.state.value}, lease held by {holder})"
    )


def apply_transition(
    conn: sa.Connection,
    letter_id: int,
    worker_id: str,
    trigger: Trigger,
    reason: str,
    now: datetime,
    *,
    from_states: frozenset[State] | None = None,
    values: dict[str, Any],
) -> Letter:
    """One transition under the worker's lease. ``None`` for a ``*_at`` value means now;
    ``from_states`` narrows the states the trigger is allowed from."""
    found = direct.rows(conn, _PEEK, {"t_id": letter_id})
    if not found:
        raise LetterNotFoundError(f"the ledger has no letter {letter_id}")
    row = found[0]
    expires = row["lease_expires_at"]
    if row["claimed_by"] != worker_id or expires is None or expires <= now:
        lease_lost(conn, letter_id, worker_id, now)
    state = State(row["state"])
    if from_states is not None and state not in from_states:
        raise IllegalTransitionError(
            f"letter {letter_id}: {trigger.value} ({reason}) is not allowed in state {state.value}"
        )
    to, lease = transition(state, trigger)
    values = {k: (now if k.endswith("_at") and v is None else v) for k, v in values.items()}
    values.update(state=to.value, updated_at=now)
    if trigger is Trigger.SCHEDULE_RETRY:
        values.update(failing_since=row["failing_since"] or now)
    elif trigger in _ENDS_FAILURES:
        values.update(failing_since=None)
    if lease is Lease.CLEARED:
        values.update(claimed_by=None, lease_expires_at=None)
    where = {"t_id": letter_id, "t_from": state.value, "t_worker": worker_id, "t_now": now}
    if any(isinstance(v, sa.ClauseElement) for v in values.values()):
        # Computed in SQL (a counter, a coalesce): a statement of its own, rare enough for
        # SQLAlchemy's execution (the direct path caches statements by identity).
        moved = direct.sqlalchemy_rows(conn, _MOVE.values(**values), where)
    else:
        moved = direct.rows(conn, _MOVE, {**where, **values})
    if not moved:
        lease_lost(conn, letter_id, worker_id, now)
    event = NewEvent(
        letter_id=letter_id, from_state=state, to_state=to, reason=clip_message(reason)
    )
    insert_events(conn, [event], trigger, worker_id, now)
    return row_to_letter(moved[0])


def free_leases(
    conn: sa.Connection,
    trigger: Trigger,
    which: sa.ColumnElement[bool],
    now: datetime,
    reason: str,
) -> tuple[int, ...]:
    """Free the leases ``which`` selects (expired, or a restarted worker's), each letter's
    state moved by ``trigger``; returns the ids freed."""
    c = letters_t.c
    freed: list[int] = []
    rows = conn.execute(sa.select(c.id, c.state, c.claimed_by).where(which)).all()
    events: list[NewEvent] = []
    for letter_id, state_text, holder in rows:
        state = State(state_text)
        to, _ = transition(state, trigger)
        result = conn.execute(
            sa.update(letters_t)
            .where(c.id == letter_id, c.state == state.value, which)
            .values(state=to.value, claimed_by=None, lease_expires_at=None, updated_at=now)
        )
        if result.rowcount == 1:
            freed.append(letter_id)
            events.append(
                NewEvent(
                    letter_id=letter_id,
                    from_state=state,
                    to_state=to,
                    reason=f"{reason} (held by {holder})",
                    worker_id=holder,
                )
            )
    insert_events(conn, events, trigger, None, now)
    return tuple(freed)
