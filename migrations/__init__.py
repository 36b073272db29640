"""The ledger's Alembic migrations, installed as ``svarinn_daemon.migrations`` (see setup.py)."""
