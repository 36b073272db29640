"""The contract between the alert engine and a notifier, and what a notifier factory gets.

A third-party package adds a notifier type by declaring, in its own pyproject.toml::

    [project.entry-points."svarinn_daemon.notifiers"]
    pager = "mypager:create_notifier"

where ``create_notifier(options, context)`` checks its options (raising ``ConfigError``
through ``context.option_error``) and returns a :class:`Notifier`. It must not talk to the
network while being created: ``check-config`` creates every notifier.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol, runtime_checkable

from svarinn_daemon.alerts.message import AlertMessage
from svarinn_daemon.config.secrets import Secret
from svarinn_daemon.errors import ConfigError

__all__ = ["Notifier", "NotifierContext", "NotifierFactory"]


@runtime_checkable
class Notifier(Protocol):
    """Delivers alerts to people. Must be safe to call from one thread at a time."""

    def send(self, alert: AlertMessage) -> None:
        """Deliver ``alert`` or raise :class:`~svarinn_daemon.errors.NotifierError`
        (``temporary`` when trying again later may work). Retries within one call are the
        notifier's own business; the message must never contain a secret."""
        ...

    def close(self) -> None:
        """Release connections; the notifier is not used afterwards."""
        ...


@dataclass(frozen=True)
class NotifierContext:
    """What a notifier factory gets beside its plain options.

    ``secrets`` holds the options given as ``NAME_file``/``NAME_env``/``NAME_credential`` (or
    a known secret name written inline), by NAME. ``index`` is the ``[[notifiers]]`` table's
    position, for error messages. ``clock`` (epoch seconds) and ``sleep`` are injectable so
    token expiry and retry backoff can be tested without waiting.
    """

    name: str
    index: int = 0
    secrets: Mapping[str, Secret] = field(default_factory=lambda: MappingProxyType({}))
    base_dir: Path = Path()
    source: Path | None = None
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep

    def option_key(self, key: str) -> str:
        return f"notifiers[{self.index}].{key}"

    def option_error(self, key: str, message: str) -> ConfigError:
        """A ConfigError naming the file and ``notifiers[i].KEY`` (and the notifier's name)."""
        return ConfigError(
            f"(notifier {self.name!r}) {message}",
            source=str(self.source) if self.source else None,
            key=self.option_key(key),
        )


class NotifierFactory(Protocol):
    """What an entry point in ``svarinn_daemon.notifiers`` must load to."""

    def __call__(self, options: Mapping[str, Any], context: NotifierContext) -> Notifier: ...
