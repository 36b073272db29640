"""One thread per archive that answers later (Fiks Arkiv), reading its replies into the
ledger for as long as the daemon runs.

A reply is confirmed to the broker only once the ledger has it: while the ledger does not
answer, the reply waits here (the listener's thread waits with it, with a growing pause),
and when the daemon stops first it is left unconfirmed, to come again after the restart.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping

from svarinn_daemon.adapters.base import AnswersLater, ArchiveAdapter
from svarinn_daemon.ledger import Ledger
from svarinn_daemon.letter.durable import when_ledger_answers
from svarinn_daemon.letter.replies import ReplyHandler
from svarinn_daemon.logs import get_logger
from svarinn_daemon.replies import ArchiveReply
from svarinn_daemon.service.metrics import Metrics

__all__ = ["ReplyListeners"]

log = get_logger(__name__)
RETRY_MOST = 10.0  # the longest pause between a listener's tries at the ledger
JOIN_TIMEOUT = 15.0
QUIET = 0.5  # no reply for this long: the queue is read (poll-once)


class ReplyListeners:
    def __init__(
        self,
        adapters: Mapping[str, ArchiveAdapter],
        handlers: Mapping[str, ReplyHandler],
        ledger: Ledger,
        metrics: Metrics,
    ):
        self._listening = {
            name: adapter for name, adapter in adapters.items() if isinstance(adapter, AnswersLater)
        }
        self._handlers = handlers
        self._ledger = ledger
        self._metrics = metrics
        self.stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._connected: set[str] = set()
        self._last_reply = 0.0
        self._lock = threading.Lock()

    @property
    def archives(self) -> tuple[str, ...]:
        return tuple(sorted(self._listening))

    def start(self) -> None:
        self.stopping.clear()
        for name, adapter in sorted(self._listening.items()):
            self._metrics.archive_listening.labels(name).set(0)
            thread = threading.Thread(
                target=self._listen, args=(name, adapter), name=f"replies:{name}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def settle(self, timeout: float) -> bool:
        """Wait (at most ``timeout`` seconds) until every listener is connected and no reply
        came for a moment: what waited in the queues is in the ledger. For ``poll-once``,
        whose cycle is short; True when settled."""
        if not self._listening:
            return True
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self.stopping.is_set():
            with self._lock:
                up = self._connected >= set(self._listening)
                quiet = time.monotonic() - self._last_reply >= QUIET
            if up and quiet:
                return True
            time.sleep(0.05)
        return False

    def stop(self) -> None:
        self.stopping.set()
        for thread in self._threads:
            thread.join(JOIN_TIMEOUT)
            if thread.is_alive():
                log.warning("archive.replies_not_stopped", thread=thread.name)
        self._threads.clear()

    def _listen(self, name: str, adapter: AnswersLater) -> None:
        def on_state(up: bool, why: str | None) -> None:
            self._metrics.archive_listening.labels(name).set(1 if up else 0)
            with self._lock:
                (self._connected.add if up else self._connected.discard)(name)
                self._last_reply = time.monotonic()

        def on_reply(reply: ArchiveReply) -> None:
            self._record(name, reply)
            with self._lock:
                self._last_reply = time.monotonic()

        while not self.stopping.is_set():
            try:
                adapter.listen(on_reply, self.stopping, on_state)
            except Exception as exc:  # a bug in a listener: seen, and listening goes on
                self._metrics.internal_errors.labels("worker").inc()
                log.exception("archive.replies_failed", archive=name, error=type(exc).__name__)
                on_state(False, type(exc).__name__)
                self.stopping.wait(RETRY_MOST)

    def _record(self, name: str, reply: ArchiveReply) -> None:
        """The reply into the ledger, waiting while the ledger does not answer."""
        # Stopping first leaves the reply unconfirmed: it comes again after the restart.
        when_ledger_answers(lambda: self._handlers[name](reply), self.stopping, most=RETRY_MOST)
