"""[[routes]] in the configuration: read, checked against archives and accounts, printed."""

from __future__ import annotations

from pathlib import Path

import pytest

from svarinn_daemon.config import RouteConfig, load_config
from tests.support.cfg_helpers import make_config_dir, run_cli

ARCHIVES = """
[archives.default]
adapter = "filesystem"

[archives.byggesak]
adapter = "filesystem"
root = "byggesak"
"""


def write(tmp_path: Path, routes: str) -> Path:
    cfg = make_config_dir(tmp_path)
    head, _, tail = cfg.path.read_text().partition("[[accounts]]")
    return cfg.write(head + ARCHIVES + routes + "\n[[accounts]]" + tail)


def test_routes_are_read_in_order_and_printed_by_check_config(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[[routes]]
archive = "byggesak"
account = ["kommune"]
type = ["Byggesøknad", "Nabovarsel"]
mottaker_orgnr = ["999888777"]
avsender_orgnr = ["971040238"]

[[routes]]
archive = "default"
avsender_navn = ["*skatteetaten*"]
""",
    )
    config = load_config(path, environ={})
    assert config.routes == (
        RouteConfig(
            "byggesak",
            ("kommune",),
            ("Byggesøknad", "Nabovarsel"),
            ("999888777",),
            ("971040238",),
        ),
        RouteConfig("default", avsender_navn=("*skatteetaten*",)),
    )
    code, out, err = run_cli("--config", str(path), "check-config")
    assert code == 0, err
    assert "# routes[0]: first match wins" in out
    assert 'type = ["Byggesøknad", "Nabovarsel"]' in out
    assert out.index('archive = "byggesak"') < out.index('avsender_navn = ["*skatteetaten*"]')
    assert "routes[1].avsender_navn: the sender's name is the sender's own words" in err


@pytest.mark.parametrize(
    ("route", "fragments"),
    [
        ('archive = "bygesak"\ntype = ["x"]', ["routes[0].archive", "did you mean 'byggesak'"]),
        ('archive = "byggesak"\naccount = ["komune"]', ["routes[0].account", "'kommune'"]),
        ('archive = "byggesak"', ["routes[0].archive", "at least one of"]),
        ('archive = "byggesak"\ntypes = ["x"]', ["routes[0].types", "did you mean 'type'"]),
        ('archive = "byggesak"\ntype = "Byggesøknad"', ["routes[0].type", "list of strings"]),
        ('archive = "byggesak"\navsender = ["9747*"]', ["routes[0].avsender", "avsender_orgnr"]),
        ('archive = "byggesak"\navsender_orgnr = ["9747*"]', ["not an organisation number"]),
    ],
)
def test_a_bad_route_is_a_configuration_error(
    tmp_path: Path, route: str, fragments: list[str]
) -> None:
    path = write(tmp_path, f"\n[[routes]]\n{route}\n")
    code, _out, err = run_cli("--config", str(path), "check-config")
    assert code == 2, err
    for fragment in fragments:
        assert fragment in err


def test_check_config_warns_of_routes_that_may_not_do_what_is_meant(tmp_path: Path) -> None:
    """A route without account among several accounts applies to all of them; an orgnr
    route never matches a V2 account's letters (V2 names no sender orgnr)."""
    path = write(tmp_path, '\n[[routes]]\narchive = "byggesak"\navsender_orgnr = ["971040238"]\n')
    text = path.read_text()
    second = text[text.index("[[accounts]]") :].replace('"kommune"', '"skole"', 1)
    path.write_text(text + "\n" + second.replace("[[accounts]]", '[[accounts]]\napi = "v2"', 1))
    code, _out, err = run_cli("--config", str(path), "check-config", "--quiet")
    assert code == 0, err
    assert "routes[0]: no account given, so it applies to every account (kommune, skole)" in err
    assert "routes[0].avsender_orgnr: SvarInn V2 names no sender orgnr" in err
    assert "letters of skole" in err
