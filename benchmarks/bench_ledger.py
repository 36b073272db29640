"""Ledger throughput on SQLite and PostgreSQL.

    .venv/bin/python benchmarks/bench_ledger.py [--letters 10000] [--cycle 2000]

Prints, per backend:
- record_seen: N ids arriving as pages of 200 (``record_seen_many``), first sight (inserts)
  and the next poll listing the same ids again (all known), in ids/s -- the latter also after
  ANALYZE: right after a bulk insert PostgreSQL has no statistics and picks a poor plan until
  autovacuum analyzes the table;
- the full claim -> mark_archived -> mark_acknowledged cycle, one worker, in letters/s;
- baselines in the same run: a bare multi-row INSERT of the same rows per page, and three
  bare single-row UPDATE commits per letter -- what the database costs without the ledger.
PostgreSQL is the throwaway server from tests/support/pg_server.py (fsync off: its figures show the
ledger's own cost, not a production server's disk). SQLite runs with synchronous=FULL.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from svarinn_daemon.config import LedgerConfig
from svarinn_daemon.ledger import Ledger, Sighting, build_engine, open_ledger
from svarinn_daemon.ledger.models import forsendelser
from tests.support.pg_server import PostgresServer, find_bindir

PAGE = 200
LEASE = timedelta(minutes=5)


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def pages(n: int, prefix: str) -> list[list[Sighting]]:
    out = []
    for start in range(0, n, PAGE):
        out.append(
            [
                Sighting(
                    f"{prefix}-{i:08d}-0000-0000-0000-000000000000",
                    sender="Avsender AS",
                    title=f"Brev {i}",
                    declared_size=123456,
                    expected_sha256="ab" * 32,
                    raw_json=json.dumps(
                        {"id": f"{prefix}-{i}", "tittel": f"Brev {i}", "filmetadata": []}
                    ),
                )
                for i in range(start, min(n, start + PAGE))
            ]
        )
    return out


def baseline_insert(url: str, n: int) -> float:
    """A bare multi-row INSERT of equivalent rows, one transaction per page."""
    engine = build_engine(LedgerConfig(url=url))
    now = datetime.now(UTC)
    rows = [
        {
            "account": "baseline",
            "forsendelse_id": f"b-{i}",
            "state": "seen",
            "sender": "Avsender AS",
            "title": f"Brev {i}",
            "declared_size": 123456,
            "file_count": 0,
            "expected_sha256": "ab" * 32,
            "attempts": 0,
            "seen_at": now,
            "due_at": now,
            "updated_at": now,
            "raw": "{}",
        }
        for i in range(n)
    ]

    def run() -> None:
        for start in range(0, n, PAGE):
            with engine.begin() as conn:
                conn.execute(sa.insert(forsendelser), rows[start : start + PAGE])

    elapsed = timed(run)
    engine.dispose()
    return elapsed


def baseline_updates(url: str, n: int) -> float:
    """Three bare single-row UPDATE commits per letter (the cycle's floor)."""
    engine = build_engine(LedgerConfig(url=url))
    with engine.connect() as conn:
        ids = (
            conn.execute(
                sa.select(forsendelser.c.id).where(forsendelser.c.account == "baseline").limit(n)
            )
            .scalars()
            .all()
        )

    def run() -> None:
        for letter_id in ids:
            for step in ("claimed", "archived", "acknowledged"):
                with engine.begin() as conn:
                    conn.execute(
                        sa.update(forsendelser)
                        .where(forsendelser.c.id == letter_id)
                        .values(state=step)
                    )

    elapsed = timed(run)
    engine.dispose()
    return elapsed


def cycle(ledger: Ledger, n: int) -> int:
    done = 0
    while done < n:
        claims = ledger.claim("bench:1", LEASE, account="kommune")
        if not claims:
            break
        for claim in claims:
            ledger.mark_archived(
                claim.id,
                "bench:1",
                archive_ref=f"a/{claim.id}",
                actual_sha256="ab" * 32,
                actual_size=123456,
                verified=True,
            )
            ledger.mark_acknowledged(claim.id, "bench:1")
            done += 1
    return done


def bench(name: str, url: str, letters: int, cycle_n: int) -> None:
    ledger = open_ledger(LedgerConfig(url=url), migrate_schema=True)
    batches = pages(letters, "f")
    first = timed(lambda: [ledger.record_seen_many("kommune", p) for p in batches])
    again = timed(lambda: [ledger.record_seen_many("kommune", p) for p in batches])
    with ledger.engine.begin() as conn:  # what autovacuum does in production within a minute
        conn.execute(sa.text("ANALYZE"))
    analyzed = timed(lambda: [ledger.record_seen_many("kommune", p) for p in batches])
    base_insert = baseline_insert(url, letters)
    done = 0

    def run_cycle() -> None:
        nonlocal done
        done = cycle(ledger, cycle_n)

    cycle_s = timed(run_cycle)
    base_cycle = baseline_updates(url, cycle_n)
    ledger.close()
    print(f"{name}:")
    print(
        f"  record_seen, {letters} new ids in {len(batches)} pages of {PAGE}: "
        f"{letters / first:10.0f} ids/s   (bare INSERT baseline {letters / base_insert:8.0f}/s)"
    )
    print(
        f"  record_seen, the same ids listed again:     {letters / again:10.0f} ids/s"
        f"   (after ANALYZE: {letters / analyzed:8.0f} ids/s)"
    )
    print(
        f"  claim -> archived -> acknowledged, {done} letters: {done / cycle_s:8.0f} letters/s"
        f"   (3 bare UPDATE commits baseline {cycle_n / base_cycle:6.0f}/s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--letters", type=int, default=10_000)
    parser.add_argument("--cycle", type=int, default=2_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bench(
            "SQLite (WAL, synchronous=FULL)",
            f"sqlite:///{tmp}/ledger.sqlite3",
            args.letters,
            args.cycle,
        )
    bindir = find_bindir()
    if bindir is None:
        print("PostgreSQL: not installed, skipped")
    else:
        server = PostgresServer(bindir)
        server.start()
        try:
            bench(
                "PostgreSQL (throwaway server, fsync off)",
                server.create_database(),
                args.letters,
                args.cycle,
            )
        finally:
            server.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"peak RSS: {rss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
