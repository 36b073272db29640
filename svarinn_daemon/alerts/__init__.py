"""Alerts that reach a person: messages, the pure life-cycle engine, notifiers.

Only the plain records and the engine are imported here; notifiers live in
:mod:`svarinn_daemon.alerts.notifiers` (they need the configuration package).
"""

from svarinn_daemon.alerts.engine import (
    AlertDetails,
    AlertKey,
    AlertState,
    AlertStore,
    Evaluation,
    MemoryAlertStore,
    evaluate,
)
from svarinn_daemon.alerts.message import AlertMessage, AlertStatus, Condition

__all__ = [
    "AlertDetails",
    "AlertKey",
    "AlertMessage",
    "AlertState",
    "AlertStatus",
    "AlertStore",
    "Condition",
    "Evaluation",
    "MemoryAlertStore",
    "evaluate",
]
