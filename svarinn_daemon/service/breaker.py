"""A circuit breaker per archive: a stuck archive is one fault, not one per letter.

After ``pause_after`` consecutive temporary failures the breaker *opens*: no letter is
claimed for import into that archive, so waiting letters keep their attempts and backoff.
After ``probe_delay`` one probe may go (*half open*): the adapter's own ``probe()`` when it
has one, otherwise one letter routed to that archive. Its success closes the breaker, its
failure opens it again with twice the delay, up to ``probe_max_delay``. A letter probe that
ends before reaching the archive (its download, decryption or verification failed) says
nothing about the archive: :meth:`cancel_probe` lets the next probe go at once. Receipts
need no archive and are never held back.

A probe without a letter proves less than a letter does (an endpoint's status check may
answer while its import fails), so its success closes the breaker *on trial*: until a
letter gets through, the first failure opens it again, with the doubled delay.

Pure logic over a monotonic clock passed in: the daemon asks :meth:`Breaker.allow` before
claiming and reports each result with :meth:`success` or :meth:`failure`.

    state      allow()                                   success()   failure()
    closed     yes                                       closed      count; open at pause_after
                                                                     (on trial: open at once)
    open       no until the delay passed, then one probe closed      open, delay doubled
    half open  no (a probe is in flight)                 closed      open, delay doubled
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

__all__ = ["Breaker", "BreakerPolicy", "BreakerState"]


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True)
class BreakerPolicy:
    pause_after: int = 5
    probe_delay: float = 30.0  # seconds
    probe_max_delay: float = 600.0


class Breaker:
    """Thread-safe; every method is O(1)."""

    def __init__(self, policy: BreakerPolicy, *, clock: Callable[[], float] = time.monotonic):
        self.policy = policy
        self._clock = clock
        self._lock = threading.Lock()
        self.state = BreakerState.CLOSED
        self.failures = 0  # consecutive temporary failures
        self.delay = policy.probe_delay
        self.opened_at: float | None = None  # when it first opened in this outage
        self._retry_at = 0.0
        self._trial = False  # closed by a probe without a letter; no letter through yet
        self.recoveries = 0  # how often it closed after an outage

    @property
    def available(self) -> bool:
        return self.state is BreakerState.CLOSED

    def allow(self) -> bool:
        """May a letter be claimed for this archive now? A True in the open state turns the
        breaker half open: that letter is the probe, and no other goes until it ends."""
        with self._lock:
            if self.state is BreakerState.CLOSED:
                return True
            if self.state is BreakerState.OPEN and self._clock() >= self._retry_at:
                self.state = BreakerState.HALF_OPEN
                return True
            return False

    def probe_in(self) -> float | None:
        """Seconds until the next probe may go (0 when due), None unless open."""
        with self._lock:
            if self.state is not BreakerState.OPEN:
                return None
            return max(0.0, self._retry_at - self._clock())

    def probe_due(self) -> bool:
        """Open, and its delay has passed: the next claim would probe (nothing changes)."""
        with self._lock:
            return self.state is BreakerState.OPEN and self._clock() >= self._retry_at

    def cancel_probe(self) -> None:
        """The probe allowed by :meth:`allow` said nothing about the archive (nothing was
        due, or its letter failed before the archive): the next probe may go at once."""
        with self._lock:
            if self.state is BreakerState.HALF_OPEN:
                self.state = BreakerState.OPEN

    def success(self, *, trial: bool = False) -> bool:
        """The archive took a letter (``trial``: passed a probe without one); returns True
        when this closed an open breaker."""
        with self._lock:
            was_open = self.state is not BreakerState.CLOSED
            if trial and not was_open:
                return False  # a letter's success says more; keep what it said
            self.state = BreakerState.CLOSED
            self.failures = 0
            self.opened_at = None
            self._trial = trial
            if not trial:
                self.delay = self.policy.probe_delay
            if was_open:
                self.recoveries += 1
            return was_open

    def failure(self) -> bool:
        """A temporary failure of the archive; returns True when this opened the breaker."""
        with self._lock:
            now = self._clock()
            self.failures += 1
            if self.state is BreakerState.CLOSED:
                if self.failures < self.policy.pause_after and not self._trial:
                    return False
                if self._trial:  # the probe was wrong: back off as after a failed probe
                    self.delay = min(self.delay * 2, self.policy.probe_max_delay)
                    self._trial = False
                self.opened_at = now
                opened = True
            else:
                # A failed probe (or a letter that was in flight when it opened).
                if self.state is BreakerState.HALF_OPEN:
                    self.delay = min(self.delay * 2, self.policy.probe_max_delay)
                opened = False
            self.state = BreakerState.OPEN
            self._retry_at = now + self.delay
            return opened

    def open_for(self) -> float:
        """Seconds since the breaker opened in this outage (0 when closed)."""
        with self._lock:
            return 0.0 if self.opened_at is None else self._clock() - self.opened_at
