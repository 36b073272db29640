"""The ledger's engine: building it from the config, and turning database errors into ours.

SQLite: WAL, a busy timeout, ``synchronous=FULL`` (a committed "archived" must survive a
power cut, or the letter would be imported twice) and ``BEGIN IMMEDIATE`` for writes, so a
claim takes the write lock before it reads. A write whose loss loses nothing
(``states.NOT_DURABLE``: a claim, which only takes a lease; a receipt's record, which only
spares sending the receipt again) is committed with ``synchronous=NORMAL``
(``writing(durable=False)``): it survives the process being killed, and a power cut can only
undo it whole (WAL keeps the file consistent), leaving the letter claimable, or archived and
due for its receipt, as before. The next durable commit syncs it with everything before it.
That leaves one WAL sync per letter: "archived".
PostgreSQL commits every write synchronously: there another daemon could claim a letter
whose claim a crashed server forgot.

One daemon per SQLite file; its own writers take turns on a lock of the engine's before
SQLite's, so a writer waiting wakes as the one before it commits instead of polling in
SQLite's busy handler (sleeps of 1 to 100 ms; strace counted five a letter with four
workers).

PostgreSQL: the password comes from the config's Secret and is given to the driver
directly, never put into a URL string that could be logged.
"""

from __future__ import annotations

import errno
import os
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event, exc
from sqlalchemy.engine import URL, Engine, make_url

from svarinn_daemon.common import untrusted_directory
from svarinn_daemon.config import LedgerConfig
from svarinn_daemon.errors import ConfigError, LedgerError, LedgerUnavailableError
from svarinn_daemon.ledger.direct import execute_sql

READ_ONLY = "svarinn_read_only"
DURABLE = "svarinn_durable"  # execution option: False for a write only a power cut may undo
_SYNCHRONOUS = "svarinn_synchronous"  # a SQLite connection's level (connection info)
_WAL = "svarinn_wal"  # whether SQLite took WAL mode (connection info)
WRITE_LOCK = "svarinn_write_lock"  # execution option: the engine's writers' lock (SQLite)
DEFAULT_BUSY_TIMEOUT = timedelta(seconds=30)
DEFAULT_CONNECT_TIMEOUT = timedelta(seconds=10)


def describe_url(url: URL) -> str:
    """The URL for messages: never a password."""
    return url.render_as_string(hide_password=True)


def build_engine(
    config: LedgerConfig,
    *,
    busy_timeout: timedelta = DEFAULT_BUSY_TIMEOUT,
    connect_timeout: timedelta = DEFAULT_CONNECT_TIMEOUT,
) -> Engine:
    url = make_url(config.url)
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url, busy_timeout)
    connect_args: dict[str, Any] = {"connect_timeout": max(1, int(connect_timeout.total_seconds()))}
    if config.password is not None:
        connect_args["password"] = config.password.reveal()
    engine = sa.create_engine(
        url.set(password=None),
        connect_args=connect_args,
        pool_pre_ping=True,
        hide_parameters=True,
    )
    event.listen(engine, "handle_error", _read_only_is_a_lost_connection)
    return engine


# SQLSTATEs that say this connection's server can no longer take our writes: a standby (or a
# primary demoted after a failover), or a server shutting down. The pool's pre-ping passes
# on such a connection, so without this it would be used again and again until a restart.
_STALE_SERVER = frozenset({"25006", "57P01", "57P02", "57P03"})


def _read_only_is_a_lost_connection(context: Any) -> None:
    """Treat the connection as lost (the pool drops it, and every other connection opened
    before), so the next one goes to the writable host of a multi-host URL."""
    sqlstate = getattr(context.original_exception, "sqlstate", None)
    if sqlstate in _STALE_SERVER:
        context.is_disconnect = True
        context.invalidate_pool_on_disconnect = True


def _sqlite_engine(url: URL, busy_timeout: timedelta) -> Engine:
    database = url.database or ""
    if database and database != ":memory:" and not database.startswith("file:"):
        parent = Path(database).parent
        if why := untrusted_directory(parent):  # else the file could be swapped after a check
            raise ConfigError(
                f"the ledger's directory is not private: {why}; another user could swap the "
                "ledger file in it",
                key="ledger.url",
            )
        try:
            if not parent.exists():
                parent.mkdir(mode=0o700, parents=True)
                os.chmod(parent, 0o700)  # mkdir's mode is masked by the umask
        except OSError as err:
            raise LedgerUnavailableError(
                f"cannot create the ledger directory {parent}: {err.strerror}"
            ) from None
        _create_private(Path(database))
    engine = sa.create_engine(
        url,
        connect_args={"timeout": busy_timeout.total_seconds(), "check_same_thread": False},
        hide_parameters=True,
        # The connection used last is the one whose page cache is still valid (SQLite drops a
        # connection's whole cache when another connection wrote): reuse it first.
        pool_use_lifo=True,
        execution_options={WRITE_LOCK: _Turns(threading.RLock(), busy_timeout)},
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, record: Any) -> None:
        # Take over transaction control from the sqlite3 module (it would defer BEGIN).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            (mode,) = cursor.execute("PRAGMA journal_mode=WAL").fetchone()
            cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout.total_seconds() * 1000)}")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA foreign_keys=ON")
        finally:
            cursor.close()
        record.info[_SYNCHRONOUS] = "FULL"
        # Outside WAL (a filesystem without shared memory) NORMAL could corrupt the file in
        # a power cut: every write is then durable.
        record.info[_WAL] = str(mode).lower() == "wal"

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        options = conn.get_execution_options()
        if options.get(READ_ONLY, False):
            execute_sql(conn, "BEGIN")
            return
        # Every write sets the level it needs (SQLite refuses a change inside a transaction),
        # so a connection a claim used never commits a durable write with less.
        info = conn.connection.info
        level = "FULL" if options.get(DURABLE, True) or not info.get(_WAL) else "NORMAL"
        if info.get(_SYNCHRONOUS) != level:
            execute_sql(conn, f"PRAGMA synchronous={level}")
            info[_SYNCHRONOUS] = level
        execute_sql(conn, "BEGIN IMMEDIATE")

    return engine


def _create_private(path: Path) -> None:
    """Create the SQLite file readable by the daemon's user only (it names senders and titles);
    SQLite gives its -wal and -shm files the same mode. A file (or -wal, -shm) another user
    owns, or a symbolic link, FIFO or device planted in its place, is refused: whoever owns the
    ledger can read every letter's metadata and rewrite what the daemon believes it archived
    (and a FIFO with no reader would hold the start forever, hence O_NONBLOCK)."""
    for candidate, create in ((path, True), (path.with_name(path.name + "-wal"), False),
                              (path.with_name(path.name + "-shm"), False)):  # fmt: skip
        flags = os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY
        flags |= os.O_CREAT if create else 0
        try:
            fd = os.open(candidate, flags, 0o600)
        except FileNotFoundError:
            continue
        except OSError as err:
            if err.errno == errno.ELOOP:
                raise ConfigError(
                    f"{candidate} is a symbolic link: the ledger is not followed through links",
                    key="ledger.url",
                ) from None
            if err.errno == errno.ENXIO:  # a FIFO nobody reads
                raise _not_a_file(candidate) from None
            raise LedgerUnavailableError(
                f"cannot create the ledger file {candidate}: {err.strerror}"
            ) from None
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise _not_a_file(candidate)
            if info.st_uid != os.geteuid():
                raise ConfigError(
                    f"{candidate} belongs to uid {info.st_uid}, not to this daemon's user: "
                    "another user made it (or the daemon runs as the wrong user)",
                    key="ledger.url",
                )
            if info.st_mode & 0o077:
                os.fchmod(fd, 0o600)  # ours, but readable by others: make it private
        finally:
            os.close(fd)


def _not_a_file(path: Path) -> ConfigError:
    return ConfigError(
        f"{path} is not a regular file (a FIFO, device or socket in the ledger's place)",
        key="ledger.url",
    )


@contextmanager
def database_errors(engine: Engine, doing: str) -> Iterator[None]:
    """Convert SQLAlchemy/DBAPI errors into LedgerErrors, naming the database but no secret."""
    try:
        yield
    except exc.IntegrityError as err:
        raise LedgerError(f"ledger {doing}: integrity error: {_first_line(err)}") from None
    except (exc.OperationalError, exc.InterfaceError, exc.DBAPIError) as err:
        raise LedgerUnavailableError(
            f"ledger database {describe_url(engine.url)} failed while {doing}: {_first_line(err)}"
        ) from None
    except exc.SQLAlchemyError as err:
        raise LedgerError(f"ledger {doing}: {_first_line(err)}") from None


def _first_line(err: exc.SQLAlchemyError) -> str:
    orig = getattr(err, "orig", None)
    text = str(orig if orig is not None else err).strip().splitlines()
    return (text[0] if text else type(err).__name__)[:300]


@contextmanager
def reading(engine: Engine, doing: str) -> Iterator[sa.Connection]:
    """A read-only transaction (SQLite: a deferred BEGIN that takes no write lock)."""
    with (
        database_errors(engine, doing),
        engine.connect().execution_options(**{READ_ONLY: True}) as conn,
        conn.begin(),
    ):
        yield conn


@contextmanager
def writing(engine: Engine, doing: str, *, durable: bool = True) -> Iterator[sa.Connection]:
    """A write transaction; database errors become typed ledger errors. On SQLite the
    engine's writers take turns (the lock is reentrant: a writer opening a second write
    transaction meets SQLite's own lock and busy timeout, as before). ``durable`` False: a
    write a power cut may undo whole (a lease taken; see the module's docstring)."""
    turns = engine.get_execution_options().get(WRITE_LOCK)
    with (
        _turn(turns, engine, doing),
        database_errors(engine, doing),
        engine.connect().execution_options(**{DURABLE: durable}) as conn,
        conn.begin(),
    ):
        yield conn


@dataclass(frozen=True)
class _Turns:
    lock: threading.RLock
    timeout: timedelta  # as SQLite's busy timeout


@contextmanager
def _turn(turns: _Turns | None, engine: Engine, doing: str) -> Iterator[None]:
    if turns is None:
        yield
        return
    seconds = turns.timeout.total_seconds()
    if not turns.lock.acquire(timeout=seconds):
        raise LedgerUnavailableError(
            f"ledger database {describe_url(engine.url)} failed while {doing}: waited more "
            f"than {seconds:g}s for the daemon's other writer (which may itself be waiting "
            "for another connection's lock)"
        )
    try:
        yield
    finally:
        turns.lock.release()


def dialect_insert(conn: sa.Connection, table: sa.Table) -> Any:
    """The INSERT of the dialect in use, which has ON CONFLICT; imports that dialect only
    (SQLAlchemy's PostgreSQL dialect costs a SQLite daemon 2 MB)."""
    dialect = conn.dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(table)
    if dialect == "sqlite":
        from sqlalchemy.dialects import sqlite

        return sqlite.insert(table)
    raise LedgerError(f"the ledger does not support {dialect}")  # see build_engine


def upsert(conn: sa.Connection, table: sa.Table, values: dict[str, Any]) -> None:
    """INSERT, or UPDATE the row with the same primary key (SQLite and PostgreSQL)."""
    insert = dialect_insert(conn, table).values(**values)
    keys = [c.name for c in table.primary_key.columns]
    update = {k: insert.excluded[k] for k in values if k not in keys}
    conn.execute(insert.on_conflict_do_update(index_elements=keys, set_=update))
