"""When a letter's current run of failures began and when SvarUt last heard of it.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_COLUMNS = ("failing_since", "temporary_reported_at")


def upgrade() -> None:
    for name in _COLUMNS:
        op.add_column("forsendelser", sa.Column(name, sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    # Plain ALTER TABLE ... DROP COLUMN (SQLite 3.35+): a batch copy of the table would trip
    # over forsendelse_events' foreign key.
    for name in reversed(_COLUMNS):
        op.execute(f"ALTER TABLE forsendelser DROP COLUMN {name}")
