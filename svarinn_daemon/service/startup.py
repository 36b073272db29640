"""Starting the daemon: the health endpoints first, then the ledger (migrated in a child
process), the runtime and recovery. The CLI only parses arguments and maps exit codes.

The endpoints answer from the first moment: alive but not ready while the ledger is
migrated and the keys are loaded (:class:`StartupProbes`), the daemon's own answers after.
"""

from __future__ import annotations

from collections.abc import Mapping

from svarinn_daemon.common import untrusted_directory
from svarinn_daemon.config import Config
from svarinn_daemon.errors import ConfigError, LedgerUnavailableError
from svarinn_daemon.logs import get_logger
from svarinn_daemon.service.daemon import Daemon
from svarinn_daemon.service.health import Check, HealthServer
from svarinn_daemon.service.metrics import Metrics
from svarinn_daemon.service.runtime import build_runtime
from svarinn_daemon.service.sdnotify import Notifier

__all__ = ["StartupProbes", "serve_health", "start_daemon"]
log = get_logger(__name__)


class StartupProbes:
    """Health answers before the daemon exists: alive, not ready (migrating, loading keys)."""

    def __init__(self) -> None:
        self.daemon: Daemon | None = None

    def liveness(self) -> Check:
        return self.daemon.liveness() if self.daemon else Check(True, {"phase": "starting"})

    def readiness(self) -> Check:
        return self.daemon.readiness() if self.daemon else Check(False, {"phase": "starting"})


def serve_health(config: Config, metrics: Metrics, probes: StartupProbes) -> HealthServer | None:
    """/metrics, /healthz and /readyz on ``[metrics] listen``, started (None when off)."""
    if not config.metrics.listen:
        return None
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
    return health


def start_daemon(
    config: Config, environ: Mapping[str, str], metrics: Metrics | None = None
) -> Daemon:
    """Migrate the ledger, open the runtime and recover. The ledger is migrated in a child
    process, so alembic never takes memory in a process that then runs for months (or
    imports a 1 GiB letter). A ledger that does not answer is logged and raised: an outage
    (exit 1, systemd starts the daemon again), not a mistake."""
    from svarinn_daemon.ledger.isolated import migrate_isolated

    if why := untrusted_directory(config.state_directory):
        raise ConfigError(
            f"is not private: {why}; another user could swap letters, spool files or the "
            "ledger in it",
            source=str(config.source),
            key="state_directory",
        )
    notifier = Notifier(environ)
    notifier.status("opening and migrating the ledger")
    try:
        if config.ledger.migrate_on_start:
            migrate_isolated(config.ledger)
        runtime = build_runtime(config, metrics=metrics)
    except LedgerUnavailableError as exc:
        log.error("ledger.unavailable", error=str(exc), phase="start")
        raise
    daemon = Daemon(runtime, notifier)
    try:
        daemon.recover()
    except BaseException:
        runtime.close()
        raise
    return daemon
