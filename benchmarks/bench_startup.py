"""Benchmark: how fast each command starts and how much memory it takes, beside a bare
``python -c pass`` measured in the same run, and beside an interpreter that only imports the
libraries ``run`` is built on (SQLAlchemy, httpx, APScheduler, prometheus-client, structlog,
cryptography): the floor under the daemon's own memory.

Each command runs as a child process (``os.wait4`` gives its own peak RSS, ``ru_maxrss``,
started through a tiny launcher so the benchmark's own memory is not counted in it)
against a real SQLite ledger with one letter and a real SvarUt-encrypted file, so ``status``,
``list``, ``show`` and ``decrypt`` do their whole job, not just their imports. Byte code is
cached as an installed package has it (pip compiles at install time): the children run with
``PYTHONPYCACHEPREFIX`` in a scratch directory and without ``PYTHONDONTWRITEBYTECODE``, and
each command runs once before it is measured. The wall time printed is the median of
``--runs`` runs (the minimum beside it: this shared two-core machine is noisy).

It also starts ``run`` against the in-process simulator with the metrics endpoint on, waits
until ``/readyz`` answers 200 (ledger migrated, recovery done, first poll made) and the daemon
has idled for ``--idle`` seconds, and prints its RSS then (split into anonymous memory, the
process's own, and file pages: the shared libraries' code, which other processes share and the
kernel can drop and read again), against ``--idle-target``. The ledger is fresh, so ``run``
migrates it first, as on its first start.

MB are 10^6 bytes, as in ``bench_daemon.py``.

    .venv/bin/python benchmarks/bench_startup.py [--runs 7] [--idle 5] [--target 0.25]
        [--idle-target 60]
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from svarinn_daemon.cms import encrypt_bytes
from svarinn_daemon.config import LedgerConfig
from svarinn_daemon.ledger import Sighting, open_ledger
from svarinn_daemon.simulator import Simulator
from svarinn_daemon.simulator.identity import generate_identity, write_operator_files

BIN = Path(sys.executable).parent
# What `run` cannot do without, imported and nothing else: the floor under its RSS.
LIBRARIES = (
    "import sqlalchemy, sqlalchemy.dialects.sqlite, httpx, apscheduler.schedulers.background, "
    "prometheus_client, structlog, cryptography.x509, cryptography.hazmat.primitives.ciphers"
)
# The commands with a start-up target, and what each is given to do.
TARGETED = ("--help", "status", "list", "show", "decrypt")


def child_env(pycache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(pycache)
    return env


# The child is started by a small interpreter (no site, nothing imported) that forks, execs
# and waits: a process's ru_maxrss includes the memory of whoever forked it until exec (even
# with vfork), so children forked from this process would all report at least its own RSS.
LAUNCHER = """
import os, sys, time
started = time.perf_counter()
pid = os.fork()
if pid == 0:
    os.execve(sys.argv[1], sys.argv[1:], os.environ)
_, status, usage = os.wait4(pid, 0)
print(time.perf_counter() - started, usage.ru_maxrss, os.waitstatus_to_exitcode(status))
"""


def measure(argv: Sequence[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one run of ``argv``; it must exit 0."""
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", LAUNCHER, *argv],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=True,
    )
    elapsed, maxrss, code = done.stdout.split()[-3:]
    if int(code) != 0:
        raise SystemExit(f"{' '.join(argv)} exited {code}: {done.stderr[-500:]}")
    return float(elapsed), int(maxrss) * 1024 / 1e6


def prepare(root: Path) -> tuple[Path, Path, Path]:
    """A config with a migrated SQLite ledger holding one letter, and an encrypted file."""
    identity = generate_identity("bench-startup")
    files = write_operator_files(
        root,
        base_url="http://127.0.0.1:9/",
        username="bench",
        password="bench-password",
        identity=identity,
        account="kommune",
    )
    ledger_url = "sqlite:///" + str((root / "state" / "ledger.sqlite3").resolve())
    ledger = open_ledger(LedgerConfig(url=ledger_url), migrate_schema=True)
    ledger.record_seen_many("kommune", [Sighting("d1c6d795", sender="Ola", title="Byggesøknad")])
    ledger.close()
    encrypted = root / "letter.cms"
    encrypted.write_bytes(encrypt_bytes(os.urandom(256 * 1024), identity.certificate))
    assert files.private_key is not None
    return files.config, files.private_key, encrypted


def idle_run_rss(root: Path, env: dict[str, str], idle: float) -> dict[str, float]:
    """RSS, peak RSS, and RSS's anonymous and file parts (MB) of ``run`` after its first
    poll and ``idle`` quiet seconds."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    identity = generate_identity("bench-idle")
    with Simulator(identity.certificate, work_dir=root / "simulator") as sim:
        files = write_operator_files(
            root / "idle",
            base_url=sim.base_url,
            username=sim.username,
            password=sim.password,
            identity=identity,
            account="kommune",
        )
        with files.config.open("a", encoding="utf-8") as config:
            config.write(
                f'\n[daemon]\npoll_interval = "60s"\n\n[metrics]\nlisten = "127.0.0.1:{port}"\n'
            )
        daemon = subprocess.Popen(
            [str(BIN / "svarinn-daemon"), "--config", str(files.config), "run"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2):
                        break
                except (urllib.error.URLError, OSError):
                    time.sleep(0.2)
            else:
                raise SystemExit("run did not become ready within 60 s")
            time.sleep(idle)
            status = Path(f"/proc/{daemon.pid}/status").read_text()
        finally:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(timeout=60)
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return {
        name: int(fields[name].split()[0]) * 1024 / 1e6
        for name in ("VmRSS", "VmHWM", "RssAnon", "RssFile")
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="measured runs per command (7)")
    parser.add_argument("--idle", type=float, default=5.0, help="idle seconds for run (5)")
    parser.add_argument("--target", type=float, default=0.25, help="start-up target, s (0.25)")
    parser.add_argument(
        "--idle-target", type=float, default=60.0, help="idle run's RSS target, MB (60)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as scratch:
        root = Path(scratch)
        env = child_env(root / "pycache")
        config, key, encrypted = prepare(root)
        daemon = [str(BIN / "svarinn-daemon")]
        cfg = ["--config", str(config)]
        commands: dict[str, list[str]] = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "libraries alone": [sys.executable, "-c", LIBRARIES],
            "--help": [*daemon, "--help"],
            "status": [*daemon, *cfg, "status"],
            "list": [*daemon, *cfg, "list"],
            "show": [*daemon, *cfg, "show", "1"],
            "decrypt": [
                *daemon,
                "decrypt",
                "--key",
                str(key),
                str(encrypted),
                "-o",
                str(root / "plain"),
            ],
            "check-config": [*daemon, *cfg, "check-config", "--quiet"],
        }
        print(f"{'command':16} {'median s':>9} {'min s':>7} {'- python':>9} {'peak RSS':>9}")
        bare = 0.0
        over = []
        for name, argv in commands.items():
            measure(argv, env)  # byte code cached, files in the page cache
            runs = [measure(argv, env) for _ in range(args.runs)]
            median = statistics.median(t for t, _ in runs)
            rss = max(r for _, r in runs)
            if name == "python -c pass":
                bare = median
            verdict = ""
            if name in TARGETED:
                verdict = "ok" if median < args.target else f"OVER {args.target} s"
                if median >= args.target:
                    over.append(name)
            print(
                f"{name:16} {median:9.3f} {min(t for t, _ in runs):7.3f} "
                f"{median - bare:9.3f} {rss:7.1f} MB  {verdict}"
            )
        idle = idle_run_rss(root, env, args.idle)
        verdict = "ok" if idle["VmRSS"] < args.idle_target else f"OVER {args.idle_target:.0f} MB"
        print(
            f"run, idle {args.idle:.0f} s after its first poll: RSS {idle['VmRSS']:.1f} MB "
            f"(anonymous {idle['RssAnon']:.1f} MB, file {idle['RssFile']:.1f} MB; "
            f"peak {idle['VmHWM']:.1f} MB)  {verdict}"
        )
        if idle["VmRSS"] >= args.idle_target:
            over.append("idle run")
    if over:
        print(f"over target: {', '.join(over)}")
    return 1 if over else 0


if __name__ == "__main__":
    raise SystemExit(main())
