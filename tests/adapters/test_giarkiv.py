"""The gi-arkiv adapter against the local GI-Arkiv 1.1 (``svarinn_daemon/archives/giarkiv.py``)
over loopback: every request zeep builds is validated there against the standard's schema,
so a request a real GI-Arkiv would refuse as malformed fails these tests."""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from svarinn_daemon.adapters import AdapterContext, DocumentMetadata
from svarinn_daemon.adapters.giarkiv import GiArkivArchive, create_adapter
from svarinn_daemon.archives.giarkiv import LocalGiArkiv
from svarinn_daemon.archives.server import Injected
from svarinn_daemon.errors import ArchiveError, ConfigError, Retry
from svarinn_daemon.testing import check_adapter_contract
from tests.support.archive_letters import DOCS, send
from tests.support.persons import fnr

PASSWORD = "arkiv-passord"
PERSON = fnr("010190100")


@pytest.fixture
def arkiv() -> Iterator[LocalGiArkiv]:
    with LocalGiArkiv(password=PASSWORD, year=2026) as running:
        yield running


_made: list[GiArkivArchive] = []


@pytest.fixture(autouse=True)
def _close() -> Iterator[None]:
    yield
    while _made:
        _made.pop().close()


def make(arkiv: LocalGiArkiv, tmp_path: Path, **options: object) -> GiArkivArchive:
    tmp_path.mkdir(parents=True, exist_ok=True)
    secret = tmp_path / "gi-password"
    secret.write_text(PASSWORD + "\n")
    values: dict[str, object] = {
        "url": arkiv.url,
        "innsyn_url": arkiv.innsyn_url,
        "username": "svarinn",
        "password_file": str(secret),
        "arkivdel": "SAK",
        "timeout": "2s",
        **options,
    }
    adapter = create_adapter(values, AdapterContext("arkiv", tmp_path / "state", tmp_path))
    _made.append(adapter)
    return adapter


def meta(data: bytes, mimetype: str = "application/pdf") -> DocumentMetadata:
    return DocumentMetadata(mimetype, hashlib.sha256(data).hexdigest(), len(data), True)


def requests_of(arkiv: LocalGiArkiv, operation: str) -> list[bytes]:
    return [e.body for e in arkiv.server.exchanges if e.operation == operation]


def test_the_shipped_contract(tmp_path: Path) -> None:
    with contextlib.ExitStack() as archives:

        def fresh(directory: Path) -> GiArkivArchive:
            arkiv = archives.enter_context(LocalGiArkiv(password=PASSWORD, year=2026))
            return make(arkiv, directory)

        check_adapter_contract(fresh, tmp_path / "contract")


def test_a_letter_becomes_one_incoming_journalpost_with_its_documents_in_order(
    arkiv: LocalGiArkiv, tmp_path: Path
) -> None:
    adapter = make(arkiv, tmp_path, journalstatus="M")
    reference = send(adapter, "f-1", {"mottaker": {"navn": "Kommunen", "organisasjonsnummer": "1"}})
    (post,) = arkiv.journalposts
    assert reference == f"2026/{post.case.sakssekvensnummer}-1"
    assert (post.journalposttype, post.journalstatus, post.tittel) == ("I", "M", "Søknad om løyve")
    assert post.external == ("SvarUt.Korrespondansepart.ConversationId", "f-1")
    assert [(d.role, d.filnavn, d.mime_type, d.content) for d in post.documents] == [
        ("H", "vedtak.pdf", "application/pdf", DOCS[0][1]),
        ("V", "kart.png", "image/png", DOCS[1][1]),
    ]
    assert [(p["type"], p["kind"], p["orgnr"]) for p in post.parties] == [
        ("EA", "Organisasjon", "987654321"),
        ("EM", "Organisasjon", "1"),
    ]
    assert adapter.has("f-1") == reference
    assert adapter.has("f-2") is None


def test_one_collection_case_per_year_created_once_and_found_again_after_a_restart(
    arkiv: LocalGiArkiv, tmp_path: Path
) -> None:
    first = make(arkiv, tmp_path)
    send(first, "a", {"dato": "2026-02-01T10:00:00"})
    send(first, "b", {"dato": "2026-02-02T10:00:00"})
    again = make(arkiv, tmp_path / "restarted")  # a fresh process: no cache, finds it by key
    send(again, "c", {"dato": "2026-03-01T10:00:00"})
    send(again, "d", {"dato": "2025-12-30T10:00:00"})
    assert [(c.tittel, c.arkivdel) for c in arkiv.cases] == [
        ("SvarInn 2026", "SAK"),
        ("SvarInn 2025", "SAK"),
    ]
    assert [p.case.tittel for p in arkiv.journalposts] == ["SvarInn 2026"] * 3 + ["SvarInn 2025"]
    assert len(requests_of(arkiv, "NySaksmappe")) == 2


def test_an_operators_collection_case_is_found_by_its_title(
    arkiv: LocalGiArkiv, tmp_path: Path
) -> None:
    adapter = make(arkiv, tmp_path, samlesak="Post fra SvarUt {year}")
    existing = _case(arkiv, "Post fra SvarUt 2026")
    send(adapter, "x", {"dato": "2026-05-05T12:00:00"})
    assert arkiv.journalposts[0].case is existing
    assert requests_of(arkiv, "NySaksmappe") == []


def test_a_named_case_is_used_when_the_archive_has_it_else_the_collection_case(
    arkiv: LocalGiArkiv, tmp_path: Path
) -> None:
    named = _case(arkiv, "Byggesak Storgata 1")
    adapter = make(arkiv, tmp_path)
    forsendelse = {
        "metadataForImport": {
            "saksaar": named.saksaar,
            "sakssekvensnummer": named.sakssekvensnummer,
        }
    }
    send(adapter, "in-case", forsendelse)
    missing = {"metadataForImport": {"saksaar": 2019, "sakssekvensnummer": 999}}
    send(adapter, "no-such-case", missing)
    by_key = {p.external[1]: p for p in arkiv.journalposts if p.external}
    assert by_key["in-case"].case is named
    assert by_key["no-such-case"].case.tittel.startswith("SvarInn ")


def test_a_persons_identity_number_is_sent_nowhere(arkiv: LocalGiArkiv, tmp_path: Path) -> None:
    adapter = make(arkiv, tmp_path)
    person = {"navn": "Kari Nordmann", "fodselsnummer": PERSON, "adresselinjer": [PERSON]}
    send(adapter, "p", {"avsender": person, "tittel": f"Klage fra {PERSON}"})
    (post,) = arkiv.journalposts
    assert PERSON not in post.tittel
    assert [(p["kind"], p["navn"]) for p in post.parties] == [("Person", "Kari Nordmann")]
    everything = b"".join(e.body for e in arkiv.server.exchanges)
    assert PERSON.encode() not in everything


def test_a_letter_cut_short_is_completed_never_registered_twice(
    arkiv: LocalGiArkiv, tmp_path: Path
) -> None:
    adapter = make(arkiv, tmp_path)
    docs = (*DOCS, ("c.txt", b"tredje", "text/plain"))
    # The second document is stored, its answer lost: the adapter cannot know.
    arkiv.inject(Injected("NyDokument", skip=1, lose_answer=True))
    with pytest.raises(ArchiveError) as cut:
        send(adapter, "cut", docs=docs)
    assert cut.value.temporary
    assert adapter.has("cut") is None, "incomplete: not yet archived"
    adapter.settling.forget()  # as if the settle time had passed
    reference = send(adapter, "cut", docs=docs)
    (post,) = arkiv.journalposts
    assert [d.filnavn for d in post.documents] == ["vedtak.pdf", "kart.png", "c.txt"]
    assert adapter.has("cut") == reference


def test_a_lost_answer_to_nyjournalpost_is_found_again(arkiv: LocalGiArkiv, tmp_path: Path) -> None:
    adapter = make(arkiv, tmp_path)
    arkiv.inject(Injected("NyJournalpost", lose_answer=True))
    with pytest.raises(ArchiveError) as lost:
        send(adapter, "lost")
    assert lost.value.temporary
    adapter.settling.forget()  # as if the settle time had passed
    send(adapter, "lost")
    assert len(arkiv.journalposts) == 1
    assert len(arkiv.journalposts[0].documents) == 2


@pytest.mark.parametrize(
    ("fault", "retry"),
    [
        (Injected("NyJournalpost", status=503), Retry.BACKOFF),
        (Injected("NyJournalpost", fault="SystemFault"), Retry.BACKOFF),
        (Injected("NyDokument", fault="OperationalFault"), Retry.BACKOFF),
        (Injected("FinnJournalposterGittNoekkel", stall=2.5), Retry.BACKOFF),
        (Injected("NyJournalpost", fault="ApplicationFault"), Retry.LOUDLY),
        (Injected("NyDokument", fault="ValidationFault"), Retry.LOUDLY),
    ],
)
def test_faults_are_temporary_or_loud_never_permanent(
    arkiv: LocalGiArkiv, tmp_path: Path, fault: Injected, retry: Retry
) -> None:
    adapter = make(arkiv, tmp_path)
    arkiv.inject(fault)
    with pytest.raises(ArchiveError) as failed:
        send(adapter, "f")
    assert failed.value.retry is retry
    adapter.settling.forget()  # as if the settle time had passed
    send(adapter, "f")  # the fault passed: the letter goes in, once
    assert len(arkiv.journalposts) == 1
    assert len(arkiv.journalposts[0].documents) == 2


def test_only_a_listed_fault_code_about_the_letter_is_permanent(
    arkiv: LocalGiArkiv, tmp_path: Path
) -> None:
    exe = (("program.exe", b"MZ", "application/x-msdownload"),)
    with pytest.raises(ArchiveError) as unlisted:
        send(make(arkiv, tmp_path / "a"), "exe", docs=exe)
    assert unlisted.value.retry is Retry.LOUDLY
    listed = make(arkiv, tmp_path / "b", permanent_fault_codes=["UGYLDIG_FILFORMAT"])
    with pytest.raises(ArchiveError) as refused:
        send(listed, "exe", docs=exe)
    assert refused.value.permanent
    assert "UGYLDIG_FILFORMAT" in str(refused.value)


def test_configuration_faults_are_loud_and_name_no_secret(
    arkiv: LocalGiArkiv, tmp_path: Path
) -> None:
    wrong = tmp_path / "wrong"
    wrong.mkdir()
    (wrong / "pw").write_text("not-the-password")
    bad_password = make(arkiv, wrong, password_file=str(wrong / "pw"))
    with pytest.raises(ArchiveError) as refused:
        bad_password.probe()
    assert refused.value.retry is Retry.LOUDLY
    assert "not-the-password" not in str(refused.value)
    with pytest.raises(ArchiveError) as unknown:
        make(arkiv, tmp_path / "b", arkivdel="NOPE").probe()
    assert unknown.value.retry is Retry.LOUDLY
    assert "NOPE" in str(unknown.value)
    with pytest.raises(ArchiveError) as unknown_in_use:
        send(make(arkiv, tmp_path / "c", arkivdel="NOPE"), "z")
    assert unknown_in_use.value.retry is Retry.LOUDLY
    assert arkiv.journalposts == []


def test_the_local_archive_refuses_a_request_that_breaks_the_schema(arkiv: LocalGiArkiv) -> None:
    """The check the tests rely on: a journalpost without its required tittel."""
    body = (
        '<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/">'
        '<s:Body><o:NyJournalpost xmlns:o="http://rep.geointegrasjon.no/Arkiv/Oppdatering/'
        'xml.wsdl/2012.01.31"><o:journalpost/></o:NyJournalpost></s:Body></s:Envelope>'
    )
    answer = httpx.post(
        arkiv.url,
        content=body,
        auth=("svarinn", PASSWORD),
        headers={"Content-Type": "text/xml", "SOAPAction": '"#NyJournalpost"'},
    )
    assert answer.status_code == 500
    assert b"SKJEMAFEIL" in answer.content
    assert arkiv.journalposts == []


def test_a_large_document_streams_with_an_exact_length(arkiv: LocalGiArkiv, tmp_path: Path) -> None:
    data = bytes(range(256)) * 40_000 + b"tail"  # 10 MB, not a multiple of 3
    send(make(arkiv, tmp_path), "big", docs=(("stor.bin", data, "application/pdf"),))
    (stored,) = arkiv.journalposts[0].documents
    assert hashlib.sha256(stored.content).digest() == hashlib.sha256(data).digest()


@pytest.mark.parametrize(
    ("options", "key"),
    [
        ({"url": ""}, "url"),
        ({"innsyn_url": ""}, "innsyn_url"),
        ({"samlesak": "Post {aar}"}, "samlesak"),
        ({"username": ""}, "username"),
        ({"title_limit": 5}, "title_limit"),
        ({"permanent_fault_codes": [""]}, "permanent_fault_codes"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_options_are_checked(
    arkiv: LocalGiArkiv, tmp_path: Path, options: dict[str, object], key: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        make(arkiv, tmp_path, **options)
    assert key in str(refused.value)


def _case(arkiv: LocalGiArkiv, title: str) -> Any:
    """A case an operator made in the archive by hand."""
    from svarinn_daemon.archives.giarkiv import StoredCase

    case = StoredCase(f"op-{len(arkiv.cases)}", 2026, 100 + len(arkiv.cases), title, "SAK", None)
    arkiv.cases.append(case)
    return case


def test_after_an_unanswered_request_the_letter_waits_for_the_archive_to_settle(
    arkiv: LocalGiArkiv, tmp_path: Path
) -> None:
    """The archive stalls on the second document past the timeout, then stores it: looking
    again at once would add it a second time."""
    adapter = make(arkiv, tmp_path, timeout="1s")
    arkiv.inject(Injected("NyDokument", skip=1, stall=1.5))
    with pytest.raises(ArchiveError) as timed_out:
        send(adapter, "slow")
    assert timed_out.value.temporary
    with pytest.raises(ArchiveError) as settling:
        send(adapter, "slow")
    assert settling.value.retry_after is not None
    assert 0 < settling.value.retry_after <= 2.0
    time.sleep(settling.value.retry_after)
    send(adapter, "slow")
    (post,) = arkiv.journalposts
    assert [d.filnavn for d in post.documents] == ["vedtak.pdf", "kart.png"]


def test_a_collection_case_gone_from_the_archive_is_looked_up_again(
    arkiv: LocalGiArkiv, tmp_path: Path
) -> None:
    """The adapter remembers the year's collection case; an archivist deletes it. The next
    letter fails once, then a new collection case is found or made: no restart needed."""
    adapter = make(arkiv, tmp_path)
    send(adapter, "a", {"dato": "2026-02-01T10:00:00"})
    arkiv.cases.clear()
    with pytest.raises(ArchiveError) as gone:
        send(adapter, "b", {"dato": "2026-02-02T10:00:00"})
    assert gone.value.temporary
    adapter.settling.forget()
    send(adapter, "b", {"dato": "2026-02-02T10:00:00"})
    assert [c.tittel for c in arkiv.cases] == ["SvarInn 2026"]
    assert arkiv.journalposts[-1].case is arkiv.cases[0]
