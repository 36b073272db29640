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
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any, TypeVar

from svarinn_daemon.common import media_type
from svarinn_daemon.errors import ProtocolError
from svarinn_daemon.logs import get_logger
from svarinn_daemon.svarinn.fields import (
    as_number,
    as_text,
    check_forsendelse_id,
    item_id_and_link,
    json_type,
    pairs,
    parse_date,
    short_repr,
)

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

_SHA256 = re.compile(r"[0-9a-fA-F]{64}")
# v1 spells a metadata block's case officer both ways.
_V1_SAKSBEHANDLER = ("saksBehandler", "saksbehandler")
# A file size the ledger's BIGINT columns can add up for every file of a letter.
MAX_FILE_SIZE = 2**48
MAX_FILES = 10_000
LISTING_NAME = "hentNyeForsendelser"
# A rejected item's id goes into log lines and metrics at every poll: keep it short.
MAX_REJECTED_ID_CHARS = 100

log = get_logger(__name__)


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
    forsendelse_id, download_url, where = item_id_and_link(
        item, where=f"hentNyeForsendelser[{index}]", link_key="downloadUrl"
    )
    return Forsendelse(
        id=forsendelse_id,
        download_url=download_url,
        tittel=as_text(item.get("tittel")),
        date=parse_date(item.get("date")),
        status=as_text(item.get("status")),
        niva=as_text(item.get("niva")),
        avsender=_adressat(Avsender, item.get("avsender")),
        mottaker=_adressat(Mottaker, item.get("mottaker")),
        svar_sendes_til=_adressat(Mottaker, item.get("svarSendesTil")),
        svar_pa_forsendelse=as_text(item.get("svarPaForsendelse")),
        forsendelse_type=as_text(item.get("forsendelseType")),
        ekstern_ref=as_text(item.get("eksternRef")),
        kryptert=item.get("kryptert") if isinstance(item.get("kryptert"), bool) else None,
        metadata_fra_avleverende_system=metadata(
            item.get("metadataFraAvleverendeSystem"), saksbehandler=_V1_SAKSBEHANDLER
        ),
        metadata_for_import=metadata(
            item.get("metadataForImport"), saksbehandler=_V1_SAKSBEHANDLER
        ),
        filmetadata=parse_files(
            item.get("filmetadata"), V1_FILE_KEYS, where=f"{where}.filmetadata"
        ),
        raw=MappingProxyType(copy.deepcopy(item)),
    )


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


def _adressat(cls: type[_A], value: Any) -> _A | None:
    if not isinstance(value, dict):
        return None
    lines = [value.get(f"{prefix}{n}") for prefix in ("adresselinje", "adresse") for n in (1, 2, 3)]
    return cls(
        navn=as_text(value.get("navn")),
        adresselinjer=tuple(line for line in (as_text(v) for v in lines) if line),
        postnr=as_text(value.get("postnr")),
        poststed=as_text(value.get("poststed")),
        land=as_text(value.get("land")),
        orgnr=as_text(value.get("orgnr")),
        fnr=as_text(value.get("fnr")),
    )


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
