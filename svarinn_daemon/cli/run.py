"""``svarinn-daemon run`` and ``svarinn-daemon poll-once``."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from svarinn_daemon.cli.commands import summary
from svarinn_daemon.errors import ConfigError, SchemaMismatchError

if TYPE_CHECKING:
    from svarinn_daemon.cli import Context
    from svarinn_daemon.service.daemon import Daemon
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


def _start(ctx: Context, metrics: Metrics | None = None) -> Daemon:
    from svarinn_daemon.service.startup import start_daemon

    try:
        return start_daemon(ctx.config(), ctx.environ, metrics)
    except SchemaMismatchError as exc:
        # A ledger this code cannot use is a configuration problem: exit 2, and systemd's
        # RestartPreventExitStatus=2 keeps it from restarting in a loop.
        raise ConfigError(str(exc), key="ledger") from None


def run(ctx: Context) -> int:
    from svarinn_daemon.service.metrics import Metrics
    from svarinn_daemon.service.startup import StartupProbes, serve_health

    metrics = Metrics()
    probes = StartupProbes()
    health = serve_health(ctx.config(), metrics, probes)
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
