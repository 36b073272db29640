"""Fixtures for the client and simulator tests: a simulator on loopback and accounts for it."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from svarinn_daemon.config.model import AccountConfig
from svarinn_daemon.simulator import Simulator
from tests.support.simhelpers import Recorder, make_account


@pytest.fixture(scope="session")
def conformance_cert(conformance_dir: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate((conformance_dir / "certificate.pem").read_bytes())


@pytest.fixture
def simulator(conformance_cert: x509.Certificate) -> Iterator[Simulator]:
    with Simulator(conformance_cert, username="kommune-test", password="s3cret-Passord") as sim:
        yield sim


@pytest.fixture
def account(simulator: Simulator) -> Callable[..., AccountConfig]:
    """``account(**http_overrides)``: an account pointing at the simulator."""

    def build(**http: Any) -> AccountConfig:
        return make_account(
            simulator.base_url, username=simulator.username, password=simulator.password, **http
        )

    return build


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    rec = Recorder()
    server = ThreadingHTTPServer(("127.0.0.1", 0), rec.handler())
    server.daemon_threads = True
    server.block_on_close = False
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    rec.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield rec
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
