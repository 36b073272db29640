"""An operator's retry: a failed or waiting letter back to pending, in the caller's
transaction (``Ledger.retry`` opens it and loads the letter)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from svarinn_daemon.errors import IllegalTransitionError
from svarinn_daemon.ledger.events import NewEvent, insert_events
from svarinn_daemon.ledger.models import forsendelser as letters_t
from svarinn_daemon.ledger.records import Letter
from svarinn_daemon.ledger.states import Trigger, transition

__all__ = ["operator_retry"]


def operator_retry(
    conn: sa.Connection, letter: Letter, reason: str, operator: str, now: datetime
) -> Any:
    """The letter's new row; refused while a worker holds its lease, or its receipt is
    withheld by shadow mode. The count of corrupt downloads starts again."""
    c = letters_t.c
    if letter.leased(now):
        raise IllegalTransitionError(
            f"letter {letter.id} is being worked on by {letter.claimed_by} until "
            f"{letter.lease_expires_at:%Y-%m-%d %H:%M:%S}Z; try again after that"
        )
    if letter.receipt_withheld:
        raise IllegalTransitionError(
            f"letter {letter.id} is archived with its receipt withheld: its account "
            "is in shadow mode (receipts = false); set receipts = true to send it"
        )
    to, _ = transition(letter.state, Trigger.OPERATOR_RETRY)
    row = conn.execute(
        sa.update(letters_t)
        .where(c.id == letter.id, c.state == letter.state.value)
        .values(
            state=to.value,
            next_attempt_at=None,
            due_at=now,
            download_attempts=0,  # a fresh start: max_download_attempts again
            claimed_by=None,
            lease_expires_at=None,
            failing_since=None,
            updated_at=now,
        )
        .returning(*letters_t.c)
    ).first()
    if row is None:
        raise IllegalTransitionError(f"letter {letter.id} changed meanwhile; try again")
    insert_events(
        conn,
        [NewEvent(letter.id, letter.state, to, reason)],
        Trigger.OPERATOR_RETRY,
        operator,
        now,
    )
    return row
