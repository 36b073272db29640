"""Which archive a letter waits for: routed letters for the claims, and an archive's return.

The archive ``[[routes]]`` chose is stored when a letter is listed, so a claim can pass over
the letters of a paused archive (see :mod:`.claims`). Routing is the daemon's business (the
ledger never reads the raw forsendelse); these verbs only store what it decided and wake
what waited for an archive that answers again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

import sqlalchemy as sa

from svarinn_daemon.errors import ArchiveError
from svarinn_daemon.ledger.models import forsendelser as letters_t
from svarinn_daemon.ledger.queries import row_to_letter
from svarinn_daemon.ledger.records import Letter
from svarinn_daemon.ledger.states import State, Work, work_for

c = letters_t.c
# States whose next work is an import: the only ones whose archive can still change.
IMPORT_STATES: tuple[State, ...] = (State.SEEN, State.RETRY_SCHEDULED, State.CLAIMED)
# The kind a temporary archive failure is recorded with (data, from the error tree).
ARCHIVE_KIND = ArchiveError("", temporary=True).kind
_BATCH = 500

assert work_for(State.CLAIMED) is Work.IMPORT


def imports_waiting(conn: sa.Connection) -> list[Letter]:
    """Every letter whose import is still to come, to be routed (again) at start."""
    rows = conn.execute(
        sa.select(letters_t).where(c.state.in_([s.value for s in IMPORT_STATES])).order_by(c.id)
    ).all()
    return [row_to_letter(row) for row in rows]


def store_routes(conn: sa.Connection, routes: Mapping[int, str], now: datetime) -> int:
    """Write each letter's archive, where it differs and the import is still to come."""
    by_archive: dict[str, list[int]] = {}
    for letter_id, archive in routes.items():
        by_archive.setdefault(archive, []).append(letter_id)
    changed = 0
    for archive, ids in by_archive.items():
        for start in range(0, len(ids), _BATCH):
            batch: Sequence[int] = ids[start : start + _BATCH]
            changed += conn.execute(
                sa.update(letters_t)
                .where(
                    c.id.in_(batch),
                    c.state.in_([s.value for s in IMPORT_STATES]),
                    sa.or_(c.archive.is_(None), c.archive != archive),
                )
                .values(archive=archive, updated_at=now)
            ).rowcount
    return changed


def wake_archive(conn: sa.Connection, archive: str, now: datetime) -> tuple[int, ...]:
    """The archive answers again: letters routed to it that wait for a retry after one of
    its temporary failures are due now, instead of after the rest of their backoff."""
    waiting = sa.and_(
        c.archive == archive,
        c.state == State.RETRY_SCHEDULED.value,
        c.last_error_kind == ARCHIVE_KIND,
        c.next_attempt_at > now,
    )
    ids = tuple(conn.execute(sa.select(c.id).where(waiting).order_by(c.id)).scalars())
    if ids:
        conn.execute(
            sa.update(letters_t)
            .where(waiting)
            .values(next_attempt_at=now, due_at=now, updated_at=now)
        )
    return ids
