"""SvarInn V2 listing JSON -> the same frozen :class:`Forsendelse` records as v1.

V2 renames and retypes fields (``nedlastingslenke``, ``dato`` in ISO 8601, ``sikkerhetsniva``,
``filer[].hash/storrelse/mimeType/type``, ``mottaker.organisasjonsnummer``, nested
``metadataForImport.mappeId/journalpostId``) and adds ``lenker``, ``avgivendeSystem`` and
``taushetsbelagtPost``; this module maps them onto the one model the pipeline uses, with
v1's tolerance: unknown fields and missing optional ones are accepted, and only what the
daemon relies on is strict (the list, ``id``, ``nedlastingslenke``, the shape of ``filer``,
each ``hash`` and ``storrelse``), raising a :class:`ProtocolError` that names item and field.

:func:`parse_stored` reads a ledger's raw item of either version (the shapes do not overlap:
v1 has ``downloadUrl``, v2 ``nedlastingslenke``), so letters listed before an account
switched version are still read as what they are.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, TypeVar

from svarinn_daemon.svarinn import models as v1
from svarinn_daemon.svarinn.fields import (
    as_number,
    as_text,
    item_id_and_link,
)
from svarinn_daemon.svarinn.models import (
    Adressat,
    Avsender,
    Forsendelse,
    Lenke,
    Listing,
    Metadata,
    Mottaker,
    RejectedItem,
    parse_date,
)

__all__ = [
    "LISTING_NAME",
    "NIVA",
    "api_of",
    "parse_forsendelse_v2",
    "parse_item_v2",
    "parse_listing_v2",
    "parse_stored",
]

LISTING_NAME = "svarinn/v2/forsendelser"
# sikkerhetsniva -> v1's niva, so both versions store one value ("3", "4").
NIVA = {"BETYDELIG": "3", "HOYESTE": "4"}
_A = TypeVar("_A", bound=Adressat)


V2_FILE_KEYS = v1.FileKeys("hash", "storrelse", "mimeType", "type", extra="ekstraMetadata")


def api_of(raw: Mapping[str, Any]) -> str:
    """The API version a stored item came from: v2 items have ``nedlastingslenke``."""
    return "v2" if "nedlastingslenke" in raw and "downloadUrl" not in raw else "v1"


def parse_stored(raw: Mapping[str, Any]) -> Forsendelse:
    """A ledger's raw item, of whichever version delivered it."""
    if api_of(raw) == "v2":
        return parse_forsendelse_v2(dict(raw))
    return v1.parse_forsendelse(dict(raw))


def parse_listing_v2(data: Any) -> Listing:
    """A decoded v2 listing, malformed items set aside; only a non-list raises."""
    return v1.parse_listing(data, parse=parse_forsendelse_v2, name=LISTING_NAME)


def parse_item_v2(item: Any, *, index: int) -> Forsendelse | RejectedItem:
    """One listed v2 item: the letter, or why it cannot be read. Never raises."""
    return v1.parse_item(item, index=index, parse=parse_forsendelse_v2, name=LISTING_NAME)


def parse_forsendelse_v2(item: Any, *, index: int = 0) -> Forsendelse:
    """One v2 letter; ``index`` is its position in the listing, for error messages."""
    forsendelse_id, link, where = item_id_and_link(
        item, where=f"{LISTING_NAME}[{index}]", link_key="nedlastingslenke"
    )
    niva = as_text(item.get("sikkerhetsniva"))
    taushet = item.get("taushetsbelagtPost")
    return Forsendelse(
        id=forsendelse_id,
        download_url=link,
        tittel=as_text(item.get("tittel")),
        date=parse_date(item.get("dato")),
        niva=NIVA.get(niva, niva) if niva else None,
        avsender=_party(Avsender, item.get("avsender")),
        mottaker=_party(Mottaker, item.get("mottaker")),
        svar_sendes_til=_party(Mottaker, item.get("svarSendesTil")),
        svar_pa_forsendelse=as_text(item.get("svarPaForsendelse")),
        forsendelse_type=as_text(item.get("type")),
        ekstern_ref=as_text(item.get("eksternRef")),
        metadata_fra_avleverende_system=v1.metadata(
            item.get("metadataFraAvleverendeSystem"), extra="virksomhetsspesifikkeMetadata"
        ),
        metadata_for_import=_metadata_for_import(item.get("metadataForImport")),
        filmetadata=v1.parse_files(item.get("filer"), V2_FILE_KEYS, where=f"{where}.filer"),
        api="v2",
        lenker=_lenker(item.get("lenker")),
        avgivende_system=as_text(item.get("avgivendeSystem")),
        taushetsbelagt_post=taushet if isinstance(taushet, bool) else None,
        raw=MappingProxyType(copy.deepcopy(item)),
    )


def _party(cls: type[_A], value: Any) -> _A | None:
    if not isinstance(value, dict):
        return None
    lines = (as_text(value.get(f"adresselinje{n}")) for n in (1, 2, 3))
    return cls(
        navn=as_text(value.get("navn")),
        adresselinjer=tuple(line for line in lines if line),
        postnr=as_text(value.get("postnummer")),
        poststed=as_text(value.get("poststed")),
        land=as_text(value.get("land")),
        orgnr=as_text(value.get("organisasjonsnummer")),
        fnr=as_text(value.get("fodselsnummer")),
    )


def _metadata_for_import(value: Any) -> Metadata | None:
    if not isinstance(value, dict):
        return None
    mappe = _object(value.get("mappeId"))
    journalpost = _object(value.get("journalpostId"))
    return Metadata(
        sakssekvensnummer=as_number(mappe.get("sakssekvensnummer")),
        saksaar=as_number(mappe.get("saksaar")),
        journalpostnummer=as_number(journalpost.get("journalpostnummer")),
        journalposttype=as_text(value.get("journalposttype")),
        journalstatus=as_text(value.get("journalstatus")),
        dokumentets_dato=parse_date(value.get("dokumentetsDato")),
        tittel=as_text(value.get("tittel")),
        mappe_id=as_text(mappe.get("mappeId")),
        mappe_system_id=as_text(mappe.get("systemId")),
        journalpost_id=as_text(journalpost.get("registreringsId")),
        journalpost_system_id=as_text(journalpost.get("systemId")),
    )


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _lenker(value: Any) -> tuple[Lenke, ...]:
    """``lenker``: entries without a ``lenke`` carry nothing to follow and are left out."""
    if not isinstance(value, list):
        return ()
    return tuple(
        Lenke(
            lenke=link, tekst=as_text(entry.get("tekst")), ledetekst=as_text(entry.get("ledetekst"))
        )
        for entry in value
        if isinstance(entry, dict) and (link := as_text(entry.get("lenke")))
    )
