"""Small things every layer shares: the clock type, clipping text, loopback hosts."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from ipaddress import ip_address

__all__ = [
    "ELLIPSIS",
    "LOG_LEVELS",
    "MAX_WORKER_ID",
    "OCTET_STREAM",
    "Clock",
    "clip",
    "is_loopback",
    "media_type",
    "utc_now",
]

Clock = Callable[[], datetime]  # aware UTC datetimes; tests pass a FakeClock
ELLIPSIS = "…"
LOG_LEVELS = ("debug", "info", "warning", "error")  # [logging] level and --log-level
MAX_WORKER_ID = 100  # characters in [daemon] worker_id, in leases and audit events


OCTET_STREAM = "application/octet-stream"
MAX_MEDIA_TYPE = 255
# RFC 6838 restricted names, and parameters whose values are tokens or quoted strings of
# printable ASCII: nothing that could end a header line or start another.
_NAME = r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}"
_VALUE = r'(?:[A-Za-z0-9!#$%&\'*+.^_`|~-]+|"[\x20\x21\x23-\x5b\x5d-\x7e]*")'
_MEDIA_TYPE = re.compile(rf"{_NAME}/{_NAME}(?:[ \t]*;[ \t]*{_NAME}={_VALUE})*")


def media_type(value: str | None) -> str | None:
    """A sender's MIME type if it has RFC 6838's shape (type/subtype, parameters), at most
    255 printable ASCII characters; ``application/octet-stream`` for anything else (CR, LF,
    NUL, quotes out of place: a value that could write a header of its own); None stays."""
    if value is None:
        return None
    return value if len(value) <= MAX_MEDIA_TYPE and _MEDIA_TYPE.fullmatch(value) else OCTET_STREAM


def utc_now() -> datetime:
    return datetime.now(UTC)


def clip(text: str, limit: int) -> str:
    """``text`` if it fits in ``limit`` characters, else its start ending in an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1] + ELLIPSIS


def is_loopback(host: str | None) -> bool:
    """Whether ``host`` (a URL's host name) is this machine: plain http is allowed there."""
    if host == "localhost":
        return True
    try:
        return ip_address(host or "").is_loopback
    except ValueError:
        return False
