"""ASiC-E containers: written in KS's layout and streamed, read with every hostile-container
rule (a bad one ends in a FiksIoError, never in a file outside the directory)."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import shutil
import subprocess
import tracemalloc
import zipfile
from pathlib import Path

import pytest

from svarinn_daemon.errors import FiksIoError
from svarinn_daemon.fiksio.asice import (
    CADES_MANIFEST,
    MIMETYPE,
    ODF_MANIFEST,
    AsiceWriter,
    read_asice,
)

MANIFEST = ODF_MANIFEST  # the hostile containers below carry the OpenDocument one


def _write(path: Path, files: dict[str, bytes]) -> None:
    with open(path, "wb") as out:
        writer = AsiceWriter(out)
        for name, data in files.items():
            writer.add(name, io.BytesIO(data), "application/pdf")
        writer.close()


def _read(path: Path, tmp: Path) -> dict[str, bytes]:
    into = tmp / "out"
    into.mkdir()
    return {
        e.name: e.path.read_bytes() for e in read_asice(path, into, max_entries=10, max_size=10**8)
    }


def test_round_trip_in_ks_layout(tmp_path: Path) -> None:
    files = {"arkivmelding.xml": b"<a/>", "brev.pdf": b"%PDF-1.7 " * 1000}
    path = tmp_path / "c.asice"
    _write(path, files)
    raw = path.read_bytes()
    # mimetype first and stored: its bytes readable at offset 30 + len("mimetype")
    assert raw[30:38] == b"mimetype"
    assert raw[38 : 38 + len(MIMETYPE)] == MIMETYPE.encode()
    with zipfile.ZipFile(path) as z:
        assert z.infolist()[0].compress_type == zipfile.ZIP_STORED
        assert z.namelist()[-1] == CADES_MANIFEST  # KS's: ETSI ASiCManifest with SHA-256
        manifest = z.read(CADES_MANIFEST)
        assert b'URI="brev.pdf"' in manifest
        digest = base64.b64encode(hashlib.sha256(files["brev.pdf"]).digest())
        assert b"<sig:DigestValue>" + digest + b"</sig:DigestValue>" in manifest
    assert _read(path, tmp_path) == files
    if shutil.which("unzip"):
        assert subprocess.run(["unzip", "-tq", str(path)], capture_output=True).returncode == 0


@pytest.mark.parametrize(
    "name",
    ["", "../x", "a/b", "a\\b", "META-INF/manifest.xml", "mimetype", "x\x00y", "\n", "a" * 300],
)
def test_a_name_that_could_be_a_path_is_refused(tmp_path: Path, name: str) -> None:
    with (
        open(tmp_path / "c", "wb") as out,
        AsiceWriter(out) as writer,
        pytest.raises(FiksIoError),
    ):
        writer.add(name, io.BytesIO(b"x"), "text/plain")


def test_a_file_twice_is_refused(tmp_path: Path) -> None:
    with open(tmp_path / "c", "wb") as out, AsiceWriter(out) as writer:
        writer.add("a.pdf", io.BytesIO(b"x"), "application/pdf")
        with pytest.raises(FiksIoError, match="twice"):
            writer.add("a.pdf", io.BytesIO(b"y"), "application/pdf")


def test_a_large_file_is_streamed(tmp_path: Path) -> None:
    source = tmp_path / "big.bin"
    with open(source, "wb") as out:
        for _ in range(20):
            out.write(os.urandom(1 << 20))
    tracemalloc.start()
    with open(tmp_path / "c.asice", "wb") as out:
        writer = AsiceWriter(out)
        writer.add("big.bin", source, "application/octet-stream")
        writer.close()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 8 << 20  # a 20 MiB file, never whole in memory
    into = tmp_path / "out"
    into.mkdir()
    [entry] = read_asice(tmp_path / "c.asice", into, max_entries=2, max_size=1 << 30)
    assert entry.size == 20 << 20


def _hostile(path: Path, entries: list[tuple[str, bytes]], *, manifest: str | None) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in entries:
            compress = zipfile.ZIP_STORED if name == "mimetype" else zipfile.ZIP_DEFLATED
            z.writestr(zipfile.ZipInfo(name), data, compress)
        if manifest is not None:
            z.writestr(MANIFEST, manifest)


def _manifest(*names: str) -> str:
    entries = "".join(f'<m:file-entry m:full-path="{n}" m:media-type="x"/>' for n in names)
    namespace = "urn:oasis:names:tc:opendocument:xmlns:manifest:1.0"
    return f'<m:manifest xmlns:m="{namespace}">{entries}</m:manifest>'


@pytest.mark.parametrize(
    ("entries", "manifest", "says"),
    [
        ([("a.pdf", b"x")], _manifest("a.pdf"), "mimetype"),
        ([("mimetype", b"application/zip"), ("a.pdf", b"x")], _manifest("a.pdf"), "ASiC-E"),
        ([("mimetype", MIMETYPE.encode()), ("a.pdf", b"x")], _manifest("b.pdf"), "manifest"),
        (
            [("mimetype", MIMETYPE.encode()), ("a.pdf", b"x"), ("extra", b"y")],
            _manifest("a.pdf"),
            "manifest",
        ),
        ([("mimetype", MIMETYPE.encode()), ("../evil", b"x")], _manifest("../evil"), "file name"),
        (
            [("mimetype", MIMETYPE.encode()), ("bomb", b"\0" * 5_000_000)],
            _manifest("bomb"),
            "large",
        ),
        ([("mimetype", MIMETYPE.encode()), ("a.pdf", b"x")], "<not-xml", "not XML"),
    ],
)
def test_a_hostile_container_is_refused(
    tmp_path: Path, entries: list[tuple[str, bytes]], manifest: str, says: str
) -> None:
    path = tmp_path / "c.asice"
    _hostile(path, entries, manifest=manifest)
    into = tmp_path / "out"
    into.mkdir()
    with pytest.raises(FiksIoError, match=says):
        read_asice(path, into, max_entries=10, max_size=10**8)
    assert not (tmp_path / "evil").exists()


def test_not_a_zip_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.asice"
    path.write_bytes(b"PK\x03\x04 this is no zip")
    with pytest.raises(FiksIoError, match="cannot be read"):
        read_asice(path, tmp_path, max_entries=10, max_size=10)


def _cades(name: str, data: bytes) -> str:
    digest = base64.b64encode(hashlib.sha256(data).digest()).decode()
    return (
        '<ASiCManifest xmlns="http://uri.etsi.org/02918/v1.2.1#" '
        'xmlns:ds="http://www.w3.org/2000/09/xmldsig#">'
        '<SigReference URI="META-INF/signature.p7s" MimeType="application/x-pkcs7-signature"/>'
        f'<DataObjectReference URI="{name}" MimeType="application/xml">'
        '<ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/>'
        f"<ds:DigestValue>{digest}</ds:DigestValue></DataObjectReference></ASiCManifest>"
    )


def test_a_signed_container_from_ks_library_reads_and_its_digests_count(tmp_path: Path) -> None:
    path = tmp_path / "k.asice"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(zipfile.ZipInfo("mimetype"), MIMETYPE, zipfile.ZIP_STORED)
        z.writestr("kvittering.xml", b"<k/>")
        z.writestr(CADES_MANIFEST, _cades("kvittering.xml", b"<k/>"))
        z.writestr("META-INF/signature.p7s", b"\x30\x80")  # not a file of the letter
    assert _read(path, tmp_path) == {"kvittering.xml": b"<k/>"}
    wrong = tmp_path / "w.asice"
    with zipfile.ZipFile(wrong, "w") as z:
        z.writestr(zipfile.ZipInfo("mimetype"), MIMETYPE, zipfile.ZIP_STORED)
        z.writestr("kvittering.xml", b"<k/>")
        z.writestr(CADES_MANIFEST, _cades("kvittering.xml", b"<other/>"))
    into = tmp_path / "w"
    into.mkdir()
    with pytest.raises(FiksIoError, match="digest"):
        read_asice(wrong, into, max_entries=5, max_size=1000)
