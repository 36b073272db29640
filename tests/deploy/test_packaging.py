"""Every way of building the package ships the ledger's migrations.

The migrations live in the top-level ``migrations/``, which setup.py maps into the package
``svarinn_daemon.migrations``. A build that misses them (as the container image once did,
whose build context let only ``svarinn_daemon/`` in) installs a daemon that cannot migrate
and so cannot start. These tests build an sdist, a wheel from that sdist, and a wheel from
exactly the files the container's build context lets in, each from a clean copy of the
tracked files (no egg-info or build/ leftovers that could hide a gap), and look inside.
The editable install the suite itself runs in is exercised by every ledger test.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest

from svarinn_daemon.ledger.schema import head_revision, script_location
from tests.support.cfg_helpers import make_config_dir

REPO = Path(__file__).resolve().parents[2]
CONTAINERIGNORE = REPO / ".containerignore"

pytestmark = pytest.mark.timeout(600)


def _tracked_files() -> list[str]:
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout (or no git): cannot tell tracked files from leftovers")
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True, timeout=60
    ).stdout.decode()
    return [name for name in listed.split("\0") if name and (REPO / name).is_file()]


def _copy(names: list[str], dest: Path) -> Path:
    for name in names:
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, target)
    return dest


def _migration_files() -> set[str]:
    """What the package must hold, relative to svarinn_daemon/migrations/."""
    return {
        str(Path(name).relative_to("migrations"))
        for name in _tracked_files()
        if name.startswith("migrations/")
    }


def _build(source: Path, outdir: Path, *kinds: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "build", *kinds, "--outdir", str(outdir), str(source)],
        capture_output=True,
        text=True,
        timeout=540,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "would be ignored" not in result.stdout + result.stderr  # setuptools' packages check


def _wheel_migrations(wheel: Path) -> set[str]:
    prefix = "svarinn_daemon/migrations/"
    with zipfile.ZipFile(wheel) as archive:
        return {n[len(prefix) :] for n in archive.namelist() if n.startswith(prefix)}


def _ignore_regex(pattern: str) -> re.Pattern[str]:
    """A .containerignore pattern (Docker's syntax: ``*``, ``?``, ``**``) as a regex that
    matches a path or any of its parent directories."""
    pattern = pattern.strip("/")
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif pattern.startswith("**", i):
            out += ".*"
            i += 2
        elif pattern[i] == "*":
            out += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            out += "[^/]"
            i += 1
        else:
            out += re.escape(pattern[i])
            i += 1
    return re.compile(out + "(?:/.*)?")


def build_context(names: list[str], ignore_text: str) -> list[str]:
    """The files a container engine sends: the last matching pattern decides, ``!`` lets in."""
    rules = []
    for line in ignore_text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keep = line.startswith("!")
            rules.append((keep, _ignore_regex(line.lstrip("!"))))
    sent = []
    for name in names:
        included = True
        for keep, regex in rules:
            if regex.fullmatch(name):
                included = keep
        if included:
            sent.append(name)
    return sent


def test_build_context_rules() -> None:
    names = ["pyproject.toml", "svarinn_daemon/x.py", "svarinn_daemon/__pycache__/x.pyc", "t.py"]
    assert build_context(names, "*\n!pyproject.toml\n!svarinn_daemon/\n**/__pycache__\n") == [
        "pyproject.toml",
        "svarinn_daemon/x.py",
    ]
    assert build_context(names, "# nothing ignored\n") == names


def test_sdist_and_the_wheel_built_from_it_ship_the_migrations(tmp_path: Path) -> None:
    expected = _migration_files()
    assert {"__init__.py", "env.py", "script.py.mako"} <= expected
    assert any(name.startswith("versions/0001_") for name in expected)
    clone = _copy(_tracked_files(), tmp_path / "clone")
    dist = tmp_path / "dist"
    _build(clone, dist)  # the sdist, then a wheel built from the unpacked sdist

    (sdist,) = dist.glob("*.tar.gz")
    with tarfile.open(sdist) as archive:
        root, *_ = archive.getnames()[0].split("/")
        prefix = f"{root}/migrations/"
        in_sdist = {n[len(prefix) :] for n in archive.getnames() if n.startswith(prefix)}
    assert expected <= in_sdist

    (wheel,) = dist.glob("*.whl")
    assert expected <= _wheel_migrations(wheel)


def test_wheel_from_the_image_build_context_ships_the_migrations(tmp_path: Path) -> None:
    """What the Containerfile's builder stage installs: only what .containerignore lets in."""
    context = build_context(_tracked_files(), CONTAINERIGNORE.read_text())
    source = _copy(context, tmp_path / "context")
    dist = tmp_path / "dist"
    _build(source, dist, "--wheel")
    (wheel,) = dist.glob("*.whl")
    assert _migration_files() <= _wheel_migrations(wheel)
    # The GI-Arkiv WSDLs and schemas the gi-arkiv adapter loads at run time, with provenance.
    specs = REPO / "svarinn_daemon" / "specs" / "gi-arkiv-1.1"
    wanted = {f"svarinn_daemon/specs/gi-arkiv-1.1/{p.name}" for p in specs.iterdir()}
    assert len(wanted) == 15  # 2 WSDLs, 11 XSDs, PROVENANCE.md, the licence
    with zipfile.ZipFile(wheel) as archive:
        assert wanted <= set(archive.namelist())


def test_the_running_installation_ships_the_migrations() -> None:
    """The suite's own install (editable, with ``make test``) maps them too."""
    location = script_location()
    found = {str(p.relative_to(location)) for p in location.rglob("*") if p.is_file()}
    assert _migration_files() <= found
    assert head_revision()


def test_an_install_without_migrations_is_a_configuration_error(tmp_path: Path) -> None:
    """The package as the broken image had it (svarinn_daemon/ alone): exit 2 with a
    message, no traceback, for the commands that need the schema."""
    broken = tmp_path / "install"
    shutil.copytree(
        REPO / "svarinn_daemon",
        broken / "svarinn_daemon",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    assert not (broken / "svarinn_daemon" / "migrations").exists()
    config = str(make_config_dir(tmp_path).path)
    # -S: no .pth files, so the editable install's mapping of the migrations is not loaded;
    # the dependencies (and the entry points' metadata) still come from this environment.
    environ = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": os.pathsep.join([str(broken), sysconfig.get_paths()["purelib"]]),
    }
    commands = [
        ["--config", config, "migrate"],
        ["--config", config, "run"],
        ["--config", config, "status"],
        ["demo", "--letters", "1", "--dir", str(tmp_path / "demo")],
    ]
    for command in commands:
        result = subprocess.run(
            [sys.executable, "-S", "-m", "svarinn_daemon", *command],
            capture_output=True,
            text=True,
            env=environ,
            timeout=60,
            check=False,
        )
        assert result.returncode == 2, (command, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr
        assert "configuration error" in result.stderr
        assert "no ledger migrations (no svarinn_daemon.migrations)" in result.stderr
