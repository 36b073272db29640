"""A Fiks IO payload's encryption: CMS EnvelopedData to the receiving account's certificate
(AES-256-CBC, RSA-OAEP with SHA-256), the same parameters SvarUt uses, so the daemon's own
streaming encryptor and decryptor (:mod:`svarinn_daemon.cms`) serve both.

Payloads are streamed file to file in chunks: a letter's ASiC-E is never whole in memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

from cryptography import x509

from svarinn_daemon.cms import CmsLimits, Decryptor, Encryptor
from svarinn_daemon.errors import CmsError, FiksIoError
from svarinn_daemon.keys import KeyPair

__all__ = ["CHUNK", "decrypt_bytes", "decrypt_stream", "encrypt_file"]

CHUNK = 1 << 20
# Fiks IO's CMS is BouncyCastle's (and .NET's) in 16 KiB segments; ours writes what SvarUt
# writes (1000-byte segments), which every CMS reader takes alike.


def encrypt_file(source: Path, target: BinaryIO, certificate: x509.Certificate) -> int:
    """Encrypt ``source`` into ``target``; returns the bytes written."""
    try:
        encryptor = Encryptor(certificate)
    except (TypeError, ValueError) as exc:
        raise FiksIoError(
            f"the receiving account's certificate cannot be encrypted to ({exc})",
            temporary=True,
        ) from None
    written = 0
    with open(source, "rb") as stream:
        while chunk := stream.read(CHUNK):
            out = encryptor.feed(chunk)
            target.write(out)
            written += len(out)
    out = encryptor.close()
    target.write(out)
    return written + len(out)


def decrypt_stream(
    source: BinaryIO, target: BinaryIO, keys: Sequence[KeyPair], *, limit: int
) -> int:
    """Decrypt a payload from ``source`` into ``target`` (at most ``limit`` bytes of
    plaintext); returns its size. A payload we cannot open is a permanent FiksIoError: the
    same bytes will never open."""
    decryptor = Decryptor(keys, limits=CmsLimits(), hash_in_thread=False)
    size = 0
    try:
        while chunk := source.read(CHUNK):
            out = decryptor.feed(chunk)
            size += len(out)
            if size > limit:
                raise FiksIoError(f"the payload is larger than {limit} bytes", temporary=False)
            target.write(out)
        out = decryptor.close()
    except CmsError as exc:
        raise FiksIoError(f"the payload cannot be decrypted: {exc}", temporary=False) from None
    size += len(out)
    if size > limit:
        raise FiksIoError(f"the payload is larger than {limit} bytes", temporary=False)
    target.write(out)
    return size


def decrypt_bytes(data: bytes, keys: Sequence[KeyPair], *, limit: int) -> bytes:
    """A small payload (a reply) decrypted in memory."""
    import io

    out = io.BytesIO()
    decrypt_stream(io.BytesIO(data), out, keys, limit=limit)
    return out.getvalue()
