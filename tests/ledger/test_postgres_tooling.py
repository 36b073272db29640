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
