"""One JSON shape for a letter, whichever SvarInn version listed it. Pure, no I/O.

v1 and v2 name and type the same facts differently (``date`` in epoch ms or ``dato`` in ISO
8601, ``niva`` "3"/"4" or ``sikkerhetsniva``, ``filmetadata[].sha256hash`` or
``filer[].hash``, flat or nested ``metadataForImport``). :func:`normalised` writes the
parsed :class:`Forsendelse` back out with one set of keys -- SvarInn V2's names, the stable
API's -- so that whatever reads it (an archive adapter, ``forsendelse.json``) does not need
to know the version. ``api`` says which version it was, ``raw`` is the item as received.
Every key is always present; what the letter did not say is ``null`` (or ``[]``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from svarinn_daemon.svarinn.records import Adressat, Filmetadata, Forsendelse, Metadata

__all__ = ["NORMALISED_FORMAT", "normalised"]

NORMALISED_FORMAT = "svarinn-daemon/normalised-forsendelse/1"
_SIKKERHETSNIVA = {"3": "BETYDELIG", "4": "HOYESTE"}


def normalised(forsendelse: Forsendelse) -> dict[str, Any]:
    """The letter in the one shape (the module's docstring; docs/svarinn.md, "SvarInn V2")."""
    f = forsendelse
    return {
        "format": NORMALISED_FORMAT,
        "api": f.api,
        "id": f.id,
        "tittel": f.tittel,
        "dato": _date(f.date),
        "sikkerhetsniva": _SIKKERHETSNIVA.get(f.niva, f.niva) if f.niva else None,
        "avsender": _party(f.avsender),
        "mottaker": _party(f.mottaker),
        "svarSendesTil": _party(f.svar_sendes_til),
        "svarPaForsendelse": f.svar_pa_forsendelse,
        "type": f.forsendelse_type,
        "eksternRef": f.ekstern_ref,
        "metadataFraAvleverendeSystem": _metadata(f.metadata_fra_avleverende_system),
        "metadataForImport": _metadata(f.metadata_for_import),
        "filer": [_fil(m) for m in f.filmetadata],
        "lenker": [
            {"lenke": x.lenke, "tekst": x.tekst, "ledetekst": x.ledetekst} for x in f.lenker
        ],
        "avgivendeSystem": f.avgivende_system,
        "taushetsbelagtPost": f.taushetsbelagt_post,
        "nedlastingslenke": f.download_url,
        "raw": dict(f.raw),
    }


def _date(value: datetime | None) -> str | None:
    return value.isoformat(timespec="milliseconds") if value is not None else None


def _party(party: Adressat | None) -> dict[str, Any] | None:
    if party is None:
        return None
    return {
        "navn": party.navn,
        "adresselinjer": list(party.adresselinjer),
        "postnummer": party.postnr,
        "poststed": party.poststed,
        "land": party.land,
        "organisasjonsnummer": party.orgnr,
        "fodselsnummer": party.fnr,
    }


def _metadata(m: Metadata | None) -> dict[str, Any] | None:
    if m is None:
        return None
    return {
        "saksaar": m.saksaar,
        "sakssekvensnummer": m.sakssekvensnummer,
        "journalaar": m.journalaar,
        "journalsekvensnummer": m.journalsekvensnummer,
        "journalpostnummer": m.journalpostnummer,
        "journalposttype": m.journalposttype,
        "journalstatus": m.journalstatus,
        "journaldato": _date(m.journaldato),
        "dokumentetsDato": _date(m.dokumentets_dato),
        "tittel": m.tittel,
        "saksbehandler": m.saksbehandler,
        "ekstraMetadata": [{"key": k, "value": v} for k, v in m.ekstra_metadata],
        "mappeId": m.mappe_id,
        "mappeSystemId": m.mappe_system_id,
        "journalpostId": m.journalpost_id,
        "journalpostSystemId": m.journalpost_system_id,
    }


def _fil(m: Filmetadata) -> dict[str, Any]:
    return {
        "filnavn": m.filnavn,
        "mimeType": m.mimetype,
        "hash": m.sha256hash,
        "storrelse": m.size,
        "type": m.dokument_type,
        "ekstraMetadata": [{"key": k, "value": v} for k, v in m.ekstra_metadata],
    }
