"""A clone with nothing beside it: tests that read ../shared skip, naming the path; CI fails.

The clone is ``git clone`` of this repository with this working tree's uncommitted and
untracked (not ignored) files laid over it, so it tests what would be committed now. It runs
with this interpreter and the clone first on PYTHONPATH (no second venv), and only a fast subset
of files that read ../shared, to keep the cost a few seconds.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# Files whose tests read ../shared (conformance data, KS's docs) beside ones that do not.
FAST_SUBSET = ["tests/svarinn/test_models.py", "tests/cms/test_conformance.py"]


def _git(*args: str, cwd: Path) -> str:
    done = subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=True
    )
    return done.stdout


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("needs git and a git checkout of the repository")
    target = tmp_path_factory.mktemp("fresh") / "repo"
    _git("clone", "--quiet", "--no-hardlinks", str(REPO), str(target), cwd=REPO)
    changed = _git("ls-files", "-z", "--modified", "--others", "--exclude-standard", cwd=REPO)
    for name in filter(None, changed.split("\0")):
        source, dest = REPO / name, target / name
        if source.is_file():
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest)
        elif dest.exists():  # deleted in the working tree
            dest.unlink()
    assert not (target.parent / "shared").exists()
    return target


def _run(clone: Path, *args: str, ci: bool = False) -> subprocess.CompletedProcess[str]:
    """This interpreter in the clone, importing the clone's svarinn_daemon."""
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "PYTEST_ADDOPTS")}
    env["PYTHONPATH"] = str(clone)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    if ci:
        env["CI"] = "true"
    return subprocess.run(
        [sys.executable, *args], cwd=clone, env=env, capture_output=True, text=True,
        timeout=240, check=False,
    )  # fmt: skip


def _pytest(clone: Path, *, ci: bool, files: list[str]) -> subprocess.CompletedProcess[str]:
    return _run(clone, "-m", "pytest", "-q", "-p", "no:cacheprovider", *files, ci=ci)


def test_the_clone_imports_its_own_code(clone: Path) -> None:
    done = _run(clone, "-c", "import svarinn_daemon; print(svarinn_daemon.__file__)")
    assert done.stdout.strip() == str(clone / "svarinn_daemon" / "__init__.py"), done.stderr


def test_fresh_clone_skips_what_needs_shared_and_names_the_path(clone: Path) -> None:
    done = _pytest(clone, ci=False, files=FAST_SUBSET)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    missing = clone.parent / "shared"
    conformance = missing / "conformance" / "ks-svarut-sak-mottak"
    assert f"conformance data not found at {conformance}" in out
    assert f"KS's API docs not found at {missing / 'docs'}" in out
    counts = re.search(r"(\d+) passed, (\d+) skipped", out)
    assert counts, out
    passed, skipped = int(counts[1]), int(counts[2])
    assert passed > 0
    assert skipped >= 5
    assert f"../shared: {skipped} test(s) skipped because {missing} is missing" in out


def test_fresh_clone_under_ci_fails_instead_of_skipping(clone: Path) -> None:
    done = _pytest(clone, ci=True, files=["tests/cms/test_conformance.py"])
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    assert "CI=true forbids skipping" in out
    assert " skipped" not in out.splitlines()[-1]
