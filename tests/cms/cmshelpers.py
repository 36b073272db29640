"""Helpers shared by the CMS tests (plain functions; fixtures live in conftest.py)."""

from __future__ import annotations

import hashlib
import subprocess
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from svarinn_daemon.cms import Decryptor
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
