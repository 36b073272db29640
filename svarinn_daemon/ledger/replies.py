"""Letters sent to an archive that answers later, and the replies that decide them.

Every message id a letter is sent with is a row of ``archive_messages``; a reply names the
message it answers. A reply is written down whatever it finds, before the broker is told it
was received, so none is ever dropped:

- its message is known and the letter waits for it (``sent``): the reply decides (a
  kvittering archives the letter, a refusal about its content fails it, anything else makes it
  due again);
- the letter is being sent again right now (leased): the reply is kept on its message, and a
  kvittering among them archives the letter when the send is recorded (:func:`record_send`);
- its message is not known yet (the reply overtook the send's own commit): kept the same way,
  matched by :func:`record_send` (a kvittering archives the letter there; a failure kept so
  leaves it waiting, and its ``kvittering_timeout`` sends it again);
- the letter has moved on (archived, acknowledged): a duplicate, noted.

Each function works in the caller's transaction; :class:`ArchiveReplies` gives the
:class:`~svarinn_daemon.ledger.repository.Ledger` its verbs over them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from svarinn_daemon.common import clip
from svarinn_daemon.errors import ArchiveError, LedgerError
from svarinn_daemon.ledger.events import NewEvent, insert_events
from svarinn_daemon.ledger.models import archive_messages as messages_t
from svarinn_daemon.ledger.models import forsendelser as letters_t
from svarinn_daemon.ledger.queries import LedgerQueries, row_to_letter
from svarinn_daemon.ledger.records import Letter, ReplyOutcome, ReplyResult
from svarinn_daemon.ledger.states import Lease, State, Trigger, transition
from svarinn_daemon.ledger.transitions import apply_transition, clip_message, load, measured
from svarinn_daemon.replies import ArchiveReply, ReplyKind

__all__ = ["ArchiveReplies", "letter_for_message", "record_reply", "record_send"]

m = messages_t.c
c = letters_t.c
# A reply kind never gives way to a less decisive one on its message's row.
_RANK = {ReplyKind.RECEIVED: 0, ReplyKind.FAILED: 1, ReplyKind.REFUSED: 2, ReplyKind.REGISTERED: 3}
ERROR_KIND = ArchiveError.__name__


def _reply_values(reply: ArchiveReply, now: datetime) -> dict[str, Any]:
    return {
        "reply": reply.kind.value,
        "reply_id": reply.reply_id[:64] or None,
        "reply_at": now,
        "reference": clip(reply.reference, 500) or None,
        "detail": clip_message(reply.message) or None,
    }


def record_send(
    conn: sa.Connection,
    letter_id: int,
    worker_id: str,
    now: datetime,
    *,
    message_id: str,
    archive: str,
    resend_at: datetime,
    checked: dict[str, Any],
) -> Letter:
    """The letter went out as ``message_id``: sent, waiting for the reply until
    ``resend_at``; or, when the archive already registered it (a reply kept earlier),
    archived at once under the worker's lease."""
    row = conn.execute(sa.select(messages_t).where(m.message_id == message_id)).first()
    if row is None:
        conn.execute(
            sa.insert(messages_t).values(
                message_id=message_id, letter_id=letter_id, archive=archive, sent_at=now
            )
        )
    else:
        conn.execute(
            sa.update(messages_t)
            .where(m.message_id == message_id)
            .values(letter_id=letter_id, archive=archive, sent_at=now)
        )
    registered = conn.execute(
        sa.select(m.message_id, m.reference)
        .where(m.letter_id == letter_id, m.reply == ReplyKind.REGISTERED.value)
        .order_by(m.reply_at)
        .limit(1)
    ).first()
    if registered is not None:
        reference = registered.reference or registered.message_id
        return apply_transition(
            conn,
            letter_id,
            worker_id,
            Trigger.ARCHIVE,
            f"archived as {reference} in {archive} (its kvittering came before the send "
            "was recorded)",
            now,
            values={"archive_ref": reference, "archived_at": now, "sent_at": now, **checked},
        )
    return apply_transition(
        conn,
        letter_id,
        worker_id,
        Trigger.SEND,
        f"sent to {archive} as message {message_id}; waiting for its reply until "
        f"{resend_at.isoformat(timespec='seconds')}",
        now,
        values={"sent_at": now, "next_attempt_at": resend_at, "due_at": resend_at, **checked},
    )


def letter_for_message(conn: sa.Connection, message_id: str) -> Letter | None:
    row = conn.execute(
        sa.select(letters_t).join(messages_t, m.letter_id == c.id).where(m.message_id == message_id)
    ).first()
    return None if row is None else row_to_letter(row)


def record_reply(
    conn: sa.Connection, reply: ArchiveReply, now: datetime, retry_at: datetime | None
) -> ReplyResult:
    """Write the reply down and let it decide its letter where it may (see the module
    docstring). ``retry_at``: when a failure reply makes the letter due again."""
    row = conn.execute(sa.select(messages_t).where(m.message_id == reply.in_reply_to)).first()
    if row is None:
        conn.execute(
            sa.insert(messages_t).values(message_id=reply.in_reply_to, **_reply_values(reply, now))
        )
        return ReplyResult(ReplyOutcome.KEPT, None, "its message is not recorded (yet)")
    if reply.reply_id and row.reply_id == reply.reply_id:
        return ReplyResult(ReplyOutcome.DUPLICATE, None, "this reply was recorded before")
    if row.reply is None or _RANK[reply.kind] >= _RANK[ReplyKind(row.reply)]:
        conn.execute(
            sa.update(messages_t)
            .where(m.message_id == reply.in_reply_to)
            .values(**_reply_values(reply, now))
        )
    if row.letter_id is None:
        return ReplyResult(ReplyOutcome.KEPT, None, "its message is not recorded (yet)")
    letter = load(conn, row.letter_id)
    if letter.state is State.CLAIMED:  # being sent again: its send will find the reply
        return ReplyResult(ReplyOutcome.KEPT, letter, "the letter is being sent again")
    decided = _decide(letter, reply, retry_at)
    if decided is None:
        return ReplyResult(ReplyOutcome.DUPLICATE, letter, f"the letter is {letter.state.value}")
    if letter.leased(now):
        return ReplyResult(ReplyOutcome.KEPT, letter, f"{letter.claimed_by} is working on it")
    trigger, reason, values = decided
    changed = _apply_unleased(conn, letter, trigger, reason, now, values)
    if changed is None:
        return ReplyResult(ReplyOutcome.KEPT, load(conn, letter.id), "the letter changed meanwhile")
    return ReplyResult(ReplyOutcome.APPLIED, changed, reason)


def _decide(
    letter: Letter, reply: ArchiveReply, retry_at: datetime | None
) -> tuple[Trigger, str, dict[str, Any]] | None:
    """The transition a reply makes for a letter nobody holds, or None (nothing to change)."""
    state, said = letter.state, clip(reply.message, 300)
    if reply.kind is ReplyKind.RECEIVED:
        if state is not State.SENT:
            return None
        return Trigger.ARCHIVE_RECEIVED, f"the archive received message {reply.in_reply_to}", {}
    if reply.kind is ReplyKind.REGISTERED:
        if state not in (State.SENT, State.RETRY_SCHEDULED, State.FAILED_PERMANENTLY):
            return None
        reference = reply.reference or reply.in_reply_to
        values = {"archive_ref": reference, "archived_at": None, "next_attempt_at": None}
        return Trigger.ARCHIVE, f"archived as {reference} (kvittering)", values
    if state is not State.SENT:
        return None
    error = {"last_error_kind": ERROR_KIND, "last_error_message": clip_message(reply.message)}
    if reply.kind is ReplyKind.REFUSED and reply.permanent:
        reason = f"{ERROR_KIND}: the archive refused the letter: {said}"
        return Trigger.FAIL, reason, {**error, "failed_at": None, "next_attempt_at": None}
    at = retry_at or letter.next_attempt_at
    reason = f"{ERROR_KIND}: the archive answered {reply.kind.value}: {said}"
    return Trigger.SCHEDULE_RETRY, reason, {**error, "next_attempt_at": at, "due_at": at}


def _apply_unleased(
    conn: sa.Connection,
    letter: Letter,
    trigger: Trigger,
    reason: str,
    now: datetime,
    values: dict[str, Any],
) -> Letter | None:
    """A transition without a lease (a reply's): only if the letter is still as read and
    still free; None when it changed meanwhile."""
    to, lease = transition(letter.state, trigger)
    assert lease is Lease.NONE
    values = {k: (now if k.endswith("_at") and v is None else v) for k, v in values.items()}
    values.update(state=to.value, updated_at=now)
    if trigger is Trigger.SCHEDULE_RETRY:
        values.update(failing_since=letter.failing_since or now)
    elif trigger is Trigger.ARCHIVE:
        values.update(failing_since=None)
    row = conn.execute(
        sa.update(letters_t)
        .where(
            c.id == letter.id,
            c.state == letter.state.value,
            sa.or_(c.claimed_by.is_(None), c.lease_expires_at <= now),
        )
        .values(**values)
        .returning(*letters_t.c)
    ).first()
    if row is None:
        return None
    event = NewEvent(letter.id, letter.state, to, clip_message(reason))
    insert_events(conn, [event], trigger, None, now)
    return row_to_letter(row)


class ArchiveReplies(LedgerQueries):
    """The ledger's verbs for letters sent to an archive that answers later."""

    def mark_sent(
        self,
        letter_id: int,
        worker_id: str,
        *,
        message_id: str,
        archive: str,
        resend_at: datetime,
        actual_sha256: str | Sequence[str] | None = None,
        actual_size: int | None = None,
        verified: bool | None = None,
    ) -> Letter:
        """An archive that answers later was sent the letter as ``message_id``: it waits,
        without a lease, for the reply, and is sent again from ``resend_at`` if none came.
        When a kvittering was already recorded for it, it is archived instead, the lease
        kept: acknowledge it next."""
        if not message_id:
            raise LedgerError("mark_sent needs the message id the letter was sent with")
        now = self._now(None)
        with self._write("recording a letter sent") as conn:
            return record_send(
                conn,
                letter_id,
                worker_id,
                now,
                message_id=message_id[:64],
                archive=archive,
                resend_at=self._now(resend_at),
                checked=measured(actual_sha256, actual_size, verified),
            )

    def record_reply(self, reply: ArchiveReply, *, retry_at: datetime | None = None) -> ReplyResult:
        """A reply from an archive that answers later, written down and matched to its
        letter (see :mod:`.replies`). ``retry_at``: when a failure makes the letter due."""
        now = self._now(None)
        with self._write("recording an archive's reply") as conn:
            return record_reply(conn, reply, now, retry_at)

    def letter_for_message(self, message_id: str) -> Letter | None:
        """The letter sent as ``message_id`` (None: no such message recorded)."""
        with self._read("finding a sent message") as conn:
            return letter_for_message(conn, message_id)
