"""Shadow mode in the ledger: receipts withheld per letter, and made due again.

An account with ``receipts = false`` imports but never answers SvarUt, so that the importer
it is replacing keeps handling the letters. Its archived (or failed) letters carry
``receipt_withheld_at``: claims pass them by (no lease, no attempt counted), ``status`` says
so. Turning receipts on clears the mark and the receipts are due at once. Both changes are
recorded as RELEASE events (the state does not change; the reason says what happened), so
the audit trail needs no new trigger.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from svarinn_daemon.ledger.events import NewEvent, insert_events
from svarinn_daemon.ledger.models import forsendelser as letters_t
from svarinn_daemon.ledger.states import State, Trigger, transition

# States whose lease is for a receipt (kvitterMottak, mottakFeilet): what shadow mode holds.
RECEIPT_STATES = frozenset({State.ARCHIVED, State.FAILED_PERMANENTLY})
WITHHELD = "receipt withheld (shadow mode: receipts = false)"
DUE = "receipts = true: the withheld receipt is due (shadow mode ended)"


def apply_receipts(conn: sa.Connection, account: str, on: bool, now: datetime) -> tuple[int, ...]:
    """In the caller's transaction: make ``account``'s letters agree with ``receipts = on``.

    On: every withheld receipt is due now. Off: every receipt or report waiting without a
    live lease is withheld (one under a lease is withheld by its worker). Returns the ids."""
    c = letters_t.c
    mine = sa.and_(c.account == account, c.state.in_([s.value for s in RECEIPT_STATES]))
    values: dict[str, Any]
    if on:
        which = sa.and_(mine, c.receipt_withheld_at.is_not(None))
        values = {"receipt_withheld_at": None, "next_attempt_at": None}
        reason = DUE
    else:
        free = sa.or_(c.claimed_by.is_(None), c.lease_expires_at <= now)
        which = sa.and_(mine, c.receipt_withheld_at.is_(None), free)
        values = {"receipt_withheld_at": now, "claimed_by": None, "lease_expires_at": None}
        reason = WITHHELD
    rows = conn.execute(
        sa.update(letters_t).where(which).values(updated_at=now, **values).returning(c.id, c.state)
    ).all()
    events = []
    for letter_id, text in rows:
        state = State(text)
        events.append(NewEvent(letter_id, state, transition(state, Trigger.RELEASE)[0], reason))
    insert_events(conn, events, Trigger.RELEASE, None, now)
    return tuple(sorted(letter_id for letter_id, _ in rows))
