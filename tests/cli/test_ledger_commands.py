"""The ledger commands, run through the real command line against SQLite and PostgreSQL."""

from __future__ import annotations

import io
import json
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from svarinn_daemon.cli import main
from svarinn_daemon.config import LedgerConfig
from svarinn_daemon.ledger import open_ledger
from tests.support.ledger_support import record_seen
from tests.support.loopback import free_port


def write_config(tmp_path: Path, conformance_dir: Path, url: str) -> Path:
    config = tmp_path / "config.toml"
    config.write_text(
        f"""
state_directory = "{tmp_path / "state"}"
[ledger]
url = "{url}"
[[accounts]]
name = "kommune"
username = "u"
password_env = "SVARINN_PASSWORD"
[[accounts.keys]]
private_key_file = "{conformance_dir / "privatekey.pem"}"
"""
    )
    return config


def cli(config: Path, *argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(
        ["--config", str(config), "--log-format", "json", *argv],
        environ={"SVARINN_PASSWORD": "pw", "USER": "ola"},
        stdout=out,
        stderr=err,
    )
    return code, out.getvalue(), err.getvalue()


def test_migrate_status_list_show_retry(
    tmp_path: Path, conformance_dir: Path, ledger_url: str
) -> None:
    config = write_config(tmp_path, conformance_dir, ledger_url)
    code, _, err = cli(config, "status")
    assert code == 2
    assert "svarinn-daemon migrate" in err
    code, out, _ = cli(config, "migrate")
    assert (code, "migrated from empty to 0007" in out) == (0, True)
    code, out, _ = cli(config, "migrate")
    assert (code, "nothing to do" in out) == (0, True)

    ledger = open_ledger(LedgerConfig(url=ledger_url))
    raw = {"id": "d1c6d795", "tittel": "Byggesøknad", "filmetadata": []}
    record_seen(
        ledger, "kommune", "d1c6d795", sender="Ola", title="Byggesøknad", raw_json=json.dumps(raw)
    )
    record_seen(ledger, "kommune", "43ee26b7")
    [claim] = ledger.claim("w1", timedelta(minutes=5))
    ledger.mark_failed_permanently(claim.id, "w1", "NoMatchingRecipientError", "wrong key")
    ledger.schedule_retry(
        claim.id,
        "w1",
        "ServiceUnavailableError",
        "mottakFeilet: 503",
        ledger.clock() + timedelta(hours=1),
    )
    ledger.close()

    code, out, _ = cli(config, "status", "--json")
    status = json.loads(out)
    assert code == 0
    assert status["accounts"]["kommune"]["failed_permanently"] == 1
    assert status["totals"]["seen"] == 1
    assert status["oldest_unfinished"]["forsendelse_id"] == "d1c6d795"
    code, out, _ = cli(config, "status")
    assert "failed_permanently" in out
    assert "oldest unfinished: #1 d1c6d795" in out

    code, out, _ = cli(config, "list", "--state", "seen", "--json")
    assert [x["forsendelse_id"] for x in json.loads(out)] == ["43ee26b7"]
    code, out, _ = cli(config, "list", "--since", "1h")
    assert code == 0
    assert "d1c6d795" in out
    assert "NoMatchingRecipientError" not in out  # last error is the retry's now
    code, out, _ = cli(config, "list", "--account", "nobody")
    assert out == "no letters\n"
    code, _, err = cli(config, "list", "--since", "yesterday-ish")
    assert code == 2

    code, out, _ = cli(config, "show", "d1c6d795", "--json")
    shown = json.loads(out)
    assert shown["letter"]["raw"] == raw
    assert [e["trigger"] for e in shown["events"]] == ["see", "claim", "fail", "schedule_retry"]
    code, out, _ = cli(config, "show", "1")
    assert "history:" in out
    assert "fail            claimed -> failed_permanently by w1" in out

    code, out, _ = cli(config, "retry", "1", "--reason", "key rotated back")
    assert code == 0
    assert "failed_permanently -> seen" in out
    code, out, _ = cli(config, "show", "1", "--json")
    last = json.loads(out)["events"][-1]
    assert (last["trigger"], last["worker_id"], last["reason"]) == (
        "operator_retry",
        "cli:ola",
        "key rotated back",
    )
    code, _, err = cli(config, "retry", "1", "--reason", "again")
    assert code == 1
    assert "operator_retry is not allowed for seen" in err
    code, _, err = cli(config, "show", "nope")
    assert code == 1
    assert "no letter 'nope'" in err


@pytest.mark.parametrize("command", ["migrate", "status", "list", "show", "retry"])
def test_unreachable_ledger_exits_2(tmp_path: Path, conformance_dir: Path, command: str) -> None:
    url = f"postgresql+psycopg://svarinn@127.0.0.1:{free_port()}/ledger"
    config = write_config(tmp_path, conformance_dir, url)
    extra = {"show": ["1"], "retry": ["1", "--reason", "x"]}.get(command, [])
    code, _, err = cli(config, command, *extra)
    assert code == 2
    assert "127.0.0.1" in err
    assert "cannot" in err


def test_newer_schema_exits_2(tmp_path: Path, conformance_dir: Path, ledger_url: str) -> None:
    config = write_config(tmp_path, conformance_dir, ledger_url)
    assert cli(config, "migrate")[0] == 0
    engine = sa.create_engine(ledger_url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '0099'"))
    engine.dispose()
    for command in ("migrate", "status"):
        code, _, err = cli(config, command)
        assert code == 2
        assert "0099" in err
        assert "upgrade svarinn-daemon" in err


def test_alerts_lists_the_ledgers_alerts(tmp_path: Path, conformance_dir: Path) -> None:
    from svarinn_daemon.alerts import AlertState, Condition
    from svarinn_daemon.alerts.store import LedgerAlertStore

    config = write_config(tmp_path, conformance_dir, f"sqlite:///{tmp_path / 'l.sqlite3'}")
    assert cli(config, "migrate")[0] == 0
    code, out, _ = cli(config, "alerts")
    assert (code, out) == (0, "no active alerts\n")
    ledger = open_ledger(LedgerConfig(url=f"sqlite:///{tmp_path / 'l.sqlite3'}"))
    store = LedgerAlertStore(ledger.engine)
    now = ledger.clock()
    for condition, resolved in ((Condition.AUTH_FAILING, None), (Condition.POLLS_FAILING, now)):
        store.save(
            AlertState(
                condition=condition,
                subject="kommune",
                account="kommune",
                first_fired_at=now - timedelta(hours=1),
                last_sent_at=now,
                resolved_at=resolved,
                last_details={"failing_minutes": 60},
            )
        )
    ledger.close()
    code, out, _ = cli(config, "alerts")
    assert code == 0
    header, row = out.splitlines()
    assert header.split()[:3] == ["condition", "subject", "account"]
    assert row.split()[:3] == ["auth_failing", "kommune", "kommune"]
    assert "failing_minutes=60" in row
    for argv in (["alerts", "--json"], ["alerts", "list", "--json"], ["alerts", "--json", "list"]):
        code, out, _ = cli(config, *argv)
        assert code == 0
        (alert,) = json.loads(out)["alerts"]
        assert alert["condition"] == "auth_failing"
        assert alert["active"] is True
        assert alert["counts"] == {"failing_minutes": 60}
    code, out, _ = cli(config, "alerts", "list", "--all", "--json")
    assert [(a["condition"], a["resolved"] is None) for a in json.loads(out)["alerts"]] == [
        ("auth_failing", True),
        ("polls_failing", False),
    ]


def test_alerts_list_shows_control_characters_as_escapes(
    tmp_path: Path, conformance_dir: Path
) -> None:
    """Issue #24, item 10: every human-readable output escapes control characters, ``alerts``
    too (a subject names an archive or account; the ledger may be shared with other writers)."""
    from svarinn_daemon.alerts import AlertState, Condition
    from svarinn_daemon.alerts.store import LedgerAlertStore

    config = write_config(tmp_path, conformance_dir, f"sqlite:///{tmp_path / 'l.sqlite3'}")
    assert cli(config, "migrate")[0] == 0
    ledger = open_ledger(LedgerConfig(url=f"sqlite:///{tmp_path / 'l.sqlite3'}"))
    now = ledger.clock()
    LedgerAlertStore(ledger.engine).save(
        AlertState(
            condition=Condition.AUTH_FAILING,
            subject="arkiv\x1b]52;c;cm0gLXJmIH4K\x07\u202e",
            account="kommune\r\n",
            first_fired_at=now - timedelta(hours=1),
            last_sent_at=now,
        )
    )
    ledger.close()
    for argv in (["alerts"], ["alerts", "list", "--all"]):
        code, out, _ = cli(config, *argv)
        assert code == 0
        assert not {"\x1b", "\x07", "\u202e", "\r"} & set(out)
        _header, row = out.splitlines()
        assert "arkiv\\x1b]52;c;cm0gLXJmIH4K\\x07\\u202e" in row
        assert "kommune\\x0d\\x0a" in row
