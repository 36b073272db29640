"""Definite-length DER of any size streams like BER: openssl's DER output, 0 B to 64 MiB.

``openssl cms -encrypt -outform DER`` (without ``-stream``) writes every length in definite
form and the encrypted content as one primitive ``[0]``: operators make test files this way.
The decryptor must stream it in constant memory, with the same checks at its end.
"""

from __future__ import annotations

import hashlib
import os
import tracemalloc
from pathlib import Path

import pytest

from svarinn_daemon.cms import Decryptor, der
from svarinn_daemon.errors import PaddingError, TrailingDataError, TruncatedCmsError
from tests.support.cmshelpers import Identity, openssl_encrypt

SIZES = [0, 1, (1 << 20) + 1, 64 << 20]
SVARUT_OPTIONS = ["-aes256", "-keyopt", "rsa_padding_mode:oaep", "-keyopt", "rsa_oaep_md:sha256"]
READ = 256 * 1024


def _plaintext(path: Path, size: int) -> str:
    """Random bytes written in 1 MiB pieces; returns their sha256."""
    digest = hashlib.sha256()
    with path.open("wb") as out:
        for start in range(0, size, 1 << 20):
            piece = os.urandom(min(1 << 20, size - start))
            digest.update(piece)
            out.write(piece)
    return digest.hexdigest()


def _stream(path: Path, decryptor: Decryptor, read: int = READ) -> tuple[int, str]:
    """Feed the file in ``read``-byte pieces, keeping none of the plaintext; (size, sha256)."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as source:
        while piece := source.read(read):
            out = decryptor.feed(piece)
            digest.update(out)
            size += len(out)
    out = decryptor.close()
    digest.update(out)
    return size + len(out), digest.hexdigest()


@pytest.fixture(scope="module")
def der_files(
    alice: Identity, tmp_path_factory: pytest.TempPathFactory
) -> dict[int, tuple[Path, str]]:
    """size -> (openssl's DER file, the plaintext's sha256), made once."""
    directory = tmp_path_factory.mktemp("der")
    made: dict[int, tuple[Path, str]] = {}
    for size in SIZES:
        plain = directory / f"{size}.bin"
        sha256 = _plaintext(plain, size)
        der = directory / f"{size}.der"
        openssl_encrypt(plain, der, alice.cert_path, *SVARUT_OPTIONS)
        plain.unlink()
        made[size] = (der, sha256)
    return made


def _content_header(data: bytes) -> bytes:
    """The encrypted content's header: the primitive [0] after AES-256-CBC's 16-byte IV."""
    algorithm = der.encode_oid("2.16.840.1.101.3.4.1.42")  # aes256-CBC
    start = data.index(algorithm)
    assert data[start + len(algorithm) : start + len(algorithm) + 2] == b"\x04\x10"
    iv_end = start + len(algorithm) + 18
    return data[iv_end : iv_end + 6]


@pytest.mark.parametrize("size", SIZES, ids=["0B", "1B", "1MiB+1", "64MiB"])
def test_openssl_der_round_trip_in_constant_memory(
    alice: Identity, der_files: dict[int, tuple[Path, str]], size: int
) -> None:
    path, sha256 = der_files[size]
    with path.open("rb") as f:
        head = f.read(1024)
    assert head[0] == 0x30
    assert head[1] != 0x80  # definite length from the very first header
    ciphertext = (size // 16 + 1) * 16
    header = _content_header(head)
    assert header[0] == 0x80  # primitive [0], one definite length for all of it
    if ciphertext >= 0x80:
        count = header[1] & 0x7F
        assert int.from_bytes(header[2 : 2 + count], "big") == ciphertext
    assert path.stat().st_size > ciphertext

    decryptor = Decryptor([alice.pair])
    tracemalloc.start()
    try:
        got_size, got_sha256 = _stream(path, decryptor)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (got_size, got_sha256) == (size, sha256)
    assert decryptor.sha256 == sha256
    assert decryptor.size == size
    # Constant memory: the read buffer, the sink's ring of three plaintext buffers for the
    # hash thread (about 1-2 MiB each) and the bytes handed out: about 8 MB at 64 MiB (1.6 MB
    # at 1 MiB + 1), never the content nor a buffered definite-length element.
    assert peak < 12 << 20, f"peak {peak} bytes traced for a {size}-byte letter"


@pytest.mark.parametrize("read", [1, 7, 1000])
def test_small_der_files_byte_by_byte(
    alice: Identity, der_files: dict[int, tuple[Path, str]], read: int
) -> None:
    for size in (0, 1):
        path, sha256 = der_files[size]
        assert _stream(path, Decryptor([alice.pair]), read) == (size, sha256)


def test_der_end_checks_still_hold(
    alice: Identity, der_files: dict[int, tuple[Path, str]], tmp_path: Path
) -> None:
    """The definite lengths end the structure: a short file, extra bytes and a bad last block
    fail as they do in BER."""
    path, _ = der_files[(1 << 20) + 1]
    data = path.read_bytes()
    variants = {
        "short": (data[:-1], TruncatedCmsError, "ends at offset"),
        "extra": (data + b"\x01", TrailingDataError, "after the end of the CMS structure"),
        "padding": (data[:-17] + bytes([data[-17] ^ 1]) + data[-16:], PaddingError, "padding"),
    }
    for name, (variant, error, message) in variants.items():
        target = tmp_path / name
        target.write_bytes(variant)
        with pytest.raises(error, match=message):
            _stream(target, Decryptor([alice.pair]))
    zeros = tmp_path / "zeros"
    zeros.write_bytes(data + bytes(6))  # zero padding after the end is tolerated, as in BER
    assert _stream(zeros, Decryptor([alice.pair]))[0] == (1 << 20) + 1
