"""Work and state directories another user could swap a letter in are refused (issue #24,
item 5): a real other uid owns them here (the tests run as root; skipped otherwise)."""

from __future__ import annotations

import os
import pwd
import subprocess
import sys
import time
from pathlib import Path

import pytest

from svarinn_daemon.adapters.staging import StagingArea
from svarinn_daemon.common import untrusted_directory
from svarinn_daemon.errors import StorageError
from tests.support.daemon_harness import harness
from tests.support.programs import use_archive

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give a directory away")


def _nobody() -> int:
    return pwd.getpwnam("nobody").pw_uid


def test_a_directory_of_another_user_or_open_to_others_is_untrusted(tmp_path: Path) -> None:
    own = tmp_path / "own"
    own.mkdir(mode=0o700)
    assert untrusted_directory(own) is None
    assert untrusted_directory(own / "not" / "yet") is None  # created by us, under ours
    theirs = tmp_path / "theirs"
    theirs.mkdir(mode=0o700)
    os.chown(theirs, _nobody(), -1)
    assert "belongs to uid" in (untrusted_directory(theirs) or "")
    assert "belongs to uid" in (untrusted_directory(theirs / "work") or "")
    open_dir = tmp_path / "open"
    open_dir.mkdir()
    os.chmod(open_dir, 0o777)  # noqa: S103  (the neighbour's mistake under test)
    assert "writable by group or others" in (untrusted_directory(open_dir) or "")
    sticky = tmp_path / "sticky"
    sticky.mkdir()
    os.chmod(sticky, 0o1777)  # noqa: S103
    assert untrusted_directory(sticky / "work") is None  # like /tmp: nobody renames ours
    link = tmp_path / "link"
    link.symlink_to(own)
    assert "symbolic link" in (untrusted_directory(link) or "")


def test_staging_refuses_a_work_area_given_away_after_start(tmp_path: Path) -> None:
    area = StagingArea(tmp_path / "work")
    area.stage("f1").remove()
    os.chown(tmp_path / "work", _nobody(), -1)
    with pytest.raises(StorageError, match=r"not private: .* belongs to uid"):
        area.stage("f2")


@pytest.mark.parametrize("adapter", ["command", "http"])
def test_check_config_and_run_refuse_a_neighbours_work_directory(
    tmp_path: Path, adapter: str
) -> None:
    with harness(tmp_path / "h") as h:
        work = tmp_path / "shared-work"
        work.mkdir()
        os.chown(work, _nobody(), -1)
        target = (
            'command = ["/bin/true"]'
            if adapter == "command"
            else 'url = "http://127.0.0.1:9/letters"'
        )
        use_archive(
            h,
            f'[archives.default]\nadapter = "{adapter}"\n{target}\nwork_directory = "{work}"\n',
        )
        checked = h.cli("check-config", "--quiet")
        assert checked.returncode == 2
        assert "archives.default.work_directory" in checked.stderr
        assert "belongs to uid" in checked.stderr
        assert h.cli("poll-once").returncode == 2


def test_run_refuses_a_state_directory_open_to_others(tmp_path: Path) -> None:
    with harness(tmp_path / "h") as h:
        state = h.root / "state"
        state.mkdir(exist_ok=True)
        os.chmod(state, 0o777)  # noqa: S103
        done = h.cli("poll-once")
        assert done.returncode == 2
        assert "state_directory" in done.stderr
        assert "writable by group or others" in done.stderr


def _ledger_file(h: object) -> Path:
    from svarinn_daemon.config import load_config

    config = load_config(h.config_path, environ={})  # type: ignore[attr-defined]
    return Path(config.ledger.url.split("///", 1)[1])


def test_a_ledger_file_of_another_user_or_a_planted_link_is_refused(tmp_path: Path) -> None:
    """Issue #24, item 11: a ledger file pre-created by another user (0666) or a symbolic
    link planted in its place was used silently."""
    with harness(tmp_path / "h") as h:
        ledger = _ledger_file(h)
        ledger.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        ledger.touch(mode=0o666)
        os.chmod(ledger, 0o666)  # noqa: S103  (the neighbour's file under test)
        os.chown(ledger, _nobody(), -1)
        done = h.cli("poll-once")
        assert done.returncode == 2
        assert "belongs to uid" in done.stderr
        ledger.unlink()
        elsewhere = tmp_path / "elsewhere.sqlite3"
        ledger.symlink_to(elsewhere)
        done = h.cli("poll-once")
        assert done.returncode == 2
        assert "symbolic link" in done.stderr
        assert not elsewhere.exists()
        ledger.unlink()
        ledger.touch(mode=0o644)
        os.chmod(ledger, 0o644)
        assert h.cli("migrate").returncode == 0
        assert ledger.stat().st_mode & 0o777 == 0o600  # ours, made private


@pytest.mark.parametrize("suffix", ["", "-wal"])
def test_a_fifo_planted_as_the_ledger_is_refused_not_waited_on(tmp_path: Path, suffix: str) -> None:
    """A FIFO in the ledger's (or its -wal's) place held the start forever: opening it for
    writing waits for a reader that never comes. Now it is refused at once."""
    with harness(tmp_path / "h") as h:
        ledger = _ledger_file(h)
        ledger.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.mkfifo(ledger.with_name(ledger.name + suffix), 0o600)
        done = subprocess.run(
            [sys.executable, "-m", "svarinn_daemon", "--config", str(h.config_path), "migrate"],
            capture_output=True,
            text=True,
            check=False,
            timeout=20,  # the old code never returned
        )
        assert done.returncode == 2
        assert "not a regular file" in done.stderr


def test_a_ledger_in_a_directory_another_user_can_write_is_refused(tmp_path: Path) -> None:
    """A ledger outside the state directory (``url = "sqlite:////srv/shared/l.sqlite3"``) in
    a directory a neighbour owns or may write: the file could be swapped after every check
    of it, so the directory must be as private as the state directory."""
    with harness(tmp_path / "h") as h:
        shared = tmp_path / "shared"
        shared.mkdir(mode=0o700)
        os.chown(shared, _nobody(), -1)
        text = h.config_path.read_text()
        url = next(line for line in text.splitlines() if line.startswith("url = "))
        h.config_path.write_text(text.replace(url, f'url = "sqlite:///{shared}/ledger.sqlite3"'))
        done = h.cli("migrate")
        assert done.returncode == 2, done.stderr
        assert "ledger's directory is not private" in done.stderr
        assert "belongs to uid" in done.stderr
        assert not (shared / "ledger.sqlite3").exists()
        os.chown(shared, 0, -1)
        os.chmod(shared, 0o777)  # noqa: S103  (the loose directory under test)
        done = h.cli("migrate")
        assert done.returncode == 2
        assert "writable by group or others" in done.stderr
        os.chmod(shared, 0o700)
        assert h.cli("migrate").returncode == 0, h.cli("migrate").stderr


def test_a_neighbour_swapping_the_letter_while_check_command_runs_gets_nothing(
    tmp_path: Path,
) -> None:
    """Issue #24, item 5, as it was found: the work directory passes at start and is given
    to a neighbour (a real other uid) later; while ``check_command`` runs, the neighbour
    renames the letter's directory away and puts its own in its place, holding ``brev.pdf``
    as a link to the daemon's private key. Staging went by path: the record was written into
    the neighbour's directory, the program ran in it, the key was archived as the letter and
    the letter acknowledged. Now nothing is handed on, and the letter waits."""
    from svarinn_daemon.simulator.letters import LetterFile
    from tests.support.programs import write_import_program

    with harness(tmp_path / "h") as h:
        work, store = h.root / "work", h.root / "store"
        work.mkdir(mode=0o700)
        ready, go = h.root / "ready", h.root / "go"
        key = h.config_path.parent / "private-key.pem"
        assert b"PRIVATE KEY" in key.read_bytes()
        program = write_import_program(h.root / "bin")
        check = h.root / "bin" / "check.sh"
        # Runs in the work area; once a letter is staged there it lets the test act.
        check.write_text(
            f'#!/bin/sh\nfor d in .tmp-*; do [ -d "$d" ] || continue\n'
            f'  touch "{ready}"; while [ ! -e "{go}" ]; do sleep 0.05; done\ndone\nexit 1\n'
        )
        use_archive(
            h,
            f'[archives.default]\nadapter = "command"\ntimeout = "20s"\n'
            f'command = ["{program}", "--store", "{store}"]\n'
            f'check_command = ["/bin/sh", "{check}"]\nwork_directory = "{work}"\n',
        )
        letter = h.sim.add_letter(LetterFile("brev.pdf", "application/pdf", data=b"%PDF-1.4 x\n"))
        daemon = h.spawn("poll-once")
        try:
            while not ready.exists():
                assert daemon.poll() is None, daemon.communicate()
                time.sleep(0.05)
            os.chown(work, _nobody(), -1)  # given away after start
            swap = (
                'for d in .tmp-*; do mv "$d" "$d.gone" && '
                f'mkdir -p "$d/letter" && ln -s "{key}" "$d/letter/brev.pdf"; done'
            )
            # Started in the work area (the neighbour's now), then as the neighbour.
            subprocess.run(["/bin/sh", "-c", swap], cwd=work, user="nobody", check=True, timeout=30)
            go.touch()
            out, _ = daemon.communicate(timeout=60)
        finally:
            go.touch()
            if daemon.poll() is None:
                daemon.kill()
                daemon.communicate()
        assert daemon.returncode == 1
        archived = [p.read_bytes() for p in store.rglob("*") if p.is_file()]
        assert not any(b"PRIVATE KEY" in data for data in archived)
        assert h.sim.state().acknowledged == {}
        assert "not private" in out
        assert "belongs to uid" in out
        # The directory given back, the letter itself is imported, and only it.
        os.chown(work, 0, -1)
        subprocess.run(["rm", "-rf", *map(str, work.glob(".tmp-*"))], check=True)
        assert h.until_done() == 0
        assert (store / letter.id / "brev.pdf").read_bytes() == b"%PDF-1.4 x\n"
        assert set(h.sim.state().acknowledged) == {letter.id}


def test_the_http_adapter_never_posts_what_a_neighbour_put_in_the_letters_place(
    tmp_path: Path,
) -> None:
    """Issue #24, item 5, for ``http``: the documents were POSTed from their paths, so a
    letter directory a neighbour swapped in after staging sent its files (a link to the key)
    to the endpoint. Now they are read through the directory held, and a work area that is
    no longer private sends nothing at all."""
    import hashlib
    import io
    from datetime import UTC, datetime

    from svarinn_daemon.adapters import AdapterContext, DocumentMetadata, VerificationRecord
    from svarinn_daemon.adapters.http_archive import create_adapter
    from tests.support.fakes.sakssystem import SakServer

    fid, data = "43ee26b7-838b-4f99-b81c-d21551b621d8", b"%PDF-1"
    now = datetime(2026, 1, 2, tzinfo=UTC)
    key = tmp_path / "private-key.pem"
    key.write_text("-----BEGIN PRIVATE KEY-----\n")
    work = tmp_path / "work"
    work.mkdir(mode=0o700)
    with SakServer() as server:
        archive = create_adapter(
            {"url": server.url, "work_directory": str(work), "timeout": "5s"},
            AdapterContext("sak", tmp_path / "state", tmp_path),
        )
        try:
            tx = archive.begin(fid, {"id": fid})
            sha = hashlib.sha256(data).hexdigest()
            tx.add_document(
                "brev.pdf", io.BytesIO(data), DocumentMetadata("application/pdf", sha, 6, True)
            )
            os.chown(work, _nobody(), -1)
            swap = (
                'for d in .tmp-*; do mv "$d" "$d.gone" && '
                f'mkdir -p "$d/letter" && ln -s "{key}" "$d/letter/brev.pdf"; done'
            )
            subprocess.run(["/bin/sh", "-c", swap], cwd=work, user="nobody", check=True, timeout=30)
            with pytest.raises(StorageError, match="not private"):
                tx.commit(VerificationRecord(sha, 6, True, "pdf", True, now, now))
        finally:
            archive.close()
        assert server.state.letters == {}
