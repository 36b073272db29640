"""The ledger's tables (SQLAlchemy Core). The migrations in ``migrations/`` must build exactly
this schema; a test compares the two on SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

from svarinn_daemon.ledger.states import State, Trigger

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
# The migration that builds exactly these tables (tests/ledger/test_schema.py checks that it
# is the migrations' head): a ledger at it needs no alembic to be trusted.
SCHEMA_REVISION = "0007"


class UtcDateTime(sa.types.TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on every dialect.

    PostgreSQL stores ``timestamptz``; SQLite stores naive UTC text, which compares correctly
    as text because every value has the same format.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("the ledger stores aware datetimes only")  # a bug, not input
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _in(column: str, values: list[str]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


STATE_VALUES = [s.value for s in State]
TRIGGER_VALUES = [t.value for t in Trigger]

forsendelser = sa.Table(
    "forsendelser",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("account", sa.String(64), nullable=False),
    sa.Column("forsendelse_id", sa.String(100), nullable=False),
    sa.Column("state", sa.String(24), nullable=False),
    sa.Column("sender", sa.Text, nullable=True),
    sa.Column("title", sa.Text, nullable=True),
    sa.Column("declared_size", sa.BigInteger, nullable=True),
    sa.Column("file_count", sa.Integer, nullable=False),
    sa.Column("expected_sha256", sa.Text, nullable=True),
    sa.Column("actual_sha256", sa.Text, nullable=True),
    sa.Column("actual_size", sa.BigInteger, nullable=True),
    sa.Column("verified", sa.Boolean, nullable=True),
    sa.Column("archive_ref", sa.Text, nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("last_error_kind", sa.String(100), nullable=True),
    sa.Column("last_error_message", sa.Text, nullable=True),
    sa.Column("claimed_by", sa.String(200), nullable=True),
    sa.Column("lease_expires_at", UtcDateTime, nullable=True),
    sa.Column("next_attempt_at", UtcDateTime, nullable=True),
    sa.Column("seen_at", UtcDateTime, nullable=False),
    sa.Column("claimed_at", UtcDateTime, nullable=True),
    sa.Column("archived_at", UtcDateTime, nullable=True),
    sa.Column("acknowledged_at", UtcDateTime, nullable=True),
    sa.Column("failed_at", UtcDateTime, nullable=True),
    sa.Column("reported_at", UtcDateTime, nullable=True),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    sa.Column("raw", sa.Text, nullable=False),
    sa.Column("api", sa.String(8), nullable=False, server_default="v1"),  # who listed it
    # Since when the current run of failures lasts, and the last mottakFeilet(permanent=false).
    sa.Column("failing_since", UtcDateTime, nullable=True),
    sa.Column("temporary_reported_at", UtcDateTime, nullable=True),
    # Shadow mode (receipts = false): since when this letter's receipt is held back. While
    # set, the letter is not claimed; turning receipts on clears it (the receipt is due).
    sa.Column("receipt_withheld_at", UtcDateTime, nullable=True),
    # The archive [[routes]] chose for it (None: not routed yet; the daemon routes at start).
    sa.Column("archive", sa.String(64), nullable=True),
    # When its work fell (or falls) due: when it was listed, or its latest retry time. Claims
    # go in this order, so a letter that fails again and again waits behind the others.
    sa.Column("due_at", UtcDateTime, nullable=False),
    # Found done elsewhere, not by this ledger: "archive" (the archive had it when the ledger
    # thought it was still to import) or "svarut" (a receipt answered 404: acknowledged or
    # reported before, an answer or a commit the ledger lost). After a restore, say.
    sa.Column("found_done", sa.String(16), nullable=True),
    sa.Column("found_done_at", UtcDateTime, nullable=True),
    # Downloads that came back corrupt: at max_download_attempts the letter goes to paper.
    sa.Column("download_attempts", sa.Integer, nullable=False, server_default="0"),
    # Last sent to an archive that answers later (state sent: waiting for its reply).
    sa.Column("sent_at", UtcDateTime, nullable=True),
    sa.UniqueConstraint("account", "forsendelse_id"),
    sa.CheckConstraint(_in("state", STATE_VALUES), name="state"),
    sa.Index(None, "state", "seen_at", "id"),
    # Claims read (state, not withheld) in due order (see ledger/claims.py): withheld
    # letters are never scanned.
    sa.Index(None, "state", "receipt_withheld_at", "due_at", "id"),
    sa.Index(None, "lease_expires_at"),
)

forsendelse_events = sa.Table(
    "forsendelse_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("letter_id", sa.Integer, sa.ForeignKey("forsendelser.id"), nullable=False),
    sa.Column("at", UtcDateTime, nullable=False),
    sa.Column("trigger", sa.String(24), nullable=False),
    sa.Column("from_state", sa.String(24), nullable=True),
    sa.Column("to_state", sa.String(24), nullable=False),
    sa.Column("worker_id", sa.String(200), nullable=True),
    sa.Column("reason", sa.Text, nullable=True),
    sa.CheckConstraint(_in("trigger", TRIGGER_VALUES), name="trigger"),
    sa.Index(None, "letter_id", "id"),
)

# Every message a letter was sent to an archive that answers later with (Fiks Arkiv over
# Fiks IO), and the reply that decides it. A reply that comes before its send is recorded
# gets its row first (``letter_id`` NULL) and is matched when the send is; so no reply is
# ever dropped for coming early. ``reply`` is the most decisive kind seen (replies.ReplyKind).
archive_messages = sa.Table(
    "archive_messages",
    metadata,
    sa.Column("message_id", sa.String(64), primary_key=True),
    sa.Column("letter_id", sa.Integer, sa.ForeignKey("forsendelser.id"), nullable=True),
    sa.Column("archive", sa.String(64), nullable=True),
    sa.Column("sent_at", UtcDateTime, nullable=True),
    sa.Column("reply", sa.String(16), nullable=True),
    sa.Column("reply_id", sa.String(64), nullable=True),
    sa.Column("reply_at", UtcDateTime, nullable=True),
    sa.Column("reference", sa.Text, nullable=True),
    sa.Column("detail", sa.Text, nullable=True),
    sa.Index(None, "letter_id"),
)

# One row per (condition, subject): the alert engine's AlertState. A condition that clears
# and later holds again overwrites its row, so the table stays as small as the deployment.
alert_states = sa.Table(
    "alert_states",
    metadata,
    sa.Column("condition", sa.String(40), primary_key=True),
    sa.Column("subject", sa.String(100), primary_key=True),
    sa.Column("account", sa.String(64), nullable=True),
    sa.Column("first_fired_at", UtcDateTime, nullable=False),
    sa.Column("last_sent_at", UtcDateTime, nullable=False),
    sa.Column("resolved_at", UtcDateTime, nullable=True),
    sa.Column("details", sa.Text, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    sa.Index(None, "resolved_at"),
)

# The last poll per account, so that "polls failing for 15 minutes" survives a restart and
# works for poll-once from cron as well.
account_polls = sa.Table(
    "account_polls",
    metadata,
    sa.Column("account", sa.String(64), primary_key=True),
    sa.Column("last_polled_at", UtcDateTime, nullable=False),
    sa.Column("last_ok_at", UtcDateTime, nullable=True),
    sa.Column("failing_since", UtcDateTime, nullable=True),
    sa.Column("last_error_kind", sa.String(100), nullable=True),
)
