"""The [alerts] table and the [[notifiers]] array: defaults, values, secrets, validation."""

from __future__ import annotations

import io
import tomllib
from datetime import timedelta
from pathlib import Path

import pytest

from svarinn_daemon.config import AlertsConfig, NotifierConfig, load_config, render_config
from svarinn_daemon.errors import ConfigError
from svarinn_daemon.logs import configure_logging, get_logger
from tests.support.cfg_helpers import make_config_dir

REPO = Path(__file__).resolve().parents[2]
HOOK_URL = "https://hooks.example.com/services/T0K3N-very-secret"


def load(tmp_path: Path, extra: str, environ: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    cfg = make_config_dir(tmp_path)
    cfg.write(cfg.path.read_text() + extra)
    return load_config(cfg.path, environ=environ or {})


def test_defaults(tmp_path: Path) -> None:
    config = load(tmp_path, "")
    assert config.alerts == AlertsConfig()
    assert config.alerts.pending_after == timedelta(minutes=90)
    assert config.alerts.polls_failing_after == timedelta(minutes=15)
    assert config.alerts.repeat_every == timedelta(hours=4)
    assert config.notifiers == (NotifierConfig(name="log", type="log"),)


def test_values_secrets_and_render(tmp_path: Path) -> None:
    (tmp_path / "hook-url").write_text(HOOK_URL + "\n")
    config = load(
        tmp_path,
        '\n[alerts]\npending_after = "1h"\npolls_failing_after = "5m"\nrepeat_every = "0s"\n'
        '[[notifiers]]\nname = "teams"\ntype = "webhook"\nurl_file = "hook-url"\n'
        'conditions = ["pending_too_long", "auth_failing"]\nretries = 2\n'
        'headers = { "X-Source" = "svarinn" }\n'
        '[[notifiers]]\nname = "sms"\ntype = "fiks-sms"\nintegrasjon_passord_env = "FIKS_PW"\n'
        'konto_id = "k"\n',
        environ={"FIKS_PW": "fiks-password-1"},
    )
    assert config.alerts == AlertsConfig(timedelta(hours=1), timedelta(minutes=5), timedelta(0))
    teams, sms = config.notifiers
    assert (teams.name, teams.type, teams.index, sms.index) == ("teams", "webhook", 0, 1)
    assert teams.conditions == ("pending_too_long", "auth_failing")
    assert dict(teams.options) == {"retries": 2, "headers": {"X-Source": "svarinn"}}
    assert teams.secrets["url"].reveal() == HOOK_URL
    assert sms.secrets["integrasjon_passord"].reveal() == "fiks-password-1"
    assert teams.wants("auth_failing")
    assert teams.wants("test")
    assert not teams.wants("permanent_failure")
    assert sms.wants("permanent_failure")
    assert HOOK_URL in config.secret_values()
    assert "fiks-password-1" in config.secret_values()
    rendered_text = render_config(config)
    assert "T0K3N" not in rendered_text
    assert "fiks-password-1" not in rendered_text
    rendered = tomllib.loads(rendered_text)
    assert rendered["alerts"] == {
        "pending_after": "1h",
        "polls_failing_after": "5m",
        "repeat_every": "0s",
        "archive_unavailable_after": "5m",
    }
    assert rendered["notifiers"][0] == {
        "name": "teams",
        "type": "webhook",
        "conditions": ["pending_too_long", "auth_failing"],
        "retries": 2,
        "headers": {"X-Source": "svarinn"},
        "url": f"*** from file:{tmp_path / 'hook-url'}",
    }


def test_logs_redact_notifier_secrets(tmp_path: Path) -> None:
    (tmp_path / "hook-url").write_text(HOOK_URL)
    config = load(tmp_path, '[[notifiers]]\nname = "t"\ntype = "webhook"\nurl_file = "hook-url"\n')
    out = io.StringIO()
    configure_logging(fmt="json", stream=out, secrets=config.secret_values())
    get_logger("test").warning("oops", detail=f"posting to {HOOK_URL} failed")
    assert "T0K3N" not in out.getvalue()


def test_inline_webhook_url_warns(tmp_path: Path) -> None:
    config = load(tmp_path, f'[[notifiers]]\nname = "t"\ntype = "webhook"\nurl = "{HOOK_URL}"\n')
    assert config.notifiers[0].secrets["url"].source == "inline"
    assert any("notifiers[0].url is written inline" in w for w in config.warnings)


@pytest.mark.parametrize(
    ("extra", "key", "message"),
    [
        ('[alerts]\npending_after = "soon"', "alerts.pending_after", "not a duration"),
        ('[alerts]\npending_after = "30s"', "alerts.pending_after", "at least 60s"),
        ('[alerts]\nrepeat_every = "30s"', "alerts.repeat_every", "or at least 1m"),
        ("[alerts]\nrepeat = 1", "alerts.repeat", "did you mean 'repeat_every'"),
        ('[[notifiers]]\ntype = "log"', "notifiers[0].name", "is required"),
        ('[[notifiers]]\nname = "a b"\ntype = "log"', "notifiers[0].name", "letters, digits"),
        ('[[notifiers]]\nname = "a"', "notifiers[0].type", "is required"),
        (
            '[[notifiers]]\nname = "a"\ntype = "log"\n[[notifiers]]\nname = "a"\ntype = "log"',
            "notifiers[1].name",
            "duplicate notifier name",
        ),
        (
            '[[notifiers]]\nname = "a"\ntype = "log"\nconditions = ["pending"]',
            "notifiers[0].conditions[0]",
            "pending_too_long, permanent_failure",
        ),
        (
            '[[notifiers]]\nname = "a"\ntype = "webhook"\nurl_env = "NOPE"',
            "notifiers[0].url_env",
            "NOPE is not set",
        ),
        (
            '[[notifiers]]\nname = "a"\ntype = "webhook"\nurl_env = "X"\nurl_file = "y"',
            "notifiers[0].url_env",
            "set only one of",
        ),
    ],
)
def test_invalid(tmp_path: Path, extra: str, key: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        load(tmp_path, "\n" + extra + "\n", environ={"X": "y"})
    assert info.value.key == key


def test_example_file_documents_the_defaults() -> None:
    example = tomllib.loads((REPO / "config.example.toml").read_text("utf-8"))
    assert example["alerts"] == {
        "pending_after": "90m",
        "polls_failing_after": "15m",
        "repeat_every": "4h",
        "archive_unavailable_after": "5m",
    }
    assert example["notifiers"] == [{"name": "log", "type": "log", "conditions": []}]
    text = (REPO / "config.example.toml").read_text("utf-8")
    for option in (
        "url_file",
        "authorization_file",
        "headers",
        "format",
        "retries",
        "backoff",
        "environment",
        "maskinporten_issuer",
        "konto_id",
        "integrasjon_id",
        "integrasjon_passord_file",
        "client_id",
        "scope",
        "private_key_file",
        "certificate_file",
        "kid",
        "recipients",
        "mode",
    ):
        assert f"# {option} = " in text, option
