"""Notifiers: the protocol, the entry-point registry and the built-in types."""

from svarinn_daemon.alerts.notifiers.base import Notifier, NotifierContext, NotifierFactory
from svarinn_daemon.alerts.notifiers.options import NotifierOptions
from svarinn_daemon.alerts.notifiers.registry import ENTRY_POINT_GROUP, NotifierRegistry

__all__ = [
    "ENTRY_POINT_GROUP",
    "Notifier",
    "NotifierContext",
    "NotifierFactory",
    "NotifierOptions",
    "NotifierRegistry",
]
