"""`svarinn-daemon demo`: README's first command, exercised for real (smaller)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.cfg_helpers import run_cli


def test_demo_imports_everything_and_says_where(tmp_path: Path) -> None:
    code, out, err = run_cli("demo", "--letters", "6", "--size", "8KiB", "--dir", str(tmp_path))
    assert code == 0, err[-2000:]
    assert "imported:  6 of 6 letters" in out
    letters = [p for p in (tmp_path / "archive").iterdir() if not p.name.startswith(".")]
    assert len(letters) == 6
    for letter in letters:
        meta = json.loads((letter / "forsendelse.json").read_text())
        assert meta["verification"]["verified"] is True
    assert str(tmp_path / "config.toml") in out
    assert list((tmp_path / "state" / "spool").iterdir()) == []


def test_demo_rejects_bad_arguments(tmp_path: Path) -> None:
    code, _, err = run_cli("demo", "--size", "huge", "--dir", str(tmp_path))
    assert code == 2
    assert "--size" in err


def test_demo_into_the_local_gi_arkiv(tmp_path: Path) -> None:
    code, out, err = run_cli(
        "demo", "--archive", "gi-arkiv", "--letters", "5", "--size", "8KiB", "--dir", str(tmp_path)
    )
    assert code == 0, err[-2000:]
    assert "imported:  5 of 5 letters" in out
    assert "local GI-Arkiv at http://127.0.0.1:" in out
    assert "5 journalposts, 7 documents, in SvarInn " in out
    assert 'adapter = "gi-arkiv"' in (tmp_path / "config.toml").read_text()


def test_demo_into_the_local_public_360(tmp_path: Path) -> None:
    code, out, err = run_cli(
        "demo", "--archive", "p360", "--letters", "4", "--size", "8KiB", "--dir", str(tmp_path)
    )
    assert code == 0, err[-2000:]
    assert "imported:  4 of 4 letters" in out
    assert "local Public 360 at http://127.0.0.1:" in out
    assert "4 documents, 6 files, in SvarInn " in out


def test_demo_into_the_local_noark5(tmp_path: Path) -> None:
    code, out, err = run_cli(
        "demo", "--archive", "noark5", "--letters", "4", "--size", "8KiB", "--dir", str(tmp_path)
    )
    assert code == 0, err[-2000:]
    assert "imported:  4 of 4 letters" in out
    assert "local Noark 5 at http://127.0.0.1:" in out
    assert "4 journalposts, 6 files, in SvarInn " in out
