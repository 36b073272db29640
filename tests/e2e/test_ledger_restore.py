"""A ledger put back from a backup taken mid-run (issue #28, its SQLite part), with each
archive that can answer "do you have it?": the daemon notices (``ledger.rewound``), asks the
archive about every letter the ledger forgot, hands none of them over again, and reports
none failed. Print the figures with ``-s``."""

from __future__ import annotations

import json
import shutil
import signal
import sqlite3
from pathlib import Path

import pytest

from svarinn_daemon.config import load_config
from svarinn_daemon.simulator import Fault
from tests.support.archives import ADAPTERS, archive_for
from tests.support.daemon_harness import RUN_CONFIG as CONFIG
from tests.support.daemon_harness import Harness, harness
from tests.support.fault_support import log_events, wait_for

# The usual weather at SvarInn: failed and reset downloads, refused receipts, slow answers.
FAULTS = (
    Fault("http_500", endpoints=frozenset({"download"}), rate=0.15),
    Fault("reset", rate=0.1),
    Fault("http_503", endpoints=frozenset({"acknowledge"}), rate=0.15),
    Fault("slow", endpoints=frozenset({"download"}), delay=0.3),
)


def _events(log: Path, name: str) -> list[dict[str, object]]:
    return [e for e in log_events(log) if e["event"] == name]


def _ids(log: Path, name: str) -> set[str]:
    return {str(e["forsendelse_id"]) for e in _events(log, name)}


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_a_ledger_restored_from_a_backup_imports_nothing_twice(
    tmp_path: Path, adapter: str
) -> None:
    with (
        harness(tmp_path / "h", extra_config=CONFIG) as h,
        archive_for(adapter, h, tmp_path / "archive") as archive,
    ):
        database = Path(load_config(h.config_path, environ={}).ledger.url.split("///", 1)[1])
        letters = h.sim.generate(24, 100_000)
        for fault in FAULTS:
            h.sim.add_fault(fault)
        first = tmp_path / "first.log"
        process = h.spawn("run", output=first)
        backup = tmp_path / "backup.sqlite3"
        try:
            wait_for(lambda: len(_events(first, "forsendelse.archived")) >= 6, 180, "imports")
            with sqlite3.connect(database) as source, sqlite3.connect(backup) as target:
                source.backup(target)  # SQLite's online backup, while the daemon writes
            wait_for(
                lambda: set(h.sim.state().acknowledged) >= {x.id for x in letters},
                180,
                "every receipt",
            )
            with sqlite3.connect(backup) as old:
                (in_backup,) = old.execute("SELECT max(id) FROM forsendelse_events").fetchone()
            mark = database.parent / "ledger-mark.json"
            wait_for(  # the daemon marks where its ledger is every few seconds
                lambda: mark.exists() and json.loads(mark.read_text())["event_id"] > in_backup,
                30,
                "a mark newer than the backup",
            )
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=30)
        held = archive.held()
        posts_before = archive.posts()
        assert held == {x.id for x in letters}
        for suffix in ("-wal", "-shm"):
            Path(f"{database}{suffix}").unlink(missing_ok=True)
        shutil.copyfile(backup, database)
        # Half listed again, as if SvarUt had not heard the receipts the ledger forgot; the
        # other half answer a receipt with 404, as letters acknowledged before do.
        for n, letter in enumerate(letters):
            if n % 2:
                h.sim.relist(letter.id)
            else:
                h.sim.acknowledge_elsewhere(letter.id)
        second = tmp_path / "second.log"
        process = h.spawn("run", output=second)
        try:
            wait_for(lambda: bool(_events(second, "ledger.rewound")), 60, "ledger.rewound")
            wait_for(lambda: not h.sim.state().pending, 180, "SvarInn to list nothing any more")
            wait_for(lambda: _finished(h), 180, "every letter finished in the ledger")
        finally:
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=60) == 0
        handed_again = _ids(second, "forsendelse.archived")
        found = _ids(second, "forsendelse.already_archived")
        print(
            f"\n{adapter}: restored ledger: {len(found)} letters re-checked with the archive "
            f"and found there (only acknowledged), {len(handed_again)} handed to it again"
        )
        assert not handed_again & held  # nothing the archive held was handed to it again
        assert found  # the ledger had forgotten some, and asked the archive about them
        assert archive.held() == {x.id for x in letters}
        assert set(archive.entries().values()) == {1}
        assert archive.posts() == posts_before  # http: not one POST after the restore
        assert h.sim.state().reports == ()  # none reported failed, not even temporarily
        status = h.cli("status").stdout
        assert f"{len(found)} already in the archive" in status, status
        as_json = json.loads(h.cli("status", "--json").stdout)
        assert as_json["found_done"]["simulator"]["archive"] == len(found)


def _finished(h: Harness) -> bool:
    """Nothing unfinished in the ledger (status --json, read beside the running daemon)."""
    return json.loads(h.cli("status", "--json").stdout)["oldest_unfinished"] is None
