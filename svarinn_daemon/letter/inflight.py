"""Letters in flight: how to stop them, and whether they are still moving.

A thread blocked reading a stalled download would not notice a flag; ``stop()`` also
interrupts every open download, and an error that follows is reported as the stop it is.

Each worker thread beats while it works (between chunks, at each stage, while it waits for
the ledger), so :meth:`InFlight.stalled_for` tells a slow letter from a wedged worker: the
daemon's liveness and the systemd watchdog depend on it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from svarinn_daemon.errors import DaemonError, ShutdownRequested
from svarinn_daemon.svarinn.api import DownloadBody


class InFlight:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.stopping = threading.Event()
        self._open: set[DownloadBody] = set()
        self._lock = threading.Lock()
        self._clock = clock
        self._beats: dict[int, float] = {}  # worker thread -> when it last made progress

    def stop(self) -> None:
        """Downloads end at once (also one blocked on a stalled server)."""
        self.stopping.set()
        with self._lock:
            downloads = list(self._open)
        for download in downloads:
            download.interrupt()

    def check(self) -> None:
        """A beat; raise ShutdownRequested once stop() was called (the letter is released)."""
        self.beat()
        if self.stopping.is_set():
            raise ShutdownRequested

    @contextmanager
    def working(self) -> Iterator[None]:
        """The calling thread works on a letter until the block ends."""
        ident = threading.get_ident()
        with self._lock:
            self._beats[ident] = self._clock()
        try:
            yield
        finally:
            with self._lock:
                self._beats.pop(ident, None)

    def beat(self) -> None:
        """The calling worker made progress."""
        ident = threading.get_ident()
        with self._lock:
            if ident in self._beats:
                self._beats[ident] = self._clock()

    def stalled_for(self) -> float:
        """Seconds since the least recently moving worker last beat (0 when none works)."""
        with self._lock:
            oldest = min(self._beats.values(), default=None)
        return 0.0 if oldest is None else max(0.0, self._clock() - oldest)

    def busy(self) -> int:
        with self._lock:
            return len(self._beats)

    @contextmanager
    def track(self, body: DownloadBody) -> Iterator[None]:
        """Register an open download for stop(); an error after stop() means "stopped"."""
        with self._lock:
            self._open.add(body)
        try:
            self.check()
            yield
        except DaemonError:
            if self.stopping.is_set():
                raise ShutdownRequested from None  # the read was interrupted by stop()
            raise
        finally:
            with self._lock:
                self._open.discard(body)
