"""Shadow mode: since when a letter's receipt is withheld (receipts = false on its account).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_INDEX = "ix_forsendelser_state_receipt_withheld_at_seen_at_id"


def upgrade() -> None:
    op.add_column(
        "forsendelser", sa.Column("receipt_withheld_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.create_index(_INDEX, "forsendelser", ["state", "receipt_withheld_at", "seen_at", "id"])


def downgrade() -> None:
    op.drop_index(_INDEX, table_name="forsendelser")
    # Plain ALTER TABLE ... DROP COLUMN (SQLite 3.35+), as in 0003.
    op.execute("ALTER TABLE forsendelser DROP COLUMN receipt_withheld_at")
