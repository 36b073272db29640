"""The embedded HTTP endpoint: /metrics for Prometheus, /healthz and /readyz for orchestrators.

/healthz says the process is alive and its scheduler loop is turning; /readyz says the
ledger answers and every account's last poll succeeded recently.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from svarinn_daemon.metrics import Metrics


@dataclass(frozen=True)
class Check:
    ok: bool
    details: dict[str, str] = field(default_factory=dict)


class HealthServer:
    def __init__(
        self,
        host: str,
        port: int,
        metrics: Metrics,
        *,
        liveness: Callable[[], Check],
        readiness: Callable[[], Check],
    ):
        outer = self

        class Handler(BaseHTTPRequestHandler):
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
        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
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
