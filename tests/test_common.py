"""The shared helpers' tables: a sender's MIME type either has RFC 6838's shape or is
application/octet-stream."""

from __future__ import annotations

import pytest

from svarinn_daemon.common import OCTET_STREAM, media_type

KEPT = [
    "application/pdf",
    "text/plain; charset=utf-8",
    'text/plain;charset="utf-8"',
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "image/svg+xml",
]
REPLACED = [
    "application/pdf\r\nX-Injected: 1",
    "application/pdf\nfoo",
    "application/pdf\x00",
    "pdf",
    "application/",
    "/pdf",
    'text/plain; charset="a\r\nb"',
    "text/plain; charset",
    "application/pdf " + "x" * 300,
    "application/p\u00e9f",
    "",
]


@pytest.mark.parametrize("value", KEPT)
def test_a_media_type_of_the_right_shape_is_kept(value: str) -> None:
    assert media_type(value) == value


@pytest.mark.parametrize("value", REPLACED)
def test_anything_else_is_an_octet_stream(value: str) -> None:
    assert media_type(value) == OCTET_STREAM


def test_no_media_type_stays_none() -> None:
    assert media_type(None) is None
