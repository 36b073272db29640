"""The SvarInn client's transport reads large over TLS too: the records already received are
taken together (up to READ_SIZE), so HTTP parsing does not run per 16 KiB record; and a
connection that breaks while they are gathered still ends in httpx's own error."""

from __future__ import annotations

import select
import socket
import ssl
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpcore
import httpx
import pytest

from svarinn_daemon.config.model import HttpConfig
from svarinn_daemon.netstream import WrappingBackend
from svarinn_daemon.simulator.tls import make_server_tls
from svarinn_daemon.svarinn.transport import READ_SIZE, _LargeReadStream, http_client

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


def _relay(listener: socket.socket, context: ssl.SSLContext, inner_port: int) -> None:
    """A TLS-terminating hop (what an https proxy is once its tunnel is up): the outer TLS
    ends here, its plaintext -- the inner TLS records -- goes on to ``inner_port``."""
    raw, _ = listener.accept()
    outer = context.wrap_socket(raw, server_side=True)
    inner = socket.create_connection(("127.0.0.1", inner_port))
    with outer, inner:
        ends = [outer, inner]
        while True:
            ready, _, _ = select.select(ends, [], [], 10)
            if not ready:
                return
            for end in ready:
                data = end.recv(65536)
                if not data:
                    return
                (inner if end is outer else outer).sendall(data)


def test_tls_in_tls_gathers_nothing_from_the_outer_socket(tmp_path: Path) -> None:
    """Through an https proxy httpcore runs TLS inside TLS: the socket underneath carries
    the outer layer, so gathering from it would splice the inner TLS records into the body.
    Real sockets, real TLS both ways, httpcore's own TLS-in-TLS stream under ours."""
    with tls_server(tmp_path / "inner") as (url, inner_ca):
        inner_port = int(url.rsplit(":", 1)[1].split("/")[0])
        outer_pki = make_server_tls(tmp_path / "outer")
        listener = socket.create_server(("127.0.0.1", 0))
        relay = threading.Thread(
            target=_relay,
            args=(listener, outer_pki.server_context(), inner_port),
            daemon=True,
        )
        relay.start()
        backend = WrappingBackend(httpcore.SyncBackend(), _LargeReadStream)
        stream = backend.connect_tcp("127.0.0.1", listener.getsockname()[1], timeout=10)
        outer = ssl.create_default_context(cafile=str(outer_pki.ca_certificate))
        inner = ssl.create_default_context(cafile=str(inner_ca))
        stream = stream.start_tls(outer, "127.0.0.1", timeout=10)
        stream = stream.start_tls(inner, "127.0.0.1", timeout=10)
        stream.write(b"GET /forsendelse HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", timeout=10)
        received = b""
        head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(BODY)}\r\n\r\n".encode()
        while len(received) < len(head) + len(BODY):
            data = stream.read(READ_SIZE, timeout=10)
            if not data:
                break
            received += data
        stream.close()
        listener.close()
        relay.join(timeout=10)
    assert received == head + BODY
