"""Find notifier types by name through the entry-point group ``svarinn_daemon.notifiers``."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import TYPE_CHECKING

from svarinn_daemon.alerts.notifiers.base import Notifier, NotifierContext, NotifierFactory
from svarinn_daemon.errors import DaemonError, PluginError
from svarinn_daemon.plugins import EntryPointRegistry

if TYPE_CHECKING:
    from svarinn_daemon.config.model import NotifierConfig

__all__ = ["ENTRY_POINT_GROUP", "NotifierRegistry"]

ENTRY_POINT_GROUP = "svarinn_daemon.notifiers"

_PROTOCOL_METHODS = ("send", "close")


class NotifierRegistry:
    """The installed notifier types. Pass ``entry_points`` to use others than the installed."""

    def __init__(self, entry_points: Iterable[EntryPoint] | None = None):
        self._registry: EntryPointRegistry[NotifierFactory] = EntryPointRegistry(
            ENTRY_POINT_GROUP,
            kind="notifier type",
            protocol="Notifier",
            methods=_PROTOCOL_METHODS,
            factory_signature="factory(options, context) returning a Notifier",
            entry_points=entry_points,
        )

    def names(self) -> list[str]:
        """The notifier types that are installed (nothing is imported)."""
        return self._registry.names()

    def factory(self, name: str) -> NotifierFactory:
        """Import the entry point ``name`` (once) and check that it can make notifiers."""
        return self._registry.factory(name)

    def create(
        self,
        config: NotifierConfig,
        *,
        source: Path | None = None,
        base_dir: Path | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> Notifier:
        """Make the notifier for one ``[[notifiers]]`` table; its factory checks the options."""
        factory = self.factory(config.type)
        context = NotifierContext(
            name=config.name,
            index=config.index,
            secrets=config.secrets,
            base_dir=base_dir if base_dir is not None else Path(),
            source=source,
            clock=clock,
            sleep=sleep,
        )
        try:
            notifier = factory(config.options, context)
        except DaemonError:
            raise
        except Exception as exc:
            raise PluginError(
                f"notifier type {config.type!r} failed to start for notifier "
                f"{config.name!r}: {type(exc).__name__}: {exc}"
            ) from exc
        self._registry.check_product(config.type, notifier, Notifier)
        return notifier
