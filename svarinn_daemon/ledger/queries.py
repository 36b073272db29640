"""Reading the ledger: records, event trails, listings and the backlog behind ``status``.

:class:`LedgerQueries` is the read half of :class:`~svarinn_daemon.ledger.repository.Ledger`;
it also owns the engine, the clock and the row -> record conversion both halves use.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from typing import Any, Self, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from svarinn_daemon.common import Clock, utc_now
from svarinn_daemon.errors import LedgerError, LedgerUnavailableError, SchemaMismatchError
from svarinn_daemon.ledger.availability import Availability
from svarinn_daemon.ledger.database import reading, writing
from svarinn_daemon.ledger.models import archive_messages as archive_messages_t
from svarinn_daemon.ledger.models import forsendelse_events as events_t
from svarinn_daemon.ledger.models import forsendelser as letters_t
from svarinn_daemon.ledger.records import (
    ArchiveMessage,
    Backlog,
    Letter,
    LetterEvent,
    StateCount,
)
from svarinn_daemon.ledger.states import FINISHED, NOT_DURABLE, State, Trigger

E = TypeVar("E", bound=enum.Enum)


def known(kind: type[E], text: str, what: str) -> E:
    """A stored enum value, or SchemaMismatchError: a newer daemon wrote what we do not know."""
    try:
        return kind(text)
    except ValueError:
        raise SchemaMismatchError(
            f"the ledger holds {what} {text!r}, which this svarinn-daemon does not know"
        ) from None


def _state(text: str) -> State:
    return known(State, text, "state")


def split_hashes(text: str | None) -> tuple[str, ...]:
    return tuple(text.split(",")) if text else ()


def row_to_letter(row: sa.Row[Any] | Mapping[str, Any]) -> Letter:
    """A letter from its row: a SQLAlchemy row, or a mapping of column names (see
    :mod:`.direct`)."""
    m = row._mapping if isinstance(row, sa.Row) else row
    return Letter(
        id=m["id"],
        account=m["account"],
        forsendelse_id=m["forsendelse_id"],
        state=_state(m["state"]),
        sender=m["sender"],
        title=m["title"],
        declared_size=m["declared_size"],
        file_count=m["file_count"],
        expected_sha256=split_hashes(m["expected_sha256"]),
        actual_sha256=split_hashes(m["actual_sha256"]),
        actual_size=m["actual_size"],
        verified=m["verified"],
        archive_ref=m["archive_ref"],
        attempts=m["attempts"],
        last_error_kind=m["last_error_kind"],
        last_error_message=m["last_error_message"],
        claimed_by=m["claimed_by"],
        lease_expires_at=m["lease_expires_at"],
        next_attempt_at=m["next_attempt_at"],
        seen_at=m["seen_at"],
        claimed_at=m["claimed_at"],
        archived_at=m["archived_at"],
        acknowledged_at=m["acknowledged_at"],
        failed_at=m["failed_at"],
        reported_at=m["reported_at"],
        updated_at=m["updated_at"],
        raw_text=m["raw"],
        api=m["api"],
        failing_since=m["failing_since"],
        temporary_reported_at=m["temporary_reported_at"],
        receipt_withheld_at=m["receipt_withheld_at"],
        archive=m["archive"],
        download_attempts=m["download_attempts"],
        found_done=m["found_done"],
        found_done_at=m["found_done_at"],
        due_at=m["due_at"],
        sent_at=m["sent_at"],
    )


def _event(row: sa.Row[Any]) -> LetterEvent:
    m = row._mapping
    return LetterEvent(
        id=m["id"],
        letter_id=m["letter_id"],
        at=m["at"],
        trigger=Trigger(m["trigger"]),
        from_state=_state(m["from_state"]) if m["from_state"] is not None else None,
        to_state=_state(m["to_state"]),
        worker_id=m["worker_id"],
        reason=m["reason"],
    )


class LedgerQueries:
    """Read-only queries. Every method converts database errors into LedgerErrors."""

    def __init__(
        self, engine: Engine, *, clock: Clock = utc_now, availability: Availability | None = None
    ):
        self.engine = engine
        self.clock = clock
        self.availability = availability or Availability()

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _now(self, now: datetime | None) -> datetime:
        value = self.clock() if now is None else now
        if value.tzinfo is None:
            raise LedgerError("the ledger needs timezone-aware times (got a naive datetime)")
        return value.astimezone(UTC)

    def _read(self, doing: str) -> AbstractContextManager[sa.Connection]:
        return self._observed(reading(self.engine, doing), write=False)

    def _write(self, doing: str, *, durable: bool = True) -> AbstractContextManager[sa.Connection]:
        return self._observed(writing(self.engine, doing, durable=durable), write=True)

    @contextmanager
    def _observed(
        self, transaction: AbstractContextManager[sa.Connection], *, write: bool
    ) -> Iterator[sa.Connection]:
        """Tell :attr:`availability` when a transaction could not reach the database, and
        when a write got through. Only a write says the ledger is back: a SQLite file
        locked by another connection still answers reads."""
        try:
            with transaction as conn:
                yield conn
        except LedgerUnavailableError as exc:
            self.availability.failed(exc)
            raise
        if write:
            self.availability.answered()

    def ping(self) -> None:
        """An empty write transaction (SQLite: it takes the write lock); raises
        LedgerUnavailableError while the ledger cannot record a decision."""
        with self._write("checking the connection") as conn:
            conn.execute(sa.text("SELECT 1"))

    def get(self, letter_id: int) -> Letter | None:
        with self._read("reading a letter") as conn:
            row = conn.execute(sa.select(letters_t).where(letters_t.c.id == letter_id)).first()
        return row_to_letter(row) if row is not None else None

    def find(self, forsendelse_id: str, account: str | None = None) -> tuple[Letter, ...]:
        """Letters by SvarInn's forsendelse id (one per account that received it)."""
        query = sa.select(letters_t).where(letters_t.c.forsendelse_id == forsendelse_id)
        if account is not None:
            query = query.where(letters_t.c.account == account)
        with self._read("finding a letter") as conn:
            rows = conn.execute(query.order_by(letters_t.c.id)).all()
        return tuple(row_to_letter(r) for r in rows)

    def newest_event(self) -> tuple[int, int, datetime] | None:
        """The newest row of the audit trail (id, letter, time) that only a lost commit could
        take back: a mark of how far the ledger has come, which a ledger restored from an older
        backup no longer holds. Claims and receipts do not count (``NOT_DURABLE``): on SQLite
        a power cut may undo either (committed without a sync), and that loses nothing."""
        t = events_t.c
        with self._read("reading the newest event") as conn:
            row = conn.execute(
                sa.select(t.id, t.letter_id, t.at)
                .where(t.trigger.not_in(sorted(x.value for x in NOT_DURABLE)))
                .order_by(t.id.desc())
                .limit(1)
            ).first()
        return None if row is None else (row.id, row.letter_id, row.at)

    def has_event(self, event_id: int, letter_id: int, at: datetime) -> bool:
        """Whether exactly this row of the audit trail is there (an id alone could have been
        handed out again after a failover)."""
        t = events_t.c
        with self._read("looking for an event") as conn:
            found = conn.execute(
                sa.select(t.id).where(t.id == event_id, t.letter_id == letter_id, t.at == at)
            ).first()
        return found is not None

    def events(self, letter_id: int) -> tuple[LetterEvent, ...]:
        """The letter's audit trail, oldest first."""
        query = sa.select(events_t).where(events_t.c.letter_id == letter_id).order_by(events_t.c.id)
        with self._read("reading events") as conn:
            rows = conn.execute(query).all()
        return tuple(_event(r) for r in rows)

    def archive_messages(self, letter_id: int) -> tuple[ArchiveMessage, ...]:
        """The messages a letter was sent to an archive that answers later with, and the
        reply each got, oldest first."""
        m = archive_messages_t.c
        query = sa.select(archive_messages_t).where(m.letter_id == letter_id).order_by(m.sent_at)
        with self._read("reading a letter's messages") as conn:
            rows = conn.execute(query).all()
        return tuple(
            ArchiveMessage(
                message_id=r.message_id,
                archive=r.archive,
                sent_at=r.sent_at,
                reply=r.reply,
                reply_at=r.reply_at,
                reference=r.reference,
                detail=r.detail,
            )
            for r in rows
        )

    def found_done(self) -> dict[str, dict[str, int]]:
        """Per account, letters found done elsewhere ("archive", "svarut"), not by the ledger:
        what a restored ledger (or a lost answer) had forgotten."""
        c = letters_t.c
        query = (
            sa.select(c.account, c.found_done, sa.func.count())
            .where(c.found_done.is_not(None))
            .group_by(c.account, c.found_done)
        )
        out: dict[str, dict[str, int]] = {}
        with self._read("counting letters found done") as conn:
            for account, how, count in conn.execute(query).all():
                out.setdefault(account, {})[how] = count
        return out

    def archived_unacknowledged(self) -> tuple[Letter, ...]:
        """Letters the archive has and SvarUt has no receipt for (whatever their lease)."""
        return self.list(state=State.ARCHIVED)

    def backlog(self, now: datetime | None = None) -> Backlog:
        """Counts per account and state (and of them, receipts withheld), and the oldest
        letter not yet finished whose work is not withheld by shadow mode."""
        now = self._now(now)
        c = letters_t.c
        withheld = c.receipt_withheld_at.is_not(None)
        counts_q = (
            sa.select(c.account, c.state, sa.func.count(), withheld)
            .group_by(c.account, c.state, withheld)
            .order_by(c.account, c.state)
        )
        oldest_q = (
            sa.select(letters_t)
            .where(c.state.not_in([s.value for s in FINISHED]), c.receipt_withheld_at.is_(None))
            .order_by(c.seen_at, c.id)
            .limit(1)
        )
        totals: dict[tuple[str, State], int] = {}
        held: dict[tuple[str, State], int] = {}
        with self._read("counting letters") as conn:
            for account, state, count, is_withheld in conn.execute(counts_q).all():
                key = (account, _state(state))
                totals[key] = totals.get(key, 0) + count
                if is_withheld:
                    held[key] = held.get(key, 0) + count
            row = conn.execute(oldest_q).first()
        counts = tuple(StateCount(a, s, n) for (a, s), n in totals.items())
        oldest = row_to_letter(row) if row is not None else None
        return Backlog(
            counts=counts,
            oldest_unfinished=oldest,
            oldest_age=now - oldest.seen_at if oldest is not None else None,
            now=now,
            withheld=tuple(StateCount(a, s, n) for (a, s), n in held.items()),
        )

    def list(
        self,
        *,
        state: State | None = None,
        account: str | None = None,
        since: datetime | None = None,
        limit: int | None = None,
    ) -> tuple[Letter, ...]:
        """Letters, oldest first; ``since`` filters on when they were first seen."""
        query = sa.select(letters_t)
        if state is not None:
            query = query.where(letters_t.c.state == state.value)
        if account is not None:
            query = query.where(letters_t.c.account == account)
        if since is not None:
            query = query.where(letters_t.c.seen_at >= self._now(since))
        query = query.order_by(letters_t.c.seen_at, letters_t.c.id)
        if limit is not None:
            query = query.limit(limit)
        with self._read("listing letters") as conn:
            rows = conn.execute(query).all()
        return tuple(row_to_letter(r) for r in rows)
