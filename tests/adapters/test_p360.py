"""The p360 adapter against the local Public 360 SIF (``svarinn_daemon/archives/p360.py``) over
loopback. With ../shared present, every request is also checked against FINTLabs' published
SIF request shapes: a field 360 does not have fails the test."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from svarinn_daemon.adapters import AdapterContext
from svarinn_daemon.adapters.p360 import P360Archive, create_adapter
from svarinn_daemon.archives.p360 import LocalP360, shape_errors
from svarinn_daemon.archives.server import Injected
from svarinn_daemon.errors import ArchiveError, ConfigError, Retry
from svarinn_daemon.testing import check_adapter_contract
from tests.conftest import SHARED, need_shared
from tests.support.archive_letters import DOCS, send
from tests.support.persons import fnr

AUTHKEY = "p360-authkey-7f3e"
FIELD = "SvarUtForsendelseId"
SHAPES = SHARED / "specs" / "p360-sif-fintlabs"
PERSON = fnr("020285300")


def _local() -> LocalP360:
    return LocalP360(authkey=AUTHKEY, shapes=SHAPES if SHAPES.is_dir() else None)


@pytest.fixture
def p360() -> Iterator[LocalP360]:
    with _local() as running:
        yield running
        assert running.shape_violations == []


_made: list[P360Archive] = []


@pytest.fixture(autouse=True)
def _close() -> Iterator[None]:
    yield
    while _made:
        _made.pop().close()


def make(p360: LocalP360, tmp_path: Path, **options: object) -> P360Archive:
    tmp_path.mkdir(parents=True, exist_ok=True)
    secret = tmp_path / "authkey"
    secret.write_text(AUTHKEY + "\n")
    values: dict[str, object] = {
        "url": p360.url,
        "authkey_file": str(secret),
        "external_key_field": FIELD,
        "timeout": "2s",
        **options,
    }
    adapter = create_adapter(values, AdapterContext("p360", tmp_path / "state", tmp_path))
    _made.append(adapter)
    return adapter


def test_the_shipped_contract(tmp_path: Path) -> None:
    with contextlib.ExitStack() as archives:

        def fresh(directory: Path) -> P360Archive:
            return make(archives.enter_context(_local()), directory)

        check_adapter_contract(fresh, tmp_path / "contract")


def test_a_letter_becomes_one_document_with_its_files(p360: LocalP360, tmp_path: Path) -> None:
    adapter = make(p360, tmp_path, category="Dokument inn", archive="Saksdokument")
    reference = send(adapter, "f-1", {"mottaker": {"navn": "Kommunen", "organisasjonsnummer": "1"}})
    (doc,) = p360.documents
    assert reference == doc.document_number
    assert (doc.title, doc.category, doc.status, doc.custom) == (
        "Søknad om løyve",
        "Dokument inn",
        "M",
        {FIELD: "f-1"},
    )
    assert [(t, f, data, r) for t, f, data, r in doc.files] == [
        ("vedtak.pdf", "pdf", DOCS[0][1], "H"),
        ("kart.png", "png", DOCS[1][1], "V"),
    ]
    assert [(c["Role"], c.get("ReferenceNumber")) for c in doc.contacts] == [
        ("Avsender", "987654321"),
        ("Mottaker", "1"),
    ]
    assert adapter.has("f-1") == reference
    assert adapter.has("f-2") is None


def test_collection_case_once_found_again_and_a_named_case(p360: LocalP360, tmp_path: Path) -> None:
    named = p360.add_case("2026/17", "Byggesak Storgata 1")
    first = make(p360, tmp_path / "a")
    send(first, "a", {"dato": "2026-02-01T10:00:00"})
    send(first, "b", {"metadataForImport": {"saksaar": 2026, "sakssekvensnummer": 17}})
    send(make(p360, tmp_path / "b"), "c", {"dato": "2026-03-01T10:00:00"})  # a restart
    send(first, "d", {"metadataForImport": {"saksaar": 2019, "sakssekvensnummer": 9}})
    by_key = {d.custom[FIELD]: d.case for d in p360.documents}
    assert by_key["b"] is named
    assert by_key["a"] is by_key["c"] is by_key["d"]
    assert [c.title for c in p360.cases] == ["Byggesak Storgata 1", "SvarInn 2026"]


def test_case_numbers_in_360s_own_spelling(p360: LocalP360, tmp_path: Path) -> None:
    named = p360.add_case("26/00017", "Byggesak")
    adapter = make(p360, tmp_path, case_number_format="{saksaar_short:02d}/{sakssekvensnummer:05d}")
    send(adapter, "n", {"metadataForImport": {"saksaar": 2026, "sakssekvensnummer": 17}})
    assert p360.documents[0].case is named


def test_an_operators_collection_case_is_found_by_title(p360: LocalP360, tmp_path: Path) -> None:
    made = p360.add_case("26/00900", "SvarInn 2026")
    send(make(p360, tmp_path), "x", {"dato": "2026-05-05T12:00:00"})
    assert p360.documents[0].case is made
    assert len(p360.cases) == 1


def test_a_persons_identity_number_is_sent_nowhere(p360: LocalP360, tmp_path: Path) -> None:
    person = {"navn": "Kari Nordmann", "fodselsnummer": PERSON, "adresselinjer": ["Vei 2"]}
    send(make(p360, tmp_path), "p", {"avsender": person, "tittel": f"Klage {PERSON}"})
    assert PERSON.encode() not in b"".join(e.body for e in p360.server.exchanges)
    assert "ReferenceNumber" not in p360.documents[0].contacts[0]


def test_a_lost_answer_finds_the_document_and_never_registers_twice(
    p360: LocalP360, tmp_path: Path
) -> None:
    adapter = make(p360, tmp_path)
    p360.inject(Injected("DocumentService.CreateDocument", lose_answer=True))
    with pytest.raises(ArchiveError) as lost:
        send(adapter, "lost")
    assert lost.value.temporary
    assert adapter.has("lost") is not None  # it is there: the pipeline acknowledges it
    adapter.settling.forget()
    send(adapter, "lost")  # and a second attempt would find it too
    assert len(p360.documents) == 1


@pytest.mark.parametrize(
    ("fault", "retry"),
    [
        (Injected("DocumentService.CreateDocument", status=503), Retry.BACKOFF),
        (Injected("DocumentService.GetDocuments", stall=2.5), Retry.BACKOFF),
        (Injected("CaseService.CreateCase", status=500), Retry.BACKOFF),
        (
            Injected("DocumentService.CreateDocument", fault="Access denied to archive"),
            Retry.LOUDLY,
        ),
    ],
)
def test_faults_are_temporary_or_loud(
    p360: LocalP360, tmp_path: Path, fault: Injected, retry: Retry
) -> None:
    adapter = make(p360, tmp_path)
    p360.inject(fault)
    with pytest.raises(ArchiveError) as failed:
        send(adapter, "f")
    assert failed.value.retry is retry
    adapter.settling.forget()
    send(adapter, "f")
    assert len(p360.documents) == 1


def test_refusals_and_credentials_are_loud_and_name_no_secret(
    p360: LocalP360, tmp_path: Path
) -> None:
    with pytest.raises(ArchiveError) as exe:
        send(
            make(p360, tmp_path / "a"), "exe", docs=(("x.exe", b"MZ", "application/x-msdownload"),)
        )
    assert exe.value.retry is Retry.LOUDLY
    assert "not allowed" in str(exe.value)
    with pytest.raises(ArchiveError) as field:
        send(make(p360, tmp_path / "b", external_key_field="NoSuchField"), "f")
    assert field.value.retry is Retry.LOUDLY
    wrong = tmp_path / "c"
    wrong.mkdir()
    (wrong / "key").write_text("wrong-authkey-123")
    for where in ("header", "query"):
        adapter = make(p360, wrong, authkey_file=str(wrong / "key"), authkey_in=where)
        with pytest.raises(ArchiveError) as refused:
            adapter.probe()
        assert refused.value.retry is Retry.LOUDLY
        assert "wrong-authkey-123" not in str(refused.value)
    assert p360.documents == []


def test_the_authkey_can_go_in_the_query(p360: LocalP360, tmp_path: Path) -> None:
    send(make(p360, tmp_path, authkey_in="query"), "q")
    assert len(p360.documents) == 1


def test_a_large_file_streams(p360: LocalP360, tmp_path: Path) -> None:
    data = bytes(range(256)) * 20_000 + b"xy"
    send(make(p360, tmp_path), "big", docs=(("stor.pdf", data, "application/pdf"),))
    assert p360.documents[0].files[0][2] == data


def test_the_local_360_refuses_a_request_outside_the_published_shapes() -> None:
    shapes = need_shared(SHAPES, "FINTLabs' SIF request shapes")
    with LocalP360(authkey=AUTHKEY, shapes=shapes) as p360:
        answer = httpx.post(
            p360.url + "/CaseService/CreateCase",
            json={"parameter": {"Title": "x", "Tittel": "y"}},
            headers={"Authorization": f"authkey {AUTHKEY}"},
        )
    assert answer.json()["Successful"] is False
    assert p360.shape_violations == ["parameter.Tittel: no such field"]
    assert p360.cases == []


def test_the_shapes_check_refuses_a_field_360_does_not_have() -> None:
    example = {"Title": "string", "Files": [{"Title": "string", "FiledOnPaper": True}]}
    assert shape_errors({"Title": "x", "Files": [{"Title": "y"}]}, example) == []
    assert shape_errors({"Titel": "x"}, example) == ["parameter.Titel: no such field"]
    assert shape_errors({"Files": [{"FiledOnPaper": "yes"}]}, example) == [
        "parameter.Files[0].FiledOnPaper: bool expected, not str"
    ]


@pytest.mark.parametrize(
    ("options", "key"),
    [
        ({"url": ""}, "url"),
        ({"external_key_field": ""}, "external_key_field"),
        ({"authkey_file": None}, "authkey"),
        ({"authkey_in": "cookie"}, "authkey_in"),
        ({"case_number_format": "{aar}/{nr}"}, "case_number_format"),
        ({"samlesak": "Post {aar}"}, "samlesak"),
    ],
)
def test_options_are_checked(
    p360: LocalP360, tmp_path: Path, options: dict[str, object], key: str
) -> None:
    values = {k: v for k, v in options.items() if v is not None}
    if "authkey_file" in options:
        tmp_path.mkdir(parents=True, exist_ok=True)
        context = AdapterContext("p360", tmp_path / "state", tmp_path)
        with pytest.raises(ConfigError) as refused:
            create_adapter({"url": p360.url, "external_key_field": FIELD}, context)
    else:
        with pytest.raises(ConfigError) as refused:
            make(p360, tmp_path, **values)
    assert key in str(refused.value)
