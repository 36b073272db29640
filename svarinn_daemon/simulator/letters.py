"""The simulator's letters: plaintext in, SvarUt-encrypted file on disk, metadata out.

Each letter is encrypted once when it is added, as SvarUt stores it, and streamed from disk
on download, so letters of several GB cost disk, not memory. Letters of several files are
zipped first; their filmetadata then describes the files inside the zip, as SvarUt's does.

SvarInn V2 always serves a ZIP: a letter of several files has one already; for a letter of
one file, a stored (uncompressed) ZIP of it is encrypted in the same pass over its content
(``v2_blob``), so both versions serve the same letters.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import uuid
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from cryptography import x509

from svarinn_daemon.cms import Encryptor
from svarinn_daemon.common import OCTET_STREAM, media_type
from svarinn_daemon.simulator.letters_v2 import ZipEncryptor, content_offset, item_v2

__all__ = ["LetterFile", "SimLetter", "build_letter", "content_disposition", "pdf_chunks"]

_CHUNK = 2**20


@dataclass(frozen=True)
class LetterFile:
    """One plaintext file of a letter: in memory (``data``) or on disk (``path``)."""

    filnavn: str
    mimetype: str = "application/pdf"
    data: bytes | None = None
    path: Path | None = None
    chunks: Iterable[bytes] | None = None  # generated content, read once

    def read(self) -> Iterator[bytes]:
        if self.data is not None:
            yield self.data
        elif self.path is not None:
            with self.path.open("rb") as handle:
                while block := handle.read(_CHUNK):
                    yield block
        elif self.chunks is not None:
            yield from self.chunks


@dataclass(frozen=True)
class FileInfo:
    filnavn: str
    mimetype: str
    sha256: str
    size: int


@dataclass(frozen=True)
class SimLetter:
    """A letter as the simulator serves it. ``blob`` is the encrypted file on disk."""

    id: str
    tittel: str
    files: tuple[FileInfo, ...]
    blob: Path
    blob_size: int
    content_offset: int  # where the first ciphertext byte is, for the "corrupt" fault
    content_type: str
    filename: str
    avsender: dict[str, Any]
    created: datetime
    download_url: str | None = None  # None: the simulator's own URL for it
    # SvarInn V2's download: an encrypted ZIP of the files (the same blob for a letter of
    # several files). None: the letter was built without one (v1 only).
    v2_blob: Path | None = None
    v2_blob_size: int = 0
    v2_content_offset: int = 0

    @property
    def v2_filename(self) -> str:
        return f"forsendelse-{self.id[:8]}.zip"

    def listed_files(
        self, wrong_sha256: bool, unknown_size: bool
    ) -> list[tuple[FileInfo, str, int]]:
        """Each file with the sha256 and size the listing gives it, as the listing faults
        make them: the first file's hash wrong, every size 0 (SvarInn's "unknown")."""
        out = []
        for n, info in enumerate(self.files):
            digest = info.sha256
            if wrong_sha256 and n == 0:
                digest = hashlib.sha256(b"not " + digest.encode()).hexdigest()
            out.append((info, digest, 0 if unknown_size else info.size))
        return out

    def to_json_v2(
        self, download_url: str, *, wrong_sha256: bool = False, unknown_size: bool = False
    ) -> dict[str, Any]:
        """The SvarInn V2 listing item, with every field svarinn-v2.md documents."""
        return item_v2(self, download_url, wrong_sha256=wrong_sha256, unknown_size=unknown_size)

    def to_json(
        self, download_url: str, *, wrong_sha256: bool = False, unknown_size: bool = False
    ) -> dict[str, Any]:
        """The hentNyeForsendelser entry, shaped like the MottakService v1 example."""
        files = [
            {
                "filnavn": info.filnavn,
                "mimetype": info.mimetype,
                "sha256hash": digest,
                "dokumentType": None,
                "size": size,
            }
            for info, digest, size in self.listed_files(wrong_sha256, unknown_size)
        ]
        millis = int(self.created.timestamp() * 1000)
        return {
            "avsender": self.avsender,
            "mottaker": {
                "adresse1": "Rådhusgata 1",
                "adresse2": None,
                "adresse3": None,
                "postnr": "0037",
                "poststed": "Oslo",
                "navn": "Simulert kommune",
                "land": "Norge",
                "orgnr": "999888777",
                "fnr": None,
            },
            "id": self.id,
            "tittel": self.tittel,
            "date": millis,
            "metadataFraAvleverendeSystem": {
                "sakssekvensnummer": 0,
                "saksaar": 0,
                "journalaar": 0,
                "journalsekvensnummer": 0,
                "journalpostnummer": 0,
                "journalposttype": "U",
                "journalstatus": None,
                "journaldato": millis,
                "dokumentetsDato": None,
                "tittel": self.tittel,
                "saksBehandler": None,
                "ekstraMetadata": [],
            },
            "metadataForImport": {
                "sakssekvensnummer": 0,
                "saksaar": 0,
                "journalposttype": "I",
                "journalstatus": "M",
                "dokumentetsDato": self.created.isoformat(timespec="milliseconds"),
                "tittel": self.tittel,
            },
            "status": "Akseptert",
            "niva": "3",
            "filmetadata": files,
            "svarSendesTil": None,
            "svarPaForsendelse": None,
            "forsendelseType": None,
            "eksternRef": None,
            "downloadUrl": self.download_url or download_url,
        }


def build_letter(
    files: Iterable[LetterFile],
    *,
    certificate: x509.Certificate,
    directory: Path,
    tittel: str,
    avsender: dict[str, Any],
    forsendelse_id: str | None = None,
    download_url: str | None = None,
) -> SimLetter:
    """Hash, (zip,) encrypt and store a letter's files; return what the server needs."""
    files = list(files)
    if not files:
        raise ValueError("a letter needs at least one file")
    letter_id = forsendelse_id or str(uuid.uuid4())
    blob = directory / f"{letter_id}.crypt"
    v2_blob = directory / f"{letter_id}.v2.crypt"
    if len(files) == 1:
        # The download's header: a test letter's hostile MIME type is listed, never served.
        content_type, filename = media_type(files[0].mimetype) or OCTET_STREAM, files[0].filnavn
        with ZipEncryptor(certificate, v2_blob, files[0].filnavn) as v2:
            info, offset = _encrypt_stream(v2.tee(files[0].read()), certificate, blob)
        v2_offset = v2.content_offset
        infos: tuple[FileInfo, ...] = (FileInfo(files[0].filnavn, files[0].mimetype, *info),)
    else:
        content_type, filename = "application/zip", f"forsendelse-{letter_id[:8]}.zip"
        with tempfile.TemporaryFile(dir=directory) as zipped:
            infos = _write_zip(files, zipped)
            zipped.seek(0)
            _info, offset = _encrypt_stream(
                iter(lambda: zipped.read(_CHUNK), b""), certificate, blob
            )
        v2_blob, v2_offset = blob, offset
    return SimLetter(
        id=letter_id,
        tittel=tittel,
        files=infos,
        blob=blob,
        blob_size=blob.stat().st_size,
        content_offset=offset,
        content_type=content_type,
        filename=filename,
        avsender=avsender,
        created=datetime.now(UTC),
        download_url=download_url,
        v2_blob=v2_blob,
        v2_blob_size=v2_blob.stat().st_size,
        v2_content_offset=v2_offset,
    )


def _encrypt_stream(
    chunks: Iterable[bytes], certificate: x509.Certificate, target: Path
) -> tuple[tuple[str, int], int]:
    """Encrypt to ``target``; return ((plaintext sha256, size), offset of the ciphertext)."""
    encryptor = Encryptor(certificate)
    digest = hashlib.sha256()
    size = 0
    with target.open("wb") as out:
        header = encryptor.feed(b"")
        out.write(header)
        for chunk in chunks:
            digest.update(chunk)
            size += len(chunk)
            out.write(encryptor.feed(chunk))
        out.write(encryptor.close())
    return (digest.hexdigest(), size), content_offset(target, len(header))


def _write_zip(files: list[LetterFile], target: Any) -> tuple[FileInfo, ...]:
    infos = []
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for file in files:
            digest = hashlib.sha256()
            size = 0
            with archive.open(file.filnavn, "w", force_zip64=True) as entry:
                for chunk in file.read():
                    digest.update(chunk)
                    size += len(chunk)
                    entry.write(chunk)
            infos.append(FileInfo(file.filnavn, file.mimetype, digest.hexdigest(), size))
    return tuple(infos)


def content_disposition(filename: str) -> str:
    """``attachment`` with an ASCII fallback and the exact name as RFC 8187 ``filename*``."""
    fallback = "".join(
        c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in filename
    )
    if fallback == filename:
        return f'attachment; filename="{filename}"'
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def pdf_chunks(title: str, size: int) -> Iterator[bytes]:
    """A valid one-page PDF of about ``size`` bytes, padded with comment lines; streamed."""
    text = title.encode("latin-1", "replace").replace(b"(", b"[").replace(b")", b"]")
    content = b"BT /F1 18 Tf 72 720 Td (" + text + b") Tj ET"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(content)).encode() + b" >>\nstream\n" + content + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    head = b"%PDF-1.4\n%\xe6\xf8\xe5\n"
    body = bytearray()
    offsets = []
    for n, obj in enumerate(objects, start=1):
        offsets.append(len(body))
        body += b"%d 0 obj\n" % n + obj + b"\nendobj\n"
    tail_fixed = len(b"xref\n0 6\n") + 20 * (len(objects) + 1)
    tail_fixed += len(b"trailer\n<< /Size 6 /Root 1 0 R >>\nstartxref\n\n%%EOF\n")
    padding = 0
    for digits in range(1, 20):  # the startxref number's width depends on the padding
        padding = max(0, size - len(head) - len(body) - tail_fixed - digits)
        if len(str(len(head) + padding + len(body))) == digits:
            break
    yield head
    line = b"%" + b"simulert innhold " * 4 + b"\n"
    written = 0
    rand = os.urandom(16).hex().encode()
    while written < padding:
        piece = (line.replace(b"innhold", rand[:7]) * (_CHUNK // len(line)))[: padding - written]
        if len(piece) == padding - written and not piece.endswith(b"\n"):
            piece = piece[:-1] + b"\n"
        written += len(piece)
        yield piece
    start = len(head) + written
    yield bytes(body)
    xref = [b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)]
    xref += [b"%010d 00000 n \n" % (start + off) for off in offsets]
    trailer = b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        start + len(body),
    )
    yield b"".join(xref) + trailer
