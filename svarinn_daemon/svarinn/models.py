"""hentNyeForsendelser JSON -> frozen records, tolerant the way real responses need.

Real responses vary between SvarUt versions and senders: new fields appear, optional ones
are missing or ``null``, dates come as epoch milliseconds or ISO 8601 strings (or as
sentinels before year 1), ``0`` means "absent" for sizes and case numbers, older letters
have no ``sha256hash`` and senders can be persons (``fnr``, no ``orgnr``). Only what the
daemon relies on is strict: the list itself, ``id``, ``downloadUrl`` and the shape of
``filmetadata``; anything wrong there is a :class:`ProtocolError` naming item and field.
Everything else is read leniently (a wrong type becomes ``None``); ``raw`` keeps the letter
exactly as received for the ledger. :func:`parse_listing` sets a malformed item aside (a
:class:`RejectedItem`) so that one bad letter does not hold back the others: whatever a field
holds (NaN, a 400-digit number, nesting 900 deep), the item ends either read with that field
tolerated or rejected with a message naming item and field -- never with another exception.
"""

from __future__ import annotations

import copy
import functools
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from types import MappingProxyType
from typing import Any, TypeVar
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from svarinn_daemon.errors import ProtocolError

__all__ = [
    "Adressat",
    "Avsender",
    "Filmetadata",
    "Forsendelse",
    "Lenke",
    "Listing",
    "Metadata",
    "Mottaker",
    "RejectedItem",
    "check_forsendelse_id",
    "parse_date",
    "parse_forsendelse",
    "parse_forsendelser",
    "parse_item",
    "parse_listing",
    "rejected_item",
]

# SvarUt ids are UUIDs; this is looser, but an id travels into URL paths and file names, so
# nothing that could be a separator, a dot-segment or a control character gets through.
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")
_SHA256 = re.compile(r"[0-9a-fA-F]{64}")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Epoch milliseconds beyond this are no date (year ~318,000): float() and timedelta overflow.
_MAX_EPOCH_MS = 10**16
# SvarInn items nest about four levels deep; far deeper is hostile and would exhaust the stack.
MAX_ITEM_DEPTH = 32
# A file size the ledger's BIGINT columns can add up for every file of a letter.
MAX_FILE_SIZE = 2**48
MAX_FILES = 10_000
LISTING_NAME = "hentNyeForsendelser"
# A rejected item's id goes into log lines and metrics at every poll: keep it short.
MAX_REJECTED_ID_CHARS = 100


@dataclass(frozen=True)
class Adressat:
    """A party on a letter; an organisation has ``orgnr``, a person ``fnr``."""

    navn: str | None = None
    adresselinjer: tuple[str, ...] = ()
    postnr: str | None = None
    poststed: str | None = None
    land: str | None = None
    orgnr: str | None = None
    fnr: str | None = field(default=None, repr=False)  # a national id number: keep it out of logs

    @property
    def is_person(self) -> bool:
        return self.orgnr is None and self.fnr is not None


@dataclass(frozen=True)
class Avsender(Adressat):
    """The sender (``avsender``)."""


@dataclass(frozen=True)
class Mottaker(Adressat):
    """The receiver (``mottaker``) or the reply address (``svarSendesTil``)."""


@dataclass(frozen=True)
class Metadata:
    """``metadataFraAvleverendeSystem`` or ``metadataForImport``; ``0`` numbers are None.

    ``metadataForImport`` has only some of these fields; the others stay None.
    """

    sakssekvensnummer: int | None = None
    saksaar: int | None = None
    journalaar: int | None = None
    journalsekvensnummer: int | None = None
    journalpostnummer: int | None = None
    journalposttype: str | None = None
    journalstatus: str | None = None
    journaldato: datetime | None = None
    dokumentets_dato: datetime | None = None
    tittel: str | None = None
    saksbehandler: str | None = None
    ekstra_metadata: tuple[tuple[str, str | None], ...] = ()
    # v2's metadataForImport names the case and record in the receiving system:
    # mappeId.mappeId and journalpostId.registreringsId, each with its systemId.
    mappe_id: str | None = None
    mappe_system_id: str | None = None
    journalpost_id: str | None = None
    journalpost_system_id: str | None = None


@dataclass(frozen=True)
class Filmetadata:
    """One file of a letter (for a zip: one file inside it). ``size`` None means unknown."""

    filnavn: str | None
    mimetype: str | None = None
    sha256hash: str | None = None  # lower-case hex; None for older letters
    size: int | None = None
    dokument_type: str | None = None
    ekstra_metadata: tuple[tuple[str, str | None], ...] = ()  # v2's filer[].ekstraMetadata


@dataclass(frozen=True)
class Lenke:
    """A link attached to a v2 letter (``lenker``)."""

    lenke: str
    tekst: str | None = None
    ledetekst: str | None = None


@dataclass(frozen=True)
class Forsendelse:
    """One letter from either API version. ``raw`` is the JSON object as received, ``api``
    the version that delivered it ("v1" or "v2"); the fields mean the same for both."""

    id: str
    download_url: str
    tittel: str | None = None
    date: datetime | None = None
    status: str | None = None
    niva: str | None = None
    avsender: Avsender | None = None
    mottaker: Mottaker | None = None
    svar_sendes_til: Mottaker | None = None
    svar_pa_forsendelse: str | None = None
    forsendelse_type: str | None = None
    ekstern_ref: str | None = None
    metadata_fra_avleverende_system: Metadata | None = None
    metadata_for_import: Metadata | None = None
    filmetadata: tuple[Filmetadata, ...] = ()
    kryptert: bool | None = None  # false: SvarUt sends the file unencrypted
    api: str = "v1"
    lenker: tuple[Lenke, ...] = ()  # v2 only
    avgivende_system: str | None = None  # v2 only
    taushetsbelagt_post: bool | None = None  # v2 only
    raw: Mapping[str, Any] = field(
        default_factory=lambda: MappingProxyType({}), repr=False, compare=False
    )

    def raw_json(self) -> str:
        """``raw`` serialised, for the ledger."""
        return json.dumps(dict(self.raw), ensure_ascii=False, separators=(",", ":"))


_A = TypeVar("_A", bound=Adressat)


# --- parsing ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RejectedItem:
    """A listed item the daemon cannot read; ``forsendelse_id`` when the item had one."""

    index: int
    forsendelse_id: str | None
    error: ProtocolError


@dataclass(frozen=True)
class Listing:
    letters: tuple[Forsendelse, ...]
    rejected: tuple[RejectedItem, ...] = ()


def parse_forsendelser(data: Any) -> tuple[Forsendelse, ...]:
    """Parse a decoded hentNyeForsendelser response strictly: the first bad item raises."""
    listing = parse_listing(data)
    if listing.rejected:
        raise listing.rejected[0].error
    return listing.letters


ItemParser = Callable[..., Forsendelse]  # (item, *, index) -> Forsendelse, or raises


def parse_listing(
    data: Any, *, parse: ItemParser | None = None, name: str = LISTING_NAME
) -> Listing:
    """Parse a decoded listing (``parse``: one item of its API version, v1 by default),
    setting malformed items aside. Only a response that is not a JSON list raises: the
    daemon cannot read any of it."""
    if not isinstance(data, list):
        raise ProtocolError(f"{name}: expected a JSON list, got {_json_type(data)}")
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
    item: Any, *, index: int, parse: ItemParser | None = None, name: str = LISTING_NAME
) -> Forsendelse | RejectedItem:
    """One listed item: the letter, or why it cannot be read. Never raises: any value in
    any field ends here, so one hostile item cannot stop the others."""
    try:
        return (parse or parse_forsendelse)(item, index=index)
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


def parse_forsendelse(item: Any, *, index: int = 0) -> Forsendelse:
    """Parse one letter; ``index`` is its position in the response, for error messages."""
    where = f"hentNyeForsendelser[{index}]"
    if not isinstance(item, dict):
        raise ProtocolError(f"{where}: expected a JSON object, got {_json_type(item)}")
    _check_depth(item, where=where)
    raw_id = item.get("id")
    if not isinstance(raw_id, str):
        raise ProtocolError(f"{where}.id: missing or not a string ({_json_type(raw_id)})")
    where = f"{where} (id {raw_id[:80]!r})"
    forsendelse_id = check_forsendelse_id(raw_id, where=f"{where}.id")
    download_url = item.get("downloadUrl")
    if not isinstance(download_url, str) or not download_url:
        raise ProtocolError(f"{where}.downloadUrl: missing or not a string")
    parts = urlsplit(download_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ProtocolError(f"{where}.downloadUrl: {download_url[:200]!r} is not an http(s) URL")
    return Forsendelse(
        id=forsendelse_id,
        download_url=download_url,
        tittel=_text(item.get("tittel")),
        date=parse_date(item.get("date")),
        status=_text(item.get("status")),
        niva=_text(item.get("niva")),
        avsender=_adressat(Avsender, item.get("avsender")),
        mottaker=_adressat(Mottaker, item.get("mottaker")),
        svar_sendes_til=_adressat(Mottaker, item.get("svarSendesTil")),
        svar_pa_forsendelse=_text(item.get("svarPaForsendelse")),
        forsendelse_type=_text(item.get("forsendelseType")),
        ekstern_ref=_text(item.get("eksternRef")),
        kryptert=item.get("kryptert") if isinstance(item.get("kryptert"), bool) else None,
        metadata_fra_avleverende_system=_metadata(item.get("metadataFraAvleverendeSystem")),
        metadata_for_import=_metadata(item.get("metadataForImport")),
        filmetadata=parse_files(
            item.get("filmetadata"), V1_FILE_KEYS, where=f"{where}.filmetadata"
        ),
        raw=MappingProxyType(copy.deepcopy(item)),
    )


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


V1_FILE_KEYS = FileKeys("sha256hash", "size", "mimetype", "dokumentType", single=True)


def parse_files(value: Any, keys: FileKeys, *, where: str) -> tuple[Filmetadata, ...]:
    """filmetadata (v1) or filer (v2): each file checked, a typed error naming the field."""
    if value is None:
        return ()
    if keys.single and isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        raise ProtocolError(f"{where}: expected a list of objects, got {_json_type(value)}")
    if len(value) > MAX_FILES:
        raise ProtocolError(f"{where}: {len(value)} files, more than {MAX_FILES}")
    return tuple(_file(entry, keys, where=f"{where}[{i}]") for i, entry in enumerate(value))


def _file(value: Any, keys: FileKeys, *, where: str) -> Filmetadata:
    if not isinstance(value, dict):
        raise ProtocolError(f"{where}: expected an object, got {_json_type(value)}")
    filnavn = value.get("filnavn")
    if filnavn is not None and not isinstance(filnavn, str):
        raise ProtocolError(f"{where}.filnavn: expected a string, got {_json_type(filnavn)}")
    digest = value.get(keys.hash)
    if digest in (None, ""):
        digest = None  # without it the letter is imported unverified
    elif not isinstance(digest, str) or not _SHA256.fullmatch(digest.strip()):
        raise ProtocolError(
            f"{where}.{keys.hash}: {_short(digest)} is not a hex sha256: not 64 hex characters"
        )
    else:
        digest = digest.strip().lower()
    size = value.get(keys.size)
    if size is not None and (
        isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= MAX_FILE_SIZE
    ):
        raise ProtocolError(f"{where}.{keys.size}: {_short(size)} is not a byte count")
    return Filmetadata(
        filnavn=filnavn or None,
        mimetype=_text(value.get(keys.mimetype)),
        sha256hash=digest,
        size=size or None,
        dokument_type=_text(value.get(keys.dokument_type)),
        ekstra_metadata=pairs(value.get(keys.extra)) if keys.extra else (),
    )


def pairs(value: Any) -> tuple[tuple[str, str | None], ...]:
    """A list of ``{key, value}``; entries without a key are left out."""
    if not isinstance(value, list):
        return ()
    return tuple(
        (key, _text(entry.get("value")))
        for entry in value
        if isinstance(entry, dict) and (key := _text(entry.get("key")))
    )


def _adressat(cls: type[_A], value: Any) -> _A | None:
    if not isinstance(value, dict):
        return None
    lines = [value.get(f"{prefix}{n}") for prefix in ("adresselinje", "adresse") for n in (1, 2, 3)]
    return cls(
        navn=_text(value.get("navn")),
        adresselinjer=tuple(line for line in (_text(v) for v in lines) if line),
        postnr=_text(value.get("postnr")),
        poststed=_text(value.get("poststed")),
        land=_text(value.get("land")),
        orgnr=_text(value.get("orgnr")),
        fnr=_text(value.get("fnr")),
    )


def _metadata(value: Any) -> Metadata | None:
    if not isinstance(value, dict):
        return None
    extra = value.get("ekstraMetadata")
    return Metadata(
        sakssekvensnummer=_number(value.get("sakssekvensnummer")),
        saksaar=_number(value.get("saksaar")),
        journalaar=_number(value.get("journalaar")),
        journalsekvensnummer=_number(value.get("journalsekvensnummer")),
        journalpostnummer=_number(value.get("journalpostnummer")),
        journalposttype=_text(value.get("journalposttype")),
        journalstatus=_text(value.get("journalstatus")),
        journaldato=parse_date(value.get("journaldato")),
        dokumentets_dato=parse_date(value.get("dokumentetsDato")),
        tittel=_text(value.get("tittel")),
        saksbehandler=_text(value.get("saksBehandler", value.get("saksbehandler"))),
        ekstra_metadata=pairs(extra),
    )


def _text(value: Any) -> str | None:
    """A string field: empty, missing, null or not a string -> None; numbers -> their text
    (numbers longer than any identifier SvarUt sends are no text either)."""
    if isinstance(value, str):
        return value or None
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) < 10**40:
        return str(value)
    return None


def _short(value: Any) -> str:
    """A value for an error message: its type and at most 80 characters of it."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**40:
        return "a number of more than 40 digits"
    if isinstance(value, str):
        return repr(value[:80])
    if isinstance(value, bool | int | float) or value is None:
        return repr(value)
    return _json_type(value)


def _check_depth(item: Any, *, where: str) -> None:
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


def _number(value: Any) -> int | None:
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


def _json_type(value: Any) -> str:
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
