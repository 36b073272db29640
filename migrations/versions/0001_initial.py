"""The ledger: forsendelser and their append-only event trail.

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

STATES = (
    "seen",
    "claimed",
    "archived",
    "acknowledged",
    "retry_scheduled",
    "failed_permanently",
    "reported",
)
TRIGGERS = (
    "see",
    "claim",
    "archive",
    "acknowledge",
    "schedule_retry",
    "fail",
    "report",
    "release",
    "expire",
    "seen_again",
    "operator_retry",
)
APPEND_ONLY = "forsendelse_events is append-only: the audit trail is never changed"


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _time(name: str, nullable: bool = True) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "forsendelser",
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
        _time("lease_expires_at"),
        _time("next_attempt_at"),
        _time("seen_at", nullable=False),
        _time("claimed_at"),
        _time("archived_at"),
        _time("acknowledged_at"),
        _time("failed_at"),
        _time("reported_at"),
        _time("updated_at", nullable=False),
        sa.Column("raw", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_forsendelser"),
        sa.UniqueConstraint(
            "account", "forsendelse_id", name="uq_forsendelser_account_forsendelse_id"
        ),
        sa.CheckConstraint(_in("state", STATES), name="ck_forsendelser_state"),
    )
    op.create_index("ix_forsendelser_state_seen_at_id", "forsendelser", ["state", "seen_at", "id"])
    op.create_index("ix_forsendelser_lease_expires_at", "forsendelser", ["lease_expires_at"])
    op.create_table(
        "forsendelse_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("letter_id", sa.Integer, nullable=False),
        _time("at", nullable=False),
        sa.Column("trigger", sa.String(24), nullable=False),
        sa.Column("from_state", sa.String(24), nullable=True),
        sa.Column("to_state", sa.String(24), nullable=False),
        sa.Column("worker_id", sa.String(200), nullable=True),
        sa.Column("reason", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_forsendelse_events"),
        sa.ForeignKeyConstraint(
            ["letter_id"],
            ["forsendelser.id"],
            name="fk_forsendelse_events_letter_id_forsendelser",
        ),
        sa.CheckConstraint(_in("trigger", TRIGGERS), name="ck_forsendelse_events_trigger"),
    )
    op.create_index("ix_forsendelse_events_letter_id_id", "forsendelse_events", ["letter_id", "id"])
    _create_append_only_guard()


def downgrade() -> None:
    _drop_append_only_guard()
    op.drop_index("ix_forsendelse_events_letter_id_id", table_name="forsendelse_events")
    op.drop_table("forsendelse_events")
    op.drop_index("ix_forsendelser_lease_expires_at", table_name="forsendelser")
    op.drop_index("ix_forsendelser_state_seen_at_id", table_name="forsendelser")
    op.drop_table("forsendelser")


def _create_append_only_guard() -> None:
    """The database itself refuses UPDATE and DELETE on the audit trail."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION forsendelse_events_append_only() RETURNS trigger "
            f"LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION '{APPEND_ONLY}'; END $$"
        )
        op.execute(
            "CREATE TRIGGER forsendelse_events_append_only BEFORE UPDATE OR DELETE "
            "ON forsendelse_events FOR EACH ROW "
            "EXECUTE FUNCTION forsendelse_events_append_only()"
        )
        return
    for verb in ("update", "delete"):
        op.execute(
            f"CREATE TRIGGER forsendelse_events_no_{verb} BEFORE {verb.upper()} "
            f"ON forsendelse_events BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY}'); END"
        )


def _drop_append_only_guard() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER forsendelse_events_append_only ON forsendelse_events")
        op.execute("DROP FUNCTION forsendelse_events_append_only()")
        return
    for verb in ("update", "delete"):
        op.execute(f"DROP TRIGGER forsendelse_events_no_{verb}")
