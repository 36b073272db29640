"""Shared fixtures: conformance data, a throwaway PostgreSQL server, deployment checkers."""
# ../shared/ (conformance data and KS's docs) exists beside the repository only in this
# project's CI and development machines: on any other clone the tests that read it skip with a
# reason naming the path, and CI=true turns those skips into failures.

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from svarinn_daemon.config import LedgerConfig
from svarinn_daemon.ledger import Ledger, open_ledger
from svarinn_daemon.testing import FakeClock
from tests.support import deploy_tools, image_tools
from tests.support.pg_server import PostgresServer, throwaway_server
from tests.support.rabbitmq import HOW_TO_ENABLE as RABBITMQ_HOW_TO
from tests.support.rabbitmq import find_server

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
CONFORMANCE = SHARED / "conformance" / "ks-svarut-sak-mottak"
DOCS = SHARED / "docs"
SHARED_MISSING = "not found at {path} (../shared beside the repository"

# What this process's session fixtures did, for the terminal summary; under pytest-xdist
# (`make test` runs two workers) each worker sends its own to the controller at its end.
_server_stats: list[dict[str, object]] = []


def need_shared(path: Path, what: str) -> Path:
    """``path`` under ../shared; skip when it is missing (fail under CI=true)."""
    if path.exists():
        return path
    reason = (
        f"{what} {SHARED_MISSING.format(path=path)}; only this project's CI and workspaces have it)"
    )
    if os.environ.get("CI") == "true":
        pytest.fail(reason + " -- and CI=true forbids skipping")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def conformance_dir() -> Path:
    return need_shared(CONFORMANCE, "conformance data")


@pytest.fixture(scope="session")
def shared_docs() -> Path:
    return need_shared(DOCS, "KS's API docs")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    server = throwaway_server()
    stats: dict[str, object] = {"bindir": str(server.bindir), "port": server.port}
    _server_stats.append(stats)
    try:
        yield server
    finally:
        stats["databases"] = server.databases_created
        server.stop()


@pytest.fixture(scope="session")
def fiksio() -> Iterator[Any]:
    """A local Fiks IO with a real RabbitMQ broker, for the whole session: each test adds
    accounts and integrations of its own (fresh UUIDs), so tests never see each other's
    messages. Skipped (failed under CI=true) without RabbitMQ."""
    if find_server() is None:
        if os.environ.get("CI") == "true":
            pytest.fail(RABBITMQ_HOW_TO + " -- and CI=true forbids skipping them")
        pytest.skip(RABBITMQ_HOW_TO)
    from tests.support.fakes.fiksio import LocalFiksIo

    local = LocalFiksIo().start()
    try:
        yield local
    finally:
        local.stop()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """A fresh, empty PostgreSQL database for one test."""
    return postgres_server.create_database()


def _tool(find: Callable[[], Path]) -> Path:
    """A checker from deploy_tools; skipped when missing, except that CI=true fails."""
    try:
        return find()
    except deploy_tools.ToolUnavailable as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{exc} -- and CI=true forbids skipping")
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def promtool() -> Path:
    return _tool(deploy_tools.promtool)


@pytest.fixture(scope="session")
def hadolint() -> Path:
    return _tool(deploy_tools.hadolint)


@pytest.fixture(scope="session")
def systemd_analyze() -> Path:
    return _tool(deploy_tools.systemd_analyze)


@pytest.fixture(scope="session")
def podman() -> Path:
    """podman and mmdebstrap as root, for building and running the container image."""
    return _tool(image_tools.check_tools)


def pytest_sessionfinish(session: pytest.Session) -> None:
    output = getattr(session.config, "workeroutput", None)  # set on an xdist worker only
    if output is not None:
        output["svarinn_stats"] = {"servers": _server_stats, "image": image_tools.STATS}


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    """On the xdist controller: a worker's stats join this process's."""
    stats = getattr(node, "workeroutput", {}).get("svarinn_stats")
    if stats:
        _server_stats.extend(stats["servers"])
        image_tools.STATS.update(stats["image"])


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    skipped = terminalreporter.stats.get("skipped", [])
    missing = [r for r in skipped if str(SHARED) in str(getattr(r, "longrepr", ""))]
    if missing:
        terminalreporter.write_line(
            f"../shared: {len(missing)} test(s) skipped because {SHARED} is missing "
            "(conformance data and KS's docs; CI=true makes them fail)"
        )
    for server in _server_stats:
        terminalreporter.write_line(
            f"PostgreSQL: throwaway server from {server['bindir']} on 127.0.0.1:"
            f"{server['port']}, {server.get('databases', 0)} test database(s) used"
        )
    if not _server_stats:
        terminalreporter.write_line("PostgreSQL: no test used the throwaway server")
    stats = image_tools.STATS
    if "build_seconds" in stats:
        steps = ", ".join(f"{k} {v:.0f} s" for k, v in stats["timings"].items())  # type: ignore[attr-defined]
        terminalreporter.write_line(
            f"container image: built in {stats['build_seconds']:.0f} s ({steps}), "
            f"{int(stats['size']) / 1e6:.0f} MB (podman's size)"  # type: ignore[call-overload]
        )
    if "demo" in stats:
        terminalreporter.write_line(f"container image: demo said {stats['demo']}")


# --- the ledger ---------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty ledger database: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state' / 'ledger.sqlite3'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def ledger(ledger_url: str, clock: FakeClock) -> Iterator[Ledger]:
    """A migrated ledger on each backend, with a clock the test moves by hand."""
    opened = open_ledger(
        LedgerConfig(url=ledger_url),
        migrate_schema=True,
        clock=clock,
        busy_timeout=timedelta(milliseconds=300),
        connect_timeout=timedelta(seconds=2),
    )
    try:
        yield opened
    finally:
        opened.close()
