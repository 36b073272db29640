"""The filesystem adapter: layout, forsendelse.json, modes, atomicity, leftovers, errors."""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from svarinn_daemon.adapters import AdapterContext, DocumentMetadata, VerificationRecord
from svarinn_daemon.adapters.filesystem import FilesystemArchive, create_adapter
from svarinn_daemon.adapters.store import disk_error
from svarinn_daemon.errors import ArchiveError, ConfigError
from tests.support.fault_support import fill, small_tmpfs

FID = "43ee26b7-838b-4f99-b81c-d21551b621d8"
T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def meta(data: bytes, **changes: object) -> DocumentMetadata:
    values: dict[str, object] = {
        "mimetype": "application/pdf",
        "sha256": hashlib.sha256(data).hexdigest(),
        "size": len(data),
        "verified": True,
        "filmetadata_name": "small.pdf",
    }
    values.update(changes)
    return DocumentMetadata(**values)  # type: ignore[arg-type]


VERIFICATION = VerificationRecord(
    sha256="9a" * 32,
    size=1536,
    verified=False,
    file_type="zip",
    encrypted=True,
    downloaded_at=T0,
    verified_at=T0 + timedelta(seconds=2),
    notes=("zip entry 'extra.txt' is not in filmetadata",),
)


def context(tmp_path: Path) -> AdapterContext:
    return AdapterContext("default", tmp_path / "state", tmp_path / "etc", tmp_path / "c.toml")


def archive(tmp_path: Path, **options: object) -> FilesystemArchive:
    return create_adapter(options, context(tmp_path))


def test_letter_layout_and_metadata(tmp_path: Path) -> None:
    arch = FilesystemArchive(tmp_path / "archive", now=lambda: T0 + timedelta(seconds=3))
    metadata = {"id": FID, "tittel": "Søknad", "filmetadata": [{"filnavn": "small.pdf"}]}
    tx = arch.begin(FID, metadata)
    assert tx.add_document("docs/small.pdf", io.BytesIO(b"%PDF-1"), meta(b"%PDF-1")) == "small.pdf"
    assert tx.add_document("../x/extra.txt", io.BytesIO(b"hi"), meta(b"hi")) == "extra.txt"
    ref = tx.commit(VERIFICATION)

    letter = tmp_path / "archive" / FID
    assert ref == str(letter)
    assert sorted(p.name for p in letter.iterdir()) == [
        "extra.txt",
        "forsendelse.json",
        "small.pdf",
    ]
    assert (letter / "small.pdf").read_bytes() == b"%PDF-1"
    record = json.loads((letter / "forsendelse.json").read_text("utf-8"))
    assert record["format"] == "svarinn-daemon/forsendelse/1"
    assert record["forsendelse_id"] == FID
    assert record["forsendelse"] == metadata
    assert record["archived_at"] == "2026-01-02T03:04:08+00:00"
    assert record["verification"] == {
        "sha256": "9a" * 32,
        "size": 1536,
        "verified": False,
        "file_type": "zip",
        "encrypted": True,
        "downloaded_at": "2026-01-02T03:04:05+00:00",
        "verified_at": "2026-01-02T03:04:07+00:00",
        "notes": ["zip entry 'extra.txt' is not in filmetadata"],
    }
    assert record["documents"][0] == {
        "file": "small.pdf",
        "name": "docs/small.pdf",
        **meta(b"%PDF-1").to_json(),
    }
    assert [p.name for p in (tmp_path / "archive").iterdir()] == [FID]  # no leftovers


def test_nothing_is_visible_before_commit(tmp_path: Path) -> None:
    arch = FilesystemArchive(tmp_path / "archive")
    tx = arch.begin(FID, {})
    tx.add_document("a.pdf", io.BytesIO(b"x"), meta(b"x"))
    assert arch.has(FID) is None
    assert not (tmp_path / "archive" / FID).exists()
    [temp] = (tmp_path / "archive").iterdir()
    assert temp.name.startswith(f".tmp-{FID}-")
    assert stat.S_IMODE(temp.stat().st_mode) == 0o700


@pytest.mark.parametrize("hardlink", [True, False])
def test_modes_and_hardlinks(tmp_path: Path, hardlink: bool) -> None:
    arch = archive(
        tmp_path, root=str(tmp_path / "a"), file_mode="0600", dir_mode=0o700, hardlink=hardlink
    )
    source = tmp_path / "spool"
    source.write_bytes(b"%PDF-")
    source.chmod(0o600)
    tx = arch.begin(FID, {})
    tx.add_document("a.pdf", source, meta(b"%PDF-"))
    tx.commit(VERIFICATION)
    letter = tmp_path / "a" / FID
    assert stat.S_IMODE(letter.stat().st_mode) == 0o700
    for file in letter.iterdir():
        assert stat.S_IMODE(file.stat().st_mode) == 0o600
    assert (letter / "a.pdf").stat().st_nlink == (2 if hardlink else 1)
    assert source.read_bytes() == b"%PDF-"


@pytest.mark.parametrize("hardlink", [True, False])
def test_what_the_archive_keeps_is_fsynced_before_the_commit(
    tmp_path: Path, hardlink: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The spool does not fsync its files: the archive must, for a hard link as for a copy,
    with the letter's directory, before the rename that commits it, then the root."""
    arch = archive(tmp_path, root=str(tmp_path / "a"), hardlink=hardlink)
    source = tmp_path / "spool"
    source.write_bytes(b"%PDF-")
    steps: list[tuple[str, int]] = []  # ("fsync", inode) and ("rename", 0), in order
    real_fsync, real_rename = os.fsync, os.rename

    def fsync(fd: int) -> None:
        real_fsync(fd)
        steps.append(("fsync", os.fstat(fd).st_ino))

    def rename(*args: object, **kwargs: object) -> None:
        real_rename(*args, **kwargs)  # type: ignore[arg-type]
        steps.append(("rename", 0))

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "rename", rename)
    tx = arch.begin(FID, {})
    tx.add_document("a.pdf", source, meta(b"%PDF-"))
    tx.commit(VERIFICATION)
    letter = tmp_path / "a" / FID
    assert ("rename", 0) in steps
    before = {ino for what, ino in steps[: steps.index(("rename", 0))] if what == "fsync"}
    kept = {p.stat().st_ino for p in letter.iterdir()} | {letter.stat().st_ino}
    assert kept <= before
    assert (letter / "a.pdf").stat().st_ino == source.stat().st_ino or not hardlink
    assert steps[-1] == ("fsync", (tmp_path / "a").stat().st_ino)


def test_default_modes_and_root(tmp_path: Path) -> None:
    arch = archive(tmp_path)
    assert arch.root == tmp_path / "state" / "archive"
    (tmp_path / "state").mkdir()
    tx = arch.begin(FID, {})
    tx.add_document("a.pdf", io.BytesIO(b"x"), meta(b"x"))
    tx.commit(VERIFICATION)
    letter = arch.root / FID
    assert stat.S_IMODE(arch.root.stat().st_mode) == 0o750
    assert stat.S_IMODE(letter.stat().st_mode) == 0o750
    assert stat.S_IMODE((letter / "a.pdf").stat().st_mode) == 0o640
    assert stat.S_IMODE((letter / "forsendelse.json").stat().st_mode) == 0o640


def test_relative_root_is_relative_to_the_config_directory(tmp_path: Path) -> None:
    assert archive(tmp_path, root="arkiv").root == tmp_path / "etc" / "arkiv"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"file_mode": "rw-r-----"}, "archives.default.file_mode: must be an octal mode"),
        ({"file_mode": "1777"}, "between 0000 and 0777"),
        ({"file_mode": "0440"}, "0440 must grant the owner at least 0600"),
        ({"dir_mode": "0600"}, "0600 must grant the owner at least 0700"),
        ({"dir_mode": True}, "archives.default.dir_mode: must be an octal mode"),
        ({"root": 5}, "archives.default.root: must be a path"),
        ({"hardlink": "yes"}, "archives.default.hardlink: must be true or false"),
        ({"rot": "/x"}, "archives.default.rot: unknown option .*did you mean 'root'"),
    ],
)
def test_bad_options(tmp_path: Path, options: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        archive(tmp_path, **options)
    assert info.value.source == str(tmp_path / "c.toml")


def test_existing_letter_is_never_written_again(tmp_path: Path) -> None:
    arch = FilesystemArchive(tmp_path / "archive")
    first = arch.begin(FID, {"n": 1})
    first.add_document("a.pdf", io.BytesIO(b"one"), meta(b"one"))
    first.commit(VERIFICATION)
    before = (arch.root / FID / "forsendelse.json").read_bytes()
    second = arch.begin(FID, {"n": 2})
    second.add_document("b.pdf", io.BytesIO(b"two"), meta(b"two"))
    assert second.commit(VERIFICATION) == str(arch.root / FID)
    assert (arch.root / FID / "forsendelse.json").read_bytes() == before
    assert sorted(p.name for p in arch.root.iterdir()) == [FID]


def test_cleanup_removes_only_stale_leftovers_of_other_workers(tmp_path: Path) -> None:
    crashed = FilesystemArchive(tmp_path / "archive", owner="worker-b")
    crashed.begin(FID, {}).add_document("a.pdf", io.BytesIO(b"x"), meta(b"x"))  # never ended
    arch = FilesystemArchive(tmp_path / "archive", owner="worker-a")
    in_progress = arch.begin("other", {})
    assert arch.cleanup(timedelta(hours=1)) == 0  # too young: worker-b may still write it
    assert arch.cleanup(timedelta(0)) == 1
    remaining = list(arch.root.iterdir())
    assert [p.name.startswith(".tmp-other-") for p in remaining] == [True]
    in_progress.abort()
    assert list(arch.root.iterdir()) == []
    old = arch.begin("third", {})
    old_dir = old.temp
    os.utime(old_dir, (0, 0))
    assert FilesystemArchive(arch.root, owner="worker-c").cleanup(timedelta(hours=1)) == 1


def test_a_restarted_worker_removes_its_own_leftovers_at_once(tmp_path: Path) -> None:
    """A crash leaves plaintext in ``.tmp-``; the same worker starting again cannot be
    writing it any more, so it goes now, not a lease later (regression: it stayed)."""
    crashed = FilesystemArchive(tmp_path / "archive", owner="worker-a")
    crashed.begin(FID, {}).add_document("a.pdf", io.BytesIO(b"x"), meta(b"x"))  # never ended
    other = FilesystemArchive(tmp_path / "archive", owner="worker-b")
    other.begin("other", {}).add_document("b.pdf", io.BytesIO(b"y"), meta(b"y"))
    restarted = FilesystemArchive(tmp_path / "archive", owner="worker-a")
    assert restarted.cleanup(timedelta(hours=1)) == 1
    (left,) = restarted.root.iterdir()
    assert left.name.startswith(".tmp-other-")


def test_unsafe_forsendelse_id_is_permanent(tmp_path: Path) -> None:
    arch = FilesystemArchive(tmp_path / "archive")
    for bad in ("../x", ".hidden", "", "a/b", "x" * 200):
        with pytest.raises(ArchiveError, match=r"not usable as a directory name") as info:
            arch.has(bad)
        assert info.value.permanent


def test_missing_mount_is_temporary(tmp_path: Path) -> None:
    (tmp_path / "not-a-dir").write_text("")
    arch = FilesystemArchive(tmp_path / "not-a-dir" / "archive")
    with pytest.raises(ArchiveError, match=r"is the archive share mounted") as info:
        arch.begin(FID, {})
    assert info.value.temporary


def test_metadata_that_is_not_json_is_permanent_and_cleaned_up(tmp_path: Path) -> None:
    arch = FilesystemArchive(tmp_path / "archive")
    tx = arch.begin(FID, {"when": datetime.now(UTC)})
    with pytest.raises(ArchiveError, match=r"cannot be written as JSON") as info:
        tx.commit(VERIFICATION)
    assert info.value.permanent
    assert list(arch.root.iterdir()) == []


def test_the_record_has_one_top_level_key_per_line(tmp_path: Path) -> None:
    """Written by json's C encoder, a key and its compact value per line; UTF-8 kept."""
    arch = FilesystemArchive(tmp_path / "archive")
    metadata = {"id": FID, "tittel": "Søknad\nom løyve", "lister": [1, {"a": None}]}
    arch.begin(FID, metadata).commit(VERIFICATION)
    text = (arch.root / FID / "forsendelse.json").read_text("utf-8")
    lines = text.splitlines()
    assert (lines[0], lines[-1]) == ("{", "}")
    keys = [next(iter(json.loads("{" + line.rstrip(",") + "}"))) for line in lines[1:-1]]
    assert keys == [
        "format",
        "forsendelse_id",
        "archived_at",
        "daemon_version",
        "verification",
        "documents",
        "forsendelse",
    ]
    assert "Søknad\\nom løyve" in text
    assert json.loads(text)["forsendelse"] == metadata


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_metadata_json_cannot_carry_is_permanent(tmp_path: Path, value: float) -> None:
    arch = FilesystemArchive(tmp_path / "archive")
    tx = arch.begin(FID, {"size": value})
    with pytest.raises(ArchiveError, match=r"cannot be written as JSON") as info:
        tx.commit(VERIFICATION)
    assert info.value.permanent


def test_missing_source_file_is_temporary(tmp_path: Path) -> None:
    arch = FilesystemArchive(tmp_path / "archive")
    tx = arch.begin(FID, {})
    with pytest.raises(ArchiveError) as info:
        tx.add_document("a.pdf", tmp_path / "gone", meta(b""))
    assert info.value.temporary
    tx.abort()


@pytest.mark.parametrize(
    ("code", "name_related", "temporary"),
    [
        (errno.ENOSPC, False, True),
        (errno.EDQUOT, False, True),
        (errno.EACCES, False, True),
        (errno.EROFS, False, True),
        (errno.EIO, False, True),
        (errno.ENAMETOOLONG, True, False),
        (errno.EILSEQ, True, False),
        (errno.ENAMETOOLONG, False, True),
    ],
)
def test_os_error_classification(code: int, name_related: bool, temporary: bool) -> None:
    error = disk_error(
        OSError(code, os.strerror(code)), "cannot write x", name_related=name_related
    )
    assert error.temporary is temporary
    assert errno.errorcode[code] in str(error)


@pytest.mark.parametrize("kind", ["dangling-link", "link-to-letter", "file", "dir-without-record"])
def test_only_a_committed_record_counts_as_archived(tmp_path: Path, kind: str) -> None:
    """Something else at ``<root>/<id>`` is neither trusted nor replaced; the letter waits
    with an error that says what is in the way (temporary: moving it away fixes it)."""
    arch = FilesystemArchive(tmp_path / "archive")
    arch.root.mkdir()
    real = FilesystemArchive(tmp_path / "elsewhere")
    tx = real.begin(FID, {})
    tx.add_document("a.pdf", io.BytesIO(b"one"), meta(b"one"))
    tx.commit(VERIFICATION)
    planted = arch.root / FID
    if kind == "dangling-link":
        planted.symlink_to(tmp_path / "nowhere")
    elif kind == "link-to-letter":
        planted.symlink_to(real.root / FID)  # a link to a real letter is still not ours
    elif kind == "file":
        planted.write_bytes(b"x")
    else:
        planted.mkdir()
        (planted / "notes.txt").write_text("someone's")
    assert arch.has(FID) is None
    tx = arch.begin(FID, {})
    tx.add_document("b.pdf", io.BytesIO(b"two"), meta(b"two"))
    with pytest.raises(ArchiveError, match="not an archived letter is in the way") as info:
        tx.commit(VERIFICATION)
    assert info.value.temporary
    expected = {
        "dangling-link": "a symbolic link",
        "link-to-letter": "a symbolic link",
        "file": "a file",
        "dir-without-record": "a directory without forsendelse.json",
    }
    assert f"({expected[kind]})" in str(info.value)
    assert sorted(p.name for p in arch.root.iterdir()) == [FID]  # ours removed, theirs kept
    assert (real.root / FID / "a.pdf").read_bytes() == b"one"
    if kind == "dir-without-record":
        assert [p.name for p in planted.iterdir()] == ["notes.txt"]
        (planted / "notes.txt").unlink()
    planted.unlink() if planted.is_symlink() or planted.is_file() else planted.rmdir()
    tx = arch.begin(FID, {})
    tx.add_document("b.pdf", io.BytesIO(b"two"), meta(b"two"))
    assert tx.commit(VERIFICATION) == str(planted)
    assert arch.has(FID) == str(planted)


def test_tmp_symlinks_in_the_root_are_left_alone_and_not_fatal(tmp_path: Path) -> None:
    arch = FilesystemArchive(tmp_path / "archive", owner="worker-a")
    arch.root.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious.txt").write_text("keep")
    own_name = f".tmp-{FID}-abcdef.{arch.owner_tag}"
    (arch.root / own_name).symlink_to(outside)
    (arch.root / ".tmp-file").write_text("a file, not ours")
    crashed = FilesystemArchive(arch.root, owner="worker-a").begin("crashed", {})
    crashed.add_document("a.pdf", io.BytesIO(b"x"), meta(b"x"))  # never ended
    assert arch.cleanup(timedelta(0)) == 1  # the real leftover only
    assert (outside / "precious.txt").read_text() == "keep"
    assert sorted(p.name for p in arch.root.iterdir()) == sorted([own_name, ".tmp-file"])


def test_a_directory_swapped_mid_transaction_cannot_redirect_writes(tmp_path: Path) -> None:
    """The transaction writes through its directory's descriptor: replacing the directory
    by a symlink to somewhere else leaves that somewhere else untouched."""
    arch = FilesystemArchive(tmp_path / "archive")
    tx = arch.begin(FID, {})
    moved = tmp_path / "moved"
    os.rename(tx.temp, moved)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    tx.temp.symlink_to(elsewhere)
    tx.add_document("a.pdf", io.BytesIO(b"one"), meta(b"one"))
    assert list(elsewhere.iterdir()) == []
    assert (moved / "a.pdf").read_bytes() == b"one"
    tx.abort()
    assert list(elsewhere.iterdir()) == []
    assert tx.temp.is_symlink()  # a link at the name is not ours to remove


def test_probe_writes_fsyncs_and_removes_a_file_and_leaves_nothing(tmp_path: Path) -> None:
    archive = FilesystemArchive(tmp_path / "archive", owner="w")
    assert archive.probe() is True
    assert list((tmp_path / "archive").iterdir()) == []  # created on the way, left empty


def test_probe_of_a_full_disk_is_a_temporary_archive_error(tmp_path: Path) -> None:
    with small_tmpfs(tmp_path / "archive", "1m") as root:
        filler = fill(root, leave=8 * 1024)
        archive = FilesystemArchive(root, owner="w")
        with pytest.raises(ArchiveError, match="ENOSPC") as info:
            archive.probe()
        assert info.value.temporary
        assert sorted(p.name for p in root.iterdir()) == ["filler"]
        filler.unlink()
        assert archive.probe() is True


def test_a_probe_cut_short_by_a_kill_is_cleaned_up_by_its_worker(tmp_path: Path) -> None:
    archive = FilesystemArchive(tmp_path, owner="w")
    mine = tmp_path / f".tmp-probe-0123456789ab.{archive.owner_tag}"
    theirs = tmp_path / ".tmp-probe-0123456789ab.someoneelse"
    mine.write_bytes(b"\0" * 10)
    theirs.write_bytes(b"\0" * 10)
    assert archive.cleanup(timedelta(hours=1)) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [theirs.name]
