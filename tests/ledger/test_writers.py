"""A SQLite ledger's own writers take turns on the engine's lock before SQLite's: a writer
waits for the one before it to commit, not in SQLite's busy handler (which sleeps and, with
no busy timeout left, fails). Another process still meets SQLite's lock and busy timeout
(tests/e2e/test_own_faults.py)."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from svarinn_daemon.config import LedgerConfig
from svarinn_daemon.errors import LedgerUnavailableError
from svarinn_daemon.ledger.database import build_engine, reading, writing

THREADS = 4
WRITES = 40


def _engine(tmp_path: Path, busy: timedelta, *, sqlite_busy_ms: int | None = None) -> sa.Engine:
    url = f"sqlite:///{tmp_path / 'l.sqlite3'}"
    engine = build_engine(LedgerConfig(url=url), busy_timeout=busy)
    if sqlite_busy_ms is not None:  # SQLite's own wait only, after the daemon's PRAGMAs

        @sa.event.listens_for(engine, "connect")
        def _busy(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.execute(f"PRAGMA busy_timeout={sqlite_busy_ms}")

    with writing(engine, "creating") as conn:
        conn.exec_driver_sql("CREATE TABLE counts (thread INTEGER, n INTEGER)")
    return engine


def test_writers_in_one_process_never_meet_sqlite_s_lock(tmp_path: Path) -> None:
    """With SQLite's own busy wait at zero, SQLite refuses any writer that finds another in
    its transaction; each writer here holds its transaction across a thread switch."""
    engine = _engine(tmp_path, timedelta(seconds=30), sqlite_busy_ms=0)
    failures: list[BaseException] = []
    start = threading.Barrier(THREADS)

    def work(thread: int) -> None:
        start.wait()
        try:
            for n in range(WRITES):
                with writing(engine, "counting") as conn:
                    conn.exec_driver_sql("INSERT INTO counts VALUES (?, ?)", (thread, n))
                    threading.Event().wait(0.0005)  # let the other writers run meanwhile
        except BaseException as exc:
            failures.append(exc)

    workers = [threading.Thread(target=work, args=(t,)) for t in range(THREADS)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    assert failures == []
    with reading(engine, "counting") as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM counts").scalar() == THREADS * WRITES
    engine.dispose()


def test_a_writer_held_past_the_busy_timeout_is_a_temporary_error(tmp_path: Path) -> None:
    engine = _engine(tmp_path, timedelta(milliseconds=200))
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with writing(engine, "holding") as conn:
            conn.exec_driver_sql("INSERT INTO counts VALUES (0, 0)")
            holding.set()
            release.wait(30)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert holding.wait(30)
        with (
            pytest.raises(LedgerUnavailableError, match=r"more than 0\.2s") as caught,
            writing(engine, "counting"),
        ):
            pass
        assert caught.value.temporary
    finally:
        release.set()
        holder.join(30)
    with writing(engine, "counting") as conn:  # the turn came back
        conn.exec_driver_sql("INSERT INTO counts VALUES (1, 1)")
    engine.dispose()


def _level(conn: sa.Connection) -> int:
    """SQLite's own answer: 1 NORMAL, 2 FULL (what the commit will sync)."""
    return int(conn.exec_driver_sql("PRAGMA synchronous").scalar_one())


def test_only_a_write_marked_not_durable_commits_without_a_sync(tmp_path: Path) -> None:
    """The connection a claim used (the pool hands the last one out again) commits the next
    durable write with FULL again, and a read changes nothing."""
    engine = _engine(tmp_path, timedelta(seconds=30))
    levels = []
    for durable in (True, False, False, True, False, True, True):
        with writing(engine, "writing", durable=durable) as conn:
            levels.append(_level(conn))
            conn.exec_driver_sql("INSERT INTO counts VALUES (0, 0)")
        with reading(engine, "reading") as conn:
            conn.exec_driver_sql("SELECT count(*) FROM counts").scalar_one()
    assert levels == [2, 1, 1, 2, 1, 2, 2]
    assert engine.pool.checkedout() == 0


def test_a_claim_and_a_receipt_are_the_not_durable_writes(tmp_path: Path) -> None:
    """The ledger's claim commits with NORMAL; the letter's next step with FULL (which syncs
    the claim with it); the receipt's record with NORMAL again."""
    from svarinn_daemon.ledger import open_ledger
    from svarinn_daemon.ledger.repository import Sighting

    ledger = open_ledger(
        LedgerConfig(url=f"sqlite:///{tmp_path / 'ledger.sqlite3'}"), migrate_schema=True
    )
    ledger.record_seen_many("acc", [Sighting("f-1", sender="A", title="T")])
    seen: list[int] = []

    @sa.event.listens_for(ledger.engine, "commit")
    def _commit(conn: sa.Connection) -> None:
        seen.append(_level(conn))

    (claim,) = ledger.claim("w", timedelta(minutes=5))
    ledger.mark_archived(
        claim.letter.id, "w", archive_ref="x", actual_sha256="ab" * 32, actual_size=1, verified=True
    )
    assert seen == [1, 2]
    ledger.mark_acknowledged(claim.letter.id, "w")
    assert seen == [1, 2, 1]  # the receipt's record only spares sending it again


def test_outside_wal_every_write_is_durable(tmp_path: Path) -> None:
    """NORMAL is safe in WAL mode only. SQLite with dot-file locking (as for a filesystem
    without POSIX locks) cannot run in WAL: there every write commits with FULL."""
    url = f"sqlite:///file:{tmp_path / 'l.sqlite3'}?vfs=unix-dotfile&uri=true"
    engine = build_engine(LedgerConfig(url=url))
    with writing(engine, "writing", durable=False) as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar_one() == "delete"
        assert _level(conn) == 2
