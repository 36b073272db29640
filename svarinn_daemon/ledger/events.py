"""Appending to the audit trail. The table is append-only: nothing here updates or deletes,
and the migration installs triggers that make the database refuse it too."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from svarinn_daemon.ledger import direct
from svarinn_daemon.ledger.models import forsendelse_events as events_t
from svarinn_daemon.ledger.states import State, Trigger

_INSERT = sa.insert(events_t)


@dataclass(frozen=True)
class NewEvent:
    """A transition about to be appended; ``worker_id`` overrides the batch's worker."""

    letter_id: int
    from_state: State | None
    to_state: State
    reason: str | None = None
    worker_id: str | None = None


def insert_events(
    conn: sa.Connection,
    events: Sequence[NewEvent],
    trigger: Trigger,
    worker_id: str | None,
    now: datetime,
) -> None:
    """Append ``events`` in the caller's transaction."""
    if not events:
        return
    rows = [
        {
            "letter_id": e.letter_id,
            "at": now,
            "trigger": trigger.value,
            "from_state": e.from_state.value if e.from_state is not None else None,
            "to_state": e.to_state.value,
            "worker_id": e.worker_id or worker_id,
            "reason": e.reason,
        }
        for e in events
    ]
    direct.run(conn, _INSERT, rows)
