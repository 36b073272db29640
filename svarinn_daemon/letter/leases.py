"""Keeping a claim's lease while its letter is worked on, so no other worker takes it over.

A download renews it between chunks (:func:`renewer`, called by the stage as it goes); an
adapter's call (a program's run, a slow POST) is one blocking step, so a thread renews it
meanwhile (:class:`LeaseKeeper`: one thread for every claim in such a step, not one per step,
which cost two thread starts per letter). Both renew every third of the lease's length.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta

from svarinn_daemon.errors import LeaseLostError, LedgerError, LedgerUnavailableError
from svarinn_daemon.ledger import Claim, Ledger

__all__ = ["LeaseKeeper", "renewer"]


def renewer(ledger: Ledger, claim: Claim, worker_id: str, lease: timedelta) -> Callable[[], None]:
    """A callable that extends the lease when a third of it has passed since the last time."""
    every = (lease / 3).total_seconds()
    renewed = time.monotonic()

    def renew() -> None:
        nonlocal renewed
        if time.monotonic() - renewed > every:
            try:
                ledger.extend_lease(claim.id, worker_id, lease)
                renewed = time.monotonic()
            except LedgerUnavailableError:
                pass  # the lease has time left; the next chunk tries again

    return renew


class LeaseKeeper:
    """Renews the lease of every claim inside :meth:`kept`, from one thread started when
    needed, which ends once nothing has been held for ``IDLE`` seconds (or at :meth:`close`)."""

    IDLE = 5.0

    def __init__(self, ledger: Ledger, worker_id: str, lease: timedelta):
        self._ledger = ledger
        self._worker_id = worker_id
        self._lease = lease
        self._every = max((lease / 3).total_seconds(), 0.05)
        self._held: dict[int, tuple[Claim, float]] = {}  # claim id -> (claim, next renewal)
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False

    @contextmanager
    def kept(self, claim: Claim) -> Iterator[None]:
        """Extend the claim's lease until the block ends."""
        with self._changed:
            self._held[claim.id] = (claim, time.monotonic() + self._every)
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(target=self._run, name="leases", daemon=True)
                self._thread.start()
            self._changed.notify()
        try:
            yield
        finally:
            with self._changed:
                self._held.pop(claim.id, None)

    def close(self) -> None:
        with self._changed:
            self._closed = True
            self._changed.notify()
            thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=5.0)

    def _run(self) -> None:
        while True:
            with self._changed:
                if self._closed:
                    return
                if not self._held:
                    self._changed.wait(self.IDLE)
                    if not self._held:
                        self._thread = None
                        return
                    continue
                now = time.monotonic()
                due = [claim for claim, at in self._held.values() if at <= now]
                if not due:
                    self._changed.wait(min(at for _, at in self._held.values()) - now)
                    continue
                for claim in due:
                    self._held[claim.id] = (claim, now + self._every)
            for claim in due:
                self._renew(claim)

    def _renew(self, claim: Claim) -> None:
        try:
            self._ledger.extend_lease(claim.id, self._worker_id, self._lease)
        except LeaseLostError:
            with self._changed:  # the decision's write will say so; stop renewing it
                if claim.id in self._held:
                    self._held.pop(claim.id)
        except LedgerError:
            pass  # the lease has time left; try again at the next turn
