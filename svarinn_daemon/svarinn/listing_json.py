"""Decode a hentNyeForsendelser body one item at a time, within limits. Pure, no I/O.

The body comes from the network, so it is hostile until read. ``json.loads`` would build
the whole list at once (a 2 MB body of a million ``0`` items cost the daemon a GB), fail the
whole body over one number longer than Python converts, and raise RecursionError over one
item nested thousands deep -- each time holding back every good letter on the page. Here
each top-level item is decoded on its own: an item with a value no JSON-reading system
agrees on (``NaN``, ``Infinity``, a number of more than :data:`MAX_NUMBER_CHARS`
characters) or nested past the interpreter's stack is handed back as undecodable with the
reason, and the others are decoded as usual. So is an object or array of more than
:data:`MAX_ITEM_CHARS` characters (a real item is a few KB; a 16 MB object of a million
keys would cost 300 MB decoded): it is measured without being decoded. A page of more than
``max_items`` items is refused before the rest of it is decoded.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from svarinn_daemon.svarinn.parsing import json_type

__all__ = [
    "MAX_ITEM_CHARS",
    "MAX_NUMBER_CHARS",
    "DecodedItem",
    "NotAList",
    "TooManyItems",
    "iter_items",
]

MAX_NUMBER_CHARS = 40  # an epoch in ms is 13 digits, a 64-bit integer at most 20
MAX_ITEM_CHARS = 2**20
_WS = re.compile(r"[ \t\n\r]*")
# A string (with escapes) or a bracket: enough to find where an undecodable item ends.
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)
_MEMBER_STRING = re.compile(r'[ \t\n\r]*:[ \t\n\r]*("(?:[^"\\]|\\.)*")', re.DOTALL)


class NotAList(ValueError):
    """The body's top level is not an array; ``kind`` says what it is."""

    def __init__(self, kind: str):
        self.kind = kind
        super().__init__(f"expected a JSON list, got {kind}")


class TooManyItems(ValueError):
    """The page has more items than the limit."""


@dataclass(frozen=True)
class DecodedItem:
    """One top-level item: ``value`` when it decoded; else ``problem`` says why not, and
    ``value`` is what could be read of it (for its id), or None."""

    index: int
    value: Any
    problem: str | None = None


class _Invalid:
    """Stands in for a value that must not enter the daemon; found again by _find_invalid."""

    __slots__ = ("what",)

    def __init__(self, what: str):
        self.what = what


def _parse_int(text: str) -> Any:
    if len(text) > MAX_NUMBER_CHARS:
        return _Invalid(f"a number of {len(text)} digits")
    return int(text)


def _parse_float(text: str) -> Any:
    if len(text) > MAX_NUMBER_CHARS:
        return _Invalid(f"a number of {len(text)} characters")
    value = float(text)
    return value if math.isfinite(value) else _Invalid(f"{text} (out of range)")


def _parse_constant(name: str) -> Any:
    return _Invalid(f"{name} (not JSON)")


_DECODER = json.JSONDecoder(
    parse_int=_parse_int, parse_float=_parse_float, parse_constant=_parse_constant
)


def iter_items(text: str, *, max_items: int) -> Iterator[DecodedItem]:
    """Every top-level item of the JSON array ``text``, in order.

    Raises :class:`json.JSONDecodeError` when the text is not JSON, :class:`NotAList` when
    it is JSON but no array, :class:`TooManyItems` at item ``max_items + 1``."""
    pos = _skip_ws(text, 0)
    if not text.startswith("[", pos):
        raise NotAList(_top_level_kind(text, pos))
    pos = _skip_ws(text, pos + 1)
    if text.startswith("]", pos):
        _check_end(text, pos + 1)
        return
    index = 0
    while True:
        if index >= max_items:
            raise TooManyItems(f"more than {max_items} items")
        item, end = _decode_item(text, pos, index)
        yield item
        pos = _skip_ws(text, end)
        if text.startswith(",", pos):
            pos = _skip_ws(text, pos + 1)
            index += 1
        elif text.startswith("]", pos):
            _check_end(text, pos + 1)
            return
        else:
            raise json.JSONDecodeError("expected ',' or ']'", text, pos)


def _decode_item(text: str, pos: int, index: int) -> tuple[DecodedItem, int]:
    """The item starting at ``pos`` and where it ends; objects and arrays are measured
    before they are decoded, unless what is left of the text is too short to hold one
    that is too long (every page of real letters: measuring scanned each string in Python,
    the listing's largest cost per letter)."""
    if len(text) - pos > MAX_ITEM_CHARS and text.startswith(("{", "["), pos):
        end = _skip_value(text, pos)
        if end - pos > MAX_ITEM_CHARS:
            problem = f"{end - pos} characters long, more than {MAX_ITEM_CHARS}"
            return DecodedItem(index, _top_level_id(text, pos, end), problem), end
    try:
        value, end = _DECODER.raw_decode(text, pos)
    except RecursionError:
        end = _skip_value(text, pos)
        return DecodedItem(index, _top_level_id(text, pos, end), "nested too deeply to read"), end
    return DecodedItem(index, value, _find_invalid(value)), end


def _skip_ws(text: str, pos: int) -> int:
    return _WS.match(text, pos).end()  # type: ignore[union-attr]  # matches the empty string


def _check_end(text: str, pos: int) -> None:
    pos = _skip_ws(text, pos)
    if pos != len(text):
        raise json.JSONDecodeError("extra data after the list", text, pos)


def _top_level_kind(text: str, pos: int) -> str:
    """What the body holds instead of a list; raises JSONDecodeError when it is no JSON."""
    try:
        value, end = _DECODER.raw_decode(text, pos)
    except RecursionError:
        end = _skip_value(text, pos)
        value = {}
    _check_end(text, end)
    return json_type(value)


def _skip_value(text: str, pos: int) -> int:
    """The end of the array or object starting at ``pos``, found without recursion."""
    depth = 0
    for match in _TOKEN.finditer(text, pos):
        token = match.group(0)
        if token in ("[", "{"):
            depth += 1
        elif token in ("]", "}"):
            depth -= 1
            if depth == 0:
                return match.end()
    raise json.JSONDecodeError("unterminated array or object", text, pos)


def _top_level_id(text: str, start: int, end: int) -> dict[str, str] | None:
    """``{"id": ...}`` of an object too deep to decode, so the rejection can name it."""
    depth = 0
    for match in _TOKEN.finditer(text, start, end):
        piece = match.group(0)
        if piece in ("[", "{"):
            depth += 1
        elif piece in ("]", "}"):
            depth -= 1
        elif depth == 1 and piece == '"id"':
            value = _MEMBER_STRING.match(text, match.end())
            if value is not None:
                decoded = json.loads(value.group(1))
                return {"id": decoded} if isinstance(decoded, str) else None
    return None


def _find_invalid(value: Any) -> str | None:
    """Where the first stand-in for a refused value is, as a field path; None if none."""
    stack: list[tuple[Any, str]] = [(value, "")]
    while stack:
        current, path = stack.pop()
        if isinstance(current, _Invalid):
            return f"{path or 'the item'}: {current.what}"
        if isinstance(current, dict):
            stack.extend((v, f"{path}.{k[:80]}" if path else k[:80]) for k, v in current.items())
        elif isinstance(current, list):
            stack.extend((v, f"{path}[{i}]") for i, v in enumerate(current))
    return None
