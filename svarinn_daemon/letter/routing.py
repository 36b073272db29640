"""Which archive a letter goes to: the first ``[[routes]]`` entry it matches (pure).

Every key a route gives must match (an empty key matches anything): ``account`` the account
that received it, ``type`` its forsendelseType (exact, ignoring case), ``mottaker_orgnr`` the
receiver's orgnr, ``avsender_orgnr`` the sender's orgnr (exact: never its name, which a
sender may set to any digits), ``avsender_navn`` globs (``*``, ``?``, ignoring case) on the
sender's name. A letter no route matches goes to its account's own archive.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase

from svarinn_daemon.config.model import RouteConfig
from svarinn_daemon.svarinn import Forsendelse

__all__ = ["Destination", "choose_archive", "route_matches"]


@dataclass(frozen=True)
class Destination:
    """Where a letter goes and why: ``route`` is its index in ``[[routes]]``, or None for
    the account's own archive."""

    archive: str
    route: int | None

    def describe(self) -> str:
        if self.route is None:
            return f"archive {self.archive} (the account's; no route matched)"
        return f"archive {self.archive} by routes[{self.route}]"


def route_matches(route: RouteConfig, account: str, forsendelse: Forsendelse) -> bool:
    if route.account and account not in route.account:
        return False
    if route.type:
        kind = (forsendelse.forsendelse_type or "").casefold()
        if kind not in {t.casefold() for t in route.type}:
            return False
    if route.mottaker_orgnr:
        orgnr = forsendelse.mottaker.orgnr if forsendelse.mottaker else None
        if orgnr not in route.mottaker_orgnr:
            return False
    sender = forsendelse.avsender
    if route.avsender_orgnr:
        orgnr = sender.orgnr if sender else None
        if orgnr not in route.avsender_orgnr:
            return False
    if route.avsender_navn:
        name = (sender.navn or "").casefold() if sender else ""
        if not name or not any(fnmatchcase(name, g.casefold()) for g in route.avsender_navn):
            return False
    return True


def choose_archive(
    routes: Sequence[RouteConfig], account: str, default: str, forsendelse: Forsendelse
) -> Destination:
    for index, route in enumerate(routes):
        if route_matches(route, account, forsendelse):
            return Destination(route.archive, index)
    return Destination(default, None)
