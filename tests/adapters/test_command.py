"""The command adapter, against a real program (tests/support/programs.py) run per letter."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import signal
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from svarinn_daemon.adapters import (
    AdapterContext,
    AdapterRegistry,
    DocumentMetadata,
    LetterOrigin,
    VerificationRecord,
    begin_letter,
    has_letter,
)
from svarinn_daemon.adapters.command import OUTPUT_CAP, CommandArchive, create_adapter
from svarinn_daemon.config import ArchiveConfig
from svarinn_daemon.errors import ArchiveError, ConfigError, StorageError
from svarinn_daemon.testing import check_adapter_contract
from tests.support.programs import write_import_program

FID = "43ee26b7-838b-4f99-b81c-d21551b621d8"
T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
VERIFICATION = VerificationRecord("9a" * 32, 6, True, "pdf", True, T0, T0 + timedelta(seconds=2))
ENVIRON = {
    "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
    "LANG": "C.UTF-8",
    "SVARINN_PASSWORD": "hunter2-secret",
    "LEDGER_DB_PASSWORD": "pg-secret",
    "SAK_TOKEN": "tok-secret",
    "CREDENTIALS_DIRECTORY": "/run/credentials/svarinn-daemon.service",
    "AWS_SECRET_ACCESS_KEY": "aws-secret",
    "SVARINN_LETTER_DIR": "/somewhere/else",
    # What a deny-list by name let through (issue #24, item 8):
    "SVARINN_LOGIN": "the-svarinn-password",
    "DATABASE_URL": "postgresql://svarinn:pg-secret@db/svarinn",
    "HTTPS_PROXY": "http://user:proxy-secret@proxy:3128",
    "KRB5CCNAME": "FILE:/tmp/krb5cc_0",
}


def meta(data: bytes) -> DocumentMetadata:
    return DocumentMetadata("application/pdf", hashlib.sha256(data).hexdigest(), len(data), True)


def make(
    tmp_path: Path,
    mode: str = "ok",
    *,
    check: bool = True,
    check_mode: str = "ok",
    timeout: float = 30,
) -> tuple[CommandArchive, Path]:
    program = write_import_program(tmp_path / "bin")
    store = tmp_path / "sak"
    archive = CommandArchive(
        [str(program), "--store", str(store), "--mode", mode],
        work_directory=tmp_path / "work",
        timeout=timedelta(seconds=timeout),
        check_command=(
            [str(program), "--store", str(store), "--mode", check_mode, "--status"]
            if check
            else None
        ),
        environ=ENVIRON,
        now=lambda: T0,
    )
    return archive, store


def import_one(archive: CommandArchive, origin: LetterOrigin | None = None) -> str:
    origin = origin or LetterOrigin("kommune", "v1")
    tx = begin_letter(archive, FID, {"id": FID, "tittel": "Søknad"}, origin)
    try:
        tx.add_document("vedlegg/brev.pdf", io.BytesIO(b"%PDF-1"), meta(b"%PDF-1"))
        return tx.commit(VERIFICATION)
    except BaseException:
        tx.abort()
        raise


def test_command_keeps_the_adapter_contract(tmp_path: Path) -> None:
    program = write_import_program(tmp_path / "bin")

    def factory(directory: Path) -> CommandArchive:
        store = directory / "sak"
        return CommandArchive(
            [str(program), "--store", str(store)],
            work_directory=directory / "work",
            check_command=[str(program), "--store", str(store), "--status"],
        )

    check_adapter_contract(factory, tmp_path / "contract")


def test_the_program_gets_the_letter_directory_its_input_and_a_clean_environment(
    tmp_path: Path,
) -> None:
    archive, store = make(tmp_path, "record")
    ref = import_one(archive, LetterOrigin("byggesak", "v2"))
    assert ref == f"sak:{FID}"  # the last non-empty line of its output
    observed = json.loads((store / f".observed-{FID}.json").read_text())
    env = observed["env"]
    assert env["SVARINN_FORSENDELSE_ID"] == FID
    assert env["SVARINN_ACCOUNT"] == "byggesak"
    assert env["SVARINN_API"] == "v2"
    # It starts in the letter directory's private parent, which holds nothing else.
    assert env["SVARINN_LETTER_DIR"] == str(Path(observed["cwd"]) / "letter")
    assert env["SVARINN_LETTER_DIR"] != "/somewhere/else"
    assert observed["files"] == ["letter"]
    assert sorted(os.listdir(store / FID)) == ["brev.pdf", "forsendelse.json"]
    # An allow-list: nothing but PATH, LANG & co., ours, and PYTHONSAFEPATH.
    assert set(env) == {
        "PATH",
        "LANG",
        "PYTHONSAFEPATH",
        "SVARINN_FORSENDELSE_ID",
        "SVARINN_ACCOUNT",
        "SVARINN_API",
        "SVARINN_LETTER_DIR",
    }
    assert env["LANG"] == "C.UTF-8"
    assert env["PYTHONSAFEPATH"] == "1"
    record = json.loads(observed["stdin"])
    assert record["forsendelse"] == {"id": FID, "tittel": "Søknad"}
    assert record["documents"][0]["file"] == "brev.pdf"
    assert record["documents"][0]["name"] == "vedlegg/brev.pdf"
    assert record["verification"]["sha256"] == "9a" * 32
    assert (store / FID / "forsendelse.json").read_text() == observed["stdin"]
    assert (store / FID / "brev.pdf").read_bytes() == b"%PDF-1"
    # the work directory is gone once the program has run
    assert not Path(observed["cwd"]).exists()
    assert "secret" not in json.dumps(env)
    assert archive.cleanup(timedelta(0)) == 0


def test_exit_75_is_temporary(tmp_path: Path) -> None:
    archive, store = make(tmp_path, "tempfail")
    with pytest.raises(ArchiveError, match="exited with status 75: the sakssystem is in") as info:
        import_one(archive)
    assert info.value.temporary
    assert not store.joinpath(FID).exists()
    assert archive.cleanup(timedelta(0)) == 0


def test_another_exit_is_permanent_with_the_end_of_standard_error(tmp_path: Path) -> None:
    archive, _store = make(tmp_path, "refuse")
    with pytest.raises(ArchiveError) as info:
        import_one(archive)
    assert info.value.permanent
    message = str(info.value)
    assert "exited with status 65" in message
    assert message.endswith("Elements refused the letter: case 2026/17 is closed")
    assert len(message) < 700  # the last 500 characters of stderr, not 2000


def test_a_program_killed_mid_copy_is_temporary_and_the_next_run_imports(tmp_path: Path) -> None:
    archive, _ = make(tmp_path, "kill-self")
    with pytest.raises(ArchiveError, match="was killed by SIGKILL") as info:
        import_one(archive)
    assert info.value.temporary
    assert archive.has(FID) is None  # a partial copy is not a letter
    fixed, _ = make(tmp_path, "ok")
    assert import_one(fixed) == f"sak:{FID}"
    assert fixed.has(FID) == f"sak:{FID}"


def test_a_hanging_program_and_its_children_are_killed_at_the_timeout(tmp_path: Path) -> None:
    archive, store = make(tmp_path, "hang", timeout=1.5)
    started = time.monotonic()
    with pytest.raises(ArchiveError, match="timed out") as info:
        import_one(archive)
    assert info.value.temporary
    assert time.monotonic() - started < 15
    child = int((store / f".child-{FID}").read_text())
    deadline = time.monotonic() + 5
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child), "the program's child survived the timeout"


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return status.split(") ", 1)[1][0] != "Z"  # a zombie waiting for init is dead


def test_output_is_drained_whole_but_only_its_end_kept(tmp_path: Path) -> None:
    archive, _ = make(tmp_path, "chatty")  # about 12 MB on stdout before its reference
    assert import_one(archive) == f"sak:{FID}"
    assert OUTPUT_CAP <= 128 * 1024


def test_the_reference_is_cut_at_500_characters(tmp_path: Path) -> None:
    archive, _ = make(tmp_path, "long-ref", check=False)
    assert import_one(archive) == "r" * 500


def test_check_command_answers_has(tmp_path: Path) -> None:
    archive, _ = make(tmp_path)
    origin = LetterOrigin("kommune")
    assert has_letter(archive, FID, origin) is None
    import_one(archive)
    assert has_letter(archive, FID, origin) == f"sak:{FID}"
    broken, _ = make(tmp_path, check_mode="status-broken")
    expected = r"exited with status 3 for .*: status service is down"
    with pytest.raises(ArchiveError, match=expected) as info:
        broken.has(FID)
    assert info.value.temporary


def test_without_check_command_has_knows_nothing(tmp_path: Path) -> None:
    archive, _ = make(tmp_path, check=False)
    import_one(archive)
    assert archive.has(FID) is None
    # so a second run relies on the program being idempotent on SVARINN_FORSENDELSE_ID
    assert import_one(archive) == f"sak:{FID}"


def test_a_missing_program_is_temporary(tmp_path: Path) -> None:
    archive = CommandArchive([str(tmp_path / "nowhere")], work_directory=tmp_path / "work")
    with pytest.raises(ArchiveError, match="cannot start") as info:
        import_one(archive)
    assert info.value.temporary
    assert archive.cleanup(timedelta(0)) == 0


def test_options_through_the_registry(tmp_path: Path) -> None:
    program = write_import_program(tmp_path / "bin")
    options = {
        "command": [str(program), "--store", "sak"],
        "check_command": [str(program), "--store", "sak", "--status"],
        "timeout": "2m",
    }
    adapter = AdapterRegistry().create(
        ArchiveConfig("sak", "command", options), state_directory=tmp_path / "state"
    )
    assert isinstance(adapter, CommandArchive)
    assert adapter.timeout == timedelta(minutes=2)
    assert adapter.staging.root == tmp_path / "state" / "adapters" / "sak"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "archives.sak.command.*is required"),
        ({"command": "/bin/import --to elements"}, "must be a list.*never run by a shell"),
        ({"command": []}, "non-empty list of strings"),
        ({"command": ["/bin/true"], "timeout": "soon"}, "is not a duration"),
        ({"command": ["/bin/true"], "chek_command": ["/bin/true"]}, "did you mean 'check_command'"),
    ],
)
def test_bad_options_name_the_key(options: dict[str, object], message: str, tmp_path: Path) -> None:
    context = AdapterContext("sak", tmp_path, tmp_path)
    with pytest.raises(ConfigError, match=message):
        create_adapter(options, context)


def test_a_grandchild_in_its_own_session_is_killed_with_the_program(tmp_path: Path) -> None:
    """Issue #24, item 16: a ``setsid`` grandchild escaped the process-group kill, kept the
    program's pipes open (the worker waited for it) and went on running after the timeout."""
    from svarinn_daemon.adapters.command import run_program

    pidfile = tmp_path / "grandchild.pid"
    script = f"setsid sh -c 'echo $$ > {pidfile}; exec sleep 60' & sleep 60"
    result = run_program(
        ["/bin/sh", "-c", script], env={"PATH": "/usr/bin:/bin"}, cwd=tmp_path, stdin=None,
        timeout=0.5,
    )  # fmt: skip
    grandchild = int(pidfile.read_text())
    try:
        assert result.timed_out
        for _ in range(500):  # SIGKILL is sent; wait for it to land (zombie or gone)
            if _ended(grandchild):
                break
            time.sleep(0.01)
        assert _ended(grandchild), "the setsid grandchild survived the timeout kill"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(grandchild, signal.SIGKILL)


def _ended(pid: int) -> bool:
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat_line.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def test_the_program_never_starts_in_a_letter_directory_swapped_after_staging(
    tmp_path: Path,
) -> None:
    """Issue #24, item 5: staging went by path, so a directory swapped in under the letter's
    name (a neighbour's work area) had its content imported as the letter. The program now
    starts from the pinned directory, and a swap is refused before it starts."""
    archive, store = make(tmp_path, check=False)
    tx = begin_letter(archive, FID, {"id": FID, "tittel": "Søknad"}, LetterOrigin("k", "v1"))
    tx.add_document("brev.pdf", io.BytesIO(b"%PDF-1"), meta(b"%PDF-1"))
    (home,) = (tmp_path / "work").iterdir()
    home.rename(tmp_path / "moved")
    (home / "letter").mkdir(parents=True, mode=0o700)
    home.chmod(0o700)
    (home / "letter" / "id_rsa").write_text("PRIVATE KEY")  # what the swap would import
    with pytest.raises(StorageError, match="replaced"):
        tx.commit(VERIFICATION)
    assert not (store / FID).exists()


def test_only_a_process_holding_the_pipes_write_end_is_taken_for_an_escapee() -> None:
    """Issue #24, item 16: every process holding either end of the program's pipe was
    killed; another worker's child between fork and exec holds the daemon's read ends for a
    moment, and would have been killed with the escapee, failing that worker's letter."""
    from svarinn_daemon.adapters.escapees import kill_pipe_holders

    read, write = os.pipe()
    reader = subprocess.Popen(["sleep", "60"], pass_fds=[read])
    writer = subprocess.Popen(["sleep", "60"], pass_fds=[write])
    try:
        os.close(write)
        assert kill_pipe_holders([os.fstat(read).st_ino]) == [writer.pid]
        assert writer.wait(10) == -signal.SIGKILL
        assert reader.poll() is None
    finally:
        os.close(read)
        for process in (reader, writer):
            process.kill()
            process.wait()


def test_every_file_is_fsynced_before_the_program_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The documents are hard links to the spool's files, which the spool does not sync; a
    program may keep those very inodes (ln, mv), so the adapter syncs them first."""
    seen = tmp_path / "inodes"
    script = 'stat -c %i "$SVARINN_LETTER_DIR"/* > "$1"; echo stored'
    archive = CommandArchive(
        ["/bin/sh", "-c", script, "sh", str(seen)],
        work_directory=tmp_path / "work",
        environ=ENVIRON,
        now=lambda: T0,
    )
    synced: set[int] = set()
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        real_fsync(fd)
        synced.add(os.fstat(fd).st_ino)

    monkeypatch.setattr(os, "fsync", fsync)
    spooled = tmp_path / "letter.part"  # as the spool leaves it: written, not synced
    spooled.write_bytes(b"%PDF-1")
    tx = begin_letter(archive, FID, {"id": FID}, LetterOrigin("kommune", "v1"))
    tx.add_document("brev.pdf", spooled, meta(b"%PDF-1"))
    assert tx.commit(VERIFICATION) == "stored"
    inodes = {int(x) for x in seen.read_text().split()}
    assert spooled.stat().st_ino in inodes  # the program was given the spool's own file
    assert len(inodes) == 2  # and forsendelse.json
    assert inodes <= synced
