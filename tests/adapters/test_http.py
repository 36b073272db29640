"""The http adapter against a real HTTP server on loopback (tests/support/fakes/sakssystem.py)."""

from __future__ import annotations

import hashlib
import io
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from svarinn_daemon.adapters import (
    AdapterContext,
    AdapterRegistry,
    DocumentMetadata,
    VerificationRecord,
)
from svarinn_daemon.adapters.http_archive import HttpArchive, create_adapter, retry_after_seconds
from svarinn_daemon.config import ArchiveConfig
from svarinn_daemon.errors import ArchiveError, ConfigError
from svarinn_daemon.simulator.tls import make_server_tls
from svarinn_daemon.testing import check_adapter_contract
from tests.support.fakes.sakssystem import SakServer

FID = "43ee26b7-838b-4f99-b81c-d21551b621d8"
T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
VERIFICATION = VerificationRecord("9a" * 32, 6, True, "pdf", True, T0, T0 + timedelta(seconds=2))
TOKEN = "Bearer sak-token-4f1d9c"


def meta(data: bytes, mimetype: str = "application/pdf") -> DocumentMetadata:
    return DocumentMetadata(mimetype, hashlib.sha256(data).hexdigest(), len(data), True)


@pytest.fixture
def server() -> Iterator[SakServer]:
    with SakServer() as running:
        yield running


_made: list[HttpArchive] = []


@pytest.fixture(autouse=True)
def _close_archives() -> Iterator[None]:
    yield
    while _made:
        _made.pop().close()


def make(server: SakServer, tmp_path: Path, **options: object) -> HttpArchive:
    token = tmp_path / "sak-token"
    token.write_text(TOKEN + "\n")
    values: dict[str, object] = {
        "url": server.url,
        "status_url": server.url + "/{forsendelse_id}",
        "authorization_file": str(token),
        "timeout": "2s",
        **options,
    }
    archive = create_adapter(values, AdapterContext("sak", tmp_path / "state", tmp_path))
    _made.append(archive)
    return archive


def send(archive: HttpArchive, tmp_path: Path) -> str:
    source = tmp_path / "brev.pdf"
    source.write_bytes(b"%PDF-1")
    tx = archive.begin(FID, {"id": FID, "tittel": "Søknad om løyve"})
    try:
        tx.add_document("brev.pdf", source, meta(b"%PDF-1"))
        tx.add_document("vedlegg/kart.png", io.BytesIO(b"\x89PNG"), meta(b"\x89PNG", "image/png"))
        return tx.commit(VERIFICATION)
    except BaseException:
        tx.abort()
        raise


def test_http_keeps_the_adapter_contract(server: SakServer, tmp_path: Path) -> None:
    def factory(directory: Path) -> HttpArchive:
        # each check gets an endpoint of its own: a fresh, empty sakssystem
        fresh = SakServer().__enter__()
        started.append(fresh)
        return HttpArchive(
            fresh.url, work_directory=directory, status_url=fresh.url + "/{forsendelse_id}"
        )

    started: list[SakServer] = []
    try:
        check_adapter_contract(factory, tmp_path)
    finally:
        for running in started:
            running.__exit__()


def test_a_letter_arrives_as_multipart_with_its_key_and_secret(
    server: SakServer, tmp_path: Path
) -> None:
    archive = make(server, tmp_path, headers={"X-Kommune": "3801"})
    assert send(archive, tmp_path) == "sak-1"
    letter = server.state.letters[FID]
    assert letter.headers["Idempotency-Key"] == FID
    assert letter.headers["Authorization"] == TOKEN
    assert letter.headers["X-Kommune"] == "3801"
    assert letter.metadata["forsendelse"] == {"id": FID, "tittel": "Søknad om løyve"}
    assert [d["file"] for d in letter.metadata["documents"]] == ["brev.pdf", "kart.png"]
    assert letter.files == [
        ("brev.pdf", "application/pdf", b"%PDF-1"),
        ("kart.png", "image/png", b"\x89PNG"),
    ]
    assert (tmp_path / "brev.pdf").read_bytes() == b"%PDF-1"
    assert archive.has(FID) == "sak-1"
    assert archive.cleanup(timedelta(0)) == 0
    archive.close()


def test_a_second_post_answered_409_is_success(server: SakServer, tmp_path: Path) -> None:
    archive = make(server, tmp_path)
    assert send(archive, tmp_path) == "sak-1"
    assert send(archive, tmp_path) == "sak-1"  # 409 with the existing reference
    assert server.state.posts_by_key[FID] == 2
    assert len(server.state.letters) == 1


@pytest.mark.parametrize(
    ("fault", "retry_after"),
    [("503", None), ("429:7", 7.0), ("408", None), ("425", None), ("401", None)],
)
def test_temporary_answers(
    server: SakServer, tmp_path: Path, fault: str, retry_after: float | None
) -> None:
    server.state.faults.append(fault)
    archive = make(server, tmp_path)
    with pytest.raises(ArchiveError, match=f"HTTP {fault.split(':')[0]}") as info:
        send(archive, tmp_path)
    assert info.value.temporary
    assert info.value.retry_after == retry_after
    assert FID not in server.state.letters
    assert send(archive, tmp_path) == "sak-1"  # the next attempt gets through


def test_a_reset_connection_is_temporary(server: SakServer, tmp_path: Path) -> None:
    server.state.faults.append("reset")
    archive = make(server, tmp_path)
    with pytest.raises(ArchiveError, match="failed") as info:
        send(archive, tmp_path)
    assert info.value.temporary
    assert send(archive, tmp_path) == "sak-1"


def test_a_slow_answer_times_out_and_the_retry_finds_the_letter(
    server: SakServer, tmp_path: Path
) -> None:
    server.state.faults.append("slow:3")
    archive = make(server, tmp_path, timeout="1s")
    with pytest.raises(ArchiveError, match="timed out") as info:
        send(archive, tmp_path)
    assert info.value.temporary
    # the endpoint stored it meanwhile: status_url says so, and a new POST is a 409
    deadline = datetime.now(UTC) + timedelta(seconds=5)
    while FID not in server.state.letters and datetime.now(UTC) < deadline:
        pass
    assert archive.has(FID) == "sak-1"
    assert send(archive, tmp_path) == "sak-1"
    assert len(server.state.letters) == 1


def test_another_4xx_is_permanent_with_the_start_of_the_body(
    server: SakServer, tmp_path: Path
) -> None:
    server.state.faults.append("422")
    with pytest.raises(ArchiveError, match=r"refused .* with HTTP 422: .*injected 422") as info:
        send(make(server, tmp_path), tmp_path)
    assert info.value.permanent


def test_a_redirect_is_not_followed(server: SakServer, tmp_path: Path) -> None:
    server.state.faults.append("302")
    with pytest.raises(ArchiveError, match=r"redirect .*not followed") as info:
        send(make(server, tmp_path), tmp_path)
    assert info.value.temporary
    assert server.state.posts == 1


def test_status_url_answers(server: SakServer, tmp_path: Path) -> None:
    archive = make(server, tmp_path)
    assert archive.has(FID) is None  # 404
    server.state.status_faults.append("500")
    with pytest.raises(ArchiveError, match="status_url answered HTTP 500") as info:
        archive.has(FID)
    assert info.value.temporary
    without = make(server, tmp_path, status_url=None)
    send(without, tmp_path)
    assert without.has(FID) is None  # cannot know: no status_url


def test_the_secret_never_reaches_logs_or_errors(
    server: SakServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    archive = make(server, tmp_path)
    messages: list[str] = []
    for fault in ("503", "422", "reset", "302"):
        server.state.faults.append(fault)
        with pytest.raises(ArchiveError) as info:
            send(archive, tmp_path)
        messages.append(str(info.value))
    secret = TOKEN.split()[1]
    assert secret not in " ".join(messages) + caplog.text
    assert secret not in repr(archive) + repr(archive._authorization)


def test_tls_is_verified(tmp_path: Path) -> None:
    pki = make_server_tls(tmp_path / "pki", prefix="sak")
    with SakServer(tls=pki.server_context()) as server:
        (tmp_path / "a").mkdir()
        (tmp_path / "b").mkdir()
        untrusted = make(server, tmp_path / "a")
        with pytest.raises(ArchiveError, match="TLS verification failed") as info:
            send(untrusted, tmp_path)
        assert info.value.temporary
        trusted = make(server, tmp_path / "b", ca_bundle=str(pki.ca_certificate))
        assert send(trusted, tmp_path) == "sak-1"


def test_retry_after_as_a_date() -> None:
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert retry_after_seconds("Fri, 02 Jan 2026 03:05:05 GMT", now) == 60.0
    assert retry_after_seconds("120", now) == 120.0
    assert retry_after_seconds("soon", now) is None
    assert retry_after_seconds("999999999", now) == 24 * 3600


def test_through_the_registry(server: SakServer, tmp_path: Path) -> None:
    adapter = AdapterRegistry().create(
        ArchiveConfig("sak", "http", {"url": server.url}), state_directory=tmp_path
    )
    assert isinstance(adapter, HttpArchive)
    adapter.close()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "archives.sak.url.*is required"),
        ({"url": "http://sak.example.no/x"}, "plain http to a remote host"),
        ({"url": "https://u:p@sak.example.no/x"}, "user name or password"),
        ({"url": "https://s/x", "status_url": "https://s/x"}, "must contain {forsendelse_id}"),
        ({"url": "https://s/x", "username": "u"}, "go together"),
        ({"url": "https://s/x", "headers": {"Authorization": "x"}}, "set by the adapter"),
        ({"url": "https://s/x", "authorization_file": "nope"}, "authorization_file.*not exist"),
        ({"url": "https://s/x", "client_key_file": "k.pem"}, "go together"),
    ],
)
def test_bad_options_name_the_key(options: dict[str, object], message: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=message):
        create_adapter(options, AdapterContext("sak", tmp_path, tmp_path))
