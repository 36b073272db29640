"""The simulator's HTTP handler: MottakService v1 and SvarInn V2 routes (V2 under both
documented bases, ``/api`` and ``/tjenester``), Basic auth, and the faults."""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import re
import socket
import ssl
import struct
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import TYPE_CHECKING, Any

from svarinn_daemon.simulator.faults import Endpoint, Fault
from svarinn_daemon.simulator.letters import SimLetter, content_disposition
from svarinn_daemon.simulator.state import RequestRecord

if TYPE_CHECKING:
    from svarinn_daemon.simulator.server import Simulator

__all__ = ["Handler"]

_ROUTES: list[tuple[str, re.Pattern[str], Endpoint]] = [
    ("GET", re.compile(r"/tjenester/svarinn/mottaker/hentNyeForsendelser/?"), "list"),
    ("GET", re.compile(r"/tjenester/svarinn/forsendelse/([^/?]+)"), "download"),
    ("POST", re.compile(r"/tjenester/svarinn/kvitterMottak/forsendelse/([^/?]+)"), "acknowledge"),
    ("POST", re.compile(r"/tjenester/svarinn/mottakFeilet/forsendelse/([^/?]+)"), "report"),
    ("GET", re.compile(r"(?:/api|/tjenester)/svarinn/v2/forsendelser/?"), "v2_list"),
    ("GET", re.compile(r"(?:/api|/tjenester)/svarinn/v2/forsendelser/([^/?]+)"), "v2_download"),
    (
        "PATCH",
        re.compile(r"(?:/api|/tjenester)/svarinn/v2/forsendelser/([^/?]+)/status"),
        "v2_status",
    ),
]
_STATE_PATH = "/_simulator/state"
_CHUNK = 1 << 20  # bytes read and sent at a time when sendfile() is not used
_MAX_BODY = 1 << 20


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "SvarInnSimulator/1"
    timeout = 30  # idle keep-alive connections end by themselves

    @property
    def sim(self) -> Simulator:
        return self.server.simulator  # type: ignore[attr-defined, no-any-return]

    def setup(self) -> None:
        super().setup()
        self.sim.track(self.connection, open=True)
        # Headers and body go out in separate writes; without this, Nagle's algorithm and
        # delayed ACKs add 40 ms to many responses.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def finish(self) -> None:
        self.sim.track(self.connection, open=False)
        super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the request log is in Simulator.request_log()

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    # --- routing ----------------------------------------------------------------------------

    def _dispatch(self, method: str) -> None:
        body = self._read_body()
        if self.sim.stopping.is_set():
            self.close_connection = True
            return
        path = self.path.split("?", 1)[0]
        self._request: dict[str, Any] | None = {
            "method": method,
            "endpoint": "unknown",
            "letter_id": None,
            "authenticated": self._authenticated(),
            "fault": None,
        }
        if method == "GET" and path == _STATE_PATH:
            self._request["endpoint"] = "state"
            self._json(200, self.sim.state().to_json())
            return
        for route_method, pattern, endpoint in _ROUTES:
            match = pattern.fullmatch(path)
            if match and route_method == method:
                letter_id = match.group(1) if match.groups() else None
                self._request.update(endpoint=endpoint, letter_id=letter_id)
                self._serve(endpoint, letter_id, body)
                return
        self._error(404, "Ukjent URL")

    def send_response(self, code: int, message: str | None = None) -> None:
        """Record the request as its status is decided, before the client can see it."""
        request, self._request = getattr(self, "_request", None), None
        if request is not None:
            self.sim.record(
                RequestRecord(
                    method=request["method"],
                    path=self.path,
                    endpoint=request["endpoint"],
                    forsendelse_id=request["letter_id"],
                    authorization="Authorization" in self.headers,
                    authenticated=request["authenticated"],
                    user_agent=self.headers.get("User-Agent"),
                    status=code,
                    fault=request["fault"],
                )
            )
        super().send_response(code, message)

    def _serve(self, endpoint: Endpoint, letter_id: str | None, body: bytes) -> None:
        if self._request is None or not self._request["authenticated"]:
            self._unauthorized()
            return
        fault = self.sim.faults.pick(endpoint, letter_id)
        self._request["fault"] = fault.kind if fault else None
        if fault is not None and fault.kind == "slow" and self.sim.stopping.wait(fault.delay):
            self.close_connection = True  # stopping: hang up without an answer
            return
        self._answer(endpoint, letter_id, body, fault)

    def _answer(
        self, endpoint: Endpoint, letter_id: str | None, body: bytes, fault: Fault | None
    ) -> int:
        kind = fault.kind if fault else None
        if fault is not None and kind in ("http_400", "http_500", "http_503", "http_429"):
            status = int(fault.kind.removeprefix("http_"))
            headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            self._error(status, f"Simulert feil {status}", headers)
            return status
        if kind == "unauthorized":
            self._unauthorized()
            return 401
        if kind == "echo_auth":  # a careless server quoting the request in its error
            credentials = self.headers.get("Authorization", "").partition(" ")[2]
            self._error(500, f"Ugyldig forespørsel med credentials {credentials}")
            return 500
        if endpoint == "list":
            self._send_json_bytes(200, self.sim.listing_body())
            return 200
        if endpoint == "v2_list":
            base = self.path.split("/svarinn/v2/", 1)[0]
            self._send_json_bytes(200, self.sim.listing_body(v2_base=base))
            return 200
        assert letter_id is not None
        if endpoint in ("download", "v2_download"):
            return self._download(letter_id, fault, v2=endpoint == "v2_download")
        if endpoint == "v2_status":
            return self._status(letter_id, body)
        if endpoint == "acknowledge":
            if not self.sim.acknowledge(letter_id):
                self._error(404, f"Fant ikke forsendelse {letter_id}")
                return 404
            self._empty(200)
            return 200
        return self._report(letter_id, body)

    def _report(self, letter_id: str, body: bytes) -> int:
        try:
            data = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError):
            data = None
        if (
            not isinstance(data, dict)
            or not isinstance(data.get("feilmelding"), str)
            or not data["feilmelding"]
            or not isinstance(data.get("permanent"), bool)
        ):
            self._error(400, 'Forventet {"feilmelding": tekst, "permanent": true|false}')
            return 400
        if not self.sim.report(letter_id, data["feilmelding"], data["permanent"]):
            self._error(404, f"Fant ikke forsendelse {letter_id}")
            return 404
        self._empty(200)
        return 200

    def _status(self, letter_id: str, body: bytes) -> int:
        """V2's PATCH .../status: MOTTATT, or FEILET with feil {feilmelding, permanent}."""
        try:
            data = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError):
            data = None
        status = data.get("status") if isinstance(data, dict) else None
        feil = data.get("feil") if isinstance(data, dict) else None
        if status == "MOTTATT":
            found = self.sim.acknowledge(letter_id)
        elif (
            status == "FEILET"
            and isinstance(feil, dict)
            and isinstance(feil.get("feilmelding"), str)
            and feil["feilmelding"]
            and isinstance(feil.get("permanent"), bool)
        ):
            found = self.sim.report(letter_id, feil["feilmelding"], feil["permanent"])
        else:
            self._error(
                400,
                'Ugyldig Statusoppdatering: forventet {"status": "MOTTATT"} eller {"status": '
                '"FEILET", "feil": {"feilmelding": tekst, "permanent": true|false}}',
            )
            return 400
        if not found:
            self._error(404, f"Fant ikke forsendelse {letter_id}")
            return 404
        self._empty(200)
        return 200

    # --- the download and its faults -----------------------------------------------------

    def _download(self, letter_id: str, fault: Fault | None, *, v2: bool = False) -> int:
        letter = self.sim.servable(letter_id)
        if letter is None or (v2 and letter.v2_blob is None):
            self._error(404, f"Fant ikke forsendelse {letter_id}")
            return 404
        blob = _Blob.v2(letter) if v2 else _Blob.v1(letter)
        if fault is not None and fault.kind == "redirect":
            self.send_response(302)
            self.send_header("Location", f"{fault.location}{self.path}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return 302
        self.send_response(200)
        self.send_header("Content-Type", blob.content_type)
        self.send_header("Content-Disposition", content_disposition(blob.filename))
        self.send_header("Content-Length", str(blob.size))
        self.end_headers()
        kind = fault.kind if fault else None
        if kind == "trickle" and fault is not None:
            self._trickle(blob, fault.delay)
            return 200
        half = blob.size // 2
        limit = half if kind in ("reset", "truncate", "stall") else blob.size
        self._stream(blob, 0, limit, corrupt=kind == "corrupt")
        if kind == "stall" and fault is not None:
            self.wfile.flush()
            if self.sim.stopping.wait(fault.delay):
                self.close_connection = True  # stopping: hang up mid-body
                return 200
            self._stream(blob, half, blob.size, corrupt=False)
        if kind == "reset":
            self._reset()
        elif kind == "truncate":
            self.close_connection = True
        return 200

    def _stream(self, letter: _Blob, start: int, limit: int, *, corrupt: bool) -> None:
        sent = start
        with letter.path.open("rb") as handle:
            if not corrupt and not isinstance(self.connection, ssl.SSLSocket):
                # The kernel's sendfile() over plain HTTP: the fake SvarInn then costs the
                # machine little of the CPU the daemon it serves needs, as the real one,
                # elsewhere, costs none (benchmarks/bench_daemon.py).
                self.wfile.flush()
                self.connection.sendfile(handle, start, limit - start)
                return
            handle.seek(start)
            while sent < limit:
                chunk = handle.read(min(_CHUNK, limit - sent))
                if not chunk:
                    break
                if corrupt and sent <= letter.content_offset < sent + len(chunk):
                    at = letter.content_offset - sent
                    chunk = chunk[:at] + bytes([chunk[at] ^ 0xFF]) + chunk[at + 1 :]
                self.wfile.write(chunk)
                sent += len(chunk)

    def _trickle(self, letter: _Blob, delay: float) -> None:
        """One byte, a pause, the next byte: never idle long enough for a read timeout."""
        with letter.path.open("rb") as handle:
            while byte := handle.read(1):
                self.wfile.write(byte)
                self.wfile.flush()
                if self.sim.stopping.wait(delay):
                    self.close_connection = True
                    return

    def _reset(self) -> None:
        """Abort with a TCP reset: linger 0 and close, so the peer gets RST, not FIN."""
        self.close_connection = True
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.rfile.close()  # drop the makefile reference so close() really closes
        self.connection.close()

    # --- helpers -----------------------------------------------------------------------------

    def _authenticated(self) -> bool:
        header = self.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return False
        username, _, password = decoded.partition(":")
        return hmac.compare_digest(
            username.encode(), self.sim.username.encode()
        ) & hmac.compare_digest(password.encode(), self.sim.password.encode())

    def _read_body(self) -> bytes:
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            return b""
        return self.rfile.read(min(int(length), _MAX_BODY))

    def _unauthorized(self) -> None:
        self._error(401, "Autentisering feilet", {"WWW-Authenticate": 'Basic realm="SvarInn"'})

    def _error(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        self._json(status, {"message": message, "status": status}, headers)

    def _json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        self._send_json_bytes(status, data, headers)

    def _send_json_bytes(
        self, status: int, data: bytes, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json;charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _empty(self, status: int) -> None:
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()


@dataclass(frozen=True)
class _Blob:
    """What one download serves: v1's file (a PDF, or a zip of several) or V2's ZIP."""

    path: Path
    size: int
    content_offset: int
    content_type: str
    filename: str

    @classmethod
    def v1(cls, letter: SimLetter) -> _Blob:
        return cls(
            letter.blob,
            letter.blob_size,
            letter.content_offset,
            letter.content_type,
            letter.filename,
        )

    @classmethod
    def v2(cls, letter: SimLetter) -> _Blob:
        assert letter.v2_blob is not None
        return cls(
            letter.v2_blob,
            letter.v2_blob_size,
            letter.v2_content_offset,
            "application/zip",
            letter.v2_filename,
        )
