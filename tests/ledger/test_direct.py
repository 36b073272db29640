"""The hot statements run on SQLite's own cursor (``ledger/direct.py``) give what
SQLAlchemy's execution gives: the same rows, the same stored text, the same errors.

Each comparison runs the statement both ways on a real SQLite ledger, each in a transaction
rolled back afterwards, and compares the rows returned and the row as stored (raw text,
read back with sqlite3), so a missing or different conversion (an aware datetime kept
aware, a bool kept a bool) shows up in either.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from svarinn_daemon.config import LedgerConfig
from svarinn_daemon.errors import LedgerError, LedgerUnavailableError
from svarinn_daemon.ledger import Ledger, Sighting, direct, open_ledger
from svarinn_daemon.ledger.claims import ClaimFilter, _all_candidates, _lease_update
from svarinn_daemon.ledger.database import writing
from svarinn_daemon.ledger.events import _INSERT
from svarinn_daemon.ledger.models import forsendelser as letters_t
from svarinn_daemon.ledger.states import State
from svarinn_daemon.ledger.transitions import _LOAD, _MOVE

OSLO = timezone(timedelta(hours=1))
NOW = datetime(2026, 12, 6, 4, 5, 6, 789012, tzinfo=OSLO)


@pytest.fixture
def sqlite_ledger(tmp_path: Path) -> Iterator[tuple[Ledger, Path]]:
    path = tmp_path / "state" / "ledger.sqlite3"
    ledger = open_ledger(
        LedgerConfig(url=f"sqlite:///{path}"),
        migrate_schema=True,
        clock=lambda: NOW - timedelta(minutes=5),
        busy_timeout=timedelta(milliseconds=200),
    )
    ledger.record_seen_many(
        "kommune",
        [Sighting(f"f-{i}", sender="A", title=f"T {i}", raw_json=f'{{"i": {i}}}') for i in range(3)]
        + [Sighting("f-r", archive="p360")],
    )
    ledger.record_seen_many("annen", [Sighting("g-1", archive="gi")])
    try:
        yield ledger, path
    finally:
        ledger.close()


def _both_ways(ledger: Ledger, statement: sa.Executable, params: Mapping[str, Any]) -> None:
    """Run ``statement`` directly and through SQLAlchemy, each in a transaction rolled back
    after; the rows returned and the table's stored text (no conversion) must agree."""
    seen = []
    for way in ("direct", "sqlalchemy"):
        with writing(ledger.engine, "comparing") as conn:
            if way == "direct":
                assert direct._plan_for(conn, statement, params) is not None
                got = [dict(row) for row in direct.rows(conn, statement, params)]
            else:
                got = [dict(row._mapping) for row in conn.execute(statement, dict(params))]
            stored = conn.exec_driver_sql("SELECT * FROM forsendelser ORDER BY id").all()
            conn.rollback()
        seen.append((got, [tuple(row) for row in stored]))
    assert seen[0] == seen[1]


def test_a_transition_s_update_and_load_match(sqlite_ledger: tuple[Ledger, Path]) -> None:
    ledger, _ = sqlite_ledger
    (claim,) = ledger.claim("w", timedelta(hours=1), now=NOW - timedelta(minutes=1))
    _both_ways(ledger, _LOAD, {"t_id": claim.id})
    where = {"t_id": claim.id, "t_from": "claimed", "t_worker": "w", "t_now": NOW}
    _both_ways(
        ledger,
        _MOVE,
        {
            **where,
            "state": "archived",
            "archived_at": NOW,  # Oslo time in, UTC text stored
            "updated_at": NOW,
            "verified": True,
            "actual_size": 5,
            "actual_sha256": "ab,cd",
            "failing_since": None,
        },
    )
    _both_ways(ledger, _MOVE, {**where, "state": "failed_permanently", "verified": False})
    # the lease gone: no row either way
    _both_ways(ledger, _MOVE, {**where, "t_worker": "other", "state": "archived"})


@pytest.mark.parametrize(
    "which",
    [
        ClaimFilter(),
        ClaimFilter(accounts=("kommune",)),
        ClaimFilter(skip_accounts=frozenset({"annen", "tredje"})),
        ClaimFilter(paused=frozenset({"p360"})),
        ClaimFilter(archive="gi"),
        ClaimFilter(imports=False),
    ],
)
def test_claims_match(sqlite_ledger: tuple[Ledger, Path], which: ClaimFilter) -> None:
    ledger, _ = sqlite_ledger
    params = {"claim_now": NOW, "claim_due_by": NOW, "claim_limit": 10}
    _both_ways(ledger, _all_candidates(which), params)
    lease = {"claim_now": NOW, "claim_worker": "w", "claim_expires": NOW + timedelta(hours=1)}
    for letter_id in (1, 4, 99):  # 99: no such letter, no row
        _both_ways(ledger, _lease_update(State.SEEN), {**lease, "claim_id": letter_id})


def test_events_are_stored_as_sqlalchemy_stores_them(
    sqlite_ledger: tuple[Ledger, Path],
) -> None:
    ledger, path = sqlite_ledger
    rows = [
        {
            "letter_id": 1,
            "at": NOW,
            "trigger": "claim",
            "from_state": None,
            "to_state": "claimed",
            "worker_id": "w",
            "reason": "æøå",
        }
    ] * 2
    texts = []
    for way in ("direct", "sqlalchemy"):
        with writing(ledger.engine, "events") as conn:
            before = conn.execute(sa.text("SELECT max(id) FROM forsendelse_events")).scalar()
            if way == "direct":
                direct.run(conn, _INSERT, rows)
            else:
                conn.execute(_INSERT, rows)
        with sqlite3.connect(path) as raw:
            texts.append(
                raw.execute(
                    'SELECT letter_id, at, "trigger", from_state, to_state, worker_id, reason '
                    "FROM forsendelse_events WHERE id > ?",
                    (before,),
                ).fetchall()
            )
    assert texts[0] == texts[1]
    assert texts[0][0][1] == "2026-12-06 03:05:06.789012"  # UTC, SQLAlchemy's text format


def test_values_that_shape_the_sql_keep_sqlalchemy_s_path(
    sqlite_ledger: tuple[Ledger, Path],
) -> None:
    """An IN list bound at run time changes the SQL with its length: no plan, same rows."""
    ledger, _ = sqlite_ledger
    query = sa.select(letters_t.c.id).where(letters_t.c.id.in_(sa.bindparam("ids", expanding=True)))
    with writing(ledger.engine, "reading") as conn:
        assert direct._plan_for(conn, query, {"ids": [1, 2]}) is None
        assert [r["id"] for r in direct.rows(conn, query, {"ids": [1, 3]})] == [1, 3]
        assert [r["id"] for r in direct.rows(conn, query, {"ids": [2]})] == [2]


def test_outside_a_transaction_sqlalchemy_begins_one(
    sqlite_ledger: tuple[Ledger, Path],
) -> None:
    """On the DBAPI cursor a statement outside a transaction would commit at once; the
    direct path is for the ledger's transactions only, and SQLAlchemy's autobegin stays."""
    ledger, _ = sqlite_ledger
    where = {"t_id": 1, "t_from": "seen", "t_worker": None, "t_now": NOW}
    update = sa.update(letters_t).where(letters_t.c.id == sa.bindparam("t_id"))
    with ledger.engine.connect() as conn:
        assert not conn.in_transaction()
        direct.rows(conn, update, {**where, "title": "changed"})
        conn.rollback()
    letter = ledger.get(1)
    assert letter is not None
    assert letter.title == "T 0"


def test_errors_are_sqlalchemy_s_and_then_ours(sqlite_ledger: tuple[Ledger, Path]) -> None:
    ledger, path = sqlite_ledger
    bad = [{"letter_id": 999, "at": NOW, "trigger": "claim", "to_state": "claimed",
            "from_state": None, "worker_id": "secret-value", "reason": None}]  # fmt: skip
    with pytest.raises(LedgerError) as caught, writing(ledger.engine, "appending") as conn:
        direct.run(conn, _INSERT, bad)  # no letter 999: the foreign key refuses it
    assert not isinstance(caught.value, LedgerUnavailableError)
    assert "FOREIGN KEY" in str(caught.value)
    assert "secret-value" not in str(caught.value)

    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process's writer holds SQLite's lock
    try:
        with pytest.raises(LedgerUnavailableError, match="database is locked"):
            ledger.mark_acknowledged(1, "w")  # BEGIN IMMEDIATE itself, on the cursor
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_postgresql_keeps_sqlalchemy_s_execution(ledger: Ledger) -> None:
    """A plan only for SQLite: on PostgreSQL SQLAlchemy decides what a failure means."""
    (seen,) = ledger.record_seen_many("kommune", [Sighting("f-1")])
    with writing(ledger.engine, "checking") as conn:
        planned = direct._plan_for(conn, _LOAD, {"t_id": seen.letter_id})
        assert (planned is not None) == (ledger.dialect == "sqlite")
        (row,) = direct.rows(conn, _LOAD, {"t_id": seen.letter_id})
        assert row["seen_at"].tzinfo is UTC
