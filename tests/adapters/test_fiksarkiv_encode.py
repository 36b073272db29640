"""arkivmelding.xml as the fiks-arkiv adapter spells it, validated against KS's published
Fiks Arkiv V1 XSD; the kvittering and feilmeldinger read back, hostile ones refused."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from lxml import etree

from svarinn_daemon.adapters.fiksarkiv import encode
from svarinn_daemon.adapters.registration import registration
from svarinn_daemon.errors import ArchiveError
from tests.conftest import SHARED, need_shared
from tests.support.persons import fnr

SPECS = SHARED / "specs" / "fiks-arkiv" / "V1"
PERSON = fnr("030390200")
ORG = {
    "navn": "Byggmester AS",
    "organisasjonsnummer": "987654321",
    "adresselinjer": ["Gata 1", "Postboks 7"],
    "postnummer": "0150",
    "poststed": "Oslo",
    "land": "NO",
}


@pytest.fixture(scope="module")
def schema() -> etree.XMLSchema:
    path = need_shared(SPECS, "Fiks Arkiv's XSDs")
    return etree.XMLSchema(etree.parse(str(path / encode_xsd())))


def encode_xsd() -> str:
    return "no.ks.fiks.arkiv.v1.arkivering.arkivmelding.opprett.xsd"


def _docs(n: int) -> list[dict[str, Any]]:
    return [
        {
            "file": f"d{i}.pdf",
            "name": f"dok {i}.pdf",
            "mimetype": "application/pdf",
            "size": 10 + i,
            "sha256": f"{i:064x}",
        }
        for i in range(n)
    ]


def _xml(forsendelse: dict[str, Any], n: int = 2, arkivdel: str | None = "SAK") -> Any:
    reg = registration(forsendelse, _docs(n), today=date(2026, 12, 5))
    files = [d.file for d in reg.documents]
    data = encode.arkivmelding(
        reg, system="svarinn-daemon", fagsystem="fs", arkivdel=arkivdel, files=files
    )
    return data, etree.fromstring(data)


@pytest.mark.parametrize(
    "forsendelse",
    [
        {"id": "f1", "tittel": "Søknad", "avsender": ORG},
        {
            "id": "f2",
            "tittel": "Sak",
            "metadataForImport": {"saksaar": 2026, "sakssekvensnummer": 17},
        },
        {
            "id": "f3",
            "tittel": "a <b> & ]]> \x07 😀",
            "mottaker": ORG,
            "dato": "2026-03-04T05:06:07Z",
        },
        {
            "id": "f4",
            "tittel": f"Klage fra {PERSON}",
            "avsender": {"navn": "Kari Nordmann", "fodselsnummer": PERSON, "land": "Norge"},
        },
    ],
)
@pytest.mark.parametrize("documents", [1, 5])
def test_valid_against_the_published_schema(
    schema: etree.XMLSchema, forsendelse: dict[str, Any], documents: int
) -> None:
    data, root = _xml(forsendelse, documents)
    assert schema.validate(root), schema.error_log
    assert PERSON.encode() not in data
    ns = {"a": encode.NS, "n": encode.N5}
    post = root.find("a:registrering", ns)
    assert post.findtext("a:referanseEksternNoekkel/n:noekkel", namespaces=ns) == forsendelse["id"]
    roles = post.findall("a:dokumentbeskrivelse/a:tilknyttetRegistreringSom/n:kode", ns)
    assert [r.text for r in roles] == ["H"] + ["V"] * (documents - 1)
    assert root.findtext("a:antallFiler", namespaces=ns) == str(documents)
    named = post.find("a:referanseForelderMappe/n:saksnummer", ns)
    assert (named is not None) == (forsendelse["id"] == "f2")


def test_no_case_and_no_arkivdel_is_the_operators_to_fix() -> None:
    with pytest.raises(ArchiveError, match="arkivdel") as caught:
        _xml({"id": "f5", "tittel": "x"}, arkivdel=None)
    assert caught.value.retry.value == "loudly"


def _kvittering(**fields: str) -> bytes:
    kv = encode.KVITTERING_NS
    parts = "".join(f"<{k}>{v}</{k}>" for k, v in fields.items())
    return (
        f'<arkivmeldingKvittering xmlns="{kv}" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        f'<registreringKvittering xsi:type="journalpostKvittering">{parts}'
        "</registreringKvittering></arkivmeldingKvittering>"
    ).encode()


def test_a_kvittering_is_read() -> None:
    got = encode.parse_kvittering(
        _kvittering(
            systemID="abc",
            opprettetEllerEksisterende="Eksisterende",
            journalaar="2026",
            journalsekvensnummer="12",
        )
    )
    assert (got.system_id, got.existing, got.reference) == ("abc", True, "2026/12 (systemID abc)")


@pytest.mark.parametrize(
    "xml",
    [
        b"not xml",
        b"<other/>",
        _kvittering(opprettetEllerEksisterende="Opprettet"),
        b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]><a>&x;</a>',
        b'<!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]><l>&b;</l>',
        b"<a>" + b"x" * (5 * 1024 * 1024) + b"</a>",
    ],
)
def test_a_hostile_kvittering_is_refused(xml: bytes) -> None:
    with pytest.raises(ArchiveError) as caught:
        encode.parse_kvittering(xml)
    assert "root:" not in str(caught.value)  # /etc/passwd was never read


def test_a_feilmelding_is_read_or_left_empty() -> None:
    feil = encode.FEIL_NS
    xml = (
        f'<ugyldigforespoersel xmlns="x" xmlns:f="{feil}"><f:feilId>X1</f:feilId>'
        "<f:feilmelding>tittel mangler</f:feilmelding></ugyldigforespoersel>"
    ).encode()
    assert encode.parse_feilmelding(xml) == encode.Feilmelding("X1", "tittel mangler")
    assert encode.parse_feilmelding(None) == encode.Feilmelding(None, None)
    assert encode.parse_feilmelding(b"<<<") == encode.Feilmelding(None, None)


def test_a_kvittering_saying_the_registrering_failed_is_never_registered() -> None:
    kv, feil = encode.KVITTERING_NS, encode.FEIL_NS
    xml = (
        f'<arkivmeldingKvittering xmlns="{kv}" xmlns:f="{feil}"><registreringFeilet>'
        "<f:feilId>ARKIVDEL</f:feilId><f:feilmelding>arkivdelen er lukket</f:feilmelding>"
        "</registreringFeilet></arkivmeldingKvittering>"
    ).encode()
    with pytest.raises(ArchiveError, match="arkivdelen er lukket") as caught:
        encode.parse_kvittering(xml)
    assert caught.value.retry.value == "loudly"
