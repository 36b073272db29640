"""The metrics/health endpoint over real loopback HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from svarinn_daemon.service.health import Check, HealthServer
from svarinn_daemon.service.metrics import LedgerSnapshot, Metrics


@pytest.fixture
def served() -> Iterator[tuple[HealthServer, Metrics, dict[str, bool]]]:
    metrics = Metrics()
    state = {"ready": True, "ledger": True}

    def snapshot() -> LedgerSnapshot | None:
        if not state["ledger"]:
            raise RuntimeError("ledger down")
        return LedgerSnapshot({("kommune", "acknowledged"): 3}, {"kommune": 42.0})

    metrics.watch_ledger(snapshot)
    server = HealthServer(
        "127.0.0.1",
        0,
        metrics,
        liveness=lambda: Check(True),
        readiness=lambda: Check(state["ready"], {"reason": "" if state["ready"] else "poll"}),
    )
    server.start()
    yield server, metrics, state
    server.stop()


def test_metrics_endpoint(served: tuple[HealthServer, Metrics, dict[str, bool]]) -> None:
    server, metrics, state = served
    metrics.init_account("kommune")
    metrics.letters.labels("kommune", "acknowledged").inc()
    with metrics.stage("kommune", "download"):
        pass
    body = httpx.get(server.url + "/metrics").text
    assert 'svarinn_letters_total{account="kommune",outcome="acknowledged"} 1.0' in body
    assert 'svarinn_ledger_letters{account="kommune",state="acknowledged"} 3.0' in body
    assert 'svarinn_oldest_unacknowledged_letter_age_seconds{account="kommune"} 42.0' in body
    assert "svarinn_ledger_up 1.0" in body
    assert 'svarinn_stage_duration_seconds_count{account="kommune",stage="download"} 1.0' in body
    assert "svarinn_build_info{version=" in body
    state["ledger"] = False
    assert "svarinn_ledger_up 0.0" in httpx.get(server.url + "/metrics").text


def test_health_and_readiness(served: tuple[HealthServer, Metrics, dict[str, bool]]) -> None:
    server, _metrics, state = served
    assert httpx.get(server.url + "/healthz").status_code == 200
    assert httpx.get(server.url + "/readyz").json() == {"ok": True, "reason": ""}
    state["ready"] = False
    response = httpx.get(server.url + "/readyz")
    assert response.status_code == 503
    assert response.json()["reason"] == "poll"
    assert httpx.get(server.url + "/nope").status_code == 404
