"""The alert life cycle as a pure function: fire once, repeat while it holds, resolve.

The daemon asks, on each evaluation, which (condition, subject) pairs hold right now and
passes them with the states it stored last time. :func:`evaluate` says which messages to
send and which states to store. Nothing here reads a clock, a database or the network, so
a restart that reloads the same states neither loses nor repeats an alert.

One :class:`AlertState` is one row of the ledger's alert table, keyed by (condition,
subject); a condition that clears and later holds again overwrites its row.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Protocol, runtime_checkable

from svarinn_daemon.alerts.message import AlertMessage, AlertStatus, Condition

__all__ = [
    "AlertDetails",
    "AlertKey",
    "AlertState",
    "AlertStore",
    "Evaluation",
    "MemoryAlertStore",
    "evaluate",
]


@dataclass(frozen=True, order=True)
class AlertKey:
    condition: Condition
    subject: str


@dataclass(frozen=True)
class AlertDetails:
    """What is known about a condition that holds: its account and counts (no personal data)."""

    account: str | None = None
    counts: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        object.__setattr__(self, "counts", MappingProxyType(dict(sorted(self.counts.items()))))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, AlertDetails):
            return NotImplemented
        return (self.account, dict(self.counts)) == (other.account, dict(other.counts))

    def __hash__(self) -> int:
        return hash((self.account, tuple(self.counts.items())))


@dataclass(frozen=True)
class AlertState:
    """One alert's stored state: a row (condition, subject, account, first_fired_at,
    last_sent_at, resolved_at, last_details). ``resolved_at`` is None while it holds."""

    condition: Condition
    subject: str
    account: str | None
    first_fired_at: datetime
    last_sent_at: datetime
    resolved_at: datetime | None = None
    last_details: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "last_details", MappingProxyType(dict(sorted(self.last_details.items())))
        )

    @property
    def key(self) -> AlertKey:
        return AlertKey(self.condition, self.subject)

    @property
    def active(self) -> bool:
        return self.resolved_at is None


@dataclass(frozen=True)
class Evaluation:
    """What :func:`evaluate` decided.

    Send every message in ``sends``; each is paired with the state to store once it has
    been delivered. ``updates`` are states to store without sending anything (new counts).
    """

    sends: tuple[tuple[AlertMessage, AlertState], ...]
    updates: tuple[AlertState, ...]

    @property
    def messages(self) -> tuple[AlertMessage, ...]:
        return tuple(message for message, _ in self.sends)


def evaluate(
    holding: Mapping[AlertKey, AlertDetails],
    previous: Iterable[AlertState],
    *,
    now: datetime,
    repeat_every: timedelta,
    host: str,
) -> Evaluation:
    """Compare the conditions that hold ``now`` with the stored states.

    - holds, no active state: send ``firing``; store first_fired_at = last_sent_at = now.
    - holds, active, ``repeat_every`` passed since last_sent_at: send ``repeating``
      (``repeat_every`` of zero never repeats).
    - holds, active, not yet due: store the new counts if they changed, send nothing.
    - active state, no longer holds: send ``resolved``; store resolved_at = now.

    ``previous`` may include resolved states; they count as absent.
    """
    active = {state.key: state for state in previous if state.active}
    sends: list[tuple[AlertMessage, AlertState]] = []
    updates: list[AlertState] = []
    for key in sorted(holding):
        details = holding[key]
        state = active.get(key)
        if state is None:
            new = AlertState(
                condition=key.condition,
                subject=key.subject,
                account=details.account,
                first_fired_at=now,
                last_sent_at=now,
                last_details=details.counts,
            )
            sends.append((_message(new, AlertStatus.FIRING, now, host), new))
            continue
        changed = replace(state, account=details.account, last_details=details.counts)
        due = repeat_every > timedelta(0) and now - state.last_sent_at >= repeat_every
        if due:
            new = replace(changed, last_sent_at=now)
            sends.append((_message(new, AlertStatus.REPEATING, now, host), new))
        elif changed != state:
            updates.append(changed)
    for key in sorted(set(active) - set(holding)):
        state = active[key]
        new = replace(state, last_sent_at=now, resolved_at=now)
        sends.append((_message(new, AlertStatus.RESOLVED, now, host), new))
    return Evaluation(sends=tuple(sends), updates=tuple(updates))


def _message(state: AlertState, status: AlertStatus, now: datetime, host: str) -> AlertMessage:
    return AlertMessage(
        condition=state.condition,
        subject=state.subject,
        status=status,
        account=state.account,
        host=host,
        first_seen=state.first_fired_at,
        sent_at=now,
        counts=state.last_details,
    )


@runtime_checkable
class AlertStore(Protocol):
    """Where alert states live between evaluations (the ledger's alert table in the daemon)."""

    def load_active(self) -> list[AlertState]:
        """Every state whose ``resolved_at`` is None."""
        ...

    def save(self, state: AlertState) -> None:
        """Insert or replace the row for ``(state.condition, state.subject)``."""
        ...


class MemoryAlertStore:
    """An :class:`AlertStore` in a dict: for tests and ``alerts test``."""

    def __init__(self, states: Iterable[AlertState] = ()):
        self.rows: dict[AlertKey, AlertState] = {s.key: s for s in states}

    def load_active(self) -> list[AlertState]:
        return [s for _, s in sorted(self.rows.items()) if s.active]

    def save(self, state: AlertState) -> None:
        self.rows[state.key] = state
