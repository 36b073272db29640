"""Small things every layer shares: the clock type and clipping text for messages."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

__all__ = ["ELLIPSIS", "LOG_LEVELS", "MAX_WORKER_ID", "Clock", "clip", "utc_now"]

Clock = Callable[[], datetime]  # aware UTC datetimes; tests pass a FakeClock
ELLIPSIS = "…"
LOG_LEVELS = ("debug", "info", "warning", "error")  # [logging] level and --log-level
MAX_WORKER_ID = 100  # characters in [daemon] worker_id, in leases and audit events


def utc_now() -> datetime:
    return datetime.now(UTC)


def clip(text: str, limit: int) -> str:
    """``text`` if it fits in ``limit`` characters, else its start ending in an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1] + ELLIPSIS
