"""Schema versions: running the Alembic migrations and refusing a database we do not know.

The migrations live in the repository's top-level ``migrations/`` directory; setup.py maps
it to the package ``svarinn_daemon.migrations``, so it is found the same way in a source
checkout, an editable install and an installed wheel. No alembic.ini is needed.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from svarinn_daemon.errors import ConfigError, SchemaMismatchError
from svarinn_daemon.ledger.database import database_errors, describe_url, reading
from svarinn_daemon.ledger.models import SCHEMA_REVISION
from svarinn_daemon.logs import get_logger

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig
    from alembic.script import ScriptDirectory

log = get_logger(__name__)

# Serialises two daemons migrating one PostgreSQL database at the same start.
_PG_MIGRATION_LOCK = 0x53564152  # "SVAR"


@dataclass(frozen=True)
class SchemaState:
    current: str | None
    head: str


_NOT_INSTALLED = (
    "this svarinn-daemon installation has no ledger migrations ({what}): it was built without "
    "the repository's top-level migrations/ directory, which setup.py maps into the package "
    "svarinn_daemon.migrations; reinstall from a wheel or sdist of the whole repository"
)


def script_location() -> Path:
    """The installed migrations; a build that left them out is refused, not a traceback."""
    try:
        package = importlib.import_module("svarinn_daemon.migrations")
    except ModuleNotFoundError as exc:
        if exc.name != "svarinn_daemon.migrations":
            raise
        raise ConfigError(_NOT_INSTALLED.format(what="no svarinn_daemon.migrations")) from None
    assert package.__file__ is not None
    return Path(package.__file__).resolve().parent


def alembic_config(connection: sa.Connection | None = None) -> AlembicConfig:
    from alembic.config import Config as AlembicConfig

    config = AlembicConfig()
    config.set_main_option("script_location", str(script_location()))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def _scripts() -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str:
    head = _scripts().get_current_head()
    if head is None:
        raise ConfigError(_NOT_INSTALLED.format(what=f"no revisions in {script_location()}"))
    return head


def _inspect(connection: sa.Connection, engine: Engine) -> SchemaState:
    """The database's revision, refusing a foreign or newer schema."""
    from alembic.runtime.migration import MigrationContext
    from alembic.util.exc import CommandError

    scripts = _scripts()
    head = head_revision()
    current = MigrationContext.configure(connection).get_current_revision()
    where = describe_url(engine.url)
    if current is None:
        tables = [t for t in sa.inspect(connection).get_table_names() if t != "alembic_version"]
        if tables:
            raise SchemaMismatchError(
                f"the ledger database {where} has tables ({', '.join(sorted(tables)[:5])}) but "
                "no svarinn-daemon schema version: it is not a ledger, or not this program's; "
                "check [ledger] url"
            )
        return SchemaState(None, head)
    try:
        scripts.get_revision(current)
    except CommandError:
        raise SchemaMismatchError(
            f"the ledger database {where} has schema revision {current}, which this "
            f"svarinn-daemon does not know (its newest is {head}): a newer version migrated "
            "it; upgrade svarinn-daemon (downgrading the database would lose data)"
        ) from None
    return SchemaState(current, head)


def check_schema(engine: Engine) -> SchemaState:
    """Raise SchemaMismatchError unless the database is exactly at this code's head.

    The usual case, a ledger at this code's revision, is one query without alembic (which
    costs a command line a tenth of a second to import)."""
    with reading(engine, "reading the schema version") as connection:
        if _stored_revision(connection) == SCHEMA_REVISION:
            return SchemaState(SCHEMA_REVISION, SCHEMA_REVISION)
        state = _inspect(connection, engine)
    if state.current is None:
        raise SchemaMismatchError(
            f"the ledger database {describe_url(engine.url)} is empty: "
            "run `svarinn-daemon migrate` to create its tables"
        )
    if state.current != state.head:
        raise SchemaMismatchError(
            f"the ledger database {describe_url(engine.url)} has schema revision "
            f"{state.current}, older than this svarinn-daemon's {state.head}: "
            "run `svarinn-daemon migrate`"
        )
    return state


def _stored_revision(connection: sa.Connection) -> str | None:
    if not sa.inspect(connection).has_table("alembic_version"):
        return None
    rows = connection.execute(sa.text("SELECT version_num FROM alembic_version")).all()
    return str(rows[0][0]) if len(rows) == 1 else None


def needs_migration(engine: Engine) -> bool:
    """Whether the database is anywhere but at this code's revision (one query, no alembic)."""
    with reading(engine, "reading the schema version") as connection:
        return _stored_revision(connection) != SCHEMA_REVISION


def migrate(engine: Engine) -> SchemaState:
    """Upgrade to head in one transaction; returns the revision before and the head."""
    if not needs_migration(engine):  # up to date: no alembic needed
        return SchemaState(SCHEMA_REVISION, SCHEMA_REVISION)
    with database_errors(engine, "migrating the schema"), engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(
                sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATION_LOCK}
            )
        before = _inspect(connection, engine)
        if before.current != before.head:
            from alembic import command

            command.upgrade(alembic_config(connection), "head")
    if before.current != before.head:
        log.info(
            "ledger.migrated",
            ledger=describe_url(engine.url),
            **{"from": before.current},
            to=before.head,
        )
    return before


def downgrade(engine: Engine, revision: str = "base") -> None:
    """For tests and emergencies: Alembic downgrade, which drops data."""
    from alembic import command

    with database_errors(engine, "downgrading the schema"), engine.begin() as connection:
        command.downgrade(alembic_config(connection), revision)
