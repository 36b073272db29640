"""The lease of a letter is renewed while its adapter works (issue #24, item 12): a program's
run is one blocking step, and a lease that ran out under it would let another worker take
the letter over and import it a second time."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from svarinn_daemon.config import load_config
from tests.support.daemon_harness import harness
from tests.support.programs import use_archive


def _lease(ledger: Path) -> str | None:
    with sqlite3.connect(f"file:{ledger}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT lease_expires_at FROM forsendelser").fetchall()
    return None if not rows or rows[0][0] is None else str(rows[0][0])


def test_the_lease_is_renewed_while_the_program_runs(tmp_path: Path) -> None:
    with harness(tmp_path / "h") as h:  # lease = "30s": renewed every 10 s
        started, go = h.root / "started", h.root / "go"
        script = h.config_path.parent / "import.sh"
        # Runs until the test says go (the adapter's timeout, 30 s, ends it otherwise).
        script.write_text(
            f'#!/bin/sh\ntouch "{started}"\n'
            f'while [ ! -e "{go}" ]; do sleep 0.05; done\necho "sak:$SVARINN_FORSENDELSE_ID"\n'
        )
        use_archive(
            h,
            f'[archives.default]\nadapter = "command"\ncommand = ["/bin/sh", "{script}"]\n'
            'timeout = "30s"\n',
        )
        config = load_config(h.config_path, environ={})
        ledger = Path(config.ledger.url.split("///", 1)[1])
        (letter,) = h.sim.generate(1, 10_000)
        daemon = h.spawn("poll-once")
        try:
            while not started.exists():
                assert daemon.poll() is None, daemon.communicate()
                time.sleep(0.05)
            first = _lease(ledger)
            assert first is not None
            renewed = None
            while daemon.poll() is None and renewed in (None, first):
                time.sleep(0.1)
                renewed = _lease(ledger)  # nothing but the renewal changes it meanwhile
            assert renewed not in (None, first), "the lease stood still while the program ran"
            assert renewed > first
            go.touch()
            out, err = daemon.communicate(timeout=60)
        finally:
            go.touch()
            if daemon.poll() is None:
                daemon.kill()
                daemon.communicate()
        assert daemon.returncode == 0, out[-2000:] + err[-2000:]
        assert set(h.sim.state().acknowledged) == {letter.id}
