"""Claiming: pick the letters with work due, in priority order, and lease them atomically.

Candidates are read per state in due order (``ORDER BY due_at, id LIMIT n`` on the index
``(state, receipt_withheld_at, due_at, id)``), so a claim costs a few index probes however
long the backlog is, instead of sorting every claimable row. ``due_at`` is when the letter
was listed or its latest retry time: every due letter gets its turn, and a letter that fails
again and again (each time with a longer backoff) waits behind the others, on one account
and across accounts.

Imports can be narrowed by archive (the one ``[[routes]]`` chose, stored at the poll): an
archive whose circuit breaker is open is passed over (``paused``), and its probe claims only
its own letters (``archive``). Receipts and reports need no archive and are never narrowed.

On PostgreSQL the reads take row locks with ``FOR UPDATE SKIP LOCKED``: concurrent claimers
pass each other instead of waiting. On SQLite the transaction holds the write lock from its
start (``BEGIN IMMEDIATE``). Either way the UPDATE repeats the "lease is free" condition, so
a letter can never be leased twice.

A letter whose receipt is withheld (shadow mode, ``receipt_withheld_at`` set) is never a
candidate: no claim, no attempt counted, nothing to loop on until receipts are turned on.
"""

from __future__ import annotations

from dataclasses import dataclass
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


@dataclass(frozen=True)
class ClaimFilter:
    """Which letters a claim may take. ``accounts`` None: every account but ``skip_accounts``.
    ``imports`` False: receipts and reports only. ``paused``: archives whose imports wait.
    ``archive``: imports for this archive only (its breaker's probe), and nothing else."""

    accounts: tuple[str, ...] | None = None
    skip_accounts: frozenset[str] = frozenset()
    imports: bool = True
    paused: frozenset[str] = frozenset()
    archive: str | None = None

    def where(self, import_work: bool) -> list[sa.ColumnElement[bool]]:
        out: list[sa.ColumnElement[bool]] = []
        if self.accounts is not None:
            out.append(c.account.in_(self.accounts))
        if self.skip_accounts:
            out.append(c.account.not_in(sorted(self.skip_accounts)))
        if import_work and self.archive is not None:
            out.append(c.archive == self.archive)
        elif import_work and self.paused:  # not routed yet: no archive known to be paused
            out.append(sa.or_(c.archive.is_(None), c.archive.not_in(sorted(self.paused))))
        return out

    def takes(self, work: Work) -> bool:
        if work is Work.IMPORT:
            return self.imports
        return self.archive is None


def _candidates(
    conn: sa.Connection, now: datetime, limit: int, due_by: datetime, which: ClaimFilter
) -> list[tuple[int, State, str | None]]:
    due = sa.or_(c.next_attempt_at.is_(None), c.next_attempt_at <= due_by)
    picked: list[tuple[int, State, str | None]] = []
    for group in CLAIM_ORDER:
        wanted = limit - len(picked)
        if wanted <= 0:
            break
        found: list[Any] = []
        for state in group:
            work = work_for_claim(state)
            if not which.takes(work):
                continue
            query = (
                sa.select(c.id, c.state, c.claimed_by, c.due_at)
                .where(c.state == state.value, _free(now), due, *which.where(work is Work.IMPORT))
                .order_by(c.due_at, c.id)
                .limit(wanted)
            )
            if conn.dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            found += conn.execute(query).all()
        found.sort(key=lambda row: (row.due_at, row.id))
        picked += [(row.id, State(row.state), row.claimed_by) for row in found[:wanted]]
    return picked


def claim_letters(
    conn: sa.Connection,
    worker_id: str,
    now: datetime,
    expires: datetime,
    limit: int,
    which: ClaimFilter,
    due_by: datetime | None = None,
) -> list[Letter]:
    """Lease up to ``limit`` letters to ``worker_id`` in the caller's transaction.

    ``due_by`` (default: now) excludes letters whose retry falls after it, so a cycle that
    started at ``due_by`` does not pick up again what failed during the cycle itself."""
    by_state: dict[State, list[int]] = {}
    took_over: dict[int, str] = {}
    for letter_id, state, holder in _candidates(conn, now, limit, min(due_by or now, now), which):
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
