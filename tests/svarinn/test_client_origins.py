"""Credentials stay home: origin checks and redirects, against a second loopback server."""

from __future__ import annotations

import gzip
from collections.abc import Callable

import pytest

from svarinn_daemon.config.model import AccountConfig
from svarinn_daemon.errors import (
    AuthenticationError,
    DownloadTooLargeError,
    OriginNotAllowedError,
    ProtocolError,
    ServiceUnavailableError,
    SvarInnError,
)
from svarinn_daemon.service.runtime import connect
from svarinn_daemon.simulator import Fault, Simulator
from tests.support.simhelpers import Recorder, list_new, make_account

Account = Callable[..., AccountConfig]


def test_download_url_on_another_origin_is_refused(
    simulator: Simulator, account: Account, recorder: Recorder
) -> None:
    simulator.generate(1, size=10)
    letter = simulator.add_bytes(b"x", download_url=f"{recorder.base_url}/elsewhere/1")
    with connect(account()) as client:
        listed = {f.id: f for f in list_new(client)}
        with pytest.raises(OriginNotAllowedError) as info, client.download(listed[letter.id]):
            pass
    message = str(info.value)
    assert recorder.base_url in message
    assert "allowed_download_origins" in message
    assert recorder.seen == []  # never even connected


def test_allowed_origin_gets_no_credentials(
    simulator: Simulator, account: Account, recorder: Recorder
) -> None:
    letter = simulator.add_bytes(b"x", download_url=f"{recorder.base_url}/elsewhere/1")
    recorder.body = b"file from a file server"
    with connect(account(allowed_download_origins=(recorder.base_url,))) as client:
        (listed,) = list_new(client)
        with client.download(listed) as download:
            assert b"".join(download) == b"file from a file server"
    assert [(s.path, s.authorization) for s in recorder.seen] == [("/elsewhere/1", None)]
    assert letter.id == listed.id


@pytest.mark.parametrize("allowed", [True, False])
def test_cross_origin_redirect_never_carries_credentials(
    simulator: Simulator, account: Account, recorder: Recorder, allowed: bool
) -> None:
    (letter,) = simulator.generate(1, size=10)
    simulator.add_fault(Fault("redirect", location=recorder.base_url))
    origins = (recorder.base_url,) if allowed else ()
    with connect(account(allowed_download_origins=origins)) as client:
        (listed,) = list_new(client)
        if allowed:
            with client.download(listed) as download:
                assert b"".join(download) == recorder.body
        else:
            with pytest.raises(OriginNotAllowedError), client.download(listed):
                pass
    first = [r for r in simulator.request_log() if r.endpoint == "download"]
    assert [(r.status, r.authorization) for r in first] == [(302, True)]
    if allowed:
        assert [(s.path, s.authorization) for s in recorder.seen] == [
            (f"/tjenester/svarinn/forsendelse/{letter.id}", None)
        ]
    else:
        assert recorder.seen == []


def test_same_origin_redirect_keeps_credentials(simulator: Simulator, account: Account) -> None:
    (letter,) = simulator.generate(1, size=10)
    simulator.add_fault(Fault("redirect", location=simulator.base_url, times=1))
    with connect(account()) as client:
        (listed,) = list_new(client)
        with client.download(listed) as download:
            assert b"".join(download) == letter.blob.read_bytes()
    downloads = [r for r in simulator.request_log() if r.endpoint == "download"]
    assert [(r.status, r.authenticated) for r in downloads] == [(302, True), (200, True)]


def test_size_limit_while_streaming(
    simulator: Simulator, account: Account, recorder: Recorder
) -> None:
    simulator.add_bytes(b"x", download_url=f"{recorder.base_url}/big")
    recorder.body = b"y" * 50_000
    recorder.chunked = True  # no Content-Length: only counting while streaming can stop it
    http = {"allowed_download_origins": (recorder.base_url,), "max_download_size": 20_000}
    with connect(account(**http)) as client:
        (listed,) = list_new(client)
        received: list[int] = []

        def drain() -> None:
            with client.download(listed) as download:
                assert download.content_length is None
                for chunk in download.iter_chunks(chunk_size=1000):
                    received.append(len(chunk))

        with pytest.raises(DownloadTooLargeError):
            drain()
    assert 0 < sum(received) <= 20_000


def test_error_bodies_are_scrubbed(recorder: Recorder) -> None:
    password = "Hemmelig-Passord-42"
    recorder.status = 502
    recorder.body = (
        f"proxy error for user kommune password={password} "
        "Authorization: Basic a29tbXVuZTpIZW1tZWxpZy1QYXNzb3JkLTQy " + "z" * 2000
    ).encode()
    account = make_account(recorder.base_url, username="kommune", password=password)
    with connect(account) as client, pytest.raises(ServiceUnavailableError) as info:
        list_new(client)
    error = info.value
    assert error.status_code == 502
    assert len(error.body_start) <= 500
    assert "proxy error" in error.body_start
    for text in (str(error), error.body_start, repr(error)):
        assert password not in text
        assert "a29tbXVuZTpIZW1tZWxpZy1QYXNzb3JkLTQy" not in text
    assert recorder.seen[0].authorization == "Basic a29tbXVuZTpIZW1tZWxpZy1QYXNzb3JkLTQy"


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (401, AuthenticationError),
        (403, AuthenticationError),
        (404, ProtocolError),  # on the listing: the URL is wrong, not a letter gone
        (408, ServiceUnavailableError),
        (418, ProtocolError),
        (504, ServiceUnavailableError),
    ],
)
def test_status_mapping_on_the_listing(
    recorder: Recorder, status: int, error: type[Exception]
) -> None:
    recorder.status = status
    recorder.body = b'{"message": "nei"}'
    account = make_account(recorder.base_url, username="u", password="p4ssword")
    with connect(account) as client, pytest.raises(error) as info:
        list_new(client)
    assert isinstance(info.value, SvarInnError)
    assert info.value.status_code == status
    assert "nei" in info.value.body_start


def test_gzip_encoded_download_is_decoded_and_limited(
    simulator: Simulator, account: Account, recorder: Recorder
) -> None:
    simulator.add_bytes(b"x", download_url=f"{recorder.base_url}/gz")
    plain = bytes(range(256)) * 400
    recorder.body = gzip.compress(plain)
    recorder.headers = {"Content-Encoding": "gzip"}
    http = {"allowed_download_origins": (recorder.base_url,)}
    with connect(account(**http)) as client:
        (listed,) = list_new(client)
        with client.download(listed) as download:
            assert b"".join(download) == plain
    with connect(account(max_download_size=50_000, **http)) as client:
        (listed,) = list_new(client)
        with pytest.raises(DownloadTooLargeError), client.download(listed) as download:
            b"".join(download)
