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

Everything goes through directory descriptors, as in the filesystem adapter (issue #24,
item 5): the work area, the home and the letter directory are opened once, without following
links, and every document, the record, what a program reads on standard input and what is
POSTed is created or opened relative to them. A directory swapped in under a letter's name
gets nothing written into it and sends nothing; before a letter leaves, the names are checked
to still lead to the directories held, and the program starts in the held home itself.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
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
from svarinn_daemon.adapters.dirfd import METADATA_FILE, NOFOLLOW_DIR
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
        self._active: set[str] = set()
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

    def open_root(self) -> int:
        """The work area (created if missing), checked and opened without following a link;
        the caller closes the descriptor."""
        self.check()
        try:
            self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(self.root, NOFOLLOW_DIR)
        except OSError as exc:
            raise _error(exc, f"cannot open the work directory {self.root}") from exc
        info = os.fstat(fd)
        if info.st_uid not in (0, os.geteuid()) or info.st_mode & 0o022:
            os.close(fd)
            raise StorageError(f"work directory {self.root} changed while it was opened")
        return fd

    @contextlib.contextmanager
    def pinned(self) -> Iterator[Path]:
        """The work area as the descriptor held (``/proc/self/fd/N``): where ``check_command``
        starts, which no name can redirect."""
        fd = self.open_root()
        try:
            yield _fd_path(fd)
        finally:
            os.close(fd)

    def stage(self, forsendelse_id: str) -> StagedLetter:
        if not SAFE_ID.fullmatch(forsendelse_id):
            raise ArchiveError(
                f"forsendelse id {forsendelse_id[:80]!r} is not usable as a directory name",
                temporary=False,
            )
        root_fd = self.open_root()
        name = f"{TEMP_PREFIX}{forsendelse_id}-{secrets.token_hex(6)}.{self.tag}"
        held = [root_fd]
        try:
            os.mkdir(name, 0o700, dir_fd=root_fd)
            held.append(os.open(name, NOFOLLOW_DIR, dir_fd=root_fd))
            os.mkdir(LETTER_DIR, 0o700, dir_fd=held[1])
            held.append(os.open(LETTER_DIR, NOFOLLOW_DIR, dir_fd=held[1]))
        except OSError as exc:
            if len(held) > 1:
                with contextlib.suppress(OSError):
                    shutil.rmtree(name, dir_fd=root_fd)
            for fd in held:
                os.close(fd)
            raise _error(exc, f"cannot create a work directory under {self.root}") from exc
        with self._lock:
            self._active.add(name)
        return StagedLetter(self, forsendelse_id, name, *held)

    def _forget(self, name: str) -> None:
        with self._lock:
            self._active.discard(name)

    def cleanup(self, older_than: timedelta) -> int:
        """Remove interrupted letters: this worker's whatever their age, others' once older
        than ``older_than``; never one in progress here, never anything but a directory."""
        limit = time.time() - older_than.total_seconds()
        try:
            root_fd = os.open(self.root, NOFOLLOW_DIR)
        except FileNotFoundError:
            return 0
        except OSError as exc:
            raise _error(exc, f"cannot open {self.root}") from exc
        try:
            names = [n for n in os.listdir(root_fd) if n.startswith(TEMP_PREFIX)]
            with self._lock:
                active = set(self._active)
            return sum(
                _remove_stale(root_fd, name, mine=name.endswith(f".{self.tag}"), limit=limit)
                for name in names
                if name not in active
            )
        except OSError as exc:
            raise _error(exc, f"cannot list {self.root}") from exc
        finally:
            os.close(root_fd)


def _remove_stale(root_fd: int, name: str, *, mine: bool, limit: float) -> bool:
    try:
        info = os.stat(name, dir_fd=root_fd, follow_symlinks=False)
        if not stat.S_ISDIR(info.st_mode) or (not mine and info.st_mtime > limit):
            return False
        shutil.rmtree(name, dir_fd=root_fd)
    except OSError:
        return False
    return True


class StagedLetter:
    """One letter's documents in its own 0700 directory (``path``, inside ``home``, which
    holds nothing else), both held open; ``remove()`` ends it. ``home`` and ``path`` are the
    names a program is told; the daemon itself goes only through the descriptors."""

    def __init__(
        self,
        area: StagingArea,
        forsendelse_id: str,
        name: str,
        root_fd: int,
        home_fd: int,
        letter_fd: int,
    ):
        self.area = area
        self.forsendelse_id = forsendelse_id
        self.home = area.root / name
        self.path = self.home / LETTER_DIR
        self.documents: list[dict[str, Any]] = []
        self.files: list[tuple[str, str | None]] = []  # stored name, mimetype
        self._name = name
        self._root_fd, self._home_fd, self._letter_fd = root_fd, home_fd, letter_fd
        self._names = NameAllocator(reserved=(METADATA_FILE,))
        self.removed = False

    def add(self, name: str, content: Path | BinaryIO, metadata: DocumentMetadata) -> str:
        """Store one document (hard link when possible, else a copy) under a safe name."""
        stored = self._names.allocate(name)
        try:
            if isinstance(content, Path):
                size = self._from_path(content, stored)
            else:
                size = _copy(content, stored, self._letter_fd)
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

    def _from_path(self, source: Path, stored: str) -> int:
        try:
            os.link(source, stored, dst_dir_fd=self._letter_fd, follow_symlinks=False)
        except FileNotFoundError:
            raise
        except OSError:
            with open(source, "rb") as stream:
                return _copy(stream, stored, self._letter_fd)
        return os.stat(stored, dir_fd=self._letter_fd, follow_symlinks=False).st_size

    def write_record(
        self, metadata: Mapping[str, Any], verification: VerificationRecord, now: datetime
    ) -> None:
        """Write ``forsendelse.json`` into the letter directory held."""
        data = letter_record(self.forsendelse_id, metadata, self.documents, verification, now)
        try:
            _copy(io.BytesIO(data), METADATA_FILE, self._letter_fd)
        except OSError as exc:
            raise _error(exc, f"cannot write {self.path / METADATA_FILE}") from exc

    def open_file(self, stored: str) -> BinaryIO:
        """One of the letter's files (a document's stored name, or the record), opened in
        the directory held and never through a link."""
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
        return os.fdopen(os.open(stored, flags, dir_fd=self._letter_fd), "rb")

    def check_in_place(self) -> None:
        """Before the letter leaves: the work area is still private, and its names still
        lead to the very directories held, ours and 0700 (StorageError otherwise)."""
        self.area.check()
        for parent, name, fd in (
            (self._root_fd, self._name, self._home_fd),
            (self._home_fd, LETTER_DIR, self._letter_fd),
        ):
            held = os.fstat(fd)
            try:
                named = os.stat(name, dir_fd=parent, follow_symlinks=False)
            except OSError:
                named = None
            if (
                named is None
                or (named.st_dev, named.st_ino) != (held.st_dev, held.st_ino)
                or held.st_uid != os.geteuid()
                or held.st_mode & 0o077
            ):
                raise StorageError(
                    f"letter directory {self.home} was replaced or opened to others after "
                    "staging; the letter is not handed on"
                )

    @contextlib.contextmanager
    def pinned(self) -> Iterator[Path]:
        """The home as the descriptor held (``/proc/self/fd/N``), once :meth:`check_in_place`
        passed: a program started there cannot start in a directory swapped in."""
        self.check_in_place()
        yield _fd_path(self._home_fd)

    def remove(self) -> None:
        """Remove what was staged, through the descriptors: a directory swapped in under the
        letter's name is not ours to remove, and is left to :meth:`StagingArea.cleanup`."""
        if self.removed:
            return
        self.removed = True
        with contextlib.suppress(OSError):
            if _same(self._root_fd, self._name, self._home_fd):
                shutil.rmtree(self._name, dir_fd=self._root_fd)
            elif _same(self._home_fd, LETTER_DIR, self._letter_fd):
                shutil.rmtree(LETTER_DIR, dir_fd=self._home_fd)
        for fd in (self._letter_fd, self._home_fd, self._root_fd):
            os.close(fd)
        self.area._forget(self._name)


def _same(parent: int, name: str, fd: int) -> bool:
    named = os.stat(name, dir_fd=parent, follow_symlinks=False)
    held = os.fstat(fd)
    return (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino)


def _fd_path(fd: int) -> Path:
    """A path that is the open directory ``fd`` itself, in this process and in a child
    that inherits it until it executes (a program's working directory is set before)."""
    return Path(f"/proc/self/fd/{fd}")


def _copy(stream: BinaryIO, name: str, dir_fd: int) -> int:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    size = 0
    with os.fdopen(os.open(name, flags, 0o600, dir_fd=dir_fd), "wb") as out:
        while chunk := stream.read(CHUNK):
            out.write(chunk)
            size += len(chunk)
    return size
