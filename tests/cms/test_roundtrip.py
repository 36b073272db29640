"""Round trips: openssl-made files of every supported kind, and our own Encryptor."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from svarinn_daemon.cms import Decryptor, Encryptor, encrypt_bytes
from tests.support.cmshelpers import Identity, decrypt_chunked, openssl_encrypt

CIPHERS = ["-aes128", "-aes192", "-aes256"]
TRANSPORTS = {
    "oaep-sha256": ["-keyopt", "rsa_padding_mode:oaep", "-keyopt", "rsa_oaep_md:sha256"],
    "oaep-sha1": ["-keyopt", "rsa_padding_mode:oaep"],
    "pkcs1v15": [],
}
EXPECTED_TRANSPORT = {
    "oaep-sha256": "RSAES-OAEP SHA-256, MGF1 SHA-256",
    "oaep-sha1": "RSAES-OAEP SHA-1, MGF1 SHA-1",
    "pkcs1v15": "RSA PKCS#1 v1.5",
}


@pytest.fixture(scope="module")
def plaintext_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("plain") / "letter.bin"
    path.write_bytes(os.urandom(20_011))
    return path


@pytest.mark.parametrize("keyid", [False, True], ids=["issuer-serial", "keyid"])
@pytest.mark.parametrize("stream", [True, False], ids=["indefinite", "definite"])
@pytest.mark.parametrize("transport", sorted(TRANSPORTS))
@pytest.mark.parametrize("cipher", CIPHERS)
def test_openssl_combinations(
    alice: Identity,
    plaintext_file: Path,
    tmp_path: Path,
    cipher: str,
    transport: str,
    stream: bool,
    keyid: bool,
) -> None:
    options = [cipher, *TRANSPORTS[transport]]
    options += ["-stream"] if stream else []
    options += ["-keyid"] if keyid else []
    data = openssl_encrypt(plaintext_file, tmp_path / "x.der", alice.cert_path, *options)
    assert data[1] == 0x80 if stream else data[1] != 0x80
    for chunk in (7, 4096):
        out, decryptor = decrypt_chunked(data, [alice.pair], chunk)
        assert out == plaintext_file.read_bytes()
        assert decryptor.recipient is not None
        assert decryptor.recipient.key_transport == EXPECTED_TRANSPORT[transport]
        assert decryptor.recipient.matched_by == (
            "subjectKeyIdentifier" if keyid else "issuerAndSerialNumber"
        )
        assert decryptor.content_algorithm == f"AES-{cipher[4:]}-CBC"


@pytest.mark.parametrize("transport", sorted(TRANSPORTS))
def test_key_without_certificate_is_tried(
    alice: Identity, plaintext_file: Path, tmp_path: Path, transport: str
) -> None:
    data = openssl_encrypt(
        plaintext_file, tmp_path / "x.der", alice.cert_path, "-aes256", *TRANSPORTS[transport]
    )
    out, decryptor = decrypt_chunked(data, [alice.bare], 1000)
    assert out == plaintext_file.read_bytes()
    assert decryptor.recipient is not None
    assert decryptor.recipient.matched_by == "trial"


@pytest.mark.parametrize("size", [0, 1, 15, 16, 17, 999, 1000, 1001, 16_000, 100_003])
@pytest.mark.parametrize("segment_size", [1, 16, 1000, 4096])
def test_our_encryptor(alice: Identity, size: int, segment_size: int) -> None:
    plaintext = os.urandom(size)
    data = encrypt_bytes(plaintext, alice.cert, segment_size=segment_size)
    for chunk in (1, 7, 1000, 65536) if size <= 1001 else (7, 1000, 65536):
        out, _ = decrypt_chunked(data, [alice.pair], chunk)
        assert out == plaintext


@pytest.mark.parametrize("chunk", [3, 7, 1000, 1004, 65536, 64 * 1004 + 5, 1 << 20, 5 << 20])
def test_large_file_in_svarut_shape(alice: Identity, chunk: int) -> None:
    """Several MiB through the batched path, with runs split across every kind of chunk."""
    encryptor = Encryptor(alice.cert)
    block = os.urandom(1 << 20)
    plaintext = b"".join(bytes([i]) + block[1:] for i in range(3)) + block[:12345]
    data = encryptor.feed(plaintext[:1_500_000]) + encryptor.feed(plaintext[1_500_000:])
    data += encryptor.close()
    out, _ = decrypt_chunked(data, [alice.pair], chunk)
    assert out == plaintext


@pytest.mark.parametrize("size", [50_001, 50_000])
def test_last_block_held_back_until_close(alice: Identity, size: int) -> None:
    """The final block carries the padding: its plaintext only comes out of close()."""
    plaintext = os.urandom(size)
    decryptor = Decryptor([alice.pair])
    early = decryptor.feed(encrypt_bytes(plaintext, alice.cert))
    assert plaintext.startswith(early)
    assert len(early) <= size // 16 * 16
    assert early + decryptor.close() == plaintext


def test_expired_certificate_of_our_own(identities: Callable[[str], Identity]) -> None:
    expired = identities("expired-receiver")
    plaintext = os.urandom(3000)
    out, _ = decrypt_chunked(encrypt_bytes(plaintext, expired.cert), [expired.pair], 1000)
    assert out == plaintext


def test_plaintext_held_back_for_the_hash_thread_stays_bounded(alice: Identity) -> None:
    """Small feeds of a large file: plaintext comes out in about 1 MiB pieces, never more
    than that (plus one group) behind the input, and all of it by close()."""
    plaintext = os.urandom((6 << 20) + 4321)
    data = encrypt_bytes(plaintext, alice.cert)
    decryptor = Decryptor([alice.pair], hash_in_thread=True)
    out = bytearray()
    lag = 0
    for start in range(0, len(data), 65536):
        out += decryptor.feed(data[start : start + 65536])
        lag = max(lag, min(start + 65536, len(data)) - len(out))
    out += decryptor.close()
    assert out == plaintext
    assert decryptor.sha256 == hashlib.sha256(plaintext).hexdigest()
    assert (1 << 20) - 65536 < lag < (1 << 20) + 2 * 65536 + 4096  # headers count as input


@pytest.mark.parametrize("size", [3000, (3 << 20) + 77], ids=["small", "threaded"])
def test_feed_to_gives_the_same_plaintext_as_views_valid_only_during_the_call(
    alice: Identity, size: int
) -> None:
    """feed_to/close_to hand out views of the decryptor's own buffers (no copy): written
    out at once they make the same plaintext and hash; a view kept is released, never
    silently overwritten; and a writer that keeps a slice does not break the decryptor."""
    plaintext = os.urandom(size)
    data = encrypt_bytes(plaintext, alice.cert)
    decryptor = Decryptor([alice.pair], hash_in_thread=True)
    out = bytearray()
    kept: list[memoryview] = []

    def write(view: memoryview) -> None:
        out.extend(view)
        kept.append(view)
        kept.append(view[:1])  # a slice outliving the call: the buffer must grow anyway

    for start in range(0, len(data), 1000):
        decryptor.feed_to(data[start : start + 1000], write)
    decryptor.close_to(write)
    assert bytes(out) == plaintext
    assert decryptor.sha256 == hashlib.sha256(plaintext).hexdigest()
    assert decryptor.size == size
    with pytest.raises(ValueError, match="released"):
        bytes(kept[0])


def test_feed_to_passes_the_writers_own_error_through(alice: Identity) -> None:
    data = encrypt_bytes(os.urandom(200_000), alice.cert)  # plaintext before the end
    decryptor = Decryptor([alice.pair])

    def write(view: memoryview) -> None:
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):  # not taken for a CMS error
        decryptor.feed_to(data, write)
