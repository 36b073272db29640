"""A SvarInn V2 listing item with every documented field: the models' tests read it, and so do
the tests of the one shape both versions normalise to."""

from __future__ import annotations

from typing import Any

ID = "5a1d8f1e-7c2b-4f7e-9a55-0c1f3b2a9d10"
HASH = "ab" * 32


def full() -> dict[str, Any]:
    """An item with every field svarinn-v2.md documents, plus one it does not."""
    return {
        "id": ID,
        "avsender": {
            "navn": "Kommune A",
            "adresselinje1": "Gate 1",
            "adresselinje2": "",
            "adresselinje3": None,
            "postnummer": "0001",
            "poststed": "Oslo",
        },
        "mottaker": {
            "navn": "Kommune B",
            "organisasjonsnummer": "987654321",
            "adresselinje1": "Postboks 9",
            "postnummer": "9999",
            "poststed": "Nord",
            "land": "Norge",
        },
        "tittel": "Vedtak",
        "dato": "2026-03-01T12:30:00+01:00",
        "metadataFraAvleverendeSystem": {
            "sakssekvensnummer": 42,
            "saksaar": 2026,
            "journalaar": 2026,
            "journalsekvensnummer": 7,
            "journalpostnummer": 3,
            "journalposttype": "U",
            "journalstatus": "E",
            "journaldato": "2026-02-28",
            "dokumentetsDato": "2026-02-27T00:00:00Z",
            "tittel": "Vedtak i sak",
            "saksbehandler": "Ola",
            "virksomhetsspesifikkeMetadata": [{"key": "k", "value": "v"}, {"value": "no key"}],
        },
        "metadataForImport": {
            "mappeId": {
                "mappeId": "M-1",
                "systemId": "S-1",
                "saksaar": 2025,
                "sakssekvensnummer": 9,
            },
            "journalpostId": {"systemId": "S-2", "registreringsId": "R-1", "journalpostnummer": 4},
            "journalposttype": "I",
            "journalstatus": "M",
            "dokumentetsDato": "2026-02-27T00:00:00Z",
            "tittel": "Til import",
        },
        "sikkerhetsniva": "HOYESTE",
        "filer": [
            {
                "filnavn": "vedtak.pdf",
                "mimeType": "application/pdf",
                "hash": HASH.upper(),
                "storrelse": 1234,
                "type": "HOVEDDOKUMENT",
                "ekstraMetadata": [{"key": "side", "value": "1"}],
            }
        ],
        "svarSendesTil": {"navn": "Person", "fodselsnummer": "01010112345"},
        "svarPaForsendelse": "11111111-2222-3333-4444-555555555555",
        "type": "vedtak",
        "eksternRef": "ref-1",
        "lenker": [{"lenke": "https://x.no/a", "tekst": "Les", "ledetekst": "Se"}, {"tekst": "-"}],
        "nedlastingslenke": f"https://svarut.ks.no/tjenester/svarinn/forsendelse/{ID}",
        "avgivendeSystem": "EDIALOG",
        "taushetsbelagtPost": True,
        "nyttFelt": {"som": "ingen kjenner"},
    }
