"""V2's ZIP unpacked as it streams (``unzip.py``, ``zipstream.py``) keeps every rule a ZIP read
from a file keeps: for each ZIP here, good or hostile, fed in chunks of every size, the
outcome is the one ``open_letter(container_zip=True)`` gives for the same bytes in a file --
the same documents, checks and notes, or the same error."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import random
import stat
import struct
import warnings
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from svarinn_daemon.errors import DaemonError, UnsafeArchiveError, VerificationError
from svarinn_daemon.letter.filmetadata import ExpectedFile
from svarinn_daemon.letter.unzip import NotStreamable, StreamingUnzip
from svarinn_daemon.letter.verify import open_letter
from svarinn_daemon.letter.zipevents import EntryData, LocalHeader
from svarinn_daemon.letter.zipstream import OUTPUT, ZipStream
from svarinn_daemon.policies import VerifyPolicy, ZipLimits

PDF = b"%PDF-1.7\n" + bytes(range(256)) * 40
TEXT = "Søknad om løyve\n".encode() * 300


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def exp(
    name: str, data: bytes, *, size: int | None = None, digest: str | None = ""
) -> ExpectedFile:
    return ExpectedFile(
        name, None, sha(data) if digest == "" else digest, len(data) if size is None else size
    )


class _Unseekable(io.RawIOBase):
    """Where zipfile writes a streaming ZIP: sizes after each entry, in a descriptor."""

    def __init__(self) -> None:
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        self.data += b
        return len(b)


def build(
    entries: Sequence[tuple[str | zipfile.ZipInfo, bytes]],
    *,
    method: int = zipfile.ZIP_DEFLATED,
    seekable: bool = True,
    zip64: bool = False,
) -> bytes:
    sink: Any = io.BytesIO() if seekable else _Unseekable()
    with warnings.catch_warnings(), zipfile.ZipFile(sink, "w", method) as zf:
        warnings.simplefilter("ignore")  # duplicate names are written on purpose
        for name, data in entries:
            info = name if isinstance(name, zipfile.ZipInfo) else zipfile.ZipInfo(name)
            info.compress_type = method
            with zf.open(info, "w", force_zip64=zip64) as out:
                out.write(data)
    return bytes(sink.getvalue() if seekable else sink.data)


def flag_encrypted(data: bytes) -> bytes:
    """Set the encryption bit in every local header and central record."""
    out = bytearray(data)
    for signature, at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        start = 0
        while (found := out.find(signature, start)) >= 0:
            out[found + at] |= 1
            start = found + 4
    return bytes(out)


def renamed_in_directory(data: bytes, old: bytes, new: bytes) -> bytes:
    """The central directory names an entry otherwise than its local header does."""
    at = data.rfind(b"PK\x01\x02")
    return data[:at] + data[at:].replace(old, new, 1)


def symlink(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


BOMB = bytes(4 << 20)
# Past the ratio check's 1 MiB, compressing about 4:1: where zlib's leftovers at the end of
# an entry once made a good letter look like a bomb.
LARGE = random.Random(1).randbytes(600_000) + TEXT * 400
Case = tuple[bytes, list[ExpectedFile], VerifyPolicy]
POLICY = VerifyPolicy()
SMALL = VerifyPolicy(ZipLimits(max_entries=3, max_total_size=10_000))

CASES: dict[str, Callable[[], Case]] = {
    "deflated": lambda: (
        build([("brev.pdf", PDF), ("vedlegg.txt", TEXT)]),
        [exp("brev.pdf", PDF), exp("vedlegg.txt", TEXT)],
        POLICY,
    ),
    "stored": lambda: (
        build([("brev.pdf", PDF), ("a/vedlegg.txt", TEXT)], method=zipfile.ZIP_STORED),
        [exp("brev.pdf", PDF), exp("vedlegg.txt", TEXT)],
        POLICY,
    ),
    "stored, sizes after the data": lambda: (
        build([("brev.pdf", PDF), ("v.txt", TEXT)], method=zipfile.ZIP_STORED, seekable=False),
        [exp("brev.pdf", PDF), exp("v.txt", TEXT)],
        POLICY,
    ),
    "stored, sizes after the data, zip64": lambda: (
        build(
            [("brev.pdf", PDF), ("v.txt", TEXT)],
            method=zipfile.ZIP_STORED,
            seekable=False,
            zip64=True,
        ),
        [exp("brev.pdf", PDF), exp("v.txt", TEXT)],
        POLICY,
    ),
    "another name in the directory": lambda: (
        renamed_in_directory(build([("brev.pdf", PDF)]), b"brev.pdf", b"brev.exe"),
        [exp("brev.pdf", PDF)],
        POLICY,
    ),
    "deflated, sizes after the data, zip64": lambda: (
        build([("brev.pdf", PDF), ("v.txt", TEXT)], seekable=False, zip64=True),
        [exp("brev.pdf", PDF), exp("v.txt", TEXT)],
        POLICY,
    ),
    "large deflated documents": lambda: (
        build([("brev.pdf", LARGE), ("vedlegg.pdf", LARGE[::-1])]),
        [exp("brev.pdf", LARGE), exp("vedlegg.pdf", LARGE[::-1])],
        POLICY,
    ),
    "no sha256, a directory entry": lambda: (
        build([("mappe/", b""), ("mappe/brev.pdf", PDF)]),
        [exp("brev.pdf", PDF, digest=None)],
        POLICY,
    ),
    "one file under another name": lambda: (
        build([("x.pdf", PDF)]),
        [exp("brev.pdf", PDF)],
        POLICY,
    ),
    "an entry filer[] does not list": lambda: (
        build([("brev.pdf", PDF), ("ekstra.exe", TEXT)]),
        [exp("brev.pdf", PDF), exp("vedlegg.txt", TEXT)],
        POLICY,
    ),
    "a listed file missing": lambda: (
        build([("brev.pdf", PDF)]),
        [exp("brev.pdf", PDF), exp("vedlegg.txt", TEXT)],
        POLICY,
    ),
    "a listed file missing, imported": lambda: (
        build([("brev.pdf", PDF)]),
        [exp("brev.pdf", PDF), exp("vedlegg.txt", TEXT)],
        VerifyPolicy(allow_missing_documents=True),
    ),
    "sha256 mismatch": lambda: (
        build([("brev.pdf", PDF), ("v.txt", TEXT)]),
        [exp("brev.pdf", PDF), exp("v.txt", TEXT, digest=sha(b"other"))],
        POLICY,
    ),
    "smaller than filer[] says": lambda: (
        build([("brev.pdf", PDF), ("v.txt", TEXT)]),
        [exp("brev.pdf", PDF), exp("v.txt", TEXT, size=len(TEXT) + 1)],
        POLICY,
    ),
    "larger than filer[] says": lambda: (
        build([("brev.pdf", PDF), ("v.txt", TEXT)]),
        [exp("brev.pdf", PDF), exp("v.txt", TEXT, size=10)],
        POLICY,
    ),
    "..": lambda: (build([("../../etc/passwd", TEXT)]), [exp("passwd", TEXT)], POLICY),
    "absolute": lambda: (build([("/etc/passwd", TEXT)]), [exp("passwd", TEXT)], POLICY),
    "drive letter": lambda: (build([("C:/x/passwd", TEXT)]), [exp("passwd", TEXT)], POLICY),
    "control characters": lambda: (build([("a\x07.txt", TEXT)]), [exp("a.txt", TEXT)], POLICY),
    "twice the same name": lambda: (
        build([("brev.pdf", PDF), ("brev.pdf", PDF)]),
        [exp("brev.pdf", PDF)],
        POLICY,
    ),
    "a symbolic link": lambda: (
        build([(symlink("brev.pdf"), b"/etc/passwd")]),
        [exp("brev.pdf", b"/etc/passwd")],
        POLICY,
    ),
    "encrypted": lambda: (
        flag_encrypted(build([("brev.pdf", PDF)], method=zipfile.ZIP_STORED)),
        [exp("brev.pdf", PDF)],
        POLICY,
    ),
    "too many entries": lambda: (
        build([(f"{n}.txt", b"x") for n in range(4)]),
        [exp(f"{n}.txt", b"x") for n in range(4)],
        SMALL,
    ),
    "unpacks past the limit": lambda: (
        build([("a.txt", TEXT * 3)]),
        [exp("a.txt", TEXT * 3)],
        SMALL,
    ),
    "a bomb": lambda: (build([("a.bin", BOMB)]), [exp("a.bin", BOMB)], POLICY),
    "many small bombs": lambda: (
        build([(f"{n}.bin", bytes(600_000)) for n in range(8)]),
        [exp(f"{n}.bin", bytes(600_000)) for n in range(8)],
        POLICY,
    ),
    "empty": lambda: (build([]), [exp("brev.pdf", PDF)], POLICY),
    "no zip at all": lambda: (PDF, [exp("brev.pdf", PDF)], POLICY),
    "bytes after the end": lambda: (
        build([("brev.pdf", PDF)]) + b"\0" * 7000,
        [exp("brev.pdf", PDF)],
        POLICY,
    ),
    "truncated": lambda: (build([("brev.pdf", PDF)])[:-30], [exp("brev.pdf", PDF)], POLICY),
}


def from_file(case: Case, work: Path) -> object:
    data, expected, policy = case
    path = work / "letter.zip"
    path.write_bytes(data)
    letter = open_letter(
        path,
        sha256=sha(data),
        size=len(data),
        expected=expected,
        work_dir=work,
        policy=policy,
        container_zip=True,
    )
    with letter:
        docs = [(d.name, d.metadata, d.path.read_bytes()) for d in letter.documents()]
    # The only difference: a streamed ZIP is not hashed whole (its documents are).
    assert letter.result.sha256 == sha(data)
    return dataclasses.replace(letter.result, sha256=None), docs


def streamed(case: Case, work: Path, chunks: Sequence[int]) -> object:
    data, expected, policy = case
    work.mkdir()
    unzip = StreamingUnzip(expected, policy, work)
    try:
        at, sizes = 0, iter(chunks)
        while at < len(data):
            step = next(sizes, 65536)
            unzip.write(memoryview(data)[at : at + step])
            at += step
        letter = unzip.finish(size=len(data))
        docs = [(d.name, d.metadata, d.path.read_bytes()) for d in letter.documents()]
    finally:
        unzip.discard()
    assert not work.exists()  # nothing left behind, whatever the outcome
    return letter.result, docs


def unpack(unzip: StreamingUnzip, data: bytes) -> None:
    """All of ``data``, then the end: wherever the stream finds what is wrong."""
    unzip.write(data)
    unzip.finish(size=len(data))


def outcome(run: Callable[[], object]) -> object:
    try:
        return run()
    except DaemonError as exc:
        return type(exc)


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("chunking", ["whole", "1 byte", "random"])
def test_streaming_gives_what_reading_the_file_gives(
    name: str, chunking: str, tmp_path: Path
) -> None:
    case = CASES[name]()
    size = len(case[0])
    chunks = {
        "whole": [size],
        "1 byte": [1] * min(size, 5000) + [size],
        "random": [random.Random(name).randint(1, 9000) for _ in range(size)],
    }[chunking]
    (tmp_path / "file").mkdir()
    want = outcome(lambda: from_file(case, tmp_path / "file"))
    got = outcome(lambda: streamed(case, tmp_path / "stream", chunks))
    assert got == want


def test_a_good_letter_never_lands_in_a_zip_file(tmp_path: Path) -> None:
    data, expected, policy = CASES["deflated"]()
    unzip = StreamingUnzip(expected, policy, tmp_path)
    unzip.write(data)
    letter = unzip.finish(size=len(data))
    files = sorted(p.read_bytes() for p in tmp_path.iterdir())
    assert files == sorted([PDF, TEXT])  # the documents, and no copy of the container
    assert letter.result.verified


@pytest.mark.parametrize(
    ("entries", "expected", "method"),
    [
        ([("a.txt", TEXT)], [exp("a.txt", TEXT, size=0)], zipfile.ZIP_STORED),  # size unknown
        ([("a.txt", TEXT)], [exp("a.txt", TEXT, size=7)], zipfile.ZIP_STORED),  # size wrong
        ([("a.txt", TEXT)], [exp("a.txt", TEXT)], zipfile.ZIP_BZIP2),
    ],
    ids=["stored, its size nowhere", "stored, filer[] wrong about its size", "bzip2"],
)
def test_what_cannot_be_streamed_says_so(
    entries: list[tuple[str, bytes]], expected: list[ExpectedFile], method: int, tmp_path: Path
) -> None:
    data = build(entries, method=method, seekable=False)
    unzip = StreamingUnzip(expected, POLICY, tmp_path)
    with pytest.raises(NotStreamable):
        unpack(unzip, data)
    unzip.discard()


def test_the_central_directory_must_describe_what_streamed(tmp_path: Path) -> None:
    data = bytearray(build([("brev.pdf", PDF)], method=zipfile.ZIP_STORED))
    central = data.rfind(b"PK\x01\x02")
    struct.pack_into("<L", data, central + 16, 0x12345678)  # another CRC
    unzip = StreamingUnzip([exp("brev.pdf", PDF)], POLICY, tmp_path)
    with pytest.raises(VerificationError, match="not what streamed"):
        unpack(unzip, bytes(data))


def test_an_entry_the_directory_hides_is_refused(tmp_path: Path) -> None:
    """Two local entries, a directory listing one: the other would be imported unseen."""
    one = build([("brev.pdf", PDF)], method=zipfile.ZIP_STORED)
    two = build([("brev.pdf", PDF), ("skjult.txt", TEXT)], method=zipfile.ZIP_STORED)
    hidden = two[: two.find(b"PK\x01\x02")] + one[one.find(b"PK\x01\x02") :]
    unzip = StreamingUnzip([exp("brev.pdf", PDF), exp("skjult.txt", TEXT)], POLICY, tmp_path)
    with pytest.raises(VerificationError, match=r"not in its central directory|end record"):
        unpack(unzip, hidden)


def test_a_bomb_is_stopped_early_with_little_written(tmp_path: Path) -> None:
    """Refused once the ratio passes the limit, long before 64 MiB of zeros is written."""
    zeros = bytes(64 << 20)
    raw = build([("a.bin", zeros)])
    unzip = StreamingUnzip([exp("a.bin", zeros)], POLICY, tmp_path)
    with pytest.raises(UnsafeArchiveError, match="compressed"):  # noqa: PT012
        for start in range(0, len(raw), 4096):
            unzip.write(raw[start : start + 4096])
    assert sum(p.stat().st_size for p in tmp_path.iterdir()) < 4 << 20


def test_the_parser_inflates_in_bounded_pieces() -> None:
    raw = build([("a.bin", bytes(16 << 20))])
    stream = ZipStream(lambda _header: None)
    pieces = [e.data for e in stream.feed(raw) if isinstance(e, EntryData)]
    stream.close()
    assert max(len(p) for p in pieces) <= OUTPUT
    assert sum(len(p) for p in pieces) == 16 << 20


def test_a_local_header_is_reported_before_its_data() -> None:
    raw = build([("brev.pdf", PDF)])
    events = list(ZipStream(lambda _header: None).feed(raw))
    assert isinstance(events[0], LocalHeader)
    assert events[0].raw_name == b"brev.pdf"
