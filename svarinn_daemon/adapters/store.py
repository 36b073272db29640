"""Where a letter's documents are written: one implementation, through directory descriptors.

The filesystem archive writes a letter into a ``.tmp-`` directory under its root and renames
it into place; the adapters that hand a letter on (``command``, ``http``, every
:class:`~svarinn_daemon.adapters.staged.StagedArchive`) gather it in a ``.tmp-`` directory
of their work area first. Both store documents the same way, here: each under its sanitised
unique name (:class:`~svarinn_daemon.adapters.names.NameAllocator`), created relative to the
letter's directory held open (``O_EXCL | O_NOFOLLOW``), hard-linked when possible, the size
checked against the metadata; and both remove the leftovers of interrupted letters the same
way: a worker's own at once (it cannot be writing them any more, and they hold plaintext
documents), other workers' once older than the lease, never one in progress here, never
anything that is not a directory we made.
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
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

from svarinn_daemon import __version__
from svarinn_daemon.adapters.base import DocumentMetadata, VerificationRecord
from svarinn_daemon.adapters.dirfd import DIR_FLAGS, METADATA_FILE, NOFOLLOW_DIR, finish_file
from svarinn_daemon.adapters.names import NameAllocator
from svarinn_daemon.errors import ArchiveError
from svarinn_daemon.logs import get_logger

__all__ = [
    "METADATA_FILE",
    "METADATA_FORMAT",
    "PROBE_PREFIX",
    "TEMP_PREFIX",
    "DocumentStore",
    "TempDirectories",
    "disk_error",
    "letter_record",
    "owner_tag",
    "safe_id",
]

METADATA_FORMAT = "svarinn-daemon/forsendelse/1"
TEMP_PREFIX = ".tmp-"
PROBE_PREFIX = f"{TEMP_PREFIX}probe-"
CHUNK = 1024 * 1024
NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")
# Errors tied to one letter's names: retrying the same letter cannot help.
_NAME_ERRNOS = {errno.ENAMETOOLONG, errno.EILSEQ, errno.EINVAL}

log = get_logger(__name__)


def disk_error(exc: OSError, what: str, *, name_related: bool = False) -> ArchiveError:
    """An OSError as an ArchiveError: temporary (a full disk, permissions, an unmounted
    share are fixed by someone), permanent only for a name this filesystem refuses."""
    code = errno.errorcode.get(exc.errno or 0, "unknown")
    permanent = name_related and exc.errno in _NAME_ERRNOS
    return ArchiveError(f"{what}: {exc.strerror or exc} ({code})", temporary=not permanent)


def safe_id(forsendelse_id: str) -> str:
    """The forsendelse id when it can name a directory; a permanent error otherwise."""
    if not _SAFE_ID.fullmatch(forsendelse_id):
        raise ArchiveError(
            f"forsendelse id {forsendelse_id[:80]!r} is not usable as a directory name",
            temporary=False,
        )
    return forsendelse_id


def owner_tag(owner: str | None) -> str:
    """A short, filename-safe tag for a worker id ("anon" for none)."""
    if owner is None:
        return "anon"
    return hashlib.sha256(owner.encode("utf-8")).hexdigest()[:10]


_RECORD = json.JSONEncoder(ensure_ascii=False, allow_nan=False)


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
        # One top-level key per line, its value compact: json's C encoder does not indent,
        # and indent=2 falls back to the pure-Python encoder (a benchmark letter's record:
        # 164 µs against 47).
        lines = [
            f"  {_RECORD.encode(key)}: {_RECORD.encode(value)}" for key, value in document.items()
        ]
    except (TypeError, ValueError) as exc:
        raise ArchiveError(
            f"metadata of {forsendelse_id} cannot be written as JSON: {exc}", temporary=False
        ) from exc
    return ("{\n" + ",\n".join(lines) + "\n}\n").encode("utf-8")


class DocumentStore:
    """One letter's documents in one directory held open (``fd``; ``path`` only names it
    in errors). ``durable``: every file is fsynced and given ``file_mode`` (an archive);
    otherwise files stay 0600 and unsynced (a work area the letter leaves at commit)."""

    def __init__(
        self,
        fd: int,
        path: Path,
        forsendelse_id: str,
        *,
        file_mode: int = 0o600,
        durable: bool = False,
        hardlink: bool = True,
    ):
        self.fd = fd
        self.path = path
        self.forsendelse_id = forsendelse_id
        self.file_mode = file_mode
        self.durable = durable
        self.hardlink = hardlink
        self.documents: list[dict[str, Any]] = []  # as forsendelse.json lists them
        self.files: list[tuple[str, str | None]] = []  # stored name, mimetype
        self._names = NameAllocator(reserved=(METADATA_FILE,))

    def add(self, name: str, content: Path | BinaryIO, metadata: DocumentMetadata) -> str:
        """Store one document under a safe unique name (a hard link when possible, else a
        copy; the caller's file is never changed) and return that name."""
        stored = self._names.allocate(name)
        if isinstance(content, Path):
            size = self._from_path(content, stored)
        else:
            size = self._write(content, stored)
        if size != metadata.size:
            raise ArchiveError(
                f"document {name!r} of {self.forsendelse_id}: stored {size} bytes, but its "
                f"metadata says {metadata.size}",
                temporary=True,
            )
        self.documents.append({"file": stored, "name": name, **metadata.to_json()})
        self.files.append((stored, metadata.mimetype))
        return stored

    def write_record(
        self, metadata: Mapping[str, Any], verification: VerificationRecord, now: datetime
    ) -> None:
        """Write ``forsendelse.json`` beside the documents."""
        data = letter_record(self.forsendelse_id, metadata, self.documents, verification, now)
        self._write(io.BytesIO(data), METADATA_FILE)

    def open_file(self, stored: str) -> BinaryIO:
        """One of the letter's files (a document's stored name, or the record), opened in
        the directory held and never through a link."""
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
        return os.fdopen(os.open(stored, flags, dir_fd=self.fd), "rb")

    def _from_path(self, source: Path, stored: str) -> int:
        if self.hardlink:
            try:
                os.link(source, stored, dst_dir_fd=self.fd, follow_symlinks=False)
            except FileNotFoundError as exc:
                raise disk_error(exc, f"document source {source} is gone") from exc
            except OSError:
                pass  # another filesystem, or links not allowed: copy instead
            else:
                try:
                    if self.durable:
                        return finish_file(stored, self.fd, self.file_mode)
                    return os.stat(stored, dir_fd=self.fd, follow_symlinks=False).st_size
                except OSError as exc:
                    raise disk_error(exc, f"cannot finish {self.path / stored}") from exc
        try:
            with open(source, "rb") as stream:
                return self._write(stream, stored)
        except OSError as exc:
            raise disk_error(exc, f"cannot read document source {source}") from exc

    def _write(self, stream: BinaryIO, stored: str) -> int:
        destination = self.path / stored
        try:
            fd = os.open(stored, NEW_FILE, 0o600, dir_fd=self.fd)
        except OSError as exc:
            raise disk_error(exc, f"cannot create {destination}", name_related=True) from exc
        size = 0
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := stream.read(CHUNK):
                    out.write(chunk)
                    size += len(chunk)
                if self.durable:
                    out.flush()
                    os.fchmod(out.fileno(), self.file_mode)
                    os.fsync(out.fileno())
        except OSError as exc:
            raise disk_error(exc, f"cannot write {destination}") from exc
        return size


class TempDirectories:
    """The ``.tmp-<forsendelse-id>-<random>.<worker>`` directories of letters in progress
    under ``root``. ``follow_root``: whether ``root`` itself may be a link (an archive share
    mounted elsewhere may; the daemon's own work area may not)."""

    def __init__(self, root: Path, *, owner: str | None = None, follow_root: bool = False):
        self.root = root.absolute()
        self.tag = owner_tag(owner)
        self._root_flags = DIR_FLAGS if follow_root else NOFOLLOW_DIR
        self._active: set[str] = set()
        self._lock = threading.Lock()

    def open_root(self) -> int:
        """``root`` opened (the caller closes it); a temporary error when it cannot be."""
        try:
            return os.open(self.root, self._root_flags)
        except OSError as exc:
            raise disk_error(exc, f"cannot open {self.root}") from exc

    def create(self, root_fd: int, forsendelse_id: str) -> tuple[str, int]:
        """A new 0700 directory for the letter, and its descriptor (opened without following
        a link); it counts as in progress until :meth:`forget`."""
        name = f"{TEMP_PREFIX}{safe_id(forsendelse_id)}-{secrets.token_hex(6)}.{self.tag}"
        try:
            os.mkdir(name, 0o700, dir_fd=root_fd)
            fd = os.open(name, NOFOLLOW_DIR, dir_fd=root_fd)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.rmdir(name, dir_fd=root_fd)
            raise disk_error(exc, f"cannot create {self.root / name}") from exc
        with self._lock:
            self._active.add(name)
        return name, fd

    def probe_name(self) -> str:
        """A name for a probe file, removed by this worker's next cleanup if left behind."""
        return f"{PROBE_PREFIX}{secrets.token_hex(6)}.{self.tag}"

    def forget(self, name: str) -> None:
        with self._lock:
            self._active.discard(name)

    def cleanup(self, older_than: timedelta) -> int:
        """Remove the leftovers of interrupted letters (and probes): this worker's whatever
        their age, others' once older than ``older_than``; return how many."""
        limit = time.time() - older_than.total_seconds()
        try:
            root_fd = os.open(self.root, self._root_flags)
        except FileNotFoundError:
            return 0
        except OSError as exc:
            raise disk_error(exc, f"cannot open {self.root}") from exc
        try:
            try:
                names = [n for n in os.listdir(root_fd) if n.startswith(TEMP_PREFIX)]
            except OSError as exc:
                raise disk_error(exc, f"cannot list {self.root}") from exc
            with self._lock:
                active = set(self._active)
            return sum(
                self._remove(root_fd, name, own=name.endswith(f".{self.tag}"), limit=limit)
                for name in names
                if name not in active
            )
        finally:
            os.close(root_fd)

    def _remove(self, root_fd: int, name: str, *, own: bool, limit: float) -> bool:
        """Remove one leftover. Whatever else carries the prefix (a symlink, a file) was not
        made by us: it is left alone and logged, never fatal."""
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
