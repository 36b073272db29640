"""Alembic environment: run by ``svarinn_daemon.ledger.schema`` with an open connection.

For developers, ``alembic -x url=sqlite:///tmp/dev.sqlite3 ...`` with a minimal alembic.ini
pointing script_location here also works: then the URL comes from ``-x url=``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from svarinn_daemon.ledger.models import metadata


def _run(connection: sa.Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    url = context.get_x_argument(as_dictionary=True).get("url")
    if not url:
        raise SystemExit("give the database as -x url=... (or run `svarinn-daemon migrate`)")
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        _run(conn)
    engine.dispose()
