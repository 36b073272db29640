"""What the alert conditions read from the ledger: per-account letter counts and the last poll.

Counts and times only -- no title, sender or forsendelse id leaves this module -- because
everything here ends up in an SMS or a chat room. The conditions themselves are decided in
:mod:`svarinn_daemon.alerts.conditions`.
"""

from __future__ import annotations

from collections.abc import Collection
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from svarinn_daemon.common import Clock, utc_now
from svarinn_daemon.errors import LedgerError
from svarinn_daemon.ledger.database import reading, upsert, writing
from svarinn_daemon.ledger.models import account_polls as polls_t
from svarinn_daemon.ledger.models import forsendelser as letters_t
from svarinn_daemon.ledger.states import FINISHED, State

__all__ = ["AccountAlertFacts", "LedgerWatch", "PollStatus"]

_UNFINISHED = [s.value for s in State if s not in FINISHED]
# Waiting for import or receipt; failed_permanently letters are the permanent_failure alert's.
_PENDING = [s for s in _UNFINISHED if s != State.FAILED_PERMANENTLY.value]


@dataclass(frozen=True)
class AccountAlertFacts:
    """What the alert conditions need to know about one account's letters (counts only).

    ``pending`` counts letters neither acknowledged nor reported (nor withheld by shadow
    mode) that were first seen at or before the pending cut-off;
    ``oldest_pending_seen_at`` is the first of them.
    ``reported_recently`` counts letters reported since the failure window's start;
    ``key_errors`` unfinished letters whose last error says no configured key fits;
    ``storage_errors`` those whose last error was our own disk (StorageError);
    ``awaiting_archive`` of the pending ones, those sent to an archive that answers later
    and still waiting for its reply (kvittering).
    """

    account: str
    pending: int = 0
    oldest_pending_seen_at: datetime | None = None
    failed_permanently: int = 0
    reported_recently: int = 0
    key_errors: int = 0
    storage_errors: int = 0
    awaiting_archive: int = 0


@dataclass(frozen=True)
class PollStatus:
    """One account's last poll. ``failing_since`` is the first failed poll after the last
    successful one (None while polls succeed); ``last_error_kind`` the last poll's error."""

    account: str
    last_polled_at: datetime
    last_ok_at: datetime | None
    failing_since: datetime | None
    last_error_kind: str | None

    @property
    def ok(self) -> bool:
        return self.failing_since is None


def _aware(value: datetime, name: str) -> datetime:
    if value.tzinfo is None:
        raise LedgerError(f"{name} must be timezone-aware")
    return value


class LedgerWatch:
    """Read-mostly queries for alerting, and the record of each account's last poll."""

    def __init__(self, engine: Engine, *, clock: Clock = utc_now):
        self.engine = engine
        self.clock = clock

    def _read(self, doing: str) -> AbstractContextManager[sa.Connection]:
        return reading(self.engine, doing)

    # --- letters --------------------------------------------------------------------------

    def account_facts(
        self,
        *,
        pending_before: datetime,
        reported_since: datetime,
        key_error_kinds: Collection[str],
        storage_error_kinds: Collection[str] = (),
    ) -> tuple[AccountAlertFacts, ...]:
        """Per account: letters pending since ``pending_before`` or earlier (and the oldest),
        failed permanently, reported since ``reported_since``, and unfinished with a key error.

        Accounts with nothing to report are left out. One query; finished letters outside
        the window are not read (the state index keeps this cheap on a large ledger).
        """
        _aware(pending_before, "pending_before")
        _aware(reported_since, "reported_since")
        c = letters_t.c
        # A receipt withheld by shadow mode is not pending: the other importer answers SvarUt.
        pending = sa.and_(
            c.state.in_(_PENDING), c.seen_at <= pending_before, c.receipt_withheld_at.is_(None)
        )
        recent = sa.and_(c.state == State.REPORTED.value, c.reported_at >= reported_since)
        key_error = sa.and_(c.state.in_(_UNFINISHED), c.last_error_kind.in_(list(key_error_kinds)))
        storage_error = sa.and_(
            c.state.in_(_UNFINISHED), c.last_error_kind.in_(list(storage_error_kinds))
        )

        def count(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[int]:
            return sa.func.sum(sa.case((condition, 1), else_=0))

        query = (
            sa.select(
                c.account,
                count(pending),
                sa.func.min(sa.case((pending, c.seen_at), else_=None)),
                count(c.state == State.FAILED_PERMANENTLY.value),
                count(recent),
                count(key_error),
                count(storage_error),
                count(sa.and_(pending, c.state == State.SENT.value)),
            )
            .where(sa.or_(c.state.in_(_UNFINISHED), recent))
            .group_by(c.account)
            .order_by(c.account)
        )
        with self._read("counting letters for alerts") as conn:
            rows = conn.execute(query).all()
        facts = (
            AccountAlertFacts(
                account=account,
                pending=int(n_pending or 0),
                oldest_pending_seen_at=oldest,
                failed_permanently=int(n_failed or 0),
                reported_recently=int(n_reported or 0),
                key_errors=int(n_key or 0),
                storage_errors=int(n_storage or 0),
                awaiting_archive=int(n_sent or 0),
            )
            for account, n_pending, oldest, n_failed, n_reported, n_key, n_storage, n_sent in rows
        )
        return tuple(
            f
            for f in facts
            if f.pending
            or f.failed_permanently
            or f.reported_recently
            or f.key_errors
            or f.storage_errors
        )

    # --- polls ----------------------------------------------------------------------------

    def record_poll(
        self, account: str, *, ok: bool, error_kind: str | None = None, now: datetime | None = None
    ) -> PollStatus:
        """Write down one poll's outcome; ``failing_since`` keeps the first failure's time."""
        now = _aware(now or self.clock(), "now")
        c = polls_t.c
        with writing(self.engine, "recording a poll") as conn:
            previous = conn.execute(
                sa.select(c.last_ok_at, c.failing_since).where(c.account == account)
            ).first()
            last_ok, failing_since = previous if previous is not None else (None, None)
            status = PollStatus(
                account=account,
                last_polled_at=now,
                last_ok_at=now if ok else last_ok,
                failing_since=None if ok else (failing_since or now),
                last_error_kind=None if ok else (error_kind or "unknown")[:100],
            )
            upsert(
                conn,
                polls_t,
                {
                    "account": account,
                    "last_polled_at": status.last_polled_at,
                    "last_ok_at": status.last_ok_at,
                    "failing_since": status.failing_since,
                    "last_error_kind": status.last_error_kind,
                },
            )
        return status

    def poll_statuses(self) -> tuple[PollStatus, ...]:
        with self._read("reading poll statuses") as conn:
            rows = conn.execute(sa.select(polls_t).order_by(polls_t.c.account)).all()
        return tuple(
            PollStatus(
                account=r.account,
                last_polled_at=r.last_polled_at,
                last_ok_at=r.last_ok_at,
                failing_since=r.failing_since,
                last_error_kind=r.last_error_kind,
            )
            for r in rows
        )
