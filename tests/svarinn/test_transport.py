"""The SvarInn client's transport reads large over TLS too: the records already received are
taken together (up to READ_SIZE), so HTTP parsing does not run per 16 KiB record; and a
connection that breaks while they are gathered still ends in httpx's own error."""

from __future__ import annotations

import socket
import ssl
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from svarinn_daemon.config.model import HttpConfig
from svarinn_daemon.simulator.tls import make_server_tls
from svarinn_daemon.svarinn.transport import READ_SIZE, http_client

BODY = bytes(range(256)) * 8192  # 2 MiB
TLS_RECORD = 16 * 1024


@contextmanager
def tls_server(tmp_path: Path, *, cut_after: int | None = None) -> Iterator[tuple[str, Path]]:
    """One HTTPS response over loopback, its whole body written at once (or the connection
    reset after ``cut_after`` body bytes)."""
    pki = make_server_tls(tmp_path / "pki")
    context = pki.server_context()
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        raw, _ = listener.accept()
        conn = context.wrap_socket(raw, server_side=True)
        request = b""
        while b"\r\n\r\n" not in request:
            request += conn.recv(4096)
        head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(BODY)}\r\n\r\n".encode()
        if cut_after is None:
            conn.sendall(head + BODY)
            conn.recv(1)  # until the client closes
        else:  # a reset (RST), not a clean close
            conn.sendall(head + BODY[:cut_after])
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{port}/forsendelse", pki.ca_certificate
    finally:
        listener.close()
        thread.join(timeout=10)


def test_tls_records_already_here_are_read_together(tmp_path: Path) -> None:
    with tls_server(tmp_path) as (url, ca):
        client = http_client(HttpConfig(ca_bundle=ca), account="kommune")
        with client, client.stream("GET", url) as response:
            chunks = [len(c) for c in response.iter_raw()]
    assert sum(chunks) == len(BODY)
    assert max(chunks) > TLS_RECORD  # more than one record per read
    assert max(chunks) <= READ_SIZE


def test_a_connection_reset_while_gathering_is_httpx_s_error(tmp_path: Path) -> None:
    with tls_server(tmp_path, cut_after=300_000) as (url, ca):
        client = http_client(HttpConfig(ca_bundle=ca), account="kommune")
        with client, pytest.raises(httpx.TransportError), client.stream("GET", url) as response:
            for _ in response.iter_raw():
                pass


def test_plain_reads_are_large_too(tmp_path: Path) -> None:
    """Without TLS the socket read asks for READ_SIZE at once (nothing to gather)."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            request = b""
            while b"\r\n\r\n" not in request:
                request += conn.recv(4096)
            conn.sendall(f"HTTP/1.1 200 OK\r\nContent-Length: {len(BODY)}\r\n\r\n".encode() + BODY)
            conn.recv(1)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    client = http_client(HttpConfig(), account="kommune")
    with client, client.stream("GET", f"http://127.0.0.1:{port}/") as response:
        chunks = [len(c) for c in response.iter_raw()]
    listener.close()
    thread.join(timeout=10)
    assert sum(chunks) == len(BODY)
    assert max(chunks) > 64 * 1024  # httpcore's own 64 KiB reads, made larger
    assert isinstance(ssl.OPENSSL_VERSION, str)


def test_no_cookie_is_kept_nor_sent_back() -> None:
    """A server's Set-Cookie is neither kept nor sent with the next request (to this origin
    or any other): SvarInn needs none, and a kept one could follow a redirect elsewhere."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    requests: list[bytes] = []

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            for _ in range(2):
                request = b""
                while b"\r\n\r\n" not in request:
                    request += conn.recv(4096)
                requests.append(request)
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
                    b"Set-Cookie: session=planted; Path=/\r\n\r\nok"
                )

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        with http_client(HttpConfig(), account="kommune") as client:
            for _ in range(2):
                response = client.get(f"http://127.0.0.1:{port}/svarinn", cookies=None)
                assert response.headers["set-cookie"].startswith("session=")
            assert not client.cookies
    finally:
        listener.close()
        thread.join(timeout=10)
    assert len(requests) == 2
    assert all(b"cookie:" not in r.lower() for r in requests)
