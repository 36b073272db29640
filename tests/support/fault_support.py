"""Real faults of our own side for the tests: a small full tmpfs, the test plugin adapter,
and reading a spawned daemon's JSON log."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

PLUGINS = Path(__file__).resolve().parent / "plugins"


def plugin_env() -> dict[str, str]:
    """The environment for a child daemon that finds the test plugin's entry point."""
    path = os.environ.get("PYTHONPATH", "")
    return {**os.environ, "PYTHONPATH": f"{PLUGINS}{os.pathsep}{path}" if path else str(PLUGINS)}


@contextmanager
def small_tmpfs(path: Path, size: str = "16m") -> Iterator[Path]:
    """A tmpfs of ``size`` mounted at ``path`` (needs root; CI runs as root)."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        reason = f"cannot mount a tmpfs here ({mounted.stderr.strip() or 'not root'})"
        if os.environ.get("CI") == "true":
            pytest.fail(reason + " -- and CI=true forbids skipping")
        pytest.skip(reason)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(directory: Path, leave: int = 64 * 1024) -> Path:
    """Fill the filesystem of ``directory`` until ``leave`` bytes are free; returns the filler."""
    filler = directory / "filler"
    stat = os.statvfs(directory)
    size = max(0, stat.f_bavail * stat.f_frsize - leave)
    with open(filler, "wb") as f:
        chunk = bytes(1 << 20)
        while size > 0:
            size -= f.write(chunk[: min(len(chunk), size)])
    return filler


def log_events(log: Path) -> list[dict[str, Any]]:
    if not log.exists():
        return []
    return [json.loads(x) for x in log.read_text().splitlines() if x.startswith("{")]


def when(event: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(str(event["timestamp"]).replace("Z", "+00:00"))


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.1)
