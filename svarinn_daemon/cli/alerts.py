"""``svarinn-daemon alerts test --notifier NAME``: prove that alerts reach a person."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from svarinn_daemon.alerts.message import AlertMessage, AlertStatus, Condition
from svarinn_daemon.alerts.notifiers.registry import NotifierRegistry
from svarinn_daemon.errors import ConfigError

if TYPE_CHECKING:
    from svarinn_daemon.cli import Context


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "alerts",
        help="alert notifiers: send a test message",
        description="Work with the alert notifiers configured in [[notifiers]].",
    )
    commands = parser.add_subparsers(dest="alerts_command", metavar="ACTION", required=True)
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


def run_test(ctx: Context) -> int:
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
