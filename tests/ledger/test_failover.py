"""A PostgreSQL host that became read-only (a standby, a primary demoted after a failover) is
an outage of the ledger, and one that ends without a restart: the connections to it are
dropped, so the next one goes where writes are taken (issue #28's SQLSTATE 25006)."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy.engine import make_url

from svarinn_daemon.config import LedgerConfig
from svarinn_daemon.errors import LedgerUnavailableError
from svarinn_daemon.ledger import open_ledger
from tests.support.ledger_support import record_seen


def _admin(url: str, statement: str) -> None:
    parts = make_url(url)
    with psycopg.connect(
        host=parts.host, port=parts.port, user="postgres", dbname="postgres", autocommit=True
    ) as conn:
        conn.execute(statement)


def test_connections_to_a_read_only_server_are_dropped_not_reused(postgres_url: str) -> None:
    database = make_url(postgres_url).database
    ledger = open_ledger(LedgerConfig(url=postgres_url), migrate_schema=True)
    try:
        record_seen(ledger, "k", "before")
        # The server turns read-only for new sessions; the pool's connections are new ones.
        _admin(postgres_url, f'ALTER DATABASE "{database}" SET default_transaction_read_only = on')
        ledger.engine.dispose()
        with pytest.raises(LedgerUnavailableError, match="read-only"):
            record_seen(ledger, "k", "during")
        # Writable again (the standby was promoted, or the URL's next host answers): the
        # read-only connections must not come back from the pool.
        _admin(postgres_url, f'ALTER DATABASE "{database}" RESET default_transaction_read_only')
        record_seen(ledger, "k", "after")
        assert {x.forsendelse_id for x in ledger.list()} == {"before", "after"}
    finally:
        ledger.close()
        _admin(postgres_url, f'ALTER DATABASE "{database}" RESET default_transaction_read_only')
