"""verify.py's SvarInn V2 rule: the plaintext is always a ZIP of the letter's files, each
checked against filer[]; a body that is no ZIP, and a ZIP that lacks a listed file, fail
the letter permanently instead of being taken for a document."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from svarinn_daemon.errors import ChecksumMismatchError, NotAZipError, Retry, VerificationError
from svarinn_daemon.letter.verify import ExpectedFile, FileType
from tests.support.zips import documents, make_zip, sha


def test_a_v2_body_that_is_no_zip_is_downloaded_again_then_permanent(
    conformance_dir: Path, work: Path
) -> None:
    pdf = conformance_dir / "small.pdf"
    expected = [ExpectedFile("small.pdf", "application/pdf", None, None)]
    documents(pdf, expected, work)  # v1 takes a single PDF
    with pytest.raises(NotAZipError, match=r"always a ZIP.*decrypted to a PDF") as info:
        documents(pdf, expected, work, container_zip=True)
    # As a checksum mismatch: a corrupt transfer garbles the ZIP's first bytes, so a fresh
    # download may fix it; after max_download_attempts the letter fails permanently.
    assert info.value.retry is Retry.DOWNLOAD_AGAIN


def test_a_v2_zip_is_unpacked_and_every_entry_checked(conformance_dir: Path, work: Path) -> None:
    zpath = conformance_dir / "dokumenter.zip"
    with zipfile.ZipFile(zpath) as zf:
        text = zf.read("text.txt")
        pdf = zf.read("small.pdf")
    expected = [
        ExpectedFile("small.pdf", "application/pdf", sha(pdf), len(pdf)),
        ExpectedFile("text.txt", "text/plain", sha(text), len(text)),
    ]
    result, docs = documents(zpath, expected, work, container_zip=True)
    assert (result.file_type, result.unpacked, result.verified) == (FileType.ZIP, True, True)
    assert [d.name for d, _ in docs] == ["small.pdf", "text.txt"]
    bad = [expected[0], ExpectedFile("text.txt", "text/plain", sha(b"other"), len(text))]
    with pytest.raises(ChecksumMismatchError, match=r"'text\.txt'"):
        documents(zpath, bad, work, container_zip=True)


def test_an_office_document_inside_is_a_file_not_the_letter(tmp_path: Path, work: Path) -> None:
    """v1 keeps a zip with [Content_Types].xml whole (it is a .docx); in V2 the ZIP is only
    ever the envelope, so its entries are the documents."""
    zpath = make_zip(tmp_path / "l.zip", [("[Content_Types].xml", b"<x/>"), ("a.txt", b"A")])
    expected = [
        ExpectedFile("[Content_Types].xml", "text/xml", sha(b"<x/>"), 4),
        ExpectedFile("a.txt", "text/plain", sha(b"A"), 1),
    ]
    result, _ = documents(zpath, [ExpectedFile("a.txt", "text/plain", None, None)], work)
    assert not result.unpacked
    result, docs = documents(zpath, expected, work, container_zip=True)
    assert result.unpacked
    assert [d.name for d, _ in docs] == ["[Content_Types].xml", "a.txt"]


def test_a_v2_zip_entry_filer_does_not_list_fails_the_letter(tmp_path: Path, work: Path) -> None:
    """Issue #24, item 15: it was imported unverified and the letter acknowledged."""
    zpath = make_zip(tmp_path / "l.zip", [("a.txt", b"A"), ("planted.exe", b"MZ")])
    expected = [ExpectedFile("a.txt", "text/plain", sha(b"A"), 1)]
    with pytest.raises(VerificationError, match=r"filer\[\] does not list: 'planted.exe'") as info:
        documents(zpath, expected, work, container_zip=True)
    assert info.value.permanent


def test_an_empty_zip_is_no_letter(tmp_path: Path, work: Path) -> None:
    """An empty V2 ZIP with an empty filer[] was "verified" with no documents."""
    zpath = make_zip(tmp_path / "l.zip", [])
    for container in (True, False):
        with pytest.raises(VerificationError, match="holds no document"):
            documents(zpath, [], work, container_zip=container)


def test_a_listed_file_the_v2_zip_lacks_fails_the_letter(tmp_path: Path, work: Path) -> None:
    zpath = make_zip(tmp_path / "l.zip", [("a.pdf", b"%PDF-A"), ("b.pdf", b"%PDF-B")])
    expected = [ExpectedFile("c.pdf", "application/pdf", sha(b"C"), 1)]
    # v1: the zip is taken for the document
    result, _ = documents(zpath, [ExpectedFile("c.pdf", "application/pdf", None, None)], work)
    assert not result.unpacked
    with pytest.raises(VerificationError, match=r"lacks 1 document.*'c.pdf'") as info:
        documents(zpath, expected, work, container_zip=True)
    assert info.value.permanent
