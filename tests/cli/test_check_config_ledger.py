"""``check-config --online`` says which database server answered for the ledger and whether
it takes writes: the host libpq chose from a multi-host URL, a standby in recovery refused
(exit 1), a SQLite file only looked at, never created (issue #28)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.daemon_harness import harness
from tests.support.pg_server import throwaway_server


def test_a_sqlite_ledger_is_looked_at_not_created(tmp_path: Path) -> None:
    with harness(tmp_path) as h:
        result = h.cli("check-config", "--online", "--quiet")
        assert result.returncode == 0, result.stderr
        database = h.root / "state" / "ledger.sqlite3"
        assert f"ledger: SQLite file {database} (not there yet" in result.stderr
        assert not database.exists()


@pytest.mark.postgres
def test_the_host_that_answered_and_whether_it_takes_writes(tmp_path: Path) -> None:
    primary = throwaway_server()
    standby = None
    try:
        database = primary.create_database().rsplit("/", 1)[1]
        standby = primary.standby()
        multi = primary.multi_host_url(database, standby)
        with harness(tmp_path / "multi", ledger_url=multi) as h:
            result = h.cli("check-config", "--online", "--quiet")
            assert result.returncode == 0, result.stderr
            assert f"ledger: 127.0.0.1:{primary.port} answered and takes writes" in result.stderr
            primary.kill()  # no host takes writes: the standby is still in recovery
            result = h.cli("check-config", "--online", "--quiet")
            assert result.returncode == 1
            assert "ledger: LedgerUnavailableError" in result.stderr, result.stderr
            standby.promote()
            result = h.cli("check-config", "--online", "--quiet")
            assert result.returncode == 0, result.stderr
            assert f"ledger: 127.0.0.1:{standby.port} answered and takes writes" in result.stderr
        replica = standby.standby()
        try:
            with harness(tmp_path / "one", ledger_url=replica.url(database)) as h:
                result = h.cli("check-config", "--online", "--quiet")
                assert result.returncode == 1
                assert (
                    f"ledger: 127.0.0.1:{replica.port} answered but takes no writes "
                    "(a standby in recovery)"
                ) in result.stderr
        finally:
            replica.stop()
    finally:
        primary.stop()
        if standby is not None:
            standby.stop()
