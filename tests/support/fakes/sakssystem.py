"""A sakssystem endpoint on loopback for the ``http`` adapter: a real HTTP server that parses
the multipart letters it receives, stores them once per Idempotency-Key, answers a status URL,
and fails on demand (status codes, Retry-After, connection resets, slow answers).

Faults are strings, used one per request in order: ``"503"``, ``"429:7"`` (with
``Retry-After: 7``), ``"reset"`` (the body is read, the connection reset, nothing stored),
``"slow:2"`` (stored, but answered only after 2 s: the client has given up), ``"302"``,
``"400"``, ``"409"``, ``"echo"`` (a 503 whose body repeats the request's headers).
"""

from __future__ import annotations

import hashlib
import json
import socket
import ssl
import struct
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.support.loopback import LoopbackServer


@dataclass
class ReceivedLetter:
    reference: str
    metadata: dict[str, Any]
    files: list[tuple[str, str, bytes]]  # file name, content type, content
    headers: dict[str, str]


@dataclass
class SakState:
    letters: dict[str, ReceivedLetter] = field(default_factory=dict)
    faults: list[str] = field(default_factory=list)
    status_faults: list[str] = field(default_factory=list)
    faults_by_key: dict[str, list[str]] = field(default_factory=dict)  # after ``faults``
    # Keys answered 422 on every POST: a real sakssystem's validation refuses the same letter
    # again when a killed daemon retries it, where a one-shot fault would let it through.
    refused: set[str] = field(default_factory=set)
    posts: int = 0
    posts_by_key: dict[str, int] = field(default_factory=dict)
    big: dict[str, tuple[int, str]] = field(default_factory=dict)  # key: size, sha256
    lock: threading.Lock = field(default_factory=threading.Lock)
    errors: int = 0  # requests the server itself failed on (a bug in a test or the client)
    spool_over: int = 8 * 1024 * 1024  # bodies larger than this are hashed, not parsed
    catch_all: bool = False  # every GET answers 200 {"found": false}, as catch-all fronts do


class _Handler(BaseHTTPRequestHandler):
    server: SakServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return None

    def _answer(self, status: int, body: dict[str, Any] | None, **headers: str) -> None:
        data = json.dumps(body).encode() if body is not None else b""
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(data)

    def _reset(self) -> None:
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.connection.close()

    def _fault(self, fault: str, *, stored: str | None = None) -> bool:
        """Apply a fault; True when the request is answered by it."""
        if not fault:
            return False
        kind, _, argument = fault.partition(":")
        if kind == "reset":
            self._reset()
            return True
        if kind == "echo":  # a careless endpoint: its error repeats the request's headers
            self._answer(503, {"error": "unavailable", "request": dict(self.headers.items())})
            return True
        if kind == "slow":
            time.sleep(float(argument or "1"))
            return False
        if kind == "429":
            self._answer(429, {"error": "slow down"}, Retry_After=argument or "1")
            return True
        if kind == "302":
            self._answer(302, None, Location="https://elsewhere.example/letters")
            return True
        self._answer(int(kind), {"error": f"injected {kind}"})
        return True

    def do_GET(self) -> None:
        state = self.server.state
        with state.lock:
            fault = state.status_faults.pop(0) if state.status_faults else ""
        if self._fault(fault):
            return
        if state.catch_all:
            self._answer(200, {"found": False})
            return
        key = self.path.rsplit("/", 1)[-1]
        with state.lock:
            letter = state.letters.get(key)
        if letter is None:
            self._answer(404, {"error": "no such letter"})
        else:
            self._answer(200, {"reference": letter.reference})

    def do_POST(self) -> None:
        state = self.server.state
        key = self.headers.get("Idempotency-Key", "")
        with state.lock:
            state.posts += 1
            state.posts_by_key[key] = state.posts_by_key.get(key, 0) + 1
            fault = state.faults.pop(0) if state.faults else ""
            if not fault and state.faults_by_key.get(key):
                fault = state.faults_by_key[key].pop(0)
            if not fault and key in state.refused:
                fault = "422"
        length = int(self.headers.get("Content-Length") or 0)
        with tempfile.TemporaryFile() as body:
            digest = hashlib.sha256()
            remaining = length
            while remaining:
                chunk = self.rfile.read(min(remaining, 1024 * 1024))
                if not chunk:
                    return
                body.write(chunk)
                digest.update(chunk)
                remaining -= len(chunk)
            if fault and not fault.startswith("slow") and self._fault(fault):
                return
            body.seek(0)
            if length > state.spool_over:
                with state.lock:
                    state.big[key] = (length, digest.hexdigest())
                letter = None
            else:
                letter = self._parse(body.read())
        with state.lock:
            existing = state.letters.get(key)
            if existing is None and letter is not None:
                letter.reference = f"sak-{len(state.letters) + 1}"
                state.letters[key] = letter
        if fault.startswith("slow"):
            self._fault(fault)
        if existing is not None:
            self._answer(409, {"reference": existing.reference})
        elif letter is None:
            self._answer(201, {"reference": f"big-{key}"})
        else:
            self._answer(201, {"reference": letter.reference}, Location=f"/letters/{key}")

    def _parse(self, body: bytes) -> ReceivedLetter:
        head = f"Content-Type: {self.headers['Content-Type']}\r\n\r\n".encode()
        message = BytesParser(policy=HTTP).parsebytes(head + body)
        metadata: dict[str, Any] = {}
        files: list[tuple[str, str, bytes]] = []
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            content = part.get_payload(decode=True)
            assert isinstance(content, bytes)
            if name == "metadata":
                assert part.get_content_type() == "application/json"
                metadata = json.loads(content)
            else:
                assert name == "file"
                files.append((part.get_filename() or "", part.get_content_type(), content))
        return ReceivedLetter("", metadata, files, dict(self.headers.items()))


class SakServer(LoopbackServer):
    def __init__(self, tls: ssl.SSLContext | None = None):
        super().__init__(_Handler, tls=tls)
        self.state = SakState()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up (a timeout) is part of the tests; anything else is not."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        self.state.errors += 1
        super().handle_error(request, client_address)

    @property
    def url(self) -> str:
        return f"{self.base_url}/letters"
