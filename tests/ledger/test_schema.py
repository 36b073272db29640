"""Migrations build exactly the models' schema; foreign, older, newer and unreachable
databases are refused at start with a clear message."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from svarinn_daemon.config import LedgerConfig, Secret
from svarinn_daemon.errors import LedgerUnavailableError, SchemaMismatchError
from svarinn_daemon.ledger import build_engine, check_schema, head_revision, migrate, open_ledger
from svarinn_daemon.ledger.models import SCHEMA_REVISION, metadata
from svarinn_daemon.ledger.schema import downgrade, script_location
from tests.support.ledger_support import migrate_then_mark
from tests.support.loopback import free_port

REPO = Path(__file__).resolve().parents[2]


def _diff(engine: sa.Engine) -> list[object]:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(context, metadata))


def test_upgrade_head_is_exactly_the_models_and_downgrade_base_works(ledger_url: str) -> None:
    engine = build_engine(LedgerConfig(url=ledger_url))
    try:
        before = migrate(engine)
        assert (before.current, before.head) == (None, head_revision())
        assert head_revision() == SCHEMA_REVISION  # the models' revision is the head
        assert _diff(engine) == []
        assert check_schema(engine).current == head_revision()
        # Check constraints are not compared by Alembic: prove they exist.
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO forsendelser (account, forsendelse_id, state, file_count, "
                    "attempts, seen_at, updated_at, raw) VALUES ('a', 'f', 'lost', 0, 0, "
                    "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, '{}')"
                )
            )
        again = migrate(engine)  # idempotent
        assert again.current == again.head
        downgrade(engine, "base")
        assert set(sa.inspect(engine).get_table_names()) <= {"alembic_version"}
        migrate(engine)
        assert _diff(engine) == []
    finally:
        engine.dispose()


def test_migrations_come_from_the_top_level_directory() -> None:
    # The editable install maps svarinn_daemon.migrations onto migrations/ (setup.py).
    assert script_location() == REPO / "migrations"


def test_a_newer_schema_is_refused(ledger_url: str) -> None:
    migrate_then_mark(ledger_url, "9999_future")
    with pytest.raises(SchemaMismatchError, match=r"9999_future.*upgrade svarinn-daemon"):
        open_ledger(LedgerConfig(url=ledger_url))
    with pytest.raises(SchemaMismatchError, match="does not know"):
        open_ledger(LedgerConfig(url=ledger_url), migrate_schema=True)


def test_a_foreign_database_is_refused_and_left_alone(ledger_url: str) -> None:
    engine = build_engine(LedgerConfig(url=ledger_url))
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE invoices (id INTEGER PRIMARY KEY)"))
    engine.dispose()
    for migrate_schema in (False, True):
        with pytest.raises(SchemaMismatchError, match=r"invoices.*no svarinn-daemon schema"):
            open_ledger(LedgerConfig(url=ledger_url), migrate_schema=migrate_schema)
    engine = build_engine(LedgerConfig(url=ledger_url))
    assert set(sa.inspect(engine).get_table_names()) == {"invoices"}
    engine.dispose()


def test_an_empty_or_older_database_asks_for_migrate(ledger_url: str) -> None:
    with pytest.raises(SchemaMismatchError, match="svarinn-daemon migrate"):
        open_ledger(LedgerConfig(url=ledger_url))
    engine = build_engine(LedgerConfig(url=ledger_url))
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)"))
    engine.dispose()
    opened = open_ledger(LedgerConfig(url=ledger_url), migrate_schema=True)
    opened.close()


def test_an_unreachable_postgresql_is_a_clear_temporary_error() -> None:
    url = f"postgresql+psycopg://svarinn@127.0.0.1:{free_port()}/ledger"
    secret = Secret(source="env:LEDGER_PW", _value=b"hunter2-very-secret")
    with pytest.raises(LedgerUnavailableError) as err:
        open_ledger(LedgerConfig(url=url, password=secret))
    message = str(err.value)
    assert "127.0.0.1" in message
    assert "connecting" in message
    assert "hunter2" not in message
    assert err.value.temporary


def test_an_unusable_sqlite_path_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(LedgerUnavailableError, match="cannot create the ledger directory"):
        open_ledger(LedgerConfig(url=f"sqlite:///{blocker}/sub/ledger.sqlite3"))
    garbage = tmp_path / "garbage.sqlite3"
    garbage.write_bytes(b"this is not a database" * 100)
    with pytest.raises(LedgerUnavailableError, match="not a database"):
        open_ledger(LedgerConfig(url=f"sqlite:///{garbage}"))


def test_sqlite_directory_and_file_are_private(tmp_path: Path) -> None:
    path = tmp_path / "state" / "ledger.sqlite3"
    open_ledger(LedgerConfig(url=f"sqlite:///{path}"), migrate_schema=True).close()
    assert path.parent.stat().st_mode & 0o777 == 0o700
    assert path.stat().st_mode & 0o777 == 0o600


def test_0006_counts_earlier_corrupt_downloads_and_sets_due_times(ledger_url: str) -> None:
    """The one-time conversion: corrupt downloads counted from the old wording of the trail,
    each letter due at its retry time (or when it was listed), no archive chosen yet."""
    engine = build_engine(LedgerConfig(url=ledger_url))
    try:
        migrate(engine)
        downgrade(engine, "0005")
        listed, retry = "2026-12-01 08:00:00", "2026-12-01 09:00:00"
        with engine.begin() as conn:
            for fid, next_at in (("a", retry), ("b", None)):
                conn.execute(
                    sa.text(
                        "INSERT INTO forsendelser (account, forsendelse_id, state, file_count,"
                        " attempts, seen_at, updated_at, raw, next_attempt_at) VALUES ('k', :f,"
                        " 'retry_scheduled', 1, 2, :s, :s, '{}', :n)"
                    ),
                    {"f": fid, "s": listed, "n": next_at},
                )
            ids = dict(conn.execute(sa.text("SELECT forsendelse_id, id FROM forsendelser")).all())
            for reason in (
                "ChecksumMismatchError: download_again: ChecksumMismatchError: sha256 differs",
                "ChecksumMismatchError: download_again: ChecksumMismatchError: size differs",
                "ServiceUnavailableError: retry: ServiceUnavailableError: 503",
            ):
                conn.execute(
                    sa.text(
                        "INSERT INTO forsendelse_events (letter_id, at, trigger, from_state,"
                        " to_state, reason) VALUES (:i, :s, 'schedule_retry', 'claimed',"
                        " 'retry_scheduled', :r)"
                    ),
                    {"i": ids["a"], "s": listed, "r": reason},
                )
        migrate(engine)
        assert _diff(engine) == []
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT forsendelse_id, download_attempts, archive, due_at"
                    " FROM forsendelser ORDER BY forsendelse_id"
                )
            ).all()
        got = {r[0]: (r[1], r[2], str(r[3])[:19]) for r in rows}
        assert got == {"a": (2, None, retry), "b": (0, None, listed)}
    finally:
        engine.dispose()


def test_0007_keeps_the_letters_and_lets_them_be_sent(ledger_url: str) -> None:
    """The state ``sent`` and its triggers join the check constraints (on SQLite by editing
    the table's SQL, which changes nothing stored); a downgrade refuses once one was used."""
    engine = build_engine(LedgerConfig(url=ledger_url))
    try:
        migrate(engine)
        downgrade(engine, "0006")
        insert = sa.text(
            "INSERT INTO forsendelser (account, forsendelse_id, state, file_count, attempts,"
            " seen_at, updated_at, raw, due_at) VALUES ('k', :f, :state, 1, 0,"
            " CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, '{}', CURRENT_TIMESTAMP)"
        )
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
            conn.execute(insert, {"f": "early", "state": "sent"})
        with engine.begin() as conn:
            conn.execute(insert, {"f": "kept", "state": "seen"})
        migrate(engine)
        assert _diff(engine) == []
        with engine.begin() as conn:
            conn.execute(insert, {"f": "sent", "state": "sent"})
            rows = conn.execute(sa.text("SELECT forsendelse_id, state FROM forsendelser"))
            states = {r[0]: r[1] for r in rows}
        assert states == {"kept": "seen", "sent": "sent"}
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
            conn.execute(insert, {"f": "lost", "state": "lost"})  # still checked
        with pytest.raises(RuntimeError, match="cannot hold them"):
            downgrade(engine, "0006")
        with engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM forsendelser WHERE state = 'sent'"))
        downgrade(engine, "0006")
        migrate(engine)
        assert _diff(engine) == []
    finally:
        engine.dispose()
