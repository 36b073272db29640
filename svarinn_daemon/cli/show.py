"""``svarinn-daemon show ID``: one letter with everything the ledger knows and its history."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from svarinn_daemon.cli.commands import summary
from svarinn_daemon.errors import LetterNotFoundError

if TYPE_CHECKING:
    from svarinn_daemon.cli import Context
    from svarinn_daemon.ledger import Ledger, Letter


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "show",
        help=summary("show"),
        description="Show one letter: its record in the ledger and every transition it went "
        "through (time, worker, from and to state, reason).",
    )
    parser.add_argument("id", metavar="ID", help="the ledger's number, or the forsendelse id")
    parser.add_argument("--account", help="which account, when a forsendelse id is ambiguous")
    parser.add_argument("--json", action="store_true", help="print JSON (stable keys)")
    parser.set_defaults(func=run, logs_to_stderr=True)


def resolve(ledger: Ledger, ident: str, account: str | None) -> Letter:
    """A letter by ledger number or by forsendelse id; a typed error when not exactly one."""
    if ident.isdigit():
        letter = ledger.get(int(ident))
        if letter is not None and (account is None or letter.account == account):
            return letter
    matches = ledger.find(ident, account)
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise LetterNotFoundError(f"the ledger has no letter {ident!r}")
    accounts = ", ".join(m.account for m in matches)
    raise LetterNotFoundError(
        f"forsendelse {ident} was received by several accounts ({accounts}); add --account"
    )


def run(ctx: Context) -> int:
    from svarinn_daemon.cli.ledger_io import (
        dump_json,
        event_json,
        human_time,
        letter_json,
        message_json,
        safe_text,
        state_text,
        with_ledger,
    )

    args = ctx.args

    def body(ledger: Ledger) -> int:
        letter = resolve(ledger, args.id, args.account)
        events = ledger.events(letter.id)
        messages = ledger.archive_messages(letter.id)
        if args.json:
            ctx.stdout.write(
                dump_json(
                    {
                        "letter": letter_json(letter, raw=True),
                        "events": [event_json(e) for e in events],
                        "archive_messages": [message_json(m) for m in messages],
                    }
                )
            )
            return 0
        out = ctx.stdout
        for key, value in letter_json(letter, raw=False).items():
            if key == "state":
                value = state_text(letter)
            if isinstance(value, list):
                value = ", ".join(value) or None
            print(f"{key + ':':20} {'-' if value is None else safe_text(value)}", file=out)
        if messages:
            print("\nsent to the archive as (replies come later):", file=out)
        for m in messages:
            said = (
                f": {safe_text(m.reference or m.detail or '')}" if m.reference or m.detail else ""
            )
            reply = f"{m.reply} {human_time(m.reply_at)}" if m.reply else "no reply yet"
            print(f"  {human_time(m.sent_at)}  {m.message_id}  {reply}{said}", file=out)
        print("\nhistory:", file=out)
        for e in events:
            frm = e.from_state.value if e.from_state else "(new)"
            who = f" by {e.worker_id}" if e.worker_id else ""
            why = f": {safe_text(e.reason)}" if e.reason else ""
            print(
                f"  {human_time(e.at)}  {e.trigger.value:15} {frm} -> {e.to_state.value}{who}{why}",
                file=out,
            )
        return 0

    return with_ledger(ctx, body)
