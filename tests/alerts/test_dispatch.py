"""Routing by condition filter, delivery failures, the notifier registry and `alerts test`."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any

import pytest

from svarinn_daemon.alerts import (
    AlertDetails,
    AlertKey,
    AlertMessage,
    AlertStatus,
    Condition,
    MemoryAlertStore,
)
from svarinn_daemon.alerts.dispatch import AlertDispatcher, run_alerts
from svarinn_daemon.alerts.notifiers import ENTRY_POINT_GROUP, NotifierContext, NotifierRegistry
from svarinn_daemon.config import NotifierConfig
from svarinn_daemon.errors import NotifierError, PluginError
from tests.support.cfg_helpers import make_config_dir, run_cli
from tests.support.fakes.webhook import WebhookServer, WebhookState

T0 = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
PENDING = AlertKey(Condition.PENDING_TOO_LONG, "kommune")
AUTH = AlertKey(Condition.AUTH_FAILING, "kommune")


class Recorder:
    """An in-memory notifier (a real implementation of the protocol) that can be made to fail."""

    def __init__(self, fail: bool = False):
        self.fail = fail
        self.sent: list[AlertMessage] = []
        self.closed = False

    def send(self, alert: AlertMessage) -> None:
        if self.fail:
            raise NotifierError("down", temporary=True)
        self.sent.append(alert)

    def close(self) -> None:
        self.closed = True


CREATED: list[Recorder] = []


def create_recorder(options: Mapping[str, Any], context: NotifierContext) -> Recorder:
    CREATED.append(Recorder(fail=bool(options.get("fail"))))
    return CREATED[-1]


def create_crasher(options: Mapping[str, Any], context: NotifierContext) -> object:
    class Crasher(Recorder):
        def send(self, alert: AlertMessage) -> None:
            raise RuntimeError("bug with secret-ish detail")

    return Crasher()


def returns_nothing_useful(options: Mapping[str, Any], context: NotifierContext) -> object:
    return object()


def registry() -> NotifierRegistry:
    return NotifierRegistry(
        [
            EntryPoint("rec", "tests.alerts.test_dispatch:create_recorder", ENTRY_POINT_GROUP),
            EntryPoint("crash", "tests.alerts.test_dispatch:create_crasher", ENTRY_POINT_GROUP),
            EntryPoint(
                "bad", "tests.alerts.test_dispatch:returns_nothing_useful", ENTRY_POINT_GROUP
            ),
        ]
    )


def dispatcher(*configs: NotifierConfig) -> AlertDispatcher:
    return AlertDispatcher.from_config(configs, registry=registry())


def cycle(
    store: MemoryAlertStore, d: AlertDispatcher, holding: dict[AlertKey, AlertDetails], at: datetime
) -> None:
    run_alerts(store, holding, d, now=at, repeat_every=timedelta(hours=4), host="h")


def test_conditions_filter_routes_messages() -> None:
    d = dispatcher(
        NotifierConfig("all", "rec"),
        NotifierConfig("auth-only", "rec", conditions=("auth_failing",)),
    )
    store = MemoryAlertStore()
    cycle(store, d, {PENDING: AlertDetails("kommune"), AUTH: AlertDetails("kommune")}, T0)
    everything, auth_only = (n for _, n in d.routes)
    assert isinstance(everything, Recorder)
    assert isinstance(auth_only, Recorder)
    assert {m.condition for m in everything.sent} == {Condition.PENDING_TOO_LONG, AUTH.condition}
    assert [m.condition for m in auth_only.sent] == [Condition.AUTH_FAILING]
    d.close()
    assert everything.closed


def test_an_undelivered_alert_is_tried_again() -> None:
    d = dispatcher(NotifierConfig("down", "rec", options={"fail": True}))
    store = MemoryAlertStore()
    cycle(store, d, {PENDING: AlertDetails("kommune")}, T0)
    assert store.load_active() == []  # nobody heard of it: not recorded as sent
    (_, notifier) = d.routes[0]
    assert isinstance(notifier, Recorder)
    notifier.fail = False
    cycle(store, d, {PENDING: AlertDetails("kommune")}, T0 + timedelta(minutes=1))
    assert [m.status.value for m in notifier.sent] == ["firing"]
    assert len(store.load_active()) == 1


def test_one_working_notifier_is_enough_and_a_crash_is_contained() -> None:
    d = dispatcher(NotifierConfig("boom", "crash"), NotifierConfig("ok", "rec"))
    store = MemoryAlertStore()
    cycle(store, d, {PENDING: AlertDetails("kommune")}, T0)
    assert len(store.load_active()) == 1
    delivery = d.deliver(_msg())
    assert delivery.sent == ("ok",)
    ((name, error),) = delivery.failed
    assert name == "boom"
    assert str(error) == "notifier 'boom' crashed: RuntimeError"


def _msg() -> AlertMessage:
    return AlertMessage(Condition.TEST, "test", AlertStatus.FIRING, None, "h", T0, T0)


def test_registry_lists_built_ins_and_names_missing_types() -> None:
    assert {"log", "webhook", "fiks-sms"} <= set(NotifierRegistry().names())
    with pytest.raises(PluginError) as info:
        NotifierRegistry().create(NotifierConfig("x", "pagerduty"))
    message = str(info.value)
    assert "'pagerduty'" in message
    assert "fiks-sms, log, webhook" in message
    assert ENTRY_POINT_GROUP in message


def test_registry_checks_products_against_the_protocol() -> None:
    with pytest.raises(PluginError, match="lacks send, close of the Notifier protocol"):
        registry().create(NotifierConfig("x", "bad"))


def test_from_config_closes_what_it_made_when_a_later_one_fails() -> None:
    CREATED.clear()
    with pytest.raises(PluginError):
        AlertDispatcher.from_config(
            [NotifierConfig("a", "rec"), NotifierConfig("b", "nope")], registry=registry()
        )
    (made,) = CREATED
    assert made.closed


# --- svarinn-daemon alerts test ------------------------------------------------------------


@pytest.fixture
def hook() -> Iterator[WebhookServer]:
    with WebhookServer(WebhookState()) as server:
        yield server


def config_with(tmp_path: Path, extra: str) -> Path:
    cfg = make_config_dir(tmp_path)
    cfg.write(cfg.path.read_text() + extra)
    return cfg.path


def test_alerts_test_through_a_webhook(tmp_path: Path, hook: WebhookServer) -> None:
    path = config_with(
        tmp_path,
        '[[notifiers]]\nname = "teams"\ntype = "webhook"\nurl_env = "HOOK"\n'
        'conditions = ["auth_failing"]\n',
    )
    code, out, err = run_cli(
        "--config", str(path), "alerts", "test", "--notifier", "teams", environ={"HOOK": hook.url}
    )
    assert code == 0, err
    assert "test alert delivered through notifier 'teams' (webhook)" in out
    ((_, _, body),) = hook.state.received
    assert (body["condition"], body["status"], body["subject"]) == ("test", "firing", "test")


def test_alerts_test_failure_exits_1_without_the_url(tmp_path: Path, hook: WebhookServer) -> None:
    hook.state.fail_with = [500, 500]
    path = config_with(
        tmp_path,
        '[[notifiers]]\nname = "teams"\ntype = "webhook"\nurl_env = "HOOK"\nretries = 1\n'
        'backoff = "0s"\n',
    )
    code, out, err = run_cli(
        "--config", str(path), "alerts", "test", "-n", "teams", environ={"HOOK": hook.url}
    )
    assert code == 1
    assert "NotifierError: webhook 'teams': HTTP 500 after 2 attempt(s)" in err
    assert "T0K3N" not in out + err


def test_alerts_test_with_the_default_log_notifier(tmp_path: Path) -> None:
    path = config_with(tmp_path, "")
    code, _, err = run_cli(
        "--config", str(path), "--log-format", "json", "alerts", "test", "--notifier", "log"
    )
    assert code == 0, err
    event = json.loads(next(line for line in err.splitlines() if "alert.firing" in line))
    assert (event["condition"], event["level"]) == ("test", "warning")


def test_alerts_test_unknown_notifier_is_a_usage_error(tmp_path: Path) -> None:
    code, _, err = run_cli("--config", str(config_with(tmp_path, "")), "alerts", "test", "-n", "x")
    assert code == 2
    assert "no notifier named 'x' is configured (configured: log)" in err


def test_check_config_checks_notifier_options(tmp_path: Path) -> None:
    path = config_with(
        tmp_path,
        '[[notifiers]]\nname = "teams"\ntype = "webhook"\nurl_env = "HOOK"\nretries = 99\n',
    )
    code, _, err = run_cli(
        "--config", str(path), "check-config", environ={"HOOK": "https://h.example/T0K3N"}
    )
    assert code == 2
    assert "notifiers[0].retries: (notifier 'teams') must be from 0 to 10, not 99" in err
    path = config_with(tmp_path, '[[notifiers]]\nname = "p"\ntype = "pager"\n')
    code, _, err = run_cli("--config", str(path), "check-config")
    assert code == 1
    assert "PluginError: no notifier type named 'pager' is installed" in err
