"""The health endpoint against clients that connect and never finish their request."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator

import httpx
import pytest

from svarinn_daemon.service.health import Check, HealthServer
from svarinn_daemon.service.metrics import Metrics


@pytest.fixture
def server() -> Iterator[HealthServer]:
    health = HealthServer(
        "127.0.0.1",
        0,
        Metrics(),
        liveness=lambda: Check(True),
        readiness=lambda: Check(True),
        idle_timeout=0.5,
        max_connections=4,
    )
    health.start()
    try:
        yield health
    finally:
        health.stop()


def _half_sent(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)))
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
    sock.settimeout(30)  # a generous upper bound, only so that a broken server fails the test
    return sock


def _handler_threads() -> int:
    return sum("process_request_thread" in t.name for t in threading.enumerate())


def test_half_sent_requests_are_bounded_and_closed(server: HealthServer) -> None:
    sockets = [_half_sent(server.url) for _ in range(50)]
    try:
        assert _handler_threads() <= 4
        # Every connection ends from the server's side: the 46 beyond the limit at once,
        # the 4 served ones once idle for 0.5 s (recv returns b"" on the server's FIN).
        for sock in sockets:
            # A reset (closed while our bytes were unread) is a close too.
            with contextlib.suppress(ConnectionResetError):
                assert sock.recv(1024) == b""
        assert httpx.get(f"{server.url}/healthz", timeout=10).json() == {"ok": True}
    finally:
        for sock in sockets:
            sock.close()


def test_an_idle_connection_does_not_hold_the_endpoint(server: HealthServer) -> None:
    idle = [_half_sent(server.url) for _ in range(4)]  # every slot taken
    try:
        for sock in idle:
            assert sock.recv(1024) == b""  # closed after the idle timeout
        assert httpx.get(f"{server.url}/metrics", timeout=10).status_code == 200
    finally:
        for sock in idle:
            sock.close()
