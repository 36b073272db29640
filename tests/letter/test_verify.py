"""verify.py: file types, the single-file and zip rules, unsafe and corrupt zips."""

from __future__ import annotations

import os
import stat
import struct
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from svarinn_daemon.errors import (
    ChecksumMismatchError,
    UnsafeArchiveError,
    VerificationError,
)
from svarinn_daemon.letter.verify import (
    Document,
    ExpectedFile,
    FileType,
    detect_file_type,
    open_letter,
)
from svarinn_daemon.policies import VerifyPolicy, ZipLimits
from tests.support.cmshelpers import sha256_file
from tests.support.zips import documents, make_zip, sha

SMALL_PDF_SHA = "8b628fc6410a8617083a6a265c4d9ac6c8f501aa378d8137e9aae0403db95d39"
DOKUMENTER_SHA = "9a71850e8f9e4e0269b37caf8640bca85d4f56147b9e3cae0e8b07b6f98d80a0"


def patch_central(
    path: Path, offset: int, fmt: str, change: object, signature: bytes = b"PK\x01\x02"
) -> None:
    """Overwrite a field of the first central directory header (or another signature)."""
    data = bytearray(path.read_bytes())
    pos = data.index(signature)
    (old,) = struct.unpack_from(fmt, data, pos + offset)
    new = change(old) if callable(change) else change
    struct.pack_into(fmt, data, pos + offset, new)
    path.write_bytes(bytes(data))


# --- file types and single files ------------------------------------------------------


@pytest.mark.parametrize(
    ("head", "kind"),
    [
        (b"PK\x03\x04rest", FileType.ZIP),
        (b"PK\x05\x06" + bytes(18), FileType.ZIP),
        (b"%PDF-1.7\n", FileType.PDF),
        (b"\xef\xbb\xbfjunk before %PDF-1.4", FileType.PDF),
        (b"<html>", FileType.OTHER),
        (b"", FileType.OTHER),
    ],
)
def test_detect_file_type(head: bytes, kind: FileType) -> None:
    assert detect_file_type(head) is kind


def test_conformance_pdf_verified_whatever_its_name(conformance_dir: Path, work: Path) -> None:
    pdf = conformance_dir / "small.pdf"
    expected = [ExpectedFile("dokument-d1c6d795.pdf", "application/pdf", SMALL_PDF_SHA, 3151)]
    result, [(doc, data)] = documents(pdf, expected, work)
    assert result.file_type is FileType.PDF
    assert result.verified
    assert not result.unpacked
    assert doc.name == "dokument-d1c6d795.pdf"
    assert doc.path == pdf  # single files are not copied
    assert doc.metadata.verified
    assert doc.metadata.sha256 == SMALL_PDF_SHA
    assert doc.metadata.size == 3151
    assert doc.metadata.mimetype == "application/pdf"
    assert data == pdf.read_bytes()
    assert pdf.exists()  # the caller's spool file is the caller's to remove


def test_single_file_without_sha256_is_unverified(conformance_dir: Path, work: Path) -> None:
    # As in the real hentNyeForsendelser.json: older letters have no sha256hash and size 0.
    expected = [ExpectedFile("dokument.pdf", "application/pdf", None, 0)]
    result, [(doc, _)] = documents(conformance_dir / "small.pdf", expected, work)
    assert not result.verified
    assert not doc.metadata.verified
    assert result.notes == ("dokument.pdf: no sha256",)
    record = result.record(
        encrypted=True, downloaded_at=datetime.now(UTC), verified_at=datetime.now(UTC)
    )
    assert not record.verified
    assert record.file_type == "pdf"


@pytest.mark.parametrize(
    ("expected", "message"),
    [
        (ExpectedFile("a.pdf", None, "00" * 32, None), "has sha256 8b628f"),
        (
            ExpectedFile("a.pdf", None, SMALL_PDF_SHA, 3000),
            "is 3151 bytes, but filmetadata says 3000",
        ),
        (ExpectedFile("a.pdf", None, None, 1), "is 3151 bytes"),
    ],
)
def test_single_file_mismatch(
    conformance_dir: Path, work: Path, expected: ExpectedFile, message: str
) -> None:
    with pytest.raises(ChecksumMismatchError, match=message) as info:
        documents(conformance_dir / "small.pdf", [expected], work)
    assert info.value.temporary  # the retry policy downloads again, a bounded number of times


def test_sha256_is_compared_case_insensitively(conformance_dir: Path, work: Path) -> None:
    expected = [ExpectedFile("a.pdf", None, SMALL_PDF_SHA.upper(), 3151)]
    result, _ = documents(conformance_dir / "small.pdf", expected, work)
    assert result.verified


def test_no_filmetadata_uses_the_fallback_name(conformance_dir: Path, work: Path) -> None:
    result, [(doc, _)] = documents(conformance_dir / "small.pdf", [], work, fallback_name="x.pdf")
    assert doc.name == "x.pdf"
    assert not result.verified


def test_combined_pdf_for_several_entries(conformance_dir: Path, work: Path) -> None:
    parts = [ExpectedFile("a.pdf", None, "11" * 32, 10), ExpectedFile("b.pdf", None, "22" * 32, 20)]
    result, [(doc, _)] = documents(
        conformance_dir / "small.pdf", parts, work, fallback_name="f.pdf"
    )
    assert doc.name == "f.pdf"
    assert not result.verified
    assert result.notes == ("f.pdf: one combined file for 2 filmetadata entries",)
    # ... but if one of the entries describes the whole file, it is verified against it
    parts.append(ExpectedFile("samlet.pdf", None, SMALL_PDF_SHA, 3151))
    result, [(doc, _)] = documents(conformance_dir / "small.pdf", parts, work)
    assert (doc.name, result.verified) == ("samlet.pdf", True)


# --- zips ----------------------------------------------------------------------------


def test_conformance_zip_verified(conformance_dir: Path, work: Path) -> None:
    zpath = conformance_dir / "dokumenter.zip"
    with zipfile.ZipFile(zpath) as zf:
        text = zf.read("text.txt")
    expected = [
        ExpectedFile("small.pdf", "application/pdf", SMALL_PDF_SHA, 3151),
        ExpectedFile("text.txt", "text/plain", sha(text), len(text)),
    ]
    result, docs = documents(zpath, expected, work)
    assert result.sha256 == DOKUMENTER_SHA
    assert (result.file_type, result.unpacked, result.verified) == (FileType.ZIP, True, True)
    assert [(d.name, d.metadata.mimetype, d.metadata.verified) for d, _ in docs] == [
        ("small.pdf", "application/pdf", True),
        ("text.txt", "text/plain", True),
    ]
    assert sha(docs[0][1]) == SMALL_PDF_SHA
    assert docs[1][1] == text
    assert list(work.iterdir()) == []  # every extracted file is gone after close


def test_conformance_letter_lists_a_document_the_zip_lacks(
    conformance_dir: Path, work: Path
) -> None:
    # hentNyeForsendelser.json's second letter lists small.pdf, text.txt and text2.txt,
    # while dokumenter.zip holds only the first two.
    expected = [
        ExpectedFile("small.pdf", "application/pdf"),
        ExpectedFile("text.txt", "text/plain"),
        ExpectedFile("text2.txt", "text/plain"),
    ]
    zpath = conformance_dir / "dokumenter.zip"
    with pytest.raises(VerificationError, match=r"lacks 1 document.*'text2.txt'") as info:
        documents(zpath, expected, work)
    assert info.value.permanent
    policy = VerifyPolicy(allow_missing_documents=True)
    result, docs = documents(zpath, expected, work, policy=policy)
    assert [d.name for d, _ in docs] == ["small.pdf", "text.txt"]
    assert result.missing == ("text2.txt",)
    assert not result.verified
    assert "text2.txt: listed in filmetadata but not in the zip" in result.notes


def test_documents_arrive_one_at_a_time_as_private_files(tmp_path: Path, work: Path) -> None:
    zpath = make_zip(tmp_path / "l.zip", [("a.pdf", b"%PDF-a"), ("sub/b.txt", b"b"), ("dir/", b"")])
    digest, size = sha256_file(zpath)
    seen: list[Document] = []
    with open_letter(zpath, sha256=digest, size=size, expected=[], work_dir=work) as letter:
        for doc in letter.documents():
            assert stat.S_IMODE(doc.path.stat().st_mode) == 0o600
            assert list(work.iterdir()) == [doc.path]  # the previous one is gone
            seen.append(doc)
    assert [d.name for d in seen] == ["a.pdf", "sub/b.txt"]
    assert [d.metadata.mimetype for d in seen] == ["application/pdf", None]
    assert letter.result.notes == ("a.pdf: not in filmetadata", "sub/b.txt: not in filmetadata")
    assert list(work.iterdir()) == []


def test_a_work_directory_is_made_only_for_a_zip_that_is_unpacked(
    tmp_path: Path, work: Path
) -> None:
    """Most letters are one document: no directory is made (and removed) for them."""
    made: list[Path] = []

    def make() -> Path:
        made.append(work / f"d{len(made)}")
        made[-1].mkdir()
        return made[-1]

    pdf = tmp_path / "brev.pdf"
    pdf.write_bytes(b"%PDF-1.4 brev")
    digest, size = sha256_file(pdf)
    with open_letter(pdf, sha256=digest, size=size, expected=[], work_dir=make) as letter:
        assert [d.path for d in letter.documents()] == [pdf]
    assert made == []
    zpath = make_zip(tmp_path / "l.zip", [("a.pdf", b"%PDF-a"), ("b.pdf", b"%PDF-b")])
    digest, size = sha256_file(zpath)
    with open_letter(zpath, sha256=digest, size=size, expected=[], work_dir=make) as letter:
        assert [d.path.parent for d in letter.documents()] == [work / "d0"] * 2
    assert made == [work / "d0"]  # once, for both entries


def test_entries_match_by_base_name_and_extra_entries_are_unverified(
    tmp_path: Path, work: Path
) -> None:
    zpath = make_zip(
        tmp_path / "l.zip", [("docs/a.pdf", b"A"), ("b.txt", b"B"), ("extra.txt", b"E")]
    )
    expected = [ExpectedFile("a.pdf", None, sha(b"A"), 1), ExpectedFile("b.txt", None, None, 1)]
    result, docs = documents(zpath, expected, work)
    assert [(d.name, d.metadata.filmetadata_name, d.metadata.verified) for d, _ in docs] == [
        ("docs/a.pdf", "a.pdf", True),
        ("b.txt", "b.txt", False),
        ("extra.txt", None, False),
    ]
    assert not result.verified
    assert result.notes == ("b.txt: no sha256", "extra.txt: not in filmetadata")


def test_ambiguous_base_names_are_not_guessed(tmp_path: Path, work: Path) -> None:
    zpath = make_zip(tmp_path / "l.zip", [("x/a.pdf", b"1"), ("y/a.pdf", b"2"), ("b", b"3")])
    expected = [ExpectedFile("a.pdf", None, sha(b"2"), 1), ExpectedFile("b", None, sha(b"3"), 1)]
    with pytest.raises(VerificationError, match=r"lacks 1 document.*'a.pdf'"):
        documents(zpath, expected, work)


def test_zip_entry_hash_mismatch(tmp_path: Path, work: Path) -> None:
    zpath = make_zip(tmp_path / "l.zip", [("a.pdf", b"A"), ("b.pdf", b"B")])
    expected = [
        ExpectedFile("a.pdf", None, sha(b"A"), 1),
        ExpectedFile("b.pdf", None, sha(b"X"), 1),
    ]
    with pytest.raises(ChecksumMismatchError, match=r"'b.pdf' has sha256"):
        documents(zpath, expected, work)
    assert list(work.iterdir()) == []


def test_entry_larger_than_declared_is_refused_before_extraction(
    tmp_path: Path, work: Path
) -> None:
    zpath = make_zip(tmp_path / "l.zip", [("a.pdf", b"A" * 100)])
    with pytest.raises(UnsafeArchiveError, match=r"larger than the 10 filmetadata declares"):
        documents(zpath, [ExpectedFile("a.pdf", None, None, 10)], work)


def test_entry_larger_than_its_header_is_refused(tmp_path: Path, work: Path) -> None:
    zpath = make_zip(tmp_path / "l.zip", [("a.txt", b"A" * 1000)])
    patch_central(zpath, 24, "<I", 10)  # uncompressed size in the central directory
    with pytest.raises(VerificationError, match=r"'a.txt' is corrupt"):
        documents(zpath, [], work)
    assert list(work.iterdir()) == []


@pytest.mark.parametrize(
    "name",
    [
        "../evil.pdf",
        "a/../../evil.pdf",
        "/etc/passwd",
        "C:/Windows/evil.dll",
        "c:evil",
        "a\\..\\..\\evil",
    ],
)
def test_unsafe_names(tmp_path: Path, work: Path, name: str) -> None:
    zpath = make_zip(tmp_path / "l.zip", [("ok.pdf", b"x"), (name, b"evil")])
    with pytest.raises(UnsafeArchiveError, match=r"absolute path|outside the archive"):
        documents(zpath, [], work)


def test_symlinks_and_special_files_are_refused(tmp_path: Path, work: Path) -> None:
    for kind, message in ((stat.S_IFLNK, "symbolic link"), (stat.S_IFIFO, "not a regular file")):
        info = zipfile.ZipInfo("link.pdf")
        info.create_system = 3
        info.external_attr = (kind | 0o777) << 16
        zpath = make_zip(tmp_path / "l.zip", [(info, b"/etc/passwd")])
        with pytest.raises(UnsafeArchiveError, match=message):
            documents(zpath, [], work)


def test_encrypted_entries_are_refused(tmp_path: Path, work: Path) -> None:
    zpath = make_zip(tmp_path / "l.zip", [("a.pdf", b"x")])
    patch_central(zpath, 8, "<H", lambda flags: flags | 0x1)
    with pytest.raises(UnsafeArchiveError, match=r"'a.pdf' is encrypted"):
        documents(zpath, [], work)


def test_unsupported_compression_is_refused(tmp_path: Path, work: Path) -> None:
    zpath = make_zip(tmp_path / "l.zip", [("a.pdf", b"x")])
    patch_central(zpath, 10, "<H", 99)
    with pytest.raises(VerificationError, match=r"compression method 99"):
        documents(zpath, [], work)


def test_duplicate_entries_are_refused(tmp_path: Path, work: Path) -> None:
    zpath = make_zip(tmp_path / "l.zip", [("a.pdf", b"1"), ("a.pdf", b"2")])
    with pytest.raises(UnsafeArchiveError, match=r"occurs twice"):
        documents(zpath, [], work)


def test_limits(tmp_path: Path, work: Path) -> None:
    zeros = make_zip(tmp_path / "bomb.zip", [("zeros.pdf", bytes(3 * 2**20))])
    with pytest.raises(UnsafeArchiveError, match=r"compressed \d+:1, more than the limit of 200:1"):
        documents(zeros, [], work)
    policy = VerifyPolicy(ZipLimits(max_total_size=2**20, max_ratio=10**6))
    with pytest.raises(UnsafeArchiveError, match=r"unpacks to more than the limit of 1048576"):
        documents(zeros, [], work, policy=policy)
    many = make_zip(tmp_path / "many.zip", [(f"{i}.txt", b"x") for i in range(4)])
    with pytest.raises(UnsafeArchiveError, match=r"4 entries, more than the limit of 3"):
        documents(many, [], work, policy=VerifyPolicy(ZipLimits(max_entries=3)))
    small = make_zip(tmp_path / "small.zip", [("zeros.txt", bytes(100_000))])
    result, _ = documents(small, [], work)  # highly compressible but small: fine
    assert result.unpacked


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_corrupt_zips(tmp_path: Path, work: Path, damage: str) -> None:
    zpath = make_zip(tmp_path / "l.zip", [("a.pdf", os.urandom(5000))])
    data = zpath.read_bytes()
    if damage == "truncate":
        zpath.write_bytes(data[:3000])
    else:
        zpath.write_bytes(data[:100] + bytes(200) + data[300:])
    with pytest.raises(VerificationError, match=r"corrupt") as info:
        documents(zpath, [], work)
    assert info.value.permanent
    assert list(work.iterdir()) == []


def test_utf8_names_without_the_utf8_flag(tmp_path: Path, work: Path) -> None:
    zpath = make_zip(tmp_path / "l.zip", [("søknad.pdf", b"x")])
    patch_central(zpath, 8, "<H", lambda flags: flags & ~0x800)
    patch_central(zpath, 6, "<H", lambda flags: flags & ~0x800, signature=b"PK\x03\x04")
    expected = [ExpectedFile("søknad.pdf", None, sha(b"x"), 1)]
    result, [(doc, _)] = documents(zpath, expected, work)
    assert (doc.name, result.verified) == ("søknad.pdf", True)


# --- zips that are documents themselves -----------------------------------------------


def test_office_document_is_kept_whole(tmp_path: Path, work: Path) -> None:
    docx = make_zip(
        tmp_path / "brev.docx", [("[Content_Types].xml", b"<x/>"), ("word/document.xml", b"<w/>")]
    )
    result, [(doc, data)] = documents(
        docx, [ExpectedFile("brev.docx", "application/vnd.openxml")], work
    )
    assert (result.file_type, result.unpacked, doc.name) == (FileType.ZIP, False, "brev.docx")
    assert data == docx.read_bytes()
    assert doc.metadata.mimetype == "application/vnd.openxml"


def test_zip_whose_sha256_is_declared_is_kept_whole(tmp_path: Path, work: Path) -> None:
    zpath = make_zip(tmp_path / "l.zip", [("../evil", b"never unpacked")])
    expected = [ExpectedFile("pakke.zip", "application/zip", sha(zpath.read_bytes()), None)]
    result, [(doc, _)] = documents(zpath, expected, work)
    assert (result.unpacked, result.verified, doc.name) == (False, True, "pakke.zip")


def test_zip_sent_as_one_document_is_kept_whole(tmp_path: Path, work: Path) -> None:
    zpath = make_zip(tmp_path / "l.zip", [("a.pdf", b"a"), ("b.pdf", b"b")])
    result, [(doc, _)] = documents(zpath, [ExpectedFile("pakke.zip", "application/zip")], work)
    assert (result.unpacked, result.verified, doc.name) == (False, False, "pakke.zip")
    with pytest.raises(ChecksumMismatchError):
        documents(zpath, [ExpectedFile("pakke.zip", "application/zip", "00" * 32)], work)


def test_single_entry_zip_pairs_with_single_filmetadata_whatever_the_names(
    tmp_path: Path, work: Path
) -> None:
    zpath = make_zip(tmp_path / "l.zip", [("vedtak_123.pdf", b"%PDF-x")])
    expected = [ExpectedFile("Vedtak.pdf", "application/pdf", sha(b"%PDF-x"), 6)]
    result, [(doc, data)] = documents(zpath, expected, work)
    assert (result.unpacked, result.verified, doc.name, data) == (
        True,
        True,
        "vedtak_123.pdf",
        b"%PDF-x",
    )
    assert doc.metadata.filmetadata_name == "Vedtak.pdf"


def test_found_by_fuzzing_empty_name_and_future_zip_version(tmp_path: Path, work: Path) -> None:
    zpath = make_zip(tmp_path / "l.zip", [("a", b"x")])
    patch_central(zpath, 28, "<H", 0)  # file name length 0 (the name bytes become "extra")
    with pytest.raises(VerificationError):
        documents(zpath, [], work)
    zpath = make_zip(tmp_path / "l.zip", [("a", b"x")])
    patch_central(zpath, 6, "<H", 110)  # "version needed to extract" 11.0
    with pytest.raises(VerificationError, match=r"corrupt: zip file version 11\.0"):
        documents(zpath, [], work)
