"""Where decrypted plaintext goes: reused buffers, the SHA-256, the byte count.

Two costs dominate once parsing is cheap. First, fresh megabyte-sized allocations: glibc
hands them back to the kernel and every reuse page-faults, which halves throughput. So AES
writes into buffers kept for the whole stream, and each ``feed`` makes exactly one new
object, the bytes it returns. Second, SHA-256 itself, about four times the cost of
AES-CBC with AES-NI. Single-threaded, each 64 KiB group is hashed right after it is
decrypted, while it is still in cache. Threaded (large files only), a worker hashes one
feed's buffer -- hashlib releases the GIL -- while the next feed is parsed and decrypted;
a small ring of buffers passed through two queues bounds memory and keeps order. Each
hand-over costs a thread switch, so once the worker runs, plaintext is held back until
about ``_HANDOFF`` bytes are ready: small feeds (64 KiB network reads) then cost no more
than large ones.
"""

from __future__ import annotations

import hashlib
import queue
import threading
import time
import weakref
from collections.abc import Callable

_THREAD_AFTER = 1 << 20  # plaintext bytes before hashing moves to a worker thread
_RING = 2  # plaintext buffers: one being filled, one being hashed
_HANDOFF = 1 << 20  # plaintext bytes per hand-over to the worker
_FEED_SLACK = 1 << 18  # what one feed usually adds past _HANDOFF (a 256 KiB network read)


class PlaintextSink:
    """Collects one feed's plaintext, hashes it in order, and hands it out as bytes."""

    def __init__(self, *, threaded: bool, hashing: bool = True) -> None:
        self._sha = hashlib.sha256()
        self._hashing = hashing
        self._threaded = threaded and hashing
        self._buffer = bytearray(1 << 16)
        self._used = 0
        self._work: queue.Queue[tuple[bytearray, int] | None] | None = None
        self._free: queue.Queue[bytearray] | None = None
        self._thread: threading.Thread | None = None
        self.size = 0

    def reserve(self, count: int) -> memoryview:
        """A writable view of at least ``count`` bytes after what was committed.

        Release it (``with``) before the next call.
        """
        needed = self._used + count
        if len(self._buffer) < needed:
            # Doubling, but not far past what a hand-over holds (_HANDOFF and one feed): each
            # of the ring's buffers would otherwise end at 2 MiB.
            size = max(needed, min(2 * len(self._buffer), _HANDOFF + _FEED_SLACK))
            try:
                self._buffer.extend(bytes(size - len(self._buffer)))
            except BufferError:  # a writer kept a view of what it was given: leave it that
                grown = bytearray(size)
                grown[: self._used] = memoryview(self._buffer)[: self._used]
                self._buffer = grown
        return memoryview(self._buffer)[self._used :]

    def commit(self, count: int) -> None:
        """``count`` bytes were written into the last reserved view."""
        if self._work is None and self._hashing:
            with memoryview(self._buffer) as view:
                self._sha.update(view[self._used : self._used + count])
        self._used += count

    def give(self, write: Callable[[memoryview], object], *, final: bool = False) -> None:
        """Hand what was committed since the last call to ``write``, as a view of this
        sink's own buffer that is valid only during the call: no copy. While the worker
        hashes, less than ``_HANDOFF`` bytes are held back unless ``final``."""
        used = self._used
        if not used or (self._work is not None and used < _HANDOFF and not final):
            return
        buffer = self._buffer
        self.size += used
        self._used = 0
        if self._work is not None and self._free is not None:
            self._work.put((buffer, used))  # hashed by the worker while write() reads it
            # Let the worker take the GIL now: otherwise it may wait a whole switch
            # interval (5 ms) to return from its last update() while we keep parsing.
            time.sleep(0)
            try:
                _lend(buffer, used, write)
            finally:
                self._buffer = self._free.get()
            return
        _lend(buffer, used, write)
        if self._threaded and self.size >= _THREAD_AFTER:
            self._start()  # from now on, commit() leaves hashing to the worker

    def take(self, *, final: bool = False) -> bytes:
        """What ``give`` would hand over, as one new bytes object."""
        out: list[bytes] = []
        self.give(lambda view: out.append(bytes(view)), final=final)
        return out[0] if out else b""

    def hexdigest(self) -> str | None:
        """The SHA-256 of everything committed; None when this sink does not hash."""
        self._stop()
        return self._sha.hexdigest() if self._hashing else None

    def abandon(self) -> None:
        """Stop the worker (the stream failed; the digest will not be used)."""
        self._stop()

    def _start(self) -> None:
        work: queue.Queue[tuple[bytearray, int] | None] = queue.Queue()
        free: queue.Queue[bytearray] = queue.Queue()
        for _ in range(_RING - 1):
            free.put(bytearray(len(self._buffer)))
        thread = threading.Thread(
            target=_hash_worker, args=(self._sha, work, free), name="cms-sha256", daemon=True
        )
        thread.start()
        weakref.finalize(self, work.put, None)  # dropped without close(): let the worker end
        self._work, self._free, self._thread = work, free, thread

    def _stop(self) -> None:
        if self._work is not None and self._thread is not None:
            self._work.put(None)
            self._thread.join()
            self._work = self._free = self._thread = None


def _lend(buffer: bytearray, used: int, write: Callable[[memoryview], object]) -> None:
    with memoryview(buffer) as whole, whole[:used] as view:
        write(view)


def _hash_worker(
    sha: hashlib._Hash,
    work: queue.Queue[tuple[bytearray, int] | None],
    free: queue.Queue[bytearray],
) -> None:
    while (item := work.get()) is not None:
        buffer, used = item
        with memoryview(buffer) as view:
            sha.update(view[:used])
        free.put(buffer)
