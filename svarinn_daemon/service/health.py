"""The embedded HTTP endpoint: /metrics for Prometheus, /healthz and /readyz for orchestrators.

/healthz says the process is alive and its scheduler loop is turning; /readyz says the
ledger answers and every account's last poll succeeded recently.

Anything on the network (or the host) can connect, so a connection that sends nothing for
``idle_timeout`` seconds is closed, and at most ``max_connections`` are served at once: one
more is closed at once instead of getting a thread of its own.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from svarinn_daemon.service.metrics import Metrics


@dataclass(frozen=True)
class Check:
    ok: bool
    details: dict[str, str] = field(default_factory=dict)


IDLE_TIMEOUT = 10.0  # seconds a connection may send nothing (Prometheus answers in 1 s)
MAX_CONNECTIONS = 16  # scrapers and probes: a handful at once


class _BoundedServer(ThreadingHTTPServer):
    """A thread per connection, but no more than ``max_connections`` threads."""

    daemon_threads = True
    request_queue_size = 64  # accept quickly; the slots decide who is served

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], limit: int):
        self._slots = threading.BoundedSemaphore(limit)
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            self.shutdown_request(request)  # full: close it now rather than queue a thread
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()


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
    ):
        outer = self

        class Handler(BaseHTTPRequestHandler):
            timeout = idle_timeout  # socket timeout: an idle or half-sent request is closed

            def do_GET(self) -> None:
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
