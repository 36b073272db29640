"""Temporary files for letters in flight: mode 0600, removed when done.

They live in ``<state_directory>/spool`` so that leftovers from a crash can be found and
removed at the next start (the ledger, not the spool, says what is done). They are not
fsynced: after a crash nothing reads them again, and what keeps one (the ``filesystem``
archive's hard link, a ``command`` program's files) is fsynced by its keeper before the
commit, as a copy is. An fsync here was a second journal commit for every letter. A write
the disk fails later still surfaces where it matters: at the keeper's fsync of the same
file; a copy or an upload reads the pages just written from the page cache.

A small letter is gathered in one buffer and written at ``finish()``. Once a
letter outgrows that buffer, a writer thread takes over, so the disk works while the next
megabytes are downloaded and decrypted, and the writes bypass the page cache (``O_DIRECT``)
where the filesystem allows it: the plaintext is read once more at most (a zip's entries),
so caching it only costs fresh page allocations and a long ``fsync`` at the archive. Where
``O_DIRECT`` is refused (tmpfs, some network filesystems) the writes fall back to the
page cache. Write errors found by the thread surface at the next ``write()`` or at
``finish()``. A file asked to hash what it holds (``digest``) gets a second thread for that,
beside the writer, so the hashing never waits for the disk.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import mmap
import os
import queue
import secrets
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from svarinn_daemon.errors import StorageError

if TYPE_CHECKING:
    from hashlib import _Hash as Hash

SUFFIX = ".part"
BLOCK = 1 << 20  # bytes per write of a large letter: aligned for any disk's O_DIRECT
_BUFFERS = 3  # one being filled, up to two queued or being written
_O_DIRECT = getattr(os, "O_DIRECT", 0)


class SpoolFile:
    """One plaintext being written; ``finish()`` completes it, ``remove()`` deletes it.

    ``digest``, when given, is updated with every byte in order: by a hashing thread for
    the blocks the writer thread writes (beside the letter's own thread and the writes, not
    on either), and with the rest at ``finish()``."""

    def __init__(self, path: Path, *, direct: bool = True, digest: Hash | None = None):
        self.path = path
        self.digest = digest
        self._buffers = [mmap.mmap(-1, BLOCK)]  # page-aligned, as O_DIRECT requires
        self._buffer = self._buffers[0]
        self._fd: int | None = None
        try:
            self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            self._buffer.close()
            raise storage_error("create spool file", path, exc) from None
        self.size = 0
        self._direct = direct
        self._used = 0
        self._writer: _Writer | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        assert self._fd is not None, "spool file already finished"
        with memoryview(data) as whole:
            view = whole.cast("B")
            while view:
                take = min(len(view), BLOCK - self._used)
                self._buffer[self._used : self._used + take] = view[:take]
                self._used += take
                self.size += take
                view = view[take:]
                if self._used == BLOCK:
                    self._hand_over()

    def _hand_over(self) -> None:
        assert self._fd is not None
        if len(self._buffers) == 1:
            self._buffers += [mmap.mmap(-1, BLOCK) for _ in range(_BUFFERS - 1)]
        try:
            if self._writer is None:
                self._writer = _Writer(
                    self._fd, self._buffers[1:], direct=self._direct, digest=self.digest
                )
            self._buffer = self._writer.swap(self._buffer)
        except OSError as exc:
            raise storage_error("write spool file", self.path, exc) from None
        self._used = 0

    def finish(self) -> Path:
        """Write what is left and close; the file is complete on return (not fsynced: see
        the module's docstring)."""
        if self._fd is None:
            return self.path
        try:
            with memoryview(self._buffer) as view:
                if self._writer is not None:
                    self._writer.finish(view[: self._used])
                else:
                    if self.digest is not None:
                        self.digest.update(view[: self._used])
                    _write_all(self._fd, view[: self._used], 0)
            self._close()  # a network filesystem may report a failed write only here
        except OSError as exc:
            raise storage_error("write spool file", self.path, exc) from None
        finally:
            with contextlib.suppress(OSError):  # closed once, even when close() failed
                self._close()
        return self.path

    def remove(self) -> None:
        self._close()
        self.path.unlink(missing_ok=True)

    def _close(self) -> None:
        if self._writer is not None:
            self._writer.stop()
            self._writer = None
        if self._fd is not None:
            fd, self._fd = self._fd, None  # never closed twice: the number may be reused
            os.close(fd)
        for buffer in self._buffers:
            # A view still held by an exception's traceback keeps a buffer open until the
            # exception is gone; the mapping is freed with that last view.
            with contextlib.suppress(BufferError):
                buffer.close()

    def __enter__(self) -> SpoolFile:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None:
            self.remove()


class _Writer:
    """Writes full buffers in order on its own thread; hands back empty ones. With a
    ``digest``, a second thread hashes each buffer while the first writes it (an O_DIRECT
    write waits for the disk: hashing behind it on one thread made that thread the letter's
    bottleneck); a buffer is handed back once both are done with it."""

    def __init__(
        self, fd: int, empty: list[mmap.mmap], *, direct: bool, digest: Hash | None = None
    ):
        self._fd = fd
        self._digest = digest
        self._direct = direct and _set_direct(fd, True)
        self._offset = 0
        self._full: queue.Queue[mmap.mmap | None] = queue.Queue()
        self._free: queue.Queue[mmap.mmap] = queue.Queue()
        for buffer in empty:
            self._free.put(buffer)
        self._failure: OSError | None = None
        self._users: dict[int, int] = {}  # id(buffer) -> threads still reading it
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(
                target=self._consume,
                args=(self._full, self._write_unless_failed),
                name="spool-writer",
                daemon=True,
            )
        ]
        self._hash: queue.Queue[mmap.mmap | None] | None = None
        if digest is not None:
            self._hash = queue.Queue()
            self._threads.append(
                threading.Thread(
                    target=self._consume,
                    args=(self._hash, digest.update),
                    name="spool-hash",
                    daemon=True,
                )
            )
        for started, thread in enumerate(self._threads):
            try:
                thread.start()
            except RuntimeError as exc:  # no thread to be had: end the ones started
                for queue_ in (self._full, self._hash)[:started]:
                    assert queue_ is not None
                    queue_.put(None)
                raise OSError(errno.EAGAIN, f"cannot start a spool thread: {exc}") from None

    def swap(self, full: mmap.mmap) -> mmap.mmap:
        """Queue ``full`` for writing; returns an empty buffer (waits while the disk lags)."""
        self._raise_failure()
        with self._lock:
            self._users[id(full)] = len(self._threads)
        self._full.put(full)
        if self._hash is not None:
            self._hash.put(full)
        return self._free.get()

    def finish(self, tail: memoryview) -> None:
        """Wait for the queued buffers, then write the tail (not block-sized: buffered)."""
        self.stop()
        self._raise_failure()
        if self._digest is not None:
            self._digest.update(tail)
        if self._direct:
            _set_direct(self._fd, False)
        _write_all(self._fd, tail, self._offset)

    def stop(self) -> None:
        if self._threads[0].is_alive():
            self._full.put(None)
        if self._hash is not None and self._threads[1].is_alive():
            self._hash.put(None)
        for thread in self._threads:
            thread.join()

    def _raise_failure(self) -> None:
        if self._failure is not None:
            raise self._failure

    def _done_with(self, buffer: mmap.mmap) -> None:
        with self._lock:
            left = self._users[id(buffer)] - 1
            if left:
                self._users[id(buffer)] = left
                return
            del self._users[id(buffer)]
        self._free.put(buffer)

    def _consume(
        self, work: queue.Queue[mmap.mmap | None], each: Callable[[memoryview], object]
    ) -> None:
        """One thread's loop: ``each`` buffer in order until ``None``."""
        while (buffer := work.get()) is not None:
            try:
                with memoryview(buffer) as view:
                    each(view)
            except Exception as exc:
                self._fail(exc)
            finally:
                self._done_with(buffer)

    def _write_unless_failed(self, view: memoryview) -> None:
        if self._failure is None:
            self._write(view)

    def _fail(self, exc: Exception) -> None:
        """Keep the first failure for the letter's thread; either thread goes on taking
        buffers, so the letter's thread never waits for one that will not come back."""
        if self._failure is None:
            if not isinstance(exc, OSError):  # a bug here is still this letter's failure
                exc = OSError(errno.EIO, f"{type(exc).__name__}: {exc}")
            self._failure = exc.with_traceback(None)  # no frames holding views

    def _write(self, view: memoryview) -> None:
        try:
            _write_all(self._fd, view, self._offset)
        except OSError as exc:
            if not (self._direct and exc.errno == errno.EINVAL):
                raise
            # The filesystem took O_DIRECT at open but refuses the write itself.
            _set_direct(self._fd, False)
            self._direct = False
            _write_all(self._fd, view, self._offset)
        self._offset += len(view)


def _set_direct(fd: int, on: bool) -> bool:
    """Switch O_DIRECT on or off; False when the platform or filesystem refuses it."""
    if not _O_DIRECT:
        return False
    flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    try:
        fcntl.fcntl(fd, fcntl.F_SETFL, flags | _O_DIRECT if on else flags & ~_O_DIRECT)
    except OSError:
        return False
    return on


def _write_all(fd: int, view: memoryview, offset: int) -> None:
    while view:
        written = os.pwrite(fd, view, offset)
        view = view[written:]
        offset += written


class Spool:
    def __init__(self, directory: Path):
        self.directory = directory

    def prepare(self) -> None:
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise storage_error("create the spool directory", self.directory, exc) from None

    def create(self, forsendelse_id: str) -> SpoolFile:
        return SpoolFile(self._unique(forsendelse_id))

    def workdir(self, forsendelse_id: str) -> Path:
        """A private directory for one letter's unpacked zip entries."""
        path = self._unique(forsendelse_id, ".d")
        try:
            path.mkdir(mode=0o700)
        except OSError as exc:
            raise storage_error("create a work directory", path, exc) from None
        return path

    def _unique(self, forsendelse_id: str, suffix: str = "") -> Path:
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in forsendelse_id)[:80]
        return self.directory / f"{safe}.{secrets.token_hex(4)}{SUFFIX}{suffix}"

    def clean_leftovers(self) -> int:
        """Remove every temporary file a previous run left behind; returns how many."""
        if not self.directory.is_dir():
            return 0
        removed = 0
        for path in self.directory.iterdir():
            if not path.name.endswith((SUFFIX, SUFFIX + ".d")):
                continue
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
            removed += 1
        return removed


def storage_error(what: str, path: Path, exc: OSError) -> StorageError:
    """Our own disk, named as such (ENOSPC, EDQUOT, EROFS, EACCES ...): never the archive's."""
    code = errno.errorcode.get(exc.errno or 0, "")
    reason = exc.strerror or str(exc)
    return StorageError(f"cannot {what} {path}: {reason}" + (f" ({code})" if code else ""))
