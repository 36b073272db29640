"""Faults on our own side, for real: the ledger's database stopped and started, a SQLite file
locked by another connection, a full filesystem under the spool and under the archive, an
adapter that raises what no adapter may raise, a ledger verb that fails inside a worker.

Every test runs the daemon through its CLI against the simulator over loopback and ends with
the same check: every letter archived once and acknowledged once, none reported to SvarUt.
"""

from __future__ import annotations

import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from svarinn_daemon.config import load_config
from svarinn_daemon.ledger import State, open_ledger
from svarinn_daemon.simulator import Fault
from svarinn_daemon.simulator.letters import SimLetter
from tests.support.daemon_harness import Harness, harness
from tests.support.fault_support import fill, log_events, plugin_env, small_tmpfs, wait_for, when
from tests.support.loopback import free_port
from tests.support.pg_server import throwaway_server

POLL_INTERVAL = 1.0
BOTH_APIS = pytest.mark.parametrize("api", ["v1", "v2"])
ARCHIVE_OUTAGE = 20.0  # long enough for the probe delay to double to its cap and stay there
_CLI = (sys.executable, "-m", "svarinn_daemon", "--config")


def _config(*, daemon: str = "", retry: str = "", alerts: str = "", metrics: str = "") -> str:
    return f"""
[daemon]
worker_id = "test-worker"
concurrency = 3
lease = "30s"
shutdown_grace = "5s"
poll_interval = "{POLL_INTERVAL:g}s"
poll_jitter = "0s"
{daemon}

[retry]
base_delay = "200ms"
max_delay = "1s"
{retry}

[alerts]
{alerts}

[metrics]
{metrics}
"""


def _edit(h: Harness, pattern: str, replacement: str) -> None:
    text = h.config_path.read_text()
    new, count = re.subn(pattern, replacement, text, count=1, flags=re.MULTILINE)
    assert count == 1, pattern
    h.config_path.write_text(new)


@contextmanager
def _running(h: Harness, log: Path) -> Iterator[None]:
    process = h.spawn("run", output=log)
    try:
        yield
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0, log.read_text()[-3000:]


def _all_acknowledged(h: Harness, letters: list[SimLetter]) -> bool:
    return set(h.sim.state().acknowledged) >= {x.id for x in letters}


def _assert_imported_once(h: Harness, letters: list[SimLetter]) -> None:
    state = h.sim.state()
    assert dict(state.acknowledged) == {x.id: 1 for x in letters}
    assert state.reports == (), "a letter was reported to SvarUt"
    assert h.archived_ids() == {x.id for x in letters}


def _events(log: Path, name: str) -> list[dict[str, object]]:
    return [e for e in log_events(log) if e["event"] == name]


# --- the ledger goes away ---------------------------------------------------------------


@BOTH_APIS
def test_postgresql_stopped_twice_mid_run(tmp_path: Path, api: str) -> None:
    """pg_ctl stop/start twice while letters are in flight: nothing lost, nothing twice, no
    report to SvarUt, one log line per change, and polling again within an interval."""
    server = throwaway_server()
    port = free_port()
    try:
        url = server.create_database()
        extra = _config(metrics=f'listen = "127.0.0.1:{port}"')
        with harness(tmp_path, api=api, ledger_url=url, extra_config=extra) as h:
            letters = h.sim.generate(12, 200_000)
            h.sim.add_fault(Fault("slow", endpoints=frozenset({"download"}), delay=1.0))
            log = tmp_path / "daemon.log"
            restarted: list[datetime] = []
            with _running(h, log):
                wait_for(lambda: bool(_events(log, "forsendelse.archived")), 60, "an import")
                for _ in range(2):
                    server.halt()
                    time.sleep(2)
                    assert "svarinn_ledger_up 0.0" in _scrape(port)
                    assert _probe(port, "/readyz") == 503
                    time.sleep(2)
                    server.resume()
                    restarted.append(datetime.now(UTC))
                    time.sleep(2)
                wait_for(lambda: _all_acknowledged(h, letters), 90, "every receipt")
                assert "svarinn_ledger_up 1.0" in _scrape(port)
            _assert_imported_once(h, letters)
            unavailable = _events(log, "ledger.unavailable")
            recovered = _events(log, "ledger.recovered")
            assert len(unavailable) == len(recovered) == 2, (unavailable, recovered)
            polls = [when(e) for e in _events(log, "poll.finished")]
            for at in restarted:
                first = min(p for p in polls if p > at)
                delay = (first - at).total_seconds()
                print(f"postgresql back -> first successful poll: {delay:.2f} s")
                assert delay <= POLL_INTERVAL + 2.0
            engine = sa.create_engine(url)
            with engine.connect() as conn:
                states = conn.execute(sa.text("SELECT DISTINCT state FROM forsendelser")).all()
            engine.dispose()
            assert states == [("acknowledged",)]
    finally:
        server.stop()


@BOTH_APIS
def test_sqlite_locked_past_the_busy_timeout(tmp_path: Path, api: str) -> None:
    """Another connection holds the SQLite write lock for seconds: the daemon waits it out."""
    with harness(tmp_path, api=api, extra_config=_config()) as h:
        _edit(h, r"^\[ledger\]\n", '[ledger]\nbusy_timeout = "200ms"\n')
        letters = h.sim.generate(9, 100_000)
        h.sim.add_fault(Fault("slow", endpoints=frozenset({"download"}), delay=0.5))
        database = load_config(h.config_path, environ={}).ledger.url.split("///", 1)[1]
        log = tmp_path / "daemon.log"
        with _running(h, log):
            wait_for(lambda: bool(_events(log, "forsendelse.archived")), 60, "an import")
            locker = sqlite3.connect(database, isolation_level=None, timeout=10)
            locker.execute("BEGIN IMMEDIATE")
            time.sleep(3)
            locker.execute("COMMIT")
            locker.close()
            wait_for(lambda: _all_acknowledged(h, letters), 60, "every receipt")
        _assert_imported_once(h, letters)
        assert len(_events(log, "ledger.unavailable")) == 1
        assert len(_events(log, "ledger.recovered")) == 1


# --- our disks and the archive's ----------------------------------------------------------


@BOTH_APIS
def test_a_full_spool_disk_is_a_storage_error_not_the_archives(tmp_path: Path, api: str) -> None:
    with harness(tmp_path, api=api, extra_config=_config()) as h, small_tmpfs(h.spool, "4m"):
        letters = h.sim.generate(4, 500_000)
        filler = fill(h.spool, leave=16 * 1024)
        code, lines = h.poll_once()
        assert code == 1
        fired = [x for x in lines if x["event"] == "alert.firing"]
        assert [x["condition"] for x in fired] == ["storage_failing"]
        ledger = open_ledger(load_config(h.config_path, environ={}).ledger)
        rows = ledger.list()
        assert {r.last_error_kind for r in rows} == {"StorageError"}
        for row in rows:
            assert row.state is State.RETRY_SCHEDULED
            message = row.last_error_message or ""
            assert "No space left on device (ENOSPC)" in message
            assert "archive" not in message.lower().replace("archive_", "")
        filler.unlink()
        assert h.until_done(rounds=10) == 0
        ledger.close()
        _assert_imported_once(h, letters)


@BOTH_APIS
def test_an_archive_disk_full_for_a_while_pauses_imports_and_reports_nothing(
    tmp_path: Path, api: str
) -> None:
    """The archive's disk full for a while. The circuit breaker: after three temporary
    failures the archive gets only probes; SvarUt hears nothing (temporary_report_after is
    at its default of 1h)."""
    port = free_port()
    extra = _config(
        retry='archive_pause_after = 3\narchive_probe_delay = "500ms"\n'
        'archive_probe_max_delay = "5s"',
        alerts='archive_unavailable_after = "0s"',
        metrics=f'listen = "127.0.0.1:{port}"',
    )
    with harness(tmp_path, api=api, extra_config=extra) as h, small_tmpfs(h.archive, "4m"):
        letters = h.sim.generate(10, 300_000)
        filler = fill(h.archive, leave=16 * 1024)
        log = tmp_path / "daemon.log"
        with _running(h, log):
            wait_for(lambda: bool(_events(log, "archive.unavailable")), 60, "the breaker")
            assert 'svarinn_archive_available{archive="default"} 0.0' in _scrape(port)
            time.sleep(ARCHIVE_OUTAGE)  # the archive stays full: only probes reach it
            filler.unlink()
            wait_for(lambda: _all_acknowledged(h, letters), 60, "every receipt")
            assert 'svarinn_archive_available{archive="default"} 1.0' in _scrape(port)
        _assert_imported_once(h, letters)
        ledger = open_ledger(load_config(h.config_path, environ={}).ledger)
        failures = sum(
            1
            for row in ledger.list()
            for event in ledger.events(row.id)
            if "ArchiveError" in (event.reason or "")
        )
        ledger.close()
        # 3 to open, one per probe (0.5 s doubling to 5 s), and the letters in flight when it
        # opened.
        print(f"archive failures while full for {ARCHIVE_OUTAGE:g} s: {failures}")
        assert failures <= 3 + _probes(0.5, 5.0, within=ARCHIVE_OUTAGE + 5) + 3
        assert _events(log, "archive.available")
        assert any(
            e.get("condition") == "archive_unavailable" for e in _events(log, "alert.firing")
        )


def _probes(delay: float, cap: float, *, within: float) -> int:
    """How many probes an open breaker sends in ``within`` seconds, the first after ``delay``
    and each next delay doubled up to ``cap``: 0.5 s to 5 s sends 7 in 25 s."""
    count, elapsed = 0, delay
    while elapsed <= within:
        count += 1
        delay = min(delay * 2, cap)
        elapsed += delay
    return count


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        return str(response.read().decode())


# --- bugs: in an adapter, in a ledger verb ---------------------------------------------------


def _troubled(h: Harness, **switches: Path) -> None:
    options = "".join(f'{k} = "{v}"\n' for k, v in switches.items())
    _edit(h, r'^adapter = "filesystem"\n', f'adapter = "troubled"\n{options}')


@BOTH_APIS
def test_an_adapter_raising_an_unexpected_type_is_an_internal_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, api: str
) -> None:
    monkeypatch.setenv("PYTHONPATH", plugin_env()["PYTHONPATH"])
    switch = tmp_path / "adapter-broken"
    switch.touch()
    with harness(tmp_path, api=api, extra_config=_config()) as h:
        _troubled(h, raise_while=switch)
        letters = h.sim.generate(3, 50_000)
        result = h.cli("--log-format", "json", "poll-once")
        assert result.returncode == 1, result.stderr
        internal = [x for x in result.stdout.splitlines() if "forsendelse.internal_error" in x]
        assert len(internal) == 3
        assert all("Traceback" in x for x in internal)
        ledger = open_ledger(load_config(h.config_path, environ={}).ledger)
        for row in ledger.list():
            assert (row.state, row.last_error_kind) == (State.RETRY_SCHEDULED, "InternalError")
            assert "RuntimeError" in (row.last_error_message or "")
        ledger.close()
        switch.unlink()
        for _ in range(5):
            if h.cli("poll-once").returncode == 0:
                break
        _assert_imported_once(h, letters)


@BOTH_APIS
def test_a_ledger_verb_failing_inside_a_worker_loses_nothing(
    tmp_path: Path, postgres_url: str, api: str
) -> None:
    """The database refuses one state change (a constraint added behind the daemon's back):
    the letter is archived, the ledger cannot say so, it is retried loudly and never sent to
    paper; once the constraint is gone it is recorded as archived and acknowledged once."""
    with harness(tmp_path, api=api, ledger_url=postgres_url, extra_config=_config()) as h:
        assert h.cli("migrate").returncode == 0
        engine = sa.create_engine(postgres_url)
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "ALTER TABLE forsendelser ADD CONSTRAINT test_no_archive "
                    "CHECK (state <> 'archived')"
                )
            )
        letters = h.sim.generate(2, 50_000)
        for _ in range(2):
            assert h.poll_once()[0] == 1
        assert h.archived_ids() == {x.id for x in letters}  # the archive has them already
        ledger = open_ledger(load_config(h.config_path, environ={}).ledger)
        rows = ledger.list()
        assert {(r.state, r.last_error_kind) for r in rows} == {
            (State.RETRY_SCHEDULED, "LedgerError")
        }
        with engine.begin() as conn:
            conn.execute(sa.text("ALTER TABLE forsendelser DROP CONSTRAINT test_no_archive"))
        engine.dispose()
        assert h.until_done() == 0
        _assert_imported_once(h, letters)
        assert {r.state for r in ledger.list()} == {State.ACKNOWLEDGED}
        ledger.close()


# --- a wedged worker ----------------------------------------------------------------------


class _NotifySocket:
    """systemd's side of the notify protocol: every datagram, with when it arrived."""

    def __init__(self, path: Path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.1)
        self.messages: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            self.messages.append((time.monotonic(), data.decode()))

    def watchdogs(self, since: float = 0.0) -> int:
        return sum(1 for at, m in list(self.messages) if at >= since and "WATCHDOG=1" in m)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


def _probe(port: int, path: str) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


@BOTH_APIS
def test_a_wedged_worker_lets_the_watchdog_lapse_and_healthz_fail(tmp_path: Path, api: str) -> None:
    port = free_port()
    wedge = tmp_path / "archive-wedged"
    wedge.touch()
    notify = _NotifySocket(tmp_path / "notify.sock")
    extra = _config(daemon='stall_timeout = "2s"', metrics=f'listen = "127.0.0.1:{port}"')
    try:
        with harness(tmp_path, api=api, extra_config=extra) as h:
            _troubled(h, wedge_while=wedge)
            (letter,) = h.sim.generate(1, 10_000)
            env = {**plugin_env(), "NOTIFY_SOCKET": str(notify.path), "WATCHDOG_USEC": "400000"}
            log = tmp_path / "daemon.log"
            with open(log, "a") as sink:
                process = subprocess.Popen(
                    [*_CLI, str(h.config_path), "--log-format", "json", "run"],
                    stdout=sink,
                    stderr=sink,
                    env=env,
                )
            try:
                wait_for(lambda: notify.watchdogs() > 0, 30, "the first WATCHDOG=1")
                wait_for(lambda: _probe(port, "/healthz") == 503, 30, "/healthz to fail")
                lapsed = time.monotonic()
                time.sleep(1.5)
                assert notify.watchdogs(since=lapsed) == 0, "the watchdog was fed while wedged"
                assert any("stalled" in m for at, m in notify.messages if at >= lapsed)
                wedge.unlink()  # the archive call returns: progress again
                wait_for(lambda: h.sim.state().acknowledged == {letter.id: 1}, 30, "the receipt")
                wait_for(lambda: _probe(port, "/healthz") == 200, 30, "/healthz to pass again")
                wait_for(lambda: notify.watchdogs(since=time.monotonic() - 0.1) > 0, 10, "feed")
            finally:
                process.send_signal(signal.SIGTERM)
                assert process.wait(timeout=60) == 0, log.read_text()[-3000:]
    finally:
        notify.close()


@BOTH_APIS
def test_poll_once_gives_up_a_wedged_letter_and_exits(tmp_path: Path, api: str) -> None:
    wedge = tmp_path / "archive-wedged"
    wedge.touch()
    extra = _config(daemon='stall_timeout = "2s"\nshutdown_grace = "1s"').replace(
        'shutdown_grace = "5s"\n', ""
    )
    with harness(tmp_path, api=api, extra_config=extra) as h:
        _troubled(h, wedge_while=wedge)
        (letter,) = h.sim.generate(1, 10_000)
        started = time.monotonic()
        result = subprocess.run(
            [*_CLI, str(h.config_path), "--log-format", "json", "poll-once"],
            capture_output=True,
            text=True,
            timeout=120,
            env=plugin_env(),
            check=False,
        )
        took = time.monotonic() - started
        print(f"poll-once with a wedged letter exited after {took:.1f} s")
        assert result.returncode == 1, result.stderr
        assert '"event": "daemon.wedged"' in result.stdout
        assert h.archived_ids() == set()
        wedge.unlink()
        done = subprocess.run(
            [*_CLI, str(h.config_path), "poll-once"],
            capture_output=True,
            text=True,
            timeout=120,
            env=plugin_env(),
            check=False,
        )
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        _assert_imported_once(h, [letter])
