"""The deploy tests' shared fixture: what the daemon's /metrics says, every series populated."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from svarinn_daemon.service.health import Check, HealthServer
from svarinn_daemon.service.metrics import STAGES, LedgerSnapshot, Metrics


@pytest.fixture
def exposition() -> Iterator[str]:
    """/metrics of a Metrics with every series populated, fetched over real HTTP."""
    metrics = Metrics()
    metrics.watch_ledger(
        lambda: LedgerSnapshot(
            {("kommune", state): 1 for state in ("seen", "claimed", "archived", "acknowledged")},
            {"kommune": 61.5},
        )
    )
    metrics.init_account("kommune")
    metrics.init_archive("default")
    metrics.polls.labels("kommune", "ok").inc()
    metrics.last_successful_poll.labels("kommune").set(1_700_000_000)
    metrics.letters.labels("kommune", "acknowledged").inc()
    metrics.unverified.labels("kommune").inc()
    metrics.bytes_downloaded.labels("kommune").inc(123_456)
    metrics.receipts.labels("kommune", "kvitterMottak", "ok").inc()
    metrics.retries.labels("kommune", "TransportError").inc()
    for stage in STAGES:
        with metrics.stage("kommune", stage):
            pass
    server = HealthServer(
        "127.0.0.1", 0, metrics, liveness=lambda: Check(True), readiness=lambda: Check(True)
    )
    server.start()
    try:
        yield httpx.get(server.url + "/metrics").text
    finally:
        server.stop()
