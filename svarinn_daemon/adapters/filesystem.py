"""The built-in ``filesystem`` archive: one directory per letter, appearing atomically.

Layout::

    <root>/<forsendelse-id>/forsendelse.json    the forsendelse (normalised + raw) + verification
    <root>/<forsendelse-id>/<document>          each document, sanitised unique file name
    <root>/.tmp-<forsendelse-id>-<random>.<worker>/   a letter being written (never read)
    <root>/.tmp-probe-<random>.<worker>               a probe (written, fsynced, removed)

A letter is built in a ``.tmp-`` directory under root and renamed into place, after every
file and the directory are fsynced: readers see a whole letter or none. The rename is the
commit; a ``<root>/<forsendelse-id>`` directory holding its own ``forsendelse.json`` means
"already archived" and is never written again. Anything else under that name (a dangling
symlink, a file, a directory without the record) is not trusted as an archived letter, and
not touched either: the letter waits, with an error that says what is in the way.

Documents are written and leftovers removed by ``adapters/store.py``, as for the adapters that
hand a letter on. Every operation goes through directory file descriptors (``dir_fd=``,
``O_NOFOLLOW``):
root is opened once per operation and the letter's directory once per transaction, so a
neighbour who swaps a directory for a symlink mid-way cannot redirect a write, a link or a
removal elsewhere. ``<worker>`` is a short hash of the daemon's worker id: at its restart a
worker removes its own ``.tmp-`` leftovers at once (it cannot be writing them any more, and
they hold plaintext documents), other workers' only once they are older than the lease.

Errors: permanent only when this letter can never be stored here (a forsendelse id that is
not a safe directory name, a document name the filesystem refuses, metadata that is not
JSON). Everything about the disk or the directory -- full, quota, permissions, read-only,
unmounted, I/O errors -- is temporary: fixing it makes the letter importable, whereas a
permanent report would send it to paper.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any, BinaryIO

from svarinn_daemon.adapters.base import AdapterContext, DocumentMetadata, VerificationRecord
from svarinn_daemon.adapters.dirfd import METADATA_FILE, committed, describe
from svarinn_daemon.adapters.options import AdapterOptions
from svarinn_daemon.adapters.store import (
    CHUNK,
    NEW_FILE,
    DocumentStore,
    TempDirectories,
    disk_error,
    safe_id,
)
from svarinn_daemon.common import Clock, utc_now
from svarinn_daemon.errors import ArchiveError

__all__ = ["METADATA_FILE", "FilesystemArchive", "FilesystemTransaction", "create_adapter"]

PROBE_SIZE = 256 * 1024
# Renaming a directory onto something that is in the way.
_IN_THE_WAY = {errno.EEXIST, errno.ENOTEMPTY, errno.ENOTDIR, errno.EISDIR}


class FilesystemArchive:
    """Archive letters as directories under ``root``."""

    def __init__(
        self,
        root: Path,
        *,
        file_mode: int = 0o640,
        dir_mode: int = 0o750,
        hardlink: bool = True,
        owner: str | None = None,
        now: Clock = utc_now,
    ):
        # The root may be a link (a share mounted elsewhere); nothing below it is followed.
        self.temps = TempDirectories(root, owner=owner, follow_root=True)
        self.root = self.temps.root
        self.owner_tag = self.temps.tag  # tags this worker's temporary directories
        self.file_mode = file_mode
        self.dir_mode = dir_mode
        self.hardlink = hardlink
        self._now = now

    def __repr__(self) -> str:
        return f"FilesystemArchive(root={str(self.root)!r})"

    def has(self, forsendelse_id: str) -> str | None:
        """The letter's directory when it holds this archive's committed record (a real
        directory with a regular ``forsendelse.json``); a name alone is not enough."""
        target = self.root / safe_id(forsendelse_id)
        try:
            root_fd = self.temps.open_root()
        except ArchiveError:
            if not self.root.exists():
                return None
            raise
        try:
            return str(target) if committed(root_fd, forsendelse_id) else None
        except OSError as exc:
            raise disk_error(exc, f"cannot look for {target}") from exc
        finally:
            os.close(root_fd)

    def begin(self, forsendelse_id: str, metadata: Mapping[str, Any]) -> FilesystemTransaction:
        safe_id(forsendelse_id)
        self._ensure_root()
        root_fd = self.temps.open_root()
        try:
            name, temp_fd = self.temps.create(root_fd, forsendelse_id)
        except BaseException:
            os.close(root_fd)
            raise
        return FilesystemTransaction(
            self, forsendelse_id, dict(metadata), name, root_fd=root_fd, temp_fd=temp_fd
        )

    def probe(self) -> bool:
        """Whether a letter could be written now: create, fill, fsync and remove a file
        under root (``PROBE_SIZE`` bytes, so a disk with only inodes left fails too)."""
        self._ensure_root()
        name = self.temps.probe_name()
        root_fd = self.temps.open_root()
        try:
            fd = os.open(name, NEW_FILE, 0o600, dir_fd=root_fd)
            try:
                block = bytes(CHUNK)
                left = PROBE_SIZE
                while left > 0:
                    left -= os.write(fd, block[: min(left, CHUNK)])
                os.fsync(fd)
            finally:
                os.close(fd)
                with contextlib.suppress(OSError):
                    os.unlink(name, dir_fd=root_fd)
            os.fsync(root_fd)
        except OSError as exc:
            raise disk_error(exc, f"cannot write a probe file under {self.root}") from exc
        finally:
            os.close(root_fd)
        return True

    def _ensure_root(self) -> None:
        if self.root.is_dir():
            return
        if not self.root.parent.is_dir():
            raise ArchiveError(
                f"archive root {self.root} cannot be created: {self.root.parent} does not "
                "exist (is the archive share mounted?)",
                temporary=True,
            )
        try:
            os.mkdir(self.root, self.dir_mode)
            os.chmod(self.root, self.dir_mode)
        except FileExistsError:
            pass
        except OSError as exc:
            raise disk_error(exc, f"cannot create archive root {self.root}") from exc

    def cleanup(self, older_than: timedelta) -> int:
        """Remove ``.tmp-`` directories of interrupted transactions: this worker's whatever
        their age, others' once older than ``older_than``; return how many."""
        return self.temps.cleanup(older_than)

    def close(self) -> None:
        """Nothing to release: every transaction holds its own state."""


class FilesystemTransaction:
    """One letter being written into a temporary directory."""

    def __init__(
        self,
        archive: FilesystemArchive,
        forsendelse_id: str,
        metadata: dict[str, Any],
        name: str,
        *,
        root_fd: int,
        temp_fd: int,
    ):
        self.archive = archive
        self.forsendelse_id = forsendelse_id
        self.metadata = metadata
        self.temp = archive.root / name
        self.target = archive.root / forsendelse_id
        self._root_fd = root_fd
        self._temp_fd = temp_fd
        self.store = DocumentStore(
            temp_fd,
            self.temp,
            forsendelse_id,
            file_mode=archive.file_mode,
            durable=True,
            hardlink=archive.hardlink,
        )
        self._done = False

    def _check_open(self) -> None:
        if self._done:
            raise ArchiveError(
                f"transaction for {self.forsendelse_id} is already finished", temporary=True
            )

    def add_document(self, name: str, content: Path | BinaryIO, metadata: DocumentMetadata) -> str:
        self._check_open()
        return self.store.add(name, content, metadata)

    def commit(self, verification: VerificationRecord) -> str:
        self._check_open()
        try:
            self.store.write_record(self.metadata, verification, self.archive._now())
            os.fchmod(self._temp_fd, self.archive.dir_mode)
            os.fsync(self._temp_fd)
            if not committed(self._root_fd, self.forsendelse_id):
                self._rename_into_place()
        except OSError as exc:
            self.abort()
            raise disk_error(exc, f"cannot commit {self.target}") from exc
        except ArchiveError:
            self.abort()
            raise
        self._finish()  # removes the temporary directory when the letter was already there
        return str(self.target)

    def _rename_into_place(self) -> None:
        """The commit. Something else at the target is never replaced and never trusted."""
        try:
            os.rename(
                self.temp.name,
                self.forsendelse_id,
                src_dir_fd=self._root_fd,
                dst_dir_fd=self._root_fd,
            )
        except OSError as exc:
            if exc.errno not in _IN_THE_WAY:
                raise
            if committed(self._root_fd, self.forsendelse_id):
                return  # another worker committed it first: ours is removed by _finish
            raise ArchiveError(
                f"cannot commit {self.target}: something that is not an archived letter is "
                f"in the way ({describe(self._root_fd, self.forsendelse_id)}); move it away "
                "and the letter is imported at its next retry",
                temporary=True,
            ) from exc
        os.fsync(self._root_fd)

    def abort(self) -> None:
        self._finish()

    def _finish(self) -> None:
        if self._done:
            return
        self._done = True
        with contextlib.suppress(OSError):
            shutil.rmtree(self.temp.name, dir_fd=self._root_fd)
        os.close(self._temp_fd)
        os.close(self._root_fd)
        self.archive.temps.forget(self.temp.name)


def create_adapter(options: Mapping[str, Any], context: AdapterContext) -> FilesystemArchive:
    """Entry point ``filesystem``: options ``root``, ``file_mode``, ``dir_mode``, ``hardlink``."""
    reader = AdapterOptions(options, context)
    root = reader.path("root", context.state_directory / "archive")
    file_mode = reader.mode("file_mode", 0o640, required_bits=0o600)
    dir_mode = reader.mode("dir_mode", 0o750, required_bits=0o700)
    hardlink = reader.boolean("hardlink", True)
    reader.finish()
    return FilesystemArchive(
        root,
        file_mode=file_mode,
        dir_mode=dir_mode,
        hardlink=hardlink,
        owner=context.worker_id,
    )
