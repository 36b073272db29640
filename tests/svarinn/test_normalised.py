"""normalised(): one shape for a letter whichever version listed it."""

from __future__ import annotations

import json
from pathlib import Path

from cryptography import x509

from svarinn_daemon.simulator import Simulator
from svarinn_daemon.svarinn.normalised import NORMALISED_FORMAT, normalised
from svarinn_daemon.svarinn.v1 import parse_forsendelse
from svarinn_daemon.svarinn.v2 import parse_forsendelse_v2
from tests.support.v2_items import full

# What only one version can say (v2's new fields, v1's status and kryptert) or what the
# simulator words differently per version (document type, sender system).
_VERSION_ONLY = {"api", "raw", "nedlastingslenke", "avgivendeSystem", "taushetsbelagtPost"}


def test_the_same_letter_from_both_versions_has_the_same_shape_and_facts(
    conformance_cert: x509.Certificate,
) -> None:
    with Simulator(conformance_cert) as sim:
        (letter,) = sim.generate(1, size=10, files_per_letter=2)
        v1 = normalised(parse_forsendelse(letter.to_json(sim.download_url(letter.id))))
        v2 = normalised(parse_forsendelse_v2(letter.to_json_v2(sim.v2_download_url(letter.id))))
    assert list(v1) == list(v2)  # the same keys in the same order
    assert (v1["api"], v2["api"]) == ("v1", "v2")
    assert v1["format"] == v2["format"] == NORMALISED_FORMAT
    for key in set(v1) - _VERSION_ONLY - {"filer", "avsender"}:
        assert v1[key] == v2[key], key
    assert v1["filer"] == [{**f, "type": None} for f in v2["filer"]]  # v1's simulator: no type
    # V2's avsender has no organisasjonsnummer or fodselsnummer: v1's says who sent it.
    ids = {"organisasjonsnummer": None, "fodselsnummer": None}
    assert {**v1["avsender"], **ids} == v2["avsender"]
    assert v1["avsender"]["organisasjonsnummer"] is not None
    assert v1["sikkerhetsniva"] == "BETYDELIG"  # v1's niva "3", in V2's words
    assert v1["raw"]["downloadUrl"] == v1["nedlastingslenke"]
    assert v2["raw"]["nedlastingslenke"] == v2["nedlastingslenke"]
    json.dumps(v1, allow_nan=False)  # plain JSON, for forsendelse.json
    json.dumps(v2, allow_nan=False)


def test_every_v2_field_reaches_the_normalised_shape() -> None:
    out = normalised(parse_forsendelse_v2(full()))
    assert out["dato"] == "2026-03-01T12:30:00.000+01:00"
    assert out["sikkerhetsniva"] == "HOYESTE"
    assert out["mottaker"]["organisasjonsnummer"] == "987654321"
    assert out["svarSendesTil"]["fodselsnummer"] == "01010112345"
    imp = out["metadataForImport"]
    assert (imp["mappeId"], imp["mappeSystemId"], imp["journalpostId"]) == ("M-1", "S-1", "R-1")
    assert out["metadataFraAvleverendeSystem"]["ekstraMetadata"] == [{"key": "k", "value": "v"}]
    assert out["filer"][0]["hash"] == "ab" * 32
    assert out["filer"][0]["ekstraMetadata"] == [{"key": "side", "value": "1"}]
    assert out["lenker"] == [{"lenke": "https://x.no/a", "tekst": "Les", "ledetekst": "Se"}]
    assert (out["avgivendeSystem"], out["taushetsbelagtPost"]) == ("EDIALOG", True)
    assert out["raw"] == full()


def test_conformance_v1_letter(conformance_dir: Path) -> None:
    item = json.loads((conformance_dir / "hentNyeForsendelser.json").read_text())[0]
    out = normalised(parse_forsendelse(item))
    assert out["api"] == "v1"
    assert out["dato"] == "2014-12-16T11:55:06.808+00:00"
    assert out["filer"] == [
        {
            "filnavn": "dokument-d1c6d795.pdf",
            "mimeType": "application/pdf",
            "hash": None,
            "storrelse": None,
            "type": None,
            "ekstraMetadata": [],
        }
    ]
    assert out["lenker"] == []
    assert out["raw"] == item
