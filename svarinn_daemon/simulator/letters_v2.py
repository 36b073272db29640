"""The simulator's SvarInn V2 side of a letter: its listing item, and its ZIP download.

SvarInn V2 always serves a ZIP of the letter's files. A letter of several files is one
already (v1 serves the same); for a letter of one file, :class:`ZipEncryptor` writes a
stored ZIP of it, encrypted, in the same pass over the content that encrypts v1's file.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography import x509

from svarinn_daemon.cms import Encryptor

if TYPE_CHECKING:
    from svarinn_daemon.simulator.letters import SimLetter

__all__ = ["ZipEncryptor", "content_offset", "item_v2"]


def item_v2(
    letter: SimLetter,
    download_url: str,
    *,
    wrong_sha256: bool = False,
    unknown_size: bool = False,
) -> dict[str, Any]:
    """The SvarInn V2 listing item, with every field svarinn-v2.md documents; a size of 0
    (``unknown_size``) is SvarInn's word for unknown."""
    files: list[dict[str, Any]] = [
        {
            "filnavn": info.filnavn,
            "mimeType": info.mimetype,
            "hash": digest,
            "storrelse": size,
            "type": "HOVEDDOKUMENT" if n == 0 else "VEDLEGG",
            "ekstraMetadata": [],
        }
        for n, (info, digest, size) in enumerate(letter.listed_files(wrong_sha256, unknown_size))
    ]
    avsender = {
        "navn": letter.avsender.get("navn"),
        "adresselinje1": letter.avsender.get("adresselinje1"),
        "adresselinje2": letter.avsender.get("adresselinje2"),
        "adresselinje3": letter.avsender.get("adresselinje3"),
        "postnummer": letter.avsender.get("postnr"),
        "poststed": letter.avsender.get("poststed"),
    }
    created = letter.created.isoformat(timespec="milliseconds")
    return {
        "id": letter.id,
        "avsender": avsender,
        "mottaker": {
            "navn": "Simulert kommune",
            "organisasjonsnummer": "999888777",
            "adresselinje1": "Rådhusgata 1",
            "adresselinje2": None,
            "adresselinje3": None,
            "postnummer": "0037",
            "poststed": "Oslo",
            "land": "Norge",
        },
        "tittel": letter.tittel,
        "dato": created,
        "metadataFraAvleverendeSystem": {
            "sakssekvensnummer": None,
            "saksaar": None,
            "journalaar": None,
            "journalsekvensnummer": None,
            "journalpostnummer": None,
            "journalposttype": "U",
            "journalstatus": None,
            "journaldato": created,
            "dokumentetsDato": None,
            "tittel": letter.tittel,
            "saksbehandler": None,
            "virksomhetsspesifikkeMetadata": [],
        },
        "metadataForImport": {
            "mappeId": None,
            "journalpostId": None,
            "journalposttype": "I",
            "journalstatus": "M",
            "dokumentetsDato": created,
            "tittel": letter.tittel,
        },
        "sikkerhetsniva": "BETYDELIG",
        "filer": files,
        "svarSendesTil": None,
        "svarPaForsendelse": None,
        "type": None,
        "eksternRef": None,
        "lenker": [],
        "nedlastingslenke": letter.download_url or download_url,
        "avgivendeSystem": "SIMULATOR",
        "taushetsbelagtPost": False,
    }


def content_offset(target: Path, header_size: int) -> int:
    """Where the first ciphertext byte of an encrypted file is."""
    with target.open("rb") as blob:
        blob.seek(header_size)
        first = blob.read(2)
    # The first OCTET STRING segment's header: 04 LL, 04 81 LL or 04 82 LL LL.
    segment_header = 2 if first[1] < 0x80 else 2 + (first[1] & 0x7F)
    return header_size + segment_header


class ZipEncryptor:
    """Writes a stored ZIP of one file, encrypted, to ``target`` while the file's chunks
    pass through :meth:`tee` on their way elsewhere: one read of the content for both."""

    def __init__(self, certificate: x509.Certificate, target: Path, filnavn: str):
        self._encryptor = Encryptor(certificate)
        self._target = target
        self._out = target.open("wb")
        self._header = self._encryptor.feed(b"")
        self._out.write(self._header)
        # No seek or tell: zipfile then writes a streaming ZIP (sizes after each entry).
        self._zip = zipfile.ZipFile(_WriteOnly(self), "w", compression=zipfile.ZIP_STORED)
        self._entry = self._zip.open(filnavn, "w", force_zip64=True)
        self.content_offset = 0

    def write(self, data: bytes) -> int:
        self._out.write(self._encryptor.feed(data))
        return len(data)

    def tee(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        for chunk in chunks:
            self._entry.write(chunk)
            yield chunk

    def __enter__(self) -> ZipEncryptor:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self._entry.close()
            self._zip.close()
            self._out.write(self._encryptor.close())
        finally:
            self._out.close()
        self.content_offset = content_offset(self._target, len(self._header))


class _WriteOnly:
    """A file object that cannot seek or tell."""

    def __init__(self, sink: ZipEncryptor):
        self._sink = sink

    def write(self, data: bytes, /) -> int:
        return self._sink.write(bytes(data))

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass
