"""The ledger's verbs: every state change, each one transaction with its audit event.

Each verb that works under a lease is a conditional UPDATE with its audit event
(:mod:`~svarinn_daemon.ledger.transitions`): when it touches no row the lease is gone and
:class:`LeaseLostError` is raised -- nothing is written. The state machine in
:mod:`~svarinn_daemon.ledger.states` decides every new state.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from svarinn_daemon.common import MAX_WORKER_ID
from svarinn_daemon.errors import (
    LedgerError,
)
from svarinn_daemon.ledger.claims import ClaimFilter, claim_letters
from svarinn_daemon.ledger.models import forsendelser as letters_t
from svarinn_daemon.ledger.operator import operator_retry
from svarinn_daemon.ledger.queries import row_to_letter
from svarinn_daemon.ledger.records import Claim, Letter, SeenResult, Sighting
from svarinn_daemon.ledger.replies import ArchiveReplies
from svarinn_daemon.ledger.routes import imports_waiting, store_routes, wake_archive
from svarinn_daemon.ledger.seen import record_sightings
from svarinn_daemon.ledger.shadow import RECEIPT_STATES, apply_receipts
from svarinn_daemon.ledger.states import CLAIM_PRIORITY, NOT_DURABLE, State, Trigger, work_for
from svarinn_daemon.ledger.transitions import (
    apply_transition,
    clip_message,
    free_leases,
    lease_lost,
    load,
    measured,
)
from svarinn_daemon.logs import get_logger

log = get_logger(__name__)


_IMPORTING = frozenset({State.CLAIMED})


def _check_worker(worker_id: str) -> str:
    if not worker_id or len(worker_id) > MAX_WORKER_ID:
        raise LedgerError(
            f"a worker id must be 1-{MAX_WORKER_ID} characters, not {worker_id[:200]!r}"
        )
    return worker_id


def _gone(gone: bool) -> dict[str, Any]:
    """A receipt SvarUt answered with 404: found done at SvarUt (unless already found so)."""
    if not gone:
        return {}
    return {"found_done": sa.func.coalesce(letters_t.c.found_done, "svarut"), "found_done_at": None}


class Ledger(ArchiveReplies):
    """The durable per-forsendelse state. Thread-safe: each verb is its own transaction."""

    # --- polling --------------------------------------------------------------------------

    def record_seen_many(
        self,
        account: str,
        sightings: Sequence[Sighting],
        *,
        now: datetime | None = None,
        listed_at: datetime | None = None,
    ) -> tuple[SeenResult, ...]:
        """One page of hentNyeForsendelser in one transaction; results in input order.
        ``listed_at``: when the listing was asked for (a letter finished since then is not
        taken as listed again: the listing may predate its receipt)."""
        now = self._now(now)
        if not sightings:
            return ()
        with self._write("recording seen forsendelser") as conn:
            return record_sightings(conn, account, sightings, now, listed_at)

    # --- claims and leases ----------------------------------------------------------------

    def claim(
        self,
        worker_id: str,
        lease: timedelta,
        now: datetime | None = None,
        account: str | None = None,
        limit: int = 1,
        due_by: datetime | None = None,
        imports: bool = True,
        *,
        skip_accounts: frozenset[str] = frozenset(),
        paused: frozenset[str] = frozenset(),
        archive: str | None = None,
    ) -> tuple[Claim, ...]:
        """Lease up to ``limit`` letters that have work due: receipts first, then reports,
        then imports, each in due order (see :mod:`.claims`). Each claim's ``work`` says what
        to do. With ``due_by``, only letters due by then (a work cycle's start) are taken;
        with ``imports`` false, only receipt and report work. Imports routed to a ``paused``
        archive are passed over; with ``archive``, only imports routed to it are taken."""
        _check_worker(worker_id)
        now = self._now(now)
        if lease <= timedelta(0) or limit < 1:
            raise LedgerError("claim needs a positive lease and limit")
        expires = now + lease
        which = ClaimFilter(
            accounts=None if account is None else (account,),
            skip_accounts=skip_accounts,
            imports=imports,
            paused=paused,
            archive=archive,
        )
        # A lease only: a power cut may undo it whole, and the letter is claimable again.
        with self._write("claiming letters", durable=Trigger.CLAIM not in NOT_DURABLE) as conn:
            won = claim_letters(conn, worker_id, now, expires, limit, which, due_by)
        won.sort(key=lambda letter: (CLAIM_PRIORITY[letter.state], letter.due_at, letter.id))
        return tuple(Claim(w, work_for(w.state), worker_id, expires) for w in won)

    def extend_lease(
        self, letter_id: int, worker_id: str, lease: timedelta, now: datetime | None = None
    ) -> datetime:
        """Push the lease's expiry to now + ``lease``; LeaseLostError if it is already gone."""
        now = self._now(now)
        c = letters_t.c
        with self._write("extending a lease") as conn:
            result = conn.execute(
                sa.update(letters_t)
                .where(c.id == letter_id, c.claimed_by == worker_id, c.lease_expires_at > now)
                .values(lease_expires_at=now + lease, updated_at=now)
            )
            if result.rowcount != 1:
                lease_lost(conn, letter_id, worker_id, now)
        return now + lease

    # --- results of work under a lease ----------------------------------------------------

    def mark_archived(
        self,
        letter_id: int,
        worker_id: str,
        *,
        archive_ref: str,
        actual_sha256: str | Sequence[str] | None,
        actual_size: int | None,
        verified: bool | None,
        note: str | None = None,
        found_in_archive: bool = False,
    ) -> Letter:
        """The adapter has the letter. The lease is kept: acknowledge it next.

        ``verified`` None: not known (the letter was found already in the archive after a
        crash; the archive's own record says how it was verified). ``note`` goes into the
        event's reason (which archive, by which route)."""
        if not archive_ref:
            raise LedgerError("mark_archived needs the archive's reference for the letter")
        found: dict[str, Any] = (
            {"found_done": "archive", "found_done_at": None} if found_in_archive else {}
        )
        return self._apply(
            letter_id,
            worker_id,
            Trigger.ARCHIVE,
            f"archived as {archive_ref}" + (f" in {note}" if note else ""),
            from_states=_IMPORTING,  # a failed letter is archived only by the archive's reply
            archive_ref=archive_ref,
            archived_at=None,  # filled with now by _apply
            **measured(actual_sha256, actual_size, verified),
            **found,
        )

    def mark_acknowledged(
        self, letter_id: int, worker_id: str, reason: str = "kvitterMottak", *, gone: bool = False
    ) -> Letter:
        """kvitterMottak succeeded (or SvarUt no longer lists it, ``gone``: recorded as found
        done at SvarUt): the letter is finished. Not durable on SQLite (``NOT_DURABLE``): a
        power cut may undo it whole, and the receipt is sent again, as after a kill before
        this commit (a 404 counts as sent)."""
        return self._apply(
            letter_id,
            worker_id,
            Trigger.ACKNOWLEDGE,
            reason,
            acknowledged_at=None,
            **_gone(gone),
        )

    def schedule_retry(
        self,
        letter_id: int,
        worker_id: str,
        error_kind: str,
        error_message: str,
        next_attempt_at: datetime,
        *,
        corrupt_download: bool = False,
    ) -> Letter:
        """A temporary failure: the same work is claimable again from ``next_attempt_at``.
        ``corrupt_download``: the download came back corrupt; counted in
        ``download_attempts``, which sends the letter to paper at ``max_download_attempts``."""
        at = self._now(next_attempt_at)
        extra: dict[str, Any] = {}
        if corrupt_download:
            extra["download_attempts"] = letters_t.c.download_attempts + 1
        return self._apply(
            letter_id,
            worker_id,
            Trigger.SCHEDULE_RETRY,
            f"{error_kind}: {error_message}",
            last_error_kind=error_kind[:100],
            last_error_message=clip_message(error_message),
            next_attempt_at=at,
            due_at=at,
            **extra,
        )

    def record_temporary_report(self, letter_id: int, now: datetime | None = None) -> None:
        """SvarUt accepted mottakFeilet(permanent=false) for the letter: remember when, so
        the next one waits ``temporary_report_interval`` (also across restarts)."""
        now = self._now(now)
        c = letters_t.c
        with self._write("recording a temporary report") as conn:
            conn.execute(
                sa.update(letters_t)
                .where(c.id == letter_id)
                .values(temporary_reported_at=now, updated_at=now)
            )

    def mark_failed_permanently(
        self, letter_id: int, worker_id: str, error_kind: str, message: str
    ) -> Letter:
        """Import can never succeed; the lease is kept: report mottakFeilet permanent=true
        next. Not allowed for an archived letter."""
        return self._apply(
            letter_id,
            worker_id,
            Trigger.FAIL,
            f"{error_kind}: {message}",
            last_error_kind=error_kind[:100],
            last_error_message=clip_message(message),
            failed_at=None,
        )

    def mark_reported(
        self, letter_id: int, worker_id: str, reason: str | None = None, *, gone: bool = False
    ) -> Letter:
        """mottakFeilet (permanent=true) was accepted by SvarUt: the letter is finished."""
        return self._apply(
            letter_id,
            worker_id,
            Trigger.REPORT,
            reason or "mottakFeilet",
            reported_at=None,
            **_gone(gone),
        )

    def release(self, letter_id: int, worker_id: str, reason: str) -> Letter:
        """Give the lease back without a result (shutdown, say); the work is due again."""
        return self._apply(letter_id, worker_id, Trigger.RELEASE, reason)

    # --- shadow mode ----------------------------------------------------------------------

    def withhold_receipt(self, letter_id: int, worker_id: str, reason: str) -> Letter:
        """Shadow mode: the archived (or failed) letter's receipt is not sent. The lease is
        given back and the letter is not claimed again until :meth:`set_receipts` turns
        receipts on for its account."""
        return self._apply(
            letter_id,
            worker_id,
            Trigger.RELEASE,
            reason,
            from_states=RECEIPT_STATES,
            receipt_withheld_at=None,  # now
        )

    def set_receipts(
        self, account: str, on: bool, *, now: datetime | None = None
    ) -> tuple[int, ...]:
        """Bring the account's letters in line with its ``receipts`` setting; returns the ids
        changed. On: every withheld receipt is due now. Off: every receipt or report waiting
        without a live lease is withheld (one with a lease is withheld by its worker)."""
        now = self._now(now)
        with self._write("applying the receipts setting") as conn:
            return apply_receipts(conn, account, on, now)

    # --- routes ---------------------------------------------------------------------------

    def imports_waiting(self) -> tuple[Letter, ...]:
        """Letters whose import is still to come (to be routed again at start)."""
        with self._read("reading letters to route") as conn:
            return tuple(imports_waiting(conn))

    def store_routes(self, routes: Mapping[int, str], *, now: datetime | None = None) -> int:
        """Record the archive ``[[routes]]`` chose per letter id; returns how many changed."""
        now = self._now(now)
        with self._write("recording routes") as conn:
            return store_routes(conn, routes, now)

    def wake_archive(self, archive: str, *, now: datetime | None = None) -> tuple[int, ...]:
        """The archive answers again: its letters waiting after its failures are due now."""
        now = self._now(now)
        with self._write("making an archive's letters due") as conn:
            return wake_archive(conn, archive, now)

    # --- housekeeping ---------------------------------------------------------------------

    def reap_expired_leases(self, now: datetime | None = None) -> tuple[int, ...]:
        """Free every lease that has expired (a dead or stuck worker); returns the ids."""
        now = self._now(now)
        c = letters_t.c
        freed = self._free_leases(
            Trigger.EXPIRE,
            sa.and_(c.claimed_by.is_not(None), c.lease_expires_at <= now),
            now,
            "lease expired",
        )
        if freed:
            log.warning("ledger.leases_expired", count=len(freed), letter_ids=list(freed))
        return freed

    def release_worker(self, worker_id: str, now: datetime | None = None) -> tuple[int, ...]:
        """At a worker's restart: free every lease it held before (alive or not)."""
        now = self._now(now)
        freed = self._free_leases(
            Trigger.RELEASE, letters_t.c.claimed_by == worker_id, now, "worker restarted"
        )
        if freed:
            log.info("ledger.worker_released", worker_id=worker_id, count=len(freed))
        return freed

    def retry(
        self,
        letter_id: int,
        reason: str,
        *,
        operator: str = "operator",
        now: datetime | None = None,
    ) -> Letter:
        """An operator sends a failed or retry-scheduled letter back to pending (an archived
        one only to a receipt due now), with its count of corrupt downloads back at zero.
        Refused while a worker holds a live lease."""
        if not reason.strip():
            raise LedgerError("retry needs a reason; it goes into the audit trail")
        now = self._now(now)
        with self._write("retrying a letter") as conn:
            letter = load(conn, letter_id)
            row = operator_retry(conn, letter, reason, operator, now)
        return row_to_letter(row)

    # --- internals ------------------------------------------------------------------------

    def _apply(
        self,
        letter_id: int,
        worker_id: str,
        trigger: Trigger,
        reason: str,
        *,
        from_states: frozenset[State] | None = None,
        **values: Any,
    ) -> Letter:
        now = self._now(None)
        durable = trigger not in NOT_DURABLE
        with self._write(f"recording {trigger.value}", durable=durable) as conn:
            return apply_transition(
                conn,
                letter_id,
                worker_id,
                trigger,
                reason,
                now,
                from_states=from_states,
                values=values,
            )

    def _free_leases(
        self, trigger: Trigger, which: sa.ColumnElement[bool], now: datetime, reason: str
    ) -> tuple[int, ...]:
        with self._write(f"freeing leases ({trigger.value})") as conn:
            return free_leases(conn, trigger, which, now, reason)
