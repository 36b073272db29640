"""The noark5 adapter against the local Noark 5 tjenestegrensesnitt
(``svarinn_daemon/archives/noark5.py``) over loopback: links walked from the root, every object
checked against the standard's fields and codes, every file against its declared size and
SHA-256."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from svarinn_daemon.adapters import AdapterContext
from svarinn_daemon.adapters.noark5 import Noark5Archive, create_adapter
from svarinn_daemon.archives.noark5 import LocalNoark5, odata_filter
from svarinn_daemon.archives.server import Injected
from svarinn_daemon.errors import ArchiveError, ConfigError, Retry
from svarinn_daemon.testing import check_adapter_contract
from tests.support import archive_letters
from tests.support.archive_letters import DOCS, Docs
from tests.support.persons import fnr

TOKEN = "noark5-token-5c1a"
PERSON = fnr("030390200")
ORG = {
    "navn": "Byggmester AS",
    "organisasjonsnummer": "987654321",
    "adresselinjer": ["Gata 1", "Bygg B"],
    "postnummer": "0150",
    "poststed": "Oslo",
    "land": "NO",
}


@pytest.fixture
def n5() -> Iterator[LocalNoark5]:
    with LocalNoark5(token=TOKEN) as running:
        yield running


_made: list[Noark5Archive] = []


@pytest.fixture(autouse=True)
def _close() -> Iterator[None]:
    yield
    while _made:
        _made.pop().close()


def make(n5: LocalNoark5, tmp_path: Path, **options: object) -> Noark5Archive:
    tmp_path.mkdir(parents=True, exist_ok=True)
    secret = tmp_path / "token"
    secret.write_text(TOKEN + "\n")
    values: dict[str, object] = {
        "url": n5.url,
        "token_file": str(secret),
        "arkivdel": "Sakarkiv",
        "timeout": "2s",
        **options,
    }
    adapter = create_adapter(values, AdapterContext("n5", tmp_path / "state", tmp_path))
    _made.append(adapter)
    return adapter


def send(
    adapter: Noark5Archive, fid: str, forsendelse: dict[str, Any] | None = None, docs: Docs = DOCS
) -> str:
    """A letter from an organisation with a full postal address."""
    return archive_letters.send(adapter, fid, forsendelse, docs, sender=ORG)


def files_of(n5: LocalNoark5, post: Any) -> list[tuple[str, str, bytes | None]]:
    out = []
    for description in (c for c in post.children if c.kind == "dokumentbeskrivelse"):
        for obj in description.children:
            role = description.fields["tilknyttetRegistreringSom"]["kode"]
            out.append((role, obj.fields["filnavn"], obj.content))
    return out


def test_the_shipped_contract(tmp_path: Path) -> None:
    with contextlib.ExitStack() as archives:

        def fresh(directory: Path) -> Noark5Archive:
            return make(archives.enter_context(LocalNoark5(token=TOKEN)), directory)

        check_adapter_contract(fresh, tmp_path / "contract")


def test_a_letter_becomes_one_journalpost_with_its_documents(
    n5: LocalNoark5, tmp_path: Path
) -> None:
    adapter = make(n5, tmp_path)
    reference = send(adapter, "f-1", {"mottaker": {"navn": "Kommunen", "organisasjonsnummer": "1"}})
    (post,) = n5.all("journalpost")
    assert reference == "2026/1"
    assert post.fields["journalposttype"] == {"kode": "I"}
    assert post.fields["journalstatus"] == {"kode": "M"}
    assert post.fields["virksomhetsspesifikkeMetadata"]["svarinn:forsendelseId"] == "f-1"
    assert files_of(n5, post) == [
        ("H", "vedtak.pdf", DOCS[0][1]),
        ("V", "kart.png", DOCS[1][1]),
    ]
    parties = [c.fields for c in post.children if c.kind == "korrespondansepart"]
    assert [(p["korrespondanseparttype"]["kode"], p["navn"]) for p in parties] == [
        ("EA", "Byggmester AS"),
        ("EM", "Kommunen"),
    ]
    assert parties[0]["enhetsidentifikator"] == {"organisasjonsnummer": "987654321"}
    assert parties[0]["postadresse"] == {
        "adresselinje1": "Gata 1",
        "adresselinje2": "Bygg B",
        "postnr": {"kode": "0150"},
        "poststed": "Oslo",
        "landkode": {"kode": "NO"},
    }
    assert adapter.has("f-1") == reference
    assert adapter.has("f-2") is None


def test_collection_case_once_and_a_named_case(n5: LocalNoark5, tmp_path: Path) -> None:
    named = n5.add_case(2025, 40, "Byggesak")
    first = make(n5, tmp_path / "a")
    send(first, "a")
    send(first, "b", {"metadataForImport": {"saksaar": 2025, "sakssekvensnummer": 40}})
    send(make(n5, tmp_path / "b"), "c")  # a restart: found by title
    send(first, "d", {"metadataForImport": {"saksaar": 2019, "sakssekvensnummer": 1}})
    cases = {p.fields["virksomhetsspesifikkeMetadata"]["svarinn:forsendelseId"]: p.parent
             for p in n5.all("journalpost")}  # fmt: skip
    assert cases["b"] is named
    assert cases["a"] is cases["c"] is cases["d"]
    assert sorted(c.fields["tittel"] for c in n5.all("saksmappe")) == ["Byggesak", "SvarInn 2026"]


def test_a_persons_identity_number_is_sent_nowhere(n5: LocalNoark5, tmp_path: Path) -> None:
    person = {"navn": "Kari Nordmann", "fodselsnummer": PERSON, "adresselinjer": ["Vei 2"]}
    send(make(n5, tmp_path), "p", {"avsender": person, "tittel": f"Klage {PERSON}"})
    assert PERSON.encode() not in b"".join(e.body for e in n5.server.exchanges)


@pytest.mark.parametrize("where", ["ny-dokumentobjekt", "fil"])
def test_a_letter_cut_short_is_completed_never_registered_twice(
    n5: LocalNoark5, tmp_path: Path, where: str
) -> None:
    """The second document's object (or file) is made, its answer lost; the third is never
    sent. The next attempt adds what is missing to the same journalpost."""
    adapter = make(n5, tmp_path)
    docs = (*DOCS, ("c.txt", b"tredje", "text/plain"))
    operation = "arkivstruktur/fil" if where == "fil" else "arkivstruktur/ny-dokumentobjekt"
    n5.inject(Injected(operation, skip=1, lose_answer=True))
    with pytest.raises(ArchiveError) as cut:
        send(adapter, "cut", docs=docs)
    assert cut.value.temporary
    assert adapter.has("cut") is None
    adapter.settling.forget()
    reference = send(adapter, "cut", docs=docs)
    (post,) = n5.all("journalpost")
    stored = files_of(n5, post)
    assert [(r, f) for r, f, _ in stored] == [
        ("H", "vedtak.pdf"),
        ("V", "kart.png"),
        ("V", "c.txt"),
    ]
    assert [content for *_, content in stored] == [d[1] for d in docs]
    assert len(n5.all("korrespondansepart")) == 1
    assert adapter.has("cut") == reference


@pytest.mark.parametrize(
    ("fault", "retry"),
    [
        (Injected("sakarkiv/ny-journalpost", status=503), Retry.BACKOFF),
        (Injected("arkivstruktur/fil", status=500), Retry.BACKOFF),
        (Injected("sakarkiv/journalpost", stall=2.5), Retry.BACKOFF),
        (Injected("arkivstruktur/ny-dokumentbeskrivelse", fault="refused"), Retry.LOUDLY),
    ],
)
def test_faults_are_temporary_or_loud(
    n5: LocalNoark5, tmp_path: Path, fault: Injected, retry: Retry
) -> None:
    adapter = make(n5, tmp_path)
    n5.inject(fault)
    with pytest.raises(ArchiveError) as failed:
        send(adapter, "f")
    assert failed.value.retry is retry
    adapter.settling.forget()
    send(adapter, "f")
    assert len(n5.all("journalpost")) == 1
    assert len(n5.all("dokumentobjekt")) == 2


def test_configuration_faults_are_loud_and_name_no_secret(n5: LocalNoark5, tmp_path: Path) -> None:
    with pytest.raises(ArchiveError) as unknown:
        make(n5, tmp_path / "a", arkivdel="Nope").probe()
    assert unknown.value.retry is Retry.LOUDLY
    assert "Nope" in str(unknown.value)
    wrong = tmp_path / "b"
    wrong.mkdir()
    (wrong / "t").write_text("wrong-token-77")
    with pytest.raises(ArchiveError) as refused:
        make(n5, wrong, token_file=str(wrong / "t")).probe()
    assert refused.value.retry is Retry.LOUDLY
    assert "wrong-token-77" not in str(refused.value)


def test_basic_credentials(tmp_path: Path) -> None:
    with LocalNoark5(token=None, username="admin@example.com", password="pw-9") as n5:
        (tmp_path / "pw").write_text("pw-9")
        adapter = create_adapter(
            {"url": n5.url, "username": "admin@example.com", "password_file": str(tmp_path / "pw"),
             "arkivdel": "Sakarkiv"},
            AdapterContext("n5", tmp_path / "state", tmp_path),
        )  # fmt: skip
        try:
            send(adapter, "basic")
        finally:
            adapter.close()
        assert len(n5.all("journalpost")) == 1


def test_the_local_archive_refuses_what_the_standard_does_not_have(n5: LocalNoark5) -> None:
    import httpx

    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/vnd.noark5+json"}
    arkivdel = n5.arkiv.children[0]
    url = f"{n5.server.base_url}/noark5v5/api/{arkivdel.id}/sakarkiv/ny-saksmappe"
    wrong_field = httpx.post(url, json={"tittel": "x", "titel": "y"}, headers=headers)
    assert wrong_field.status_code == 400
    assert "titel" in wrong_field.text
    assert httpx.post(url, json={"tittel": "x"}, headers=headers).status_code == 201


def test_odata_filters() -> None:
    assert odata_filter("saksaar eq 2026 and sakssekvensnummer eq 7") == [
        (["saksaar"], 2026),
        (["sakssekvensnummer"], 7),
    ]
    assert odata_filter("tittel eq 'Kari''s sak'") == [(["tittel"], "Kari's sak")]
    with pytest.raises(ValueError, match="unsupported"):
        odata_filter("contains(tittel, 'x')")


@pytest.mark.parametrize(
    ("options", "key"),
    [
        ({"url": ""}, "url"),
        ({"arkivdel": ""}, "arkivdel"),
        ({"username": "u"}, "username"),
        ({"samlesak": "Post {aar}"}, "samlesak"),
    ],
)
def test_options_are_checked(
    n5: LocalNoark5, tmp_path: Path, options: dict[str, object], key: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        make(n5, tmp_path, **options)
    assert key in str(refused.value)


def test_a_file_above_the_servers_bulkgrense_goes_in_parts(tmp_path: Path) -> None:
    data = bytes(range(256)) * 1200 + b"tail"  # 307,204 bytes: five parts of 64 KiB
    with LocalNoark5(token=TOKEN, bulkgrense=100_000) as n5:
        adapter = make(n5, tmp_path, chunk_size="64KiB")
        n5.inject(Injected("arkivstruktur/fil", skip=3, lose_answer=True))  # the 3rd part
        docs = (("stor.pdf", data, "application/pdf"), ("liten.txt", b"liten", "text/plain"))
        with pytest.raises(ArchiveError):
            send(adapter, "big", docs=docs)
        adapter.settling.forget()
        send(adapter, "big", docs=docs)  # a new session for the file, from its start
        (post,) = n5.all("journalpost")
        assert [content for *_, content in files_of(n5, post)] == [data, b"liten"]
        parts = [len(e.body) for e in n5.server.exchanges if e.operation == "arkivstruktur/fil"]
        assert parts.count(65536) >= 2 + 4  # two parts, then four again after the cut
        assert len(data) not in parts  # never in one piece


def test_the_upload_session_stays_on_the_archives_origin() -> None:
    from svarinn_daemon.adapters.archive_http import Answer
    from svarinn_daemon.adapters.noark5.upload import session_url

    target = "https://arkiv.example/noark5v5/api/x/arkivstruktur/fil"
    here = Answer(200, b"", {"location": "?ref=abc-2"})
    assert session_url(target, here) == target + "?ref=abc-2"
    with pytest.raises(ArchiveError) as elsewhere:
        session_url(target, Answer(200, b"", {"location": "https://evil.example/x"}))
    assert elsewhere.value.retry is Retry.LOUDLY


def test_links_are_read_keyed_by_relation_or_as_a_list() -> None:
    from svarinn_daemon.adapters.noark5.encode import FIL, link

    keyed = {"_links": {FIL: {"href": "https://a/fil"}}}
    listed = {"_links": [{"rel": "self", "href": "https://a"}, {"rel": FIL, "href": "https://a/f"}]}
    assert link(keyed, FIL) == "https://a/fil"
    assert link(listed, FIL) == "https://a/f"
    assert link({"_links": "nonsense"}, FIL) is None
    assert link({}, FIL) is None


def test_a_collection_case_gone_from_the_archive_is_looked_up_again(
    n5: LocalNoark5, tmp_path: Path
) -> None:
    adapter = make(n5, tmp_path)
    send(adapter, "a")
    arkivdel = n5.arkiv.children[0]
    (case,) = [c for c in arkivdel.children if c.kind == "saksmappe"]
    arkivdel.children.remove(case)
    n5._all.pop(case.id)
    with pytest.raises(ArchiveError):
        send(adapter, "b")
    adapter.settling.forget()
    send(adapter, "b")
    assert [c.fields["tittel"] for c in arkivdel.children if c.kind == "saksmappe"] == [
        "SvarInn 2026"
    ]
