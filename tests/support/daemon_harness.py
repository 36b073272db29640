"""End-to-end harness: a simulator on loopback, a config written for it, the daemon's CLI.

The daemon runs through its real entry point, either in this process (``poll_once``) or as
a child process (``spawn``), against real HTTP, a real SQLite or PostgreSQL ledger and a
real filesystem archive.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from svarinn_daemon.cli import main
from svarinn_daemon.simulator import Simulator
from svarinn_daemon.simulator.identity import generate_identity, write_operator_files
from svarinn_daemon.simulator.tls import make_server_tls

# A daemon spawned with `run` for a restore or failover: quick polls and retries.
RUN_CONFIG = """
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

# Fast retries so that a test can go through several attempts in well under a second.
FAST = """
[daemon]
worker_id = "test-worker"
concurrency = 3
lease = "30s"
shutdown_grace = "5s"
poll_interval = "1s"
poll_jitter = "0s"

[retry]
base_delay = "1ms"
max_delay = "2ms"
"""


@dataclass
class Harness:
    sim: Simulator
    root: Path
    config_path: Path

    @property
    def archive(self) -> Path:
        return self.root / "archive"

    def archived_ids(self) -> set[str]:
        return {p.name for p in self.archive.iterdir() if not p.name.startswith(".")}

    def poll_once(self, *extra: str) -> tuple[int, list[dict[str, object]]]:
        """Run ``poll-once`` in this process; returns the exit code and the JSON log lines."""
        out, err = io.StringIO(), io.StringIO()
        code = main(
            ["--config", str(self.config_path), "--log-format", "json", *extra, "poll-once"],
            environ={},
            stdout=out,
            stderr=err,
        )
        lines = [json.loads(line) for line in out.getvalue().splitlines() if line.startswith("{")]
        return code, lines

    def until_done(self, rounds: int = 10) -> int:
        """poll-once until it reports everything finished (retries need more rounds)."""
        code = 1
        for _ in range(rounds):
            code, _ = self.poll_once()
            if code == 0:
                return code
        return code

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "svarinn_daemon", "--config", str(self.config_path), *args],
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )

    def kill_after(self, command: str, delay: float, log: Path) -> bool:
        """Start the daemon, SIGKILL it after ``delay`` seconds; False when it ended first."""
        process = self.spawn(command, output=log)
        try:
            process.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=10)
            return True
        return False

    def finish(self, rounds: int = 8) -> None:
        """poll-once until it reports everything finished (bad letters need several rounds)."""
        for _ in range(rounds):
            result = self.cli("--log-format", "json", "poll-once")
            if result.returncode == 0:
                return
        raise AssertionError(
            f"poll-once did not finish: {result.stdout[-2000:]}{result.stderr[-2000:]}"
        )

    @property
    def spool(self) -> Path:
        return self.root / "state" / "spool"

    def spawn(self, *args: str, output: Path | None = None) -> subprocess.Popen[str]:
        """Start the daemon's CLI as a child process. With ``output``, its stdout (the JSON
        log) and stderr go to that file instead of pipes, which a long run could fill."""
        sink = open(output, "a") if output is not None else None  # noqa: SIM115
        try:
            return self._popen(args, sink)
        finally:
            if sink is not None:
                sink.close()  # the child has its own copy

    def _popen(self, args: tuple[str, ...], sink: IO[str] | None) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "svarinn_daemon",
                "--config",
                str(self.config_path),
                "--log-format",
                "json",
                *args,
            ],
            stdout=sink or subprocess.PIPE,
            stderr=sink or subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )


@contextmanager
def harness(
    root: Path,
    *,
    extra_config: str = FAST,
    ledger_url: str | None = None,
    tls: bool = False,
    api: str = "v1",
    **simulator_options: object,
) -> Iterator[Harness]:
    """With ``tls``, the simulator serves HTTPS with a throwaway CA that the config's
    ``ca_bundle`` names (verification on, as in production). ``api``: the version the
    account speaks (the simulator answers both)."""
    identity = generate_identity()
    server_tls = make_server_tls(root / "tls") if tls else None
    context = server_tls.server_context() if server_tls else None
    with Simulator(identity.certificate, tls=context, **simulator_options) as sim:  # type: ignore[arg-type]
        files = write_operator_files(
            root,
            base_url=sim.base_url,
            api=api,
            username=sim.username,
            password=sim.password,
            identity=identity,
            ca_bundle=server_tls.ca_certificate if server_tls else None,
        )
        text = files.config.read_text()
        if ledger_url:
            start = text.index("[ledger]")
            end = text.index("[archives.default]")
            text = text[:start] + f'[ledger]\nurl = "{ledger_url}"\n\n' + text[end:]
        files.config.write_text(text + extra_config)
        yield Harness(sim, root, files.config)


def until_done(h: Harness, rounds: int = 12) -> str:
    """poll-once until everything is finished; the JSON log of all rounds as one text."""
    text = ""
    for _ in range(rounds):
        code, lines = h.poll_once()
        text += "\n".join(json.dumps(line, ensure_ascii=False) for line in lines)
        if code == 0:
            return text
    raise AssertionError(f"poll-once did not finish: {text[-3000:]}")


V2_ENDPOINTS = {"v2_list", "v2_download", "v2_status"}


def v1_requests(h: Harness) -> list[str]:
    """The endpoints of every request the simulator saw outside SvarInn V2."""
    return [r.endpoint for r in h.sim.request_log() if r.endpoint not in V2_ENDPOINTS]
