"""Check a decrypted letter against its filmetadata and turn it into archive documents.

No network, no ledger: a plaintext file in, verified documents out, one at a time.

The rules (SvarUt sends one file per letter; several documents come as a zip or as one
combined PDF, and filmetadata then describes the documents, not the download):

* **File type** is decided by magic bytes: ``PK\\x03\\x04`` zip, ``%PDF-`` pdf, else other.
* **Unknown values**: a missing ``sha256hash`` leaves a document *unverified* (imported and
  recorded as such); a size of None or 0 means unknown (SvarInn sends 0 for unknown).
* **A single file** (pdf/other) with one filmetadata entry is checked against it, whatever
  the names (the download's name often differs from filnavn). With several entries it is a
  combined PDF: verified if one entry's sha256 matches the whole file, else unverified
  (the checksums describe the parts). Mismatching sha256/size -> ChecksumMismatchError.
* **A zip is unpacked** into its files, each checked against filmetadata by name (full
  path, else unique base name), sha256 and size -- unless it is a document in its own
  right: one filmetadata entry whose sha256 is the whole file's, an OOXML/ODF/ASiC
  container (``[Content_Types].xml`` or a ``mimetype`` first entry), or one filmetadata
  entry that no zip entry is named after (a .zip or .docx sent as one document; when the
  zip then holds exactly one file, that file is checked against the entry instead).
* **A zip entry with no filmetadata** is imported and recorded as unverified.
* **A filmetadata entry missing from the zip** fails the letter permanently
  (VerificationError): an archive copy without it would be silently incomplete, whereas a
  permanent failure sends the whole letter by post. ``VerifyPolicy.allow_missing_documents``
  imports such letters instead, recorded as unverified.
* Unsafe zips (names with ``..``, absolute paths, drive letters, links, encryption, limits
  exceeded) fail permanently with UnsafeArchiveError, corrupt ones with VerificationError.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from svarinn_daemon.adapters.base import DocumentMetadata
from svarinn_daemon.errors import (
    NotAZipError,
    StorageError,
    UnsafeArchiveError,
    VerificationError,
)
from svarinn_daemon.letter.filmetadata import (
    ZIP_MIMETYPES,
    Document,
    ExpectedFile,
    FileType,
    PlannedDocument,
    VerificationResult,
    check_container,
    check_document,
    described,
    detect_file_type,
    guess_mimetype,
    match_entries,
)
from svarinn_daemon.letter.ziputil import ZipEntry, ZipReader
from svarinn_daemon.policies import VerifyPolicy

__all__ = [
    "Document",
    "ExpectedFile",
    "FileType",
    "LetterContents",
    "PlannedDocument",
    "VerificationResult",
    "detect_file_type",
    "open_letter",
]


class LetterContents:
    """A checked plaintext; iterate :meth:`documents` inside ``with``. Build with open_letter."""

    def __init__(
        self,
        plaintext: Path,
        *,
        sha256: str,
        size: int,
        expected: Sequence[ExpectedFile],
        work_dir: Path | Callable[[], Path],
        policy: VerifyPolicy,
        fallback_name: str,
        container_zip: bool = False,
    ):
        self.plaintext = plaintext
        self.container_zip = container_zip
        # A directory, or what makes one when a zip entry is first unpacked.
        self._work_dir = work_dir
        self.policy = policy
        self._zip: ZipReader | None = None
        self._pairs: list[tuple[ZipEntry, ExpectedFile | None]] = []
        self._current: Path | None = None
        self._single: tuple[PlannedDocument, FileType] | None = None
        sha256 = self._sha256 = sha256.lower()
        try:
            with open(plaintext, "rb") as stream:
                head = stream.read(1024)
        except OSError as exc:
            raise StorageError(f"cannot read {plaintext}: {exc.strerror}") from exc
        file_type = detect_file_type(head)
        expected = tuple(expected)
        if container_zip and file_type is not FileType.ZIP:
            raise NotAZipError(
                f"a SvarInn V2 download is always a ZIP of the letter's files, but this one "
                f"decrypted to {described(file_type)} ({size} bytes): it cannot be checked "
                "against filer[]"
            )
        if file_type is FileType.ZIP:
            self.result = self._plan_zip(sha256, size, expected, fallback_name)
        else:
            self.result = self._plan_single(file_type, sha256, size, expected, fallback_name)

    # --- planning: everything that can be decided before extracting ---------------------

    def _plan_single(
        self,
        file_type: FileType,
        sha256: str,
        size: int,
        expected: tuple[ExpectedFile, ...],
        fallback_name: str,
        notes: tuple[str, ...] = (),
    ) -> VerificationResult:
        if not expected:
            doc = PlannedDocument(fallback_name, None, False, "no filmetadata")
        elif len(expected) == 1:
            entry = expected[0]
            verified = check_document(entry.filnavn, entry, sha256, size)
            doc = PlannedDocument(entry.filnavn, entry, verified, "" if verified else "no sha256")
        else:
            match = next((e for e in expected if e.known_sha256 == sha256), None)
            if match is not None:
                doc = PlannedDocument(match.filnavn, match, True)
            else:
                note = f"one combined file for {len(expected)} filmetadata entries"
                doc = PlannedDocument(fallback_name, None, False, note)
        notes += (f"{doc.name}: {doc.note}",) if doc.note else ()
        self._single = (doc, file_type)
        return VerificationResult(file_type, sha256, size, False, (doc,), notes=notes)

    def _plan_zip(
        self, sha256: str, size: int, expected: tuple[ExpectedFile, ...], fallback_name: str
    ) -> VerificationResult:
        if not self.container_zip and len(expected) == 1 and expected[0].known_sha256 == sha256:
            return self._plan_single(FileType.ZIP, sha256, size, expected, fallback_name)
        reader = ZipReader(self.plaintext, self.policy.limits)
        try:
            result = self._plan_entries(reader, sha256, size, expected, fallback_name)
        except BaseException:
            reader.close()
            raise
        if result.unpacked:
            self._zip = reader
        else:
            reader.close()
        return result

    def _plan_entries(
        self,
        reader: ZipReader,
        sha256: str,
        size: int,
        expected: tuple[ExpectedFile, ...],
        fallback_name: str,
    ) -> VerificationResult:
        names = reader.all_names
        if not self.container_zip and (
            "[Content_Types].xml" in names or names[:1] == ("mimetype",)
        ):
            kept = ("the zip is an office or signed document, kept whole",)
            return self._plan_single(FileType.ZIP, sha256, size, expected, fallback_name, kept)
        pairs = match_entries(reader.entries, expected)
        if len(expected) == 1 and all(e is None for _, e in pairs):
            if len(reader.entries) == 1 and (
                self.container_zip
                or (
                    expected[0].mimetype not in ZIP_MIMETYPES
                    and not expected[0].filnavn.lower().endswith(".zip")
                )
            ):
                pairs = [(reader.entries[0], expected[0])]
            elif not self.container_zip:  # (in V2's ZIP, an unnamed file is missing)
                kept = ("one filmetadata entry names no zip entry: the zip is the document",)
                return self._plan_single(FileType.ZIP, sha256, size, expected, fallback_name, kept)
        matched = {id(e) for _, e in pairs if e is not None}
        missing = tuple(e.filnavn for e in expected if id(e) not in matched)
        notes: list[str] = []
        if missing and not self.policy.allow_missing_documents:
            raise VerificationError(
                f"the zip lacks {len(missing)} document(s) listed in filmetadata: "
                + ", ".join(repr(m) for m in missing)
            )
        if self.container_zip:
            check_container(pairs)
        notes += [f"{m}: listed in filmetadata but not in the zip" for m in missing]
        planned = []
        for entry, exp in pairs:
            if exp is not None and exp.known_size is not None and entry.size > exp.known_size:
                raise UnsafeArchiveError(
                    f"zip entry {entry.name!r} is {entry.size} bytes, larger than the "
                    f"{exp.known_size} filmetadata declares"
                )
            note = (
                "not in filmetadata" if exp is None else ("" if exp.known_sha256 else "no sha256")
            )
            planned.append(PlannedDocument(entry.name, exp, bool(exp and exp.known_sha256), note))
            if note:
                notes.append(f"{entry.name}: {note}")
        if not planned:  # never "imported" with nothing in the archive
            raise VerificationError("the zip holds no document: a letter has at least one")
        self._pairs = pairs
        return VerificationResult(
            FileType.ZIP, sha256, size, True, tuple(planned), missing, tuple(notes)
        )

    # --- producing documents -----------------------------------------------------------

    def __enter__(self) -> LetterContents:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Remove the current extracted file and close the zip (idempotent)."""
        self._drop_current()
        if self._zip is not None:
            self._zip.close()
            self._zip = None

    def _drop_current(self) -> None:
        if self._current is not None:
            self._current.unlink(missing_ok=True)
            self._current = None

    def documents(self) -> Iterator[Document]:
        """Yield each document, checked; an unpacked entry's file is deleted when the next
        one is asked for. Raises the verification errors of the rules above."""
        if self._single is not None:
            doc, file_type = self._single
            mimetype = doc.expected.mimetype if doc.expected else None
            meta = DocumentMetadata(
                mimetype=mimetype or guess_mimetype(file_type),
                sha256=self._sha256,
                size=self.result.size,
                verified=doc.verified,
                filmetadata_name=doc.expected.filnavn if doc.expected else None,
                note=doc.note,
            )
            yield Document(doc.name, self.plaintext, meta)
            return
        if self._zip is None:
            raise VerificationError("the letter's zip was closed before its documents were read")
        for (entry, exp), planned in zip(self._pairs, self.result.documents, strict=True):
            self._drop_current()
            limit = exp.known_size if exp and exp.known_size is not None else entry.size
            if not isinstance(self._work_dir, Path):
                self._work_dir = self._work_dir()  # made once, at the first entry
            out = self._zip.extract(entry, self._work_dir, limit)
            self._current = out.path
            verified = check_document(entry.name, exp, out.sha256, out.size) if exp else False
            mimetype = exp.mimetype if exp else None
            meta = DocumentMetadata(
                mimetype=mimetype or guess_mimetype(detect_file_type(out.head)),
                sha256=out.sha256,
                size=out.size,
                verified=verified,
                filmetadata_name=exp.filnavn if exp else None,
                note=planned.note,
            )
            yield Document(entry.name, out.path, meta)
        self._drop_current()


def open_letter(
    plaintext: Path,
    *,
    sha256: str,
    size: int,
    expected: Sequence[ExpectedFile],
    work_dir: Path | Callable[[], Path],
    policy: VerifyPolicy | None = None,
    fallback_name: str = "dokument",
    container_zip: bool = False,
) -> LetterContents:
    """Check ``plaintext`` (its ``sha256`` and ``size`` computed while spooling) against
    filmetadata; raises VerificationError (and subclasses) or StorageError.

    ``container_zip`` (SvarInn V2): the plaintext must be a ZIP whose entries are the
    letter's files, each checked against filer[]; anything else fails permanently, and the
    zip is never taken for a document itself."""
    return LetterContents(
        plaintext,
        sha256=sha256,
        size=size,
        expected=expected,
        work_dir=work_dir,
        policy=policy or VerifyPolicy(),
        fallback_name=fallback_name,
        container_zip=container_zip,
    )
