"""The test tooling's own PostgreSQL server answers and hands out separate databases."""

import pytest
import sqlalchemy as sa


@pytest.mark.postgres
def test_throwaway_server_gives_fresh_databases(postgres_url: str) -> None:
    engine = sa.create_engine(postgres_url)
    with engine.connect() as conn:
        version = conn.execute(sa.text("select version()")).scalar_one()
        tables = conn.execute(
            sa.text("select count(*) from information_schema.tables where table_schema='public'")
        ).scalar_one()
    engine.dispose()
    assert "PostgreSQL" in version
    assert tables == 0


@pytest.mark.postgres
def test_a_standby_replicates_and_takes_writes_once_promoted() -> None:
    from tests.support.pg_server import throwaway_server

    primary = throwaway_server()
    standby = None
    try:
        url = primary.create_database()
        database = url.rsplit("/", 1)[1]
        standby = primary.standby()
        primary.query("CREATE TABLE t (n int)", database)
        primary.query("INSERT INTO t VALUES (1) RETURNING n", database)
        primary.wait_replayed_by(standby)
        assert standby.query("SELECT pg_is_in_recovery()") is True
        assert standby.query("SELECT count(*) FROM t", database) == 1
        primary.kill()
        standby.promote()
        assert standby.query("SELECT pg_is_in_recovery()") is False
        assert standby.query("INSERT INTO t VALUES (2) RETURNING n", database) == 2
        engine = sa.create_engine(primary.multi_host_url(database, standby))
        with engine.connect() as conn:  # the dead primary first: libpq goes on to the next
            assert conn.execute(sa.text("SELECT inet_server_port()")).scalar_one() == standby.port
        engine.dispose()
    finally:
        primary.stop()
        if standby is not None:
            standby.stop()
