"""``svarinn-daemon list``: the ledger's letters, filtered by state, account and time."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from svarinn_daemon.cli.commands import summary

if TYPE_CHECKING:
    from svarinn_daemon.cli import Context
    from svarinn_daemon.ledger import Ledger


def since_value(text: str) -> datetime | timedelta:
    """An ISO 8601 time (UTC when no offset is given) or a duration back from now ("2h")."""
    from svarinn_daemon.config.units import parse_duration

    try:
        return parse_duration(text)
    except ValueError:
        pass
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is neither a time (2026-01-31T08:00:00Z) nor a duration (2h, 3d)"
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from svarinn_daemon.ledger import State  # its values are the --state choices

    parser = sub.add_parser(
        "list",
        help=summary("list"),
        description="List the ledger's letters, oldest first.",
    )
    parser.add_argument("--state", choices=[s.value for s in State], help="only this state")
    parser.add_argument("--account", help="only this account")
    parser.add_argument(
        "--since",
        type=since_value,
        metavar="T",
        help="only letters first seen at or after T: a time (2026-01-31T08:00:00Z) or a "
        "duration back from now (2h, 3d)",
    )
    parser.add_argument(
        "--limit", type=int, default=1000, help="at most this many letters (default 1000)"
    )
    parser.add_argument("--json", action="store_true", help="print JSON (stable keys)")
    parser.set_defaults(func=run, logs_to_stderr=True)


def run(ctx: Context) -> int:
    from svarinn_daemon.cli.ledger_io import (
        dump_json,
        human_time,
        letter_json,
        state_text,
        table,
        with_ledger,
    )
    from svarinn_daemon.ledger import State

    args = ctx.args

    def body(ledger: Ledger) -> int:
        since = args.since
        if isinstance(since, timedelta):
            since = ledger.clock() - since
        letters = ledger.list(
            state=State(args.state) if args.state else None,
            account=args.account,
            since=since,
            limit=max(1, args.limit),
        )
        if args.json:
            ctx.stdout.write(dump_json([letter_json(x, raw=False) for x in letters]))
            return 0
        if not letters:
            print("no letters", file=ctx.stdout)
            return 0
        rows = [["id", "account", "forsendelse", "state", "attempts", "seen", "last error"]]
        for x in letters:
            rows.append(
                [
                    str(x.id),
                    x.account,
                    x.forsendelse_id,
                    state_text(x),
                    str(x.attempts),
                    human_time(x.seen_at),
                    x.last_error_kind or "",
                ]
            )
        ctx.stdout.write(table(rows))
        return 0

    return with_ledger(ctx, body)
