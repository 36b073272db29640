"""The ledger: durable per-forsendelse state on SQLite or PostgreSQL.

Every forsendelse id is written down before anything is done with it, and every step's
result before the next step starts. See :mod:`.states` for the state machine and
:class:`.repository.Ledger` for the verbs.
"""

from __future__ import annotations

from datetime import timedelta

from svarinn_daemon.common import Clock, utc_now
from svarinn_daemon.config import LedgerConfig
from svarinn_daemon.ledger.database import (
    DEFAULT_CONNECT_TIMEOUT,
    build_engine,
    database_errors,
    describe_url,
)
from svarinn_daemon.ledger.records import (
    Backlog,
    Claim,
    Letter,
    LetterEvent,
    ReplyOutcome,
    ReplyResult,
    SeenResult,
    Sighting,
    StateCount,
)
from svarinn_daemon.ledger.repository import Ledger
from svarinn_daemon.ledger.schema import SchemaState, check_schema, head_revision, migrate
from svarinn_daemon.ledger.states import SeenAction, State, Trigger, Work


def open_ledger(
    config: LedgerConfig,
    *,
    migrate_schema: bool = False,
    clock: Clock = utc_now,
    busy_timeout: timedelta | None = None,
    connect_timeout: timedelta = DEFAULT_CONNECT_TIMEOUT,
) -> Ledger:
    """Connect and check the schema (or first migrate it to this code's head).

    Raises LedgerUnavailableError when the database cannot be reached and
    SchemaMismatchError when its schema is foreign, older (without ``migrate_schema``)
    or newer than this code; both messages say what to do.
    """
    engine = build_engine(
        config, busy_timeout=busy_timeout or config.busy_timeout, connect_timeout=connect_timeout
    )
    try:
        with database_errors(engine, "connecting"), engine.connect():
            pass
        if migrate_schema:
            migrate(engine)
        check_schema(engine)
    except BaseException:
        engine.dispose()
        raise
    return Ledger(engine, clock=clock)


__all__ = [
    "Backlog",
    "Claim",
    "Clock",
    "Ledger",
    "Letter",
    "LetterEvent",
    "ReplyOutcome",
    "ReplyResult",
    "SchemaState",
    "SeenAction",
    "SeenResult",
    "Sighting",
    "State",
    "StateCount",
    "Trigger",
    "Work",
    "build_engine",
    "check_schema",
    "describe_url",
    "head_revision",
    "migrate",
    "open_ledger",
    "utc_now",
]
