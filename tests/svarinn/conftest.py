"""Fixtures for the client and simulator tests: a simulator on loopback and accounts for it."""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from svarinn_daemon.config.model import AccountConfig, HttpConfig
from svarinn_daemon.config.secrets import Secret
from svarinn_daemon.simulator import Simulator


@pytest.fixture(scope="session")
def conformance_cert(conformance_dir: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate((conformance_dir / "certificate.pem").read_bytes())


@pytest.fixture
def simulator(conformance_cert: x509.Certificate) -> Iterator[Simulator]:
    with Simulator(conformance_cert, username="kommune-test", password="s3cret-Passord") as sim:
        yield sim


def make_account(
    base_url: str, *, username: str, password: str, name: str = "testkommune", **http: Any
) -> AccountConfig:
    defaults = HttpConfig(read_timeout=timedelta(seconds=10))
    return AccountConfig(
        name=name,
        username=username,
        password=Secret(source="inline", _value=password.encode()),
        keys=(),
        archive="default",
        base_url=base_url,
        http=dataclasses.replace(defaults, **http),
    )


@pytest.fixture
def account(simulator: Simulator) -> Callable[..., AccountConfig]:
    """``account(**http_overrides)``: an account pointing at the simulator."""

    def build(**http: Any) -> AccountConfig:
        return make_account(
            simulator.base_url, username=simulator.username, password=simulator.password, **http
        )

    return build


@dataclass
class Seen:
    path: str
    authorization: str | None


@dataclass
class Recorder:
    """A second loopback server on another port: records requests, serves a fixed answer."""

    status: int = 200
    body: bytes = b"recorded body"
    headers: dict[str, str] = field(default_factory=dict)
    chunked: bool = False
    seen: list[Seen] = field(default_factory=list)
    base_url: str = ""

    def handler(self) -> type[BaseHTTPRequestHandler]:
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                recorder.seen.append(Seen(self.path, self.headers.get("Authorization")))
                self.send_response(recorder.status)
                for name, value in recorder.headers.items():
                    self.send_header(name, value)
                if recorder.chunked:
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    for start in range(0, len(recorder.body), 1000):
                        piece = recorder.body[start : start + 1000]
                        self.wfile.write(b"%x\r\n" % len(piece) + piece + b"\r\n")
                    self.wfile.write(b"0\r\n\r\n")
                else:
                    self.send_header("Content-Length", str(len(recorder.body)))
                    self.end_headers()
                    self.wfile.write(recorder.body)

        return Handler


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


def json_body(data: Any) -> bytes:
    return json.dumps(data).encode()
