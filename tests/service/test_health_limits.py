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


def _outside_address() -> str | None:
    """This host's address on a non-loopback interface (no packet is sent), or None."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))
            address = str(probe.getsockname()[0])
        except OSError:
            return None
    return None if address.startswith("127.") else address


def test_trickling_peers_cannot_lock_out_the_hosts_own_probes() -> None:
    """Issue #24, item 9: sixteen connections trickling a byte every few seconds locked
    /healthz and /metrics out for good. Now: one peer holds at most PER_PEER connections,
    loopback keeps its slots, and a request must arrive whole within the deadline."""
    from svarinn_daemon.service.health import LOOPBACK_RESERVED, PER_PEER

    outside = _outside_address()
    if outside is None:
        pytest.skip("no non-loopback interface to connect from")
    health = HealthServer(
        "0.0.0.0",  # noqa: S104  (the test connects from a second local address)
        0,
        Metrics(),
        liveness=lambda: Check(True),
        readiness=lambda: Check(True),
        idle_timeout=30.0,
        max_connections=PER_PEER + LOOPBACK_RESERVED,
        request_deadline=2.0,
    )
    health.start()
    port = health.server.server_address[1]
    trickling: list[socket.socket] = []
    try:
        for _ in range(PER_PEER + 3):
            sock = socket.create_connection((outside, port))
            sock.sendall(b"GET /healthz HTTP/1.1\r\n")
            sock.settimeout(10)
            trickling.append(sock)
        refused = 0
        for sock in trickling[PER_PEER:]:  # beyond the cap: closed at once
            with contextlib.suppress(ConnectionResetError):
                refused += sock.recv(100) == b""
        assert refused == 3
        # The shared slots are the outsider's now; the host's own probe still gets in.
        answer = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10)
        assert answer.status_code == 200
        # And the trickling requests are cut off at the deadline, though never idle long.
        for sock in trickling[:PER_PEER]:
            sock.sendall(b"X")
        cut = 0
        for sock in trickling[:PER_PEER]:
            with contextlib.suppress(ConnectionResetError):
                cut += sock.recv(100) == b""
        assert cut == PER_PEER
    finally:
        for sock in trickling:
            sock.close()
        health.stop()
