"""Build the running parts from the validated config, once, and close them in order.

This is where config becomes objects: the ledger (migrated when configured), one SvarInn
client per account, one archive adapter per archive, the spool and the pipeline.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType, TracebackType
from typing import Any

from svarinn_daemon.adapters import AdapterRegistry, ArchiveAdapter
from svarinn_daemon.adapters.base import SecretHolder, timeout_past_lease
from svarinn_daemon.alerts.service import AlertService
from svarinn_daemon.config import Config
from svarinn_daemon.config.model import AccountConfig
from svarinn_daemon.errors import ConfigError
from svarinn_daemon.ledger import Ledger, open_ledger
from svarinn_daemon.letter.account import AccountRuntime
from svarinn_daemon.letter.pipeline import Pipeline
from svarinn_daemon.letter.replies import ReplyHandler
from svarinn_daemon.letter.spool import Spool
from svarinn_daemon.logs import add_secrets, get_logger
from svarinn_daemon.service.breaker import Breaker, BreakerPolicy
from svarinn_daemon.service.listeners import ReplyListeners
from svarinn_daemon.service.metrics import LedgerSnapshot, Metrics
from svarinn_daemon.service.observe import Observer
from svarinn_daemon.svarinn import SvarInnClient, SvarInnHttpClient
from svarinn_daemon.svarinn.client import Credentials
from svarinn_daemon.svarinn.v2 import SvarInnV2Client

log = get_logger(__name__)


@dataclass
class Runtime:
    config: Config
    ledger: Ledger
    pipeline: Pipeline
    adapters: Mapping[str, ArchiveAdapter]
    metrics: Metrics
    alerts: AlertService
    breakers: Mapping[str, Breaker]  # one per archive
    _stack: ExitStack
    listeners: ReplyListeners | None = None  # archives that answer later (Fiks Arkiv)

    def close(self) -> None:
        self._stack.close()

    def __enter__(self) -> Runtime:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def apply_receipts(self) -> None:
        """Shadow mode: withhold the waiting receipts of accounts with ``receipts = false``;
        make the withheld receipts of accounts with ``receipts = true`` due now."""
        for account in self.config.accounts:
            changed = self.ledger.set_receipts(account.name, account.receipts)
            if not account.receipts:
                log.warning(
                    "daemon.shadow_mode",
                    account=account.name,
                    receipts_newly_withheld=len(changed),
                    note="receipts = false: letters are imported, SvarUt gets no receipts",
                )
            elif changed:
                log.info("daemon.withheld_receipts_due", account=account.name, letters=len(changed))

    def apply_routes(self) -> None:
        """Route the letters still to import with today's ``[[routes]]`` (and those listed
        before the ledger kept routes), so claims pass over the right paused archives."""
        routes = {}
        for letter in self.ledger.imports_waiting():
            archive = self.pipeline.archive_for(letter)
            if archive is not None:
                routes[letter.id] = archive
        changed = self.ledger.store_routes(routes)
        if changed:
            log.info("daemon.letters_routed", letters=changed)

    def ledger_snapshot(self) -> LedgerSnapshot:
        """Counts per account and state, and the oldest unfinished letter's age, for metrics."""
        backlog = self.ledger.backlog()
        counts = {(c.account, c.state.value): c.count for c in backlog.counts}
        ages: dict[str, float] = {a.name: 0.0 for a in self.config.accounts}
        oldest = backlog.oldest_unfinished
        if oldest is not None and backlog.oldest_age is not None:
            ages[oldest.account] = backlog.oldest_age.total_seconds()
        withheld = {a.name: backlog.total_withheld(a.name) for a in self.config.accounts}
        return LedgerSnapshot(counts, ages, withheld)


def connect(account: AccountConfig, **options: Any) -> SvarInnHttpClient:
    """The SvarInn client for one ``[[accounts]]`` table, of its ``api`` version (options:
    see SvarInnHttpClient)."""
    credentials = Credentials(account.username, account.password)
    cls: type[SvarInnHttpClient] = SvarInnV2Client if account.api == "v2" else SvarInnClient
    return cls(account.base_url, credentials, account.http, account=account.name, **options)


def build_runtime(config: Config, *, metrics: Metrics | None = None) -> Runtime:
    """Open everything ``run``, ``poll-once`` and ``demo`` need; raises typed errors."""
    metrics = metrics or Metrics()
    stack = ExitStack()
    try:
        ledger = open_ledger(config.ledger, migrate_schema=config.ledger.migrate_on_start)
        stack.callback(ledger.close)
        registry = AdapterRegistry()
        adapters: dict[str, ArchiveAdapter] = {}
        breakers: dict[str, Breaker] = {}
        retry = config.retry
        breaker_policy = BreakerPolicy(
            pause_after=retry.archive_pause_after,
            probe_delay=retry.archive_probe_delay.total_seconds(),
            probe_max_delay=retry.archive_probe_max_delay.total_seconds(),
        )
        used = {a.archive for a in config.accounts} | {r.archive for r in config.routes}
        for name in sorted(used):
            adapter = registry.create(
                config.archives[name],
                state_directory=config.state_directory,
                base_dir=config.source.parent,
                source=config.source,
                worker_id=config.daemon.worker_id,
            )
            stack.callback(adapter.close)
            if why := timeout_past_lease(adapter, config.daemon.lease):
                raise ConfigError(why, source=str(config.source), key=f"archives.{name}.timeout")
            adapters[name] = adapter
            if isinstance(adapter, SecretHolder):  # its own credentials, echoed or not
                add_secrets(adapter.secret_values())
            breakers[name] = Breaker(breaker_policy)
            metrics.init_archive(name)
        accounts: dict[str, AccountRuntime] = {}
        for account in config.accounts:
            client = connect(account)
            stack.callback(client.close)
            accounts[account.name] = AccountRuntime(
                name=account.name,
                client=client,
                adapter=adapters[account.archive],
                keys=tuple(k.pair for k in account.keys),
                archive=account.archive,
                api=account.api,
                routes=config.routes,
                archives=MappingProxyType(adapters),
                receipts=account.receipts,
            )
            metrics.init_account(account.name, shadow=not account.receipts)
        spool = Spool(config.state_directory / "spool")
        spool.prepare()
        pipeline = Pipeline(
            ledger=ledger,
            accounts=accounts,
            spool=spool,
            events=Observer(metrics, breakers),
            worker_id=config.daemon.worker_id,
            lease=config.daemon.lease,
            retry_policy=config.retry,
            verify_policy=config.verify,
            clock=lambda: datetime.now(UTC),
        )
        alerts = AlertService.start(config, ledger.engine)
        stack.callback(alerts.close)
    except BaseException:
        stack.close()
        raise
    handlers = {
        name: ReplyHandler(
            ledger, name, pipeline.events, retry_policy=config.retry, clock=pipeline.clock
        )
        for name in adapters
    }
    listeners = ReplyListeners(adapters, handlers, ledger, metrics)
    runtime = Runtime(
        config, ledger, pipeline, adapters, metrics, alerts, breakers, stack, listeners
    )
    metrics.watch_ledger(runtime.ledger_snapshot)
    return runtime


__all__ = ["Runtime", "build_runtime", "connect"]
