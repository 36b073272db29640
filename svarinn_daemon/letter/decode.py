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
    write: Callable[[memoryview], None],
    between_chunks: Callable[[], None] = lambda: None,
    hash_plaintext: bool = True,
) -> Decoded:
    """Decrypt (or pass through) every chunk into ``write``; typed CmsError on bad input.
    ``write`` gets views of the decoder's own buffers, each valid only during the call.
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
    writing = 0.0

    def timed_write(plain: memoryview) -> None:
        nonlocal writing
        started = time.perf_counter()
        write(plain)
        writing += time.perf_counter() - started

    seconds = 0.0
    for chunk in _chain(head, rest):
        between_chunks()
        started = time.perf_counter()
        decoder.feed_to(chunk, timed_write)  # no copy: the plaintext is written from its buffer
        seconds += time.perf_counter() - started
    decoder.close_to(timed_write)
    seconds -= writing
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

    def feed_to(self, chunk: bytes, write: Callable[[memoryview], object]) -> None:
        if self._sha is not None:
            self._sha.update(chunk)
        self.size += len(chunk)
        with memoryview(chunk) as view:
            write(view)

    def close_to(self, write: Callable[[memoryview], object]) -> None:
        self._sha256 = self._sha.hexdigest() if self._sha is not None else None

    @property
    def sha256(self) -> str:
        if self._sha256 is None:
            raise RuntimeError("sha256 is known only after close(), and when hashing")
        return self._sha256
