"""The HTTP under the archive-system adapters (GI-Arkiv's SOAP, Public 360's JSON RPC): one
httpx client with the adapter's deadline, TLS and credentials, whose every failure is an
:class:`ArchiveError` that names neither a header nor a secret.

What an answer *means* is the protocol's to say; this module says only what HTTP says the
same way for all of them: a timeout or a broken connection is temporary (the archive may
still be at work on the request), refused credentials, a wrong address and a redirect are
loud (an operator fixes them, never paper).
"""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta

import httpx

from svarinn_daemon.adapters.deadline import Deadline
from svarinn_daemon.errors import ArchiveError, StorageError
from svarinn_daemon.logs import Redactor

__all__ = ["DEADLINE_FACTOR", "Answer", "ArchiveHttp", "Settling"]

DEADLINE_FACTOR = 2  # a whole exchange within this many times the socket timeout
BODY_CAP = 4 * 1024 * 1024  # an answer lists cases, records and documents, never files
MAX_MESSAGE = 400


@dataclass(frozen=True)
class Answer:
    """An HTTP answer, with requests' names (what zeep's ``process_reply`` reads)."""

    status_code: int
    content: bytes
    headers: Mapping[str, str]
    encoding: str | None = None


class ArchiveHttp:
    """POSTs to one archive system; ``deadline`` is the longest one exchange can take."""

    def __init__(
        self,
        *,
        timeout: timedelta,
        tls: ssl.SSLContext | None,
        auth: httpx.Auth | None = None,
        secrets: tuple[str, ...] = (),
        credentials_hint: str = "check the credentials",
    ):
        self.timeout = timeout
        self.deadline = timeout.total_seconds() * DEADLINE_FACTOR
        self.redactor = Redactor(list(secrets))
        self._hint = credentials_hint
        self._client = httpx.Client(
            auth=auth,
            timeout=timeout.total_seconds(),
            follow_redirects=False,
            trust_env=False,
            verify=tls if tls is not None else ssl.create_default_context(),
        )
        self._deadline = Deadline()
        self._deadline.install(self._client)

    def post(
        self,
        url: str,
        what: str,
        headers: Mapping[str, str],
        body: bytes | tuple[int, Callable[[], Iterator[bytes]]],
        *,
        shown_url: str | None = None,
    ) -> Answer:
        """One POST; ``body`` is bytes, or a length and a generator of pieces. ``what``
        names the call in errors, ``shown_url`` the address (when ``url`` carries a secret).
        Credentials, address and redirect problems are raised here; any other status is
        the caller's to read."""
        return self.request("POST", url, what, headers, body, shown_url=shown_url)

    def get(self, url: str, what: str, headers: Mapping[str, str], *, body: bool = True) -> Answer:
        """One GET; ``body=False`` reads the status and headers only (a file's presence:
        then a 404 is the caller's to read, not a wrong address)."""
        return self.request("GET", url, what, headers, None, read=body, found=body)

    def request(
        self,
        method: str,
        url: str,
        what: str,
        headers: Mapping[str, str],
        body: bytes | tuple[int, Callable[[], Iterator[bytes]]] | None,
        *,
        shown_url: str | None = None,
        read: bool = True,
        found: bool = True,
    ) -> Answer:
        """``found=False``: a 404 is an answer (something is not there yet), not an error."""
        shown = shown_url or url
        sent = dict(headers)
        content: bytes | Iterator[bytes] | None = None
        if isinstance(body, bytes):
            content = body
            sent["Content-Length"] = str(len(body))
        elif body is not None:
            length, pieces = body
            content = pieces()
            sent["Content-Length"] = str(length)
        sent.setdefault("User-Agent", "svarinn-daemon")
        try:
            with (
                self._deadline.within(self.deadline),
                self._client.stream(method, url, headers=sent, content=content) as response,
            ):
                data = bytearray()
                for chunk in response.iter_bytes() if read else ():
                    data += chunk
                    if len(data) > BODY_CAP:
                        raise ArchiveError(
                            f"{what}: {shown} answered more than {BODY_CAP} bytes", temporary=True
                        )
                answer = Answer(response.status_code, bytes(data), response.headers)
        except httpx.TimeoutException as exc:
            raise ArchiveError(
                f"{what} at {shown} timed out ({type(exc).__name__})", temporary=True
            ) from None
        except httpx.HTTPError as exc:
            raise ArchiveError(
                f"{what} at {shown} failed: {type(exc).__name__}: {self.scrub(str(exc))}",
                temporary=True,
            ) from None
        except OSError as exc:
            raise StorageError(f"cannot read a staged document: {exc.strerror or exc}") from None
        if found or answer.status_code != 404:
            self._check(answer, what, shown)
        return answer

    def _check(self, answer: Answer, what: str, shown: str) -> None:
        status = answer.status_code
        if status in (401, 403, 407):
            raise ArchiveError(
                f"{what}: {shown} refused the credentials (HTTP {status}): {self._hint}",
                temporary=True,
                loud=True,
            )
        if status == 404:
            raise ArchiveError(
                f"{what}: {shown} answered HTTP 404: check the address", temporary=True, loud=True
            )
        if 300 <= status < 400:
            raise ArchiveError(
                f"{what}: {shown} answered HTTP {status} (a redirect, not followed): set the "
                "service's own address",
                temporary=True,
                loud=True,
            )

    def scrub(self, text: str) -> str:
        """One line of ``text``, our secrets hidden, at most ``MAX_MESSAGE`` characters."""
        return self.redactor.scrub(" ".join(text.split()))[:MAX_MESSAGE]

    def close(self) -> None:
        self._client.close()


class Settling:
    """After a call to the archive that failed or got no answer, the archive may still be
    at work on it until the exchange's deadline: a letter is not looked at again before
    then, so that a request still in flight is never sent a second time."""

    def __init__(self, deadline: float):
        self.deadline = deadline
        self._until: dict[str, float] = {}
        self._lock = threading.Lock()

    def failed(self, key: str) -> None:
        with self._lock:
            self._until[key] = time.monotonic() + self.deadline

    def check(self, key: str) -> None:
        """A temporary ArchiveError (with ``retry_after``) while ``key`` is settling."""
        with self._lock:
            until = self._until.get(key)
            left = until - time.monotonic() if until is not None else 0.0
            if left <= 0:
                self._until.pop(key, None)
                return
        raise ArchiveError(
            f"{key}: the previous attempt's request may still be at work in the archive; "
            f"looking again in {left:.1f} s",
            temporary=True,
            retry_after=left,
        )

    def forget(self) -> None:
        """As if every wait had passed (tests, and an operator's ``retry``)."""
        with self._lock:
            self._until.clear()
