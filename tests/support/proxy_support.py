"""A real HTTP CONNECT proxy on loopback that records what passed through it.

Like a kommune's squid: ``CONNECT host:port`` (with Basic ``Proxy-Authorization`` when it
has credentials), ``200 Connection established``, then bytes both ways until either side
closes. It records every CONNECT target, the Proxy-Authorization it got, and the bytes it
carried each way, so a test can show that the tunnel was used and that the account's own
``Authorization`` never appeared in clear on the proxy. A plain-HTTP absolute-form request
(``POST http://host:port/path``, what a client sends for an http:// URL) is forwarded once
with ``Connection: close``, without the Proxy-* headers, and its headers are recorded.
"""

from __future__ import annotations

import base64
import contextlib
import select
import socket
import socketserver
import threading
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from tests.support.loopback import LoopbackServer


@dataclass
class Tunnel:
    method: str
    target: str
    proxy_authorization: str | None
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    upstream: bytearray = field(default_factory=bytearray)  # client -> server bytes
    downstream_bytes: int = 0


class ConnectProxy:
    """``with ConnectProxy(credentials=("user", "pw")) as proxy: proxy.url``."""

    def __init__(self, credentials: tuple[str, str] | None = None) -> None:
        self.credentials = credentials
        self.tunnels: list[Tunnel] = []
        self._lock = threading.Lock()
        proxy = self

        class Handler(socketserver.StreamRequestHandler):
            rbufsize = 0  # unbuffered: no tunnel bytes are read ahead with the headers

            def handle(self) -> None:
                proxy._handle(self.connection, self.rfile)

        class Server(LoopbackServer):
            block_on_close = False
            join_timeout = 5

        self._server = Server(Handler)

    @property
    def url(self) -> str:
        return self._server.base_url

    def __enter__(self) -> ConnectProxy:
        self._server.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.__exit__(*exc)

    def _expected_auth(self) -> str | None:
        if self.credentials is None:
            return None
        token = base64.b64encode(":".join(self.credentials).encode()).decode()
        return f"Basic {token}"

    def _handle(self, client: socket.socket, rfile: object) -> None:
        reader = rfile  # a buffered reader over the client socket
        request_line = reader.readline(8192).decode("latin-1").strip()  # type: ignore[attr-defined]
        headers: dict[str, str] = {}
        while True:
            line = reader.readline(8192).decode("latin-1")  # type: ignore[attr-defined]
            if line in ("\r\n", "\n", ""):
                break
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        method, _, rest = request_line.partition(" ")
        target = rest.rpartition(" ")[0]
        tunnel = Tunnel(method, target, headers.get("proxy-authorization"), headers=headers)
        with self._lock:
            self.tunnels.append(tunnel)
        expected = self._expected_auth()
        if expected is not None and tunnel.proxy_authorization != expected:
            tunnel.status = 407
            client.sendall(
                b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                b'Proxy-Authenticate: Basic realm="kommune"\r\nContent-Length: 0\r\n\r\n'
            )
            return
        if method != "CONNECT":
            self._forward(client, reader, tunnel)
            return
        host, _, port = target.rpartition(":")
        try:
            upstream = socket.create_connection((host.strip("[]"), int(port)), timeout=10)
        except OSError:
            tunnel.status = 502
            client.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            return
        tunnel.status = 200
        client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        with upstream:
            self._pipe(client, upstream, tunnel)

    def _forward(self, client: socket.socket, reader: object, tunnel: Tunnel) -> None:
        parts = urlsplit(tunnel.target)
        if parts.scheme != "http" or not parts.hostname:
            tunnel.status = 405
            client.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
            return
        body = reader.read(int(tunnel.headers.get("content-length") or 0))  # type: ignore[attr-defined]
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        lines = [f"{tunnel.method} {path} HTTP/1.1"]
        lines += [
            f"{name}: {value}"
            for name, value in tunnel.headers.items()
            if not name.startswith("proxy-") and name != "connection"
        ]
        lines.append("Connection: close")
        tunnel.status = 200
        with socket.create_connection((parts.hostname, parts.port or 80), timeout=10) as up:
            up.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
            while data := up.recv(65536):
                tunnel.downstream_bytes += len(data)
                client.sendall(data)

    def _pipe(self, client: socket.socket, upstream: socket.socket, tunnel: Tunnel) -> None:
        sockets = [client, upstream]
        while True:
            readable, _, _ = select.select(sockets, [], [], 30)
            if not readable:
                return
            for sock in readable:
                try:
                    data = sock.recv(256 * 1024)
                except OSError:
                    return
                if not data:
                    with contextlib.suppress(OSError):
                        (upstream if sock is client else client).shutdown(socket.SHUT_WR)
                    return
                if sock is client:
                    tunnel.upstream += data[: max(0, (1 << 20) - len(tunnel.upstream))]
                    upstream.sendall(data)
                else:
                    tunnel.downstream_bytes += len(data)
                    client.sendall(data)
