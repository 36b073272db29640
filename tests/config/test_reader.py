"""The one option reader and the one URL check: the same wrong value is refused with the same
words in the config file's tables, an archive's options and a notifier's, each naming its key;
a URL's credentials, and a URL that may hold a secret, never appear in the error."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from svarinn_daemon.adapters.base import AdapterContext
from svarinn_daemon.adapters.options import AdapterOptions
from svarinn_daemon.alerts.notifiers.base import NotifierContext
from svarinn_daemon.alerts.notifiers.options import NotifierOptions
from svarinn_daemon.config.reader import POSITIVE, OptionReader
from svarinn_daemon.config.table import Context, Table
from svarinn_daemon.config.urls import proxy_problem, url_problem
from svarinn_daemon.errors import ConfigError


def _readers(tmp_path: Path, data: dict[str, Any]) -> list[tuple[OptionReader, str]]:
    """Each kind of reader over ``data``, with how it names the key ``k``."""
    source = tmp_path / "config.toml"
    table = Table(data, "accounts[0].http", Context(source, {}))
    adapter = AdapterOptions(data, AdapterContext("sak", tmp_path, tmp_path, source))
    notifier = NotifierOptions(data, NotifierContext("teams", 2, base_dir=tmp_path, source=source))
    return [
        (table, "accounts[0].http.k"),
        (adapter, "archives.sak.k"),
        (notifier, "notifiers[2].k"),
    ]


@pytest.mark.parametrize(
    ("value", "read", "message"),  # the value under "k" (a proxy(): under "proxy")
    [
        (5, lambda r: r.boolean("k", False), "must be true or false, not a number (5)"),
        ("x", lambda r: r.integer("k", 1, 0, 9), "must be a whole number, not a string ('x')"),
        (99, lambda r: r.integer("k", 1, 0, 9), "must be from 0 to 9, not 99"),
        (True, lambda r: r.duration("k", None), 'must be a duration like "5m", not a boolean'),
        ("0s", lambda r: r.duration("k", None, POSITIVE), "must be longer than zero, not '0s'"),
        ("", lambda r: r.path("k", None), "must be a path (a string), not ''"),
        (["a", 1], lambda r: r.string_list("k"), "must be a list of strings, not a list"),
        ("http://u:pw@h", lambda r: r.url("k", "x"), "must not contain a user name or password"),
        ("https://h:x", lambda r: r.proxy(), "has an invalid port"),
    ],
)
def test_the_same_wrong_value_gets_the_same_words_everywhere(
    tmp_path: Path, value: object, read: Any, message: str
) -> None:
    key = "proxy" if "invalid port" in message else "k"
    for reader, where in _readers(tmp_path, {key: value}):
        with pytest.raises(ConfigError) as info:
            read(reader)
        assert info.value.key == where.removesuffix("k") + key
        assert message in str(info.value)
        assert "pw" not in str(info.value)


def test_unknown_keys_are_refused_with_a_hint_by_every_reader(tmp_path: Path) -> None:
    for reader, where in _readers(tmp_path, {"timout": "5s"}):
        reader.duration("timeout", None)
        with pytest.raises(ConfigError, match="did you mean 'timeout'") as info:
            reader.finish()
        assert info.value.key == where.removesuffix("k") + "timout"


@pytest.mark.parametrize(
    ("url", "rules", "problem"),
    [
        ("https://h/a\r\nX-Evil: 1", {}, "white space or control characters"),
        ("https://h/a b", {}, "white space or control characters"),
        ("ftp://h/x", {}, "must be an https:// URL"),
        ("https://h/x", {"path": False}, "scheme://host[:port] only"),
        ("https://h?x=1", {"path": False}, "scheme://host[:port] only"),
        ("https://h/x?y=1", {"query": False}, "without ?query"),
        ("http://example.no/x", {}, "plain http to a remote host"),
        ("https://h:99999/", {}, "invalid port"),
    ],
)
def test_url_problems(url: str, rules: dict[str, bool], problem: str) -> None:
    found = url_problem(url, **rules)
    assert found is not None
    assert problem in found
    assert url_problem("https://h/T0K3N x", show=False) == (
        "must not contain white space or control characters (CR, LF, ...)"
    )


def test_good_urls_pass() -> None:
    assert url_problem("https://h/x?y=1") is None
    assert url_problem("http://127.0.0.1:8080/x") is None
    assert url_problem("https://h/", path=False, query=False) is None
    assert proxy_problem("http://proxy.kommune.no:3128/") is None


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://svc:s3cret@proxy:3128", "set proxy_username and proxy_password_file"),
        ("socks5://proxy:1080", "must be an http://host:port proxy URL"),
        ("http://proxy:3128/x", "must be scheme://host:port only"),
        ("http://proxy:port", "invalid port"),
    ],
)
def test_proxy_problems(url: str, problem: str) -> None:
    found = proxy_problem(url)
    assert found is not None
    assert problem in found
    assert "s3cret" not in found
