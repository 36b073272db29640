"""Wrapping the sockets under an httpx client: httpcore's network-backend interface.

Two parts of the daemon change how a client's connections read and write: the SvarInn
client reads large (``svarinn/transport.py``) and the http adapter keeps a deadline for a
whole request (``adapters/deadline.py``). httpx takes no network backend, so both replace
its transports' pools' backend (:func:`install`) with one that wraps every stream it opens;
what they do not change passes through :class:`PassStream` and :class:`WrappingBackend`.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterable
from typing import Any

import httpcore
import httpx

__all__ = ["PassStream", "WrappingBackend", "install"]


class PassStream(httpcore.NetworkStream):
    """A stream that passes every call to ``inner``; a subclass overrides what it changes
    and :meth:`wrap` (how a TLS stream started over it is wrapped again)."""

    def __init__(self, inner: httpcore.NetworkStream):
        self._inner = inner

    def wrap(self, inner: httpcore.NetworkStream) -> httpcore.NetworkStream:
        """The stream a TLS handshake over this one returns, wrapped as this one is."""
        return type(self)(inner)

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, timeout)

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, timeout)

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        return self.wrap(self._inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class WrappingBackend(httpcore.NetworkBackend):
    """Opens connections through ``inner`` and wraps each stream with ``wrap``;
    ``connect_timeout`` may shorten the time a connection may take."""

    def __init__(
        self,
        inner: httpcore.NetworkBackend,
        wrap: Callable[[httpcore.NetworkStream], httpcore.NetworkStream],
        connect_timeout: Callable[[float | None], float | None] = lambda timeout: timeout,
    ):
        self._inner = inner
        self._wrap = wrap
        self._connect_timeout = connect_timeout

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        timeout = self._connect_timeout(timeout)
        return self._wrap(
            self._inner.connect_tcp(host, port, timeout, local_address, socket_options)
        )

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        timeout = self._connect_timeout(timeout)
        return self._wrap(self._inner.connect_unix_socket(path, timeout, socket_options))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def install(
    client: httpx.Client,
    backend: Callable[[httpcore.NetworkBackend], httpcore.NetworkBackend],
) -> None:
    """Put ``backend(the current one)`` under every pool of ``client`` (the direct
    transport's and each proxy mount's). httpx takes no backend argument, hence the
    transports' pools' attribute."""
    for transport in (client._transport, *client._mounts.values()):
        if isinstance(transport, httpx.HTTPTransport):
            pool = transport._pool
            pool._network_backend = backend(pool._network_backend)
