"""Writing a decision to the ledger as soon as it answers: the one wait every writer shares
(a worker's decision about its letter, a listener's reply from an archive).

While the database is down the writer waits, retrying with a growing pause, until it answers
or ``stopping`` is set (then :class:`ShutdownRequested`: the decision is not written, and
what it was about comes again: a lease runs out, a reply is redelivered).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

from svarinn_daemon.errors import LedgerUnavailableError, ShutdownRequested

__all__ = ["FIRST", "MOST", "when_ledger_answers"]

T = TypeVar("T")
FIRST = 0.5
MOST = 5.0


def when_ledger_answers(
    write: Callable[[], T],
    stopping: threading.Event,
    *,
    beat: Callable[[], None] = lambda: None,
    first: float = FIRST,
    most: float = MOST,
) -> T:
    """``write()``, again after each LedgerUnavailableError; ``beat`` between tries (a
    worker's, so it is not taken for wedged)."""
    delay = first
    while True:
        try:
            return write()
        except LedgerUnavailableError:
            beat()
            if stopping.wait(delay):
                raise ShutdownRequested from None
            delay = min(delay * 2, most)
