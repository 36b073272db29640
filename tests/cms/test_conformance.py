"""SvarUt's own files (ks-no/svarut-sak-mottak) decrypt byte for byte, in any chunking."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import pytest

from svarinn_daemon.cms import Decryptor, der, looks_like_enveloped_data
from svarinn_daemon.errors import NoMatchingRecipientError, TrailingDataError
from svarinn_daemon.keys import KeyPair
from tests.support.cmshelpers import CHUNKINGS, decrypt_chunked

FILES = {
    "small.crypt": (
        "small.pdf",
        "8b628fc6410a8617083a6a265c4d9ac6c8f501aa378d8137e9aae0403db95d39",
    ),
    "test.crypt": ("test.pdf", "2c36b627f6160abe2ad5c625c90e24185055c6c1557adc4bb94922d5b6204868"),
    "dokumenter.crypt": (
        "dokumenter.zip",
        "9a71850e8f9e4e0269b37caf8640bca85d4f56147b9e3cae0e8b07b6f98d80a0",
    ),
}


def test_every_crypt_with_a_plaintext_is_covered(conformance_dir: Path) -> None:
    with_plaintext = {
        p.name
        for p in conformance_dir.glob("*.crypt")
        if any((conformance_dir / (p.stem + ext)).exists() for ext in (".pdf", ".zip", ".txt"))
    }
    assert with_plaintext == set(FILES)


@pytest.mark.parametrize("chunk", CHUNKINGS)
@pytest.mark.parametrize("name", sorted(FILES))
def test_decrypts_byte_for_byte(
    conformance_dir: Path, conformance_pair: KeyPair, name: str, chunk: int
) -> None:
    plain_name, sha = FILES[name]
    data = (conformance_dir / name).read_bytes()
    assert looks_like_enveloped_data(data[:64])
    out, decryptor = decrypt_chunked(data, [conformance_pair], chunk)
    assert out == (conformance_dir / plain_name).read_bytes()
    assert decryptor.sha256 == sha
    assert decryptor.content_algorithm == "AES-256-CBC"
    assert decryptor.recipient is not None
    assert decryptor.recipient.matched_by == "issuerAndSerialNumber"
    assert "SHA-256" in decryptor.recipient.key_transport


def test_expired_certificate_still_decrypts(
    conformance_dir: Path, conformance_pair: KeyPair
) -> None:
    assert conformance_pair.certificate is not None
    assert conformance_pair.certificate.not_valid_after_utc < datetime.now(UTC)
    out, _ = decrypt_chunked(
        (conformance_dir / "small.crypt").read_bytes(), [conformance_pair], 4096
    )
    assert hashlib.sha256(out).hexdigest() == FILES["small.crypt"][1]


@pytest.mark.parametrize("chunk", CHUNKINGS)
def test_id_crypt_is_for_another_receiver(
    conformance_dir: Path, conformance_pair: KeyPair, chunk: int
) -> None:
    data = (conformance_dir / "id.crypt").read_bytes()
    decryptor = Decryptor([conformance_pair])
    with pytest.raises(NoMatchingRecipientError) as caught:
        _feed_all(decryptor, data, chunk)
    message = str(caught.value)
    assert "CN=Unknown" in message
    assert "serial=3302B7BB" in message
    assert "FBCAEA76FC34BC6A" in message  # ours, so the operator sees both sides
    with pytest.raises(NoMatchingRecipientError):  # a failed decryptor stays failed
        decryptor.close()


def _feed_all(decryptor: Decryptor, data: bytes, chunk: int) -> None:
    for i in range(0, len(data), chunk):
        decryptor.feed(data[i : i + chunk])
    decryptor.close()


def test_id_crypt_is_complete_cms_followed_by_zero_padding(conformance_dir: Path) -> None:
    """Its trailing zero bytes are padding after a complete structure, not content.

    (The conformance README says six; the structure actually ends 8 bytes before the end of
    the file, as ``openssl asn1parse`` also shows.)
    """
    data = (conformance_dir / "id.crypt").read_bytes()
    assert data[-8:] == bytes(8)
    parsed = der.parse(data[:-8], what="id.crypt")
    assert der.decode_oid(parsed.children[0], "id.crypt") == "1.2.840.113549.1.7.3"


def test_trailing_zero_bytes_are_tolerated_and_anything_else_is_not(
    conformance_dir: Path, conformance_pair: KeyPair
) -> None:
    data = (conformance_dir / "small.crypt").read_bytes()
    out, _ = decrypt_chunked(data + bytes(6), [conformance_pair], 1000)
    assert out == (conformance_dir / "small.pdf").read_bytes()
    out, _ = decrypt_chunked(data + bytes(100_000), [conformance_pair], 7)
    assert out == (conformance_dir / "small.pdf").read_bytes()
    with pytest.raises(TrailingDataError, match="offset 3619"):
        decrypt_chunked(data + bytes(6) + b"\x01", [conformance_pair], 1000)
