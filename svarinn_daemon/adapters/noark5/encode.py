"""A registration in Noark 5 tjenestegrensesnitt's words (``application/vnd.noark5+json``),
and its answers read back. Pure, no I/O.

Every object is found through ``_links`` keyed by relation URIs under
``https://rel.arkivverket.no/noark5/v5/api/``; a listing answers ``{"results": [...]}``;
codes are objects (``{"kode": "I"}``). The standard has no external key for a journalpost:
the forsendelse id goes into the journalpost's ``virksomhetsspesifikkeMetadata`` (with how
many documents it gets, which ``has`` counts) and into each document description's
``eksternReferanse``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from svarinn_daemon.adapters.registration import Party, RegisteredDocument, Registration

__all__ = [
    "KEY",
    "REL",
    "collection_case",
    "dokumentbeskrivelse",
    "dokumentobjekt",
    "filter_case",
    "filter_journalpost",
    "filter_title",
    "journalpost",
    "korrespondansepart",
    "link",
    "results",
]

REL = "https://rel.arkivverket.no/noark5/v5/api/"
ARKIV = REL + "arkivstruktur/arkiv/"
ARKIVDEL = REL + "arkivstruktur/arkivdel/"
SAKSMAPPE = REL + "sakarkiv/saksmappe/"
NY_SAKSMAPPE = REL + "sakarkiv/ny-saksmappe/"
JOURNALPOST = REL + "sakarkiv/journalpost/"
NY_JOURNALPOST = REL + "sakarkiv/ny-journalpost/"
NY_KORRESPONDANSEPARTENHET = REL + "arkivstruktur/ny-korrespondansepartenhet/"
NY_KORRESPONDANSEPARTPERSON = REL + "arkivstruktur/ny-korrespondansepartperson/"
DOKUMENTBESKRIVELSE = REL + "arkivstruktur/dokumentbeskrivelse/"
NY_DOKUMENTBESKRIVELSE = REL + "arkivstruktur/ny-dokumentbeskrivelse/"
DOKUMENTOBJEKT = REL + "arkivstruktur/dokumentobjekt/"
NY_DOKUMENTOBJEKT = REL + "arkivstruktur/ny-dokumentobjekt/"
FIL = REL + "arkivstruktur/fil/"
SELF = "self"
MEDIA_TYPE = "application/vnd.noark5+json"
KEY = "svarinn:forsendelseId"  # in virksomhetsspesifikkeMetadata
COUNT = "svarinn:antallDokumenter"
SENDER, RECEIVER = "EA", "EM"


def _code(value: str) -> dict[str, str]:
    return {"kode": value}


def _quoted(value: str) -> str:
    """An OData string literal: single quotes doubled."""
    return "'" + value.replace("'", "''") + "'"


def filter_case(saksaar: int, sakssekvensnummer: int) -> str:
    return f"saksaar eq {saksaar} and sakssekvensnummer eq {sakssekvensnummer}"


def filter_title(title: str) -> str:
    return f"tittel eq {_quoted(title)}"


def filter_journalpost(key: str) -> str:
    return f"virksomhetsspesifikkeMetadata/{KEY} eq {_quoted(key)}"


def collection_case(title: str) -> dict[str, Any]:
    return {"tittel": title, "virksomhetsspesifikkeMetadata": {"svarinn:samlesak": title}}


def journalpost(reg: Registration) -> dict[str, Any]:
    post: dict[str, Any] = {
        "tittel": reg.title,
        "journalposttype": _code(reg.journalposttype),
        "journalstatus": _code(reg.journalstatus),
        "virksomhetsspesifikkeMetadata": {
            KEY: reg.external_key,
            COUNT: len(reg.documents),
        },
    }
    if reg.document_date is not None:
        post["dokumentetsDato"] = reg.document_date.isoformat()
    return post


def korrespondansepart(party: Party, kind: str) -> tuple[str, dict[str, Any]]:
    """The relation to create it with, and its body (the standard's KorrespondansepartEnhet
    with ``enhetsidentifikator``, or KorrespondansepartPerson by name and address only:
    never the identity number); ``postadresse`` is an EnkelAdresse."""
    body: dict[str, Any] = {"korrespondanseparttype": _code(kind), "navn": party.name}
    address: dict[str, Any] = {}
    if party.address_lines:
        address["adresselinje1"] = party.address_lines[0]
        if len(party.address_lines) > 1:
            address["adresselinje2"] = ", ".join(party.address_lines[1:])
    if party.postal_code:
        address["postnr"] = _code(party.postal_code)  # the Postnummer code list
    if party.postal_place:
        address["poststed"] = party.postal_place
    if party.country and len(party.country) == 2 and party.country.isalpha():
        address["landkode"] = _code(party.country.upper())  # the Land code list
    if address:
        body["postadresse"] = address
    if party.orgnr is not None:
        body["enhetsidentifikator"] = {"organisasjonsnummer": party.orgnr}
        return NY_KORRESPONDANSEPARTENHET, body
    return NY_KORRESPONDANSEPARTPERSON, body


def dokumentbeskrivelse(doc: RegisteredDocument, key: str) -> dict[str, Any]:
    return {
        "tittel": doc.title,
        "dokumenttype": _code("B"),  # brev
        "dokumentstatus": _code("F"),  # ferdigstilt
        "tilknyttetRegistreringSom": _code(doc.role),
        "eksternReferanse": f"{key}/{doc.file}",
    }


def dokumentobjekt(doc: RegisteredDocument) -> dict[str, Any]:
    return {
        "versjonsnummer": 1,
        "variantformat": _code("A"),  # arkivformat
        "mimeType": doc.mimetype,
        "filnavn": doc.file,
        "filstoerrelse": doc.size,
        "sjekksum": doc.sha256,
        "sjekksumAlgoritme": "SHA-256",
    }


def link(entity: Mapping[str, Any], rel: str) -> str | None:
    """The href of ``rel`` in an object's ``_links``, or None. The standard's JSON keys
    ``_links`` by relation; chapter 7 also shows a list of ``{"rel", "href"}``: both are read."""
    links = entity.get("_links")
    if isinstance(links, list):
        links = {x.get("rel"): x for x in links if isinstance(x, dict)}
    if not isinstance(links, dict):
        return None
    found = links.get(rel)
    if isinstance(found, list) and found:
        found = found[0]
    if isinstance(found, dict) and isinstance(found.get("href"), str):
        return str(found["href"])
    return None


def results(answer: Any) -> list[Mapping[str, Any]]:
    """The objects of a listing (``{"results": [...]}``)."""
    if not isinstance(answer, dict):
        return []
    items = answer.get("results")
    return [x for x in items if isinstance(x, dict)] if isinstance(items, list) else []


def declared_documents(post: Mapping[str, Any]) -> int | None:
    metadata = post.get("virksomhetsspesifikkeMetadata")
    value = metadata.get(COUNT) if isinstance(metadata, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def carries(post: Mapping[str, Any], key: str) -> bool:
    metadata = post.get("virksomhetsspesifikkeMetadata")
    return isinstance(metadata, dict) and metadata.get(KEY) == key


def reference(post: Mapping[str, Any]) -> str:
    for name in ("journalpostnummer", "registreringsID", "systemID"):
        value = post.get(name)
        if isinstance(value, str | int) and str(value).strip():
            if name == "journalpostnummer" and post.get("journalaar"):
                return f"{post['journalaar']}/{value}"
            return str(value)
    return "journalpost"
