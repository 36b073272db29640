"""One open download from SvarInn: the body as a stream of chunks, with its headers.

Made by :meth:`SvarInnClient.download`; raises the daemon's errors, never httpx's, and can
be interrupted from another thread when the daemon stops.

A read timeout bounds each wait for bytes, not the whole body: a server sending a byte now
and then would hold a worker (and the letter's lease) forever. So a download also has a
time budget from its size: ``download_deadline_base`` plus the size at
``download_min_rate``, enforced by a timer that interrupts a blocked read, and after the
base period its average rate may not fall below the minimum. The timers of all a client's
downloads share one thread (:class:`~svarinn_daemon.svarinn.deadlines.Deadlines`).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import httpx

from svarinn_daemon.config.model import HttpConfig
from svarinn_daemon.errors import DownloadTooLargeError, ProtocolError, ServiceUnavailableError
from svarinn_daemon.svarinn.deadlines import Deadlines
from svarinn_daemon.svarinn.disposition import filename_from_header
from svarinn_daemon.svarinn.failures import error_for_transport
from svarinn_daemon.svarinn.origins import display_url
from svarinn_daemon.svarinn.rawbody import body_chunks

__all__ = ["Download"]


class Download:
    """An open download: iterate it for bytes chunks. Only valid inside ``download()``."""

    def __init__(
        self,
        response: httpx.Response,
        *,
        account: str,
        http: HttpConfig,
        forsendelse_id: str,
        action: str,
        deadlines: Deadlines,
    ):
        self._account = account
        self._deadlines = deadlines
        self._http = http
        self._response = response
        self._action = action
        self.forsendelse_id = forsendelse_id
        self.url = display_url(str(response.url))
        self.max_size = http.max_download_size
        content_type = response.headers.get("Content-Type")
        self.content_type = content_type.split(";")[0].strip().lower() if content_type else None
        self.filename = filename_from_header(response.headers.get("Content-Disposition"))
        self.content_length = _content_length(response.headers.get("Content-Length"))
        self.bytes_received = 0
        self._started = False
        self._expired = threading.Event()
        if self.content_length is not None and self.content_length > self.max_size:
            raise self._too_large(self.content_length)

    def __repr__(self) -> str:
        return (
            f"Download(forsendelse_id={self.forsendelse_id!r}, content_type="
            f"{self.content_type!r}, filename={self.filename!r}, "
            f"content_length={self.content_length!r}, bytes_received={self.bytes_received})"
        )

    def __iter__(self) -> Iterator[bytes]:
        return self.iter_chunks()

    def iter_chunks(self, chunk_size: int | None = None) -> Iterator[bytes]:
        """The body in chunks; raises the daemon's errors, never httpx's. Once only.

        By default each chunk is what one socket read returned: re-chunking into larger
        pieces costs httpx two extra copies of every byte, and the decryptor batches small
        feeds itself. A large body is read past h11 (:mod:`.rawbody`)."""
        if self._started:
            raise ProtocolError(f"{self._action}: the download was already read")
        self._started = True
        account = self._account
        encoding = self._response.headers.get("Content-Encoding", "identity").strip().lower()
        identity = encoding in ("", "identity")
        # We ask for identity; the raw stream skips httpx's decoder pass when we get it.
        if identity and chunk_size is None:
            chunks = body_chunks(self._response)
        elif identity:
            chunks = self._response.iter_raw(chunk_size)
        else:
            chunks = self._response.iter_bytes(chunk_size)
        http = self._http
        base = http.download_deadline_base.total_seconds()
        rate = max(http.download_min_rate, 1)
        budget = base + (self.content_length or self.max_size) / rate
        started = time.monotonic()
        cancel = self._deadlines.at(started + budget, self._expire)
        try:
            for chunk in chunks:
                self.bytes_received += len(chunk)
                if self.bytes_received > self.max_size:
                    raise self._too_large(None)
                elapsed = time.monotonic() - started
                if elapsed > base + self.bytes_received / rate or self._expired.is_set():
                    raise self._too_slow(elapsed)
                yield chunk
        except httpx.HTTPError as exc:
            if self._expired.is_set():
                raise self._too_slow(time.monotonic() - started) from None
            raise error_for_transport(exc, account=account, action=self._action) from None
        finally:
            cancel()
        received = self.bytes_received if identity else self._response.num_bytes_downloaded
        if self.content_length is not None and received < self.content_length:
            raise ServiceUnavailableError(
                f"account {account}: {self._action}: the body ended after {received} of "
                f"{self.content_length} bytes"
            )

    def interrupt(self) -> None:
        """Make a read blocked in another thread return at once (the daemon is stopping).

        Shuts the connection's socket down: unlike close(), that wakes a thread waiting in
        recv(). The reader then gets a transport error; the connection is not reused."""
        stream = self._response.extensions.get("network_stream")
        sock = stream.get_extra_info("socket") if stream is not None else None
        if isinstance(sock, socket.socket):
            with contextlib.suppress(OSError):
                # The plain socket's shutdown, also for TLS: SSLSocket's own would drop
                # its SSL object under the reading thread.
                socket.socket.shutdown(sock, socket.SHUT_RDWR)

    def _expire(self) -> None:
        self._expired.set()
        self.interrupt()

    def _too_slow(self, elapsed: float) -> ServiceUnavailableError:
        http = self._http
        return ServiceUnavailableError(
            f"account {self._account}: {self._action}: too slow: {self.bytes_received} "
            f"bytes in {elapsed:.1f}s, below http.download_min_rate ({http.download_min_rate} "
            f"bytes/s after the first {http.download_deadline_base.total_seconds():g}s); "
            "stopped, to be tried again later"
        )

    def _too_large(self, announced: int | None) -> DownloadTooLargeError:
        size = f"announces {announced} bytes" if announced else f"passed {self.max_size} bytes"
        return DownloadTooLargeError(
            f"account {self._account}: {self._action}: the file {size}, more "
            f"than http.max_download_size ({self.max_size} bytes)"
        )


def _content_length(value: str | None) -> int | None:
    if value is None or not value.strip().isdigit():
        return None
    return int(value.strip())
