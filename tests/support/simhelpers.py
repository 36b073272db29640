"""Helpers for the client and simulator tests (a uniquely named module, unlike conftest)."""

from __future__ import annotations

import dataclasses
import subprocess
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from svarinn_daemon.config.model import AccountConfig, HttpConfig
from svarinn_daemon.config.secrets import Secret
from svarinn_daemon.svarinn import Forsendelse, SvarInnClient


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


def openssl_decrypt(ciphertext: bytes, key: Path, tmp_path: Path) -> bytes:
    source = tmp_path / "in.crypt"
    source.write_bytes(ciphertext)
    result = subprocess.run(
        [
            "openssl",
            "cms",
            "-decrypt",
            "-binary",
            "-inform",
            "DER",
            "-in",
            str(source),
            "-inkey",
            str(key),
        ],
        capture_output=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(result.stderr.decode(errors="replace"))
    return result.stdout


def list_new(client: SvarInnClient) -> list[Forsendelse]:
    """Every new letter, strictly: the first unreadable item raises its ProtocolError (the
    daemon itself uses ``listing()``, which sets such items aside)."""
    listing = client.listing()
    if listing.rejected:
        raise listing.rejected[0].error
    return list(listing.letters)
