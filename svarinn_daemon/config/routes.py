"""``[[routes]]``: which archive a letter goes to, read into :class:`RouteConfig` objects.

A route naming an unknown archive or account is a configuration error with a did-you-mean;
a route with no condition at all would swallow every letter and is refused too.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping

from svarinn_daemon.config.model import ArchiveConfig, RouteConfig
from svarinn_daemon.config.table import Table

__all__ = ["read_routes"]

_CONDITIONS = ("account", "type", "mottaker_orgnr", "avsender")


def _hint(value: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(value, list(known), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def read_routes(
    tables: list[Table], archives: Mapping[str, ArchiveConfig], accounts: Iterable[str]
) -> tuple[RouteConfig, ...]:
    account_names = tuple(accounts)
    routes = []
    for table in tables:
        archive = table.string("archive")
        if archive not in archives:
            table.fail(
                "archive",
                f"no [archives.{archive}] is defined (defined: {', '.join(archives)})"
                + _hint(archive, archives),
            )
        values = {name: table.string_list(name) for name in _CONDITIONS}
        table.finish()  # a misspelt key first: it explains an empty route best
        for name, given in values.items():
            if any(not v.strip() for v in given):
                table.fail(name, "must not hold an empty string")
        for account in values["account"]:
            if account not in account_names:
                table.fail(
                    "account",
                    f"no account {account!r} (accounts: {', '.join(account_names)})"
                    + _hint(account, account_names),
                )
        if not any(values.values()):
            table.fail(
                "archive",
                "a route needs at least one of account, type, mottaker_orgnr, avsender "
                "(letters no route matches go to their account's archive)",
            )
        routes.append(
            RouteConfig(
                archive=archive,
                account=values["account"],
                type=values["type"],
                mottaker_orgnr=values["mottaker_orgnr"],
                avsender=values["avsender"],
            )
        )
    return tuple(routes)
