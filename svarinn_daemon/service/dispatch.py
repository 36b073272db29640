"""Dispatch: which work goes next, and the bounded pool of workers that does it.

For each free slot, :meth:`Dispatcher.next_job` picks, in this order:

1. the probe of an archive whose circuit breaker has waited its delay: the adapter's own
   ``probe()`` where it has one (no letter is risked), otherwise one letter routed to that
   archive. A letter probe that fails before the archive (download, key, verification)
   says nothing about it, and the next probe may go at once with another letter;
2. the next claim in due order (see :mod:`svarinn_daemon.ledger.claims`): receipts, reports,
   then imports, passing over letters routed to a paused archive and accounts stopped by a
   refused login. One paused archive never holds back another's letters.

When an archive is back (its breaker closed since the last look), the letters that wait for
a retry after its failures are made due at once (:meth:`wake_recovered`), so they do not sit
out the rest of their backoff.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import wait as wait_futures
from datetime import datetime
from typing import Any

from svarinn_daemon.adapters import ArchiveAdapter, ProbingAdapter, probe_archive
from svarinn_daemon.errors import ArchiveError, DaemonError
from svarinn_daemon.ledger import Claim
from svarinn_daemon.letter.results import Outcome
from svarinn_daemon.logs import get_logger
from svarinn_daemon.service.breaker import Breaker
from svarinn_daemon.service.pool import WorkerPool
from svarinn_daemon.service.runtime import Runtime

log = get_logger(__name__)
Job = Callable[[], Outcome | None]


def internal_error(runtime: Runtime, where: str, exc: BaseException, **fields: Any) -> None:
    """Nothing disappears: logged with its traceback and counted."""
    runtime.metrics.internal_errors.labels(where).inc()
    error = f"{exc.kind}: {exc}" if isinstance(exc, DaemonError) else repr(exc)[:500]
    log.error("daemon.internal_error", where=where, error=error, exc_info=exc, **fields)


class Dispatcher:
    """Slots, the worker pool, the futures in flight and what each worker does."""

    def __init__(self, runtime: Runtime, concurrency: int, stall_timeout: float):
        self.runtime = runtime
        self.pipeline = runtime.pipeline
        self.stall_timeout = stall_timeout
        self.slots = threading.BoundedSemaphore(concurrency)
        self._pool = WorkerPool(concurrency, name="letter")
        self._inflight: set[Future[Outcome | None]] = set()
        self._lock = threading.Lock()
        self.stopped_accounts: set[str] = set()
        self.outcomes: dict[Outcome, int] = {}
        self._recoveries = {name: b.recoveries for name, b in runtime.breakers.items()}
        self._cannot_probe: set[str] = set()  # adapters that need a letter to probe with
        self.kick = threading.Event()  # an archive answered again: drain now

    # --- what goes next -------------------------------------------------------------------

    def next_job(self, account: str | None, due_by: datetime) -> Job | None:
        """The next work for a free slot: an archive's probe, else the next claim."""
        with self._lock:
            stopped = frozenset(self.stopped_accounts)
        if account is not None and account in stopped:
            return None
        paused: set[str] = set()
        for archive, breaker in self.runtime.breakers.items():
            if breaker.available:
                continue
            probe = breaker.allow()  # True while open: this caller's probe (half open now)
            if probe and breaker.available:
                continue  # it closed meanwhile
            paused.add(archive)
            if probe:
                job = self._probe_job(archive, breaker, account, due_by, stopped)
                if job is not None:
                    return job
        claims = self.pipeline.claim(
            account=account,
            limit=1,
            due_by=due_by,
            skip_accounts=stopped,
            paused=frozenset(paused),
        )
        return self._letter_job(claims[0], None) if claims else None

    def _probe_job(
        self,
        archive: str,
        breaker: Breaker,
        account: str | None,
        due_by: datetime,
        stopped: frozenset[str],
    ) -> Job | None:
        adapter = self.runtime.adapters[archive]
        if isinstance(adapter, ProbingAdapter) and archive not in self._cannot_probe:
            return lambda: self._probe(archive, adapter)
        try:
            claims = self.pipeline.claim(
                account=account, limit=1, due_by=due_by, skip_accounts=stopped, archive=archive
            )
        except BaseException:
            breaker.cancel_probe()
            raise
        if not claims:
            breaker.cancel_probe()  # nothing routed there is due: try again next cycle
            return None
        return self._letter_job(claims[0], archive)

    def _probe(self, archive: str, adapter: ArchiveAdapter) -> None:
        """The archive's own probe, in a worker: its answer is the breaker's."""
        events = self.pipeline.events
        breaker = self.runtime.breakers[archive]
        try:
            with self.pipeline.in_flight.working():
                answered = probe_archive(adapter)
            if answered:
                events.archive_answered(archive, probe=True)
                self.kick.set()
            else:
                self._cannot_probe.add(archive)  # the next probe is a letter
        except ArchiveError as exc:
            events.archive_refused(archive, exc)
        except Exception as exc:  # a bug in the adapter's probe: counted as a failed probe
            internal_error(self.runtime, "probe", exc, archive=archive)
            events.archive_refused(
                archive, ArchiveError(f"the probe raised {type(exc).__name__}", temporary=True)
            )
        finally:
            breaker.cancel_probe()  # a no-op once an answer was recorded
        return None  # noqa: RET501  (a Job: the pool's futures carry Outcome | None)

    def _letter_job(self, claim: Claim, probe_of: str | None) -> Job:
        return lambda: self._work(claim, probe_of)

    def _work(self, claim: Claim, probe_of: str | None) -> Outcome:
        letter = claim.letter
        try:
            outcome = self.pipeline.process(claim)
        except BaseException as exc:  # process() decides every failure; this is a bug
            internal_error(
                self.runtime,
                "worker",
                exc,
                account=letter.account,
                forsendelse_id=letter.forsendelse_id,
            )
            self._release_after_bug(claim)
            outcome = Outcome.RELEASED
        finally:
            if probe_of is not None:
                # A no-op once the archive answered; otherwise the letter never reached it.
                self.runtime.breakers[probe_of].cancel_probe()
        if outcome is Outcome.ACCOUNT_STOPPED:
            with self._lock:
                self.stopped_accounts.add(letter.account)
        elif self.kick_after(probe_of):
            self.kick.set()
        return outcome

    def kick_after(self, probe_of: str | None) -> bool:
        """A letter probe closed its archive's breaker: the others may follow now."""
        return probe_of is not None and self.runtime.breakers[probe_of].available

    def _release_after_bug(self, claim: Claim) -> None:
        try:
            self.pipeline.ledger.release(
                claim.letter.id, claim.worker_id, "internal error in a worker"
            )
        except Exception as exc:  # the lease runs out instead
            log.warning("forsendelse.not_released", letter_id=claim.letter.id, error=str(exc))

    def wake_recovered(self) -> None:
        """Letters waiting out a backoff after their archive's failures are due now, once
        that archive's breaker has closed again."""
        for archive, breaker in self.runtime.breakers.items():
            seen = breaker.recoveries
            with self._lock:
                if self._recoveries.get(archive, 0) >= seen:
                    continue
                self._recoveries[archive] = seen
            woken = self.pipeline.ledger.wake_archive(archive)
            log.info("archive.letters_due", archive=archive, letters=len(woken))

    # --- the pool -------------------------------------------------------------------------

    def submit(self, job: Job) -> None:
        """Run ``job`` in a worker; the caller holds a slot, released when it ends."""
        future = self._pool.submit(job)
        with self._lock:
            self._inflight.add(future)
        future.add_done_callback(self._done)

    def _done(self, future: Future[Outcome | None]) -> None:
        try:
            with self._lock:
                self._inflight.discard(future)
                if not future.cancelled() and future.exception() is None:
                    outcome = future.result()
                    if outcome is not None:
                        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1
            if not future.cancelled() and (exc := future.exception()) is not None:
                internal_error(self.runtime, "worker", exc)
        finally:
            self.slots.release()

    def in_flight(self) -> set[Future[Outcome | None]]:
        with self._lock:
            return set(self._inflight)

    def outcome_counts(self) -> dict[Outcome, int]:
        with self._lock:
            return dict(self.outcomes)

    def account_stopped(self, account: str, stopped: bool) -> None:
        with self._lock:
            if stopped:
                self.stopped_accounts.add(account)
            else:
                self.stopped_accounts.discard(account)

    def wait_idle(self, stop: threading.Event) -> bool:
        """Wait for the work in flight; False when it stopped moving (wedged)."""
        while True:
            inflight = self.in_flight()
            if not inflight:
                return True
            wait_futures(inflight, timeout=1.0)
            if self.pipeline.in_flight.stalled_for() > self.stall_timeout:
                log.error("daemon.wedged", letters_in_flight=len(inflight))
                return False
            if stop.is_set():
                return True  # shutdown() takes over

    def finish(self, grace: float) -> None:
        """Give the work in flight ``grace`` seconds, then make it stop; close the pool."""
        _done, pending = wait_futures(self.in_flight(), timeout=grace)
        if pending:
            log.warning("daemon.grace_expired", letters_in_flight=len(pending))
            self.pipeline.stop()  # downloads stop now, their letters are released
            _done, pending = wait_futures(pending, timeout=max(grace, 10.0))
            if pending:  # wedged: the process exits without them; their leases run out
                log.error("daemon.workers_stuck", letters_in_flight=len(pending))
        self._pool.shutdown()
