"""Content-Disposition parsing (RFC 6266 / 8187) and file name sanitising."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from svarinn_daemon.svarinn.disposition import (
    filename_from_header,
    parse_disposition,
    sanitize_filename,
)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ('attachment; filename="vedtak.pdf"', "vedtak.pdf"),
        ("attachment; filename=vedtak.pdf", "vedtak.pdf"),
        ("ATTACHMENT; FILENAME=vedtak.pdf", "vedtak.pdf"),
        ('inline; filename="a \\"sitat\\".pdf"', "a _sitat_.pdf"),
        ("attachment; filename*=UTF-8''S%C3%B8knad%20om%20l%C3%B8yve.pdf", "Søknad om løyve.pdf"),
        ("attachment; filename*=utf-8'no'%C3%A6%C3%B8%C3%A5.txt", "æøå.txt"),
        ("attachment; filename*=ISO-8859-1''%E6%F8%E5.txt", "æøå.txt"),
        (
            "attachment; filename=\"fallback.pdf\"; filename*=UTF-8''%C3%A6.pdf",
            "æ.pdf",
        ),
        (
            "attachment; filename*=UTF-8''%C3%A6.pdf; filename=\"fallback.pdf\"",
            "æ.pdf",
        ),
        ("attachment; filename*=KOI8-R''%C6.txt; filename=\"fallback.txt\"", "fallback.txt"),
        ("attachment; filename*=UTF-8''%FF%FE.txt; filename=\"ok.txt\"", "ok.txt"),
        ('attachment; filename="../../etc/passwd"', "passwd"),
        ('attachment; filename="..\\\\..\\\\windows\\\\system.ini"', "system.ini"),
        ("attachment; filename*=UTF-8''..%2F..%2Fsecret", "secret"),
        ('attachment; filename=".bashrc"', "bashrc"),
        ('attachment; filename="..."', None),
        ("attachment; filename*=UTF-8''a%0Ab%00c.pdf", "abc.pdf"),
        ("attachment; filename*=UTF-8''evil%E2%80%AEfdp.exe", "evilfdp.exe"),
        ('attachment; filename="CON.txt"', "_CON.txt"),
        ('attachment; filename="a:b*c?.pdf"', "a_b_c_.pdf"),
        ("attachment", None),
        ("", None),
        (None, None),
        ("attachment; filename", None),
        ("attachment; foo=bar; filename=x.pdf", "x.pdf"),
        ('attachment; filename="a.pdf"; filename="b.pdf"', "a.pdf"),
    ],
)
def test_filename_from_header(header: str | None, expected: str | None) -> None:
    assert filename_from_header(header) == expected


def test_parse_disposition_parameters() -> None:
    assert parse_disposition('Attachment; Filename="x;y.pdf"; size=12') == (
        "attachment",
        {"filename": "x;y.pdf", "size": "12"},
    )


@pytest.mark.parametrize(
    ("name", "max_bytes", "expected"),
    [
        ("a" * 300 + ".pdf", 200, "a" * 196 + ".pdf"),
        ("ø" * 150 + ".pdf", 200, "ø" * 98 + ".pdf"),
        ("x" * 300, 100, "x" * 100),
        ("kort.pdf", 200, "kort.pdf"),
        ("  padded name. ", 200, "padded name"),
        ("a" * 50 + ".verylongextension_that_is_not_one", 40, "a" * 40),
    ],
)
def test_sanitize_bounds_length(name: str, max_bytes: int, expected: str) -> None:
    result = sanitize_filename(name, max_bytes=max_bytes)
    assert result == expected
    assert result is not None
    assert len(result.encode()) <= max_bytes


@given(st.text(max_size=400))
def test_sanitized_names_are_always_safe(name: str) -> None:
    result = sanitize_filename(name)
    if result is None:
        return
    assert result
    assert "/" not in result
    assert "\\" not in result
    assert not result.startswith(".")
    assert len(result.encode("utf-8")) <= 200
    assert all(unicodedata.category(ch) not in ("Cc", "Cf", "Zl", "Zp") for ch in result)


@given(st.text(max_size=200))
def test_any_header_parses_without_crashing(header: str) -> None:
    name = filename_from_header(header)
    assert name is None or "/" not in name
