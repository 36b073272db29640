"""A large body read past h11 (svarinn/rawbody.py), against a real server over loopback: the
same bytes as httpx's own path, never more than announced, the connection then closed and
never reused, and every broken or stalled transfer still httpx's error, then the daemon's."""

from __future__ import annotations

import hashlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpx
import pytest

from svarinn_daemon.config.model import HttpConfig
from svarinn_daemon.errors import ServiceUnavailableError
from svarinn_daemon.svarinn.deadlines import Deadlines
from svarinn_daemon.svarinn.download import Download
from svarinn_daemon.svarinn.rawbody import body_chunks
from svarinn_daemon.svarinn.transport import http_client

BODY = hashlib.sha256(b"rawbody").digest() * (3 << 15)  # 3 MiB, no two pieces alike
DIRECT = 1 << 20  # read past h11 from this size in these tests

# What the server does after the request's head: send(conn, head) writes one response.
Reply = Callable[[socket.socket], None]


@dataclass
class Server:
    url: str
    connections: int = 0
    requests: list[bytes] = field(default_factory=list)


def _head(length: int, extra: str = "") -> bytes:
    return f"HTTP/1.1 200 OK\r\nContent-Length: {length}\r\n{extra}\r\n".encode()


@contextmanager
def server(*replies: Reply) -> Iterator[Server]:
    """Answers requests in order with ``replies``, on as many connections as the client
    opens (keep-alive honoured), counting connections."""
    listener = socket.create_server(("127.0.0.1", 0))
    state = Server(f"http://127.0.0.1:{listener.getsockname()[1]}/forsendelse")
    queue = list(replies)
    lock = threading.Lock()

    def handle(conn: socket.socket) -> None:
        with conn:
            buffer = b""
            while True:
                while b"\r\n\r\n" not in buffer:
                    data = conn.recv(4096)
                    if not data:
                        return
                    buffer += data
                request, buffer = buffer.split(b"\r\n\r\n", 1)
                with lock:
                    state.requests.append(request)
                    reply = queue.pop(0) if queue else None
                if reply is None:
                    return
                try:
                    reply(conn)
                except OSError:
                    return

    def accept() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            state.connections += 1
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield state
    finally:
        listener.close()


def whole(conn: socket.socket) -> None:
    conn.sendall(_head(len(BODY)) + BODY)


def in_pieces(conn: socket.socket) -> None:
    """The head alone, then the body in odd pieces: h11 holds none of it at first."""
    conn.sendall(_head(len(BODY)))
    time.sleep(0.05)
    for at in range(0, len(BODY), 100_003):
        conn.sendall(BODY[at : at + 100_003])


def with_more_after(conn: socket.socket) -> None:
    conn.sendall(_head(len(BODY)) + BODY + b"HTTP/1.1 200 OK\r\n\r\nnot this body's")


def cut(conn: socket.socket) -> None:
    conn.sendall(_head(len(BODY)) + BODY[: 2 << 20])
    conn.shutdown(socket.SHUT_WR)


def stalls(conn: socket.socket) -> None:
    conn.sendall(_head(len(BODY)) + BODY[: 2 << 20])
    time.sleep(1.5)


def small(conn: socket.socket) -> None:
    conn.sendall(_head(5) + b"small")


def chunked(conn: socket.socket) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
    for at in range(0, len(BODY), 1 << 20):
        piece = BODY[at : at + (1 << 20)]
        conn.sendall(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
    conn.sendall(b"0\r\n\r\n")


def read(client: httpx.Client, url: str, *, direct_min: int = DIRECT) -> bytes:
    with client.stream("GET", url) as response:
        return b"".join(body_chunks(response, direct_min=direct_min))


@pytest.mark.parametrize("reply", [whole, in_pieces], ids=["with-the-head", "after-the-head"])
def test_the_body_past_h11_is_the_body(reply: Reply) -> None:
    with server(reply, small) as state, http_client(HttpConfig(), account="k") as client:
        assert read(client, state.url) == BODY
        assert read(client, state.url) == b"small"
    assert state.connections == 2  # h11 did not see that body end: its connection was closed


def test_small_bodies_keep_the_connection() -> None:
    with server(whole, small, small) as state, http_client(HttpConfig(), account="k") as client:
        assert read(client, state.url, direct_min=len(BODY) + 1) == BODY  # httpx's own path
        assert read(client, state.url) == b"small"
        assert read(client, state.url) == b"small"
    assert state.connections == 1


def test_never_more_than_announced() -> None:
    with server(with_more_after) as state, http_client(HttpConfig(), account="k") as client:
        assert read(client, state.url) == BODY


def test_a_chunked_body_keeps_httpx_s_path() -> None:
    with server(chunked, small) as state, http_client(HttpConfig(), account="k") as client:
        assert read(client, state.url) == BODY
        assert read(client, state.url) == b"small"
    assert state.connections == 1  # h11 read it to its end


def test_a_body_cut_short_is_httpx_s_error() -> None:
    with (
        server(cut) as state,
        http_client(HttpConfig(), account="k") as client,
        pytest.raises(httpx.RemoteProtocolError, match=f"received {2 << 20} bytes"),
    ):
        read(client, state.url)


def test_a_stalled_body_times_out_with_the_read_timeout() -> None:
    with (
        server(stalls) as state,
        http_client(HttpConfig(), account="k") as client,
        pytest.raises(httpx.ReadTimeout),
        client.stream("GET", state.url, timeout=httpx.Timeout(5.0, read=0.3)) as response,
    ):
        for _ in body_chunks(response, direct_min=DIRECT):
            pass


def _download(response: httpx.Response, deadlines: Deadlines) -> Download:
    return Download(
        response,
        account="k",
        http=HttpConfig(),
        forsendelse_id="f-1",
        action="GET /forsendelse",
        deadlines=deadlines,
    )


def test_the_download_past_h11_counts_and_ends_as_before(monkeypatch: pytest.MonkeyPatch) -> None:
    """Through :class:`Download` (the default threshold lowered): every byte counted, and a
    body cut short ends in the daemon's temporary error."""
    monkeypatch.setattr("svarinn_daemon.svarinn.rawbody.DIRECT_MIN", DIRECT)
    monkeypatch.setattr(body_chunks, "__kwdefaults__", {"direct_min": DIRECT})
    deadlines = Deadlines()
    with server(in_pieces, cut) as state, http_client(HttpConfig(), account="k") as client:
        with client.stream("GET", state.url) as response:
            download = _download(response, deadlines)
            assert hashlib.sha256(b"".join(download)).digest() == hashlib.sha256(BODY).digest()
            assert download.bytes_received == len(BODY)
        with client.stream("GET", state.url) as response:
            download = _download(response, deadlines)
            with pytest.raises(ServiceUnavailableError, match="broke off"):
                for _ in download:
                    pass
    assert state.connections == 2
