"""SvarInn V2 (KS's stable receiving API, the default): its keys, its item parser and its
endpoints, onto the same :class:`Forsendelse` records as v1.

V2 renames and retypes fields (``nedlastingslenke``, ``dato`` in ISO 8601, ``sikkerhetsniva``,
``filer[].hash/storrelse/mimeType/type``, ``mottaker.organisasjonsnummer``, nested
``metadataForImport.mappeId/journalpostId``) and adds ``lenker``, ``avgivendeSystem`` and
``taushetsbelagtPost``; they are mapped here with the shared tolerance of ``parsing.py``:
only the list, ``id``, ``nedlastingslenke``, the shape of ``filer``, each ``hash`` and
``storrelse`` are strict. The client: listing ``GET {base}/svarinn/v2/forsendelser`` (at most
200 per call, v1's paging rule), download ``GET nedlastingslenke`` (always a ZIP), receipts
one ``PATCH {base}/svarinn/v2/forsendelser/{id}/status`` with ``MOTTATT`` or ``FEILET``
(setting a status is idempotent, so a PATCH whose answer was lost is safe to send again).
"""

from __future__ import annotations

from typing import Any, TypeVar

from svarinn_daemon.errors import ProtocolError
from svarinn_daemon.svarinn.client import SvarInnHttpClient, path_id
from svarinn_daemon.svarinn.parsing import (
    FileKeys,
    as_number,
    as_text,
    item_id_and_link,
    metadata,
    parse_date,
    parse_files,
    parse_item,
    parse_listing,
)
from svarinn_daemon.svarinn.records import (
    Adressat,
    Avsender,
    Forsendelse,
    Lenke,
    Listing,
    Metadata,
    Mottaker,
    RejectedItem,
    compact_json,
)

__all__ = [
    "LISTING_NAME",
    "LIST_PATH_V2",
    "NIVA",
    "STATUS_PATH_V2",
    "SvarInnV2Client",
    "parse_forsendelse_v2",
    "parse_item_v2",
    "parse_listing_v2",
]

LISTING_NAME = "svarinn/v2/forsendelser"
# sikkerhetsniva -> v1's niva, so both versions store one value ("3", "4").
NIVA = {"BETYDELIG": "3", "HOYESTE": "4"}
_A = TypeVar("_A", bound=Adressat)


LIST_PATH_V2 = "/svarinn/v2/forsendelser"
STATUS_PATH_V2 = "/svarinn/v2/forsendelser/{id}/status"
V2_FILE_KEYS = FileKeys("hash", "storrelse", "mimeType", "type", extra="ekstraMetadata")


def parse_listing_v2(data: Any) -> Listing:
    """A decoded v2 listing, malformed items set aside; only a non-list raises."""
    return parse_listing(data, parse=parse_forsendelse_v2, name=LISTING_NAME)


def parse_item_v2(item: Any, *, index: int) -> Forsendelse | RejectedItem:
    """One listed v2 item: the letter, or why it cannot be read. Never raises."""
    return parse_item(item, index=index, parse=parse_forsendelse_v2, name=LISTING_NAME)


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
        metadata_fra_avleverende_system=metadata(
            item.get("metadataFraAvleverendeSystem"), extra="virksomhetsspesifikkeMetadata"
        ),
        metadata_for_import=_metadata_for_import(item.get("metadataForImport")),
        filmetadata=parse_files(item.get("filer"), V2_FILE_KEYS, where=f"{where}.filer"),
        api="v2",
        lenker=_lenker(item.get("lenker")),
        avgivende_system=as_text(item.get("avgivendeSystem")),
        taushetsbelagt_post=taushet if isinstance(taushet, bool) else None,
        raw_text=compact_json(item),
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


class SvarInnV2Client(SvarInnHttpClient):
    """One account's connection to SvarInn V2; ``base_url`` is the part before
    ``/svarinn/v2/`` (``https://svarut.ks.no/api`` by default)."""

    api = "v2"
    list_path = LIST_PATH_V2
    listing_name = LISTING_NAME

    def _parse_item(self, value: Any, index: int) -> Forsendelse | RejectedItem:
        return parse_item_v2(value, index=index)

    def acknowledge(self, forsendelse_id: str) -> None:
        """Status MOTTATT: the letter is archived; SvarUt stops listing it."""
        self._set_status(forsendelse_id, {"status": "MOTTATT"})

    def report_failure(self, forsendelse_id: str, message: str, *, permanent: bool) -> None:
        """Status FEILET: ``permanent=True`` makes SvarUt send the letter by other means."""
        feil = self._feil(message, permanent)
        self._set_status(forsendelse_id, {"status": "FEILET", "feil": feil})

    def _set_status(self, forsendelse_id: str, body: dict[str, Any]) -> None:
        url = self._base + STATUS_PATH_V2.format(id=path_id(forsendelse_id))
        try:
            self._call("PATCH", url, json_body=body, letter=True)
        except ProtocolError as exc:
            if exc.status_code != 400:
                raise
            # The server refused the body: say which letter, which fields we sent, and what
            # the server said about them (its error body names the field it refused).
            fields = "status, feil.feilmelding, feil.permanent" if "feil" in body else "status"
            said = f": {exc.body_start[:300]}" if exc.body_start else ""
            raise ProtocolError(
                f"account {self.name}: forsendelse {forsendelse_id}: SvarInn refused the "
                f"status update {body['status']} with 400 Bad Request (fields sent: "
                f"{fields}){said}",
                status_code=400,
                body_start=exc.body_start,
            ) from None
