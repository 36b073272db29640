"""A local Maskinporten and Fiks SMS API v2 over loopback, strict like the real ones.

Maskinporten (``{base}/maskinporten/token``) checks the JWT grant: RS256 signature against
the configured business certificate (by x5c, or by kid), ``aud`` = its issuer URL, ``iss``
= the client id, a scope the client has, ``iat``/``exp`` within 120 s around its clock and
a ``jti`` never seen before. Fiks SMS (``{base}/varsling/api/v2/sms/{kontoId}/send`` and
``/sendBatch``) checks the Bearer token, IntegrasjonId and IntegrasjonPassord and answers
401/403 with an ``errorId`` like the real API.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.support.loopback import LoopbackServer

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Sms:
    operation: str
    konto_id: str
    body: dict[str, Any]


@dataclass
class FiksState:
    """What the fake knows and what it saw. ``clock`` is shared with the client in tests."""

    certificate: x509.Certificate
    client_id: str = "client-1"
    scopes: tuple[str, ...] = ("ks:fiks",)
    kids: dict[str, rsa.RSAPublicKey] = field(default_factory=dict)
    konto_id: str = "11111111-2222-3333-4444-555555555555"
    integrasjon_id: str = "integrasjon-1"
    integrasjon_passord: str = "Integrasjon-Passord-42"
    expires_in: int = 120
    clock: Callable[[], float] = time.time
    issuer: str = ""
    tokens: dict[str, float] = field(default_factory=dict)
    jtis: set[str] = field(default_factory=set)
    grants: list[dict[str, Any]] = field(default_factory=list)
    grant_headers: list[dict[str, Any]] = field(default_factory=list)
    sms: list[Sms] = field(default_factory=list)
    errors: list[tuple[int, str]] = field(default_factory=list)
    fail_sms: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Refused(Exception):
    def __init__(self, status: int, body: dict[str, Any]):
        self.status = status
        self.body = body


def _grant_error(description: str) -> _Refused:
    return _Refused(400, {"error": "invalid_grant", "error_description": description})


def check_grant(state: FiksState, assertion: str) -> dict[str, Any]:
    """Verify a JWT grant like Maskinporten; return its claims or raise _Refused."""
    parts = assertion.split(".")
    if len(parts) != 3:
        raise _grant_error("assertion is not a JWS compact serialisation")
    try:
        header = json.loads(_b64url_decode(parts[0]))
        claims = json.loads(_b64url_decode(parts[1]))
        signature = _b64url_decode(parts[2])
    except ValueError:
        raise _grant_error("assertion is not valid base64url JSON") from None
    state.grant_headers.append(header)
    if header.get("alg") != "RS256":
        raise _grant_error(f"alg {header.get('alg')!r} not allowed")
    if "x5c" in header:
        leaf = x509.load_der_x509_certificate(base64.b64decode(header["x5c"][0]))
        if leaf != state.certificate:
            raise _grant_error("certificate in x5c is not the client's business certificate")
        public_key = leaf.public_key()
    elif header.get("kid") in state.kids:
        public_key = state.kids[header["kid"]]
    else:
        raise _grant_error("no x5c and no known kid")
    assert isinstance(public_key, rsa.RSAPublicKey)
    try:
        public_key.verify(
            signature, f"{parts[0]}.{parts[1]}".encode(), padding.PKCS1v15(), hashes.SHA256()
        )
    except InvalidSignature:
        raise _grant_error("invalid signature") from None
    now = state.clock()
    if claims.get("aud") != state.issuer:
        raise _grant_error(f"invalid audience {claims.get('aud')!r}")
    if claims.get("iss") != state.client_id:
        raise _Refused(401, {"error": "invalid_client", "error_description": "unknown client"})
    if claims.get("scope") not in state.scopes:
        raise _Refused(400, {"error": "invalid_scope", "error_description": "scope not allowed"})
    iat, exp = claims.get("iat"), claims.get("exp")
    if not isinstance(iat, int) or not isinstance(exp, int):
        raise _grant_error("iat and exp must be numbers")
    if exp - iat > 120 or exp <= iat:
        raise _grant_error("exp must be at most 120 seconds after iat")
    if not iat - 10 <= now < exp:
        raise _grant_error("the grant is not valid now (iat/exp)")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti or jti in state.jtis:
        raise _grant_error("jti missing or already used")
    state.jtis.add(jti)
    state.grants.append(claims)
    return dict(claims)


class _Handler(BaseHTTPRequestHandler):
    server: FakeFiksServer

    def log_message(self, format: str, *args: Any) -> None:
        return None

    def _reply(self, status: int, body: dict[str, Any] | None) -> None:
        data = json.dumps(body).encode() if body is not None else b""
        self.send_response(status)
        if data:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _fiks_error(self, status: int, message: str) -> _Refused:
        error_id = str(uuid.uuid4())
        self.server.state.errors.append((status, error_id))
        error = {401: "Unauthorized", 403: "Forbidden", 400: "Bad Request"}.get(status, "Error")
        return _Refused(
            status,
            {
                "timestamp": int(time.time() * 1000),
                "status": status,
                "error": error,
                "errorId": error_id,
                "path": self.path,
                "originalPath": self.path,
                "message": message,
                "errorCode": None,
                "errorJson": None,
            },
        )

    def do_POST(self) -> None:
        state = self.server.state
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        try:
            with state.lock:
                if self.path == "/maskinporten/token":
                    self._reply(200, self._token(state, raw))
                elif self.path.startswith("/varsling/api/v2/sms/"):
                    status, body = self._sms(state, raw)
                    self._reply(status, body)
                else:
                    self._reply(404, {"error": "not found"})
        except _Refused as refused:
            self._reply(refused.status, refused.body)

    def _token(self, state: FiksState, raw: bytes) -> dict[str, Any]:
        if self.headers.get("Content-Type", "").split(";")[0] != (
            "application/x-www-form-urlencoded"
        ):
            raise _grant_error("the token request must be form-encoded")
        form = parse_qs(raw.decode())
        if form.get("grant_type") != [GRANT_TYPE]:
            raise _Refused(400, {"error": "unsupported_grant_type"})
        claims = check_grant(state, form.get("assertion", [""])[0])
        token = f"mp-{uuid.uuid4()}"
        state.tokens[token] = state.clock() + state.expires_in
        return {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": state.expires_in,
            "scope": claims["scope"],
        }

    def _sms(self, state: FiksState, raw: bytes) -> tuple[int, dict[str, Any] | None]:
        parts = self.path.split("/")  # ['', varsling, api, v2, sms, konto, op]
        if len(parts) != 7 or parts[6] not in ("send", "sendBatch"):
            raise self._fiks_error(404, "unknown operation")
        konto_id, operation = parts[5], parts[6]
        auth = self.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else ""
        if token not in state.tokens or state.tokens[token] <= state.clock():
            raise self._fiks_error(401, "Ugyldig eller utløpt token")
        if (
            self.headers.get("IntegrasjonId") != state.integrasjon_id
            or self.headers.get("IntegrasjonPassord") != state.integrasjon_passord
        ):
            raise self._fiks_error(403, "Integrasjonen har ikke tilgang")
        if konto_id != state.konto_id:
            raise self._fiks_error(403, "Integrasjonen har ikke tilgang til kontoen")
        if state.fail_sms:
            status = state.fail_sms.pop(0)
            raise self._fiks_error(status, "simulated failure")
        body = json.loads(raw)
        if not isinstance(body.get("tekst"), str) or not body["tekst"]:
            raise self._fiks_error(400, "tekst mangler")
        if operation == "send":
            if not isinstance(body.get("telefonnummer"), str):
                raise self._fiks_error(400, "telefonnummer mangler")
            state.sms.append(Sms(operation, konto_id, body))
            return 200, {"id": str(uuid.uuid4())}
        numbers = body.get("telefonnummere")
        if not isinstance(numbers, list) or not 1 <= len(numbers) <= 1000:
            raise self._fiks_error(400, "telefonnummere: 1 til 1000")
        state.sms.append(Sms(operation, konto_id, body))
        return 200, None


class FakeFiksServer(LoopbackServer):
    def __init__(self, state: FiksState):
        super().__init__(_Handler)
        self.state = state
        state.issuer = f"{self.base_url}/maskinporten/"
