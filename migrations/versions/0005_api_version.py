"""Which SvarInn API version listed a letter (v1 MottakService or v2), beside its raw JSON.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Letters listed before this revision were all listed by v1.
    op.add_column(
        "forsendelser", sa.Column("api", sa.String(8), nullable=False, server_default="v1")
    )


def downgrade() -> None:
    op.execute("ALTER TABLE forsendelser DROP COLUMN api")
