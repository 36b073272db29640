"""A registration in GI-Arkiv 1.1's words, and GI-Arkiv's answers read back. Pure, no I/O.

The values are what zeep takes for the schema's types: dicts for plain complex types, and
:class:`Typed` where the schema wants a subtype (``xsi:type``): a ``Kontakt`` that is an
``Organisasjon`` or a ``Person``, a ``Fil`` that is a ``Filinnhold``, a key that is a
``JournpostEksternNoekkel``. ``soap.py`` turns a :class:`Typed` into zeep's object.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from typing import Any

from svarinn_daemon.adapters.registration import Party, RegisteredDocument, Registration

__all__ = [
    "ARKIV_KJERNE",
    "FELLES_KONTAKT",
    "CaseRef",
    "Typed",
    "case_key",
    "collection_case",
    "document",
    "journalpost",
    "journalpost_key",
    "journalpost_reference",
    "title_search",
]

ARKIV_KJERNE = "http://rep.geointegrasjon.no/Arkiv/Kjerne/xml.schema/2012.01.31"
ARKIV_DOKUMENT = "http://rep.geointegrasjon.no/Arkiv/Dokument/xml.schema/2012.01.31"
ARKIV_FELLES = "http://rep.geointegrasjon.no/Arkiv/Felles/xml.schema/2012.01.31"
FELLES_KONTAKT = "http://rep.geointegrasjon.no/Felles/Kontakt/xml.schema/2012.01.31"
FELLES_FILTER = "http://rep.geointegrasjon.no/Felles/Filter/xml.schema/2012.01.31"
SENDER, RECEIVER = "EA", "EM"  # korrespondanseparttype: avsender, mottaker
FINAL = "F"  # dokumentstatus: ferdig
ARCHIVE_FORMAT = "A"  # variantformat: arkivformat
POSTAL = "POST"  # adressetype: postadresse
ADDRESS_LINE_LIMIT = 255


@dataclass(frozen=True)
class Typed:
    """A value of the schema type ``{namespace}name`` (sent with ``xsi:type``)."""

    namespace: str
    name: str
    fields: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CaseRef:
    """A case as the archive named it: its system id and saksnummer when it gave them."""

    system_id: str | None
    saksaar: int | None
    sakssekvensnummer: int | None

    def spelled(self) -> str:
        if self.saksaar is not None and self.sakssekvensnummer is not None:
            return f"{self.saksaar}/{self.sakssekvensnummer}"
        return f"systemID {self.system_id}"


def _code(value: str) -> dict[str, Any]:
    return {"kodeverdi": value}


def external_key(fagsystem: str, key: str) -> dict[str, Any]:
    return {"fagsystem": fagsystem, "noekkel": key}


def journalpost_key(fagsystem: str, key: str) -> Typed:
    """Finds a journalpost by our external key (``FinnJournalposterGittNoekkel``)."""
    return Typed(
        ARKIV_KJERNE, "JournpostEksternNoekkel", {"eksternnoekkel": external_key(fagsystem, key)}
    )


def journalpost_by_system_id(system_id: str) -> Typed:
    return Typed(ARKIV_KJERNE, "JournpostSystemID", {"systemID": {"id": system_id}})


def case_key(saksaar: int, sakssekvensnummer: int) -> Typed:
    return Typed(
        ARKIV_FELLES, "Saksnummer", {"saksaar": saksaar, "sakssekvensnummer": sakssekvensnummer}
    )


def collection_key(fagsystem: str, title: str) -> Typed:
    """The collection case's own external key: the adapter finds what it created."""
    return Typed(
        ARKIV_KJERNE,
        "SakEksternNoekkel",
        {"eksternnoekkel": external_key(fagsystem, f"samlesak:{title}")},
    )


def title_search(title: str) -> dict[str, Any]:
    """``FinnSaksmapper``'s criterion: a case titled exactly ``title``."""
    criterion = Typed(FELLES_FILTER, "Soekefelt", {"feltnavn": "tittel", "feltverdi": title})
    return {"liste": [{"operator": "EQ", "Kriterie": criterion}]}


def collection_case(
    title: str, *, fagsystem: str, arkivdel: str | None, journalenhet: str | None
) -> dict[str, Any]:
    """``NySaksmappe``'s ``mappe``: the collection case letters without a case go to."""
    mappe: dict[str, Any] = {
        "tittel": title,
        "referanseEksternNoekkel": external_key(fagsystem, f"samlesak:{title}"),
    }
    if arkivdel:
        mappe["referanseArkivdel"] = _code(arkivdel)
    if journalenhet:
        mappe["journalenhet"] = _code(journalenhet)
    return mappe


def journalpost(
    registration: Registration,
    case: CaseRef,
    *,
    fagsystem: str,
    arkivdel: str | None,
) -> dict[str, Any]:
    """``NyJournalpost``'s ``journalpost``: incoming, its status, title, date, parties, the
    case, the external key and how many attachments follow (what ``has`` counts)."""
    post: dict[str, Any] = {
        "journalposttype": _code(registration.journalposttype),
        "journalstatus": _code(registration.journalstatus),
        "tittel": registration.title,
        "antallVedlegg": str(len(registration.documents) - 1),
        "referanseEksternNoekkel": external_key(fagsystem, registration.external_key),
    }
    if registration.document_date is not None:
        post["dokumentetsDato"] = datetime.combine(registration.document_date, time(), UTC)
    if arkivdel:
        post["referanseArkivdel"] = _code(arkivdel)
    if case.saksaar is not None and case.sakssekvensnummer is not None:
        post["saksnr"] = {"saksaar": case.saksaar, "sakssekvensnummer": case.sakssekvensnummer}
    elif case.system_id is not None:
        post["referanseSakSystemID"] = {"systemID": {"id": case.system_id}}
    parties = [
        _party(p, kind)
        for p, kind in ((registration.sender, SENDER), (registration.receiver, RECEIVER))
        if p is not None and p.name
    ]
    if parties:
        post["korrespondansepart"] = {"liste": parties}
    return post


def document(doc: RegisteredDocument, journalpost_system_id: str, content: bytes) -> dict[str, Any]:
    """``NyDokument``'s ``dokument``, the file inline (``content`` is the marker the body's
    streamed base64 replaces)."""
    return {
        "tilknyttetRegistreringSom": _code(doc.role),
        "tittel": doc.title,
        "dokumentstatus": _code(FINAL),
        "variantformat": _code(ARCHIVE_FORMAT),
        "referanseJournalpostSystemID": journalpost_system_id,
        "Fil": Typed(
            ARKIV_DOKUMENT,
            "Filinnhold",
            {"filnavn": doc.file, "mimeType": doc.mimetype, "base64": content},
        ),
    }


def _party(party: Party, kind: str) -> dict[str, Any]:
    contact: dict[str, Any] = {"navn": party.name}
    lines = [line[:ADDRESS_LINE_LIMIT] for line in party.address_lines if line]
    if lines or party.postal_code or party.postal_place:
        address: dict[str, Any] = {"adressetype": _code(POSTAL)}
        if lines:
            address["adresselinje1"] = lines[0]
        if len(lines) > 1:
            address["adresselinje2"] = ", ".join(lines[1:])[:ADDRESS_LINE_LIMIT]
        if party.postal_code or party.postal_place:
            address["postadresse"] = {
                "postnummer": party.postal_code,
                "poststed": party.postal_place,
            }
        if party.country:
            address["landkode"] = _code(party.country)
        contact["adresser"] = {"liste": [address]}
    if party.orgnr is not None:
        kontakt = Typed(
            FELLES_KONTAKT, "Organisasjon", {**contact, "organisasjonsnummer": party.orgnr}
        )
    elif party.person_id is not None:
        # A person, named only: the fødselsnummer is not sent at all (the archive can look
        # the person up; a number in a journalpost outlives every need for it).
        kontakt = Typed(FELLES_KONTAKT, "Person", contact)
    else:
        kontakt = Typed(FELLES_KONTAKT, "Kontakt", contact)
    return {"korrespondanseparttype": _code(kind), "Kontakt": kontakt}


def items(answer: Any) -> list[Any]:
    """The ``liste`` of a GI list answer (``JournalpostListe``...), whatever zeep made of an
    empty or missing one."""
    if answer is None:
        return []
    found = answer["liste"] if _has(answer, "liste") else answer
    if found is None:
        return []
    return list(found) if isinstance(found, list | tuple) else [found]


def case_ref(mappe: Any) -> CaseRef:
    saksnr = _get(mappe, "saksnr")
    return CaseRef(
        system_id=_text(_get(mappe, "systemID")),
        saksaar=_int(_get(saksnr, "saksaar")),
        sakssekvensnummer=_int(_get(saksnr, "sakssekvensnummer")),
    )


def journalpost_reference(post: Any) -> str:
    """How the daemon names a journalpost in its ledger: saksår/sekvensnummer-journalpostnummer
    when the archive says so, else its system id."""
    saksnr = _get(post, "saksnr")
    year, number = _int(_get(saksnr, "saksaar")), _int(_get(saksnr, "sakssekvensnummer"))
    jpnr = _text(_get(post, "journalpostnummer"))
    system_id = _text(_get(post, "systemID"))
    if year is not None and number is not None and jpnr:
        return f"{year}/{number}-{jpnr}"
    return f"systemID {system_id}" if system_id else "journalpost"


def system_id(value: Any) -> str | None:
    return _text(_get(value, "systemID"))


def attachments_declared(post: Any) -> int | None:
    """``antallVedlegg`` as the archive kept it, or None when it did not."""
    return _int(_get(post, "antallVedlegg"))


def code_of(value: Any) -> str | None:
    """A ``Kode``'s ``kodeverdi``."""
    return _text(_get(value, "kodeverdi"))


def title_of(value: Any) -> str:
    return _text(_get(value, "tittel")) or ""


def _has(value: Any, name: str) -> bool:
    try:
        value[name]
    except (KeyError, TypeError, AttributeError, IndexError):
        return False
    return True


def _get(value: Any, name: str) -> Any:
    if value is None:
        return None
    try:
        return value[name]
    except (KeyError, TypeError, AttributeError, IndexError):
        return getattr(value, name, None)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _int(value: Any) -> int | None:
    try:
        return int(str(value).strip()) if value is not None else None
    except ValueError:
        return None
