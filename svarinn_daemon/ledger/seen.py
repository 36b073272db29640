"""``record_seen`` for a whole page of hentNyeForsendelser: one SELECT for what is known, one
multi-row INSERT ... ON CONFLICT DO NOTHING for what is new (another daemon may insert the
same id at the same moment), and a SEEN_AGAIN transition for finished letters listed again.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from svarinn_daemon.errors import LedgerError
from svarinn_daemon.ledger.database import dialect_insert
from svarinn_daemon.ledger.events import NewEvent, insert_events
from svarinn_daemon.ledger.models import forsendelser as letters_t
from svarinn_daemon.ledger.records import SeenResult, Sighting
from svarinn_daemon.ledger.states import SeenAction, State, Trigger, seen_action, transition

_SHA256 = re.compile(r"[0-9a-fA-F]{64}")
_AGAIN = {
    SeenAction.REACKNOWLEDGE: "listed again by hentNyeForsendelser after it was acknowledged: "
    "acknowledge again (the archive has it)",
    SeenAction.REREPORT: "listed again by hentNyeForsendelser after mottakFeilet: report again",
}


def _hashes(sighting: Sighting) -> list[str]:
    value = sighting.expected_sha256
    hashes = [value] if isinstance(value, str) else list(value or [])
    for h in hashes:
        if not isinstance(h, str) or not _SHA256.fullmatch(h):
            raise LedgerError(
                f"forsendelse {sighting.forsendelse_id}: expected sha256 {h!r} is not 64 hex digits"
            )
    return [h.lower() for h in hashes]


def _row(account: str, sighting: Sighting, now: datetime) -> dict[str, Any]:
    fid = sighting.forsendelse_id
    if not isinstance(fid, str) or not fid or len(fid) > 100:
        raise LedgerError(f"a forsendelse id must be 1-100 characters, not {fid!r}")
    if sighting.declared_size is not None and sighting.declared_size < 0:
        raise LedgerError(f"forsendelse {fid}: declared size {sighting.declared_size} < 0")
    hashes = _hashes(sighting)
    try:
        json.loads(sighting.raw_json)
    except (TypeError, ValueError) as err:
        raise LedgerError(f"forsendelse {fid}: the raw forsendelse is not JSON: {err}") from None
    return {
        "account": account,
        "forsendelse_id": fid,
        "state": State.SEEN.value,
        "sender": sighting.sender,
        "title": sighting.title,
        "declared_size": sighting.declared_size,
        "file_count": sighting.file_count if sighting.file_count is not None else len(hashes),
        "expected_sha256": ",".join(hashes) or None,
        "attempts": 0,
        "seen_at": now,
        "due_at": now,
        "updated_at": now,
        "raw": sighting.raw_json,
        "api": sighting.api,
        "archive": sighting.archive,
    }


def _insert(conn: sa.Connection) -> Any:
    return dialect_insert(conn, letters_t).on_conflict_do_nothing(
        index_elements=["account", "forsendelse_id"]
    )


_Known = dict[str, tuple[int, State, datetime | None]]


def _known(conn: sa.Connection, account: str, ids: Sequence[str]) -> _Known:
    c = letters_t.c
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql

        # One array parameter: without table statistics (right after a burst of inserts)
        # PostgreSQL plans this far better than a 200-parameter IN list.
        wanted = c.forsendelse_id == sa.any_(
            sa.bindparam("ids", list(ids), type_=postgresql.ARRAY(sa.String))
        )
    else:
        wanted = c.forsendelse_id.in_(ids)
    rows = conn.execute(
        sa.select(c.id, c.forsendelse_id, c.state, c.acknowledged_at, c.reported_at).where(
            c.account == account, wanted
        )
    ).all()
    return {
        fid: (letter_id, State(state), acknowledged_at or reported_at)
        for letter_id, fid, state, acknowledged_at, reported_at in rows
    }


def record_sightings(
    conn: sa.Connection,
    account: str,
    sightings: Sequence[Sighting],
    now: datetime,
    listed_at: datetime | None = None,
) -> tuple[SeenResult, ...]:
    """``listed_at``: when the listing was asked for. A letter finished after that was
    listed before its receipt reached SvarUt: that listing says nothing about it (acting on
    it would send the receipt twice); a later listing that still has it does."""
    if not account or len(account) > 64:
        raise LedgerError(f"an account name must be 1-64 characters, not {account!r}")
    prepared: dict[str, dict[str, Any]] = {}
    for sighting in sightings:
        prepared.setdefault(sighting.forsendelse_id, _row(account, sighting, now))
    known = _known(conn, account, list(prepared))
    results: dict[str, SeenResult] = {}
    new_rows = [row for fid, row in prepared.items() if fid not in known]
    if new_rows:
        c = letters_t.c
        inserted = conn.execute(_insert(conn).returning(c.id, c.forsendelse_id), new_rows).all()
        for letter_id, fid in inserted:
            results[fid] = SeenResult(letter_id, fid, SeenAction.NEW, State.SEEN)
        insert_events(
            conn,
            [
                NewEvent(
                    letter_id=r.letter_id,
                    from_state=None,
                    to_state=State.SEEN,
                    reason="listed by hentNyeForsendelser",
                )
                for r in results.values()
            ],
            Trigger.SEE,
            None,
            now,
        )
        raced = [row["forsendelse_id"] for row in new_rows if row["forsendelse_id"] not in results]
        if raced:  # another daemon inserted them between our SELECT and INSERT
            known.update(_known(conn, account, raced))
    again: list[NewEvent] = []
    for fid, (letter_id, state, finished_at) in known.items():
        action = seen_action(state)
        if listed_at is not None and finished_at is not None and finished_at >= listed_at:
            action = SeenAction.IN_PROGRESS
        if action is not SeenAction.IN_PROGRESS:
            to, _ = transition(state, Trigger.SEEN_AGAIN)
            updated = conn.execute(
                sa.update(letters_t)
                .where(letters_t.c.id == letter_id, letters_t.c.state == state.value)
                .values(state=to.value, next_attempt_at=None, due_at=now, updated_at=now)
            ).rowcount
            if updated == 1:
                again.append(NewEvent(letter_id, state, to, _AGAIN[action]))
                results[fid] = SeenResult(letter_id, fid, action, to)
                continue
            action = SeenAction.IN_PROGRESS
        results[fid] = SeenResult(letter_id, fid, action, state)
    insert_events(conn, again, Trigger.SEEN_AGAIN, None, now)
    return tuple(results[s.forsendelse_id] for s in sightings)
