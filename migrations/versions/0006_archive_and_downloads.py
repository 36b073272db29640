"""The archive a letter is routed to, its corrupt downloads as a count, and claims in due order.

``archive``: the archive ``[[routes]]`` chose when the letter was listed (the daemon routes
letters seen before this revision, and re-routes unfinished ones, at start), so a claim can
pass over letters whose archive is paused without pausing the others.

``found_done`` (and when): a letter the archive already had, or whose receipt SvarUt answered
with 404, while the ledger thought otherwise: what a restore or a lost answer changed.

``download_attempts``: how many downloads of the letter came back corrupt (sha256 or size
mismatch, truncated or malformed). It was counted from the wording of event reasons; the
existing history is counted once here, the daemon keeps the column from now on.

``due_at``: when the letter's work fell (or falls) due: when it was listed, or its latest
retry time. Claims go in this order, so letters that fail again and again (each with its
backoff) wait behind the others instead of winning every claim by their age.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_OLD_INDEX = "ix_forsendelser_state_receipt_withheld_at_seen_at_id"
_DUE_INDEX = "ix_forsendelser_state_receipt_withheld_at_due_at_id"


def upgrade() -> None:
    op.add_column("forsendelser", sa.Column("archive", sa.String(64), nullable=True))
    op.add_column("forsendelser", sa.Column("found_done", sa.String(16), nullable=True))
    op.add_column(
        "forsendelser", sa.Column("found_done_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column(
        "forsendelser",
        sa.Column("download_attempts", sa.Integer, nullable=False, server_default="0"),
    )
    # The one place the old wording is read: a retry's reason was "Kind: download_again: ...".
    op.execute(
        "UPDATE forsendelser SET download_attempts = ("
        " SELECT COUNT(*) FROM forsendelse_events e"
        " WHERE e.letter_id = forsendelser.id AND e.trigger = 'schedule_retry'"
        " AND e.reason LIKE '%: download_again: %')"
    )
    # NOT NULL needs a default for the rows there are (SQLite cannot alter a column in place,
    # and a batch copy of the table would trip over forsendelse_events' foreign key); each
    # row gets its own value at once, and PostgreSQL drops the default again.
    op.add_column(
        "forsendelser",
        sa.Column(
            "due_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.text("'1970-01-01 00:00:00'"),
        ),
    )
    op.execute("UPDATE forsendelser SET due_at = COALESCE(next_attempt_at, seen_at)")
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column("forsendelser", "due_at", server_default=None)
    op.drop_index(_OLD_INDEX, table_name="forsendelser")
    op.create_index(_DUE_INDEX, "forsendelser", ["state", "receipt_withheld_at", "due_at", "id"])


def downgrade() -> None:
    op.drop_index(_DUE_INDEX, table_name="forsendelser")
    op.create_index(_OLD_INDEX, "forsendelser", ["state", "receipt_withheld_at", "seen_at", "id"])
    # Plain ALTER TABLE ... DROP COLUMN (SQLite 3.35+), as in 0003.
    op.execute("ALTER TABLE forsendelser DROP COLUMN due_at")
    op.execute("ALTER TABLE forsendelser DROP COLUMN download_attempts")
    op.execute("ALTER TABLE forsendelser DROP COLUMN found_done_at")
    op.execute("ALTER TABLE forsendelser DROP COLUMN found_done")
    op.execute("ALTER TABLE forsendelser DROP COLUMN archive")
