"""SHA-256 and byte count of the plaintext, computed as it is handed out.

SHA-256 costs about four times as much as AES-CBC decryption on machines with AES-NI, so a
serial decrypt-then-hash spends most of its time hashing. hashlib releases the GIL while it
hashes more than 2 KiB, so for large files a worker thread hashes one output chunk while the
decryptor parses and decrypts the next. The queue is bounded (a few chunks), so memory stays
constant; small files never start a thread.
"""

from __future__ import annotations

import hashlib
import queue
import threading
import weakref

_THREAD_AFTER = 1 << 20  # plaintext bytes before hashing moves to a worker thread
_QUEUE_CHUNKS = 4


class PlaintextDigest:
    """Counts and hashes plaintext chunks in order, inline or on a worker thread."""

    def __init__(self, *, threaded: bool) -> None:
        self._sha = hashlib.sha256()
        self._threaded = threaded
        self._queue: queue.Queue[bytes | None] | None = None
        self._thread: threading.Thread | None = None
        self.size = 0

    def emit(self, pieces: list[bytes]) -> bytes:
        """Account for ``pieces`` (in order) and return them as one bytes object."""
        if not pieces:
            return b""
        out = pieces[0] if len(pieces) == 1 else b"".join(pieces)
        self.size += len(out)
        if self._queue is None and self._threaded and self.size >= _THREAD_AFTER:
            self._start()
        if self._queue is not None:
            self._queue.put(out)
        else:
            self._sha.update(out)
        return out

    def hexdigest(self) -> str:
        self._stop()
        return self._sha.hexdigest()

    def abandon(self) -> None:
        """Stop the worker (the stream failed; the digest will not be used)."""
        self._stop()

    def _start(self) -> None:
        work: queue.Queue[bytes | None] = queue.Queue(maxsize=_QUEUE_CHUNKS)
        thread = threading.Thread(
            target=_hash_worker, args=(self._sha, work), name="cms-sha256", daemon=True
        )
        thread.start()
        # If the owner is dropped without close(), still let the worker end.
        weakref.finalize(self, work.put, None)
        self._queue = work
        self._thread = thread

    def _stop(self) -> None:
        if self._queue is not None and self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._queue = None
            self._thread = None


def _hash_worker(sha: hashlib._Hash, work: queue.Queue[bytes | None]) -> None:
    while True:
        item = work.get()
        if item is None:
            return
        sha.update(item)
