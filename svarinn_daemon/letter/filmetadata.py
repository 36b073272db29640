"""Filmetadata against what a letter holds: the pure half of verification.

Which file type a download is, which zip entry a filmetadata (or V2 ``filer[]``) entry
describes, whether a size and sha256 match: decided here without touching a file, so the
rules are tested with tables; ``verify.py`` reads the files and applies them.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Protocol, TypeVar

from svarinn_daemon.adapters.base import DocumentMetadata, VerificationRecord
from svarinn_daemon.errors import ChecksumMismatchError, VerificationError
from svarinn_daemon.letter.ziputil import ZIP_MAGIC

__all__ = [
    "ZIP_MIMETYPES",
    "Document",
    "ExpectedFile",
    "FileType",
    "Named",
    "PlannedDocument",
    "VerificationResult",
    "check_container",
    "check_document",
    "described",
    "detect_file_type",
    "guess_mimetype",
    "match_entries",
    "nfc",
]

ZIP_MIMETYPES = {"application/zip", "application/x-zip-compressed", "application/x-zip"}


class FileType(StrEnum):
    ZIP = "zip"
    PDF = "pdf"
    OTHER = "other"


@dataclass(frozen=True)
class ExpectedFile:
    """One filmetadata entry, as far as verification cares."""

    filnavn: str
    mimetype: str | None = None
    sha256: str | None = None
    size: int | None = None

    @property
    def known_size(self) -> int | None:
        return self.size if self.size else None

    @property
    def known_sha256(self) -> str | None:
        return self.sha256.strip().lower() if self.sha256 and self.sha256.strip() else None


@dataclass(frozen=True)
class PlannedDocument:
    """A document the letter will yield; ``verified`` holds once it has been yielded."""

    name: str
    expected: ExpectedFile | None
    verified: bool
    note: str = ""


@dataclass(frozen=True)
class VerificationResult:
    file_type: FileType
    sha256: str | None  # None: a V2 ZIP unpacked as it streamed; its documents are hashed
    size: int
    unpacked: bool
    documents: tuple[PlannedDocument, ...]
    missing: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def verified(self) -> bool:
        """Every document checked against a declared sha256 and nothing missing."""
        return not self.missing and all(d.verified for d in self.documents)

    def record(
        self, *, encrypted: bool, downloaded_at: datetime, verified_at: datetime
    ) -> VerificationRecord:
        return VerificationRecord(
            sha256=self.sha256,
            size=self.size,
            verified=self.verified,
            file_type=self.file_type.value,
            encrypted=encrypted,
            downloaded_at=downloaded_at,
            verified_at=verified_at,
            notes=self.notes,
        )


@dataclass(frozen=True)
class Document:
    """A verified document: ``path`` is valid until the next document is asked for."""

    name: str
    path: Path
    metadata: DocumentMetadata


class Named(Protocol):
    """A zip entry, whichever reader saw it: all the matching needs is its name."""

    @property
    def name(self) -> str: ...


E = TypeVar("E", bound=Named)


def detect_file_type(head: bytes) -> FileType:
    """Zip, PDF or other, from the first bytes (at least 1024 for PDFs with a preamble)."""
    if head.startswith(ZIP_MAGIC):
        return FileType.ZIP
    if b"%PDF-" in head[:1024]:
        return FileType.PDF
    return FileType.OTHER


def described(file_type: FileType) -> str:
    return "a PDF" if file_type is FileType.PDF else f"a file of type {file_type.value!r}"


def guess_mimetype(file_type: FileType) -> str | None:
    return "application/pdf" if file_type is FileType.PDF else None


def nfc(name: str) -> str:
    return unicodedata.normalize("NFC", name.replace("\\", "/"))


def check_document(name: str, expected: ExpectedFile, sha256: str, size: int) -> bool:
    """Raise on a mismatch; True when a declared sha256 matched."""
    if expected.known_size is not None and expected.known_size != size:
        raise ChecksumMismatchError(
            f"{name!r} is {size} bytes, but filmetadata says {expected.known_size}"
        )
    declared = expected.known_sha256
    if declared is not None and declared != sha256:
        raise ChecksumMismatchError(
            f"{name!r} has sha256 {sha256}, but filmetadata says {declared}"
        )
    return declared is not None


def check_container(pairs: Sequence[tuple[Named, ExpectedFile | None]]) -> None:
    """SvarInn V2's ZIP holds exactly the letter's ``filer[]``: an entry ``filer[]`` does not
    list would be imported unverified."""
    extra = [entry.name for entry, expected in pairs if expected is None]
    if extra:
        raise VerificationError(
            f"the SvarInn V2 ZIP holds {len(extra)} file(s) filer[] does not list: "
            + ", ".join(repr(name[:100]) for name in extra[:5])
        )


def match_entries(
    entries: Sequence[E], expected: Sequence[ExpectedFile]
) -> list[tuple[E, ExpectedFile | None]]:
    """Pair zip entries with filmetadata: same path first, then the same base name; a pair
    is made only when the name is unique on both sides."""
    free = list(expected)
    paired: dict[int, ExpectedFile] = {}
    for key in (nfc, lambda name: nfc(name).rsplit("/", 1)[-1]):
        open_entries = [(i, key(e.name)) for i, e in enumerate(entries) if i not in paired]
        for i, name in open_entries:
            candidates = [e for e in free if key(e.filnavn) == name]
            rivals = sum(1 for _, other in open_entries if other == name)
            if len(candidates) == 1 and rivals == 1:
                paired[i] = candidates[0]
                free.remove(candidates[0])
    return [(entry, paired.get(i)) for i, entry in enumerate(entries)]
