"""Keeping a claim's lease while its letter is worked on, so no other worker takes it over.

A download renews it between chunks (:func:`renewer`, called by the stage as it goes); an
adapter's call (a program's run, a slow POST) is one blocking step, so a thread renews it
meanwhile (:func:`kept`). Both renew every third of the lease's length.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta

from svarinn_daemon.errors import LeaseLostError, LedgerError, LedgerUnavailableError
from svarinn_daemon.ledger import Claim, Ledger

__all__ = ["kept", "renewer"]


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


@contextmanager
def kept(ledger: Ledger, claim: Claim, worker_id: str, lease: timedelta) -> Iterator[None]:
    """Extend the lease from a thread until the block ends."""
    stop = threading.Event()
    every = max((lease / 3).total_seconds(), 0.05)

    def keep() -> None:
        while not stop.wait(every):
            try:
                ledger.extend_lease(claim.id, worker_id, lease)
            except LeaseLostError:
                return  # the decision's write will say so
            except LedgerError:
                continue  # the lease has time left; try again at the next turn

    keeper = threading.Thread(target=keep, name=f"lease-{claim.id}", daemon=True)
    keeper.start()
    try:
        yield
    finally:
        stop.set()
        keeper.join(timeout=5.0)
