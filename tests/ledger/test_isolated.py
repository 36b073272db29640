"""Migrating in a child interpreter (what ``run`` does), against real SQLite and PostgreSQL."""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import sqlalchemy as sa

import svarinn_daemon
from svarinn_daemon.config import LedgerConfig, Secret
from svarinn_daemon.errors import LedgerError, LedgerUnavailableError, SchemaMismatchError
from svarinn_daemon.ledger import build_engine, migrate, open_ledger
from svarinn_daemon.ledger.isolated import interpreter_flags, migrate_isolated
from svarinn_daemon.ledger.models import SCHEMA_REVISION
from svarinn_daemon.ledger.schema import SchemaState
from tests.support.ledger_support import migrate_then_mark
from tests.support.loopback import free_port


def _recording_python(tmp_path: Path, *, exit_code: int | None = None) -> tuple[Path, Path]:
    """An executable standing in for the interpreter: records its argv and standard input,
    then runs the real interpreter (or exits ``exit_code`` with a message on stderr)."""
    record = tmp_path / "record.json"
    program = tmp_path / "python"
    ending = (
        f"sys.stderr.write('the child broke\\n'); sys.exit({exit_code})"
        if exit_code is not None
        # The real child's standard input stays open until it exits, as the daemon keeps it.
        else "import subprocess; real = subprocess.Popen([REAL, *sys.argv[1:]], "
        "stdin=subprocess.PIPE, text=True); real.stdin.write(data); real.stdin.flush(); "
        "sys.exit(real.wait())"
    )
    program.write_text(
        f"#!{sys.executable}\n"
        "import json, sys\n"
        f"REAL = {sys.executable!r}\n"
        "data = sys.stdin.readline()\n"
        f"open({str(record)!r}, 'w').write(json.dumps({{'argv': sys.argv, 'stdin': data}}))\n"
        f"{ending}\n"
    )
    program.chmod(program.stat().st_mode | stat.S_IXUSR)
    return program, record


def test_a_fresh_ledger_is_migrated_by_a_child(ledger_url: str, tmp_path: Path) -> None:
    python, record = _recording_python(tmp_path)
    secret = Secret(source="env:LEDGER_PW", _value=b"hunter2-very-secret")
    config = LedgerConfig(url=ledger_url, password=secret)
    assert migrate_isolated(config, python=str(python)) == SchemaState(None, SCHEMA_REVISION)
    seen = json.loads(record.read_text())
    assert seen["argv"][1] == "-P"  # not the current directory's svarinn_daemon
    assert seen["argv"][-1] == str(Path(svarinn_daemon.__file__).resolve().parent.parent)
    assert "hunter2" not in " ".join(seen["argv"])  # the password travels on stdin only
    assert json.loads(seen["stdin"])["password"] == "hunter2-very-secret"
    open_ledger(LedgerConfig(url=ledger_url)).close()  # at head, without migrate_schema


def test_a_ledger_at_head_starts_no_child(ledger_url: str, tmp_path: Path) -> None:
    engine = build_engine(LedgerConfig(url=ledger_url))
    migrate(engine)
    engine.dispose()
    state = migrate_isolated(LedgerConfig(url=ledger_url), python=str(tmp_path / "no-python"))
    assert state == SchemaState(SCHEMA_REVISION, SCHEMA_REVISION)


def test_the_childs_typed_errors_are_raised_again(ledger_url: str) -> None:
    engine = build_engine(LedgerConfig(url=ledger_url))
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE invoices (id INTEGER PRIMARY KEY)"))
    engine.dispose()
    with pytest.raises(SchemaMismatchError, match=r"invoices.*no svarinn-daemon schema"):
        migrate_isolated(LedgerConfig(url=ledger_url))
    engine = build_engine(LedgerConfig(url=ledger_url))
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE invoices"))
    engine.dispose()
    migrate_then_mark(ledger_url, "9999_future")
    with pytest.raises(SchemaMismatchError, match=r"9999_future.*does not know"):
        migrate_isolated(LedgerConfig(url=ledger_url))


def test_an_unreachable_database_fails_before_any_child(tmp_path: Path) -> None:
    url = f"postgresql+psycopg://svarinn@127.0.0.1:{free_port()}/ledger"
    with pytest.raises(LedgerUnavailableError, match=r"127\.0\.0\.1"):
        migrate_isolated(LedgerConfig(url=url), python=str(tmp_path / "no-python"))


def test_a_child_that_dies_is_a_ledger_error_with_its_stderr(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    python, _ = _recording_python(tmp_path, exit_code=3)
    with pytest.raises(LedgerError, match=r"exited 3 without an answer: the child broke"):
        migrate_isolated(LedgerConfig(url=url), python=str(python))
    with pytest.raises(LedgerError, match="cannot start the migration process"):
        migrate_isolated(LedgerConfig(url=url), python=str(tmp_path / "no-python"))


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ({}, []),
        ({"isolated": 1, "ignore_environment": 1, "no_user_site": 1}, ["-I"]),
        ({"ignore_environment": 1, "no_user_site": 1}, ["-E", "-s"]),
        ({"no_site": 1}, ["-S"]),
        ({"optimize": 2}, ["-OO"]),
    ],
)
def test_the_child_finds_modules_as_the_parent_does(
    flags: dict[str, int], expected: list[str]
) -> None:
    names = ("isolated", "ignore_environment", "no_user_site", "no_site", "optimize")
    assert interpreter_flags(SimpleNamespace(**{n: flags.get(n, 0) for n in names})) == expected


def test_the_child_runs_the_parents_code_whatever_the_directory_and_warnings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A svarinn_daemon in the directory the daemon starts in is never run, and warnings
    turned into errors (PYTHONWARNINGS=error, inherited) do not stop the child."""
    impostor = tmp_path / "svarinn_daemon" / "ledger"
    impostor.mkdir(parents=True)
    for package in (impostor.parent, impostor):
        (package / "__init__.py").write_text("raise SystemExit('impostor')\n")
    (impostor / "isolated.py").write_text("raise SystemExit('impostor')\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PYTHONWARNINGS", "error")
    url = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    assert migrate_isolated(LedgerConfig(url=url)) == SchemaState(None, SCHEMA_REVISION)


def test_the_child_puts_no_module_beside_the_package_before_the_standard_library(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue #24, item 16: the package root went first on the child's sys.path, so a
    ``json.py`` beside the package shadowed the standard library's; and the child inherited
    the daemon's whole environment."""
    import subprocess
    import sys

    from svarinn_daemon.ledger.isolated import _CHILD

    root = tmp_path / "site"
    root.mkdir()
    (root / "svarinn_daemon").symlink_to(Path(svarinn_daemon.__file__).resolve().parent)
    (root / "json.py").write_text("raise SystemExit('the json.py beside the package ran')\n")
    request = json.dumps(
        {"url": f"sqlite:///{tmp_path / 'ledger.sqlite3'}", "password": None, "busy_timeout": 5}
    )
    from svarinn_daemon.ledger.isolated import _run_child

    code, stdout, stderr = _run_child(
        [sys.executable, "-P", "-c", _CHILD, str(root)], request + "\n"
    )
    assert code == 0, stderr
    answer = json.loads(stdout.splitlines()[-1])
    assert (answer["current"], answer["head"]) == (None, SCHEMA_REVISION)  # migrated
    monkeypatch.setenv("SVARINN_PASSWORD", "hunter2")
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:secret@db/x")
    from svarinn_daemon.ledger import isolated

    seen: dict[str, object] = {}
    real = subprocess.Popen

    def spy(*args: object, **kwargs: object) -> object:
        seen.update(kwargs)
        return real(*args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(isolated.subprocess, "Popen", spy)
    isolated.migrate_isolated(LedgerConfig(url=f"sqlite:///{tmp_path / 'second.sqlite3'}"))
    env = seen["env"]
    assert isinstance(env, dict)
    assert "SVARINN_PASSWORD" not in env
    assert "DATABASE_URL" not in env
    assert "PATH" in env
