"""The long-running daemon: one APScheduler interval job per account feeding a bounded pool.

Recovery at start: this worker's stale leases are released, leftover spool files and
interrupted archive transactions are removed; archived-but-unacknowledged letters are
claimed first (the ledger orders receipts before imports). On SIGTERM/SIGINT: stop claiming,
let letters in flight finish within ``shutdown_grace``, then release what is left.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass
from datetime import UTC, datetime
from types import FrameType

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from svarinn_daemon.alerts.service import AlertService
from svarinn_daemon.health import Check
from svarinn_daemon.ledger import Claim, State
from svarinn_daemon.logs import get_logger
from svarinn_daemon.runtime import Runtime
from svarinn_daemon.sdnotify import Notifier
from svarinn_daemon.work import Outcome, PollResult

log = get_logger(__name__)
TICK = 5.0  # seconds between watchdog pings and status lines


@dataclass(frozen=True)
class CycleReport:
    polls: tuple[PollResult, ...]
    outcomes: dict[Outcome, int]
    unfinished: int

    @property
    def ok(self) -> bool:
        """Every poll worked and read every item, and no letter is left waiting."""
        return all(p.ok and not p.rejected for p in self.polls) and self.unfinished == 0


class Daemon:
    def __init__(self, runtime: Runtime, notifier: Notifier | None = None):
        self.runtime = runtime
        self.config = runtime.config
        self.pipeline = runtime.pipeline
        self.notifier = notifier or Notifier({})
        self.stop = threading.Event()
        settings = self.config.daemon
        self._slots = threading.BoundedSemaphore(settings.concurrency)
        self._pool = ThreadPoolExecutor(settings.concurrency, thread_name_prefix="letter")
        self._inflight: set[Future[Outcome]] = set()
        self._lock = threading.Lock()
        self._stopped_accounts: set[str] = set()
        self._last_poll_ok: dict[str, float] = {}
        self._last_tick = time.monotonic()
        self.outcomes: dict[Outcome, int] = {}
        self.alerts = AlertService.start(self.config, runtime.ledger.engine)

    # --- start and stop -------------------------------------------------------------------

    def recover(self) -> None:
        """Undo what a previous run of this worker left half done."""
        worker = self.config.daemon.worker_id
        released = self.runtime.ledger.release_worker(worker)
        removed = self.pipeline.spool.clean_leftovers()
        cleaned = sum(
            adapter.cleanup(self.config.daemon.lease) for adapter in self.runtime.adapters.values()
        )
        waiting = len(self.runtime.ledger.archived_unacknowledged())
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
            wait_futures(pending, timeout=max(grace, 10.0))
        self._pool.shutdown(wait=False, cancel_futures=True)
        self.alerts.close()

    # --- work -----------------------------------------------------------------------------

    def poll(self, account: str) -> PollResult:
        result = self.pipeline.poll(account)
        self.alerts.record_poll(account, ok=result.ok, error=result.error)
        if result.ok:
            self._last_poll_ok[account] = time.monotonic()
            self._stopped_accounts.discard(account)
        elif result.auth_failed:
            self._stopped_accounts.add(account)
        return result

    def drain(self, account: str | None = None) -> int:
        """Claim and hand out letters until none is due; returns how many were started.

        Only letters due when the drain began are taken: one that fails now waits for the
        next cycle instead of being retried in a tight loop."""
        started = 0
        cycle_start = datetime.now(UTC)
        while not self.stop.is_set():
            if not self._slots.acquire(timeout=1.0):
                continue
            claims = self._claim(account, cycle_start)
            if not claims:
                self._slots.release()
                break
            self._submit(claims[0])
            started += 1
        return started

    def _claim(self, account: str | None, due_by: datetime) -> tuple[Claim, ...]:
        names = [account] if account else [a.name for a in self.config.accounts]
        for name in names:
            if name in self._stopped_accounts:
                continue
            claims = self.pipeline.claim(account=name, limit=1, due_by=due_by)
            if claims:
                return claims
        return ()

    def _submit(self, claim: Claim) -> None:
        future = self._pool.submit(self._work, claim)
        with self._lock:
            self._inflight.add(future)
        future.add_done_callback(self._done)

    def _work(self, claim: Claim) -> Outcome:
        outcome = self.pipeline.process(claim)
        if outcome is Outcome.ACCOUNT_STOPPED:
            self._stopped_accounts.add(claim.letter.account)
        return outcome

    def _done(self, future: Future[Outcome]) -> None:
        with self._lock:
            self._inflight.discard(future)
            if not future.cancelled() and future.exception() is None:
                outcome = future.result()
                self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1
        self._slots.release()

    def wait_idle(self) -> None:
        with self._lock:
            inflight = set(self._inflight)
        wait_futures(inflight)

    # --- one cycle (poll-once) and forever (run) ------------------------------------------

    def run_once(self) -> CycleReport:
        """Poll every account, work until nothing is due, wait for the letters in flight."""
        polls = tuple(self.poll(a.name) for a in self.config.accounts)
        self.drain()
        self.wait_idle()
        self.alerts.check()
        backlog = self.runtime.ledger.backlog()
        unfinished = sum(
            c.count for c in backlog.counts if c.state not in (State.ACKNOWLEDGED, State.REPORTED)
        )
        return CycleReport(polls, dict(self.outcomes), unfinished)

    def run_forever(self, on_ready: Callable[[], None] | None = None) -> None:
        settings = self.config.daemon
        scheduler = BackgroundScheduler(timezone=UTC)
        now = datetime.now(UTC)
        for account in self.config.accounts:
            scheduler.add_job(
                self._cycle,
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
            self._tick,
            IntervalTrigger(seconds=TICK, timezone=UTC),
            id="tick",
            next_run_time=now,
            max_instances=1,
            coalesce=True,
        )
        scheduler.add_job(
            self.alerts.check,
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
        try:
            while not self.stop.wait(TICK):
                if time.monotonic() - self._last_tick < 3 * TICK:
                    self.notifier.watchdog()  # only while the scheduler still turns
                with self._lock:
                    busy = len(self._inflight)
                self.notifier.status(f"{busy} letter(s) in flight")
        finally:
            self.notifier.stopping()
            log.info("daemon.stopping")
            scheduler.shutdown(wait=False)
            self.shutdown()
            log.info("daemon.stopped", outcomes={k.value: v for k, v in self.outcomes.items()})

    def _cycle(self, account: str) -> None:
        if self.stop.is_set():
            return
        try:
            result = self.poll(account)
            if result.ok or not result.auth_failed:
                self.drain(account)
        except Exception:  # the job must survive anything, the next cycle tries again
            log.exception("cycle.failed", account=account)

    def _tick(self) -> None:
        self._last_tick = time.monotonic()

    # --- health ---------------------------------------------------------------------------

    def liveness(self) -> Check:
        age = time.monotonic() - self._last_tick
        return Check(age < 6 * TICK, {"scheduler_tick_age_seconds": f"{age:.1f}"})

    def readiness(self) -> Check:
        details: dict[str, str] = {}
        ok = True
        try:
            self.runtime.ledger.backlog()
            details["ledger"] = "ok"
        except Exception as exc:  # any failure means not ready; the text says why
            ok = False
            details["ledger"] = f"unavailable: {type(exc).__name__}"
        limit = self.config.metrics.ready_poll_age.total_seconds()
        for account in self.config.accounts:
            last = self._last_poll_ok.get(account.name)
            if last is None or time.monotonic() - last > limit:
                ok = False
                details[f"poll_{account.name}"] = "no successful poll recently"
            else:
                details[f"poll_{account.name}"] = "ok"
        return Check(ok, details)
