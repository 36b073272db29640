"""Spool files and the systemd notify protocol, on real files and a real unix socket."""

from __future__ import annotations

import hashlib
import itertools
import json
import mmap
import os
import socket
import stat
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest

from svarinn_daemon.letter.spool import BLOCK, Spool, SpoolFile, _Writer
from svarinn_daemon.service.sdnotify import Notifier


def test_spool_file_is_private_and_removable(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    spool.prepare()
    assert stat.S_IMODE((tmp_path / "spool").stat().st_mode) == 0o700
    f = spool.create("abc/../def")
    f.write(b"hello ")
    f.write(memoryview(b"world"))
    path = f.finish()
    assert path.parent == tmp_path / "spool"
    assert "/" not in path.name.replace(".", "")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes() == b"hello world"
    assert f.size == 11
    f.remove()
    assert not path.exists()


def test_spool_file_removed_when_an_error_escapes(tmp_path: Path) -> None:
    spool = Spool(tmp_path)

    def write_then_fail() -> None:
        with spool.create("x") as f:
            f.write(b"partial")
            raise RuntimeError("download broke")

    with pytest.raises(RuntimeError):
        write_then_fail()
    assert list(tmp_path.iterdir()) == []


def test_clean_leftovers_removes_only_spool_files(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.create("a").finish()
    work = spool.workdir("b")
    (work / "entry.pdf").write_bytes(b"x")
    (tmp_path / "keep.txt").write_text("not ours")
    assert spool.clean_leftovers() == 2
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


def test_notifier_is_a_no_op_without_systemd() -> None:
    notifier = Notifier({})
    assert not notifier.enabled
    assert notifier.ready("up") is False


def test_notifier_sends_datagrams(tmp_path: Path) -> None:
    path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(str(path))
        notifier = Notifier({"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "20000000"})
        assert notifier.watchdog_interval is not None
        assert notifier.watchdog_interval.total_seconds() == 10
        assert notifier.ready("2 accounts")
        assert notifier.watchdog()
        assert notifier.stopping()
        got = [server.recv(4096).decode() for _ in range(3)]
    assert got == ["READY=1\nSTATUS=2 accounts", "WATCHDOG=1", "STOPPING=1\nSTATUS=stopping"]


def test_notifier_survives_a_missing_socket(tmp_path: Path) -> None:
    assert Notifier({"NOTIFY_SOCKET": str(tmp_path / "gone")}).watchdog() is False


LARGE_SIZES = [0, 1, BLOCK - 1, BLOCK, BLOCK + 1, 3 * BLOCK + 12_345]


@pytest.mark.parametrize("hashed", [True, False], ids=["hashed", "unhashed"])
@pytest.mark.parametrize("direct", [True, False], ids=["direct", "buffered"])
@pytest.mark.parametrize("size", LARGE_SIZES)
def test_spool_round_trip_across_block_boundaries(
    tmp_path: Path, size: int, direct: bool, hashed: bool
) -> None:
    """Past the first block the writer thread takes over (O_DIRECT where allowed), and a
    second one hashes beside it; the file must hold exactly what was written, whatever the
    write sizes, and the digest be the file's."""
    data = os.urandom(size)
    digest = hashlib.sha256() if hashed else None
    f = SpoolFile(tmp_path / "letter.part", direct=direct, digest=digest)
    for start, step in zip(range(0, size, 7919 * 9), itertools.cycle([7919, 65536, BLOCK])):
        f.write(data[start : start + 7919 * 9][:step])
        f.write(data[start + step : start + 7919 * 9])
    path = f.finish()
    assert f.size == size
    assert path.stat().st_size == size
    assert hashlib.sha256(path.read_bytes()).digest() == hashlib.sha256(data).digest()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    if digest is not None:
        assert digest.digest() == hashlib.sha256(data).digest()
    assert not [t for t in threading.enumerate() if t.name.startswith("spool-")]


@pytest.mark.skipif(not Path("/dev/shm").is_dir(), reason="no tmpfs at /dev/shm")
def test_spool_on_tmpfs_falls_back_to_the_page_cache() -> None:
    """tmpfs may refuse O_DIRECT: the spool must still write every byte."""
    data = os.urandom(2 * BLOCK + 77)
    with tempfile.TemporaryDirectory(dir="/dev/shm") as tmp:
        f = Spool(Path(tmp)).create("tmpfs")
        f.write(data)
        assert f.finish().read_bytes() == data


def test_remove_stops_the_writer_and_deletes_the_file(tmp_path: Path) -> None:
    f = SpoolFile(tmp_path / "letter.part", digest=hashlib.sha256())
    f.write(os.urandom(3 * BLOCK))
    names = {t.name for t in threading.enumerate()}
    assert {"spool-writer", "spool-hash"} <= names
    f.remove()
    assert not (tmp_path / "letter.part").exists()
    assert not [t for t in threading.enumerate() if t.name.startswith("spool-")]


_FULL_DISK = """
import hashlib, json, resource, signal, sys
from pathlib import Path
from svarinn_daemon.errors import StorageError
from svarinn_daemon.letter.spool import BLOCK, SpoolFile
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (2 * BLOCK + 4096, 2 * BLOCK + 4096))
digest = hashlib.sha256() if sys.argv[3] == "hashed" else None
f = SpoolFile(Path(sys.argv[1]), direct=sys.argv[2] == "direct", digest=digest)
try:
    for _ in range(6):
        f.write(bytes(BLOCK))
    f.finish()
    print(json.dumps({"error": None}))
except StorageError as exc:
    f.remove()
    print(json.dumps({"error": str(exc), "temporary": exc.temporary}))
"""


@pytest.mark.parametrize("hashed", ["hashed", "unhashed"])
@pytest.mark.parametrize("direct", ["direct", "buffered"])
def test_a_write_error_in_the_writer_thread_is_a_storage_error(
    tmp_path: Path, direct: str, hashed: str
) -> None:
    """A real write failure (the file size limit: EFBIG) found by the writer thread comes
    out of the next write() or finish() as a temporary StorageError naming the file."""
    path = tmp_path / "letter.part"
    run = subprocess.run(
        [sys.executable, "-c", _FULL_DISK, str(path), direct, hashed],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    result = json.loads(run.stdout)
    assert result["error"] is not None, "the write past the limit must fail"
    assert str(path) in result["error"]
    assert "File too large" in result["error"]
    assert result["temporary"] is True
    assert not path.exists()


def test_a_write_the_disk_refuses_under_o_direct_is_done_through_the_page_cache(
    tmp_path: Path,
) -> None:
    """Some filesystems take O_DIRECT at open and refuse the writes (EINVAL): the writer
    then switches it off and writes the same bytes again. A misaligned buffer makes a real
    kernel refuse an O_DIRECT write."""
    path = tmp_path / "letter.part"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        writer = _Writer(fd, [], direct=True)
        if not writer._direct:
            pytest.skip("this filesystem refuses O_DIRECT outright")
        data = os.urandom(BLOCK + 1)
        buffer = mmap.mmap(-1, BLOCK + 1)
        buffer[:] = data
        with memoryview(buffer) as view:
            writer._write(view[1:])  # one byte off the page: EINVAL under O_DIRECT
        writer.stop()
        assert not writer._direct
    finally:
        os.close(fd)
    assert path.read_bytes() == data[1:]


class _FailingDigest:
    """A digest that breaks on its second block: neither spool thread may hang for it."""

    def __init__(self) -> None:
        self.calls = 0

    def update(self, data: object) -> None:
        self.calls += 1
        if self.calls == 2:
            raise ValueError("digest broke")


@pytest.mark.timeout(60)
def test_a_hashing_thread_that_fails_is_a_storage_error_not_a_hang(tmp_path: Path) -> None:
    from svarinn_daemon.errors import StorageError

    f = SpoolFile(tmp_path / "letter.part", digest=_FailingDigest())  # type: ignore[arg-type]

    def fill() -> None:
        for _ in range(8):
            f.write(bytes(BLOCK))
        f.finish()

    with pytest.raises(StorageError, match="digest broke"):
        fill()
    f.remove()
    assert not [t for t in threading.enumerate() if t.name.startswith("spool-")]


@pytest.mark.timeout(60)
def test_a_spool_thread_that_cannot_start_is_a_storage_error_and_leaves_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Threads exhausted (what start() raises then) when the hashing thread starts: the
    writer thread already started ends too, and the letter gets a StorageError."""
    from svarinn_daemon.errors import StorageError

    real_start = threading.Thread.start

    def start(thread: threading.Thread) -> None:
        if thread.name == "spool-hash":
            raise RuntimeError("can't start new thread")
        real_start(thread)

    monkeypatch.setattr(threading.Thread, "start", start)
    f = SpoolFile(tmp_path / "letter.part", digest=hashlib.sha256())
    with pytest.raises(StorageError, match="cannot start a spool thread"):
        f.write(bytes(BLOCK + 1))
    f.remove()
    for thread in threading.enumerate():
        if thread.name.startswith("spool-"):
            thread.join(30)  # told to end: it does not wait for anything else
    assert not [t for t in threading.enumerate() if t.name.startswith("spool-")]
    assert not (tmp_path / "letter.part").exists()
