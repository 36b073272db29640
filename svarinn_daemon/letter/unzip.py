"""SvarInn V2's ZIP checked and unpacked while it is being decrypted: one pass over each byte.

The decrypted bytes go to :meth:`StreamingUnzip.write` instead of a spool file. Each entry
is inflated, hashed and written to its own file in the letter's work directory as it
streams, so the container ZIP never touches the disk and is never read back. What
``verify.py`` checks on a ZIP in a file holds here too, and before anything is written:
an entry's name (no ``..``, no absolute path, no control characters, no duplicate), the
count of entries, encryption, an entry that filer[] cannot describe (a V2 ZIP holds exactly
filer[]), and while its bytes arrive, its size against filer[]'s, the total unpacked size
and the compression ratios, counted, never trusted. At the end the central directory must
describe exactly what streamed (the same entries at the same offsets, names, methods, CRCs
and sizes; no link or special file; nothing hidden, nothing extra), and then filer[] is
matched and checked with the same pure rules as a ZIP read from a file
(:mod:`~svarinn_daemon.letter.filmetadata`).
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from svarinn_daemon.adapters.base import DocumentMetadata
from svarinn_daemon.errors import NotAZipError, UnsafeArchiveError, VerificationError
from svarinn_daemon.letter.filmetadata import (
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
    nfc,
)
from svarinn_daemon.letter.spool import SpoolFile
from svarinn_daemon.letter.zipevents import (
    CentralRecord,
    EndOfZip,
    EntryData,
    EntryEnd,
    LocalHeader,
    NotStreamable,
)
from svarinn_daemon.letter.zipstream import ZipStream
from svarinn_daemon.letter.ziputil import (
    ZIP_MAGIC,
    check_entry_kind,
    check_entry_name,
    decode_entry_name,
)
from svarinn_daemon.policies import VerifyPolicy

__all__ = ["NotStreamable", "StreamedLetter", "StreamingUnzip"]

HEAD = 1024  # bytes kept of each entry (and of the whole body) to tell its file type
# An entry larger than this (or of unknown size) is hashed by its spool file's own thread,
# beside the decryption and the writes; a smaller one here, where that costs less.
HASH_ON_WRITER = 8 << 20
# While an entry streams its ratio so far is judged only past this many bytes: a document may
# well begin with megabytes that compress far better than the whole (the whole is judged at
# its end, and a size its header declares at once), but not with this much.
RUNNING_RATIO_AFTER = 64 << 20


@dataclass
class _Entry:
    """One entry as it streamed: where its file is and what was measured."""

    name: str
    header: LocalHeader
    path: Path | None  # None for a directory
    limit: int | None  # the most filer[] lets it be
    size: int = 0
    packed: int = 0
    crc: int = 0
    sha256: str = ""
    head: bytes = b""
    described: bool = False  # the central directory named it
    digest: Any = None  # hashlib's sha256, when this thread hashes the entry


class StreamingUnzip:
    """Feed the decrypted body with :meth:`write`; :meth:`finish` checks the rest and
    returns the letter's documents. Any rule broken raises the error ``verify.py`` raises
    for it; :meth:`discard` removes what was written."""

    def __init__(self, expected: Sequence[ExpectedFile], policy: VerifyPolicy, work_dir: Path):
        self.expected = tuple(expected)
        self.limits = policy.limits
        self.allow_missing = policy.allow_missing_documents
        self.work_dir = work_dir
        # filer[] by name and by base name: each entry finds its candidates at once.
        self._by_path: dict[str, list[ExpectedFile]] = {}
        self._by_base: dict[str, list[ExpectedFile]] = {}
        for e in self.expected:
            self._by_path.setdefault(nfc(e.filnavn), []).append(e)
            self._by_base.setdefault(nfc(e.filnavn).rsplit("/", 1)[-1], []).append(e)
        self._parser = ZipStream(self._declared_size)
        self._head = bytearray()
        self._held = bytearray()
        self._zip: bool | None = None  # decided by the first bytes
        self._entries: list[_Entry] = []
        self._by_offset: dict[int, _Entry] = {}
        self._keys: set[str] = set()
        self._current: tuple[_Entry, SpoolFile | None] | None = None
        self._unpacked = 0
        self._records = 0
        self._directory: tuple[int, int] | None = None  # (first record's offset, bytes)
        self._end: EndOfZip | None = None

    # --- while the body streams ------------------------------------------------------

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        if len(self._head) < HEAD:
            self._head += bytes(data[: HEAD - len(self._head)])
        if self._zip is None:  # held back until the first four bytes tell
            self._held += data
            if len(self._held) < 4:
                return
            held, self._held = bytes(self._held), bytearray()
            self._zip = held[:4] in ZIP_MAGIC
            data = held
        if self._zip:
            self._feed(data)

    def _feed(self, data: bytes | bytearray | memoryview) -> None:
        for event in self._parser.feed(data):
            if isinstance(event, EntryData):
                self._data(event.data)
            elif isinstance(event, LocalHeader):
                self._begin(event)
            elif isinstance(event, EntryEnd):
                self._finish_entry(event)
            elif isinstance(event, CentralRecord):
                self._describe(event)
            else:
                self._end = event

    def _begin(self, header: LocalHeader) -> None:
        """Every rule that can be decided from a local header, before a byte is written."""
        name = decode_entry_name(header.raw_name, utf8_flag=bool(header.flags & 0x800))
        check_entry_name(name)
        if header.flags & 0x1:
            raise UnsafeArchiveError(f"zip entry {name!r} is encrypted")
        if len(self._entries) + 1 > self.limits.max_entries:
            raise UnsafeArchiveError(
                f"the zip has {len(self._entries) + 1} entries, more than the limit of "
                f"{self.limits.max_entries}"
            )
        key = name.rstrip("/")
        if key in self._keys:
            raise UnsafeArchiveError(f"zip entry {name!r} occurs twice")
        self._keys.add(key)
        if header.size is not None and header.compressed_size is not None:
            self._check_ratio(name, header.size, header.compressed_size)  # as declared
        is_dir = name.endswith("/")
        limit = None if is_dir else self._limit(name)
        path = None if is_dir else self.work_dir / f"zip-entry-{len(self._entries)}.part"
        entry = _Entry(name, header, path, limit)
        self._entries.append(entry)
        self._by_offset[header.offset] = entry
        out = None
        if path is not None:
            hint = header.size if header.size is not None else limit
            if hint is None or hint > HASH_ON_WRITER:
                out = SpoolFile(path, digest=hashlib.sha256())
            else:
                entry.digest = hashlib.sha256()
                out = SpoolFile(path)
        self._current = (entry, out)

    def _candidates(self, name: str) -> list[ExpectedFile]:
        """The filer[] entries that could describe an entry of this name (by path, by base
        name, or the only one)."""
        if len(self.expected) == 1:
            return list(self.expected)
        full = nfc(name)
        found = self._by_path.get(full, []) + self._by_base.get(full.rsplit("/", 1)[-1], [])
        return list({id(e): e for e in found}.values())

    def _limit(self, name: str) -> int | None:
        """The largest size filer[] gives an entry of this name; an entry it cannot
        describe fails the letter here (a V2 ZIP holds exactly filer[])."""
        candidates = self._candidates(name)
        if not candidates:
            check_container([(_Named(name), None)])
        sizes = [e.known_size for e in candidates]
        return None if None in sizes else max(s for s in sizes if s is not None)

    def _declared_size(self, header: LocalHeader) -> int | None:
        """A stored entry's size, when only its data descriptor would say: filer[]'s, when
        exactly one size fits its name (else the ZIP is read from a file)."""
        name = decode_entry_name(header.raw_name, utf8_flag=bool(header.flags & 0x800))
        sizes = {e.known_size for e in self._candidates(name)}
        return sizes.pop() if len(sizes) == 1 else None

    def _data(self, data: bytes | memoryview) -> None:
        assert self._current is not None
        entry, out = self._current
        entry.size += len(data)
        self._unpacked += len(data)
        if entry.limit is not None and entry.size > entry.limit:
            raise UnsafeArchiveError(
                f"zip entry {entry.name!r} is larger than filmetadata says ({entry.limit} bytes)"
            )
        if self._unpacked > self.limits.max_total_size:
            raise UnsafeArchiveError(
                f"the zip unpacks to more than the limit of {self.limits.max_total_size} bytes"
            )
        if entry.header.size is not None and entry.size > entry.header.size:
            raise UnsafeArchiveError(
                f"zip entry {entry.name!r} is larger than its header says "
                f"({entry.header.size} bytes)"
            )
        if entry.size > RUNNING_RATIO_AFTER:
            self._check_ratio(entry.name, entry.size, self._parser.entry_consumed)
        if self._unpacked > RUNNING_RATIO_AFTER:
            self._check_ratio(None, self._unpacked, self._parser.position)
        if out is None:
            return
        if len(entry.head) < HEAD:
            entry.head += bytes(data[: HEAD - len(entry.head)])
        if entry.digest is not None:
            entry.digest.update(data)
        out.write(data)

    def _check_ratio(self, name: str | None, unpacked: int, packed: int) -> None:
        if unpacked <= self.limits.ratio_min_size:
            return
        ratio = unpacked / max(packed, 1)
        if ratio <= self.limits.max_ratio:
            return
        limit = f"more than the limit of {self.limits.max_ratio:g}:1"
        if name is not None:
            raise UnsafeArchiveError(f"zip entry {name!r} is compressed {ratio:.0f}:1, {limit}")
        raise UnsafeArchiveError(
            f"the zip's {len(self._entries)} entries unpack to {unpacked} bytes from "
            f"{packed} so far, {ratio:.0f}:1, {limit}"
        )

    def _finish_entry(self, end: EntryEnd) -> None:
        assert self._current is not None
        entry, out = self._current
        self._current = None
        entry.crc, entry.packed = end.crc, end.compressed_size
        self._check_ratio(entry.name, entry.size, end.compressed_size)
        if out is not None:
            with out:
                out.finish()
            digest = entry.digest or out.digest
            assert digest is not None
            entry.sha256 = digest.hexdigest()

    def _describe(self, record: CentralRecord) -> None:
        """A central-directory record must describe an entry that streamed, as it was."""
        self._records += 1
        if self._records > self.limits.max_entries:
            raise UnsafeArchiveError(
                f"the zip's central directory holds more than {self.limits.max_entries} entries"
            )
        first, length = self._directory or (record.offset, 0)
        self._directory = (first, length + record.record_size)
        entry = self._by_offset.get(record.local_offset)
        if entry is None or entry.described:
            raise _corrupt("its central directory lists an entry that is not in the stream")
        entry.described = True
        header = entry.header
        name = decode_entry_name(record.raw_name, utf8_flag=bool(record.flags & 0x800))
        check_entry_kind(
            name,
            system=record.made_by_system,
            external_attr=record.external_attr,
            flags=record.flags,
            method=record.method,
        )
        if (record.raw_name, record.method) != (header.raw_name, header.method):
            raise _corrupt(f"entry {name!r} differs between its header and the directory")
        if (record.size, record.compressed_size, record.crc) != (
            entry.size,
            entry.packed,
            entry.crc,
        ):
            raise _corrupt(f"the directory's sizes or CRC of {name!r} are not what streamed")

    # --- at the end --------------------------------------------------------------------

    def finish(self, *, size: int) -> StreamedLetter:
        """The body ended (``size`` bytes decoded): check what only the end can show and plan
        the documents, as ``verify.py`` does for a ZIP in a file. The ZIP itself is not
        hashed (its entries are): the result's ``sha256`` is None."""
        if not self._zip:
            raise NotAZipError(
                f"a SvarInn V2 download is always a ZIP of the letter's files, but this one "
                f"decrypted to {described(detect_file_type(bytes(self._head)))} ({size} "
                "bytes): it cannot be checked against filer[]"
            )
        self._parser.close()
        self._check_end()
        files = [e for e in self._entries if e.path is not None]
        self._check_ratio(None, self._unpacked, size)
        pairs = match_entries(files, self.expected)
        if len(self.expected) == 1 and len(files) == 1 and pairs[0][1] is None:
            pairs = [(files[0], self.expected[0])]
        matched = {id(e) for _, e in pairs if e is not None}
        missing = tuple(e.filnavn for e in self.expected if id(e) not in matched)
        if missing and not self.allow_missing:
            raise VerificationError(
                f"the zip lacks {len(missing)} document(s) listed in filmetadata: "
                + ", ".join(repr(m) for m in missing)
            )
        check_container(pairs)
        notes = [f"{m}: listed in filmetadata but not in the zip" for m in missing]
        planned: list[tuple[_Entry, PlannedDocument]] = []
        for entry, exp in pairs:
            assert exp is not None  # check_container refused the rest
            verified = check_document(entry.name, exp, entry.sha256, entry.size)
            note = "" if exp.known_sha256 else "no sha256"
            planned.append((entry, PlannedDocument(entry.name, exp, verified, note)))
            if note:
                notes.append(f"{entry.name}: {note}")
        if not planned:  # never "imported" with nothing in the archive
            raise VerificationError("the zip holds no document: a letter has at least one")
        result = VerificationResult(
            FileType.ZIP,
            None,
            size,
            True,
            tuple(p for _, p in planned),
            missing,
            tuple(notes),
        )
        return StreamedLetter(result, tuple(planned), self.work_dir)

    def _check_end(self) -> None:
        end = self._end
        assert end is not None  # the parser closed at its end record
        hidden = [e.name for e in self._entries if not e.described]
        if hidden:
            raise _corrupt(f"{len(hidden)} entries are not in its central directory")
        start, length = self._directory or (self._parser.position, 0)
        if (end.entries, end.directory_size) != (self._records, length):
            raise _corrupt("its end record does not count the central directory")
        if self._directory is not None and end.directory_offset != start:
            raise _corrupt("its end record does not point at the central directory")

    def discard(self) -> None:
        """Remove every file written (the work directory with them)."""
        if self._current is not None and self._current[1] is not None:
            self._current[1].remove()
        shutil.rmtree(self.work_dir, ignore_errors=True)


class StreamedLetter:
    """The checked documents of a streamed V2 letter, each already in its own file: the
    same face as :class:`~svarinn_daemon.letter.verify.LetterContents`."""

    def __init__(
        self,
        result: VerificationResult,
        planned: tuple[tuple[_Entry, PlannedDocument], ...],
        work_dir: Path,
    ):
        self.result = result
        self._planned = planned
        self.work_dir = work_dir

    def __enter__(self) -> StreamedLetter:
        return self

    def __exit__(self, *exc: object) -> None:
        """Nothing to close: the files go with the work directory."""

    @property
    def hashes(self) -> tuple[str, ...]:
        """Each document's sha256, in order."""
        return tuple(entry.sha256 for entry, _ in self._planned)

    def documents(self) -> Iterator[Document]:
        for entry, planned in self._planned:
            assert entry.path is not None
            exp = planned.expected
            meta = DocumentMetadata(
                mimetype=(exp.mimetype if exp else None)
                or guess_mimetype(detect_file_type(entry.head)),
                sha256=entry.sha256,
                size=entry.size,
                verified=planned.verified,
                filmetadata_name=exp.filnavn if exp else None,
                note=planned.note,
            )
            yield Document(entry.name, entry.path, meta)


@dataclass(frozen=True)
class _Named:
    name: str


def _corrupt(what: str) -> VerificationError:
    return VerificationError(f"the zip file is corrupt: {what}")
