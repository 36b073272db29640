"""Small pieces for streaming a download: peeking at its first bytes, and a pass-through
decoder with the Decryptor's shape for letters SvarUt sends unencrypted (``kryptert: false``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator


def read_head(chunks: Iterator[bytes], size: int) -> tuple[bytes, Iterator[bytes]]:
    """Collect at least ``size`` bytes (fewer at the end of the stream) without losing any."""
    parts: list[bytes] = []
    have = 0
    for chunk in chunks:
        parts.append(chunk)
        have += len(chunk)
        if have >= size:
            break
    return b"".join(parts), chunks


class PlainBody:
    """Feeds bytes through unchanged, hashing them as the Decryptor would."""

    def __init__(self) -> None:
        self._sha = hashlib.sha256()
        self.size = 0
        self._sha256: str | None = None

    def feed(self, chunk: bytes) -> bytes:
        self._sha.update(chunk)
        self.size += len(chunk)
        return chunk

    def close(self) -> bytes:
        self._sha256 = self._sha.hexdigest()
        return b""

    @property
    def sha256(self) -> str:
        if self._sha256 is None:
            raise RuntimeError("sha256 is known only after close()")
        return self._sha256
