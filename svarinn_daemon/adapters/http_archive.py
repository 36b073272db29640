"""The built-in ``http`` archive: each letter is POSTed to the sakssystem's endpoint.

``POST url`` as ``multipart/form-data``: a part ``metadata`` (``application/json``, the
letter's ``forsendelse.json``) and one part ``file`` per document with its file name and MIME
type, streamed from the letter's work directory (constant memory, whatever the size), with
``Idempotency-Key: <forsendelse id>``. The documents are gathered first because a transaction
hands them over one at a time, and the record needs the verification known only at commit.

Answers: 200/201/202 archived (the reference is the JSON body's ``reference``, else the
``Location`` header); 409 the endpoint has it already, success as well. 408, 425, 429, 5xx,
timeouts and broken connections are temporary, honouring ``Retry-After``; so are 401, 403 and
407 (credentials an operator fixes) and a redirect, which is never followed. Any other 4xx is
permanent, with the start of the body. ``status_url`` (GET, optional) answers ``has()``: only a
200 with a JSON object carrying a non-empty ``reference`` is "archived", 404 "not", anything
else (a bare 200 included) temporary. The Authorization value is a secret: it is never
logged or part of an error. TLS is always verified (``ca_bundle`` for a private CA).
"""

from __future__ import annotations

import contextlib
import json
import ssl
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from svarinn_daemon.adapters import http_options
from svarinn_daemon.adapters.base import AdapterContext, LetterOrigin
from svarinn_daemon.adapters.deadline import Deadline
from svarinn_daemon.adapters.options import AdapterOptions
from svarinn_daemon.adapters.staged import StagedArchive
from svarinn_daemon.adapters.staging import METADATA_FILE, StagedLetter
from svarinn_daemon.common import (
    OCTET_STREAM,
    Clock,
    media_type,
    utc_now,
)
from svarinn_daemon.config.secrets import Secret
from svarinn_daemon.errors import ArchiveError
from svarinn_daemon.logs import Redactor, get_logger

__all__ = ["HttpArchive", "create_adapter", "retry_after_seconds"]

# A whole request (connection, upload, status line, headers, body) may take this many times
# ``timeout``, which bounds each socket operation: a server sending or taking a byte now and
# then cannot hold a worker (adapters/deadline.py).
DEADLINE_FACTOR = 2
DEFAULT_TIMEOUT = timedelta(minutes=5)
BODY_CAP = 64 * 1024  # what is read of a response body
MAX_MESSAGE = 500
MAX_REFERENCE = 500
MAX_RETRY_AFTER = 24 * 3600.0
SUCCESS = frozenset({200, 201, 202})
TEMPORARY = frozenset({401, 403, 407, 408, 425, 429})

log = get_logger(__name__)


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds (delta-seconds or an HTTP date), at most a day."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return min(float(text), MAX_RETRY_AFTER)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


class HttpArchive(StagedArchive):
    """Archive letters by POSTing them to ``url``; see the module docstring."""

    def __init__(
        self,
        url: str,
        *,
        work_directory: Path,
        status_url: str | None = None,
        authorization: Secret | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: timedelta = DEFAULT_TIMEOUT,
        tls: ssl.SSLContext | None = None,
        owner: str | None = None,
        secrets: Sequence[str] = (),
        secret_headers: Mapping[str, Secret] | None = None,
        now: Clock = utc_now,
    ):
        super().__init__(work_directory, timeout=timeout, owner=owner, now=now)
        self.url = url
        self.status_url = status_url
        self.lookup = "status_url" if status_url is not None else None
        self._authorization = authorization
        self._redactor = Redactor(secrets)
        self._headers = {"User-Agent": "svarinn-daemon", **(headers or {})}
        self._secret_headers = dict(secret_headers or {})
        self._client = httpx.Client(
            timeout=timeout.total_seconds(),
            follow_redirects=False,
            trust_env=False,
            verify=tls if tls is not None else ssl.create_default_context(),
        )
        self._deadline = Deadline()
        self._deadline.install(self._client)

    def __repr__(self) -> str:
        return f"HttpArchive(url={self.url!r})"

    def warnings(self) -> list[str]:
        """What ``check-config`` should tell the operator about this archive."""
        out = [
            f"headers: {name} looks like a secret, and headers are printed: put it in "
            "secret_headers_file"
            for name in self._headers
            if http_options.SECRET_LOOKING.search(name)
        ]
        if self.status_url is None:
            out.append(
                "http has no status_url: after a crash, a timeout or a restored ledger the "
                "daemon cannot ask whether the endpoint has a letter, and posts it again; the "
                "endpoint must answer a repeated Idempotency-Key with 409 (or set status_url)"
            )
        return out

    def headers(self, forsendelse_id: str) -> dict[str, str]:
        headers = {**self._headers, "Idempotency-Key": forsendelse_id}
        headers.update((name, secret.reveal()) for name, secret in self._secret_headers.items())
        if self._authorization is not None:
            headers["Authorization"] = self._authorization.reveal()
        return headers

    def has_from(self, origin: LetterOrigin | None, forsendelse_id: str) -> str | None:
        """Ask ``status_url``; without one the daemon cannot know (None)."""
        if self.status_url is None:
            return None
        url = self.status_url.replace("{forsendelse_id}", quote(forsendelse_id, safe=""))
        status, headers, body = self._exchange("GET", url, forsendelse_id)
        if status == 200:
            reference = _json_reference(body)
            if reference is not None:
                return reference
            # A catch-all front end, or {"found": false}: not a definite "archived".
            raise ArchiveError(
                f"status_url answered 200 for {forsendelse_id} without a JSON object carrying "
                'a non-empty "reference": only that means "archived" (404 means not); check '
                f"status_url{self._detail(body)}",
                temporary=True,
            )
        if status == 404:
            return None
        raise ArchiveError(
            f"status_url answered HTTP {status} for {forsendelse_id}{self._detail(body)}",
            temporary=True,
            retry_after=retry_after_seconds(headers.get("retry-after")),
        )

    def secret_values(self) -> list[str]:
        """What the log redactor must hide: the Authorization value, its credential part
        and the basic password (an endpoint may echo any of them)."""
        return list(self._redactor.secrets)

    def _detail(self, body: bytes) -> str:
        """The start of an answer's body, for an error, with our secrets hidden: the error
        goes to the log and to the ledger."""
        return _detail(body, self._redactor)

    def deliver(self, origin: LetterOrigin | None, staged: StagedLetter) -> str:
        """POST the staged letter (its forsendelse.json written) and read the answer."""
        staged.check_in_place()
        forsendelse_id = staged.forsendelse_id
        with contextlib.ExitStack() as files:
            parts: list[tuple[str, Any]] = [
                (
                    "metadata",
                    (
                        None,
                        files.enter_context(staged.open_file(METADATA_FILE)),
                        "application/json",
                    ),
                ),
            ]
            for stored, mimetype in staged.files:
                stream = files.enter_context(staged.open_file(stored))
                # Checked again here: no sender's value writes a header of its own.
                parts.append(("file", (stored, stream, media_type(mimetype) or OCTET_STREAM)))
            status, headers, body = self._exchange("POST", self.url, forsendelse_id, files=parts)
        if status in SUCCESS or status == 409:
            reference = _reference(body, headers)
            if reference is None:
                log.warning("archive.http_without_reference", forsendelse_id=forsendelse_id)
            return reference or forsendelse_id
        retry_after = retry_after_seconds(headers.get("retry-after"))
        if 300 <= status < 400:
            raise ArchiveError(
                f"{self.url} answered HTTP {status} (a redirect to "
                f"{headers.get('location', 'nowhere')!r}, not followed): set url to the "
                "endpoint itself",
                temporary=True,
            )
        if status in TEMPORARY or status >= 500:
            raise ArchiveError(
                f"{self.url} answered HTTP {status} for {forsendelse_id}{self._detail(body)}",
                temporary=True,
                retry_after=retry_after,
            )
        raise ArchiveError(
            f"{self.url} refused {forsendelse_id} with HTTP {status}{self._detail(body)}",
            temporary=False,
        )

    def _exchange(
        self, method: str, url: str, forsendelse_id: str, **kwargs: Any
    ) -> tuple[int, httpx.Headers, bytes]:
        """One request; the status, headers and the first ``BODY_CAP`` bytes of the body.
        Transport failures become temporary ArchiveErrors that name neither header nor secret."""
        whole = self.timeout.total_seconds() * DEADLINE_FACTOR
        try:
            with (
                self._deadline.within(whole),
                self._client.stream(
                    method, url, headers=self.headers(forsendelse_id), **kwargs
                ) as response,
            ):
                body = bytearray()
                for chunk in response.iter_raw():
                    body += chunk
                    if len(body) >= BODY_CAP:
                        break
                return response.status_code, response.headers, bytes(body[:BODY_CAP])
        except httpx.TimeoutException as exc:
            raise ArchiveError(
                f"{method} {url} for {forsendelse_id} timed out ({type(exc).__name__})",
                temporary=True,
            ) from None
        except httpx.HTTPError as exc:
            cause = _tls_failure(exc)
            if cause is not None:
                what = f"TLS verification failed: {cause.verify_message}"
            else:
                what = f"{type(exc).__name__}: {self._redactor.scrub(_one_line(str(exc)))}"
            raise ArchiveError(
                f"{method} {url} for {forsendelse_id} failed: {what}", temporary=True
            ) from None
        except OSError as exc:
            raise ArchiveError(
                f"cannot read the letter {forsendelse_id} to send it: {exc.strerror or exc}",
                temporary=True,
            ) from None

    def close(self) -> None:
        self._client.close()


def _json_reference(body: bytes) -> str | None:
    """The non-empty ``reference`` of a JSON object body, else None."""
    with contextlib.suppress(ValueError, UnicodeDecodeError):
        document = json.loads(body)
        if isinstance(document, dict):
            reference = document.get("reference")
            if isinstance(reference, str | int) and str(reference).strip():
                return str(reference).strip()[:MAX_REFERENCE]
    return None


def _reference(body: bytes, headers: httpx.Headers) -> str | None:
    location = headers.get("location")
    return _json_reference(body) or (location[:MAX_REFERENCE] if location else None)


def _tls_failure(exc: BaseException) -> ssl.SSLCertVerificationError | None:
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            return None
        if isinstance(seen, ssl.SSLCertVerificationError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _detail(body: bytes, redactor: Redactor) -> str:
    text = redactor.scrub(_one_line(body.decode("utf-8", errors="replace")))[:MAX_MESSAGE]
    return f": {text}" if text else ""


def create_adapter(options: Mapping[str, Any], context: AdapterContext) -> HttpArchive:
    """Entry point ``http``: ``url``, ``status_url``, ``authorization_*`` or ``username`` +
    ``password_*``, ``headers``, ``timeout``, ``ca_bundle``, ``client_certificate_file`` +
    ``client_key_file``, ``work_directory``."""
    reader = AdapterOptions(options, context)
    url = reader.string("url", "")
    if not url:
        raise context.option_error("url", "is required: the endpoint letters are POSTed to")
    http_options.check_url(reader, "url", url)
    status_url = reader.string("status_url", "") or None
    if status_url is not None:
        http_options.check_url(reader, "status_url", status_url)
        if "{forsendelse_id}" not in status_url:
            raise context.option_error("status_url", "must contain {forsendelse_id}")
    authorization, password = http_options.authorization(reader)
    headers = reader.string_table("headers")
    secret_headers = http_options.secret_headers(reader)
    http_options.check_headers(context, "headers", headers)
    http_options.check_headers(
        context, "secret_headers_file", {k: v.reveal() for k, v in secret_headers.items()}
    )
    timeout = reader.duration("timeout", DEFAULT_TIMEOUT)
    tls = http_options.tls_context(reader)
    work = reader.work_directory()
    reader.finish()
    return HttpArchive(
        url,
        work_directory=work,
        status_url=status_url,
        authorization=authorization,
        headers=headers,
        timeout=timeout,
        tls=tls,
        owner=context.worker_id,
        secrets=[*http_options.secret_strings(authorization, password)]
        + [s.reveal() for s in secret_headers.values()],
        secret_headers=secret_headers,
    )
