"""The one registration every archive adapter encodes (``adapters/registration.py``), built
from real v1 and V2 items through the daemon's own parsers and normaliser: case placement,
parties, documents in order, titles clipped and cleaned, and no person's national identity
number anywhere but its structured field."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from svarinn_daemon.adapters.registration import (
    HIDDEN,
    Registration,
    registration,
    scrub_person_ids,
)
from svarinn_daemon.errors import ArchiveError
from svarinn_daemon.svarinn.normalised import normalised
from svarinn_daemon.svarinn.v1 import parse_forsendelse
from svarinn_daemon.svarinn.v2 import parse_forsendelse_v2
from tests.support.persons import fnr
from tests.support.v2_items import full

TODAY = date(2026, 12, 5)
DOCS = [
    {
        "file": "vedtak.pdf",
        "name": "vedtak.pdf",
        "mimetype": "application/pdf",
        "size": 10,
        "sha256": "ab" * 32,
    },
    {
        "file": "vedlegg.txt",
        "name": "a/vedlegg.txt",
        "mimetype": None,
        "size": 3,
        "sha256": "cd" * 32,
    },
]


PERSON = fnr("010190100")


def v2_item(**changes: Any) -> dict[str, Any]:
    item = full()
    item.update(changes)
    return normalised(parse_forsendelse_v2(item))


def v1_item(conformance_dir: Path, **changes: Any) -> dict[str, Any]:
    item = json.loads((conformance_dir / "hentNyeForsendelser.json").read_text())[0]
    item.update(changes)
    return normalised(parse_forsendelse(item))


def everything_said(reg: Registration) -> str:
    """Every free-text value of the registration, as an adapter could write it."""
    parts = [reg.title, reg.case.collection_title or ""]
    for party in (reg.sender, reg.receiver):
        if party is not None:
            parts += [party.name or "", *party.address_lines, party.postal_place or ""]
    parts += [d.title for d in reg.documents]
    return " | ".join(parts) + repr(reg)


def test_a_v2_letter_for_a_named_case() -> None:
    reg = registration(v2_item(), DOCS, today=TODAY, samlesak="SvarInn {year}")
    assert (reg.external_key, reg.journalposttype, reg.journalstatus) == (full()["id"], "I", "M")
    assert reg.title == "Vedtak"
    assert reg.document_date == date(2026, 2, 27)  # metadataForImport's dokumentetsDato
    assert (reg.case.saksaar, reg.case.sakssekvensnummer, reg.case.named_case) == (2025, 9, True)
    assert reg.sender is not None
    assert reg.sender.name == "Kommune A"
    assert reg.receiver is not None
    assert reg.receiver.orgnr == "987654321"
    assert [(d.file, d.role, d.mimetype) for d in reg.documents] == [
        ("vedtak.pdf", "H", "application/pdf"),
        ("vedlegg.txt", "V", "application/octet-stream"),
    ]


def test_a_v1_letter_without_case_numbers_goes_to_the_years_collection_case(
    conformance_dir: Path,
) -> None:
    reg = registration(v1_item(conformance_dir), DOCS, today=TODAY, samlesak="SvarInn {year}")
    assert not reg.case.named_case  # v1's 0 means absent
    assert reg.case.collection_title == "SvarInn 2014"  # the letter's own date (2014-12-16)
    assert reg.sender is not None
    assert reg.sender.address_lines[0] == "Første adresselinje"
    no_date = registration(
        v1_item(conformance_dir, date=None), DOCS, today=TODAY, samlesak="SvarInn {year}"
    )
    assert no_date.case.collection_title == "SvarInn 2026"


def test_a_persons_number_is_never_said_in_free_text() -> None:
    sender = {"navn": f"Kari Nordmann {PERSON}", "fodselsnummer": PERSON, "poststed": "Oslo"}
    title = f"Søknad fra {PERSON[:6]} {PERSON[6:]} om løyve"
    reg = registration(
        v2_item(avsender=sender, tittel=title), DOCS, today=TODAY, samlesak=f"Sak {PERSON}"
    )
    assert PERSON not in everything_said(reg)
    assert PERSON[:6] not in reg.title
    assert reg.title == f"Søknad fra {HIDDEN} om løyve"
    assert reg.sender is not None
    assert reg.sender.is_person
    assert reg.sender.person_id == PERSON  # only in the structured field


def test_eleven_digits_that_are_no_persons_number_stay() -> None:
    not_a_person = PERSON[:9] + str((int(PERSON[9]) + 1) % 10) + PERSON[10]
    assert scrub_person_ids(f"konto {not_a_person}") == f"konto {not_a_person}"
    assert scrub_person_ids(f"fnr:{PERSON}.") == f"fnr:{HIDDEN}."
    assert scrub_person_ids("ref 123456789012345") == "ref 123456789012345"  # 15 digits


@pytest.mark.parametrize(
    ("title", "limit", "expected"),
    [
        ("Vedtak\r\nX-Header: ja\x00", 255, "Vedtak X-Header: ja"),
        ("  mange   mellomrom  ", 255, "mange mellomrom"),
        ("a" * 300, 255, "a" * 254 + "…"),
        ("Rettighetsbrev", 5, "Rett…"),
        (None, 255, f"Forsendelse {full()['id']}"),
        ("\u200b\u2028", 255, f"Forsendelse {full()['id']}"),
    ],
)
def test_titles_are_one_clean_line_within_the_limit(
    title: str | None, limit: int, expected: str
) -> None:
    reg = registration(v2_item(tittel=title), DOCS, today=TODAY, title_limit=limit)
    assert reg.title == expected


@pytest.mark.parametrize(
    ("change", "documents", "temporary"),
    [
        ({"id": ""}, DOCS, False),
        ({}, [], False),
        ({}, [{"file": "x.pdf", "size": "10", "sha256": "ab" * 32}], True),
    ],
    ids=["no id", "no documents", "a document record without its size (ours)"],
)
def test_what_cannot_be_registered_is_a_typed_error(
    change: dict[str, Any], documents: list[dict[str, Any]], temporary: bool
) -> None:
    letter = {**v2_item(), **change}
    with pytest.raises(ArchiveError) as info:
        registration(letter, documents, today=TODAY)
    assert info.value.temporary is temporary


def test_hostile_values_in_any_field_end_in_a_registration_or_a_typed_error() -> None:
    hostile: list[Any] = [None, 0, -1, 2**80, True, [], {}, "x" * 100_000, "\x00", 1.5e308]
    fields = ["tittel", "dato", "avsender", "mottaker", "metadataForImport"]
    for name in fields:
        for value in hostile:
            letter = {**v2_item(), name: value}
            try:
                reg = registration(letter, DOCS, today=TODAY, samlesak="SvarInn {year}")
            except ArchiveError:
                continue
            assert len(reg.title) <= 255
