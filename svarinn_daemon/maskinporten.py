"""Maskinporten access tokens by JWT grant (RFC 7523), signed RS256 with the business
certificate's key by PyJWT (the library everyone audits; we only choose the claims).

The grant is a JWT whose header carries the certificate chain (``x5c``) or a registered key
id (``kid``) and whose claims are ``aud`` (the issuer), ``iss`` (the client id), ``scope``,
``iat``, ``exp`` (at most 120 s later) and a fresh ``jti``. Maskinporten answers with an
access token and ``expires_in``; :class:`TokenSource` keeps it until shortly before then.
"""

from __future__ import annotations

import base64
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from svarinn_daemon.errors import DaemonError
from svarinn_daemon.logs import get_logger

__all__ = [
    "GRANT_TYPE",
    "ISSUERS",
    "MAX_GRANT_LIFETIME",
    "MaskinportenClient",
    "TokenSource",
    "build_grant",
]

# Builds the caller's own error from (message, temporary, HTTP status): a notifier's
# NotifierError, an adapter's ArchiveError.
Failure = Callable[[str, bool, int | None], DaemonError]

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ISSUERS = {"production": "https://maskinporten.no/", "test": "https://test.maskinporten.no/"}
MAX_GRANT_LIFETIME = 120
# A token is renewed this many seconds before Maskinporten says it expires.
EXPIRY_MARGIN = 30.0


def build_grant(
    key: rsa.RSAPrivateKey,
    *,
    issuer: str,
    client_id: str,
    scope: str,
    now: float,
    chain: Sequence[x509.Certificate] = (),
    kid: str | None = None,
    lifetime: int = MAX_GRANT_LIFETIME,
) -> str:
    """The signed JWT for one token request (compact serialisation)."""
    # PyJWT adds "alg" and "typ"; we add the key's identification.
    headers: dict[str, Any] = {}
    if chain:
        # x5c is plain base64 of each DER certificate, leaf first (RFC 7515 4.1.6).
        headers["x5c"] = [
            base64.b64encode(c.public_bytes(serialization.Encoding.DER)).decode("ascii")
            for c in chain
        ]
    elif kid:
        headers["kid"] = kid
    iat = int(now)
    claims = {
        "aud": issuer,
        "iss": client_id,
        "scope": scope,
        "iat": iat,
        "exp": iat + min(lifetime, MAX_GRANT_LIFETIME),
        "jti": str(uuid.uuid4()),
    }
    try:
        return jwt.encode(claims, key, algorithm="RS256", headers=headers)
    except jwt.PyJWTError as exc:  # the library's error becomes ours at the boundary
        raise ValueError(f"cannot sign the JWT grant ({type(exc).__name__})") from None


@dataclass
class MaskinportenClient:
    """Who we are to Maskinporten. ``issuer`` ends with "/" (the token URL is issuer+"token")."""

    issuer: str
    client_id: str
    scope: str
    key: rsa.RSAPrivateKey = field(repr=False)
    chain: tuple[x509.Certificate, ...] = field(default=(), repr=False)
    kid: str | None = None

    @property
    def token_url(self) -> str:
        return f"{self.issuer}token"


class TokenSource:
    """Fetches and caches one access token; thread-safe. The token never appears in repr.
    ``who`` names the user (a notifier, an archive) in errors and logs; ``fail`` builds the
    user's own error."""

    def __init__(
        self,
        client: MaskinportenClient,
        http: httpx.Client,
        *,
        clock: Callable[[], float],
        fail: Failure,
        who: str = "",
    ):
        self.client = client
        self._http = http
        self._clock = clock
        self._who = who
        self._build_error = fail
        self._token: str | None = None
        self._valid_until = 0.0
        self._lock = threading.Lock()
        self._log = get_logger("svarinn_daemon.maskinporten")
        self.fetched = 0

    def __repr__(self) -> str:
        return f"TokenSource(client_id={self.client.client_id!r}, token=***)"

    def token(self) -> str:
        with self._lock:
            if self._token is None or self._clock() >= self._valid_until:
                self._token, self._valid_until = self._fetch()
            return self._token

    def invalidate(self) -> None:
        """Forget the token (the API refused it): the next call fetches a new one."""
        with self._lock:
            self._token = None

    def _fail(self, message: str, *, temporary: bool, status: int | None = None) -> DaemonError:
        return self._build_error(
            f"{self._who or 'maskinporten'}: Maskinporten token request {message}",
            temporary,
            status,
        )

    def _fetch(self) -> tuple[str, float]:
        now = self._clock()
        c = self.client
        try:
            grant = build_grant(
                c.key,
                issuer=c.issuer,
                client_id=c.client_id,
                scope=c.scope,
                now=now,
                chain=c.chain,
                kid=c.kid,
            )
        except ValueError as exc:
            raise self._fail(str(exc), temporary=False) from None
        try:
            response = self._http.post(
                c.token_url,
                data={"grant_type": GRANT_TYPE, "assertion": grant},
                headers={"Accept": "application/json"},
            )
        except httpx.TimeoutException:
            raise self._fail("timed out", temporary=True) from None
        except httpx.HTTPError as exc:
            raise self._fail(f"failed ({type(exc).__name__})", temporary=True) from None
        status = response.status_code
        try:
            body = response.json()
        except ValueError:
            body = None
        if status != 200:
            error = body.get("error") if isinstance(body, dict) else None
            described = body.get("error_description") if isinstance(body, dict) else None
            detail = f": {error}" if error else ""
            detail += f" ({str(described)[:200]})" if described else ""
            self._log.warning("maskinporten.refused", who=self._who, status=status, error=error)
            raise self._fail(
                f"was refused with HTTP {status}{detail}",
                temporary=status >= 500 or status == 429,
                status=status,
            )
        token = body.get("access_token") if isinstance(body, dict) else None
        expires_in = body.get("expires_in") if isinstance(body, dict) else None
        if (
            not isinstance(token, str)
            or not token
            or isinstance(expires_in, bool)
            or not isinstance(expires_in, int | float)
        ):
            raise self._fail("returned no access_token/expires_in", temporary=True, status=status)
        self.fetched += 1
        self._log.info("maskinporten.token", who=self._who, expires_in=expires_in)
        return token, now + max(float(expires_in) - EXPIRY_MARGIN, 0.0)
