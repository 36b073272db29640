"""SvarInn V2 listing items -> the same Forsendelse as v1: every documented field, the
tolerance for missing and unknown fields, and a typed error naming field and letter for
each kind of bad input the issue lists."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from svarinn_daemon.errors import ProtocolError
from svarinn_daemon.svarinn.records import Filmetadata, Lenke
from svarinn_daemon.svarinn.stored import api_of, parse_stored
from svarinn_daemon.svarinn.v1 import parse_forsendelse
from svarinn_daemon.svarinn.v2 import parse_forsendelse_v2, parse_listing_v2
from tests.support.v2_items import HASH, ID, full


def minimal(**extra: Any) -> dict[str, Any]:
    return {"id": ID, "nedlastingslenke": f"https://svarut.ks.no/api/f/{ID}", **extra}


def test_every_documented_field_maps_onto_the_model() -> None:
    item = full()
    f = parse_forsendelse_v2(item)
    assert f.api == "v2"
    assert f.id == ID
    assert f.download_url == item["nedlastingslenke"]
    assert f.date == datetime(2026, 3, 1, 12, 30, tzinfo=timezone(timedelta(hours=1)))
    assert f.niva == "4"
    assert f.tittel == "Vedtak"
    assert f.forsendelse_type == "vedtak"
    assert f.ekstern_ref == "ref-1"
    assert f.svar_pa_forsendelse == "11111111-2222-3333-4444-555555555555"
    assert f.avsender is not None
    assert f.avsender.adresselinjer == ("Gate 1",)
    assert f.avsender.postnr == "0001"
    assert f.mottaker is not None
    assert f.mottaker.orgnr == "987654321"
    assert f.mottaker.land == "Norge"
    assert f.svar_sendes_til is not None
    assert f.svar_sendes_til.is_person
    assert "01010112345" not in repr(f)
    fra = f.metadata_fra_avleverende_system
    assert fra is not None
    assert (fra.saksaar, fra.sakssekvensnummer, fra.journalpostnummer) == (2026, 42, 3)
    assert fra.saksbehandler == "Ola"
    assert fra.ekstra_metadata == (("k", "v"),)
    assert fra.dokumentets_dato == datetime(2026, 2, 27, tzinfo=UTC)
    imp = f.metadata_for_import
    assert imp is not None
    assert (imp.mappe_id, imp.mappe_system_id, imp.saksaar, imp.sakssekvensnummer) == (
        "M-1",
        "S-1",
        2025,
        9,
    )
    assert (imp.journalpost_id, imp.journalpost_system_id, imp.journalpostnummer) == (
        "R-1",
        "S-2",
        4,
    )
    assert f.filmetadata == (
        Filmetadata(
            filnavn="vedtak.pdf",
            mimetype="application/pdf",
            sha256hash=HASH,
            size=1234,
            dokument_type="HOVEDDOKUMENT",
            ekstra_metadata=(("side", "1"),),
        ),
    )
    assert f.lenker == (Lenke("https://x.no/a", "Les", "Se"),)
    assert f.avgivende_system == "EDIALOG"
    assert f.taushetsbelagt_post is True
    assert f.kryptert is None  # every v2 file is encrypted: plain bodies stay refused
    assert json.loads(f.raw_json()) == item  # the ledger keeps it exactly as received


def test_missing_optional_fields_and_nulls_are_accepted() -> None:
    item = minimal(
        avsender=None,
        metadataForImport={"mappeId": {"saksaar": None, "sakssekvensnummer": None}},
        metadataFraAvleverendeSystem={"journalpostnummer": None, "saksaar": 0},
        filer=[{"filnavn": "a.pdf", "mimeType": "application/pdf", "hash": HASH, "storrelse": 0}],
        sikkerhetsniva="NOE_NYTT",
        taushetsbelagtPost="ja",
        lenker="ikke en liste",
    )
    f = parse_forsendelse_v2(item)
    assert f.avsender is None
    assert f.date is None
    assert f.mottaker is None
    assert f.metadata_for_import is not None
    assert f.metadata_for_import.saksaar is None
    assert f.metadata_fra_avleverende_system is not None
    assert f.metadata_fra_avleverende_system.saksaar is None
    assert f.niva == "NOE_NYTT"  # an unknown level is kept as sent
    assert f.taushetsbelagt_post is None
    assert f.lenker == ()
    assert f.filmetadata[0].size is None  # 0 means unknown, as in v1
    assert parse_forsendelse_v2(minimal()).filmetadata == ()


@pytest.mark.parametrize(
    ("change", "fragments"),
    [
        ({"id": None}, ["[0].id", "missing"]),
        ({"nedlastingslenke": None}, [ID, "nedlastingslenke", "missing"]),
        ({"nedlastingslenke": "ftp://x/y"}, [ID, "nedlastingslenke", "not an http(s) URL"]),
        ({"filer": {"filnavn": "a"}}, [ID, ".filer", "expected a list"]),
        ({"filer": "a.pdf"}, [ID, ".filer", "expected a list"]),
        ({"filer": [{"hash": "abc"}]}, [ID, ".filer[0].hash", "not 64 hex"]),
        ({"filer": [{"hash": "zz" * 32}]}, [ID, ".filer[0].hash", "not 64 hex"]),
        ({"filer": [{"hash": 12}]}, [ID, ".filer[0].hash"]),
        ({"filer": [{"storrelse": -1}]}, [ID, ".filer[0].storrelse", "-1"]),
        ({"filer": [{"storrelse": 1.5}]}, [ID, ".filer[0].storrelse", "1.5"]),
        ({"filer": [{"storrelse": "12"}]}, [ID, ".filer[0].storrelse"]),
        ({"filer": [{"storrelse": True}]}, [ID, ".filer[0].storrelse"]),
        ({"filer": ["a.pdf"]}, [ID, ".filer[0]", "expected an object"]),
    ],
)
def test_bad_input_is_a_typed_error_naming_field_and_letter(
    change: dict[str, Any], fragments: list[str]
) -> None:
    item = {**minimal(), **change}
    with pytest.raises(ProtocolError) as caught:
        parse_forsendelse_v2(item)
    for fragment in fragments:
        assert fragment in str(caught.value)
    assert "svarinn/v2/forsendelser[0]" in str(caught.value)


def test_a_bad_item_is_set_aside_and_the_others_are_read() -> None:
    good = minimal()
    other = {**minimal(), "id": "other-1"}
    bad = {**minimal(), "id": "bad-1", "filer": [{"storrelse": -5}]}
    listing = parse_listing_v2([good, bad, other, "not an object"])
    assert [f.id for f in listing.letters] == [ID, "other-1"]
    assert [(r.index, r.forsendelse_id) for r in listing.rejected] == [(1, "bad-1"), (3, None)]
    assert "storrelse" in str(listing.rejected[0].error)


def test_a_listing_that_is_not_a_list_raises() -> None:
    with pytest.raises(ProtocolError, match="svarinn/v2/forsendelser: expected a JSON list"):
        parse_listing_v2({"forsendelser": []})


def test_stored_items_are_read_as_the_version_that_delivered_them(
    conformance_dir: Path,
) -> None:
    v1_item = json.loads((conformance_dir / "hentNyeForsendelser.json").read_text())[0]
    assert api_of(v1_item) == "v1"
    assert parse_stored(v1_item) == parse_forsendelse(v1_item)
    assert parse_stored(v1_item).api == "v1"
    assert api_of(full()) == "v2"
    assert parse_stored(full()) == parse_forsendelse_v2(full())
