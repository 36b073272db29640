"""[[routes]]: first match wins, every given key must match, globs ignore case (pure)."""

from __future__ import annotations

from svarinn_daemon.config import RouteConfig
from svarinn_daemon.letter.routing import Destination, choose_archive, route_matches
from svarinn_daemon.svarinn import Forsendelse
from svarinn_daemon.svarinn.records import Avsender, Mottaker


def letter(
    kind: str | None = "Byggesøknad",
    sender: str | None = "Statens kartverk (Kartverket)",
    sender_orgnr: str | None = "971040238",
    orgnr: str | None = "999888777",
) -> Forsendelse:
    return Forsendelse(
        id="f1",
        download_url="https://svarut.example/f1",
        forsendelse_type=kind,
        avsender=Avsender(navn=sender, orgnr=sender_orgnr),
        mottaker=Mottaker(navn="Kommune", orgnr=orgnr),
    )


def test_every_given_key_must_match() -> None:
    route = RouteConfig(
        "byggesak",
        account=("kommune",),
        type=("byggesøknad", "Nabovarsel"),
        mottaker_orgnr=("999888777",),
        avsender_navn=("*KARTVERKET*",),
    )
    assert route_matches(route, "kommune", letter())
    assert not route_matches(route, "skole", letter())
    assert not route_matches(route, "kommune", letter(kind="Faktura"))
    assert not route_matches(route, "kommune", letter(kind=None))
    assert not route_matches(route, "kommune", letter(orgnr="111222333"))
    assert not route_matches(route, "kommune", letter(sender="Testbedrift AS"))


def test_a_name_glob_never_matches_an_orgnr_nor_an_orgnr_a_name() -> None:
    """Issue #24, item 6: a sender named "974760673" was routed as that agency."""
    agency = RouteConfig("a", avsender_orgnr=("974760673",))
    assert route_matches(agency, "k", letter(sender="X", sender_orgnr="974760673"))
    assert not route_matches(agency, "k", letter(sender="974760673", sender_orgnr=None))
    assert not route_matches(agency, "k", letter(sender="974760673", sender_orgnr="910000001"))
    by_name = RouteConfig("a", avsender_navn=("97476*",))
    assert not route_matches(by_name, "k", letter(sender="X", sender_orgnr="974760673"))
    assert route_matches(by_name, "k", letter(sender="974760673", sender_orgnr=None))
    anything = RouteConfig("a", avsender_navn=("*",))
    assert not route_matches(anything, "k", letter(None, None, None))


def test_first_match_wins_and_no_match_is_the_accounts_archive() -> None:
    routes = [
        RouteConfig("nabo", type=("Nabovarsel",)),
        RouteConfig("byggesak", avsender_navn=("*kartverket*",)),
        RouteConfig("never", avsender_navn=("*kartverket*",)),
    ]
    assert choose_archive(routes, "k", "default", letter()) == Destination("byggesak", 1)
    assert choose_archive(routes, "k", "default", letter(kind="nabovarsel")).archive == "nabo"
    other = choose_archive(routes, "k", "default", letter(sender="X", sender_orgnr=None))
    assert other == Destination("default", None)
    assert other.describe() == "archive default (the account's; no route matched)"
    assert Destination("byggesak", 1).describe() == "archive byggesak by routes[1]"
