"""Letters in flight and how to stop them: the shutdown side of the pipeline.

A thread blocked reading a stalled download would not notice a flag; ``stop()`` also
interrupts every open download, and an error that follows is reported as the stop it is.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from svarinn_daemon.errors import SvarinnError
from svarinn_daemon.svarinn import Download
from svarinn_daemon.work import ShutdownRequested


class InFlight:
    def __init__(self) -> None:
        self.stopping = threading.Event()
        self._open: set[Download] = set()
        self._lock = threading.Lock()

    def stop(self) -> None:
        """Downloads end at once (also one blocked on a stalled server)."""
        self.stopping.set()
        with self._lock:
            downloads = list(self._open)
        for download in downloads:
            download.interrupt()

    def check(self) -> None:
        """Raise ShutdownRequested once stop() was called; the caller releases the letter."""
        if self.stopping.is_set():
            raise ShutdownRequested

    @contextmanager
    def track(self, body: Download) -> Iterator[None]:
        """Register an open download for stop(); an error after stop() means "stopped"."""
        with self._lock:
            self._open.add(body)
        try:
            self.check()
            yield
        except SvarinnError:
            if self.stopping.is_set():
                raise ShutdownRequested from None  # the read was interrupted by stop()
            raise
        finally:
            with self._lock:
                self._open.discard(body)
