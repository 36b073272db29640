"""``svarinn-daemon retry ID --reason ...``: send a failed letter back to pending."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from svarinn_daemon.cli.commands import summary

if TYPE_CHECKING:
    from svarinn_daemon.cli import Context
    from svarinn_daemon.ledger import Ledger


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "retry",
        help=summary("retry"),
        description="Send a letter that failed permanently (and is not yet reported to "
        "SvarUt) or waits for a retry back to pending, so the daemon imports it again at once; "
        "for an archived letter, make its receipt due now (it never goes to the archive "
        "again). The reason and your user name go into the letter's history.",
    )
    parser.add_argument("id", metavar="ID", help="the ledger's number, or the forsendelse id")
    parser.add_argument("--reason", required=True, help="why (recorded in the history)")
    parser.add_argument("--account", help="which account, when a forsendelse id is ambiguous")
    parser.add_argument("--json", action="store_true", help="print the letter as JSON")
    parser.set_defaults(func=run, logs_to_stderr=True)


def run(ctx: Context) -> int:
    from svarinn_daemon.cli.ledger_io import dump_json, letter_json, safe_text, with_ledger
    from svarinn_daemon.cli.show import resolve

    args = ctx.args
    user = ctx.environ.get("SUDO_USER") or ctx.environ.get("USER") or "unknown"

    def body(ledger: Ledger) -> int:
        letter = resolve(ledger, args.id, args.account)
        before = letter.state
        after = ledger.retry(letter.id, args.reason, operator=f"cli:{user}")
        if args.json:
            ctx.stdout.write(dump_json(letter_json(after, raw=False)))
        else:
            print(
                f"letter #{after.id} ({safe_text(after.forsendelse_id)}, {after.account}): "
                f"{before.value} -> {after.state.value}, due now",
                file=ctx.stdout,
            )
        return 0

    return with_ledger(ctx, body)
