"""Small things every layer shares: the clock type, clipping text, loopback hosts."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from ipaddress import ip_address

__all__ = ["ELLIPSIS", "LOG_LEVELS", "MAX_WORKER_ID", "Clock", "clip", "is_loopback", "utc_now"]

Clock = Callable[[], datetime]  # aware UTC datetimes; tests pass a FakeClock
ELLIPSIS = "…"
LOG_LEVELS = ("debug", "info", "warning", "error")  # [logging] level and --log-level
MAX_WORKER_ID = 100  # characters in [daemon] worker_id, in leases and audit events


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
