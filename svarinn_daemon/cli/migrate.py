"""``svarinn-daemon migrate``: bring the ledger's schema to this version's."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from svarinn_daemon.cli.commands import summary
from svarinn_daemon.errors import LedgerUnavailableError, SchemaMismatchError

if TYPE_CHECKING:
    from svarinn_daemon.cli import Context


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "migrate",
        help=summary("migrate"),
        description="Create the ledger's tables, or upgrade them to this version's schema, "
        "in one transaction. Safe to run again; refuses a database whose schema is foreign or "
        "newer than this version (exit 2).",
    )
    parser.set_defaults(func=run, logs_to_stderr=True)


def run(ctx: Context) -> int:
    from svarinn_daemon.cli.ledger_io import EXIT_CANNOT_START
    from svarinn_daemon.ledger import build_engine, describe_url, migrate

    config = ctx.config(keys=False)
    try:
        engine = build_engine(config.ledger)
        try:
            state = migrate(engine)
        finally:
            engine.dispose()
    except (LedgerUnavailableError, SchemaMismatchError) as exc:
        print(f"svarinn-daemon: cannot migrate the ledger: {exc}", file=ctx.stderr)
        return EXIT_CANNOT_START
    where = describe_url(engine.url)
    if state.current == state.head:
        print(f"ledger {where}: schema is at {state.head}, nothing to do", file=ctx.stdout)
    else:
        before = state.current or "empty"
        print(f"ledger {where}: migrated from {before} to {state.head}", file=ctx.stdout)
    return 0
