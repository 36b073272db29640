"""Whether the ledger answers: one log line per change, not one per failed attempt.

Every ledger operation reports here (:class:`~svarinn_daemon.ledger.queries.LedgerQueries`
does it in its transaction helpers), so the daemon knows the ledger is down from the first
failed verb, stops polling and claiming, and probes it until it answers again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from svarinn_daemon.errors import LedgerUnavailableError
from svarinn_daemon.logs import get_logger

__all__ = ["Availability"]

log = get_logger("svarinn_daemon.ledger")


class Availability:
    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._lock = threading.Lock()
        self._down_since: float | None = None
        self.changed = threading.Condition(self._lock)

    @property
    def up(self) -> bool:
        return self._down_since is None

    def down_for(self) -> float:
        """Seconds since the ledger stopped answering (0 while it answers)."""
        since = self._down_since
        return 0.0 if since is None else self._clock() - since

    def failed(self, error: LedgerUnavailableError) -> None:
        with self._lock:
            if self._down_since is not None:
                return
            self._down_since = self._clock()
            self.changed.notify_all()
        log.error("ledger.unavailable", error=str(error))

    def answered(self) -> None:
        if self._down_since is None:  # the common case, without the lock
            return
        with self._lock:
            since = self._down_since
            if since is None:
                return
            self._down_since = None
            self.changed.notify_all()
        log.info("ledger.recovered", down_seconds=round(self._clock() - since, 1))

    def wait_up(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the ledger to be reported up again."""
        with self._lock:
            return self.changed.wait_for(lambda: self._down_since is None, timeout)
