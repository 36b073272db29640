"""Letters sent to an archive that answers later (Fiks Arkiv over Fiks IO), and its replies.

A new state, ``sent`` (waiting for the archive's reply), and two triggers (``send``,
``archive_received``) join the check constraints; ``forsendelser.sent_at`` says when a letter
was last sent; ``archive_messages`` keeps every message id a letter was sent with and the
reply that decided it.

SQLite cannot alter a check constraint, and a batch copy of ``forsendelser`` would trip over
``forsendelse_events``' foreign key (see 0006). Widening a check constraint changes nothing
stored, so the table's SQL text is changed in place, as SQLite's documentation describes for
such changes ("ALTER TABLE", section 7: ``writable_schema`` and a new ``schema_version``).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

OLD_STATES = (
    "seen",
    "claimed",
    "archived",
    "acknowledged",
    "retry_scheduled",
    "failed_permanently",
    "reported",
)
NEW_STATES = (*OLD_STATES, "sent")
OLD_TRIGGERS = (
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
NEW_TRIGGERS = (*OLD_TRIGGERS, "send", "archive_received")
CHECKS = (
    ("forsendelser", "ck_forsendelser_state", "state", OLD_STATES, NEW_STATES),
    ("forsendelse_events", "ck_forsendelse_events_trigger", "trigger", OLD_TRIGGERS, NEW_TRIGGERS),
)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _sqlite_checks(old_index: int, new_index: int) -> None:
    conn = op.get_bind()
    version = conn.exec_driver_sql("PRAGMA schema_version").scalar_one()
    conn.exec_driver_sql("PRAGMA writable_schema=ON")
    for check in CHECKS:
        table, _name, column = check[0], check[1], check[2]
        before, after = _in(column, check[3 + old_index]), _in(column, check[3 + new_index])
        sql = conn.execute(
            sa.text("SELECT sql FROM sqlite_master WHERE type='table' AND name=:t"), {"t": table}
        ).scalar_one()
        if before not in sql:
            raise RuntimeError(f"{table}: its check constraint is not the one 0007 expects")
        conn.execute(
            sa.text("UPDATE sqlite_master SET sql=:sql WHERE type='table' AND name=:t"),
            {"sql": sql.replace(before, after), "t": table},
        )
    conn.exec_driver_sql(f"PRAGMA schema_version={int(version) + 1}")
    conn.exec_driver_sql("PRAGMA writable_schema=OFF")


def _checks(old_index: int, new_index: int) -> None:
    if op.get_bind().dialect.name == "sqlite":
        _sqlite_checks(old_index, new_index)
        return
    for table, name, column, *values in CHECKS:
        op.drop_constraint(name, table, type_="check")
        op.create_check_constraint(name, table, _in(column, values[new_index]))


def upgrade() -> None:
    _checks(0, 1)
    op.add_column("forsendelser", sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "archive_messages",
        sa.Column("message_id", sa.String(64), nullable=False),
        sa.Column("letter_id", sa.Integer, nullable=True),
        sa.Column("archive", sa.String(64), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reply", sa.String(16), nullable=True),
        sa.Column("reply_id", sa.String(64), nullable=True),
        sa.Column("reply_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reference", sa.Text, nullable=True),
        sa.Column("detail", sa.Text, nullable=True),
        sa.ForeignKeyConstraint(
            ["letter_id"],
            ["forsendelser.id"],
            name="fk_archive_messages_letter_id_forsendelser",
        ),
        sa.PrimaryKeyConstraint("message_id", name="pk_archive_messages"),
    )
    op.create_index("ix_archive_messages_letter_id", "archive_messages", ["letter_id"])


def downgrade() -> None:
    conn = op.get_bind()
    used = conn.execute(
        sa.text(
            "SELECT (SELECT COUNT(*) FROM forsendelser WHERE state = 'sent')"
            " + (SELECT COUNT(*) FROM forsendelse_events"
            " WHERE trigger IN ('send', 'archive_received') OR to_state = 'sent')"
        )
    ).scalar_one()
    if used:
        raise RuntimeError(
            "the ledger has letters sent to an archive that answers later (state sent, or in "
            "the append-only audit trail): revision 0006 cannot hold them"
        )
    op.drop_index("ix_archive_messages_letter_id", table_name="archive_messages")
    op.drop_table("archive_messages")
    op.execute("ALTER TABLE forsendelser DROP COLUMN sent_at")
    # A letter still sent (or an event of the new kinds) would break the old constraints:
    # the downgrade refuses rather than rewrite history.
    _checks(1, 0)
