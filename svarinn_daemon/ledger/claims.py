"""Claiming: pick the letters with work due, in priority order, and lease them atomically.

Candidates are read per state in due order (``ORDER BY due_at, id LIMIT n`` on the index
``(state, receipt_withheld_at, due_at, id)``; on SQLite all states in one ``UNION ALL``), so
a claim costs a few index probes however long the backlog is, instead of sorting every
claimable row. ``due_at`` is when the letter was listed or its latest retry time: every due
letter gets its turn, and a letter that fails again and again (each time with a longer
backoff) waits behind the others, on one account and across accounts.

Imports can be narrowed by archive (the one ``[[routes]]`` chose, stored at the poll): an
archive whose circuit breaker is open is passed over (``paused``), and its probe claims only
its own letters (``archive``). Receipts and reports need no archive and are never narrowed.

On PostgreSQL the reads take row locks with ``FOR UPDATE SKIP LOCKED``: concurrent claimers
pass each other instead of waiting. On SQLite the transaction holds the write lock from its
start (``BEGIN IMMEDIATE``). Either way the UPDATE repeats the "lease is free" condition, so
a letter can never be leased twice.

The statements are built once per shape (state, filter, dialect) with the times, the limit
and the ids as bound parameters: a claim runs for every letter, and building and keying
SQLAlchemy expressions afresh each time cost more CPU than the database did.

A letter whose receipt is withheld (shadow mode, ``receipt_withheld_at`` set) is never a
candidate: no claim, no attempt counted, nothing to loop on until receipts are turned on.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from svarinn_daemon.ledger import direct
from svarinn_daemon.ledger.events import NewEvent, insert_events
from svarinn_daemon.ledger.models import forsendelser as letters_t
from svarinn_daemon.ledger.queries import row_to_letter
from svarinn_daemon.ledger.records import Letter
from svarinn_daemon.ledger.states import CLAIM_ORDER, State, Trigger, Work, transition, work_for

c = letters_t.c


def work_for_claim(state: State) -> Work:
    """The work a claim of a letter in ``state`` is for (it becomes the claimed state)."""
    return work_for(transition(state, Trigger.CLAIM)[0])


def _free(now: Any) -> sa.ColumnElement[bool]:
    """No live lease, and no receipt withheld by shadow mode."""
    return sa.and_(
        sa.or_(c.claimed_by.is_(None), c.lease_expires_at <= now),
        c.receipt_withheld_at.is_(None),
    )


_NOW = sa.bindparam("claim_now", type_=c.lease_expires_at.type)
_DUE_BY = sa.bindparam("claim_due_by", type_=c.next_attempt_at.type)


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


@functools.lru_cache(maxsize=256)
def _candidate_query(state: State, which: ClaimFilter, postgresql: bool) -> sa.Select[Any]:
    """The due, free letters in ``state`` that ``which`` allows, in due order (parameters
    ``claim_now``, ``claim_due_by``, ``claim_limit``)."""
    due = sa.or_(c.next_attempt_at.is_(None), c.next_attempt_at <= _DUE_BY)
    work = work_for_claim(state)
    query = (
        sa.select(c.id, c.state, c.claimed_by, c.due_at)
        .where(c.state == state.value, _free(_NOW), due, *which.where(work is Work.IMPORT))
        .order_by(c.due_at, c.id)
        .limit(sa.bindparam("claim_limit", type_=sa.Integer))
    )
    return query.with_for_update(skip_locked=True) if postgresql else query


@functools.lru_cache(maxsize=64)
def _lease_update(state: State) -> sa.Update:
    """Lease the letter if still in ``state`` and still free (parameters ``claim_id``,
    ``claim_now``, ``claim_worker``, ``claim_expires``). One letter per statement: its SQL
    does not change with the number of letters (see :mod:`.direct`), and a daemon claims
    one at a time."""
    to, _ = transition(state, Trigger.CLAIM)
    return (
        sa.update(letters_t)
        .where(
            c.id == sa.bindparam("claim_id", type_=c.id.type),
            c.state == state.value,
            _free(_NOW),
        )
        .values(
            state=to.value,
            claimed_by=sa.bindparam("claim_worker", type_=c.claimed_by.type),
            lease_expires_at=sa.bindparam("claim_expires", type_=c.lease_expires_at.type),
            claimed_at=_NOW,
            attempts=c.attempts + 1,
            next_attempt_at=None,
            updated_at=_NOW,
        )
        .returning(*letters_t.c)
    )


@functools.lru_cache(maxsize=64)
def _all_candidates(which: ClaimFilter) -> sa.CompoundSelect[Any]:
    """SQLite: every claimable state's candidates in one statement, each state's still read
    through the index in due order with its own LIMIT (PostgreSQL cannot lock rows of a
    UNION, so it reads state by state)."""
    parts = [
        sa.select(_candidate_query(state, which, False).subquery())
        for group in CLAIM_ORDER
        for state in group
        if which.takes(work_for_claim(state))
    ]
    return sa.union_all(*parts)


def _candidates(
    conn: sa.Connection, now: datetime, limit: int, due_by: datetime, which: ClaimFilter
) -> list[tuple[int, State, str | None]]:
    params = {"claim_now": now, "claim_due_by": due_by, "claim_limit": limit}
    found: dict[State, list[Mapping[str, Any]]] = {}
    if conn.dialect.name == "postgresql":
        wanted = limit  # each group asks for what the groups before it left: fewer locks
        for group in CLAIM_ORDER:
            for state in group:
                if wanted > 0 and which.takes(work_for_claim(state)):
                    query = _candidate_query(state, which, True)
                    found[state] = direct.rows(conn, query, {**params, "claim_limit": wanted})
            wanted -= sum(len(found.get(state, ())) for state in group)
    elif any(which.takes(work_for_claim(s)) for group in CLAIM_ORDER for s in group):
        for row in direct.rows(conn, _all_candidates(which), params):
            found.setdefault(State(row["state"]), []).append(row)
    picked: list[tuple[int, State, str | None]] = []
    for group in CLAIM_ORDER:
        rows = sorted(
            (row for state in group for row in found.get(state, ())),
            key=lambda row: (row["due_at"], row["id"]),
        )
        picked += [(row["id"], State(row["state"]), row["claimed_by"]) for row in rows]
    return picked[:limit]


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
        for letter_id in ids:
            params = {
                "claim_id": letter_id,
                "claim_now": now,
                "claim_worker": worker_id,
                "claim_expires": expires,
            }
            for row in direct.rows(conn, _lease_update(state), params):
                won.append(row_to_letter(row))
                events.append(NewEvent(letter_id, state, to, took_over.get(letter_id)))
    insert_events(conn, events, Trigger.CLAIM, worker_id, now)
    return won
