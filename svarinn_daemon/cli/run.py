"""``svarinn-daemon run`` and ``svarinn-daemon poll-once``."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from svarinn_daemon.cli.commands import summary
from svarinn_daemon.errors import ConfigError, LedgerUnavailableError, SchemaMismatchError

if TYPE_CHECKING:
    from svarinn_daemon.cli import Context
    from svarinn_daemon.service.daemon import Daemon
    from svarinn_daemon.service.health import Check
    from svarinn_daemon.service.metrics import Metrics


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    run_parser = sub.add_parser(
        "run",
        help=summary("run"),
        description="Run until SIGTERM/SIGINT: migrate the ledger (unless [ledger] "
        "migrate_on_start = false), recover what a previous run left half done, then poll "
        "each account every [daemon] poll_interval and import letters with [daemon] "
        "concurrency workers. Speaks systemd's notify protocol when $NOTIFY_SOCKET is set.",
    )
    run_parser.set_defaults(func=run)
    once = sub.add_parser(
        "poll-once",
        help=summary("poll-once"),
        description="Poll every account once, import every letter that is due and send its "
        "receipt, then exit: 0 when every letter in the ledger is acknowledged or reported, "
        "1 when some are waiting for a retry, a poll failed or listed an item the daemon "
        "cannot read. SIGTERM/SIGINT stop it as they stop run: letters in flight get "
        "[daemon] shutdown_grace, then their downloads stop and they are released. For cron "
        "and for tests.",
    )
    once.set_defaults(func=poll_once)


class _Probes:
    """Health answers before the daemon exists: alive, not ready (migrating, loading keys)."""

    def __init__(self) -> None:
        self.daemon: Daemon | None = None

    def liveness(self) -> Check:
        from svarinn_daemon.service.health import Check

        return self.daemon.liveness() if self.daemon else Check(True, {"phase": "starting"})

    def readiness(self) -> Check:
        from svarinn_daemon.service.health import Check

        return self.daemon.readiness() if self.daemon else Check(False, {"phase": "starting"})


def _start(ctx: Context, metrics: Metrics | None = None) -> Daemon:
    """Open the runtime and recover. The ledger is migrated in a child process, so alembic
    never takes memory in a process that then runs for months (or imports a 1 GiB letter)."""
    from svarinn_daemon.ledger.isolated import migrate_isolated
    from svarinn_daemon.logs import get_logger
    from svarinn_daemon.service.daemon import Daemon
    from svarinn_daemon.service.runtime import build_runtime
    from svarinn_daemon.service.sdnotify import Notifier

    config = ctx.config()
    notifier = Notifier(ctx.environ)
    notifier.status("opening and migrating the ledger")
    try:
        if config.ledger.migrate_on_start:
            migrate_isolated(config.ledger)
        runtime = build_runtime(config, metrics=metrics)
    except SchemaMismatchError as exc:
        # A ledger this code cannot use is a configuration problem: exit 2, and systemd's
        # RestartPreventExitStatus=2 keeps it from restarting in a loop.
        raise ConfigError(str(exc), key="ledger") from None
    except LedgerUnavailableError as exc:
        # A database that does not answer (yet) is an outage, not a mistake: exit 1, and
        # systemd starts the daemon again after RestartSec until it answers.
        get_logger(__name__).error("ledger.unavailable", error=str(exc), phase="start")
        raise
    daemon = Daemon(runtime, notifier)
    try:
        daemon.recover()
    except BaseException:
        daemon.alerts.close()
        runtime.close()
        raise
    return daemon


def run(ctx: Context) -> int:
    from svarinn_daemon.logs import get_logger
    from svarinn_daemon.service.health import HealthServer
    from svarinn_daemon.service.metrics import Metrics

    log = get_logger(__name__)
    config = ctx.config()
    metrics = Metrics()
    probes = _Probes()
    health: HealthServer | None = None
    if config.metrics.listen:
        host, port = config.metrics.listen
        try:
            health = HealthServer(
                host, port, metrics, liveness=probes.liveness, readiness=probes.readiness
            )
        except OSError as exc:
            raise ConfigError(
                f"cannot listen on {host}:{port}: {exc.strerror}", key="metrics.listen"
            ) from None
        health.start()
        log.info("metrics.listening", url=health.url)
    try:
        daemon = _start(ctx, metrics)
        probes.daemon = daemon
        try:
            daemon.install_signal_handlers()
            daemon.run_forever()
        finally:
            daemon.runtime.close()
    finally:
        if health:
            health.stop()
    return 0


def poll_once(ctx: Context) -> int:
    from svarinn_daemon.logs import get_logger

    daemon = _start(ctx)
    try:
        daemon.install_signal_handlers()
        report = daemon.run_once()
        daemon.shutdown()
    finally:
        daemon.runtime.close()
    outcomes = {k.value: v for k, v in sorted(report.outcomes.items())}
    get_logger(__name__).info(
        "poll_once.finished",
        ok=report.ok,
        unfinished=report.unfinished if report.unfinished >= 0 else "unknown (ledger down)",
        wedged=report.wedged,
        receipts_withheld=report.withheld,
        outcomes=outcomes,
        polls_failed=[p.account for p in report.polls if not p.ok],
        items_rejected=sum(p.rejected for p in report.polls),
    )
    return 0 if report.ok else 1
