"""The HTTP client both SvarInn API versions share: list, stream-download, send receipts.

``v1.py`` and ``v2.py`` subclass :class:`SvarInnHttpClient` with their paths, their item
parser and their two receipts; everything that decides whether a request is safe and what
an answer means is here, once: credentials only to the account's origin, redirects followed
hop by hop with the same origin check, the listing's size, item and time limits, download
streaming with its deadlines, and the status-to-error mapping (404 gone, 401/403 stop the
account, 408/429/5xx retried).

Synchronous ``httpx.Client``: the daemon runs letters on a thread pool, an httpx.Client is
safe to share between threads, and blocking streams keep a multi-GB download a plain loop
with back-pressure (the next chunk is read when the consumer asks for it) -- no event loop
to bridge into the decryptor, the archive adapter or the database driver.

Credentials stay home: the Authorization header is added per request, only when the
request's origin is the account's ``base_url`` origin. Redirects are followed here, not by
httpx, so every hop gets the same origin check.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx

from svarinn_daemon.config.model import HttpConfig
from svarinn_daemon.config.secrets import Secret
from svarinn_daemon.errors import (
    ProtocolError,
    ServiceUnavailableError,
)
from svarinn_daemon.logs import Redactor, get_logger
from svarinn_daemon.svarinn.deadlines import Deadlines
from svarinn_daemon.svarinn.download import Download
from svarinn_daemon.svarinn.failures import (
    BODY_START_BYTES,
    body_start,
    error_for_status,
    error_for_transport,
)
from svarinn_daemon.svarinn.listing_json import NotAList, TooManyItems, iter_items
from svarinn_daemon.svarinn.origins import Origin, OriginPolicy, display_url, redirect_target
from svarinn_daemon.svarinn.parsing import check_forsendelse_id, rejected_item
from svarinn_daemon.svarinn.records import Forsendelse, Listing, RejectedItem
from svarinn_daemon.svarinn.transport import http_client

__all__ = ["PAGE_SIZE", "Credentials", "Download", "SvarInnHttpClient", "path_id"]

PAGE_SIZE = 200  # SvarInn returns at most this many letters per call
# A page with more items than this is refused unread: five times what SvarInn documents.
MAX_PAGE_ITEMS = 5 * PAGE_SIZE
# Items read per listing (one poll); the rest wait for the next poll. Bounds memory and CPU.
MAX_CYCLE_ITEMS = 10_000
MAX_PAGES = MAX_CYCLE_ITEMS // PAGE_SIZE  # a safety stop for a server that invents ids
MAX_REDIRECTS = 5
MAX_LIST_BYTES = 16 * 2**20  # 200 items of 80 KiB each
MAX_FEILMELDING_CHARS = 2000
_REDIRECTS = (301, 302, 303, 307, 308)

log = get_logger(__name__)


@dataclass(frozen=True)
class Credentials:
    """The mottakersystem's HTTP Basic credentials (sent to the account's origin only)."""

    username: str
    password: Secret = field(repr=False)


class SvarInnHttpClient:
    """One account's connection to SvarInn. Thread-safe; close it (or use ``with``).

    ``account`` is the account's name, for messages. ``transport`` replaces httpx's network
    transport, as in :class:`httpx.Client` (an in-memory SvarInn, say). A subclass per API
    version (``v1.SvarInnClient``, ``v2.SvarInnV2Client``) sets ``api``, ``list_path`` and
    ``listing_name`` and writes :meth:`_parse_item`, :meth:`acknowledge` and
    :meth:`report_failure`.
    """

    api: str
    list_path: str
    listing_name: str

    def __init__(
        self,
        base_url: str,
        credentials: Credentials,
        http: HttpConfig,
        *,
        account: str,
        transport: httpx.BaseTransport | None = None,
        max_connections: int = 16,
    ):
        self.name = account
        self.http = http
        self.origin = Origin.of(base_url)
        self.origins = OriginPolicy(
            self.origin, frozenset(Origin.of(o) for o in http.allowed_download_origins)
        )
        self._base = base_url.rstrip("/")
        password = credentials.password.reveal()
        token = f"{credentials.username}:{password}".encode()
        encoded = base64.b64encode(token).decode("ascii")
        self._authorization = "Basic " + encoded
        # A server may echo the header's value alone: mask that too.
        secrets = [password, self._authorization, encoded]
        if http.proxy_password is not None:
            secrets.append(http.proxy_password.reveal())
        self._redactor = Redactor(secrets)
        self._http = http_client(
            http, account=account, transport=transport, max_connections=max_connections
        )
        self._deadlines = Deadlines()  # every download's time budget, on one thread

    def __repr__(self) -> str:
        return f"{type(self).__name__}(account={self.name!r}, origin={str(self.origin)!r})"

    def __enter__(self) -> SvarInnHttpClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # --- the four calls: list, download, and the two receipts -------------------------

    def listing(self) -> Listing:
        """Every new letter, each id once, in the order first seen, and every item that
        could not be read (each id or position once).

        SvarInn returns at most 200 letters per call, so call again while a full page
        brings ids not seen in this cycle, and stop as soon as one does not, after
        MAX_CYCLE_ITEMS items (the rest are listed again at the next poll), or when the
        account's ``http.listing_deadline`` has passed.
        """
        seen: dict[str, Forsendelse] = {}
        rejected: dict[str, RejectedItem] = {}
        deadline = time.monotonic() + self.http.listing_deadline.total_seconds()
        items = 0
        for call in range(1, MAX_PAGES + 1):
            page = self._list_page(deadline)
            new = 0
            for forsendelse in page.letters:
                if forsendelse.id not in seen:
                    seen[forsendelse.id] = forsendelse
                    new += 1
            for item in page.rejected:
                rejected.setdefault(item.forsendelse_id or f"{call}:{item.index}", item)
            size = len(page.letters) + len(page.rejected)
            items += size
            log.debug("svarinn.list.page", account=self.name, call=call, size=size, new=new)
            if size < PAGE_SIZE or new == 0:
                break
            if items >= MAX_CYCLE_ITEMS:
                log.warning("svarinn.list.limit", account=self.name, items=items, pages=call)
                break
        return Listing(tuple(seen.values()), tuple(rejected.values()))

    @contextmanager
    def download(self, forsendelse: Forsendelse) -> Iterator[Download]:
        """Open the letter's file as a stream: ``with client.download(f) as d: for c in d``."""
        check_forsendelse_id(forsendelse.id)
        action = f"GET {display_url(forsendelse.download_url)}"
        response = self._send("GET", forsendelse.download_url, action=action, download=True)
        try:
            yield Download(
                response,
                account=self.name,
                http=self.http,
                forsendelse_id=forsendelse.id,
                action=action,
                deadlines=self._deadlines,
            )
        finally:
            response.close()

    def acknowledge(self, forsendelse_id: str) -> None:
        """The letter is safely archived: SvarUt will not send it on."""
        raise NotImplementedError

    def report_failure(self, forsendelse_id: str, message: str, *, permanent: bool) -> None:
        """The import failed; ``permanent=True`` makes SvarUt deliver the letter through
        another channel."""
        raise NotImplementedError

    def _feil(self, message: str, permanent: bool) -> dict[str, Any]:
        """A failure report's body: the message with our secrets hidden, clipped."""
        text = self._redactor.scrub(message).strip() or "mottak feilet"
        return {"feilmelding": text[:MAX_FEILMELDING_CHARS], "permanent": bool(permanent)}

    # --- plumbing -----------------------------------------------------------------------

    def _parse_item(self, value: Any, index: int) -> Forsendelse | RejectedItem:
        """One decoded listing item of this API version."""
        raise NotImplementedError

    def _list_page(self, deadline: float) -> Listing:
        url = self._base + self.list_path
        action = f"GET {display_url(url)}"
        what = f"account {self.name}: {action}"
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise self._listing_too_slow(what)
        response = self._send("GET", url, action=action, deadline=deadline)
        try:
            data = bytearray()
            for chunk in response.iter_bytes():
                data += chunk
                if len(data) > MAX_LIST_BYTES:
                    raise ProtocolError(f"{what}: response larger than {MAX_LIST_BYTES} bytes")
                if time.monotonic() > deadline:
                    raise self._listing_too_slow(what)
        except httpx.HTTPError as exc:
            if time.monotonic() > deadline:
                raise self._listing_too_slow(what) from None
            raise error_for_transport(exc, account=self.name, action=action) from None
        finally:
            response.close()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ProtocolError(
                f"{what}: the response is not UTF-8 JSON ({exc})",
                body_start=body_start(bytes(data[:BODY_START_BYTES]), self._redactor.secrets),
            ) from None
        del data
        return self._parse_page(text, what)

    def _listing_too_slow(self, what: str) -> ServiceUnavailableError:
        limit = self.http.listing_deadline.total_seconds()
        return ServiceUnavailableError(
            f"{what}: the listing took longer than http.listing_deadline ({limit:g}s)"
        )

    def _parse_page(self, text: str, what: str) -> Listing:
        """The page's letters and rejected items, decoded one item at a time."""
        letters: list[Forsendelse] = []
        rejected: list[RejectedItem] = []
        try:
            for item in iter_items(text, max_items=MAX_PAGE_ITEMS):
                where = f"{self.listing_name}[{item.index}]"
                if item.problem is not None:
                    error = ProtocolError(f"{where}: {item.problem}")
                    rejected.append(rejected_item(item.value, index=item.index, error=error))
                    continue
                parsed = self._parse_item(item.value, item.index)
                if isinstance(parsed, Forsendelse):
                    letters.append(parsed)
                else:
                    rejected.append(parsed)
        except TooManyItems as exc:
            raise ProtocolError(
                f"{what}: the page has {exc}; SvarInn sends at most {PAGE_SIZE}"
            ) from None
        except NotAList as exc:
            raise ProtocolError(f"{self.listing_name}: {exc}") from None
        except json.JSONDecodeError as exc:
            raise ProtocolError(
                f"{what}: the response is not JSON ({exc})",
                body_start=body_start(text[:BODY_START_BYTES].encode(), self._redactor.secrets),
            ) from None
        return Listing(tuple(letters), tuple(rejected))

    def _call(
        self,
        method: str,
        url: str,
        *,
        content: bytes | None = None,
        json_body: Any = None,
        letter: bool = False,
    ) -> None:
        """A call whose answer is only its status (receipts); the body is read and dropped.
        ``letter``: the URL names one letter, so 404 means it is gone."""
        action = f"{method} {display_url(url)}"
        response = self._send(
            method, url, action=action, content=content, json_body=json_body, letter=letter
        )
        try:
            for _ in response.iter_raw():
                if response.num_bytes_downloaded > MAX_LIST_BYTES:
                    break
        except httpx.HTTPError as exc:
            raise error_for_transport(exc, account=self.name, action=action) from None
        finally:
            response.close()

    def _send(
        self,
        method: str,
        url: str,
        *,
        action: str,
        download: bool = False,
        content: bytes | None = None,
        json_body: Any = None,
        deadline: float | None = None,
        letter: bool = False,
    ) -> httpx.Response:
        """Send with our redirect handling; return an open 2xx response or raise. With a
        ``deadline`` (monotonic), no single wait lasts past it; ``letter``: see _call."""
        target = httpx.URL(url)
        for _hop in range(MAX_REDIRECTS + 1):
            home = self.origins.credentials_for(target, download=download, account=self.name)
            headers = {"Authorization": self._authorization} if home else {}
            if download:
                headers["Accept-Encoding"] = "identity"
            try:
                request = self._http.build_request(
                    method,
                    target,
                    headers=headers,
                    content=content,
                    json=json_body,
                    timeout=self._timeout_until(deadline),
                )
                response = self._http.send(request, stream=True)
            except httpx.HTTPError as exc:
                raise error_for_transport(exc, account=self.name, action=action) from None
            except httpx.InvalidURL as exc:  # httpx parses a redirect's Location itself
                raise ProtocolError(
                    f"account {self.name}: {action}: the response's redirect Location "
                    f"is not a valid URL ({exc})"
                ) from None
            if response.status_code in _REDIRECTS and "Location" in response.headers:
                location = response.headers["Location"]
                response.close()
                if method != "GET" and response.status_code not in (307, 308):
                    raise ProtocolError(
                        f"account {self.name}: {action}: answered with redirect "
                        f"{response.status_code}, which would turn the {method} into a GET"
                    )
                target = redirect_target(target, location, where=f"account {self.name}: {action}")
                continue
            if response.is_success:
                return response
            raise self._status_error(response, action=action, download=download or letter)
        raise ProtocolError(f"account {self.name}: {action}: more than 5 redirects")

    def _timeout_until(self, deadline: float | None) -> Any:
        """The client's timeouts, none longer than what is left until ``deadline``."""
        if deadline is None:
            return httpx.USE_CLIENT_DEFAULT  # (None would mean: no timeout at all)
        left = max(deadline - time.monotonic(), 0.001)
        http = self.http
        return httpx.Timeout(
            connect=min(http.connect_timeout.total_seconds(), left),
            read=min(http.read_timeout.total_seconds(), left),
            write=min(http.write_timeout.total_seconds(), left),
            pool=min(http.pool_timeout.total_seconds(), left),
        )

    def _status_error(self, response: httpx.Response, *, action: str, download: bool) -> Exception:
        data = b""
        try:
            for chunk in response.iter_raw():
                data += chunk
                if len(data) >= BODY_START_BYTES:
                    break
        except httpx.HTTPError:
            pass  # the status is what matters; a body that breaks off is no extra news
        finally:
            response.close()
        return error_for_status(
            response,
            account=self.name,
            action=action,
            body=body_start(data, self._redactor.secrets),
            download=download,
        )


def path_id(forsendelse_id: str) -> str:
    """A forsendelse id, checked, as one URL path segment."""
    return quote(check_forsendelse_id(forsendelse_id), safe="")
