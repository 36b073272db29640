"""`run` as a real process: metrics over HTTP through every outcome, health and readiness."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from svarinn_daemon.simulator.faults import Fault
from tests.support.daemon_harness import FAST, Harness, harness
from tests.support.loopback import free_port


def _config(port: int) -> str:
    return FAST + f'\n[metrics]\nlisten = "127.0.0.1:{port}"\nready_poll_age = "2s"\n'


def _value(body: str, name: str, **labels: str) -> float:
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    pattern = re.escape(name) + (r"\{" + re.escape(wanted) + r"\}" if labels else "") + r" (\S+)$"
    match = re.search("(?m)^" + pattern, body)
    return float(match.group(1)) if match else 0.0


def _until(check: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError("condition not reached in time")


def _get(url: str) -> httpx.Response | None:
    try:
        return httpx.get(url, timeout=2)
    except httpx.HTTPError:
        return None


def _run(h: Harness, port: int) -> tuple[object, str]:
    proc = h.spawn("run")
    base = f"http://127.0.0.1:{port}"
    _until(lambda: (r := _get(base + "/healthz")) is not None and r.status_code == 200)
    return proc, base


def _stop(proc: object) -> str:
    """Stop ``run`` and return its log."""
    import subprocess

    assert isinstance(proc, subprocess.Popen)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err[-2000:]
    assert '"event": "daemon.stopped"' in out
    return str(out)


def test_run_migrates_a_fresh_ledger_in_a_child_process_once(tmp_path: Path) -> None:
    """alembic stays out of the long-running process: the child migrates, ``run`` logs it."""
    port = free_port()
    with harness(tmp_path, extra_config=_config(port)) as h:
        logs = []
        for _ in range(2):
            proc, base = _run(h, port)
            ready = base + "/readyz"
            _until(lambda u=ready: (r := _get(u)) is not None and r.status_code == 200)
            logs.append([json.loads(line) for line in _stop(proc).splitlines() if line[:1] == "{"])
        (migrated,) = [line for line in logs[0] if line["event"] == "ledger.migrated"]
        assert (migrated["from"], migrated["process"]) == (None, "child")
        assert not [line for line in logs[1] if line["event"] == "ledger.migrated"]


def test_metrics_follow_every_outcome_and_readiness_follows_polls(tmp_path: Path) -> None:
    port = free_port()
    with harness(tmp_path, extra_config=_config(port)) as h:
        good = h.sim.generate(2, 20_000)
        flaky, bad = h.sim.generate(2, 20_000)
        h.sim.add_fault(Fault("http_503", ids=frozenset({flaky.id}), times=1))
        h.sim.add_fault(Fault("corrupt", ids=frozenset({bad.id})))
        proc, base = _run(h, port)
        try:
            metrics = lambda: httpx.get(base + "/metrics").text  # noqa: E731
            _until(
                lambda: (
                    _value(
                        metrics(), "svarinn_letters_total", account="simulator", outcome="reported"
                    )
                    == 1
                )
            )
            _until(
                lambda: (
                    _value(
                        metrics(),
                        "svarinn_letters_total",
                        account="simulator",
                        outcome="acknowledged",
                    )
                    == 3
                )
            )
            body = metrics()
            labels = {"account": "simulator"}
            assert _value(body, "svarinn_letters_total", **labels, outcome="retry_scheduled") >= 3
            assert (
                _value(body, "svarinn_letters_total", **labels, outcome="failed_permanently") == 1
            )
            assert (
                _value(body, "svarinn_receipts_total", **labels, kind="kvitterMottak", outcome="ok")
                == 3
            )
            assert (
                _value(body, "svarinn_receipts_total", **labels, kind="mottakFeilet", outcome="ok")
                >= 1
            )
            assert _value(body, "svarinn_polls_total", **labels, outcome="ok") >= 1
            assert _value(body, "svarinn_downloaded_bytes_total", **labels) > 60_000
            assert (
                _value(
                    body,
                    "svarinn_retries_scheduled_total",
                    **labels,
                    kind="ServiceUnavailableError",
                )
                == 1
            )
            assert (
                _value(body, "svarinn_stage_duration_seconds_count", **labels, stage="download")
                >= 4
            )
            assert _value(body, "svarinn_ledger_letters", **labels, state="acknowledged") == 3
            assert _value(body, "svarinn_ledger_letters", **labels, state="reported") == 1
            assert _value(body, "svarinn_last_successful_poll_timestamp_seconds", **labels) > 0
            assert _value(body, "svarinn_ledger_up") == 1
            assert httpx.get(base + "/readyz").status_code == 200
            assert {x.id for x in good} <= h.archived_ids()

            h.sim.add_fault(Fault("unauthorized"))
            _until(
                lambda: (
                    _value(metrics(), "svarinn_polls_total", **labels, outcome="auth_failed") >= 1
                )
            )
            _until(lambda: httpx.get(base + "/readyz").status_code == 503)
            assert "no successful poll" in httpx.get(base + "/readyz").text
            h.sim.clear_faults()
            _until(lambda: httpx.get(base + "/readyz").status_code == 200)
        finally:
            _stop(proc)


@pytest.mark.postgres
def test_readiness_turns_false_when_the_ledger_is_unreachable(
    tmp_path: Path, postgres_url: str
) -> None:
    import psycopg

    port = free_port()
    database = postgres_url.rsplit("/", 1)[1]
    admin_port = int(postgres_url.split(":")[-1].split("/")[0])

    def admin(sql: str) -> None:
        with psycopg.connect(
            host="127.0.0.1", port=admin_port, user="postgres", dbname="postgres", autocommit=True
        ) as conn:
            conn.execute(sql)

    with harness(tmp_path, extra_config=_config(port), ledger_url=postgres_url) as h:
        h.sim.generate(1, 10_000)
        proc, base = _run(h, port)
        try:
            _until(lambda: httpx.get(base + "/readyz").status_code == 200)
            admin(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
            admin(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "  # noqa: S608
                f"WHERE datname = '{database}'"
            )
            _until(lambda: httpx.get(base + "/readyz").status_code == 503)
            assert "unavailable" in httpx.get(base + "/readyz").json()["ledger"]
            assert _value(httpx.get(base + "/metrics").text, "svarinn_ledger_up") == 0
            assert httpx.get(base + "/healthz").status_code == 200
            admin(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')
            _until(lambda: httpx.get(base + "/readyz").status_code == 200)
        finally:
            admin(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')
            _stop(proc)


def test_a_daemon_stopped_while_migrating_leaves_no_child_and_no_half_migration(
    tmp_path: Path,
) -> None:
    """The ledger's write lock is held, so the migration child waits for it; SIGTERM to
    `run` (as `systemctl stop` while it starts) ends it, and the child, which sees its
    standard input end, stops too instead of migrating on alone: the ledger stays empty."""
    import sqlite3

    port = free_port()
    with harness(tmp_path, extra_config=_config(port)) as h:
        h.config_path.write_text(
            h.config_path.read_text().replace("[ledger]\n", '[ledger]\nbusy_timeout = "60s"\n', 1)
        )
        database = h.root / "state" / "ledger.sqlite3"
        database.parent.mkdir(parents=True, exist_ok=True)
        holder = sqlite3.connect(database, isolation_level=None)
        holder.execute("PRAGMA journal_mode=WAL")
        holder.execute("BEGIN IMMEDIATE")  # readers go on (WAL), writers wait
        try:
            proc, base = _run(h, port)
            readiness = _get(base + "/readyz")
            assert readiness is not None
            assert readiness.json()["phase"] == "starting"
            _until(lambda: _children(proc.pid) != [])  # type: ignore[attr-defined]
            (child,) = _children(proc.pid)  # type: ignore[attr-defined]
            time.sleep(0.5)  # it has read its settings and waits for the lock
            assert _alive(child)
            proc.send_signal(signal.SIGTERM)  # type: ignore[attr-defined]
            proc.communicate(timeout=10)  # type: ignore[attr-defined]
            _until(lambda: not _alive(child), timeout=10)
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        with sqlite3.connect(database) as check:
            tables = {r[0] for r in check.execute("SELECT name FROM sqlite_master")}
        assert "forsendelser" not in tables
        assert "alembic_version" not in tables


def _children(parent: int) -> list[int]:
    """The process ids of ``parent``'s children (pgrep -P)."""
    found = subprocess.run(
        ["pgrep", "-P", str(parent)], capture_output=True, text=True, check=False
    )
    return [int(pid) for pid in found.stdout.split()]


def _alive(pid: int) -> bool:
    """Running, not a zombie (an orphan is reaped by whatever init the machine has)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"
