"""Helpers for the alert end-to-end tests: notifier config blocks and a ledger time machine."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from svarinn_daemon.config import load_config
from svarinn_daemon.ledger import build_engine
from svarinn_daemon.ledger.models import UtcDateTime, account_polls, alert_states, forsendelser
from tests.support.fakes.fiks import FiksState
from tests.support.fakes.webhook import WebhookState
from tests.support.keygen import cert_pem, certificate, key_pem, rsa_key

# Thresholds at the configuration's minimum; time passes with shift_ledger_back.
ALERTS = """
[alerts]
pending_after = "1m"
polls_failing_after = "1m"
repeat_every = "10m"
"""


def webhook_block(url: str, *, name: str = "hook", conditions: list[str] | None = None) -> str:
    lines = ["", "[[notifiers]]", f'name = "{name}"', 'type = "webhook"', f'url = "{url}"']
    lines += ['timeout = "2s"', "retries = 0", 'backoff = "0s"']
    if conditions is not None:
        lines.append(f"conditions = [{', '.join(repr(c) for c in conditions)}]")
    return "\n".join(lines) + "\n"


def fiks_state(directory: Path) -> FiksState:
    """A Fiks fake's state; the business key, certificate and password go into ``directory``
    (the daemon's config directory, so the notifier's relative paths find them)."""
    directory.mkdir(parents=True, exist_ok=True)
    key = rsa_key(1)
    cert = certificate(key, cn="Test Kommune virksomhetssertifikat")
    (directory / "mp-key.pem").write_bytes(key_pem(key))
    (directory / "mp-key.pem").chmod(0o600)
    (directory / "mp-cert.pem").write_bytes(cert_pem(cert))
    state = FiksState(certificate=cert)
    (directory / "fiks-passord").write_text(state.integrasjon_passord + "\n")
    (directory / "fiks-passord").chmod(0o600)
    return state


def fiks_block(state: FiksState, base_url: str, conditions: list[str]) -> str:
    values = {
        "name": "vakt",
        "type": "fiks-sms",
        "environment": "test",
        "base_url": base_url,
        "maskinporten_issuer": state.issuer,
        "konto_id": state.konto_id,
        "integrasjon_id": state.integrasjon_id,
        "integrasjon_passord_file": "fiks-passord",
        "client_id": state.client_id,
        "private_key_file": "mp-key.pem",
        "certificate_file": "mp-cert.pem",
    }
    lines = ["", "[[notifiers]]", *(f'{k} = "{v}"' for k, v in values.items())]
    lines.append('recipients = ["+4799999999"]')
    lines.append(f"conditions = [{', '.join(repr(c) for c in conditions)}]")
    return "\n".join(lines) + "\n"


def received(hook: WebhookState) -> list[tuple[str, str, str]]:
    """(condition, status, subject) of every webhook body, in arrival order."""
    return [(b["condition"], b["status"], b["subject"]) for _, _, b in hook.received]


def bodies(hook: WebhookState) -> list[dict[str, Any]]:
    return [b for _, _, b in hook.received]


def shift_ledger_back(config_path: Path, delta: timedelta) -> None:
    """Move every time in the ledger ``delta`` into the past: to the daemon, as if ``delta``
    had passed. (The audit trail is append-only and not read by alerts, so it stays.)"""
    config = load_config(config_path, environ={})
    engine = build_engine(config.ledger)
    try:
        with engine.begin() as conn:
            for table in (forsendelser, alert_states, account_polls):
                times = [c for c in table.columns if isinstance(c.type, UtcDateTime)]
                keys = list(table.primary_key.columns)
                for row in conn.execute(sa.select(table)).all():
                    m = row._mapping
                    values = {c.name: m[c.name] - delta for c in times if m[c.name] is not None}
                    where = [k == m[k.name] for k in keys]
                    conn.execute(sa.update(table).where(*where).values(**values))
    finally:
        engine.dispose()
