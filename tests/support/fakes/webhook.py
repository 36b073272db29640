"""A loopback webhook receiver that can fail (status codes or stalls) before it accepts."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.support.loopback import LoopbackServer


@dataclass
class WebhookState:
    fail_with: list[int] = field(default_factory=list)  # 0 = stall past the client's timeout
    stall_seconds: float = 1.0
    received: list[tuple[str, dict[str, str], Any]] = field(default_factory=list)
    attempts: int = 0


class _Handler(BaseHTTPRequestHandler):
    server: WebhookServer

    def log_message(self, format: str, *args: Any) -> None:
        return None

    def do_POST(self) -> None:
        state = self.server.state
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        state.attempts += 1
        status = state.fail_with.pop(0) if state.fail_with else 200
        if status == 0:
            time.sleep(state.stall_seconds)  # the client has given up by now
            status = 200
        elif status == 200:
            state.received.append((self.path, dict(self.headers.items()), json.loads(body)))
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()


class WebhookServer(LoopbackServer):
    def __init__(self, state: WebhookState):
        super().__init__(_Handler)
        self.state = state
        self.url = f"{self.base_url}/hooks/T0K3N-secret-path"

    def handle_error(self, request: Any, client_address: Any) -> None:
        return None  # a client that timed out closed the socket: expected here
