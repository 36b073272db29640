"""Noticing a ledger that went back in time (service/rewind.py, issue #28): the mark in the
state directory against a real ledger, put back from a real SQLite online backup, or with an
event id handed out again for another row (what a PostgreSQL sequence does after a failover
that lost commits)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from svarinn_daemon.config import LedgerConfig
from svarinn_daemon.ledger import Ledger, State, open_ledger
from svarinn_daemon.service.metrics import Metrics
from svarinn_daemon.service.rewind import MARK_FILE, RewindWatch
from tests.support.ledger_support import record_seen


def _rewound(metrics: Metrics) -> float:
    value = metrics.registry.get_sample_value("svarinn_ledger_rewound_total")
    return value or 0.0


def _events(logs: list[dict[str, object]], name: str) -> list[dict[str, object]]:
    return [x for x in logs if x["event"] == name]


def test_a_ledger_put_back_from_a_backup_is_noticed_once(tmp_path: Path) -> None:
    database = tmp_path / "state" / "ledger.sqlite3"
    config = LedgerConfig(url=f"sqlite:///{database}")
    backup = tmp_path / "backup.sqlite3"
    metrics = Metrics()
    ledger = open_ledger(config, migrate_schema=True)
    try:
        watch = RewindWatch(ledger, tmp_path / "state", "the ledger", metrics)
        record_seen(ledger, "k", "before")
        assert watch.check() is False  # no mark yet: nothing to compare
        with sqlite3.connect(database) as source, sqlite3.connect(backup) as target:
            source.backup(target)
        record_seen(ledger, "k", "after")
        assert watch.check() is False
        marked = json.loads((tmp_path / "state" / MARK_FILE).read_text())
        assert marked["ledger"] == "the ledger"
    finally:
        ledger.close()
    with sqlite3.connect(backup) as source, sqlite3.connect(database) as target:
        source.backup(target)  # the restore
    ledger = open_ledger(config, migrate_schema=True)
    try:
        watch = RewindWatch(ledger, tmp_path / "state", "the ledger", metrics)
        with capture_logs() as logs:
            assert watch.check() is True
            assert watch.check() is False  # marked anew: said once
        (said,) = _events(logs, "ledger.rewound")
        assert said["log_level"] == "error"
        assert said["marked_event"] == marked["event_id"]
        assert _rewound(metrics) == 1
        when = metrics.registry.get_sample_value("svarinn_ledger_rewound_timestamp_seconds")
        assert when is not None
        assert when > 0  # for the alert: a rewind found in a new process's first sample
        newest = ledger.newest_event()
        assert newest is not None
        assert json.loads((tmp_path / "state" / MARK_FILE).read_text())["event_id"] == newest[0]
    finally:
        ledger.close()


def test_an_event_id_handed_out_again_is_not_the_marked_event(
    ledger: Ledger, tmp_path: Path
) -> None:
    """The mark names a row of the old primary; the promoted standby never had that row and
    gave its id to another one: same id, another letter or time."""
    record_seen(ledger, "k", "one")
    record_seen(ledger, "k", "two")
    newest = ledger.newest_event()
    assert newest is not None
    event_id, letter_id, at = newest
    for other_letter, other_at in ((letter_id + 1, at), (letter_id, at + timedelta(seconds=3))):
        (tmp_path / MARK_FILE).write_text(
            json.dumps(
                {
                    "ledger": "the ledger",
                    "event_id": event_id,
                    "letter_id": other_letter,
                    "at": other_at.isoformat(),
                }
            )
        )
        metrics = Metrics()
        with capture_logs() as logs:
            assert RewindWatch(ledger, tmp_path, "the ledger", metrics).check() is True
        assert _events(logs, "ledger.rewound")
        assert _rewound(metrics) == 1
    # and the exact row is no rewind
    with capture_logs() as logs:
        assert RewindWatch(ledger, tmp_path, "the ledger", Metrics()).check() is False
    assert not _events(logs, "ledger.rewound")


def test_another_ledger_is_the_operators_choice(ledger: Ledger, tmp_path: Path) -> None:
    metrics = Metrics()
    record_seen(ledger, "k", "one")
    RewindWatch(ledger, tmp_path, "the old ledger", metrics).check()
    with capture_logs() as logs:
        assert RewindWatch(ledger, tmp_path, "a new ledger", metrics).check() is False
    (said,) = _events(logs, "ledger.changed")
    assert said["log_level"] == "info"
    assert not _events(logs, "ledger.rewound")
    assert _rewound(metrics) == 0
    assert json.loads((tmp_path / MARK_FILE).read_text())["ledger"] == "a new ledger"


def test_an_unreadable_mark_is_said_and_replaced(ledger: Ledger, tmp_path: Path) -> None:
    record_seen(ledger, "k", "one")
    (tmp_path / MARK_FILE).write_text("{not json")
    with capture_logs() as logs:
        assert RewindWatch(ledger, tmp_path, "the ledger", Metrics()).check() is False
    assert _events(logs, "ledger.mark_unreadable")
    assert json.loads((tmp_path / MARK_FILE).read_text())["event_id"] > 0


Undone = tuple[Callable[[], object], int | None, State | None]


def _claim_undone(ledger: Ledger) -> Undone:
    """Two letters seen (durable), then a claim: the claim is what the power cut undoes."""
    record_seen(ledger, "k", "one")
    record_seen(ledger, "k", "two")
    return lambda: ledger.claim("w", timedelta(minutes=5)), None, None


def _receipt_undone(ledger: Ledger) -> Undone:
    """A letter archived (durable), then its receipt's record: the letter is archived again
    after the power cut, so its receipt is sent again."""
    record_seen(ledger, "k", "one")
    (claim,) = ledger.claim("w", timedelta(minutes=5))
    ledger.mark_archived(
        claim.id, "w", archive_ref="x", actual_sha256="ab" * 32, actual_size=1, verified=True
    )
    return lambda: ledger.mark_acknowledged(claim.id, "w"), claim.id, State.ARCHIVED


@pytest.mark.parametrize("setup", [_claim_undone, _receipt_undone], ids=["claim", "receipt"])
def test_a_write_a_power_cut_may_undo_is_no_rewind(
    tmp_path: Path, setup: Callable[[Ledger], Undone]
) -> None:
    """Claims and receipts' records commit without a sync on SQLite, so the mark never names
    one: a ledger that lost only such writes newer than its last durable commit (put back
    here from a copy taken before them) is no rewind."""
    database = tmp_path / "state" / "ledger.sqlite3"
    config = LedgerConfig(url=f"sqlite:///{database}")
    synced = tmp_path / "synced.sqlite3"
    ledger = open_ledger(config, migrate_schema=True)
    try:
        write, letter_id, state_after = setup(ledger)
        with sqlite3.connect(database) as source, sqlite3.connect(synced) as target:
            source.backup(target)  # what the disk holds when the power goes
        write()
        assert RewindWatch(ledger, tmp_path / "state", "the ledger", Metrics()).check() is False
    finally:
        ledger.close()
    with sqlite3.connect(synced) as source, sqlite3.connect(database) as target:
        source.backup(target)  # the write is gone
    ledger = open_ledger(config, migrate_schema=True)
    try:
        with capture_logs() as logs:
            watch = RewindWatch(ledger, tmp_path / "state", "the ledger", Metrics())
            assert watch.check() is False
        assert not _events(logs, "ledger.rewound")
        if letter_id is not None:
            letter = ledger.get(letter_id)
            assert letter is not None
            assert letter.state is state_after
    finally:
        ledger.close()
