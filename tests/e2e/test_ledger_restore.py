"""A ledger put back from a backup taken mid-run (issue #28, its SQLite part): the daemon
notices (``ledger.rewound``), asks the archive about every letter the ledger forgot, and
imports nothing twice; none is reported failed."""

from __future__ import annotations

import json
import shutil
import signal
import sqlite3
from pathlib import Path

from svarinn_daemon.config import load_config
from svarinn_daemon.simulator import Fault
from tests.support.daemon_harness import harness
from tests.support.fault_support import log_events, wait_for

CONFIG = """
[daemon]
worker_id = "test-worker"
concurrency = 3
lease = "30s"
shutdown_grace = "5s"
poll_interval = "1s"
poll_jitter = "0s"

[retry]
base_delay = "200ms"
max_delay = "1s"
"""


def _events(log: Path, name: str) -> list[dict[str, object]]:
    return [e for e in log_events(log) if e["event"] == name]


def test_a_ledger_restored_from_a_backup_imports_nothing_twice(tmp_path: Path) -> None:
    with harness(tmp_path / "h", extra_config=CONFIG) as h:
        database = Path(load_config(h.config_path, environ={}).ledger.url.split("///", 1)[1])
        letters = h.sim.generate(24, 100_000)
        h.sim.add_fault(Fault("slow", endpoints=frozenset({"download", "v2_download"}), delay=0.3))
        first = tmp_path / "first.log"
        process = h.spawn("run", output=first)
        backup = tmp_path / "backup.sqlite3"
        try:
            wait_for(lambda: len(_events(first, "forsendelse.archived")) >= 6, 120, "imports")
            with sqlite3.connect(database) as source, sqlite3.connect(backup) as target:
                source.backup(target)  # SQLite's online backup, while the daemon writes
            wait_for(
                lambda: set(h.sim.state().acknowledged) >= {x.id for x in letters},
                120,
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
        archived_first = {e["forsendelse_id"] for e in _events(first, "forsendelse.archived")}
        for suffix in ("-wal", "-shm"):
            Path(f"{database}{suffix}").unlink(missing_ok=True)
        shutil.copyfile(backup, database)
        # Listed again, as if SvarUt had not heard the receipts the ledger forgot.
        for letter in letters:
            h.sim.relist(letter.id)
        second = tmp_path / "second.log"
        process = h.spawn("run", output=second)
        try:
            wait_for(lambda: bool(_events(second, "ledger.rewound")), 60, "ledger.rewound")
            wait_for(lambda: not h.sim.state().pending, 120, "SvarInn to list nothing any more")
        finally:
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=60) == 0
        archived_again = {e["forsendelse_id"] for e in _events(second, "forsendelse.archived")}
        found = {e["forsendelse_id"] for e in _events(second, "forsendelse.already_archived")}
        print(
            f"\nrestored ledger: {len(found)} letters found in the archive and only "
            f"acknowledged, {len(archived_again)} imported anew"
        )
        assert archived_first.isdisjoint(archived_again)  # nothing imported twice
        assert found  # the ledger had forgotten some, and asked the archive about them
        assert h.archived_ids() == {x.id for x in letters}
        assert h.sim.state().reports == ()
        status = h.cli("status").stdout
        assert f"{len(found)} already in the archive" in status, status
        as_json = json.loads(h.cli("status", "--json").stdout)
        assert as_json["found_done"]["simulator"]["archive"] == len(found)
