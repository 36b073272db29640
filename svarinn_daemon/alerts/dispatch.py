"""Route alert messages to the configured notifiers and record what was delivered.

:func:`run_alerts` is one evaluation: load the active states, :func:`evaluate`, send,
save. A state is saved only once its message reached at least one notifier (or no notifier
wants that condition), so an alert nobody could be told about is tried again at the next
evaluation instead of being lost.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from svarinn_daemon.alerts.engine import AlertDetails, AlertKey, AlertStore, Evaluation, evaluate
from svarinn_daemon.alerts.message import AlertMessage
from svarinn_daemon.alerts.notifiers.base import Notifier
from svarinn_daemon.alerts.notifiers.registry import NotifierRegistry
from svarinn_daemon.config.model import NotifierConfig
from svarinn_daemon.errors import NotifierError
from svarinn_daemon.logs import get_logger

__all__ = ["AlertDispatcher", "Delivery", "run_alerts"]


@dataclass(frozen=True)
class Delivery:
    """Which notifiers took a message and which failed (with their error)."""

    sent: tuple[str, ...]
    failed: tuple[tuple[str, NotifierError], ...]

    @property
    def attempted(self) -> bool:
        return bool(self.sent or self.failed)

    @property
    def delivered(self) -> bool:
        return bool(self.sent)


class AlertDispatcher:
    """The deployment's notifiers, each with its condition filter."""

    def __init__(self, routes: Sequence[tuple[NotifierConfig, Notifier]]):
        self.routes = tuple(routes)
        self._log = get_logger("svarinn_daemon.alerts")

    @classmethod
    def from_config(
        cls,
        notifiers: Sequence[NotifierConfig],
        *,
        registry: NotifierRegistry | None = None,
        source: Path | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> AlertDispatcher:
        """Create every configured notifier (no network); close them again on an error."""
        registry = registry or NotifierRegistry()
        routes: list[tuple[NotifierConfig, Notifier]] = []
        base_dir = source.parent if source else None
        try:
            for config in notifiers:
                notifier = registry.create(
                    config, source=source, base_dir=base_dir, clock=clock, sleep=sleep
                )
                routes.append((config, notifier))
        except BaseException:
            for _, notifier in routes:
                notifier.close()
            raise
        return cls(routes)

    def notifier(self, name: str) -> Notifier | None:
        return next((n for c, n in self.routes if c.name == name), None)

    def deliver(self, message: AlertMessage, *, only: str | None = None) -> Delivery:
        """Send ``message`` to every notifier that wants its condition (or just ``only``)."""
        sent: list[str] = []
        failed: list[tuple[str, NotifierError]] = []
        for config, notifier in self.routes:
            if (only is not None and config.name != only) or (
                only is None and not config.wants(message.condition.value)
            ):
                continue
            try:
                notifier.send(message)
            except NotifierError as exc:
                failed.append((config.name, exc))
            except Exception as exc:  # a plugin's bug must not stop the other notifiers
                failed.append(
                    (
                        config.name,
                        NotifierError(
                            f"notifier {config.name!r} crashed: {type(exc).__name__}",
                            notifier=config.name,
                        ),
                    )
                )
            else:
                sent.append(config.name)
        for name, error in failed:
            self._log.error(
                "alert.delivery_failed",
                notifier=name,
                condition=message.condition.value,
                status=message.status.value,
                temporary=error.temporary,
                error_id=error.error_id,
                error=str(error),
            )
        return Delivery(sent=tuple(sent), failed=tuple(failed))

    def close(self) -> None:
        for _, notifier in self.routes:
            notifier.close()


def run_alerts(
    store: AlertStore,
    holding: Mapping[AlertKey, AlertDetails],
    dispatcher: AlertDispatcher,
    *,
    now: datetime,
    repeat_every: timedelta,
    host: str,
) -> tuple[Evaluation, tuple[Delivery, ...]]:
    """One evaluation: what holds ``now`` against the stored states; send; save."""
    evaluation = evaluate(
        holding, store.load_active(), now=now, repeat_every=repeat_every, host=host
    )
    deliveries: list[Delivery] = []
    for message, state in evaluation.sends:
        delivery = dispatcher.deliver(message)
        deliveries.append(delivery)
        if delivery.delivered or not delivery.attempted:
            store.save(state)
    for state in evaluation.updates:
        store.save(state)
    return evaluation, tuple(deliveries)
