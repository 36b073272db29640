"""Readers for one field of SvarInn JSON each, shared by both API versions.

Each reads leniently (a wrong type becomes ``None``) or strictly (a typed
:class:`ProtocolError` naming the field), as the field's use demands; see
:mod:`svarinn_daemon.svarinn.models` for which is which.
"""

from __future__ import annotations

import functools
import math
import re
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from svarinn_daemon.errors import ProtocolError

# SvarUt ids are UUIDs; this is looser, but an id travels into URL paths and file names, so
# nothing that could be a separator, a dot-segment or a control character gets through.
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Epoch milliseconds beyond this are no date (year ~318,000): float() and timedelta overflow.
_MAX_EPOCH_MS = 10**16
# SvarInn items nest about four levels deep; far deeper is hostile and would exhaust the stack.
MAX_ITEM_DEPTH = 32


def item_id_and_link(item: Any, *, where: str, link_key: str) -> tuple[str, str, str]:
    """What every listed item must have, in either version: an object, not nested too
    deep, a safe id and an http(s) download link. Returns the id, the link, and ``where``
    with the id added, for the messages about the item's other fields."""
    if not isinstance(item, dict):
        raise ProtocolError(f"{where}: expected a JSON object, got {json_type(item)}")
    check_depth(item, where=where)
    raw_id = item.get("id")
    if not isinstance(raw_id, str):
        raise ProtocolError(f"{where}.id: missing or not a string ({json_type(raw_id)})")
    where = f"{where} (id {raw_id[:80]!r})"
    forsendelse_id = check_forsendelse_id(raw_id, where=f"{where}.id")
    link = item.get(link_key)
    if not isinstance(link, str) or not link:
        raise ProtocolError(f"{where}.{link_key}: missing or not a string")
    try:
        parts = urlsplit(link)
        parts.port  # noqa: B018 -- raises on a port that is no port ("host:99999", "host:x")
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ProtocolError(f"{where}.{link_key}: {link[:200]!r} is not an http(s) URL")
    return forsendelse_id, link, where


def check_forsendelse_id(value: str, *, where: str = "forsendelse id") -> str:
    """Return ``value`` if it is safe to put in a URL path and a file name."""
    if not _ID.fullmatch(value):
        raise ProtocolError(
            f"{where}: {value[:80]!r} is not a forsendelse id (letters, digits, '-', '_')"
        )
    return value


def parse_date(value: Any) -> datetime | None:
    """Epoch milliseconds or ISO 8601 -> an aware datetime; None for absent or sentinels.

    Sentinels (year 1 or earlier, which Java and .NET use for "no date") and values that
    are not a date at all become None: these dates are informative, never worth a failure.
    """
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return _from_epoch_ms(float(value)) if abs(value) < _MAX_EPOCH_MS else None
    if isinstance(value, float):
        return _from_epoch_ms(value)
    if not isinstance(value, str) or len(value) > 64:
        return None
    text = value.strip()
    if re.fullmatch(r"-?\d{9,16}", text):
        return _from_epoch_ms(float(text))
    if text.startswith("-") or text[:4] in ("0000", "0001"):
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except (ValueError, OverflowError):
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=_local_zone())
    return parsed


@functools.cache
def _local_zone() -> tzinfo:
    """A naive ISO timestamp from a Norwegian service means Norwegian local time."""
    try:
        return ZoneInfo("Europe/Oslo")
    except (ZoneInfoNotFoundError, ValueError):  # a system without tz data
        return UTC


def _from_epoch_ms(ms: float) -> datetime | None:
    if not math.isfinite(ms) or abs(ms) >= _MAX_EPOCH_MS:
        return None
    try:
        parsed = _EPOCH + timedelta(milliseconds=ms)
    except (OverflowError, ValueError):
        return None
    return None if parsed.year <= 1 else parsed


def pairs(value: Any) -> tuple[tuple[str, str | None], ...]:
    """A list of ``{key, value}``; entries without a key are left out."""
    if not isinstance(value, list):
        return ()
    return tuple(
        (key, as_text(entry.get("value")))
        for entry in value
        if isinstance(entry, dict) and (key := as_text(entry.get("key")))
    )


def as_text(value: Any) -> str | None:
    """A string field: empty, missing, null or not a string -> None; numbers -> their text
    (numbers longer than any identifier SvarUt sends are no text either)."""
    if isinstance(value, str):
        return value or None
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) < 10**40:
        return str(value)
    return None


def short_repr(value: Any) -> str:
    """A value for an error message: its type and at most 80 characters of it."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**40:
        return "a number of more than 40 digits"
    if isinstance(value, str):
        return repr(value[:80])
    if isinstance(value, bool | int | float) or value is None:
        return repr(value)
    return json_type(value)


def check_depth(item: Any, *, where: str) -> None:
    """Refuse nesting deeper than MAX_ITEM_DEPTH, without recursion (it is what we fear)."""
    stack: list[tuple[Any, int]] = [(item, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_ITEM_DEPTH:
            raise ProtocolError(f"{where}: nested more than {MAX_ITEM_DEPTH} levels deep")
        if isinstance(value, dict):
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)


def as_number(value: Any) -> int | None:
    """A case number: 0 (SvarUt's "absent"), null or not a whole number -> None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and len(value) < 64 and re.fullmatch(r"-?\d{1,18}", value.strip()):
        value = int(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or value == 0 or abs(value) >= 2**63:
        return None  # 0 is SvarUt's "absent"; beyond 64 bits no case number
    return value


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__
