"""PostgreSQL failovers with real streaming replication (issue #28): two clusters on loopback,
the standby made by ``pg_basebackup -R``, the daemon on a multi-host URL that libpq points at
the writable one.

A failover that loses commits (the standby stopped while the primary takes a burst of
letters, then the primary killed and the standby promoted) is noticed as ``ledger.rewound``,
and the letters the ledger forgot are asked about in the archive, never handed over again.
A plain failover mid-run is ridden out by two daemons on the same ledger. Print the time
from the promotion to the first successful poll with ``-s``.
"""

from __future__ import annotations

import dataclasses
import json
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest

from svarinn_daemon.simulator import Fault
from tests.support.archives import ADAPTERS, archive_for
from tests.support.daemon_harness import RUN_CONFIG as CONFIG
from tests.support.daemon_harness import Harness, harness
from tests.support.fault_support import log_events, wait_for, when
from tests.support.pg_server import PostgresServer, throwaway_server

pytestmark = pytest.mark.postgres


@contextmanager
def _replicated() -> Iterator[tuple[PostgresServer, PostgresServer, str]]:
    """A primary with a fresh database, its streaming standby, and the URL naming both."""
    primary = throwaway_server()
    standby: PostgresServer | None = None
    try:
        database = primary.create_database().rsplit("/", 1)[1]
        standby = primary.standby()
        yield primary, standby, primary.multi_host_url(database, standby)
    finally:
        primary.stop()
        if standby is not None:
            standby.stop()


def _events(log: Path, name: str) -> list[dict[str, object]]:
    return [e for e in log_events(log) if e["event"] == name]


def _ids(log: Path, name: str) -> set[str]:
    return {str(e["forsendelse_id"]) for e in _events(log, name)}


def _acknowledged(h: Harness, ids: set[str]) -> bool:
    return set(h.sim.state().acknowledged) >= ids


def _first_poll_after(log: Path, at: datetime) -> float:
    polls = [when(e) for e in _events(log, "poll.finished")]
    return min((p - at).total_seconds() for p in polls if p > at)


def _stop(process: subprocess.Popen[str], log: Path) -> None:
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 0, log.read_text()[-3000:]


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_a_failover_that_lost_commits_imports_nothing_twice(tmp_path: Path, adapter: str) -> None:
    with (
        _replicated() as (primary, standby, url),
        harness(tmp_path / "h", ledger_url=url, extra_config=CONFIG) as h,
        archive_for(adapter, h, tmp_path / "archive") as archive,
    ):
        database = url.split("/")[3].split("?")[0]
        h.sim.add_fault(Fault("slow", endpoints=frozenset({"download"}), delay=0.2))
        early = h.sim.generate(6, 100_000)
        log = tmp_path / "daemon.log"
        process = h.spawn("run", output=log)
        try:
            wait_for(lambda: _acknowledged(h, {x.id for x in early}), 120, "the first letters")
            primary.wait_replayed_by(standby)
            standby.halt()  # from here on the primary's commits are its own
            on_standby = primary.query("SELECT max(id) FROM forsendelse_events", database)
            assert isinstance(on_standby, int)
            burst = h.sim.generate(12, 100_000)
            wait_for(lambda: _acknowledged(h, {x.id for x in burst}), 120, "the burst")
            mark = h.root / "state" / "ledger-mark.json"
            wait_for(
                lambda: mark.exists() and json.loads(mark.read_text())["event_id"] > on_standby,
                30,
                "a mark the standby never heard of",
            )
            held = archive.held()
            posts_before = archive.posts()
            primary.kill()
            standby.resume()
            standby.promote()
            promoted = datetime.now(UTC)
            # SvarUt lists half the burst again (receipts it did not register, say).
            for letter in burst[::2]:
                h.sim.relist(letter.id)
            wait_for(lambda: bool(_events(log, "ledger.rewound")), 60, "ledger.rewound")
            wait_for(lambda: not h.sim.state().pending, 120, "SvarInn to list nothing more")
            wait_for(
                lambda: len(_ids(log, "forsendelse.already_archived")) >= len(burst[::2]),
                120,
                "the relisted letters asked about in the archive",
            )
        finally:
            _stop(process, log)
        letters = {x.id for x in early + burst}
        after = [e for e in log_events(log) if when(e) > promoted]
        handed_again = {
            str(e["forsendelse_id"]) for e in after if e["event"] == "forsendelse.archived"
        }
        found = _ids(log, "forsendelse.already_archived")
        print(
            f"\n{adapter}: failover that lost {len(burst)} letters' commits: {len(found)} "
            f"re-checked with the archive and found there, {len(handed_again)} handed over "
            f"again; promotion -> first successful poll: {_first_poll_after(log, promoted):.2f} s"
        )
        assert held == letters
        assert not handed_again
        assert found == {x.id for x in burst[::2]}
        assert archive.held() == letters
        assert set(archive.entries().values()) == {1}
        assert archive.posts() == posts_before
        assert h.sim.state().reports == ()


def test_two_daemons_ride_out_a_failover_mid_run(tmp_path: Path) -> None:
    with (
        _replicated() as (primary, standby, url),
        harness(tmp_path / "h", ledger_url=url, extra_config=CONFIG) as h,
    ):
        second_config = h.root / "second.toml"
        second_config.write_text(
            h.config_path.read_text()
            .replace('state_directory = "state"', 'state_directory = "state-2"')
            .replace('worker_id = "test-worker"', 'worker_id = "test-worker-2"')
        )
        second = dataclasses.replace(h, config_path=second_config)
        h.sim.add_fault(Fault("slow", endpoints=frozenset({"download"}), delay=0.5))
        h.sim.add_fault(Fault("http_503", endpoints=frozenset({"acknowledge"}), rate=0.1))
        letters = h.sim.generate(30, 100_000)
        logs = [tmp_path / "first.log", tmp_path / "second.log"]
        processes = [h.spawn("run", output=logs[0]), second.spawn("run", output=logs[1])]
        try:
            wait_for(
                lambda: all(len(_events(x, "forsendelse.archived")) >= 3 for x in logs),
                120,
                "imports by both",
            )
            primary.kill()  # letters in flight: downloads, archiving, receipts
            standby.promote()
            promoted = datetime.now(UTC)
            wait_for(lambda: _acknowledged(h, {x.id for x in letters}), 180, "every receipt")
            wait_for(
                lambda: all(_events(x, "poll.finished") and _later_poll(x, promoted) for x in logs),
                60,
                "both daemons polling again",
            )
        finally:
            for process, log in zip(processes, logs, strict=True):
                _stop(process, log)
        for n, log in enumerate(logs, 1):
            print(
                f"\ndaemon {n}: promotion -> first successful poll: "
                f"{_first_poll_after(log, promoted):.2f} s"
            )
            # A daemon that met the outage (not every one does: a promotion takes a moment)
            # logged it once and its end once.
            outages = len(_events(log, "ledger.unavailable"))
            assert outages == len(_events(log, "ledger.recovered")) <= 1, f"daemon {n}"
        assert h.archived_ids() == {x.id for x in letters}
        assert h.sim.state().reports == ()
        by = [_ids(log, "forsendelse.archived") for log in logs]
        assert not by[0] & by[1]  # never the same letter by both


def _later_poll(log: Path, at: datetime) -> bool:
    return any(when(e) > at for e in _events(log, "poll.finished"))
