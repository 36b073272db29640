"""SvarInnV2Client against the simulator's SvarInn V2 over real loopback HTTP: both base
paths, paging, ZIP downloads, the status PATCH and its error mapping, origin rules."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from svarinn_daemon.config.model import AccountConfig
from svarinn_daemon.errors import (
    AuthenticationError,
    ForsendelseGoneError,
    OriginNotAllowedError,
    ProtocolError,
    ServiceUnavailableError,
)
from svarinn_daemon.service.runtime import connect
from svarinn_daemon.simulator import Fault, LetterFile, Simulator
from svarinn_daemon.svarinn.v2 import SvarInnV2Client
from tests.support.simhelpers import Recorder, list_new, make_account, openssl_decrypt

Account = Callable[..., AccountConfig]


@pytest.fixture
def v2_account(simulator: Simulator) -> Account:
    """``v2_account(base="/api", **http)``: a SvarInn V2 account on the simulator."""

    def build(base: str = "/api", **http: object) -> AccountConfig:
        account = make_account(
            simulator.v2_base_url(base),
            username=simulator.username,
            password=simulator.password,
            **http,
        )
        return dataclasses.replace(account, api="v2")

    return build


def unzip(ciphertext: bytes, conformance_dir: Path, tmp_path: Path) -> zipfile.ZipFile:
    plaintext = openssl_decrypt(ciphertext, conformance_dir / "privatekey.pem", tmp_path)
    return zipfile.ZipFile(io.BytesIO(plaintext))


@pytest.mark.parametrize("base", ["/api", "/tjenester"])
def test_list_download_acknowledge_over_v2(
    simulator: Simulator,
    v2_account: Account,
    base: str,
    conformance_dir: Path,
    tmp_path: Path,
) -> None:
    pdf = (conformance_dir / "small.pdf").read_bytes()
    sim_letter = simulator.add_bytes(pdf, "Søknad.pdf", tittel="Søknad")
    with connect(v2_account(base)) as client:
        assert isinstance(client, SvarInnV2Client)
        (letter,) = list_new(client)
        assert (letter.id, letter.api, letter.tittel, letter.niva) == (
            sim_letter.id,
            "v2",
            "Søknad",
            "3",
        )
        assert letter.download_url == simulator.v2_download_url(sim_letter.id, base)
        assert letter.filmetadata[0].sha256hash == hashlib.sha256(pdf).hexdigest()
        assert letter.filmetadata[0].size == len(pdf)
        assert letter.raw["nedlastingslenke"] == letter.download_url
        with client.download(letter) as download:
            assert download.content_type == "application/zip"
            assert download.filename == sim_letter.v2_filename
            chunks = list(download.iter_chunks(chunk_size=1024))
        assert len(chunks) > 1  # streamed
        archive = unzip(b"".join(chunks), conformance_dir, tmp_path)
        assert archive.namelist() == ["Søknad.pdf"]
        assert archive.read("Søknad.pdf") == pdf
        client.acknowledge(letter.id)
        client.acknowledge(letter.id)  # a receipt whose answer was lost is sent again: fine
        assert list_new(client) == []
    state = simulator.state()
    assert state.acknowledged == {letter.id: 2}
    assert state.requests == {"v2_list": 2, "v2_download": 1, "v2_status": 2}
    log = simulator.request_log()
    assert [r.method for r in log if r.endpoint == "v2_status"] == ["PATCH", "PATCH"]
    assert all(r.path.startswith(f"{base}/svarinn/v2/") for r in log)
    assert all(r.authorization and r.authenticated for r in log)


def test_v1_and_v2_serve_the_same_letters(
    simulator: Simulator, account: Account, v2_account: Account
) -> None:
    letters = simulator.generate(3, size=10)
    with connect(account()) as v1, connect(v2_account()) as v2:
        one, two = list_new(v1), list_new(v2)
    assert [f.id for f in one] == [f.id for f in two] == [x.id for x in letters]
    assert [f.filmetadata for f in one] == [
        tuple(dataclasses.replace(m, dokument_type=None) for m in f.filmetadata) for f in two
    ]


@pytest.mark.parametrize(("count", "calls"), [(0, 1), (199, 1), (200, 2), (450, 3)])
def test_paging_rule_over_v2(
    simulator: Simulator, v2_account: Account, count: int, calls: int
) -> None:
    simulator.generate(count, size=10)
    with connect(v2_account()) as client:
        letters = list_new(client)
    assert sorted(f.id for f in letters) == sorted(simulator.state().pending)
    assert simulator.state().requests.get("v2_list") == calls


def test_several_files_come_in_one_zip_checked_against_filer(
    simulator: Simulator, v2_account: Account, conformance_dir: Path, tmp_path: Path
) -> None:
    files = [
        LetterFile("brev.pdf", data=(conformance_dir / "small.pdf").read_bytes()),
        LetterFile("vedlegg.txt", "text/plain", data="hei på deg\n".encode()),
    ]
    simulator.add_letter(files)
    with connect(v2_account()) as client:
        (listed,) = list_new(client)
        with client.download(listed) as download:
            ciphertext = b"".join(download)
    archive = unzip(ciphertext, conformance_dir, tmp_path)
    for meta, file in zip(listed.filmetadata, files, strict=True):
        content = archive.read(meta.filnavn or "")
        assert content == file.data
        assert meta.sha256hash == hashlib.sha256(content).hexdigest()
        assert meta.size == len(content)
        assert meta.mimetype == file.mimetype


def test_report_failure_is_a_feilet_patch(simulator: Simulator, v2_account: Account) -> None:
    a, b = simulator.generate(2, size=10)
    with connect(v2_account()) as client:
        client.report_failure(a.id, "arkivet svarer ikke", permanent=False)
        client.report_failure(b.id, f"feil med passord {simulator.password}", permanent=True)
        assert [f.id for f in list_new(client)] == [a.id]
    assert [(r.forsendelse_id, r.feilmelding, r.permanent) for r in simulator.state().reports] == [
        (a.id, "arkivet svarer ikke", False),
        (b.id, "feil med passord ***", True),
    ]


def test_status_errors_map_as_in_v1(simulator: Simulator, v2_account: Account) -> None:
    (letter,) = simulator.generate(1, size=10)
    with connect(v2_account()) as client:
        with pytest.raises(ForsendelseGoneError) as gone:
            client.acknowledge("00000000-0000-0000-0000-000000000000")
        assert gone.value.status_code == 404
        simulator.add_fault(Fault("http_503", endpoints=frozenset({"v2_status"}), times=1))
        with pytest.raises(ServiceUnavailableError) as busy:
            client.acknowledge(letter.id)
        assert busy.value.temporary
        simulator.add_fault(Fault("unauthorized", endpoints=frozenset({"v2_status"}), times=1))
        with pytest.raises(AuthenticationError):
            client.report_failure(letter.id, "x", permanent=False)
        simulator.add_fault(Fault("http_400", endpoints=frozenset({"v2_status"}), times=1))
        with pytest.raises(ProtocolError) as refused:
            client.report_failure(letter.id, "x", permanent=True)
        message = str(refused.value)
        assert letter.id in message
        assert "FEILET" in message
        assert "feil.feilmelding" in message
        assert "400" in message
        assert refused.value.status_code == 400
        client.acknowledge(letter.id)  # the faults were one-off
    assert simulator.state().acknowledged == {letter.id: 1}


@pytest.mark.parametrize("endpoint", ["v2_list", "v2_download"])
@pytest.mark.parametrize("kind", ["http_500", "http_429"])
def test_server_errors_on_v2_endpoints_are_temporary(
    simulator: Simulator, v2_account: Account, endpoint: str, kind: str
) -> None:
    simulator.generate(1, size=10)
    with connect(v2_account()) as client:
        (listed,) = list_new(client)
        simulator.add_fault(Fault(kind, endpoints=frozenset({endpoint}), times=1))  # type: ignore[arg-type]

        def call() -> object:
            if endpoint == "v2_list":
                return list_new(client)
            with client.download(listed) as body:
                return b"".join(body.iter_chunks())

        with pytest.raises(ServiceUnavailableError) as info:
            call()
        assert info.value.status_code == int(kind[-3:])
        call()


def test_unreadable_items_are_set_aside(simulator: Simulator, v2_account: Account) -> None:
    letters = simulator.generate(3, size=10)
    simulator.add_fault(Fault("malformed", ids=frozenset({letters[1].id})))
    with connect(v2_account()) as client:
        listing = client.listing()
    assert [f.id for f in listing.letters] == [letters[0].id, letters[2].id]
    (rejected,) = listing.rejected
    assert rejected.forsendelse_id == letters[1].id
    assert "svarinn/v2/forsendelser[1]" in str(rejected.error)
    assert "nedlastingslenke: missing" in str(rejected.error)


def test_a_listing_that_is_not_an_array_is_a_protocol_error(
    simulator: Simulator, v2_account: Account
) -> None:
    simulator.set_raw_listing(b'{"forsendelser": []}')
    with (
        connect(v2_account()) as client,
        pytest.raises(ProtocolError, match=r"svarinn/v2/forsendelser: expected a JSON list"),
    ):
        client.listing()


def test_a_download_link_on_another_origin_is_refused(
    simulator: Simulator, v2_account: Account, recorder: Recorder
) -> None:
    simulator.add_bytes(b"x", download_url=f"{recorder.base_url}/elsewhere/1")
    with connect(v2_account()) as client:
        (listed,) = list_new(client)
        with pytest.raises(OriginNotAllowedError), client.download(listed):
            pass
    assert recorder.seen == []
    with connect(v2_account(allowed_download_origins=(recorder.base_url,))) as client:
        (listed,) = list_new(client)
        with client.download(listed) as body:
            assert b"".join(body) == recorder.body
    assert [s.authorization for s in recorder.seen] == [None]  # no credentials there
