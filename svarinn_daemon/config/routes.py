"""``[[routes]]``: which archive a letter goes to, read into :class:`RouteConfig` objects.

A route naming an unknown archive or account is a configuration error with a did-you-mean;
a route with no condition at all would swallow every letter and is refused too. What a
sender says of itself is kept apart from what can be checked: ``avsender_orgnr`` is matched
exactly against the sender's orgnr (never against its name), ``avsender_navn`` with globs
against its name; the old ``avsender`` (both at once) is refused, and check-config warns of
routes on the sender's own words and of routes without ``account`` among several accounts.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping

from svarinn_daemon.config.model import ArchiveConfig, RouteConfig
from svarinn_daemon.config.table import Table

__all__ = ["read_routes"]

_CONDITIONS = ("account", "type", "mottaker_orgnr", "avsender_orgnr", "avsender_navn")
_ORGNR = re.compile(r"[0-9]{9}")


def _hint(value: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(value, list(known), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def read_routes(
    tables: list[Table],
    archives: Mapping[str, ArchiveConfig],
    accounts: Iterable[str],
    v2_accounts: Iterable[str] = (),
) -> tuple[RouteConfig, ...]:
    account_names = tuple(accounts)
    v2 = set(v2_accounts)
    routes = []
    for table in tables:
        if "avsender" in table.data:
            table.fail(
                "avsender",
                "is no longer read: it matched orgnr patterns against the sender's name too "
                '(a sender named "974760673" was routed as that agency). Write '
                'avsender_orgnr = ["974760673"] (exact organisation numbers) or '
                'avsender_navn = ["*Kartverket*"] (globs on the name the sender gives itself)',
            )
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
        for orgnr in values["avsender_orgnr"]:
            if not _ORGNR.fullmatch(orgnr):
                table.fail("avsender_orgnr", f"{orgnr!r} is not an organisation number (9 digits)")
        if not any(values.values()):
            table.fail(
                "archive",
                "a route needs at least one of " + ", ".join(_CONDITIONS) + " "
                "(letters no route matches go to their account's archive)",
            )
        _warn(table, values, account_names, v2)
        routes.append(
            RouteConfig(
                archive=archive,
                account=values["account"],
                type=values["type"],
                mottaker_orgnr=values["mottaker_orgnr"],
                avsender_orgnr=values["avsender_orgnr"],
                avsender_navn=values["avsender_navn"],
            )
        )
    return tuple(routes)


def _warn(
    table: Table,
    values: Mapping[str, tuple[str, ...]],
    accounts: tuple[str, ...],
    v2: set[str],
) -> None:
    """What check-config should say of a route that is valid but may not do what is meant."""
    warnings = table.ctx.warnings
    if values["avsender_navn"]:
        warnings.append(
            f"{table.key('avsender_navn')}: the sender's name is the sender's own words: any "
            "sender can name itself so and be routed here (prefer avsender_orgnr)"
        )
    scope = set(values["account"]) or set(accounts)
    if values["avsender_orgnr"] and scope & v2:
        warnings.append(
            f"{table.key('avsender_orgnr')}: SvarInn V2 names no sender orgnr, so this never "
            f"matches letters of {', '.join(sorted(scope & v2))}"
        )
    if not values["account"] and len(accounts) > 1:
        warnings.append(
            f"{table.dotted}: no account given, so it applies to every account "
            f"({', '.join(accounts)}); add account = [...] if that is not meant"
        )
