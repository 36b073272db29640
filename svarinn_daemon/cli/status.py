"""``svarinn-daemon status``: letters per account and state, and the oldest unfinished one."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from svarinn_daemon.cli.commands import summary

if TYPE_CHECKING:
    from svarinn_daemon.cli import Context
    from svarinn_daemon.ledger import Backlog, Ledger


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "status",
        help=summary("status"),
        description="Count the ledger's letters per account and state (and the archived ones "
        "whose receipt shadow mode withholds), and show the oldest letter that is neither "
        "acknowledged nor reported, nor withheld, with its age.",
    )
    parser.add_argument("--json", action="store_true", help="print JSON (stable keys)")
    parser.set_defaults(func=run, logs_to_stderr=True)


def backlog_json(
    backlog: Backlog, where: str, found: dict[str, dict[str, int]] | None = None
) -> dict[str, Any]:
    from svarinn_daemon.cli.ledger_io import iso
    from svarinn_daemon.ledger import State

    accounts: dict[str, dict[str, int]] = {}
    for count in backlog.counts:
        accounts.setdefault(count.account, {s.value: 0 for s in State})[count.state.value] = (
            count.count
        )
    withheld: dict[str, int] = {}
    for count in backlog.withheld:
        withheld[count.account] = withheld.get(count.account, 0) + count.count
    oldest = backlog.oldest_unfinished
    return {
        "ledger": where,
        "now": iso(backlog.now),
        "accounts": accounts,
        "totals": {s.value: backlog.total(s) for s in State},
        "receipts_withheld": withheld,
        "found_done": found or {},  # per account: done elsewhere ("archive", "svarut")
        "oldest_unfinished": None
        if oldest is None or backlog.oldest_age is None
        else {
            "id": oldest.id,
            "account": oldest.account,
            "forsendelse_id": oldest.forsendelse_id,
            "state": oldest.state.value,
            "seen_at": iso(oldest.seen_at),
            "age_seconds": int(backlog.oldest_age.total_seconds()),
        },
    }


def run(ctx: Context) -> int:
    from svarinn_daemon.cli.ledger_io import (
        WITHHELD,
        dump_json,
        human_age,
        human_time,
        safe_text,
        table,
        with_ledger,
    )
    from svarinn_daemon.ledger import State, describe_url

    def body(ledger: Ledger) -> int:
        backlog = ledger.backlog()
        where = describe_url(ledger.engine.url)
        if ctx.args.json:
            ctx.stdout.write(dump_json(backlog_json(backlog, where, ledger.found_done())))
            return 0
        print(f"ledger {where}", file=ctx.stdout)
        accounts = sorted({c.account for c in backlog.counts})
        rows = [["account", *(s.value for s in State)]]
        for account in accounts:
            rows.append([account, *(str(backlog.total(s, account)) for s in State)])
        rows.append(["total", *(str(backlog.total(s)) for s in State)])
        ctx.stdout.write(table(rows))
        for count in backlog.withheld:
            print(
                f"{count.account}: {count.count} {count.state.value} letter(s) with the {WITHHELD}",
                file=ctx.stdout,
            )
        for account, how in sorted(ledger.found_done().items()):
            print(
                f"{account}: found done elsewhere, not recorded by this ledger: "
                f"{how.get('archive', 0)} already in the archive, "
                f"{how.get('svarut', 0)} already acknowledged or reported at SvarUt",
                file=ctx.stdout,
            )
        oldest = backlog.oldest_unfinished
        if oldest is None or backlog.oldest_age is None:
            print("no unfinished letters", file=ctx.stdout)
        else:
            print(
                f"oldest unfinished: #{oldest.id} {safe_text(oldest.forsendelse_id)} "
                f"({oldest.account}, "
                f"{oldest.state.value}) seen {human_time(oldest.seen_at)}, "
                f"{human_age(backlog.oldest_age)} ago",
                file=ctx.stdout,
            )
        return 0

    return with_ledger(ctx, body)
