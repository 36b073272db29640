"""Helpers shared by the CMS tests (plain functions; fixtures live in conftest.py)."""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from svarinn_daemon.cms import Decryptor, der
from svarinn_daemon.keys import KeyPair

CHUNKINGS = [1, 7, 1000, 65536, 1 << 20]


@dataclass(frozen=True)
class Identity:
    """A receiver: key, certificate, their PEM files, and the KeyPair the daemon would load."""

    name: str
    key: rsa.RSAPrivateKey
    cert: x509.Certificate
    key_path: Path
    cert_path: Path
    pair: KeyPair

    @property
    def bare(self) -> KeyPair:
        """The same key without its certificate (to exercise trial decryption)."""
        return KeyPair(label=f"{self.name}-bare", private_key=self.key, certificate=None)


def decrypt_chunked(data: bytes, keys: list[KeyPair], chunk: int) -> tuple[bytes, Decryptor]:
    """Feed ``data`` in ``chunk``-byte pieces (as memoryviews, like a reused read buffer)."""
    decryptor = Decryptor(keys)
    view = memoryview(data)
    parts = [decryptor.feed(view[i : i + chunk]) for i in range(0, len(data), chunk)]
    parts.append(decryptor.close())
    out = b"".join(parts)
    assert decryptor.size == len(out)
    assert decryptor.sha256 == hashlib.sha256(out).hexdigest()
    return out, decryptor


def openssl_encrypt(plaintext: Path, out: Path, cert: Path, *options: str) -> bytes:
    subprocess.run(
        [
            *("openssl", "cms", "-encrypt", "-binary", "-outform", "DER"),
            *("-in", str(plaintext), "-out", str(out), "-recip", str(cert), *options),
        ],
        check=True,
        capture_output=True,
    )
    return out.read_bytes()


def rebuild(data: bytes, *, definite: bool, content: Callable[[bytes], bytes]) -> bytes:
    """Re-encode an EnvelopedData with other length forms and another content layout.

    ``content`` gets the ciphertext and returns the whole encryptedContent ``[0]`` element.
    """
    info = der.parse(data, what="test input")
    oid, explicit = info.children
    version, recipients, encrypted = explicit.children[0].children
    content_type, algorithm, content_element = encrypted.children
    ciphertext = der.octets(content_element, "test input")

    def wrap(tag: int, body: bytes) -> bytes:
        return der.tlv(tag, body) if definite else bytes([tag, 0x80]) + body + b"\x00\x00"

    eci = wrap(0x30, content_type.raw + algorithm.raw + content(ciphertext))
    enveloped = wrap(0x30, version.raw + recipients.raw + eci)
    return wrap(0x30, oid.raw + wrap(0xA0, enveloped))


def primitive(ciphertext: bytes) -> bytes:
    return der.tlv(0x80, ciphertext)


def segmented(
    sizes: list[int], *, definite: bool = False, tag: int = 0xA0
) -> Callable[[bytes], bytes]:
    """A constructed string of primitive OCTET STRINGs cut at ``sizes`` (cycled)."""

    def encode(ciphertext: bytes) -> bytes:
        parts = []
        pos = 0
        index = 0
        while pos < len(ciphertext):
            size = max(1, sizes[index % len(sizes)])
            parts.append(der.tlv(der.OCTET_STRING, ciphertext[pos : pos + size]))
            pos += size
            index += 1
        body = b"".join(parts)
        return der.tlv(tag, body) if definite else bytes([tag, 0x80]) + body + b"\x00\x00"

    return encode


def nested(depth: int, *, definite: bool) -> Callable[[bytes], bytes]:
    """The ciphertext inside ``depth`` levels of constructed OCTET STRINGs."""

    def encode(ciphertext: bytes) -> bytes:
        inner = der.tlv(der.OCTET_STRING, ciphertext)
        for _ in range(depth):
            inner = der.tlv(0x24, inner) if definite else b"\x24\x80" + inner + b"\x00\x00"
        return der.tlv(0xA0, inner) if definite else b"\xa0\x80" + inner + b"\x00\x00"

    return encode


def sha256_file(path: Path) -> tuple[str, int]:
    """sha256 and size of a file, streamed."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size
