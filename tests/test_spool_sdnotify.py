"""Spool files and the systemd notify protocol, on real files and a real unix socket."""

from __future__ import annotations

import socket
import stat
from pathlib import Path

import pytest

from svarinn_daemon.sdnotify import Notifier
from svarinn_daemon.spool import Spool


def test_spool_file_is_private_durable_and_removable(tmp_path: Path) -> None:
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
