"""The baseline every decrypt benchmark compares against: AES-256-CBC + sha256 over the same
bytes in 1 MiB chunks, with no parsing. No pipeline that decrypts and hashes can beat it."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

CHUNK = 1 << 20


def decrypt_and_hash(path: Path | str) -> tuple[float, str]:
    """Seconds taken and the sha256 of the (meaningless) output, for one pass over ``path``."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    started = time.perf_counter()
    cipher = Cipher(algorithms.AES(b"k" * 32), modes.CBC(b"i" * 16)).decryptor()
    sha = hashlib.sha256()
    out = bytearray(CHUNK + 16)
    view = memoryview(out)
    buffer = bytearray(CHUNK)
    chunk = memoryview(buffer)
    with open(path, "rb", buffering=0) as f:
        while count := f.readinto(buffer):
            n = cipher.update_into(chunk[:count], out)
            sha.update(view[:n])
    return time.perf_counter() - started, sha.hexdigest()
