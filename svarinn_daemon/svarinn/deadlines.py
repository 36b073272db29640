"""One thread that acts at deadlines for all of a client's downloads.

A download's time budget is enforced by interrupting a read that blocks past it. A
``threading.Timer`` per download did that at the cost of a thread start and stop for every
letter (about 0.12 ms of CPU, and more wake-ups among the threads sharing the GIL); this
keeps the deadlines in a heap watched by one thread, started when the first one is set and
ending once none has been pending for ``IDLE`` seconds.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable

from svarinn_daemon.logs import get_logger

__all__ = ["Deadlines"]

log = get_logger(__name__)

_Action = Callable[[], None]


class _Entry:
    __slots__ = ("action", "order", "when")

    def __init__(self, when: float, order: int, action: _Action):
        self.when = when
        self.order = order
        self.action: _Action | None = action

    def __lt__(self, other: _Entry) -> bool:
        return (self.when, self.order) < (other.when, other.order)


class Deadlines:
    """``at(when, action)`` runs ``action`` at ``time.monotonic()`` ``when`` on this object's
    thread unless the cancel function it returns was called first."""

    IDLE = 5.0

    def __init__(self) -> None:
        self._heap: list[_Entry] = []
        self._cancelled = 0
        self._order = itertools.count()
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None

    def at(self, when: float, action: _Action) -> _Action:
        """Schedule ``action``; returns the function that cancels it (harmless once run)."""
        entry = _Entry(when, next(self._order), action)
        with self._changed:
            heapq.heappush(self._heap, entry)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="deadlines", daemon=True)
                self._thread.start()
            elif self._heap[0] is entry:
                self._changed.notify()  # earlier than what the thread waits for

        def cancel() -> None:
            with self._changed:
                if entry.action is not None:
                    entry.action = None
                    self._cancelled += 1
                    self._compact()

        return cancel

    def pending(self) -> int:
        """Deadlines set and neither run nor cancelled."""
        with self._changed:
            return len(self._heap) - self._cancelled

    def _compact(self) -> None:
        """Drop cancelled entries once they are most of the heap: a day of downloads each
        cancelled long before its deadline must not pile up."""
        if self._cancelled > 32 and self._cancelled * 2 > len(self._heap):
            self._heap = [e for e in self._heap if e.action is not None]
            heapq.heapify(self._heap)
            self._cancelled = 0

    def _run(self) -> None:
        while True:
            with self._changed:
                while self._heap and self._heap[0].action is None:
                    heapq.heappop(self._heap)
                    self._cancelled -= 1
                if not self._heap:
                    self._changed.wait(self.IDLE)
                    if not self._heap:
                        self._thread = None
                        return
                    continue
                wait = self._heap[0].when - time.monotonic()
                if wait > 0:
                    self._changed.wait(wait)
                    continue
                entry = heapq.heappop(self._heap)
                action, entry.action = entry.action, None
            if action is not None:
                try:
                    action()
                except Exception:  # a bug in one action must not stop the others' deadlines
                    log.exception("deadlines.action_failed")
