"""Fixtures for the client and simulator tests: a simulator on loopback and accounts for it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from svarinn_daemon.config.model import AccountConfig
from svarinn_daemon.simulator import Simulator
from tests.support.loopback import LoopbackServer
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
    server = LoopbackServer(rec.handler())
    server.block_on_close = False
    with server:
        rec.base_url = server.base_url
        yield rec
