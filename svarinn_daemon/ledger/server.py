"""Which database server answers for the ledger, and whether it takes writes
(``check-config --online``): with a multi-host PostgreSQL URL libpq picks the host, and a
standby in recovery answers reads but no write the daemon needs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from svarinn_daemon.config import LedgerConfig
from svarinn_daemon.ledger.database import build_engine, database_errors

__all__ = ["ServerAnswer", "ask_server"]


@dataclass(frozen=True)
class ServerAnswer:
    where: str  # host:port that answered, or the SQLite file
    writable: bool
    in_recovery: bool | None  # PostgreSQL's pg_is_in_recovery(); None for SQLite
    exists: bool = True  # SQLite: the file is there (else the first run creates it)


def ask_server(config: LedgerConfig) -> ServerAnswer:
    """Connect once and ask; raises LedgerUnavailableError when no host answers. A SQLite
    file is only looked at: opening it would create it."""
    url = make_url(config.url)
    if url.get_backend_name() == "sqlite":
        path = Path(url.database or "")
        exists = path.is_file()
        return ServerAnswer(str(path), exists, None, exists=exists)
    engine = build_engine(config)
    try:
        with database_errors(engine, "answering check-config"), engine.connect() as conn:
            row = conn.execute(
                sa.text(
                    "SELECT coalesce(host(inet_server_addr()), 'local socket'), "
                    "inet_server_port(), pg_is_in_recovery(), "
                    "current_setting('transaction_read_only')"
                )
            ).one()
    finally:
        engine.dispose()
    host, port, in_recovery, read_only = row
    where = f"{host}:{port}" if port is not None else str(host)
    return ServerAnswer(where, not in_recovery and read_only == "off", bool(in_recovery))
