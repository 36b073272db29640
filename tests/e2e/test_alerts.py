"""The alert life cycle driven by real daemon runs against the simulator over loopback.

Fire, repeat, resolve and survive a restart, with a webhook (and once Fiks SMS) as the
person at the other end. Time passes by moving the ledger's times into the past
(:func:`shift_ledger_back`), so the thresholds stay at their configured minimum.
"""

from __future__ import annotations

import io
import json
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from svarinn_daemon.cli import main
from svarinn_daemon.config import load_config
from svarinn_daemon.ledger import build_engine
from svarinn_daemon.simulator.faults import Fault
from svarinn_daemon.simulator.identity import generate_identity
from tests.support.alert_support import (
    ALERTS,
    fiks_block,
    fiks_state,
    received,
    shift_ledger_back,
    webhook_block,
)
from tests.support.daemon_harness import FAST, Harness, harness
from tests.support.fakes.fiks import FakeFiksServer, FiksState
from tests.support.fakes.webhook import WebhookServer, WebhookState

ACCOUNT = "simulator"


@dataclass
class Setup:
    h: Harness
    hook: WebhookState

    def later(self, minutes: float) -> None:
        shift_ledger_back(self.h.config_path, timedelta(minutes=minutes))

    def alerts(self, *args: str) -> list[dict[str, object]]:
        """``svarinn-daemon alerts [list] [--all] --json`` in this process."""
        out, err = io.StringIO(), io.StringIO()
        code = main(
            ["--config", str(self.h.config_path), "alerts", *args, "--json"],
            environ={},
            stdout=out,
            stderr=err,
        )
        assert code == 0, err.getvalue()
        alerts: list[dict[str, object]] = json.loads(out.getvalue())["alerts"]
        return alerts


@contextmanager
def daemon_with_webhook(root: Path, extra: str = "", api: str = "v1") -> Iterator[Setup]:
    hook = WebhookState()
    with WebhookServer(hook) as server:
        config = FAST + ALERTS + webhook_block(server.url) + extra
        with harness(root, extra_config=config, api=api) as h:
            yield Setup(h, hook)


# The alert tests that depend on SvarInn's answers run on both API versions.
both_apis = pytest.mark.parametrize("api", ["v1", "v2"])


def endpoint(api: str, v1_name: str) -> frozenset[Any]:
    """A simulator endpoint by its v1 name, in the given version."""
    v2 = {"list": "v2_list", "download": "v2_download", "acknowledge": "v2_status"}
    return frozenset({v2[v1_name] if api == "v2" else v1_name})


@both_apis
def test_auth_failing_fires_once_survives_restarts_repeats_and_resolves(
    tmp_path: Path, api: str
) -> None:
    fiks = fiks_state(tmp_path)
    with FakeFiksServer(fiks) as fiks_server:
        sms = fiks_block(fiks, fiks_server.base_url, ["auth_failing"])
        with daemon_with_webhook(tmp_path, sms, api=api) as s:
            (letter,) = s.h.sim.generate(1, 10_000)
            s.h.sim.add_fault(Fault("unauthorized"))
            assert s.h.poll_once()[0] == 1
            assert received(s.hook) == [("auth_failing", "firing", ACCOUNT)]
            body = s.hook.received[0][2]
            assert body["account"] == ACCOUNT
            assert body["host"] == "test-worker"
            _sms_says(fiks, ["ALERT auth_failing simulator"])

            # A second run in this process and a fresh poll-once process: nothing repeated.
            assert s.h.poll_once()[0] == 1
            assert s.h.cli("poll-once").returncode == 1
            assert len(s.hook.received) == 1
            (active,) = s.alerts("list")
            assert (active["condition"], active["subject"], active["active"]) == (
                "auth_failing",
                ACCOUNT,
                True,
            )
            assert active["last_sent"] == active["since"]

            s.later(minutes=11)  # repeat_every = 10m
            assert s.h.poll_once()[0] == 1
            assert received(s.hook)[1:] == [("auth_failing", "repeating", ACCOUNT)]
            assert s.h.poll_once()[0] == 1
            assert len(s.hook.received) == 2

            s.h.sim.clear_faults()
            assert s.h.poll_once()[0] == 0
            assert received(s.hook)[2:] == [("auth_failing", "resolved", ACCOUNT)]
            assert s.h.archived_ids() == {letter.id}
            _sms_says(fiks, ["ALERT auth_failing", "STILL auth_failing", "OK auth_failing"])
            assert s.alerts() == []
            (resolved,) = s.alerts("--all")
            assert resolved["resolved"] is not None
            assert resolved["active"] is False
            assert s.h.poll_once()[0] == 0
            assert len(s.hook.received) == 3


def _sms_says(fiks: FiksState, expected: list[str]) -> None:
    texts = [sms.body["tekst"] for sms in fiks.sms]
    assert len(texts) == len(expected), texts
    for text, part in zip(texts, expected, strict=True):
        assert f"svarinn {part}" in text
        assert "host test-worker" in text


@both_apis
def test_polls_failing_fires_after_the_threshold_and_resolves(tmp_path: Path, api: str) -> None:
    with daemon_with_webhook(tmp_path, api=api) as s:
        s.h.sim.add_fault(Fault("http_503", endpoints=endpoint(api, "list")))
        assert s.h.poll_once()[0] == 1
        assert s.hook.received == []  # failing, but not for polls_failing_after yet
        s.later(minutes=2)
        assert s.h.poll_once()[0] == 1
        assert received(s.hook) == [("polls_failing", "firing", ACCOUNT)]
        assert s.hook.received[0][2]["counts"]["failing_minutes"] >= 2
        s.h.sim.clear_faults()
        assert s.h.poll_once()[0] == 0
        assert received(s.hook)[1:] == [("polls_failing", "resolved", ACCOUNT)]


@both_apis
def test_a_letter_for_another_certificate_fires_no_matching_key_until_the_key_is_added(
    tmp_path: Path, api: str
) -> None:
    with daemon_with_webhook(tmp_path, api=api) as s:
        other = generate_identity("rotated-certificate")
        s.h.sim.certificate = other.certificate
        (letter,) = s.h.sim.generate(1, 10_000)
        assert s.h.poll_once()[0] == 1
        assert received(s.hook) == [("no_matching_key", "firing", ACCOUNT)]
        assert s.hook.received[0][2]["counts"] == {"letters": 1}
        assert not any(r.permanent for r in s.h.sim.state().reports)
        assert s.h.poll_once()[0] == 1  # retried loudly, alert not repeated
        assert len(s.hook.received) == 1

        # The operator adds the new key pair (key rotation): the letter comes in, resolved.
        assert other.private_key_pem is not None
        (tmp_path / "new-key.pem").write_bytes(other.private_key_pem)
        (tmp_path / "new-key.pem").chmod(0o600)
        (tmp_path / "new-cert.pem").write_bytes(other.certificate_pem)
        text = s.h.config_path.read_text()
        s.h.config_path.write_text(
            text + '\n[[accounts.keys]]\nprivate_key_file = "new-key.pem"\n'
            'certificate_file = "new-cert.pem"\n'
        )
        assert s.h.until_done() == 0
        assert s.h.archived_ids() == {letter.id}
        assert received(s.hook)[1:] == [("no_matching_key", "resolved", ACCOUNT)]


@both_apis
def test_a_corrupt_letter_reported_permanently_fires_then_resolves_after_the_window(
    tmp_path: Path, api: str
) -> None:
    with daemon_with_webhook(tmp_path, api=api) as s:
        bad, good = s.h.sim.generate(2, 10_000)
        s.h.sim.add_fault(Fault("corrupt", ids=frozenset({bad.id})))
        assert s.h.until_done() == 0
        assert any(r.permanent for r in s.h.sim.state().reports_for(bad.id))
        assert received(s.hook) == [("permanent_failure", "firing", ACCOUNT)]
        body = s.hook.received[0][2]
        assert body["counts"] == {"letters": 1, "reported": 1}
        assert bad.id not in json.dumps(body)  # counts only, no forsendelse id or title
        assert s.h.poll_once()[0] == 0
        assert len(s.hook.received) == 1
        s.later(minutes=11)  # out of the failure window (= repeat_every)
        assert s.h.poll_once()[0] == 0
        assert received(s.hook)[1:] == [("permanent_failure", "resolved", ACCOUNT)]
        assert s.h.archived_ids() == {good.id}


@both_apis
def test_a_letter_held_back_longer_than_pending_after_fires_and_resolves_on_import(
    tmp_path: Path, api: str
) -> None:
    with daemon_with_webhook(tmp_path, api=api) as s:
        (letter,) = s.h.sim.generate(1, 10_000)
        s.h.sim.add_fault(Fault("http_503", endpoints=endpoint(api, "download")))
        assert s.h.poll_once()[0] == 1
        assert s.hook.received == []
        s.later(minutes=3)
        assert s.h.poll_once()[0] == 1
        assert received(s.hook) == [("pending_too_long", "firing", ACCOUNT)]
        counts = s.hook.received[0][2]["counts"]
        assert counts["letters"] == 1
        assert counts["oldest_minutes"] >= 3
        s.h.sim.clear_faults()
        assert s.h.until_done() == 0
        assert s.h.archived_ids() == {letter.id}
        assert received(s.hook)[1:] == [("pending_too_long", "resolved", ACCOUNT)]


@both_apis
def test_a_failing_notifier_never_stops_the_daemon_and_is_tried_again(
    tmp_path: Path, api: str
) -> None:
    with daemon_with_webhook(tmp_path, api=api) as s:
        bad, good = s.h.sim.generate(2, 10_000)
        s.h.sim.add_fault(Fault("corrupt", ids=frozenset({bad.id})))
        s.hook.fail_with = [500] * 10
        assert s.h.until_done() == 0  # the letters are done although no alert got through
        assert s.h.archived_ids() == {good.id}
        assert s.hook.received == []
        assert s.hook.attempts >= 1
        assert s.alerts("list") == []  # not delivered, so not stored as sent
        s.hook.fail_with = []
        assert s.h.poll_once()[0] == 0
        assert received(s.hook) == [("permanent_failure", "firing", ACCOUNT)]
        assert [a["condition"] for a in s.alerts()] == ["permanent_failure"]


@both_apis
def test_run_evaluates_alerts_on_its_schedule(tmp_path: Path, api: str) -> None:
    with daemon_with_webhook(tmp_path, api=api) as s:
        s.h.sim.add_fault(Fault("unauthorized"))
        process = s.h.spawn("run")
        try:
            deadline = time.monotonic() + 15
            while not s.hook.received and time.monotonic() < deadline:
                time.sleep(0.05)
            assert received(s.hook)[:1] == [("auth_failing", "firing", ACCOUNT)]
            s.h.sim.clear_faults()
            deadline = time.monotonic() + 15
            while len(s.hook.received) < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            process.send_signal(signal.SIGTERM)
            _out, err = process.communicate(timeout=20)
        assert process.returncode == 0, err[-2000:]
        assert received(s.hook) == [
            ("auth_failing", "firing", ACCOUNT),
            ("auth_failing", "resolved", ACCOUNT),
        ]


@both_apis
def test_a_broken_alert_table_or_notifier_never_stops_the_import(tmp_path: Path, api: str) -> None:
    bad_notifier = webhook_block("http://127.0.0.1:9/x") + 'format = "xml"\n'
    with harness(tmp_path, extra_config=FAST + ALERTS + bad_notifier, api=api) as h:
        letters = h.sim.generate(2, 10_000)
        h.sim.add_fault(Fault("unauthorized", times=1))
        code, lines = h.poll_once()
        assert code == 1
        events = [line["event"] for line in lines]
        assert "alert.notifiers_unavailable" in events
        (firing,) = [line for line in lines if line["event"] == "alert.firing"]
        assert firing["condition"] == "auth_failing"  # to the log instead
        config = load_config(h.config_path, environ={})
        engine = build_engine(config.ledger)
        with engine.begin() as conn:
            conn.execute(sa.text("DROP TABLE alert_states"))
        engine.dispose()
        code, lines = h.poll_once()
        assert code == 0
        assert h.archived_ids() == {x.id for x in letters}
        assert "alert.evaluation_failed" in [line["event"] for line in lines]


@pytest.mark.postgres
@both_apis
def test_alerts_on_a_postgresql_ledger(tmp_path: Path, postgres_url: str, api: str) -> None:
    hook = WebhookState()
    with WebhookServer(hook) as server:
        config = FAST + ALERTS + webhook_block(server.url)
        with harness(tmp_path, extra_config=config, ledger_url=postgres_url, api=api) as h:
            h.sim.add_fault(Fault("http_503", endpoints=endpoint(api, "list")))
            assert h.poll_once()[0] == 1
            shift_ledger_back(h.config_path, timedelta(minutes=2))
            assert h.poll_once()[0] == 1
            assert h.poll_once()[0] == 1
            h.sim.clear_faults()
            assert h.poll_once()[0] == 0
            assert received(hook) == [
                ("polls_failing", "firing", ACCOUNT),
                ("polls_failing", "resolved", ACCOUNT),
            ]
