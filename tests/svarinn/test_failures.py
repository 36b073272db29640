"""Pure parts of the client boundary: Retry-After, error bodies, origins."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from svarinn_daemon.errors import OriginNotAllowedError, ProtocolError
from svarinn_daemon.svarinn.failures import body_start, parse_retry_after
from svarinn_daemon.svarinn.origins import Origin, display_url

NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        (" 5 ", 5.0),
        ("0", 0.0),
        ("Thu, 01 Jan 2026 12:00:30 GMT", 30.0),
        ("Thu, 01 Jan 2026 11:00:00 GMT", 0.0),  # in the past: retry now
        ("99999999", 6 * 3600.0),  # capped
        ("soon", None),
        ("-5", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, now=NOW) == expected


def test_body_start_is_bounded_and_scrubbed() -> None:
    body = ("x" * 100 + " password hunter22 Authorization: Basic dXNlcjpodW50ZXIyMg== ").encode()
    text = body_start(body * 20, ["hunter22"])
    assert len(text) <= 500
    assert "hunter22" not in text
    assert "dXNlcjpodW50ZXIyMg==" not in text
    assert body_start(b"\x00\x01ok\xff") == "ok\ufffd"


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("https://svarut.ks.no/tjenester", Origin("https", "svarut.ks.no", 443)),
        ("https://SvarUt.KS.no:443/x", Origin("https", "svarut.ks.no", 443)),
        ("http://127.0.0.1:8080", Origin("http", "127.0.0.1", 8080)),
        ("http://user:pw@localhost/x", Origin("http", "localhost", 80)),
        ("https://[::1]:8443/", Origin("https", "::1", 8443)),
        ("https://bücher.example/", Origin("https", "xn--bcher-kva.example", 443)),
    ],
)
def test_origin_of(url: str, origin: Origin) -> None:
    assert Origin.of(url) == origin


def test_origin_str_and_errors() -> None:
    assert str(Origin("https", "svarut.ks.no", 443)) == "https://svarut.ks.no"
    assert str(Origin("http", "::1", 8080)) == "http://[::1]:8080"
    with pytest.raises(OriginNotAllowedError):
        Origin.of("ftp://svarut.ks.no/x")
    with pytest.raises(OriginNotAllowedError):
        Origin.of("/relative/only")
    for bad in ("https://example.com:99999/", "https://example.com:abc/", "https://exa mple.com"):
        with pytest.raises(ProtocolError):
            Origin.of(bad)


def test_display_url_hides_credentials_and_query() -> None:
    assert (
        display_url("https://u:pw@svarut.ks.no/f/1?token=abc#x") == "https://svarut.ks.no/f/1?..."
    )
