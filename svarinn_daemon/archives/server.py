"""The HTTP server the local archives share: loopback, threaded, Basic credentials checked,
faults injected per operation (an error status, a slow answer, a commit whose answer is
lost), every request kept for the tests to read."""

from __future__ import annotations

import base64
import hmac
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType

__all__ = ["ArchiveServer", "Exchange", "Injected", "Reply"]

MAX_BODY = 1024 * 1024 * 1024


@dataclass
class Injected:
    """One fault for ``count`` calls of ``operation`` ("*": any) after the next ``skip``
    ones: ``status`` an
    HTTP error instead of an answer; ``stall`` seconds before the request is looked at (it
    waits in a queue); ``delay`` seconds between doing the work and answering; ``lose_answer``
    the operation is carried out, then the connection closed without an answer; ``fault``
    a fault of the archive's own kind, named for the archive module to raise."""

    operation: str
    count: int = 1
    skip: int = 0
    status: int | None = None
    stall: float = 0.0
    delay: float = 0.0
    lose_answer: bool = False
    fault: str | None = None


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    content_type: str
    headers: tuple[tuple[str, str], ...] = ()


@dataclass
class Exchange:
    """One request as the archive saw it."""

    path: str
    operation: str
    body: bytes
    status: int = 0
    extra: dict[str, str] = field(default_factory=dict)


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        """A client that went away (killed, timed out) is no error of the archive's."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


class ArchiveServer:
    """``handle(method, path, headers, body, fault) -> (operation, Reply)`` answers each
    request; the
    server adds credentials, faults and the record of requests."""

    def __init__(
        self,
        handle: Callable[[str, str, dict[str, str], bytes, Injected | None], tuple[str, Reply]],
        *,
        username: str | None = None,
        password: str | None = None,
        operation_of: Callable[[str, dict[str, str], bytes], str] = lambda p, h, b: p,
    ):
        self._handle = handle
        self._operation_of = operation_of
        self.username, self.password = username, password
        self.faults: list[Injected] = []
        self.exchanges: list[Exchange] = []
        self.lock = threading.RLock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # no 40 ms delayed-ACK stall per small answer

            def log_message(self, format: str, *args: object) -> None:
                return

            def do_POST(self) -> None:
                try:
                    server._serve(self)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True  # the client went away (killed, timed out)

            do_GET = do_PUT = do_POST

        self._httpd = _QuietServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def inject(self, fault: Injected) -> None:
        with self.lock:
            self.faults.append(fault)

    def _take_fault(self, operation: str) -> Injected | None:
        with self.lock:
            for fault in self.faults:
                if fault.operation in (operation, "*") and fault.count > 0:
                    if fault.skip > 0:
                        fault.skip -= 1
                        continue
                    fault.count -= 1
                    if fault.count == 0:
                        self.faults.remove(fault)
                    return fault
        return None

    def _authorised(self, header: str | None) -> bool:
        if self.username is None:
            return True
        expected = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        return header is not None and hmac.compare_digest(header, f"Basic {expected}")

    def _serve(self, request: BaseHTTPRequestHandler) -> None:
        headers = {k.lower(): v for k, v in request.headers.items()}
        length = int(headers.get("content-length") or 0)
        if length < 0 or length > MAX_BODY:
            self._send(request, Reply(413, b"too large", "text/plain"))
            return
        body = request.rfile.read(length) if length else b""
        operation = self._operation_of(request.path, headers, body)
        exchange = Exchange(request.path, operation, body)
        with self.lock:
            self.exchanges.append(exchange)
        if not self._authorised(headers.get("authorization")):
            exchange.status = 401
            self._send(request, Reply(401, b"unauthorised", "text/plain"), basic=True)
            return
        fault = self._take_fault(operation)
        if fault is not None and fault.stall:
            time.sleep(fault.stall)
        if fault is not None and fault.status is not None:
            exchange.status = fault.status
            self._send(request, Reply(fault.status, b"injected", "text/plain"))
            return
        _, reply = self._handle(request.command, request.path, headers, body, fault)
        exchange.status = reply.status
        if fault is not None and fault.delay:
            time.sleep(fault.delay)
        if fault is not None and fault.lose_answer:
            request.close_connection = True
            request.connection.close()
            return
        self._send(request, reply)

    @staticmethod
    def _send(request: BaseHTTPRequestHandler, reply: Reply, *, basic: bool = False) -> None:
        request.send_response(reply.status)
        request.send_header("Content-Type", reply.content_type)
        request.send_header("Content-Length", str(len(reply.body)))
        for name, value in reply.headers:
            request.send_header(name, value)
        if basic:
            request.send_header("WWW-Authenticate", 'Basic realm="archive"')
        request.end_headers()
        request.wfile.write(reply.body)

    def start(self) -> ArchiveServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> ArchiveServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
