"""Start-up: a command imports only what it needs (timings are in benchmarks/bench_startup.py;
these tests check the imports themselves, which do not depend on the machine's speed)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from svarinn_daemon.cli import build_parser
from svarinn_daemon.cli.commands import COMMANDS, command_in
from svarinn_daemon.config import load_config
from svarinn_daemon.ledger import Sighting, open_ledger
from tests.support.cfg_helpers import make_config_dir

HEAVY = ("sqlalchemy", "alembic", "httpx", "apscheduler", "prometheus_client", "structlog")


def modules_after(argv: list[str]) -> tuple[int, set[str]]:
    """Run the command line in a fresh interpreter; its exit code and every module imported."""
    code = (
        "import contextlib, io, json, sys\n"
        "from svarinn_daemon.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    code = main({argv!r}, environ={{}}, stdout=io.StringIO(), stderr=io.StringIO())\n"
        "print(json.dumps([code, sorted(sys.modules)]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    code, modules = json.loads(done.stdout)
    return code, set(modules)


def imported_after(argv: list[str]) -> set[str]:
    """Run the command line in a fresh interpreter; the heavy modules it imported."""
    return modules_after(argv)[1] & set(HEAVY)


@pytest.mark.parametrize(
    "argv", [["--help"], ["--version"], ["decrypt", "--help"], ["status", "--help"]]
)
def test_help_imports_no_heavy_library(argv: list[str]) -> None:
    assert imported_after(argv) == set()


def test_decrypt_needs_no_database_or_http_library(tmp_path: object) -> None:
    # A missing key file: decrypt gets as far as reading its arguments and logging.
    assert imported_after(["decrypt", "--key", "/nonexistent.pem"]) <= {"structlog"}


@pytest.mark.parametrize(
    "argv",
    [
        ["status"],
        ["list"],
        ["show", "1"],
        ["retry", "1", "--reason", "test"],
        ["migrate"],
        ["alerts", "list"],
    ],
)
def test_ledger_commands_import_neither_keys_nor_logging_nor_migrations(
    tmp_path: Path, argv: list[str]
) -> None:
    """On a ledger at this version's schema: no alembic, no cryptography (the keys are not
    parsed), no structlog (nothing is logged), no PostgreSQL dialect for a SQLite ledger."""
    cfg = make_config_dir(tmp_path)
    ledger = open_ledger(load_config(cfg.path, environ={}).ledger, migrate_schema=True)
    ledger.record_seen_many("kommune", [Sighting("d1c6d795", sender="Ola", title="Søknad")])
    ledger.close()
    code, modules = modules_after(["--config", str(cfg.path), *argv])
    assert code in (0, 1), code  # retry of a new letter: refused, exit 1
    assert "sqlalchemy" in modules
    unwanted = {"alembic", "cryptography", "structlog", "sqlalchemy.dialects.postgresql"}
    assert modules & unwanted == set()


def test_the_summaries_alone_give_the_same_top_level_help() -> None:
    assert build_parser(only="").format_help() == build_parser().format_help()
    names = [name for name, _ in COMMANDS.items()]
    assert names == list(build_parser()._subparsers._group_actions[0].choices)  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("argv", "command"),
    [
        (["status"], "status"),
        (["--config", "status", "list"], "list"),
        (["-c", "run", "show", "1"], "show"),
        (["-crun", "show"], "show"),
        (["--config=run", "decrypt", "--key", "k"], "decrypt"),
        (["--conf", "run", "retry", "1"], "retry"),
        (["--log-level", "debug", "alerts", "test"], "alerts"),
        (["--help"], None),
        (["nonsense", "status"], None),
        ([], None),
    ],
)
def test_the_command_is_found_whatever_comes_before_it(
    argv: list[str], command: str | None
) -> None:
    assert command_in(argv) == command


def test_each_command_parses_its_own_arguments_when_alone() -> None:
    args = build_parser(only="list").parse_args(["--config", "x", "list", "--state", "seen"])
    assert (args.command, args.state, args.config) == ("list", "seen", "x")
    args = build_parser(only="poll-once").parse_args(["poll-once", "-c", "y"])
    assert (args.command, args.config) == ("poll-once", "y")
