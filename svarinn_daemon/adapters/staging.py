"""A letter directory built in the daemon's own work area, for adapters that hand it on.

The ``command`` and ``http`` adapters give a whole letter to someone else at commit time (a
program, an endpoint), so they first gather its documents in a private directory of the
same shape as the filesystem adapter's letter directory: each document under its sanitised
unique name, and ``forsendelse.json`` (:func:`letter_record`) written at commit. The
directory is removed when the transaction ends, whatever the outcome.

Layout: ``<work>/.tmp-<forsendelse-id>-<random>.<worker>/letter/``: the letter directory in
a private *home* that holds nothing else, so a program can be started in the home without a
single name the sender chose beside it. A restarted worker removes its own leftovers at once
and other workers' once older than the lease (:func:`cleanup`).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import secrets
import shutil
import stat
import threading
import time
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

from svarinn_daemon import __version__
from svarinn_daemon.adapters.base import DocumentMetadata, VerificationRecord
from svarinn_daemon.adapters.dirfd import METADATA_FILE
from svarinn_daemon.adapters.names import NameAllocator
from svarinn_daemon.common import untrusted_directory
from svarinn_daemon.errors import ArchiveError, StorageError

__all__ = [
    "METADATA_FILE",
    "METADATA_FORMAT",
    "StagedLetter",
    "StagingArea",
    "letter_record",
    "owner_tag",
]

METADATA_FORMAT = "svarinn-daemon/forsendelse/1"
TEMP_PREFIX = ".tmp-"
LETTER_DIR = "letter"  # the letter directory's name inside its home
CHUNK = 1024 * 1024
SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")


def owner_tag(owner: str | None) -> str:
    """A short, filename-safe tag for a worker id ("anon" for none)."""
    if owner is None:
        return "anon"
    return hashlib.sha256(owner.encode("utf-8")).hexdigest()[:10]


def letter_record(
    forsendelse_id: str,
    metadata: Mapping[str, Any],
    documents: list[dict[str, Any]],
    verification: VerificationRecord,
    archived_at: datetime,
) -> bytes:
    """``forsendelse.json``: the record every built-in adapter stores with a letter.

    Raises a permanent ArchiveError when the forsendelse cannot be written as JSON.
    """
    document = {
        "format": METADATA_FORMAT,
        "forsendelse_id": forsendelse_id,
        "archived_at": archived_at.isoformat(),
        "daemon_version": __version__,
        "verification": verification.to_json(),
        "documents": documents,
        "forsendelse": dict(metadata),
    }
    try:
        text = json.dumps(document, ensure_ascii=False, indent=2, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ArchiveError(
            f"metadata of {forsendelse_id} cannot be written as JSON: {exc}", temporary=False
        ) from exc
    return text.encode("utf-8") + b"\n"


def _error(exc: OSError, what: str) -> ArchiveError:
    code = errno.errorcode.get(exc.errno or 0, "unknown")
    return ArchiveError(f"{what}: {exc.strerror or exc} ({code})", temporary=True)


class StagingArea:
    """The directory where one archive's letters are gathered before they are handed on."""

    def __init__(self, root: Path, *, owner: str | None = None):
        self.root = root.absolute()
        self.tag = owner_tag(owner)
        self._active: set[Path] = set()
        self._lock = threading.Lock()

    def check(self) -> None:
        """Refuse a work area another user could swap a letter in (StorageError: ours to
        fix). Checked per letter: a directory handed to a neighbour after start counts."""
        why = untrusted_directory(self.root)
        if why is not None:
            raise StorageError(
                f"work directory {self.root} is not private: {why}; another user could swap "
                "a letter for any file this daemon can read"
            )

    def stage(self, forsendelse_id: str) -> StagedLetter:
        self.check()
        if not SAFE_ID.fullmatch(forsendelse_id):
            raise ArchiveError(
                f"forsendelse id {forsendelse_id[:80]!r} is not usable as a directory name",
                temporary=False,
            )
        try:
            self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
            home = self.root / f"{TEMP_PREFIX}{forsendelse_id}-{secrets.token_hex(6)}.{self.tag}"
            home.mkdir(mode=0o700)
            (home / LETTER_DIR).mkdir(mode=0o700)
        except OSError as exc:
            raise _error(exc, f"cannot create a work directory under {self.root}") from exc
        with self._lock:
            self._active.add(home)
        return StagedLetter(self, forsendelse_id, home, _identity(home))

    def _forget(self, path: Path) -> None:
        with self._lock:
            self._active.discard(path)

    def cleanup(self, older_than: timedelta) -> int:
        """Remove interrupted letters: this worker's whatever their age, others' once older
        than ``older_than``; never one in progress here, never anything but a directory."""
        limit = time.time() - older_than.total_seconds()
        try:
            names = [n for n in os.listdir(self.root) if n.startswith(TEMP_PREFIX)]
        except FileNotFoundError:
            return 0
        except OSError as exc:
            raise _error(exc, f"cannot list {self.root}") from exc
        with self._lock:
            active = set(self._active)
        removed = 0
        for name in names:
            path = self.root / name
            if path in active:
                continue
            try:
                info = path.lstat()
                if not stat.S_ISDIR(info.st_mode):
                    continue
                if not name.endswith(f".{self.tag}") and info.st_mtime > limit:
                    continue
                shutil.rmtree(path)
            except OSError:
                continue
            removed += 1
        return removed


class StagedLetter:
    """One letter's documents in its own 0700 directory (``path``, inside ``home``, which
    holds nothing else); ``remove()`` ends it."""

    def __init__(
        self,
        area: StagingArea,
        forsendelse_id: str,
        home: Path,
        identity: tuple[int, int] | None = None,
    ):
        self.area = area
        self._identity = identity if identity is not None else _identity(home)
        self.forsendelse_id = forsendelse_id
        self.home = home
        self.path = home / LETTER_DIR
        self.documents: list[dict[str, Any]] = []
        self.files: list[tuple[str, str | None]] = []  # stored name, mimetype
        self._names = NameAllocator(reserved=(METADATA_FILE,))
        self.removed = False

    def add(self, name: str, content: Path | BinaryIO, metadata: DocumentMetadata) -> str:
        """Store one document (hard link when possible, else a copy) under a safe name."""
        stored = self._names.allocate(name)
        destination = self.path / stored
        try:
            if isinstance(content, Path):
                size = self._from_path(content, destination)
            else:
                size = _copy(content, destination)
        except OSError as exc:
            raise _error(exc, f"cannot store {name!r} in {self.path}") from exc
        if size != metadata.size:
            raise ArchiveError(
                f"document {name!r} of {self.forsendelse_id}: stored {size} bytes, but its "
                f"metadata says {metadata.size}",
                temporary=True,
            )
        self.documents.append({"file": stored, "name": name, **metadata.to_json()})
        self.files.append((stored, metadata.mimetype))
        return stored

    @staticmethod
    def _from_path(source: Path, destination: Path) -> int:
        try:
            os.link(source, destination, follow_symlinks=False)
        except FileNotFoundError:
            raise
        except OSError:
            with open(source, "rb") as stream:
                return _copy(stream, destination)
        return destination.lstat().st_size

    def write_record(
        self, metadata: Mapping[str, Any], verification: VerificationRecord, now: datetime
    ) -> Path:
        """Write ``forsendelse.json`` and return its path."""
        data = letter_record(self.forsendelse_id, metadata, self.documents, verification, now)
        target = self.path / METADATA_FILE
        try:
            _copy_bytes(data, target)
        except OSError as exc:
            raise _error(exc, f"cannot write {target}") from exc
        return target

    @contextlib.contextmanager
    def pinned(self) -> Iterator[Path]:
        """The home as this process's open descriptor (``/proc/self/fd/N``), once it is
        known to be the very directory staged, still ours and private: a program started
        there cannot be started in a directory swapped in under the same name."""
        flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            fd = os.open(self.home, flags)
        except OSError as exc:
            raise _error(exc, f"cannot open {self.home}") from exc
        try:
            info = os.fstat(fd)
            path_info = os.lstat(self.home)
            if (
                (info.st_dev, info.st_ino) != self._identity
                or (path_info.st_dev, path_info.st_ino) != self._identity
                or info.st_uid != os.geteuid()
                or info.st_mode & 0o077
            ):
                raise StorageError(
                    f"letter directory {self.home} was replaced or opened to others after "
                    "staging; the program is not started"
                )
            yield Path(f"/proc/self/fd/{fd}")
        finally:
            os.close(fd)

    def remove(self) -> None:
        if self.removed:
            return
        self.removed = True
        with contextlib.suppress(OSError):
            shutil.rmtree(self.home)
        self.area._forget(self.home)


def _identity(path: Path) -> tuple[int, int]:
    info = os.lstat(path)
    return info.st_dev, info.st_ino


def _copy(stream: BinaryIO, destination: Path) -> int:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    size = 0
    with os.fdopen(os.open(destination, flags, 0o600), "wb") as out:
        while chunk := stream.read(CHUNK):
            out.write(chunk)
            size += len(chunk)
    return size


def _copy_bytes(data: bytes, destination: Path) -> None:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    with os.fdopen(os.open(destination, flags, 0o600), "wb") as out:
        out.write(data)
