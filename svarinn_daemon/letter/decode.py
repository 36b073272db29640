"""Body bytes -> plaintext, sha256 and size, in one pass and constant memory.

Whether a body is encrypted is decided by its first bytes, not by headers: CMS
EnvelopedData goes through the Decryptor; anything else is accepted as plaintext only when
the letter says ``"kryptert": false``. No I/O here: the caller supplies the chunks, where the
plaintext goes, and what to do between chunks (renew a lease, notice a shutdown).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from svarinn_daemon.cms import Decryptor, looks_like_enveloped_data
from svarinn_daemon.errors import NotEnvelopedDataError
from svarinn_daemon.keys import KeyPair

HEAD = 64  # bytes that decide whether a body is CMS


@dataclass(frozen=True)
class Decoded:
    sha256: str | None  # None when not asked for (``hash_plaintext``)
    size: int
    encrypted: bool
    decrypt_seconds: float


def decode(
    chunks: Iterator[bytes],
    *,
    keys: Sequence[KeyPair],
    plain_allowed: bool,
    write: Callable[[bytes], None],
    between_chunks: Callable[[], None] = lambda: None,
    hash_plaintext: bool = True,
) -> Decoded:
    """Decrypt (or pass through) every chunk into ``write``; typed CmsError on bad input.
    ``hash_plaintext`` false: the caller hashes what it needs (a V2 ZIP's entries) itself,
    and the whole plaintext's sha256 is not computed."""
    head, rest = read_head(chunks, HEAD)
    encrypted = looks_like_enveloped_data(head)
    if not encrypted and not plain_allowed:
        raise NotEnvelopedDataError(
            'the download is not CMS EnvelopedData, and the letter does not say "kryptert": false'
        )
    decoder: Decryptor | PlainBody = (
        Decryptor(keys, hash_plaintext=hash_plaintext)
        if encrypted
        else PlainBody(hashing=hash_plaintext)
    )
    seconds = 0.0
    for chunk in _chain(head, rest):
        between_chunks()
        started = time.perf_counter()
        plain = decoder.feed(chunk)
        seconds += time.perf_counter() - started
        write(plain)
    write(decoder.close())
    sha256 = decoder.sha256 if hash_plaintext else None
    return Decoded(sha256, decoder.size, encrypted, seconds)


def _chain(head: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    if head:
        yield head
    yield from rest


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

    def __init__(self, *, hashing: bool = True) -> None:
        self._sha = hashlib.sha256() if hashing else None
        self.size = 0
        self._sha256: str | None = None

    def feed(self, chunk: bytes) -> bytes:
        if self._sha is not None:
            self._sha.update(chunk)
        self.size += len(chunk)
        return chunk

    def close(self) -> bytes:
        self._sha256 = self._sha.hexdigest() if self._sha is not None else None
        return b""

    @property
    def sha256(self) -> str:
        if self._sha256 is None:
            raise RuntimeError("sha256 is known only after close(), and when hashing")
        return self._sha256
