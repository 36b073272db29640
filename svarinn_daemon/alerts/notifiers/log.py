"""The ``log`` notifier: alerts as structured log lines (the default, and always safe).

Firing and repeating alerts are warnings, resolved ones info, under the stable event names
``alert.firing``, ``alert.repeating`` and ``alert.resolved`` that log-based alerting can
match on.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from svarinn_daemon.alerts.message import AlertMessage, AlertStatus
from svarinn_daemon.alerts.notifiers.base import NotifierContext
from svarinn_daemon.alerts.notifiers.options import NotifierOptions
from svarinn_daemon.logs import get_logger

__all__ = ["LogNotifier", "create_notifier"]


class LogNotifier:
    def __init__(self, name: str):
        self.name = name
        self._log = get_logger("svarinn_daemon.alerts")

    def __repr__(self) -> str:
        return f"LogNotifier(name={self.name!r})"

    def send(self, alert: AlertMessage) -> None:
        level = "info" if alert.status is AlertStatus.RESOLVED else "warning"
        getattr(self._log, level)(
            f"alert.{alert.status.value}",
            notifier=self.name,
            condition=alert.condition.value,
            subject=alert.subject,
            account=alert.account,
            counts=dict(alert.counts),
            host=alert.host,
            first_seen=alert.first_seen.isoformat(),
            text=alert.title(),
        )

    def close(self) -> None:
        return None


def create_notifier(options: Mapping[str, Any], context: NotifierContext) -> LogNotifier:
    NotifierOptions(options, context).finish()
    return LogNotifier(context.name)
