"""SvarInnClient against the simulator over real loopback HTTP: calls, paging, every fault."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import httpcore
import pytest

from svarinn_daemon import __version__
from svarinn_daemon.config.model import AccountConfig
from svarinn_daemon.errors import (
    AuthenticationError,
    DownloadTooLargeError,
    ForsendelseGoneError,
    ProtocolError,
    Retry,
    ServiceUnavailableError,
)
from svarinn_daemon.service.runtime import connect
from svarinn_daemon.simulator import Fault, LetterFile, Simulator
from svarinn_daemon.svarinn import Forsendelse, SvarInnClient
from tests.support.simhelpers import Recorder, list_new, make_account, openssl_decrypt

Account = Callable[..., AccountConfig]


def fetch(client: SvarInnClient, letter: Forsendelse, sink: list[bytes] | None = None) -> bytes:
    """Download a letter in 4 KiB chunks, appending them to ``sink`` as they come."""
    chunks = [] if sink is None else sink
    with client.download(letter) as download:
        for chunk in download.iter_chunks(chunk_size=4096):
            chunks.append(chunk)
    return b"".join(chunks)


def test_list_download_acknowledge(
    simulator: Simulator, account: Account, tmp_path: Path, conformance_dir: Path
) -> None:
    pdf = (conformance_dir / "small.pdf").read_bytes()
    sim_letter = simulator.add_bytes(pdf, "Søknad om løyve.pdf", tittel="Søknad")
    with connect(account()) as client:
        (letter,) = list_new(client)
        assert letter.id == sim_letter.id
        assert letter.tittel == "Søknad"
        assert letter.filmetadata[0].sha256hash == hashlib.sha256(pdf).hexdigest()
        assert letter.filmetadata[0].size == len(pdf)
        with client.download(letter) as download:
            assert download.content_type == "application/pdf"
            assert download.filename == "Søknad om løyve.pdf"
            assert download.content_length == sim_letter.blob_size
            chunks = list(download.iter_chunks(chunk_size=1024))
            assert download.bytes_received == sim_letter.blob_size
        assert len(chunks) > 1  # streamed, not one blob
        ciphertext = b"".join(chunks)
        assert ciphertext == sim_letter.blob.read_bytes()
        assert openssl_decrypt(ciphertext, conformance_dir / "privatekey.pem", tmp_path) == pdf
        client.acknowledge(letter.id)
        assert list_new(client) == []
    state = simulator.state()
    assert state.acknowledged == {letter.id: 1}
    assert state.pending == ()
    assert state.downloads == {letter.id: 1}
    log = simulator.request_log()
    assert {r.user_agent for r in log} == {f"svarinn-daemon/{__version__}"}
    assert all(r.authorization and r.authenticated for r in log)


@pytest.mark.parametrize(
    ("count", "calls"), [(0, 1), (1, 1), (199, 1), (200, 2), (399, 2), (400, 3), (450, 3)]
)
def test_paging_rule(simulator: Simulator, account: Account, count: int, calls: int) -> None:
    simulator.generate(count, size=10)
    with connect(account()) as client:
        letters = list_new(client)
    assert sorted(f.id for f in letters) == sorted(simulator.state().pending)
    assert len(letters) == count
    assert simulator.state().requests.get("list") == calls


def test_paging_stops_when_a_full_page_brings_nothing_new(
    conformance_cert: object, account: Account, simulator: Simulator
) -> None:
    simulator.paging = "repeat"  # a server that always answers with the same first 200
    simulator.generate(250, size=10)
    with connect(account()) as client:
        letters = list_new(client)
    assert len(letters) == 200
    assert simulator.state().requests["list"] == 2


def test_duplicate_ids_are_returned_once(simulator: Simulator, account: Account) -> None:
    letters = simulator.generate(250, size=10)
    simulator.add_fault(Fault("duplicate", ids=frozenset({letters[0].id, letters[249].id})))
    with connect(account()) as client:
        listed = list_new(client)
    assert [f.id for f in listed] == [letter.id for letter in letters]
    assert simulator.state().requests["list"] == 2  # letter 0 came again on the second page
    assert simulator.state().faults_fired["duplicate"] >= 2


def test_an_unreadable_item_is_set_aside_and_the_others_listed(
    simulator: Simulator, account: Account
) -> None:
    """Over real HTTP: the item without downloadUrl is rejected with its id and the field
    named; listing() returns the rest over both pages; list_new() stays strict."""
    letters = simulator.generate(203, size=10)
    bad = letters[201]
    simulator.add_fault(Fault("malformed", ids=frozenset({bad.id})))
    with connect(account()) as client:
        listing = client.listing()
        assert [f.id for f in listing.letters] == [x.id for x in letters if x is not bad]
        (rejected,) = listing.rejected
        assert rejected.forsendelse_id == bad.id
        assert "downloadUrl: missing" in str(rejected.error)
        assert bad.id in str(rejected.error)
        with pytest.raises(ProtocolError, match="downloadUrl: missing"):
            list_new(client)
    assert simulator.state().requests["list"] == 4  # two pages, twice


def test_acknowledge_and_report_failure(simulator: Simulator, account: Account) -> None:
    a, b, c = simulator.generate(3, size=10)
    with connect(account()) as client:
        client.acknowledge(a.id)
        client.acknowledge(a.id)
        client.report_failure(b.id, "arkivet svarer ikke", permanent=False)
        client.report_failure(c.id, f"feil med passord {simulator.password}", permanent=True)
        assert [f.id for f in list_new(client)] == [b.id]
    state = simulator.state()
    assert state.acknowledged == {a.id: 2}
    assert [(r.forsendelse_id, r.feilmelding, r.permanent) for r in state.reports] == [
        (b.id, "arkivet svarer ikke", False),
        (c.id, "feil med passord ***", True),
    ]


def test_gone_letters(simulator: Simulator, account: Account) -> None:
    (letter,) = simulator.generate(1, size=10)
    with connect(account()) as client:
        (listed,) = list_new(client)
        simulator.remove(letter.id)
        with pytest.raises(ForsendelseGoneError) as info, client.download(listed):
            pass
        assert info.value.status_code == 404
        assert not info.value.temporary
        assert "Fant ikke forsendelse" in info.value.body_start
        with pytest.raises(ForsendelseGoneError):
            client.acknowledge("00000000-0000-0000-0000-000000000000")


@pytest.mark.parametrize("endpoint", ["list", "download", "acknowledge", "report"])
@pytest.mark.parametrize("kind", ["http_500", "http_503"])
def test_server_errors_are_temporary(
    simulator: Simulator, account: Account, kind: str, endpoint: str
) -> None:
    (letter,) = simulator.generate(1, size=10)
    with connect(account()) as client:
        (listed,) = list_new(client)
        simulator.add_fault(Fault(kind, endpoints=frozenset({endpoint}), times=1))  # type: ignore[arg-type]
        calls: dict[str, Callable[[], object]] = {
            "list": lambda: list_new(client),
            "download": lambda: fetch(client, listed),
            "acknowledge": lambda: client.acknowledge(letter.id),
            "report": lambda: client.report_failure(letter.id, "x", permanent=False),
        }
        with pytest.raises(ServiceUnavailableError) as info:
            calls[endpoint]()
        error = info.value
        assert error.temporary
        assert error.status_code == int(kind[-3:])
        assert "Simulert feil" in error.body_start
        assert "testkommune" in str(error)
        calls[endpoint]()  # times=1: the next call goes through


def test_retry_after_is_honoured(simulator: Simulator, account: Account) -> None:
    simulator.add_fault(Fault("http_503", retry_after="7", times=1))
    simulator.add_fault(Fault("http_429", retry_after="Wed, 21 Oct 2015 07:28:00 GMT", times=1))
    with connect(account()) as client:
        with pytest.raises(ServiceUnavailableError) as first:
            list_new(client)
        assert first.value.retry_after == 7.0
        with pytest.raises(ServiceUnavailableError) as second:
            list_new(client)
        assert second.value.status_code == 429
        assert second.value.retry_after == 0.0


def test_fault_by_letter_id_hits_only_that_letter(simulator: Simulator, account: Account) -> None:
    bad, good = simulator.generate(2, size=10)
    simulator.add_fault(Fault("http_500", ids=frozenset({bad.id})))
    with connect(account()) as client:
        listed = {f.id: f for f in list_new(client)}  # the listing has no id: unaffected
        assert fetch(client, listed[good.id]) == good.blob.read_bytes()
        with pytest.raises(ServiceUnavailableError):
            fetch(client, listed[bad.id])


def test_fault_by_rate_is_deterministic_per_seed(simulator: Simulator, account: Account) -> None:
    simulator.add_fault(Fault("http_503", rate=0.3))
    outcomes = []
    with connect(account()) as client:
        for _ in range(60):
            try:
                list_new(client)
                outcomes.append(True)
            except ServiceUnavailableError:
                outcomes.append(False)
    failures = outcomes.count(False)
    assert 5 <= failures <= 35
    assert simulator.state().faults_fired["http_503"] == failures


def test_large_socket_reads_stay_inside_the_svarinn_client(
    simulator: Simulator, account: Callable[..., AccountConfig]
) -> None:
    """The client's connections read 256 KiB per recv(); httpcore's class-wide default,
    which the notifiers' clients use, is left alone."""
    before = httpcore.HTTP11Connection.READ_NUM_BYTES
    (letter,) = simulator.generate(1, 1_000_000)
    with connect(account()) as client:
        (listed,) = client.listing().letters
        with client.download(listed) as body:
            received = sum(len(chunk) for chunk in body.iter_chunks())
    assert received == letter.blob_size
    assert httpcore.HTTP11Connection.READ_NUM_BYTES == before == 64 * 1024


def test_wrong_credentials(simulator: Simulator) -> None:
    account = make_account(simulator.base_url, username=simulator.username, password="feil-passord")
    with connect(account) as client:
        with pytest.raises(AuthenticationError) as info:
            list_new(client)
        assert "feil-passord" not in repr(client)
    error = info.value
    assert error.status_code == 401
    assert error.retry is Retry.STOP_ACCOUNT
    assert "testkommune" in str(error)
    assert "feil-passord" not in str(error) + error.body_start + repr(error)
    assert simulator.state().rejected_credentials == 1


def test_unauthorized_fault(simulator: Simulator, account: Account) -> None:
    (letter,) = simulator.generate(1, size=10)
    simulator.add_fault(Fault("unauthorized", ids=frozenset({letter.id})))
    with connect(account()) as client:
        (listed,) = list_new(client)
        with pytest.raises(AuthenticationError):
            fetch(client, listed)
    assert simulator.state().faults_fired == {"unauthorized": 1}


def test_slow_response_times_out(simulator: Simulator, account: Account) -> None:
    simulator.add_fault(Fault("slow", delay=2.0, times=1))
    with connect(account(read_timeout=timedelta(milliseconds=200))) as client:
        with pytest.raises(ServiceUnavailableError, match="timed out"):
            list_new(client)
        assert list_new(client) == []


def test_slow_response_within_timeout_succeeds(simulator: Simulator, account: Account) -> None:
    simulator.add_fault(Fault("slow", delay=0.3))
    with connect(account()) as client:
        assert list_new(client) == []


@pytest.mark.parametrize("kind", ["reset", "truncate"])
def test_broken_bodies_are_temporary(simulator: Simulator, account: Account, kind: str) -> None:
    (letter,) = simulator.generate(1, size=300_000)
    simulator.add_fault(Fault(kind, times=1))  # type: ignore[arg-type]
    with connect(account()) as client:
        (listed,) = list_new(client)
        received = []
        with pytest.raises(ServiceUnavailableError) as info:
            fetch(client, listed, sink=received)
        assert info.value.temporary
        assert 0 < sum(map(len, received)) < letter.blob_size
        assert fetch(client, listed) == letter.blob.read_bytes()  # the retry is whole


def test_a_stalled_body_arrives_whole_after_the_pause(
    simulator: Simulator, account: Account
) -> None:
    (letter,) = simulator.generate(1, size=300_000)
    simulator.add_fault(Fault("stall", delay=0.3, times=1))
    with connect(account()) as client:
        (listed,) = list_new(client)
        started = time.monotonic()
        assert fetch(client, listed) == letter.blob.read_bytes()
        assert time.monotonic() - started >= 0.3
    assert simulator.state().faults_fired == {"stall": 1}


def test_corrupted_ciphertext(
    simulator: Simulator, account: Account, conformance_dir: Path, tmp_path: Path
) -> None:
    (letter,) = simulator.generate(1, size=5000)
    simulator.add_fault(Fault("corrupt", ids=frozenset({letter.id})))
    original = letter.blob.read_bytes()
    with connect(account()) as client:
        (listed,) = list_new(client)
        served = fetch(client, listed)
    assert len(served) == len(original)
    assert [i for i in range(len(served)) if served[i] != original[i]] == [letter.content_offset]
    try:
        plaintext = openssl_decrypt(served, conformance_dir / "privatekey.pem", tmp_path)
    except RuntimeError:
        return  # also acceptable: the decryption itself fails
    assert hashlib.sha256(plaintext).hexdigest() != listed.filmetadata[0].sha256hash


def test_wrong_sha256_in_metadata(
    simulator: Simulator, account: Account, conformance_dir: Path, tmp_path: Path
) -> None:
    bad, good = simulator.generate(2, size=3000)
    simulator.add_fault(Fault("wrong_sha256", ids=frozenset({bad.id})))
    with connect(account()) as client:
        listed = {f.id: f for f in list_new(client)}
        for letter in (bad, good):
            plaintext = openssl_decrypt(
                fetch(client, listed[letter.id]), conformance_dir / "privatekey.pem", tmp_path
            )
            matches = (
                hashlib.sha256(plaintext).hexdigest() == listed[letter.id].filmetadata[0].sha256hash
            )
            assert matches == (letter is good)


def test_download_size_limit_from_content_length(simulator: Simulator, account: Account) -> None:
    (letter,) = simulator.generate(1, size=20_000)
    with connect(account(max_download_size=10_000)) as client:
        (listed,) = list_new(client)
        with (
            pytest.raises(DownloadTooLargeError, match="max_download_size"),
            client.download(listed),
        ):
            pass
    assert letter.blob_size > 10_000


def test_multi_file_letters_come_as_a_zip(
    simulator: Simulator, account: Account, conformance_dir: Path, tmp_path: Path
) -> None:
    import io
    import zipfile

    files = [
        LetterFile("brev.pdf", data=(conformance_dir / "small.pdf").read_bytes()),
        LetterFile("vedlegg.txt", "text/plain", data="hei på deg\n".encode()),
    ]
    simulator.add_letter(files)
    with connect(account()) as client:
        (listed,) = list_new(client)
        with client.download(listed) as download:
            assert download.content_type == "application/zip"
            assert download.filename is not None
            assert download.filename.endswith(".zip")
            ciphertext = b"".join(download)
    archive = zipfile.ZipFile(
        io.BytesIO(openssl_decrypt(ciphertext, conformance_dir / "privatekey.pem", tmp_path))
    )
    for meta, file in zip(listed.filmetadata, files, strict=True):
        content = archive.read(meta.filnavn or "")
        assert content == file.data
        assert meta.sha256hash == hashlib.sha256(content).hexdigest()
        assert meta.size == len(content)
        assert meta.mimetype == file.mimetype


def test_non_json_listing_is_a_protocol_error(recorder: Recorder) -> None:
    recorder.body = b"<html>Vedlikehold</html>"
    account = make_account(recorder.base_url, username="u", password="p4ssword")
    with connect(account) as client, pytest.raises(ProtocolError, match="not JSON") as info:
        list_new(client)
    assert "Vedlikehold" in info.value.body_start
