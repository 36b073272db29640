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
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import FrameType
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.engine import make_url

from svarinn_daemon.errors import LedgerUnavailableError
from svarinn_daemon.ledger import State, describe_url
from svarinn_daemon.letter.results import Outcome, PollResult
from svarinn_daemon.logs import get_logger
from svarinn_daemon.service.dispatch import Dispatcher, internal_error
from svarinn_daemon.service.health import Check
from svarinn_daemon.service.liveness import Progress
from svarinn_daemon.service.rewind import RewindWatch
from svarinn_daemon.service.runtime import Runtime
from svarinn_daemon.service.sdnotify import Notifier

log = get_logger(__name__)
# poll-once waits at most this long for the replies waiting in archives' queues.
REPLIES_SETTLE = 10.0
TICK = 5.0  # seconds between watchdog pings and status lines


@dataclass(frozen=True)
class CycleReport:
    polls: tuple[PollResult, ...]
    outcomes: dict[Outcome, int]
    unfinished: int  # -1: unknown, the ledger did not answer; receipts withheld not counted
    wedged: bool = False
    withheld: int = 0  # letters archived (or failed) whose receipt shadow mode withholds

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
        self.dispatch = Dispatcher(runtime, settings.concurrency, self.stall_timeout)
        self.progress = Progress(
            self.pipeline.in_flight, stall_timeout=self.stall_timeout, tick_limit=6 * TICK
        )
        self.alerts = runtime.alerts
        self.rewind = RewindWatch(
            self.ledger,
            self.config.state_directory,
            describe_url(make_url(self.config.ledger.url)),
            self.metrics,
        )

    # --- start and stop -------------------------------------------------------------------

    def recover(self) -> None:
        """Undo what a previous run of this worker left half done."""
        worker = self.config.daemon.worker_id
        released = self.ledger.release_worker(worker)
        removed = self.pipeline.spool.clean_leftovers()
        cleaned = sum(
            adapter.cleanup(self.config.daemon.lease) for adapter in self.runtime.adapters.values()
        )
        self.rewind.check()
        self.runtime.apply_receipts()
        self.runtime.apply_routes()
        waiting = sum(1 for x in self.ledger.archived_unacknowledged() if not x.receipt_withheld)
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
        self.dispatch.finish(self.config.daemon.shutdown_grace.total_seconds())
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
        if result.ok or result.auth_failed:
            self.dispatch.account_stopped(account, stopped=result.auth_failed)
        return result

    def drain(self, account: str | None = None) -> int:
        """Hand out work until none is due; returns how many jobs were started.

        Only letters due when the drain began are taken: one that fails now waits for the
        next cycle instead of being retried in a tight loop. A ledger that stops answering
        or a pool that stops moving ends the drain; the next cycle tries again."""
        started = 0
        try:
            self.dispatch.wake_recovered()  # before the start: woken letters are due by it
        except LedgerUnavailableError:
            return 0
        except Exception as exc:
            self._internal_error("drain", exc, account=account)
        cycle_start = datetime.now(UTC)
        slots = self.dispatch.slots
        while not self.stop.is_set() and self.ledger.availability.up:
            self._progress(account)
            if not slots.acquire(timeout=1.0):
                if self.pipeline.in_flight.stalled_for() > self.stall_timeout:
                    log.error("drain.pool_stalled", account=account)
                    break
                continue
            try:
                job = self.dispatch.next_job(account, cycle_start)
                if job is None:
                    slots.release()
                    break
                self.dispatch.submit(job)
            except BaseException as exc:
                slots.release()
                if not isinstance(exc, LedgerUnavailableError):
                    self._internal_error("drain", exc, account=account)
                break
            started += 1
        return started

    def _internal_error(self, where: str, exc: BaseException, **fields: Any) -> None:
        internal_error(self.runtime, where, exc, **fields)

    def wait_idle(self) -> bool:
        """Wait for the work in flight; False when it stopped moving (wedged)."""
        return self.dispatch.wait_idle(self.stop)

    # --- one cycle (poll-once) and forever (run) ------------------------------------------

    def run_once(self) -> CycleReport:
        """Poll every account, work until nothing is due, wait for the letters in flight.

        Never hangs: a ledger that does not answer ends the cycle, a wedged letter is given
        up after ``stall_timeout`` without progress."""
        polls: tuple[PollResult, ...] = ()
        listeners = self.runtime.listeners
        if listeners is not None:  # replies that came since the last cycle decide first
            listeners.start()
            listeners.settle(REPLIES_SETTLE)
        try:
            if self.ledger_up():
                accounts = self.config.accounts
                polls = tuple(self.poll(a.name) for a in accounts if not self.stop.is_set())
                self.drain()
            wedged = not self.wait_idle()
        finally:
            if listeners is not None:
                listeners.stop()
        if wedged:
            self.pipeline.stop()
        unfinished, withheld = -1, 0
        if self.ledger_up():
            self.alerts.check(self.archives_unavailable())
            try:
                backlog = self.ledger.backlog()
                withheld = backlog.total_withheld()
                unfinished = (
                    sum(
                        c.count
                        for c in backlog.counts
                        if c.state not in (State.ACKNOWLEDGED, State.REPORTED)
                    )
                    - withheld
                )
            except LedgerUnavailableError:
                pass
        return CycleReport(polls, self.dispatch.outcome_counts(), unfinished, wedged, withheld)

    def run_forever(self, on_ready: Callable[[], None] | None = None) -> None:
        """Schedule the cycles, then watch them until SIGTERM/SIGINT; then stop in order."""
        scheduler = self._schedule()
        scheduler.start()
        settings = self.config.daemon
        accounts = ", ".join(a.name for a in self.config.accounts)
        self.notifier.ready(f"polling {accounts} every {settings.poll_interval}")
        log.info(
            "daemon.started",
            accounts=accounts,
            worker_id=settings.worker_id,
            concurrency=settings.concurrency,
        )
        listeners = self.runtime.listeners
        if listeners is not None:
            listeners.start()
        if on_ready:
            on_ready()
        try:
            self._watch(scheduler)
        finally:
            self.notifier.stopping()
            log.info("daemon.stopping")
            scheduler.shutdown(wait=False)
            if listeners is not None:
                listeners.stop()
            self.shutdown()
            outcomes = self.dispatch.outcome_counts()
            log.info("daemon.stopped", outcomes={k.value: v for k, v in outcomes.items()})

    def _schedule(self) -> BackgroundScheduler:
        """One poll cycle per account, the scheduler's own tick, the alert checks."""
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
        return scheduler

    def _watch(self, scheduler: BackgroundScheduler) -> None:
        """Until stopped: feed the watchdog while the daemon makes progress, say what it does,
        and drain at once when an archive's probe falls due or an archive answers again."""
        tick = TICK
        if self.notifier.watchdog_interval is not None:
            tick = min(tick, max(self.notifier.watchdog_interval.total_seconds(), 0.05))
        while not self.stop.wait(self._next_wake(tick)):
            live = self.liveness()
            if live.ok:
                self.notifier.watchdog()  # only while the daemon makes progress
            self._kick_if_due(scheduler)
            busy = len(self.dispatch.in_flight())
            status = f"{busy} letter(s) in flight"
            if not self.ledger.availability.up:
                status += "; ledger unavailable"
            if not live.ok:
                status += "; stalled: " + ", ".join(f"{k}={v}" for k, v in live.details.items())
            self.notifier.status(status)

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

    def _kick_if_due(self, scheduler: BackgroundScheduler) -> None:
        """An archive's probe is due, or an archive answered again: drain now rather than
        at the next poll, so a recovered archive is used within one probe delay."""
        due = any(b.probe_due() for b in self.runtime.breakers.values())
        if not (due or self.dispatch.kick.is_set()) or not self.ledger.availability.up:
            return
        self.dispatch.kick.clear()
        scheduler.add_job(
            self._guarded("drain", self._drain_now), id="drain-now", replace_existing=True
        )

    def _next_wake(self, tick: float) -> float:
        """The watch loop's next turn: a tick, or sooner when an archive's probe falls due
        (the probe, and the imports after it, need not wait for the next poll)."""
        due = [b.probe_in() for b in self.runtime.breakers.values()]
        return min([tick, *(max(d, 0.25) for d in due if d is not None)])

    def _drain_now(self) -> None:
        self.drain()

    def _progress(self, account: str | None) -> None:
        self.progress.cycle(account)

    def _tick(self) -> None:
        self.progress.tick()
        if self.ledger.availability.up:
            self.rewind.check()  # a failover that lost commits shows here

    # --- health ---------------------------------------------------------------------------

    def liveness(self) -> Check:
        return self.progress.liveness()

    def readiness(self) -> Check:
        return self.progress.readiness(
            self.ledger.ping,
            [a.name for a in self.config.accounts],
            self.config.metrics.ready_poll_age.total_seconds(),
        )
