"""Helpers for the ledger tests: a real database outage per backend, a claim-race worker,
letters brought into any state.

The settable clock is :class:`svarinn_daemon.testing.FakeClock`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from svarinn_daemon.config import LedgerConfig
from svarinn_daemon.ledger import Ledger, SeenResult, Sighting, State, build_engine, migrate


def migrate_then_mark(url: str, revision: str) -> None:
    """Migrate the ledger at ``url``, then write ``revision`` as its schema version (one
    that a newer svarinn-daemon would have left)."""
    engine = build_engine(LedgerConfig(url=url))
    migrate(engine)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = :r"), {"r": revision})
    engine.dispose()


@contextmanager
def outage(url: str) -> Iterator[None]:
    """Make the database fail for every new statement, for real, until the block ends.

    SQLite: another connection holds an exclusive lock (the ledger's busy timeout runs out).
    PostgreSQL: the database refuses connections and existing sessions are terminated.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        holder = sqlite3.connect(parsed.database or "", isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        try:
            yield
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        return
    admin = sa.create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    name = parsed.database
    with admin.connect() as conn:
        conn.execute(sa.text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
        conn.execute(
            sa.text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = :name AND pid <> pg_backend_pid()"
            ),
            {"name": name},
        )
        try:
            yield
        finally:
            conn.execute(sa.text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
    admin.dispose()


def race_worker(url: str, worker_id: str, limit: int, ready: Any, go: Any, out: Any) -> None:
    """One OS process of the claim race: claim, archive and acknowledge until nothing is left;
    report every letter id it claimed."""
    from svarinn_daemon.config import LedgerConfig
    from svarinn_daemon.ledger import open_ledger

    ledger = open_ledger(LedgerConfig(url=url))
    claimed: list[int] = []
    ready.put(worker_id)
    go.wait(30)
    try:
        while claims := ledger.claim(worker_id, timedelta(minutes=5), limit=limit):
            for claim in claims:
                claimed.append(claim.id)
                ledger.mark_archived(
                    claim.id,
                    worker_id,
                    archive_ref=f"{worker_id}/{claim.id}",
                    actual_sha256=None,
                    actual_size=None,
                    verified=False,
                )
                ledger.mark_acknowledged(claim.id, worker_id)
    finally:
        ledger.close()
        out.put((worker_id, claimed))


def record_seen(
    ledger: Ledger,
    account: str,
    forsendelse_id: str,
    *,
    now: datetime | None = None,
    **fields: Any,
) -> SeenResult:
    """One listed forsendelse written down, as ``record_seen_many`` does for a page."""
    return ledger.record_seen_many(account, [Sighting(forsendelse_id, **fields)], now=now)[0]


# The contract tests' workers and lease; ``bring`` puts a letter in any state.
W = "host-a:1"
OTHER = "host-b:1"
LEASE = timedelta(minutes=5)
HASH = "ab" * 32


def bring(ledger: Ledger, fid: str, state: State, account: str | None = None) -> int:
    """A letter in ``state``; in claimed/archived/failed_permanently, W holds the lease.

    Each letter gets its own account unless one is given, so the claim here takes only it.
    """
    account = account or f"a-{fid}"
    letter_id = record_seen(ledger, account, fid, sender="Avsender", title=fid).letter_id
    if state is State.SEEN:
        return letter_id
    [claim] = ledger.claim(W, LEASE, account=account)
    assert claim.id == letter_id
    if state is State.CLAIMED:
        return letter_id
    if state in (State.ARCHIVED, State.ACKNOWLEDGED):
        ledger.mark_archived(
            letter_id, W, archive_ref=f"ref-{fid}", actual_sha256=HASH, actual_size=3, verified=True
        )
        if state is State.ACKNOWLEDGED:
            ledger.mark_acknowledged(letter_id, W)
        return letter_id
    if state is State.SENT:
        ledger.mark_sent(
            letter_id, W, message_id=f"msg-{fid}", archive="fiks", resend_at=ledger.clock() + LEASE
        )
        return letter_id
    if state is State.RETRY_SCHEDULED:
        ledger.schedule_retry(
            letter_id, W, "ServiceUnavailableError", "503", ledger.clock() + LEASE
        )
        return letter_id
    ledger.mark_failed_permanently(letter_id, W, "NoMatchingRecipientError", "not for us")
    if state is State.REPORTED:
        ledger.mark_reported(letter_id, W)
    return letter_id
