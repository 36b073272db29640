"""The alert engine's states in the ledger database: one row per (condition, subject).

:class:`LedgerAlertStore` is the daemon's :class:`~svarinn_daemon.alerts.engine.AlertStore`.
Because the states live beside the letters, a restart reloads exactly what was sent last
time: nothing is lost and nothing is sent twice.
"""

from __future__ import annotations

import json
from contextlib import AbstractContextManager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from svarinn_daemon.alerts.engine import AlertState
from svarinn_daemon.alerts.message import Condition
from svarinn_daemon.common import Clock, utc_now
from svarinn_daemon.errors import LedgerError
from svarinn_daemon.ledger.database import reading, upsert, writing
from svarinn_daemon.ledger.models import alert_states as alerts_t
from svarinn_daemon.ledger.queries import known

__all__ = ["LedgerAlertStore"]


def _condition(text: str) -> Condition:
    return known(Condition, text, "alert condition")


def _details(text: str) -> dict[str, int]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        value = None
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, int) for k, v in value.items()
    ):
        raise LedgerError(f"an alert row's details are not a JSON object of counts: {text[:80]!r}")
    return value


def _row_to_state(row: sa.Row[Any]) -> AlertState:
    m = row._mapping
    return AlertState(
        condition=_condition(m["condition"]),
        subject=m["subject"],
        account=m["account"],
        first_fired_at=m["first_fired_at"],
        last_sent_at=m["last_sent_at"],
        resolved_at=m["resolved_at"],
        last_details=_details(m["details"]),
    )


class LedgerAlertStore:
    """Alert states in the ledger's ``alert_states`` table; thread-safe (a transaction each)."""

    def __init__(self, engine: Engine, *, clock: Clock = utc_now):
        self.engine = engine
        self.clock = clock

    def _read(self, doing: str) -> AbstractContextManager[sa.Connection]:
        return reading(self.engine, doing)

    def load_active(self) -> list[AlertState]:
        """Every alert that holds (``resolved_at`` is None), by condition and subject."""
        return self.load(include_resolved=False)

    def load(self, *, include_resolved: bool = True) -> list[AlertState]:
        query = sa.select(alerts_t).order_by(alerts_t.c.condition, alerts_t.c.subject)
        if not include_resolved:
            query = query.where(alerts_t.c.resolved_at.is_(None))
        with self._read("reading alert states") as conn:
            rows = conn.execute(query).all()
        return [_row_to_state(r) for r in rows]

    def save(self, state: AlertState) -> None:
        """Insert or replace the row for ``(state.condition, state.subject)``."""
        if len(state.subject) > 100 or (state.account and len(state.account) > 64):
            raise LedgerError(f"alert subject or account too long: {state.subject[:100]!r}")
        values = {
            "condition": state.condition.value,
            "subject": state.subject,
            "account": state.account,
            "first_fired_at": state.first_fired_at,
            "last_sent_at": state.last_sent_at,
            "resolved_at": state.resolved_at,
            "details": json.dumps(dict(state.last_details), sort_keys=True),
            "updated_at": self.clock(),
        }
        with writing(self.engine, "saving an alert state") as conn:
            upsert(conn, alerts_t, values)
