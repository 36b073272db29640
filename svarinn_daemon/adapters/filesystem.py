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

Every operation goes through directory file descriptors (``dir_fd=``, ``O_NOFOLLOW``):
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
import io
import os
import re
import secrets
import shutil
import stat
import threading
import time
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any, BinaryIO

from svarinn_daemon.adapters.base import AdapterContext, DocumentMetadata, VerificationRecord
from svarinn_daemon.adapters.dirfd import (
    DIR_FLAGS,
    METADATA_FILE,
    NOFOLLOW_DIR,
    committed,
    describe,
    finish_file,
)
from svarinn_daemon.adapters.names import NameAllocator
from svarinn_daemon.adapters.options import AdapterOptions
from svarinn_daemon.adapters.staging import letter_record, owner_tag
from svarinn_daemon.common import Clock, utc_now
from svarinn_daemon.errors import ArchiveError
from svarinn_daemon.logs import get_logger

__all__ = ["METADATA_FILE", "FilesystemArchive", "FilesystemTransaction", "create_adapter"]

TEMP_PREFIX = ".tmp-"
PROBE_PREFIX = f"{TEMP_PREFIX}probe-"
PROBE_SIZE = 256 * 1024
CHUNK = 1024 * 1024
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")
# Errors tied to one letter's names: retrying the same letter cannot help.
_NAME_ERRNOS = {errno.ENAMETOOLONG, errno.EILSEQ, errno.EINVAL}
# Renaming a directory onto something that is in the way.
_IN_THE_WAY = {errno.EEXIST, errno.ENOTEMPTY, errno.ENOTDIR, errno.EISDIR}

log = get_logger(__name__)


def _error(exc: OSError, what: str, *, name_related: bool = False) -> ArchiveError:
    code = errno.errorcode.get(exc.errno or 0, "unknown")
    permanent = name_related and exc.errno in _NAME_ERRNOS
    return ArchiveError(f"{what}: {exc.strerror or exc} ({code})", temporary=not permanent)


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
        self.root = root.absolute()
        # Tags this process's temporary directories; see the module docstring.
        self.owner_tag = owner_tag(owner)
        self.file_mode = file_mode
        self.dir_mode = dir_mode
        self.hardlink = hardlink
        self._now = now
        self._active: set[Path] = set()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"FilesystemArchive(root={str(self.root)!r})"

    def _target(self, forsendelse_id: str) -> Path:
        if not _SAFE_ID.fullmatch(forsendelse_id):
            raise ArchiveError(
                f"forsendelse id {forsendelse_id[:80]!r} is not usable as a directory name",
                temporary=False,
            )
        return self.root / forsendelse_id

    def has(self, forsendelse_id: str) -> str | None:
        """The letter's directory when it holds this archive's committed record (a real
        directory with a regular ``forsendelse.json``); a name alone is not enough."""
        target = self._target(forsendelse_id)
        try:
            root_fd = os.open(self.root, DIR_FLAGS)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise _error(exc, f"cannot open archive root {self.root}") from exc
        try:
            return str(target) if committed(root_fd, forsendelse_id) else None
        except OSError as exc:
            raise _error(exc, f"cannot look for {target}") from exc
        finally:
            os.close(root_fd)

    def begin(self, forsendelse_id: str, metadata: Mapping[str, Any]) -> FilesystemTransaction:
        target = self._target(forsendelse_id)
        self._ensure_root()
        name = f"{TEMP_PREFIX}{forsendelse_id}-{secrets.token_hex(6)}.{self.owner_tag}"
        temp = self.root / name
        try:
            root_fd = os.open(self.root, DIR_FLAGS)
        except OSError as exc:
            raise _error(exc, f"cannot open archive root {self.root}") from exc
        try:
            os.mkdir(name, 0o700, dir_fd=root_fd)
            temp_fd = os.open(name, NOFOLLOW_DIR, dir_fd=root_fd)
        except OSError as exc:
            os.close(root_fd)
            raise _error(exc, f"cannot create {temp}") from exc
        with self._lock:
            self._active.add(temp)
        return FilesystemTransaction(
            self, forsendelse_id, dict(metadata), temp, target, root_fd=root_fd, temp_fd=temp_fd
        )

    def probe(self) -> bool:
        """Whether a letter could be written now: create, fill, fsync and remove a file
        under root (``PROBE_SIZE`` bytes, so a disk with only inodes left fails too)."""
        self._ensure_root()
        name = f"{PROBE_PREFIX}{secrets.token_hex(6)}.{self.owner_tag}"
        try:
            root_fd = os.open(self.root, DIR_FLAGS)
        except OSError as exc:
            raise _error(exc, f"cannot open archive root {self.root}") from exc
        try:
            fd = os.open(name, _NEW_FILE, 0o600, dir_fd=root_fd)
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
            raise _error(exc, f"cannot write a probe file under {self.root}") from exc
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
            raise _error(exc, f"cannot create archive root {self.root}") from exc

    def _forget(self, temp: Path) -> None:
        with self._lock:
            self._active.discard(temp)

    def cleanup(self, older_than: timedelta) -> int:
        """Remove ``.tmp-`` directories of interrupted transactions: this worker's whatever
        their age, others' once older than ``older_than``; return how many."""
        limit = time.time() - older_than.total_seconds()
        removed = 0
        try:
            root_fd = os.open(self.root, DIR_FLAGS)
        except FileNotFoundError:
            return 0
        except OSError as exc:
            raise _error(exc, f"cannot open archive root {self.root}") from exc
        try:
            try:
                names = [n for n in os.listdir(root_fd) if n.startswith(TEMP_PREFIX)]
            except OSError as exc:
                raise _error(exc, f"cannot list {self.root}") from exc
            with self._lock:
                active = set(self._active)
            for name in names:
                if self.root / name not in active and self._remove_leftover(
                    root_fd, name, own=name.endswith(f".{self.owner_tag}"), limit=limit
                ):
                    removed += 1
        finally:
            os.close(root_fd)
        return removed

    def _remove_leftover(self, root_fd: int, name: str, *, own: bool, limit: float) -> bool:
        """Remove one interrupted transaction's directory. Whatever else carries the prefix
        (a symlink, a file) was not made by us: it is left alone and logged, never fatal."""
        path = self.root / name
        try:
            info = os.stat(name, dir_fd=root_fd, follow_symlinks=False)
            if own and stat.S_ISREG(info.st_mode) and name.startswith(PROBE_PREFIX):
                os.unlink(name, dir_fd=root_fd)  # a probe cut short by a kill
                return True
            if not stat.S_ISDIR(info.st_mode):
                log.warning("archive.leftover_skipped", path=str(path), reason="not a directory")
                return False
            if not own and info.st_mtime > limit:
                return False
            shutil.rmtree(name, dir_fd=root_fd)
        except FileNotFoundError:
            return False
        except OSError as exc:
            log.warning("archive.leftover_skipped", path=str(path), reason=str(exc))
            return False
        return True

    def close(self) -> None:
        """Nothing to release: every transaction holds its own state."""


class FilesystemTransaction:
    """One letter being written into a temporary directory."""

    def __init__(
        self,
        archive: FilesystemArchive,
        forsendelse_id: str,
        metadata: dict[str, Any],
        temp: Path,
        target: Path,
        *,
        root_fd: int,
        temp_fd: int,
    ):
        self.archive = archive
        self.forsendelse_id = forsendelse_id
        self.metadata = metadata
        self.temp = temp
        self.target = target
        self._root_fd = root_fd
        self._temp_fd = temp_fd
        self.documents: list[dict[str, Any]] = []
        self._names = NameAllocator(reserved=(METADATA_FILE,))
        self._done = False

    def _check_open(self) -> None:
        if self._done:
            raise ArchiveError(
                f"transaction for {self.forsendelse_id} is already finished", temporary=True
            )

    def add_document(self, name: str, content: Path | BinaryIO, metadata: DocumentMetadata) -> str:
        self._check_open()
        stored = self._names.allocate(name)
        if isinstance(content, Path):
            size = self._store_path(content, stored)
        else:
            size = self._store_stream(content, stored)
        if size != metadata.size:
            raise ArchiveError(
                f"document {name!r} of {self.forsendelse_id}: stored {size} bytes, but its "
                f"metadata says {metadata.size}",
                temporary=True,
            )
        self.documents.append({"file": stored, "name": name, **metadata.to_json()})
        return stored

    def _store_path(self, source: Path, stored: str) -> int:
        destination = self.temp / stored
        if self.archive.hardlink:
            try:
                os.link(source, stored, dst_dir_fd=self._temp_fd, follow_symlinks=False)
            except FileNotFoundError as exc:
                raise _error(exc, f"document source {source} is gone") from exc
            except OSError:
                pass  # another filesystem, or links not allowed: copy instead
            else:
                try:
                    return finish_file(stored, self._temp_fd, self.archive.file_mode)
                except OSError as exc:
                    raise _error(exc, f"cannot finish {destination}") from exc
        try:
            with open(source, "rb") as stream:
                return self._store_stream(stream, stored)
        except OSError as exc:
            raise _error(exc, f"cannot read document source {source}") from exc

    def _store_stream(self, stream: BinaryIO, stored: str) -> int:
        destination = self.temp / stored
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            fd = os.open(stored, flags, 0o600, dir_fd=self._temp_fd)
        except OSError as exc:
            raise _error(exc, f"cannot create {destination}", name_related=True) from exc
        size = 0
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := stream.read(CHUNK):
                    out.write(chunk)
                    size += len(chunk)
                out.flush()
                os.fchmod(out.fileno(), self.archive.file_mode)
                os.fsync(out.fileno())
        except OSError as exc:
            raise _error(exc, f"cannot write {destination}") from exc
        return size

    def commit(self, verification: VerificationRecord) -> str:
        self._check_open()
        try:
            data = letter_record(
                self.forsendelse_id,
                self.metadata,
                self.documents,
                verification,
                self.archive._now(),
            )
        except ArchiveError:
            self.abort()
            raise
        try:
            self._store_stream(io.BytesIO(data), METADATA_FILE)
            os.fchmod(self._temp_fd, self.archive.dir_mode)
            os.fsync(self._temp_fd)
            if not committed(self._root_fd, self.forsendelse_id):
                self._rename_into_place()
        except OSError as exc:
            self.abort()
            raise _error(exc, f"cannot commit {self.target}") from exc
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
        self.archive._forget(self.temp)


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
