"""Loopback servers for the fakes: a free port on 127.0.0.1, served from a thread while in use.

Every fake (webhook receiver, Fiks SMS, sakssystem, CONNECT proxy, the request recorder, the
endpoints that misbehave byte by byte) starts, serves and stops the same way; only its
handler and what it checks differ.
"""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Callable
from contextlib import suppress
from http.server import ThreadingHTTPServer
from socketserver import BaseRequestHandler
from typing import Self


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (the moment it is returned)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LoopbackServer(ThreadingHTTPServer):
    """``with Server(...) as server: server.base_url``: serves until the block ends.

    Bound to port 0 on loopback, so tests never collide; ``tls`` makes it https.
    Leaving the block stops the serving thread and closes the socket.
    """

    daemon_threads = True
    poll_interval = 0.02  # how soon serve_forever sees the shutdown
    join_timeout: float | None = None

    def __init__(
        self, handler: type[BaseRequestHandler], *, tls: ssl.SSLContext | None = None
    ) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        if tls is not None:
            self.socket = tls.wrap_socket(self.socket, server_side=True)
        self.scheme = "https" if tls is not None else "http"
        self._thread = threading.Thread(
            target=self.serve_forever, args=(self.poll_interval,), daemon=True
        )

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()
        self._thread.join(self.join_timeout)


Serve = Callable[[socket.socket, threading.Event], None]


class ScriptedServer(LoopbackServer):
    """Runs ``serve(connection, stop)`` on each connection, for a server that speaks HTTP
    wrongly on purpose (a header a byte at a time, an upload taken slowly).

    ``stop`` is set when the block ends, so a ``serve`` that never finishes on its own ends
    then; a connection the client dropped meanwhile is no error.
    """

    def __init__(self, serve: Serve) -> None:
        self.stop = threading.Event()
        stop = self.stop

        class Handler(BaseRequestHandler):
            def handle(self) -> None:
                with suppress(OSError):
                    serve(self.request, stop)

        super().__init__(Handler)

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        super().__exit__(*exc)
