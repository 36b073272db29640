"""Download throughput and memory of SvarInnClient against the simulator, vs plain httpx.

Baseline (same run, same file, same loopback server): a bare ``httpx.Client`` streaming the
body with ``iter_raw``. Ours: ``SvarInnClient.download`` (origin checks, redirects, size
limit, error mapping, Content-Length check). The simulator runs in its own process. Peak
RSS is read from /proc (VmHWM, reset before each phase): neither holds the file in memory.

    .venv/bin/python benchmarks/client_download.py [--size 512MiB] [--rounds 3]
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from svarinn_daemon.config import load_config
from svarinn_daemon.config.model import AccountConfig
from svarinn_daemon.service.runtime import connect


def reset_peak() -> None:
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def peak_rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start_simulator(size: str, directory: Path) -> subprocess.Popen[str]:
    """The simulator in its own process, so it does not share our GIL."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "svarinn_daemon",
            "simulator",
            "--generate",
            "1",
            "--size",
            size,
            "--write-config",
            str(directory),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("Press Ctrl-C"):
            break
    return process


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", default="512MiB")
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        started = time.perf_counter()
        process = start_simulator(args.size, Path(scratch))
        print(
            f"simulator: generated and encrypted {args.size} in "
            f"{time.perf_counter() - started:.2f} s (own process)"
        )
        try:
            (account,) = load_config(Path(scratch) / "config.toml", environ={}).accounts
            return measure(account, args.rounds)
        finally:
            process.send_signal(signal.SIGTERM)
            process.communicate(timeout=30)


def measure(account: AccountConfig, rounds: int) -> int:
    results: dict[str, list[float]] = {"baseline httpx iter_raw": [], "SvarInnClient": []}
    peaks: dict[str, float] = {}
    auth = (account.username, account.password.reveal())
    with httpx.Client(auth=auth, timeout=60) as http, connect(account) as client:
        (listed,) = list(client.listing().letters)
        url = listed.download_url
        size = 0

        def baseline() -> int:
            n = 0
            with http.stream("GET", url) as response:
                for chunk in response.iter_raw(2**20):
                    n += len(chunk)
            return n

        def ours() -> int:
            n = 0
            with client.download(listed) as download:
                for chunk in download:
                    n += len(chunk)
            return n

        phases = {"baseline httpx iter_raw": baseline, "SvarInnClient": ours}
        for round_number in range(rounds):
            # Alternate the order so neither side always gets the warmer cache.
            order = list(phases) if round_number % 2 == 0 else list(reversed(phases))
            for name in order:
                reset_peak()
                t = time.perf_counter()
                size = phases[name]()
                results[name].append(time.perf_counter() - t)
                peaks[name] = max(peaks.get(name, 0.0), peak_rss_mib())
    mib = size / 2**20
    print(f"file: {mib:.0f} MiB ciphertext, best of {rounds} rounds, loopback")
    for name, times in results.items():
        best = min(times)
        print(f"  {name:26s} {mib / best:8.0f} MiB/s   peak RSS {peaks[name]:6.0f} MiB")
    ratio = min(results["SvarInnClient"]) / min(results["baseline httpx iter_raw"])
    print(f"  SvarInnClient takes {ratio:.2f}x the baseline's time")
    return 0


if __name__ == "__main__":
    sys.exit(main())
