"""The lock: uv.lock matches pyproject.toml, and requirements/*.txt (what make, the container
build and the systemd instructions install, with hashes) are exactly its export.

`make lock` writes them; CI runs `make lock-check` (this file) before the suite, so a
dependency added to pyproject.toml without `make lock` fails the build.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
UV = Path(sys.executable).parent / "uv"
EXPORTS = {
    "requirements/app.txt": ["--extra", "postgres"],
    "requirements/dev.txt": ["--extra", "postgres", "--extra", "dev"],
}


def uv(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    if not UV.exists():
        pytest.fail(
            f"{UV} is missing: `make .venv/.installed` installs uv from requirements/uv.txt"
        )
    return subprocess.run(
        [str(UV), *args], cwd=cwd, capture_output=True, text=True, timeout=300, check=False
    )


def requirements(text: str) -> list[str]:
    """The requirement lines and their hashes, without uv's comments."""
    return [
        line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")
    ]


def test_uv_lock_matches_pyproject() -> None:
    done = uv("lock", "--check", "--offline")
    assert done.returncode == 0, f"uv.lock is out of date: run `make lock`\n{done.stderr}"


@pytest.mark.parametrize("name", sorted(EXPORTS))
def test_requirements_are_the_lock_exported_with_hashes(name: str) -> None:
    done = uv(
        "export", "--frozen", "--no-emit-project", "--format", "requirements-txt",
        *EXPORTS[name],
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    committed = requirements((REPO / name).read_text(encoding="utf-8"))
    assert committed == requirements(done.stdout), f"{name} is not uv.lock's export: `make lock`"
    pins = [line for line in committed if not line.startswith(" ")]
    assert pins, name
    for pin in pins:
        assert "==" in pin, f"{name}: {pin!r} is not pinned"
        assert pin.rstrip().endswith("\\"), f"{name}: {pin!r} has no hash"
    assert sum("--hash=sha256:" in line for line in committed) >= len(pins)


def test_uv_itself_is_pinned_with_hashes() -> None:
    lines = requirements((REPO / "requirements" / "uv.txt").read_text(encoding="utf-8"))
    assert lines[0].startswith("uv==")
    assert len(lines) > 1
    assert all("--hash=sha256:" in line for line in lines[1:])


def test_a_dependency_added_without_locking_fails_the_check(tmp_path: Path) -> None:
    for name in ("pyproject.toml", "setup.py", "README.md", "uv.lock"):
        shutil.copy2(REPO / name, tmp_path / name)
    shutil.copytree(REPO / "svarinn_daemon", tmp_path / "svarinn_daemon",
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    shutil.copytree(REPO / "migrations", tmp_path / "migrations",
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    assert uv("lock", "--check", "--offline", cwd=tmp_path).returncode == 0
    pyproject = tmp_path / "pyproject.toml"
    text = pyproject.read_text(encoding="utf-8")
    pyproject.write_text(
        text.replace("dependencies = [\n", 'dependencies = [\n    "idna>=3",\n', 1),
        encoding="utf-8",
    )
    done = uv("lock", "--check", "--offline", cwd=tmp_path)
    assert done.returncode != 0, done.stdout + done.stderr
