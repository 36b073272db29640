"""Reading SvarInn JSON, shared by both API versions: one field at a time, the files of a
letter, its metadata blocks, and a listing whose malformed items are set aside.

Real responses vary between SvarUt versions and senders: new fields appear, optional ones
are missing or ``null``, dates come as epoch milliseconds or ISO 8601 strings (or as
sentinels before year 1), ``0`` means "absent" for sizes and case numbers, older letters
have no ``sha256hash`` and senders can be persons (``fnr``, no ``orgnr``). Only what the
daemon relies on is strict: the list itself, ``id``, the download link and the shape of the
files; anything wrong there is a :class:`ProtocolError` naming item and field. Everything
else is read leniently (a wrong type becomes ``None``). :func:`parse_listing` sets a
malformed item aside (a :class:`RejectedItem`) so that one bad letter does not hold back the
others: whatever a field holds (NaN, a 400-digit number, nesting 900 deep), the item ends
either read with that field tolerated or rejected with a message naming item and field --
never with another exception. Each version's own keys are in ``v1.py`` and ``v2.py``.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from svarinn_daemon.common import media_type
from svarinn_daemon.errors import ProtocolError
from svarinn_daemon.logs import get_logger
from svarinn_daemon.svarinn.records import Filmetadata, Forsendelse, Listing, Metadata, RejectedItem

# SvarUt ids are UUIDs; this is looser, but an id travels into URL paths and file names, so
# nothing that could be a separator, a dot-segment or a control character gets through.
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Epoch milliseconds beyond this are no date (year ~318,000): float() and timedelta overflow.
_MAX_EPOCH_MS = 10**16
# SvarInn items nest about four levels deep; far deeper is hostile and would exhaust the stack.
MAX_ITEM_DEPTH = 32
_CONTAINERS = (dict, list)  # a tuple: ``dict | list`` would build a union at every test

_SHA256 = re.compile(r"[0-9a-fA-F]{64}")
# A file size the ledger's BIGINT columns can add up for every file of a letter.
MAX_FILE_SIZE = 2**48
MAX_FILES = 10_000
# A rejected item's id goes into log lines and metrics at every poll: keep it short.
MAX_REJECTED_ID_CHARS = 100

log = get_logger(__name__)


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
    if not isinstance(item, _CONTAINERS):
        return
    # Only containers go on the stack (an item's values are mostly not): a value sits one
    # level below its container, so a non-empty container on the last level is too deep.
    stack: list[tuple[dict[str, Any] | list[Any], int]] = [(item, 1)]
    while stack:
        value, depth = stack.pop()
        children = value.values() if isinstance(value, dict) else value
        if depth >= MAX_ITEM_DEPTH and children:
            raise ProtocolError(f"{where}: nested more than {MAX_ITEM_DEPTH} levels deep")
        stack.extend((v, depth + 1) for v in children if isinstance(v, _CONTAINERS))


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


# --- a listing, a letter's files and metadata ---------------------------------------------


ItemParser = Callable[..., Forsendelse]  # (item, *, index) -> Forsendelse, or raises


def parse_listing(data: Any, *, parse: ItemParser, name: str) -> Listing:
    """Parse a decoded listing (``parse``: one item of its API version, ``name`` its call),
    setting malformed items aside. Only a response that is not a JSON list raises: the
    daemon cannot read any of it."""
    if not isinstance(data, list):
        raise ProtocolError(f"{name}: expected a JSON list, got {json_type(data)}")
    letters: list[Forsendelse] = []
    rejected: list[RejectedItem] = []
    for index, item in enumerate(data):
        parsed = parse_item(item, index=index, parse=parse, name=name)
        if isinstance(parsed, Forsendelse):
            letters.append(parsed)
        else:
            rejected.append(parsed)
    return Listing(tuple(letters), tuple(rejected))


def parse_item(
    item: Any, *, index: int, parse: ItemParser, name: str
) -> Forsendelse | RejectedItem:
    """One listed item: the letter, or why it cannot be read. Never raises: any value in
    any field ends here, so one hostile item cannot stop the others."""
    try:
        return parse(item, index=index)
    except ProtocolError as exc:
        return rejected_item(item, index=index, error=exc)
    except (ValueError, OverflowError, RecursionError, TypeError, MemoryError) as exc:
        what = f"{type(exc).__name__}: {str(exc)[:200]}"
        error = ProtocolError(f"{name}[{index}]: cannot be read ({what})")
        return rejected_item(item, index=index, error=error)


def rejected_item(item: Any, *, index: int, error: ProtocolError) -> RejectedItem:
    """A RejectedItem for ``item`` (None when it could not even be decoded)."""
    raw_id = item.get("id") if isinstance(item, dict) else None
    if not isinstance(raw_id, str):
        return RejectedItem(index, None, error)
    if len(raw_id) > MAX_REJECTED_ID_CHARS:
        raw_id = f"{raw_id[:MAX_REJECTED_ID_CHARS]}... ({len(raw_id)} characters)"
    return RejectedItem(index, raw_id, error)


@dataclass(frozen=True)
class FileKeys:
    """What one API version calls a file's fields (``single``: a lone object counts as a
    list of one, as some v1 senders send it)."""

    hash: str
    size: str
    mimetype: str
    dokument_type: str
    extra: str | None = None
    single: bool = False


def parse_files(value: Any, keys: FileKeys, *, where: str) -> tuple[Filmetadata, ...]:
    """filmetadata (v1) or filer (v2): each file checked, a typed error naming the field."""
    if value is None:
        return ()
    if keys.single and isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        raise ProtocolError(f"{where}: expected a list of objects, got {json_type(value)}")
    if len(value) > MAX_FILES:
        raise ProtocolError(f"{where}: {len(value)} files, more than {MAX_FILES}")
    return tuple(_file(entry, keys, where=f"{where}[{i}]") for i, entry in enumerate(value))


def _file(value: Any, keys: FileKeys, *, where: str) -> Filmetadata:
    if not isinstance(value, dict):
        raise ProtocolError(f"{where}: expected an object, got {json_type(value)}")
    filnavn = value.get("filnavn")
    if filnavn is not None and not isinstance(filnavn, str):
        raise ProtocolError(f"{where}.filnavn: expected a string, got {json_type(filnavn)}")
    digest = value.get(keys.hash)
    if digest in (None, ""):
        digest = None  # without it the letter is imported unverified
    elif not isinstance(digest, str) or not _SHA256.fullmatch(digest.strip()):
        raise ProtocolError(
            f"{where}.{keys.hash}: {short_repr(digest)} is not a hex sha256: not 64 hex characters"
        )
    else:
        digest = digest.strip().lower()
    size = value.get(keys.size)
    if size is not None and (
        isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= MAX_FILE_SIZE
    ):
        raise ProtocolError(f"{where}.{keys.size}: {short_repr(size)} is not a byte count")
    return Filmetadata(
        filnavn=filnavn or None,
        mimetype=_mimetype(where, as_text(value.get(keys.mimetype))),
        sha256hash=digest,
        size=size or None,
        dokument_type=as_text(value.get(keys.dokument_type)),
        ekstra_metadata=pairs(value.get(keys.extra)) if keys.extra else (),
    )


def _mimetype(where: str, declared: str | None) -> str | None:
    """The sender's MIME type, or application/octet-stream (logged) when it has not the
    shape of one: it goes into headers an adapter writes (issue: header injection)."""
    checked = media_type(declared)
    if checked != declared:
        log.warning("listing.mimetype_replaced", where=where, declared=short_repr(declared))
    return checked


def metadata(
    value: Any,
    *,
    extra: str = "ekstraMetadata",
    saksbehandler: tuple[str, ...] = ("saksbehandler",),
) -> Metadata | None:
    """metadataFraAvleverendeSystem or metadataForImport; ``extra`` and ``saksbehandler`` are
    what the API version calls the key/value list and the case officer."""
    if not isinstance(value, dict):
        return None
    officer = next((value[key] for key in saksbehandler if key in value), None)
    return Metadata(
        sakssekvensnummer=as_number(value.get("sakssekvensnummer")),
        saksaar=as_number(value.get("saksaar")),
        journalaar=as_number(value.get("journalaar")),
        journalsekvensnummer=as_number(value.get("journalsekvensnummer")),
        journalpostnummer=as_number(value.get("journalpostnummer")),
        journalposttype=as_text(value.get("journalposttype")),
        journalstatus=as_text(value.get("journalstatus")),
        journaldato=parse_date(value.get("journaldato")),
        dokumentets_dato=parse_date(value.get("dokumentetsDato")),
        tittel=as_text(value.get("tittel")),
        saksbehandler=as_text(officer),
        ekstra_metadata=pairs(value.get(extra)),
    )
