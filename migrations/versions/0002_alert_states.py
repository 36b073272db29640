"""Alert state (one row per condition and subject) and the last poll per account.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _time(name: str, nullable: bool = True) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "alert_states",
        sa.Column("condition", sa.String(40), nullable=False),
        sa.Column("subject", sa.String(100), nullable=False),
        sa.Column("account", sa.String(64), nullable=True),
        _time("first_fired_at", nullable=False),
        _time("last_sent_at", nullable=False),
        _time("resolved_at"),
        sa.Column("details", sa.Text, nullable=False),
        _time("updated_at", nullable=False),
        sa.PrimaryKeyConstraint("condition", "subject", name="pk_alert_states"),
    )
    op.create_index("ix_alert_states_resolved_at", "alert_states", ["resolved_at"])
    op.create_table(
        "account_polls",
        sa.Column("account", sa.String(64), nullable=False),
        _time("last_polled_at", nullable=False),
        _time("last_ok_at"),
        _time("failing_since"),
        sa.Column("last_error_kind", sa.String(100), nullable=True),
        sa.PrimaryKeyConstraint("account", name="pk_account_polls"),
    )


def downgrade() -> None:
    op.drop_table("account_polls")
    op.drop_index("ix_alert_states_resolved_at", table_name="alert_states")
    op.drop_table("alert_states")
