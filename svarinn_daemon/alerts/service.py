"""The daemon's alerting: write down each poll, evaluate the conditions, notify, remember.

:class:`AlertService` is the one object the daemon holds for alerts. It reads the facts
from the ledger (:class:`~svarinn_daemon.ledger.LedgerWatch`), decides what holds with
:func:`~svarinn_daemon.alerts.conditions.holding`, and sends and saves through
:func:`~svarinn_daemon.alerts.dispatch.run_alerts` with the ledger's alert store. Nothing
here may stop the daemon: importing letters matters more than telling someone about it, so
every failure is logged and the next evaluation tries again.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from datetime import timedelta

from sqlalchemy.engine import Engine

from svarinn_daemon.alerts.conditions import (
    KEY_ERROR_KINDS,
    STORAGE_ERROR_KINDS,
    cutoffs,
    holding,
)
from svarinn_daemon.alerts.dispatch import AlertDispatcher, run_alerts
from svarinn_daemon.alerts.engine import AlertStore, Evaluation
from svarinn_daemon.alerts.store import LedgerAlertStore
from svarinn_daemon.alerts.watch import LedgerWatch
from svarinn_daemon.common import Clock, utc_now
from svarinn_daemon.config import Config
from svarinn_daemon.config.model import NotifierConfig
from svarinn_daemon.errors import DaemonError
from svarinn_daemon.logs import get_logger

__all__ = ["EVALUATE_EVERY", "AlertService"]

EVALUATE_EVERY = timedelta(seconds=60)
CLOSE_WAIT = timedelta(seconds=5)
log = get_logger("svarinn_daemon.alerts")


class AlertService:
    def __init__(
        self,
        config: Config,
        engine: Engine,
        dispatcher: AlertDispatcher,
        *,
        store: AlertStore | None = None,
        clock: Clock = utc_now,
    ):
        self.config = config
        self.dispatcher = dispatcher
        self.watch = LedgerWatch(engine, clock=clock)
        self.store: AlertStore = store or LedgerAlertStore(engine, clock=clock)
        self.clock = clock
        self._lock = threading.Lock()
        self._closed = False

    @classmethod
    def start(cls, config: Config, engine: Engine, *, clock: Clock | None = None) -> AlertService:
        """Create the configured notifiers; if that fails, alert to the log rather than not
        at all (``check-config`` reports the notifier's error before a deployment)."""
        try:
            dispatcher = AlertDispatcher.from_config(config.notifiers, source=config.source)
        except DaemonError as exc:
            log.error("alert.notifiers_unavailable", error_kind=exc.kind, error=str(exc))
            dispatcher = AlertDispatcher.from_config((NotifierConfig(name="log", type="log"),))
        if clock is None:
            return cls(config, engine, dispatcher)
        return cls(config, engine, dispatcher, clock=clock)

    def interval(self) -> timedelta:
        """How often ``run`` evaluates: every minute, or every poll if polls are more often."""
        return max(min(EVALUATE_EVERY, self.config.daemon.poll_interval), timedelta(seconds=1))

    def record_poll(self, account: str, *, ok: bool, error: DaemonError | None = None) -> None:
        """Write one poll's outcome down (for auth_failing and polls_failing); never raises."""
        try:
            self.watch.record_poll(account, ok=ok, error_kind=error.kind if error else None)
        except Exception as exc:  # alerting must never stop a poll
            log.error("alert.poll_not_recorded", account=account, error=_describe(exc))

    def check(
        self, archives_unavailable: Mapping[str, timedelta] | None = None
    ) -> Evaluation | None:
        """One evaluation: what holds now against the stored states; send; save.

        Returns None when it could not run (the reason is logged); never raises."""
        if self._closed:
            return None
        with self._lock:
            try:
                return self._check(archives_unavailable or {})
            except Exception as exc:  # alerting must never stop the daemon
                log.error("alert.evaluation_failed", error=_describe(exc))
                return None

    def _check(self, archives_unavailable: Mapping[str, timedelta]) -> Evaluation:
        now = self.clock()
        alerts = self.config.alerts
        window = cutoffs(alerts, now)
        facts = self.watch.account_facts(
            pending_before=window.pending_before,
            reported_since=window.reported_since,
            key_error_kinds=KEY_ERROR_KINDS,
            storage_error_kinds=STORAGE_ERROR_KINDS,
        )
        polls = self.watch.poll_statuses()
        holds = holding(
            facts,
            polls,
            accounts={a.name for a in self.config.accounts},
            now=now,
            config=alerts,
            archives_unavailable=archives_unavailable,
            shadow_accounts={a.name for a in self.config.accounts if not a.receipts},
        )
        evaluation, deliveries = run_alerts(
            self.store,
            holds,
            self.dispatcher,
            now=now,
            repeat_every=alerts.repeat_every,
            host=self.config.daemon.worker_id,
        )
        if evaluation.sends:
            log.info(
                "alert.evaluated",
                holding=len(holds),
                sent=sum(1 for d in deliveries if d.delivered),
                undelivered=sum(1 for d in deliveries if d.attempted and not d.delivered),
            )
        return evaluation

    def close(self) -> None:
        """Close the notifiers; an evaluation still sending gets ``CLOSE_WAIT`` to finish
        (a notifier's retries must not hold up the daemon's stop)."""
        if self._closed:
            return
        self._closed = True
        locked = self._lock.acquire(timeout=CLOSE_WAIT.total_seconds())
        try:
            self.dispatcher.close()
        finally:
            if locked:
                self._lock.release()


def _describe(exc: Exception) -> str:
    if isinstance(exc, DaemonError):
        return f"{exc.kind}: {exc}"
    return f"internal error: {type(exc).__name__}"
