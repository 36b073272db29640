"""Liveness as progress, readiness as the ledger and recent polls: read off one record.

The daemon tells :class:`Progress` when its scheduler ticks, when a poll cycle moves or ends,
and when an account's poll succeeds; workers beat :class:`~svarinn_daemon.letter.inflight.
InFlight` themselves. ``/healthz`` and the systemd watchdog follow :meth:`Progress.liveness`,
``/readyz`` follows :meth:`Progress.readiness`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable

from svarinn_daemon.letter.inflight import InFlight
from svarinn_daemon.service.health import Check

__all__ = ["Progress"]


class Progress:
    def __init__(
        self,
        in_flight: InFlight,
        *,
        stall_timeout: float,
        tick_limit: float,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.in_flight = in_flight
        self.stall_timeout = stall_timeout
        self.tick_limit = tick_limit
        self._clock = clock
        self._lock = threading.Lock()
        self._last_tick = clock()
        self._cycles: dict[str, float] = {}  # account -> last progress of its running cycle
        self._last_poll_ok: dict[str, float] = {}

    def tick(self) -> None:
        self._last_tick = self._clock()

    def cycle(self, account: str | None) -> None:
        """The account's poll cycle (``None``: a cycle over every account) moved."""
        with self._lock:
            self._cycles[account or "*"] = self._clock()

    def cycle_done(self, account: str | None) -> None:
        with self._lock:
            self._cycles.pop(account or "*", None)

    def polled_ok(self, account: str) -> None:
        with self._lock:
            self._last_poll_ok[account] = self._clock()

    def liveness(self) -> Check:
        """Alive means moving: the scheduler turns, and no poll cycle or letter in flight
        has been silent for ``stall_timeout``. Waiting for the ledger counts as moving:
        a restart would not bring it back."""
        now = self._clock()
        tick_age = now - self._last_tick
        with self._lock:
            cycle_silence = max((now - t for t in self._cycles.values()), default=0.0)
        worker_silence = self.in_flight.stalled_for()
        ok = (
            tick_age < self.tick_limit
            and cycle_silence < self.stall_timeout
            and worker_silence < self.stall_timeout
        )
        return Check(
            ok,
            {
                "scheduler_tick_age_seconds": f"{tick_age:.1f}",
                "cycle_silent_seconds": f"{cycle_silence:.1f}",
                "worker_silent_seconds": f"{worker_silence:.1f}",
            },
        )

    def readiness(
        self, ping_ledger: Callable[[], None], accounts: Iterable[str], poll_age: float
    ) -> Check:
        """Ready when the ledger takes a write and every account polled within
        ``poll_age`` seconds."""
        details: dict[str, str] = {}
        ok = True
        try:
            ping_ledger()
            details["ledger"] = "ok"
        except Exception as exc:  # any failure means not ready; the text says why
            ok = False
            details["ledger"] = f"unavailable: {type(exc).__name__}"
        now = self._clock()
        for account in accounts:
            with self._lock:
                last = self._last_poll_ok.get(account)
            if last is None or now - last > poll_age:
                ok = False
                details[f"poll_{account}"] = "no successful poll recently"
            else:
                details[f"poll_{account}"] = "ok"
        return Check(ok, details)
