"""Claiming: pick the letters with work due, in priority order, and lease them atomically.

Candidates are read per state (``ORDER BY seen_at, id LIMIT n`` on the index
``(state, seen_at, id)``), so a claim costs a few index probes however long the backlog is,
instead of sorting every claimable row. On PostgreSQL the reads take row locks with
``FOR UPDATE SKIP LOCKED``: concurrent claimers pass each other instead of waiting. On SQLite
the transaction holds the write lock from its start (``BEGIN IMMEDIATE``). Either way the
UPDATE repeats the "lease is free" condition, so a letter can never be leased twice.

A letter whose receipt is withheld (shadow mode, ``receipt_withheld_at`` set) is never a
candidate: no claim, no attempt counted, nothing to loop on until receipts are turned on.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from svarinn_daemon.ledger.events import NewEvent, insert_events
from svarinn_daemon.ledger.models import forsendelser as letters_t
from svarinn_daemon.ledger.queries import row_to_letter
from svarinn_daemon.ledger.records import Letter
from svarinn_daemon.ledger.states import CLAIM_ORDER, State, Trigger, Work, transition, work_for

c = letters_t.c


def work_for_claim(state: State) -> Work:
    """The work a claim of a letter in ``state`` is for (it becomes the claimed state)."""
    return work_for(transition(state, Trigger.CLAIM)[0])


def _free(now: datetime) -> sa.ColumnElement[bool]:
    """No live lease, and no receipt withheld by shadow mode."""
    return sa.and_(
        sa.or_(c.claimed_by.is_(None), c.lease_expires_at <= now),
        c.receipt_withheld_at.is_(None),
    )


def _candidates(
    conn: sa.Connection,
    now: datetime,
    limit: int,
    account: str | None,
    due_by: datetime,
    imports: bool,
) -> list[tuple[int, State, str | None]]:
    due = sa.or_(c.next_attempt_at.is_(None), c.next_attempt_at <= due_by)
    picked: list[tuple[int, State, str | None]] = []
    for group in CLAIM_ORDER:
        if not imports and any(work_for_claim(s) is Work.IMPORT for s in group):
            continue
        wanted = limit - len(picked)
        if wanted <= 0:
            break
        found: list[Any] = []
        for state in group:
            query = (
                sa.select(c.id, c.state, c.claimed_by, c.seen_at)
                .where(c.state == state.value, _free(now), due)
                .order_by(c.seen_at, c.id)
                .limit(wanted)
            )
            if account is not None:
                query = query.where(c.account == account)
            if conn.dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            found += conn.execute(query).all()
        found.sort(key=lambda row: (row.seen_at, row.id))
        picked += [(row.id, State(row.state), row.claimed_by) for row in found[:wanted]]
    return picked


def claim_letters(
    conn: sa.Connection,
    worker_id: str,
    now: datetime,
    expires: datetime,
    limit: int,
    account: str | None,
    due_by: datetime | None = None,
    imports: bool = True,
) -> list[Letter]:
    """Lease up to ``limit`` letters to ``worker_id`` in the caller's transaction.

    ``due_by`` (default: now) excludes letters whose retry falls after it, so a cycle that
    started at ``due_by`` does not pick up again what failed during the cycle itself."""
    by_state: dict[State, list[int]] = {}
    took_over: dict[int, str] = {}
    for letter_id, state, holder in _candidates(
        conn, now, limit, account, min(due_by or now, now), imports
    ):
        by_state.setdefault(state, []).append(letter_id)
        if holder is not None:
            took_over[letter_id] = f"took over the expired lease of {holder}"
    won: list[Letter] = []
    events: list[NewEvent] = []
    for state, ids in by_state.items():
        to, _ = transition(state, Trigger.CLAIM)
        rows = conn.execute(
            sa.update(letters_t)
            .where(c.id.in_(ids), c.state == state.value, _free(now))
            .values(
                state=to.value,
                claimed_by=worker_id,
                lease_expires_at=expires,
                claimed_at=now,
                attempts=c.attempts + 1,
                next_attempt_at=None,
                updated_at=now,
            )
            .returning(*letters_t.c)
        ).all()
        for row in rows:
            won.append(row_to_letter(row))
            events.append(NewEvent(row.id, state, to, took_over.get(row.id)))
    insert_events(conn, events, Trigger.CLAIM, worker_id, now)
    return won
