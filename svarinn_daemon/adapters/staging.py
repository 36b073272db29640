"""A letter directory built in the daemon's own work area, for adapters that hand it on.

The ``command`` and ``http`` adapters give a whole letter to someone else at commit time (a
program, an endpoint), so they first gather its documents in a private directory of the
same shape as the filesystem adapter's letter directory: each document under its sanitised
unique name, and ``forsendelse.json`` written at commit (both by ``adapters/store.py``,
as the filesystem adapter's). The
directory is removed when the transaction ends, whatever the outcome.

Layout: ``<work>/.tmp-<forsendelse-id>-<random>.<worker>/letter/``: the letter directory in
a private *home* that holds nothing else, so a program can be started in the home without a
single name the sender chose beside it. A restarted worker removes its own leftovers at once
and other workers' once older than the lease (:meth:`StagingArea.cleanup`).

Everything goes through directory descriptors, as in the filesystem adapter (issue #24,
item 5): the work area, the home and the letter directory are opened once, without following
links, and every document, the record, what a program reads on standard input and what is
POSTed is created or opened relative to them. A directory swapped in under a letter's name
gets nothing written into it and sends nothing; before a letter leaves, the names are checked
to still lead to the directories held, and the program starts in the held home itself.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

from svarinn_daemon.adapters.base import DocumentMetadata, VerificationRecord
from svarinn_daemon.adapters.dirfd import METADATA_FILE, NOFOLLOW_DIR, finish_file
from svarinn_daemon.adapters.store import DocumentStore, TempDirectories, disk_error
from svarinn_daemon.common import untrusted_directory
from svarinn_daemon.errors import StorageError

__all__ = ["METADATA_FILE", "StagedLetter", "StagingArea"]

LETTER_DIR = "letter"  # the letter directory's name inside its home


class StagingArea:
    """The directory where one archive's letters are gathered before they are handed on."""

    def __init__(self, root: Path, *, owner: str | None = None):
        self.temps = TempDirectories(root, owner=owner)
        self.root = self.temps.root

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
        except OSError as exc:
            raise disk_error(exc, f"cannot open the work directory {self.root}") from exc
        fd = self.temps.open_root()
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
        root_fd = self.open_root()
        try:
            name, home_fd = self.temps.create(root_fd, forsendelse_id)
        except BaseException:
            os.close(root_fd)
            raise
        try:
            os.mkdir(LETTER_DIR, 0o700, dir_fd=home_fd)
            letter_fd = os.open(LETTER_DIR, NOFOLLOW_DIR, dir_fd=home_fd)
        except OSError as exc:
            with contextlib.suppress(OSError):
                shutil.rmtree(name, dir_fd=root_fd)
            for fd in (home_fd, root_fd):
                os.close(fd)
            self.temps.forget(name)
            raise disk_error(exc, f"cannot create a work directory under {self.root}") from exc
        return StagedLetter(self, forsendelse_id, name, root_fd, home_fd, letter_fd)

    def cleanup(self, older_than: timedelta) -> int:
        """Remove interrupted letters: this worker's whatever their age, others' once older
        than ``older_than``; never one in progress here, never anything but a directory."""
        return self.temps.cleanup(older_than)


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
        self.store = DocumentStore(letter_fd, self.path, forsendelse_id)
        self._name = name
        self._root_fd, self._home_fd, self._letter_fd = root_fd, home_fd, letter_fd
        self.removed = False

    @property
    def files(self) -> list[tuple[str, str | None]]:
        """Each document's stored name and MIME type, in the order added."""
        return self.store.files

    def add(self, name: str, content: Path | BinaryIO, metadata: DocumentMetadata) -> str:
        """Store one document (hard link when possible, else a copy) under a safe name."""
        return self.store.add(name, content, metadata)

    def write_record(
        self, metadata: Mapping[str, Any], verification: VerificationRecord, now: datetime
    ) -> None:
        """Write ``forsendelse.json`` into the letter directory held."""
        self.store.write_record(metadata, verification, now)

    def open_file(self, stored: str) -> BinaryIO:
        """One of the letter's files, opened in the directory held, never through a link."""
        return self.store.open_file(stored)

    def sync(self) -> None:
        """fsync every document and the record, for a receiver that may keep the files
        themselves (a program that links or moves them into its store): the spool's files,
        which the documents are hard links to, are not synced."""
        for stored in [name for name, _mimetype in self.files] + [METADATA_FILE]:
            try:
                finish_file(stored, self._letter_fd, self.store.file_mode)
            except OSError as exc:
                raise disk_error(exc, f"cannot sync {self.path / stored}") from exc

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
        self.area.temps.forget(self._name)


def _same(parent: int, name: str, fd: int) -> bool:
    named = os.stat(name, dir_fd=parent, follow_symlinks=False)
    held = os.fstat(fd)
    return (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino)


def _fd_path(fd: int) -> Path:
    """A path that is the open directory ``fd`` itself, in this process and in a child
    that inherits it until it executes (a program's working directory is set before)."""
    return Path(f"/proc/self/fd/{fd}")
