"""HTTP outcomes -> the daemon's error tree. Pure functions; the client does the I/O.

401/403 stop the account's cycle, 404 on a download means the letter is gone, 408/429/5xx
and broken connections are temporary (with ``Retry-After`` when the server sends one), and
anything else undocumented is a protocol error. Each error keeps the start of the response
body, with the account's password and any credentials scrubbed out.
"""

from __future__ import annotations

import email.utils
import ssl
from collections.abc import Iterable
from datetime import UTC, datetime

import httpx

from svarinn_daemon.errors import (
    AuthenticationError,
    ForsendelseGoneError,
    ProtocolError,
    ServiceUnavailableError,
    SvarInnError,
    TlsVerificationError,
)
from svarinn_daemon.logs import Redactor

__all__ = [
    "BODY_START_CHARS",
    "body_start",
    "error_for_status",
    "error_for_transport",
    "parse_retry_after",
]

BODY_START_CHARS = 500
BODY_START_BYTES = BODY_START_CHARS * 4  # what is read of an error body: UTF-8 takes up to 4
# Longest wait we accept from Retry-After; a server asking for a week is misconfigured.
MAX_RETRY_AFTER = 6 * 3600.0


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Retry-After as seconds to wait: delta-seconds or an HTTP-date (RFC 9110 10.2.3)."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if text.isdigit():
        return min(float(text), MAX_RETRY_AFTER)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    delta = (when - (now or datetime.now(UTC))).total_seconds()
    return min(max(delta, 0.0), MAX_RETRY_AFTER)


def body_start(data: bytes, secrets: Iterable[str] = ()) -> str:
    """The first ~500 characters of an error body, credentials removed."""
    text = data[:BODY_START_BYTES].decode("utf-8", "replace")[:BODY_START_CHARS]
    text = "".join(ch if ch.isprintable() or ch in "\n\t" else " " for ch in text)
    return Redactor(secrets).scrub(text).strip()


def error_for_status(
    response: httpx.Response,
    *,
    account: str,
    action: str,
    body: str,
    download: bool = False,
    now: datetime | None = None,
) -> SvarInnError:
    """The error for a non-2xx response to ``action`` (e.g. "GET .../hentNyeForsendelser")."""
    status = response.status_code
    reason = response.reason_phrase or ""
    what = f"account {account}: {action} -> {status} {reason}".rstrip()
    detail = f": {body[:200]}" if body else ""
    if status in (401, 403):
        return AuthenticationError(
            f"{what}: SvarInn refused the account's credentials; check username and password "
            f"for account {account!r}{detail}",
            status_code=status,
            body_start=body,
        )
    if status in (404, 410):
        if download or "/forsendelse/" in action:
            return ForsendelseGoneError(
                f"{what}: the forsendelse no longer exists{detail}",
                status_code=status,
                body_start=body,
            )
        return ProtocolError(
            f"{what}: unknown URL; is base_url right?{detail}", status_code=status, body_start=body
        )
    if status in (408, 429) or status >= 500:
        retry_after = parse_retry_after(response.headers.get("Retry-After"), now=now)
        hint = f" (Retry-After {retry_after:.0f}s)" if retry_after is not None else ""
        return ServiceUnavailableError(
            f"{what}{hint}{detail}",
            status_code=status,
            body_start=body,
            retry_after=retry_after,
        )
    return ProtocolError(
        f"{what}: a status the SvarInn API does not document{detail}",
        status_code=status,
        body_start=body,
    )


def error_for_transport(exc: httpx.HTTPError, *, account: str, action: str) -> SvarInnError:
    """Timeouts, refused or reset connections and bodies that end early: all temporary."""
    what = f"account {account}: {action}"
    text = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.TimeoutException):
        return ServiceUnavailableError(f"{what}: timed out ({type(exc).__name__}: {text})")
    if isinstance(exc, httpx.RemoteProtocolError):
        return ServiceUnavailableError(f"{what}: the connection broke off ({text})")
    if isinstance(exc, httpx.NetworkError):
        if "CERTIFICATE_VERIFY_FAILED" in text or _cert_error(exc) is not None:
            return tls_verification_error(exc, what=what)
        return ServiceUnavailableError(f"{what}: connection failed ({type(exc).__name__}: {text})")
    if isinstance(exc, httpx.DecodingError):
        return ProtocolError(f"{what}: the response body does not decode ({text})")
    return ProtocolError(f"{what}: {type(exc).__name__}: {text}")


# OpenSSL's X509_V_ERR_* codes that an operator can act on, and what to tell them.
_TLS_REASONS = {
    10: ("expired", "the server's certificate has expired"),
    9: ("expired", "the server's certificate is not valid yet (check this host's clock)"),
    62: ("hostname", "the server's certificate is for another host name"),
    64: ("hostname", "the server's certificate is for another IP address"),
    2: ("untrusted", "the server's certificate is not signed by a CA we trust"),
    18: ("untrusted", "the server's certificate is self-signed and not trusted"),
    19: ("untrusted", "the server's certificate chain ends in a CA we do not trust"),
    20: ("untrusted", "the server's certificate is not signed by a CA we trust"),
    21: ("untrusted", "the server's certificate is not signed by a CA we trust"),
}


def _cert_error(exc: BaseException) -> ssl.SSLCertVerificationError | None:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, ssl.SSLCertVerificationError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def tls_verification_error(exc: BaseException, *, what: str) -> TlsVerificationError:
    """A failed TLS handshake, said the way an operator can act on it."""
    cause = _cert_error(exc)
    code = cause.verify_code if cause is not None else None
    reason, said = _TLS_REASONS.get(code or 0, ("other", "the server's certificate failed"))
    detail = (cause.verify_message if cause is not None else "") or str(exc)
    hint = (
        "set http.ca_bundle to the CA that signed it if the server uses a private CA"
        if reason == "untrusted"
        else "check base_url and the server's certificate"
    )
    return TlsVerificationError(
        f"{what}: TLS certificate verification failed: {said} ({detail}); nothing was sent. "
        f"{hint[0].upper()}{hint[1:]}",
        reason=reason,
    )
