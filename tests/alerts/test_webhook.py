"""webhook: JSON POST, retries with backoff on 5xx and timeouts, the URL kept secret."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from svarinn_daemon.alerts.notifiers import NotifierRegistry
from svarinn_daemon.alerts.notifiers.webhook import WebhookNotifier
from svarinn_daemon.config import NotifierConfig
from svarinn_daemon.config.secrets import Secret
from svarinn_daemon.errors import ConfigError, NotifierError
from svarinn_daemon.logs import configure_logging
from tests.support.fakes.webhook import WebhookServer, WebhookState
from tests.support.notifier_support import ALERT


@pytest.fixture
def hook() -> Iterator[WebhookServer]:
    with WebhookServer(WebhookState()) as server:
        yield server


def secret(value: str) -> Secret:
    return Secret(source="env:HOOK", _value=value.encode())


def make(url: str, sleeps: list[float] | None = None, **options: object) -> WebhookNotifier:
    secrets = {"url": secret(url)}
    if "authorization" in options:
        secrets["authorization"] = secret(str(options.pop("authorization")))
    config = NotifierConfig(
        name="teams", type="webhook", options={"backoff": "1s", **options}, secrets=secrets
    )
    notifier = NotifierRegistry().create(
        config, sleep=(sleeps if sleeps is not None else []).append
    )
    assert isinstance(notifier, WebhookNotifier)
    return notifier


def test_json_post(hook: WebhookServer) -> None:
    notifier = make(hook.url, headers={"X-Source": "svarinn"}, authorization="Bearer abcdefgh12345")
    notifier.send(ALERT)
    notifier.close()
    ((path, headers, body),) = hook.state.received
    assert path == "/hooks/T0K3N-secret-path"
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Source"] == "svarinn"
    assert headers["Authorization"] == "Bearer abcdefgh12345"
    assert body == ALERT.to_json()


def test_text_format(hook: WebhookServer) -> None:
    notifier = make(hook.url, format="text")
    notifier.send(ALERT)
    notifier.close()
    assert hook.state.received[0][2] == {"text": ALERT.long_text()}


def test_retries_5xx_then_succeeds(hook: WebhookServer) -> None:
    hook.state.fail_with = [503, 500]
    sleeps: list[float] = []
    notifier = make(hook.url, sleeps)
    notifier.send(ALERT)
    notifier.close()
    assert hook.state.attempts == 3
    assert sleeps == [1.0, 2.0]
    assert len(hook.state.received) == 1


def test_retries_a_timeout(hook: WebhookServer) -> None:
    hook.state.fail_with = [0]
    hook.state.stall_seconds = 0.5
    notifier = make(hook.url, timeout="100ms")
    notifier.send(ALERT)
    notifier.close()
    assert hook.state.attempts == 2
    assert len(hook.state.received) == 1


def test_gives_up_with_a_temporary_error_that_hides_the_url(hook: WebhookServer) -> None:
    hook.state.fail_with = [503] * 3
    out = io.StringIO()
    configure_logging(level="debug", fmt="json", stream=out)
    notifier = make(hook.url, retries=2)
    with pytest.raises(NotifierError) as info:
        notifier.send(ALERT)
    notifier.close()
    assert info.value.temporary
    assert str(info.value) == "webhook 'teams': HTTP 503 after 3 attempt(s)"
    logged = out.getvalue()
    assert "alert.webhook_retry" in logged
    for text in (str(info.value), repr(info.value), logged, repr(notifier)):
        assert "T0K3N" not in text


def test_client_errors_are_permanent_and_not_retried(hook: WebhookServer) -> None:
    hook.state.fail_with = [404]
    notifier = make(hook.url)
    with pytest.raises(NotifierError, match="refused the alert \\(HTTP 404\\)") as info:
        notifier.send(ALERT)
    notifier.close()
    assert not info.value.temporary
    assert hook.state.attempts == 1


def test_connection_refused_is_temporary() -> None:
    notifier = make("http://127.0.0.1:9/hooks/T0K3N", retries=1)
    with pytest.raises(NotifierError, match="connection failed") as info:
        notifier.send(ALERT)
    notifier.close()
    assert info.value.temporary
    assert "T0K3N" not in str(info.value)


@pytest.mark.parametrize(
    ("url", "options", "key", "message"),
    [
        ("ftp://x/y", {}, "url", "https"),
        ("http://hooks.example.com/T0K3N", {}, "url", "plain http"),
        ("https://u:p@hooks.example.com/x", {}, "url", "user name or password"),
        ("https://h/x", {"retries": 99}, "retries", "from 0 to 10"),
        ("https://h/x", {"format": "xml"}, "format", "json, text"),
        ("https://h/x", {"headers": {"Authorization": "x"}}, "headers", "authorization_file"),
        ("https://h/x", {"timeout": "soon"}, "timeout", "not a duration"),
        ("https://h/x", {"retrys": 1}, "retrys", "did you mean 'retries'"),
    ],
)
def test_bad_options(url: str, options: dict[str, object], key: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        make(url, **options)
    assert info.value.key == f"notifiers[0].{key}"
    assert "T0K3N" not in str(info.value)


def test_missing_url_is_named(tmp_path: Path) -> None:
    config = NotifierConfig(name="teams", type="webhook")
    with pytest.raises(ConfigError, match="url_file, url_env or url_credential"):
        NotifierRegistry().create(config)
