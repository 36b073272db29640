"""``svarinn-daemon alerts [list]``: the alerts in the ledger; ``alerts test --notifier NAME``:
prove that alerts reach a person."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from svarinn_daemon.cli.commands import summary
from svarinn_daemon.errors import ConfigError

if TYPE_CHECKING:
    from svarinn_daemon.alerts.engine import AlertState
    from svarinn_daemon.cli import Context
    from svarinn_daemon.ledger import Ledger


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "alerts",
        help=summary("alerts"),
        description="Without ACTION (or with 'list'): list the alerts that hold now, from "
        "the ledger. 'test' sends a test message through a notifier in [[notifiers]].",
    )
    _list_options(parser, default=False)
    parser.set_defaults(func=run_list, logs_to_stderr=True)
    commands = parser.add_subparsers(dest="alerts_command", metavar="ACTION", required=False)
    listing = commands.add_parser(
        "list",
        help="list the active alerts (the default action)",
        description="List the alerts that hold now (condition, subject, account, since, "
        "last sent), as the daemon stored them in the ledger; --all adds resolved ones.",
    )
    _list_options(listing, default=argparse.SUPPRESS)
    listing.set_defaults(func=run_list, logs_to_stderr=True)
    test = commands.add_parser(
        "test",
        help="send a test alert through one notifier",
        description="Send a test alert (condition 'test') through the notifier NAME, whatever "
        "its conditions filter says. Exit 0 when it was delivered, 1 when the notifier "
        "failed (the error says why; Fiks errors carry their errorId), 2 for a configuration "
        "error.",
    )
    test.add_argument("--notifier", "-n", required=True, metavar="NAME", help="notifier name")
    test.set_defaults(func=run_test, logs_to_stderr=True)


def _list_options(parser: argparse.ArgumentParser, *, default: Any) -> None:
    # SUPPRESS on the sub-command keeps `alerts --json list` from being reset to False.
    parser.add_argument("--json", action="store_true", default=default, help="print JSON")
    parser.add_argument(
        "--all",
        action="store_true",
        default=default,
        help="include resolved alerts (each condition and subject keeps its last row)",
    )


def alert_json(state: AlertState) -> dict[str, Any]:
    from svarinn_daemon.cli.ledger_io import iso

    return {
        "condition": state.condition.value,
        "subject": state.subject,
        "account": state.account,
        "active": state.active,
        "since": iso(state.first_fired_at),
        "last_sent": iso(state.last_sent_at),
        "resolved": iso(state.resolved_at),
        "counts": dict(state.last_details),
    }


def run_list(ctx: Context) -> int:
    from svarinn_daemon.alerts.store import LedgerAlertStore
    from svarinn_daemon.cli.ledger_io import dump_json, human_time, table, with_ledger
    from svarinn_daemon.ledger import describe_url

    def body(ledger: Ledger) -> int:
        store = LedgerAlertStore(ledger.engine)
        states = store.load(include_resolved=bool(ctx.args.all))
        if ctx.args.json:
            where = describe_url(ledger.engine.url)
            alerts = [alert_json(s) for s in states]
            ctx.stdout.write(dump_json({"ledger": where, "alerts": alerts}))
            return 0
        if not states:
            print("no active alerts" if not ctx.args.all else "no alerts", file=ctx.stdout)
            return 0
        rows = [["condition", "subject", "account", "since", "last sent", "resolved", "counts"]]
        for s in states:
            counts = " ".join(f"{k}={v}" for k, v in s.last_details.items())
            rows.append(
                [
                    s.condition.value,
                    s.subject,
                    s.account or "-",
                    human_time(s.first_fired_at),
                    human_time(s.last_sent_at),
                    human_time(s.resolved_at),
                    counts or "-",
                ]
            )
        ctx.stdout.write(table(rows))
        return 0

    return with_ledger(ctx, body)


def run_test(ctx: Context) -> int:
    from svarinn_daemon.alerts.message import AlertMessage, AlertStatus, Condition
    from svarinn_daemon.alerts.notifiers.registry import NotifierRegistry

    config = ctx.config()
    name = ctx.args.notifier
    chosen = next((n for n in config.notifiers if n.name == name), None)
    if chosen is None:
        names = ", ".join(n.name for n in config.notifiers)
        raise ConfigError(
            f"no notifier named {name!r} is configured (configured: {names})",
            source=str(config.source),
            key="notifiers",
        )
    notifier = NotifierRegistry().create(
        chosen, source=config.source, base_dir=config.source.parent
    )
    now = datetime.now(UTC)
    message = AlertMessage(
        condition=Condition.TEST,
        subject="test",
        status=AlertStatus.FIRING,
        account=None,
        host=config.daemon.worker_id,
        first_seen=now,
        sent_at=now,
    )
    try:
        notifier.send(message)
    finally:
        notifier.close()
    print(f"test alert delivered through notifier {name!r} ({chosen.type})", file=ctx.stdout)
    return 0
