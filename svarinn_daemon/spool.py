"""Temporary files for letters in flight: mode 0600, fsynced, removed when done.

They live in ``<state_directory>/spool`` so that leftovers from a crash can be found and
removed at the next start (the ledger, not the spool, says what is done).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from types import TracebackType

from svarinn_daemon.errors import ArchiveError

SUFFIX = ".part"


class SpoolFile:
    """One plaintext being written; ``finish()`` makes it durable, ``remove()`` deletes it."""

    def __init__(self, path: Path):
        self.path = path
        self._fd: int | None = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        self.size = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        assert self._fd is not None, "spool file already finished"
        view = memoryview(data)
        try:
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
                self.size += written
        except OSError as exc:
            raise ArchiveError(
                f"cannot write spool file {self.path}: {exc.strerror}", temporary=True
            ) from None

    def finish(self) -> Path:
        if self._fd is not None:
            try:
                os.fsync(self._fd)
            except OSError as exc:
                raise ArchiveError(
                    f"cannot fsync spool file {self.path}: {exc.strerror}", temporary=True
                ) from None
            finally:
                os.close(self._fd)
                self._fd = None
        return self.path

    def remove(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self.path.unlink(missing_ok=True)

    def __enter__(self) -> SpoolFile:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None:
            self.remove()


class Spool:
    def __init__(self, directory: Path):
        self.directory = directory

    def prepare(self) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)

    def create(self, forsendelse_id: str) -> SpoolFile:
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in forsendelse_id)[:80]
        return SpoolFile(self.directory / f"{safe}.{secrets.token_hex(4)}{SUFFIX}")

    def workdir(self, forsendelse_id: str) -> Path:
        """A private directory for one letter's unpacked zip entries."""
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in forsendelse_id)[:80]
        path = self.directory / f"{safe}.{secrets.token_hex(4)}{SUFFIX}.d"
        path.mkdir(mode=0o700)
        return path

    def clean_leftovers(self) -> int:
        """Remove every temporary file a previous run left behind; returns how many."""
        if not self.directory.is_dir():
            return 0
        removed = 0
        for path in self.directory.iterdir():
            if not path.name.endswith((SUFFIX, SUFFIX + ".d")):
                continue
            if path.is_dir():
                for child in sorted(path.rglob("*"), reverse=True):
                    child.rmdir() if child.is_dir() else child.unlink(missing_ok=True)
                path.rmdir()
            else:
                path.unlink(missing_ok=True)
            removed += 1
        return removed
