"""The embedded HTTP endpoint: /metrics for Prometheus, /healthz and /readyz for orchestrators.

/healthz says the process is alive and its scheduler loop is turning; /readyz says the
ledger answers and every account's last poll succeeded recently.

Anything on the network (or the host) can connect, so a connection that sends nothing for
``idle_timeout`` seconds is closed, a request must arrive whole within ``REQUEST_DEADLINE``
(a peer trickling a byte now and then is cut off), one peer may hold at most
``PER_PEER`` connections, and at most ``max_connections`` are served at once, of which
``LOOPBACK_RESERVED`` only for loopback (the host's own probes get through whatever the
network does). A connection beyond a limit is closed at once rather than given a thread.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from svarinn_daemon.common import is_loopback
from svarinn_daemon.service.metrics import Metrics


@dataclass(frozen=True)
class Check:
    ok: bool
    details: dict[str, str] = field(default_factory=dict)


IDLE_TIMEOUT = 10.0  # seconds a connection may send nothing (Prometheus answers in 1 s)
MAX_CONNECTIONS = 16  # scrapers and probes: a handful at once
REQUEST_DEADLINE = 5.0  # seconds for a whole request line and headers
PER_PEER = 4  # connections one address may hold at once
LOOPBACK_RESERVED = 2  # of MAX_CONNECTIONS, kept for the host's own probes


class _BoundedServer(ThreadingHTTPServer):
    """A thread per connection, but no more than ``max_connections`` threads."""

    daemon_threads = True
    request_queue_size = 64  # accept quickly; the slots decide who is served

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], limit: int):
        reserved = min(LOOPBACK_RESERVED, max(limit - 1, 0))
        self._shared = threading.BoundedSemaphore(limit - reserved)
        self._loopback = threading.BoundedSemaphore(reserved) if reserved else None
        self._peers: dict[str, int] = {}
        self.deadlines: dict[int, threading.Timer] = {}  # by id() of the connection
        self.request_deadline = REQUEST_DEADLINE
        self._lock = threading.Lock()
        super().__init__(address, handler)

    def _take(self, peer: str) -> threading.BoundedSemaphore | None:
        """The slot this peer may use now, or None (close the connection)."""
        local = is_loopback(peer)
        with self._lock:
            if not local and self._peers.get(peer, 0) >= PER_PEER:
                return None
            self._peers[peer] = self._peers.get(peer, 0) + 1
        for slots in (self._loopback if local else None, self._shared):
            if slots is not None and slots.acquire(blocking=False):
                return slots
        self._leave(peer)
        return None

    def _leave(self, peer: str) -> None:
        with self._lock:
            left = self._peers.get(peer, 1) - 1
            if left:
                self._peers[peer] = left
            else:
                self._peers.pop(peer, None)

    def process_request(self, request: Any, client_address: Any) -> None:
        peer = str(client_address[0])
        slots = self._take(peer)
        if slots is None:
            self.shutdown_request(request)  # full: close it now rather than queue a thread
            return
        try:
            thread = threading.Thread(
                target=self._serve, args=(request, client_address, slots), daemon=True
            )
            thread.start()
        except BaseException:
            slots.release()
            self._leave(peer)
            raise

    def _serve(self, request: Any, client_address: Any, slots: threading.BoundedSemaphore) -> None:
        # The whole request must arrive in time: a peer trickling it is cut off.
        timer = threading.Timer(self.request_deadline, _cut_off, args=(request,))
        timer.daemon = True
        timer.start()
        self.deadlines[id(request)] = timer
        try:
            self.process_request_thread(request, client_address)
        finally:
            timer.cancel()
            self.deadlines.pop(id(request), None)
            slots.release()
            self._leave(str(client_address[0]))


def _cut_off(request: Any) -> None:
    with contextlib.suppress(OSError):
        request.shutdown(socket.SHUT_RDWR)


class HealthServer:
    def __init__(
        self,
        host: str,
        port: int,
        metrics: Metrics,
        *,
        liveness: Callable[[], Check],
        readiness: Callable[[], Check],
        idle_timeout: float = IDLE_TIMEOUT,
        max_connections: int = MAX_CONNECTIONS,
        request_deadline: float = REQUEST_DEADLINE,
    ):
        outer = self

        class Handler(BaseHTTPRequestHandler):
            timeout = idle_timeout  # socket timeout: an idle or half-sent request is closed

            def do_GET(self) -> None:
                deadline = outer.server.deadlines.get(id(self.request))
                if deadline is not None:
                    deadline.cancel()  # the request is in: answering may take its time
                path = self.path.split("?")[0]
                if path == "/metrics":
                    self._send(200, generate_latest(outer.metrics.registry), CONTENT_TYPE_LATEST)
                elif path in ("/healthz", "/readyz"):
                    check = (liveness if path == "/healthz" else readiness)()
                    body = json.dumps({"ok": check.ok, **check.details}).encode()
                    self._send(200 if check.ok else 503, body, "application/json")
                else:
                    self._send(404, b"not found\n", "text/plain")

            def _send(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                return  # scrapes every 15 s would drown the log

        self.metrics = metrics
        self.server = _BoundedServer((host, port), Handler, max_connections)
        self.server.request_deadline = request_deadline
        self._thread = threading.Thread(
            target=self.server.serve_forever, name="health-http", daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
