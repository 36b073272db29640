"""A large response body read straight from its connection, past h11.

httpx reads a body through httpcore and h11, which copy every byte three times on the way
(h11's receive buffer, the slice it hands out, httpcore's ``bytes()``) and run a few hundred
lines of Python per socket read: a third of the letter thread's CPU for a 1 GiB letter
(measured by ``benchmarks/bench_daemon.py`` under ``perf``). A download that announces a
large ``Content-Length`` over HTTP/1.1, with no transfer or content coding, takes its first
chunk from httpx as usual -- everything h11 has buffered past the head, so no body byte is
left inside h11 -- and reads the rest from the connection's stream (httpcore's public
``network_stream`` response extension), exactly as many bytes as announced. h11 never sees
the body end, so httpcore closes that connection when the response closes instead of
reusing it: one new connection per large letter. Everything else keeps httpx's own path.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpcore
import httpx

__all__ = ["DIRECT_MIN", "body_chunks"]

DIRECT_MIN = 8 << 20  # bytes announced from which the body is read past h11
READ_SIZE = 384 << 10  # bytes asked of each direct socket read


def body_chunks(response: httpx.Response, *, direct_min: int = DIRECT_MIN) -> Iterator[bytes]:
    """The raw (still content-coded, if coded) body of ``response``, chunk by chunk; httpx's
    errors for a broken or stalled connection. Never more than ``Content-Length`` bytes;
    read past h11 when at least ``direct_min`` are announced."""
    chunks = response.iter_raw()
    announced = _direct_length(response, direct_min)
    stream = response.extensions.get("network_stream")
    if announced is None or not isinstance(stream, httpcore.NetworkStream):
        yield from chunks
        return
    first = next(chunks, None)
    if first is None:
        return
    yield first
    left = announced - len(first)
    if left <= 0:
        yield from chunks  # h11 has the whole body: let it see the end, keep the connection
        return
    timeout = response.request.extensions.get("timeout", {}).get("read")
    while left > 0:
        try:
            data = stream.read(READ_SIZE, timeout)
        except httpcore.TimeoutException as exc:
            raise httpx.ReadTimeout(str(exc) or "timed out", request=response.request) from None
        except httpcore.NetworkError as exc:
            raise httpx.ReadError(str(exc) or "read failed", request=response.request) from None
        if not data:
            raise httpx.RemoteProtocolError(
                f"peer closed connection without sending complete message body (received "
                f"{announced - left} bytes, expected {announced})",
                request=response.request,
            )
        if len(data) > left:
            data = data[:left]  # what follows the body is not ours to read
        left -= len(data)
        yield data


def _direct_length(response: httpx.Response, direct_min: int) -> int | None:
    """The announced length when the body may be read past h11, else None."""
    headers = response.headers
    if response.http_version != "HTTP/1.1" or "Transfer-Encoding" in headers:
        return None
    if headers.get("Content-Encoding", "identity").strip().lower() not in ("", "identity"):
        return None
    values = headers.get_list("Content-Length")
    if len(values) != 1 or not values[0].strip().isdigit():
        return None
    length = int(values[0].strip())
    return length if length >= direct_min else None
