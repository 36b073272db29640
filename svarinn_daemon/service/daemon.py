"""The long-running daemon: one APScheduler interval job per account feeding a bounded pool.

Recovery at start: this worker's stale leases are released, leftover spool files and
interrupted archive transactions are removed; archived-but-unacknowledged letters are
claimed first (the ledger orders receipts before imports). On SIGTERM/SIGINT: stop claiming,
let letters in flight finish within ``shutdown_grace``, then release what is left.

Faults on our own side: while the ledger does not answer, a cycle only probes it (nothing
is polled or claimed, nothing reported); workers hold their decisions until it answers. An
archive whose breaker is open gets no imports (receipts go on). Liveness is progress: the
systemd watchdog is fed, and /healthz passes, only while the scheduler turns and no poll
cycle or letter in flight has been silent for ``stall_timeout``.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import FrameType
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from svarinn_daemon.errors import DaemonError, LedgerUnavailableError
from svarinn_daemon.ledger import Claim, State, Work
from svarinn_daemon.letter.work import Outcome, PollResult
from svarinn_daemon.logs import get_logger
from svarinn_daemon.service.breaker import Breaker
from svarinn_daemon.service.health import Check
from svarinn_daemon.service.liveness import Progress
from svarinn_daemon.service.pool import WorkerPool
from svarinn_daemon.service.runtime import Runtime
from svarinn_daemon.service.sdnotify import Notifier

log = get_logger(__name__)
TICK = 5.0  # seconds between watchdog pings and status lines


@dataclass(frozen=True)
class CycleReport:
    polls: tuple[PollResult, ...]
    outcomes: dict[Outcome, int]
    unfinished: int  # -1: unknown, the ledger did not answer
    wedged: bool = False

    @property
    def ok(self) -> bool:
        """Every poll worked and read every item, and no letter is left waiting."""
        return (
            all(p.ok and not p.rejected for p in self.polls)
            and self.unfinished == 0
            and not self.wedged
        )


class Daemon:
    def __init__(self, runtime: Runtime, notifier: Notifier | None = None):
        self.runtime = runtime
        self.config = runtime.config
        self.pipeline = runtime.pipeline
        self.ledger = runtime.ledger
        self.metrics = runtime.metrics
        self.notifier = notifier or Notifier({})
        self.stop = threading.Event()
        settings = self.config.daemon
        self.stall_timeout = settings.stall_timeout.total_seconds()
        self._slots = threading.BoundedSemaphore(settings.concurrency)
        self._pool = WorkerPool(settings.concurrency, name="letter")
        self._inflight: set[Future[Outcome]] = set()
        self._lock = threading.Lock()
        self._stopped_accounts: set[str] = set()
        self.progress = Progress(
            self.pipeline.in_flight, stall_timeout=self.stall_timeout, tick_limit=6 * TICK
        )
        self.outcomes: dict[Outcome, int] = {}
        self.alerts = runtime.alerts

    # --- start and stop -------------------------------------------------------------------

    def recover(self) -> None:
        """Undo what a previous run of this worker left half done."""
        worker = self.config.daemon.worker_id
        released = self.ledger.release_worker(worker)
        removed = self.pipeline.spool.clean_leftovers()
        cleaned = sum(
            adapter.cleanup(self.config.daemon.lease) for adapter in self.runtime.adapters.values()
        )
        waiting = len(self.ledger.archived_unacknowledged())
        log.info(
            "daemon.recovered",
            worker_id=worker,
            leases_released=len(released),
            spool_files_removed=removed,
            archive_leftovers_removed=cleaned,
            receipts_due=waiting,
        )

    def install_signal_handlers(self) -> None:
        def handler(signum: int, _frame: FrameType | None) -> None:
            log.info("daemon.signal", signal=signal.Signals(signum).name)
            self.stop.set()

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    def shutdown(self) -> None:
        """Stop claiming; give letters in flight the grace period, then make them stop."""
        self.stop.set()
        with self._lock:
            inflight = set(self._inflight)
        grace = self.config.daemon.shutdown_grace.total_seconds()
        _done, pending = wait_futures(inflight, timeout=grace)
        if pending:
            log.warning("daemon.grace_expired", letters_in_flight=len(pending))
            self.pipeline.stop()  # downloads stop now, their letters are released
            _done, pending = wait_futures(pending, timeout=max(grace, 10.0))
            if pending:  # wedged: the process exits without them; their leases run out
                log.error("daemon.workers_stuck", letters_in_flight=len(pending))
        self._pool.shutdown()
        self.alerts.close()

    # --- the ledger -------------------------------------------------------------------------

    def ledger_up(self) -> bool:
        """Whether the ledger answers; while it is known down, one cheap probe."""
        if self.ledger.availability.up:
            return True
        try:
            self.ledger.ping()
        except LedgerUnavailableError:
            return False
        return True

    # --- work -----------------------------------------------------------------------------

    def poll(self, account: str) -> PollResult:
        result = self.pipeline.poll(account)
        if self.ledger.availability.up:  # the poll's record would fail the same way
            self.alerts.record_poll(account, ok=result.ok, error=result.error)
        if result.ok:
            self.progress.polled_ok(account)
        with self._lock:
            if result.ok:
                self._stopped_accounts.discard(account)
            elif result.auth_failed:
                self._stopped_accounts.add(account)
        return result

    def drain(self, account: str | None = None) -> int:
        """Claim and hand out letters until none is due; returns how many were started.

        Only letters due when the drain began are taken: one that fails now waits for the
        next cycle instead of being retried in a tight loop. A ledger that stops answering
        or a pool that stops moving ends the drain; the next cycle tries again."""
        started = 0
        cycle_start = datetime.now(UTC)
        while not self.stop.is_set() and self.ledger.availability.up:
            self._progress(account)
            if not self._slots.acquire(timeout=1.0):
                if self.pipeline.in_flight.stalled_for() > self.stall_timeout:
                    log.error("drain.pool_stalled", account=account)
                    break
                continue
            try:
                claim = self._claim(account, cycle_start)
                if claim is None:
                    self._slots.release()
                    break
                self._submit(claim)
            except BaseException as exc:
                self._slots.release()
                if not isinstance(exc, LedgerUnavailableError):
                    self._internal_error("drain", exc, account=account)
                break
            started += 1
        return started

    def _claim(self, account: str | None, due_by: datetime) -> tuple[Claim, bool] | None:
        """The next claim and whether it is its archive's probe (see breaker.py)."""
        names = [account] if account else [a.name for a in self.config.accounts]
        for name in names:
            with self._lock:
                if name in self._stopped_accounts:
                    continue
            breaker = self._breaker(name)
            imports = breaker.allow()
            probe = imports and not breaker.available
            try:
                claims = self.pipeline.claim(account=name, limit=1, due_by=due_by, imports=imports)
            except BaseException:
                if probe:
                    breaker.cancel_probe()
                raise
            if probe and (not claims or claims[0].work is not Work.IMPORT):
                breaker.cancel_probe()
                probe = False
            if claims:
                return claims[0], probe
        return None

    def _submit(self, claimed: tuple[Claim, bool]) -> None:
        claim, probe = claimed
        future = self._pool.submit(lambda: self._work(claim, probe))
        with self._lock:
            self._inflight.add(future)
        future.add_done_callback(self._done)

    def _work(self, claim: Claim, probe: bool) -> Outcome:
        letter = claim.letter
        try:
            outcome = self.pipeline.process(claim)
        except BaseException as exc:  # process() decides every failure; this is a bug
            self._internal_error(
                "worker", exc, account=letter.account, forsendelse_id=letter.forsendelse_id
            )
            self._release_after_bug(claim)
            outcome = Outcome.RELEASED
        finally:
            breaker = self._breaker(letter.account)
            if probe:
                breaker.cancel_probe()  # a no-op once the probe's result was recorded
        if outcome is Outcome.ACCOUNT_STOPPED:
            with self._lock:
                self._stopped_accounts.add(letter.account)
        return outcome

    def _release_after_bug(self, claim: Claim) -> None:
        try:
            self.ledger.release(claim.letter.id, claim.worker_id, "internal error in a worker")
        except Exception as exc:  # the lease runs out instead
            log.warning("forsendelse.not_released", letter_id=claim.letter.id, error=str(exc))

    def _done(self, future: Future[Outcome]) -> None:
        try:
            with self._lock:
                self._inflight.discard(future)
                if not future.cancelled() and future.exception() is None:
                    outcome = future.result()
                    self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1
            if not future.cancelled() and (exc := future.exception()) is not None:
                self._internal_error("worker", exc)
        finally:
            self._slots.release()

    def _internal_error(self, where: str, exc: BaseException, **fields: Any) -> None:
        """Nothing disappears: logged with its traceback and counted."""
        self.metrics.internal_errors.labels(where).inc()
        error = f"{exc.kind}: {exc}" if isinstance(exc, DaemonError) else repr(exc)[:500]
        log.error("daemon.internal_error", where=where, error=error, exc_info=exc, **fields)

    def wait_idle(self) -> bool:
        """Wait for the letters in flight; False when they stopped moving (wedged)."""
        while True:
            with self._lock:
                inflight = set(self._inflight)
            if not inflight:
                return True
            wait_futures(inflight, timeout=1.0)
            if self.pipeline.in_flight.stalled_for() > self.stall_timeout:
                log.error("daemon.wedged", letters_in_flight=len(inflight))
                return False
            if self.stop.is_set():
                return True  # shutdown() takes over

    # --- one cycle (poll-once) and forever (run) ------------------------------------------

    def run_once(self) -> CycleReport:
        """Poll every account, work until nothing is due, wait for the letters in flight.

        Never hangs: a ledger that does not answer ends the cycle, a wedged letter is given
        up after ``stall_timeout`` without progress."""
        polls: tuple[PollResult, ...] = ()
        if self.ledger_up():
            accounts = self.config.accounts
            polls = tuple(self.poll(a.name) for a in accounts if not self.stop.is_set())
            self.drain()
        wedged = not self.wait_idle()
        if wedged:
            self.pipeline.stop()
        unfinished = -1
        if self.ledger_up():
            self.alerts.check(self.archives_unavailable())
            try:
                backlog = self.ledger.backlog()
                unfinished = sum(
                    c.count
                    for c in backlog.counts
                    if c.state not in (State.ACKNOWLEDGED, State.REPORTED)
                )
            except LedgerUnavailableError:
                pass
        with self._lock:
            outcomes = dict(self.outcomes)
        return CycleReport(polls, outcomes, unfinished, wedged)

    def run_forever(self, on_ready: Callable[[], None] | None = None) -> None:
        settings = self.config.daemon
        scheduler = BackgroundScheduler(timezone=UTC)
        now = datetime.now(UTC)
        for account in self.config.accounts:
            scheduler.add_job(
                self._guarded("cycle", self._cycle),
                IntervalTrigger(
                    seconds=settings.poll_interval.total_seconds(),
                    jitter=int(settings.poll_jitter.total_seconds()) or None,
                    timezone=UTC,
                ),
                args=[account.name],
                id=f"poll:{account.name}",
                max_instances=1,
                coalesce=True,
                misfire_grace_time=None,
                next_run_time=now,
            )
        scheduler.add_job(
            self._guarded("scheduler", self._tick),
            IntervalTrigger(seconds=TICK, timezone=UTC),
            id="tick",
            next_run_time=now,
            max_instances=1,
            coalesce=True,
        )
        scheduler.add_job(
            self._guarded("alerts", self._check_alerts),
            IntervalTrigger(seconds=self.alerts.interval().total_seconds(), timezone=UTC),
            id="alerts",
            next_run_time=now,
            max_instances=1,
            coalesce=True,
        )
        scheduler.start()
        accounts = ", ".join(a.name for a in self.config.accounts)
        self.notifier.ready(f"polling {accounts} every {settings.poll_interval}")
        log.info(
            "daemon.started",
            accounts=accounts,
            worker_id=settings.worker_id,
            concurrency=settings.concurrency,
        )
        if on_ready:
            on_ready()
        tick = TICK
        if self.notifier.watchdog_interval is not None:
            tick = min(tick, max(self.notifier.watchdog_interval.total_seconds(), 0.05))
        try:
            while not self.stop.wait(tick):
                live = self.liveness()
                if live.ok:
                    self.notifier.watchdog()  # only while the daemon makes progress
                with self._lock:
                    busy = len(self._inflight)
                status = f"{busy} letter(s) in flight"
                if not self.ledger.availability.up:
                    status += "; ledger unavailable"
                if not live.ok:
                    status += "; stalled: " + ", ".join(f"{k}={v}" for k, v in live.details.items())
                self.notifier.status(status)
        finally:
            self.notifier.stopping()
            log.info("daemon.stopping")
            scheduler.shutdown(wait=False)
            self.shutdown()
            log.info("daemon.stopped", outcomes={k.value: v for k, v in self.outcomes.items()})

    def _guarded(self, where: str, job: Callable[..., None]) -> Callable[..., None]:
        """A scheduler job that logs and counts whatever escapes it, and lives on."""

        def run(*args: Any) -> None:
            try:
                job(*args)
            except Exception as exc:
                self._internal_error(where, exc)

        return run

    def _cycle(self, account: str) -> None:
        if self.stop.is_set():
            return
        self._progress(account)
        try:
            if not self.ledger_up():
                return  # the probe failed; Availability logged the change once
            result = self.poll(account)
            self._progress(account)
            if result.ok or not result.auth_failed:
                self.drain(account)
        finally:
            self.progress.cycle_done(account)

    def _check_alerts(self) -> None:
        if self.ledger.availability.up:
            self.alerts.check(self.archives_unavailable())

    def archives_unavailable(self) -> dict[str, timedelta]:
        """Archives whose breaker holds imports back, and for how long."""
        out: dict[str, timedelta] = {}
        for archive, breaker in self.runtime.breakers.items():
            if not breaker.available:
                out[archive] = timedelta(seconds=breaker.open_for())
        return out

    def _breaker(self, account: str) -> Breaker:
        return self.runtime.breakers[self.pipeline.accounts[account].archive]

    def _progress(self, account: str | None) -> None:
        self.progress.cycle(account)

    def _tick(self) -> None:
        self.progress.tick()

    # --- health ---------------------------------------------------------------------------

    def liveness(self) -> Check:
        return self.progress.liveness()

    def readiness(self) -> Check:
        return self.progress.readiness(
            self.ledger.ping,
            [a.name for a in self.config.accounts],
            self.config.metrics.ready_poll_age.total_seconds(),
        )
