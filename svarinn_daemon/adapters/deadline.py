"""A deadline for a whole HTTP request, kept by every socket operation under it.

httpx's ``timeout`` bounds each read and write, so a server sending its status line, its
headers or its body a byte at a time, or reading the upload a little at a time, held a worker
for as long as it liked (issue #24, item 12). Under :meth:`Deadline.within` each operation of
the client's connections (connect, TLS handshake, every read and write) may take only what is
left of the request's time, and one past it fails as that operation's own timeout. The
deadline is per thread: each worker runs its own request.
"""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpcore
import httpx

from svarinn_daemon import netstream

__all__ = ["Deadline"]


class Deadline:
    """The time left to the current thread's request (none outside :meth:`within`)."""

    def __init__(self) -> None:
        self._local = threading.local()

    @contextmanager
    def within(self, seconds: float) -> Iterator[None]:
        self._local.at = time.monotonic() + seconds
        try:
            yield
        finally:
            self._local.at = None

    def cap(self, timeout: float | None, expired: type[Exception]) -> float | None:
        """``timeout`` shortened to what is left; ``expired`` raised when nothing is."""
        at: float | None = getattr(self._local, "at", None)
        if at is None:
            return timeout
        left = at - time.monotonic()
        if left <= 0:
            raise expired("the whole request took longer than allowed")
        return left if timeout is None else min(timeout, left)

    def install(self, client: httpx.Client) -> None:
        """Make ``client``'s connections keep this deadline."""

        def backend(inner: httpcore.NetworkBackend) -> httpcore.NetworkBackend:
            return netstream.WrappingBackend(
                inner,
                lambda stream: _Stream(stream, self),
                lambda timeout: self.cap(timeout, httpcore.ConnectTimeout),
            )

        netstream.install(client, backend)


class _Stream(netstream.PassStream):
    def __init__(self, inner: httpcore.NetworkStream, deadline: Deadline):
        super().__init__(inner)
        self._deadline = deadline

    def wrap(self, inner: httpcore.NetworkStream) -> httpcore.NetworkStream:
        return _Stream(inner, self._deadline)

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, self._deadline.cap(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        # In slices, so that a peer taking a little at a time is measured against what is
        # left after each one, not once for the whole buffer.
        for start in range(0, len(buffer), _SLICE):
            piece = buffer if len(buffer) <= _SLICE else buffer[start : start + _SLICE]
            self._inner.write(piece, self._deadline.cap(timeout, httpcore.WriteTimeout))

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        cap = self._deadline.cap(timeout, httpcore.ConnectTimeout)
        return super().start_tls(ssl_context, server_hostname, cap)


_SLICE = 64 * 1024
