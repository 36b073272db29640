"""The built-in ``memory`` archive: keeps letters in the process, for tests and the demo.

It is a full implementation of the protocol (idempotent commit, abort, thread safety), plus
two things tests need: :meth:`MemoryArchive.fail_next` to make a step fail once, and
:attr:`MemoryArchive.commits` to check that nothing was archived twice.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any, BinaryIO, Literal

from svarinn_daemon.adapters.base import AdapterContext, DocumentMetadata, VerificationRecord
from svarinn_daemon.adapters.names import NameAllocator
from svarinn_daemon.adapters.options import AdapterOptions
from svarinn_daemon.errors import ArchiveError

__all__ = ["MemoryArchive", "MemoryTransaction", "StoredDocument", "StoredLetter", "create_adapter"]

Stage = Literal["begin", "add_document", "commit"]
CHUNK = 1024 * 1024


@dataclass(frozen=True)
class StoredDocument:
    stored_name: str
    name: str
    metadata: DocumentMetadata
    content: bytes


@dataclass(frozen=True)
class StoredLetter:
    forsendelse_id: str
    metadata: Mapping[str, Any]
    verification: VerificationRecord
    documents: tuple[StoredDocument, ...]


class MemoryArchive:
    """Letters in a dict, keyed by forsendelse id."""

    def __init__(self) -> None:
        self._letters: dict[str, StoredLetter] = {}
        self._failures: dict[Stage, ArchiveError] = {}
        self._open = 0
        self._lock = threading.Lock()
        self.commits = 0
        self.aborts = 0

    @property
    def letters(self) -> Mapping[str, StoredLetter]:
        with self._lock:
            return MappingProxyType(dict(self._letters))

    @property
    def open_transactions(self) -> int:
        with self._lock:
            return self._open

    def fail_next(self, stage: Stage, error: ArchiveError) -> None:
        """Make the next call of ``stage`` raise ``error`` (once)."""
        with self._lock:
            self._failures[stage] = error

    def _maybe_fail(self, stage: Stage) -> None:
        with self._lock:
            error = self._failures.pop(stage, None)
        if error is not None:
            raise error

    @staticmethod
    def ref(forsendelse_id: str) -> str:
        return f"memory:{forsendelse_id}"

    def has(self, forsendelse_id: str) -> str | None:
        with self._lock:
            return self.ref(forsendelse_id) if forsendelse_id in self._letters else None

    def begin(self, forsendelse_id: str, metadata: Mapping[str, Any]) -> MemoryTransaction:
        self._maybe_fail("begin")
        with self._lock:
            self._open += 1
        return MemoryTransaction(self, forsendelse_id, dict(metadata))

    def _store(self, letter: StoredLetter) -> str:
        with self._lock:
            if letter.forsendelse_id not in self._letters:
                self._letters[letter.forsendelse_id] = letter
                self.commits += 1
        return self.ref(letter.forsendelse_id)

    def _closed(self, *, aborted: bool) -> None:
        with self._lock:
            self._open -= 1
            if aborted:
                self.aborts += 1

    def cleanup(self, older_than: timedelta) -> int:
        """Nothing outlives a transaction here."""
        return 0

    def close(self) -> None:
        """Nothing to release."""


class MemoryTransaction:
    def __init__(self, archive: MemoryArchive, forsendelse_id: str, metadata: dict[str, Any]):
        self.archive = archive
        self.forsendelse_id = forsendelse_id
        self.metadata = metadata
        self.documents: list[StoredDocument] = []
        self._names = NameAllocator(reserved=("forsendelse.json",))
        self._done = False

    def add_document(self, name: str, content: Path | BinaryIO, metadata: DocumentMetadata) -> str:
        if self._done:
            raise ArchiveError("transaction is already finished", temporary=True)
        self.archive._maybe_fail("add_document")
        try:
            if isinstance(content, Path):
                with open(content, "rb") as stream:
                    data = _read_all(stream)
            else:
                data = _read_all(content)
        except OSError as exc:
            raise ArchiveError(
                f"cannot read document {name!r}: {exc.strerror}", temporary=True
            ) from exc
        stored = self._names.allocate(name)
        self.documents.append(StoredDocument(stored, name, metadata, data))
        return stored

    def commit(self, verification: VerificationRecord) -> str:
        if self._done:
            raise ArchiveError("transaction is already finished", temporary=True)
        self.archive._maybe_fail("commit")
        letter = StoredLetter(
            self.forsendelse_id,
            MappingProxyType(self.metadata),
            verification,
            tuple(self.documents),
        )
        ref = self.archive._store(letter)
        self._done = True
        self.archive._closed(aborted=False)
        return ref

    def abort(self) -> None:
        if self._done:
            return
        self._done = True
        self.archive._closed(aborted=True)


def _read_all(stream: BinaryIO) -> bytes:
    parts = []
    while chunk := stream.read(CHUNK):
        parts.append(chunk)
    return b"".join(parts)


def create_adapter(options: Mapping[str, Any], context: AdapterContext) -> MemoryArchive:
    """Entry point ``memory``: takes no options."""
    AdapterOptions(options, context).finish()
    return MemoryArchive()
