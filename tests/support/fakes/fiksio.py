"""A local Fiks IO on loopback and a real RabbitMQ broker, strict like the real one.

- Maskinporten (``{base}/maskinporten/token``): the JWT grant checked as in
  :mod:`tests.support.fakes.fiks` (signature by the client's business certificate, audience,
  scope, lifetime, jti), tokens that expire after ``token_lifetime`` seconds.
- The send API (``POST {base}/fiks-io/api/v1/send``): the Bearer token, ``IntegrasjonId`` and
  ``IntegrasjonPassord`` checked; the multipart body's ``metadata`` part parsed and every
  field checked (the sender account must be the integration's, the receiver must exist, the
  message type and TTL present); the ``data`` part routed as is. Answers 202 with the message.
- The catalogue (``GET {base}/fiks-io/katalog/api/v1/kontoer/{id}/offentligNokkel``).
- RabbitMQ's HTTP auth backend (``{base}/auth/...``): an integration connects with its id as
  user and ``"<passord> <token>"`` as password, and may read only its own accounts' queues.
- Routing: each message is published, persistent, to ``fiksio.konto.<mottaker>`` with Fiks
  IO's headers.

Faults: ``lose`` (accepted, never delivered), ``duplicate`` (delivered twice), and
``refuse_logins`` (the next AMQP logins refused, as an expired or revoked token is).
"""

from __future__ import annotations

import base64
import contextlib
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs

import pika
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests.support.fakes.fiks import GRANT_TYPE, FiksState, _Refused, check_grant
from tests.support.loopback import LoopbackServer
from tests.support.rabbitmq import RabbitBroker

QUEUE_PREFIX = "fiksio.konto."
# Fiks IO's AMQP headers (ks-no/fiks-amqp RabbitMqHeaders; fiks-io-client-dotnet).
H_MELDING_ID = "melding-id"
H_AVSENDER = "avsender-id"
H_TYPE = "type"
H_SVAR_TIL = "svar-til"
H_KLIENTMELDING_ID = "klientmelding-id"
MAX_BODY = 64 * 1024 * 1024


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class Konto:
    konto_id: uuid.UUID
    integration_id: str
    certificate: x509.Certificate
    name: str = ""


@dataclass
class Integration:
    integration_id: str
    password: str
    client_id: str


@dataclass
class Routed:
    """One message Fiks IO took: what it said, and how often it went to the queue."""

    melding_id: uuid.UUID
    meldingtype: str
    avsender: uuid.UUID
    mottaker: uuid.UUID
    klientmelding_id: str | None
    svar_til: str | None
    size: int
    deliveries: int = 0
    metadata: dict[str, Any] = field(default_factory=dict)


class LocalFiksIo:
    """Start with :meth:`start` (the HTTP side and the broker), stop with :meth:`stop`."""

    def __init__(self, *, token_lifetime: int = 120):
        self.token_lifetime = token_lifetime
        self.lock = threading.RLock()
        self.clients: dict[str, FiksState] = {}
        self.tokens: dict[str, tuple[str, float]] = {}  # token -> (client id, expiry)
        self.integrations: dict[str, Integration] = {}
        self.kontoer: dict[uuid.UUID, Konto] = {}
        self.routed: list[Routed] = []
        self.refused: list[str] = []  # why each refused request or login was refused
        self.logins: list[str] = []  # integration ids that logged in over AMQP
        self.lose = 0
        self.duplicate = 0
        self.refuse_logins = 0
        self.internal_user = f"fiksio-{uuid.uuid4().hex[:8]}"
        self.internal_password = uuid.uuid4().hex
        self.server = _Server(self)
        self.broker: RabbitBroker | None = None
        self._publisher: pika.BlockingConnection | None = None
        # The publisher's own lock: the broker asks our auth endpoint (which takes ``lock``)
        # while a connection is being opened.
        self._publishing = threading.Lock()

    @property
    def base_url(self) -> str:
        return self.server.base_url

    @property
    def issuer(self) -> str:
        return f"{self.base_url}/maskinporten/"

    @property
    def amqp_url(self) -> str:
        assert self.broker is not None
        return self.broker.url

    @property
    def amqps_url(self) -> str:
        """Fiks IO's AMQP as production speaks it: TLS (the broker's throwaway CA)."""
        assert self.broker is not None
        return self.broker.tls_url

    def start(self) -> LocalFiksIo:
        self.server.__enter__()
        self.broker = RabbitBroker(f"{self.base_url}/auth")
        self.broker.start()
        return self

    def stop(self) -> None:
        with self._publishing:
            if self._publisher is not None and self._publisher.is_open:
                with contextlib.suppress(pika.exceptions.AMQPError):
                    self._publisher.close()
        if self.broker is not None:
            self.broker.stop()
        self.server.__exit__(None, None, None)

    # -- set-up, as an operator does in KS's portal ------------------------------------------

    def add_client(self, client_id: str, certificate: x509.Certificate) -> None:
        with self.lock:
            self.clients[client_id] = FiksState(
                certificate=certificate, client_id=client_id, issuer=self.issuer
            )

    def add_integration(self, integration_id: str, password: str, client_id: str) -> None:
        with self.lock:
            self.integrations[integration_id] = Integration(integration_id, password, client_id)

    def add_konto(self, konto: Konto) -> None:
        with self.lock:
            self.kontoer[konto.konto_id] = konto
        self._on_channel(
            lambda ch: ch.queue_declare(QUEUE_PREFIX + str(konto.konto_id), durable=True)
        )

    def issue_token(self, client_id: str) -> str:
        """A token as Maskinporten would give ``client_id`` (for the local archive)."""
        token = f"mp-{uuid.uuid4()}"
        with self.lock:
            self.tokens[token] = (client_id, time.time() + self.token_lifetime)
        return token

    # -- checks ------------------------------------------------------------------------------

    def _token_client(self, token: str) -> str | None:
        with self.lock:
            found = self.tokens.get(token)
        if found is None or found[1] <= time.time():
            return None
        return found[0]

    def check_login(self, username: str, password: str) -> bool:
        with self.lock:
            if username == self.internal_user:
                return password == self.internal_password
            if self.refuse_logins > 0:
                self.refuse_logins -= 1
                self.refused.append(f"amqp login of {username}: refused (injected)")
                return False
            integration = self.integrations.get(username)
        passord, _, token = password.rpartition(" ")
        ok = (
            integration is not None
            and passord == integration.password
            and self._token_client(token) == integration.client_id
        )
        with self.lock:
            if ok:
                self.logins.append(username)
            else:
                self.refused.append(f"amqp login of {username}: wrong password or token")
        return ok

    def may(self, username: str, resource: str, name: str, permission: str) -> bool:
        if username == self.internal_user:
            return True
        if resource != "queue" or permission != "read" or not name.startswith(QUEUE_PREFIX):
            return False
        try:
            konto = self.kontoer.get(uuid.UUID(name.removeprefix(QUEUE_PREFIX)))
        except ValueError:
            return False
        return konto is not None and konto.integration_id == username

    # -- routing -----------------------------------------------------------------------------

    def _on_channel(self, use: Any) -> None:
        """``use(channel)`` on the publisher's connection (opened again after a broker
        restart); one thread at a time, as a pika connection needs."""
        with self._publishing:
            self._use_channel(use)

    def _use_channel(self, use: Any) -> None:
        for attempt in range(5):
            try:
                if self._publisher is None or not self._publisher.is_open:
                    assert self.broker is not None
                    params = pika.URLParameters(self.broker.url)
                    params.credentials = pika.PlainCredentials(
                        self.internal_user, self.internal_password
                    )
                    self._publisher = pika.BlockingConnection(params)
                channel = self._publisher.channel()
                try:
                    use(channel)
                finally:
                    if channel.is_open:
                        channel.close()
                return
            except (pika.exceptions.AMQPError, OSError):
                self._publisher = None
                if attempt == 4:
                    raise
                time.sleep(0.5 * (attempt + 1))

    def route(
        self,
        avsender: uuid.UUID,
        mottaker: uuid.UUID,
        meldingtype: str,
        payload: bytes,
        *,
        klientmelding_id: str | None = None,
        svar_til: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Routed:
        """Take one message and deliver it to the receiver's queue (faults permitting)."""
        routed = Routed(
            melding_id=uuid.uuid4(),
            meldingtype=meldingtype,
            avsender=avsender,
            mottaker=mottaker,
            klientmelding_id=klientmelding_id,
            svar_til=svar_til,
            size=len(payload),
            metadata=metadata or {},
        )
        with self.lock:
            self.routed.append(routed)
            if self.lose > 0:
                self.lose -= 1
                return routed
            copies = 2 if self.duplicate > 0 else 1
            self.duplicate = max(self.duplicate - 1, 0)
        headers = {
            H_MELDING_ID: str(routed.melding_id),
            H_AVSENDER: str(avsender),
            H_TYPE: meldingtype,
        }
        if svar_til:
            headers[H_SVAR_TIL] = svar_til
        if klientmelding_id:
            headers[H_KLIENTMELDING_ID] = klientmelding_id
        for _ in range(copies):
            self._publish(QUEUE_PREFIX + str(mottaker), headers, payload)
            with self.lock:
                routed.deliveries += 1
        return routed

    def _publish(self, queue: str, headers: dict[str, str], payload: bytes) -> None:
        properties = pika.BasicProperties(headers=headers, delivery_mode=2)
        self._on_channel(lambda ch: ch.basic_publish("", queue, payload, properties))

    def messages_of(self, meldingtype: str) -> list[Routed]:
        with self.lock:
            return [r for r in self.routed if r.meldingtype == meldingtype]


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return None

    def _reply(self, status: int, body: Any, content_type: str = "application/json") -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise _Refused(413, {"message": "too large"})
        return self.rfile.read(length)

    def do_GET(self) -> None:
        fiksio = self.server.fiksio
        try:
            parts = self.path.split("/")
            # ['', fiks-io, katalog, api, v1, kontoer, id, offentligNokkel]
            if len(parts) != 8 or parts[1:6] != ["fiks-io", "katalog", "api", "v1", "kontoer"]:
                raise _Refused(404, {"message": "not found"})
            if parts[7] != "offentligNokkel":
                raise _Refused(404, {"message": "not found"})
            self._authorised()
            try:
                konto = fiksio.kontoer.get(uuid.UUID(parts[6]))
            except ValueError:
                konto = None
            if konto is None:
                raise _Refused(404, {"message": "Fant ikke konto"})
            pem = konto.certificate.public_bytes(serialization.Encoding.PEM).decode()
            self._reply(
                200,
                {
                    "nokkel": pem,
                    "serial": str(konto.certificate.serial_number),
                    "issuerDN": konto.certificate.issuer.rfc4514_string(),
                    "validFrom": konto.certificate.not_valid_before_utc.isoformat(),
                    "validTo": konto.certificate.not_valid_after_utc.isoformat(),
                },
            )
        except _Refused as refused:
            self._reply(refused.status, refused.body)

    def do_POST(self) -> None:
        fiksio = self.server.fiksio
        try:
            raw = self._body()
            if self.path == "/maskinporten/token":
                self._reply(200, self._token(raw))
            elif self.path.startswith("/auth/"):
                self._auth(self.path.removeprefix("/auth/"), raw)
            elif self.path == "/fiks-io/api/v1/send":
                integration = self._authorised()
                self._reply(202, self._send(fiksio, integration, raw))
            else:
                raise _Refused(404, {"message": "not found"})
        except _Refused as refused:
            with fiksio.lock:
                fiksio.refused.append(f"{self.path}: {refused.status} {refused.body}")
            self._reply(refused.status, refused.body)

    def _token(self, raw: bytes) -> dict[str, Any]:
        fiksio = self.server.fiksio
        form = parse_qs(raw.decode())
        if form.get("grant_type") != [GRANT_TYPE]:
            raise _Refused(400, {"error": "unsupported_grant_type"})
        assertion = form.get("assertion", [""])[0]
        try:
            claims = json.loads(base64.urlsafe_b64decode(assertion.split(".")[1] + "=="))
            state = fiksio.clients[claims["iss"]]
        except (IndexError, KeyError, ValueError):
            raise _Refused(401, {"error": "invalid_client"}) from None
        with fiksio.lock:
            check_grant(state, assertion)
        token = fiksio.issue_token(state.client_id)
        return {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": fiksio.token_lifetime,
            "scope": "ks:fiks",
        }

    def _auth(self, what: str, raw: bytes) -> None:
        fiksio = self.server.fiksio
        form = {k: v[0] for k, v in parse_qs(raw.decode(), keep_blank_values=True).items()}
        user = form.get("username", "")
        if what == "user":
            allowed = fiksio.check_login(user, form.get("password", ""))
        elif what == "vhost":
            allowed = user == fiksio.internal_user or user in fiksio.integrations
        elif what == "resource":
            allowed = fiksio.may(
                user, form.get("resource", ""), form.get("name", ""), form.get("permission", "")
            )
        else:
            allowed = user == fiksio.internal_user
        self._reply(200, b"allow" if allowed else b"deny", "text/plain")

    def _authorised(self) -> Integration:
        fiksio = self.server.fiksio
        auth = self.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else ""
        client = fiksio._token_client(token)
        if client is None:
            raise _Refused(401, {"message": "Ugyldig eller utløpt token"})
        integration = fiksio.integrations.get(self.headers.get("IntegrasjonId", ""))
        if integration is None or integration.password != self.headers.get("IntegrasjonPassord"):
            raise _Refused(403, {"message": "Ukjent integrasjon eller feil passord"})
        if integration.client_id != client:
            raise _Refused(403, {"message": "Tokenet er ikke integrasjonens organisasjon sitt"})
        return integration

    def _send(self, fiksio: LocalFiksIo, integration: Integration, raw: bytes) -> dict[str, Any]:
        content_type = self.headers.get("Content-Type", "")
        if not content_type.startswith("multipart/form-data"):
            raise _Refused(400, {"message": "multipart/form-data expected"})
        message = BytesParser(policy=HTTP).parsebytes(
            f"Content-Type: {content_type}\r\n\r\n".encode() + raw
        )
        parts: dict[str, bytes] = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True)
            if isinstance(name, str) and isinstance(payload, bytes):
                parts[name] = payload
        if "metadata" not in parts:
            raise _Refused(400, {"message": "the metadata part is missing"})
        try:
            metadata = json.loads(parts["metadata"])
            avsender = uuid.UUID(metadata["avsenderKontoId"])
            mottaker = uuid.UUID(metadata["mottakerKontoId"])
            meldingtype = metadata["meldingType"]
            ttl = metadata["ttl"]
        except (KeyError, ValueError, TypeError) as exc:
            raise _Refused(400, {"message": f"metadata: {type(exc).__name__} {exc}"}) from None
        if not isinstance(meldingtype, str) or not meldingtype:
            raise _Refused(400, {"message": "meldingType"})
        if not isinstance(ttl, int) or ttl <= 0:
            raise _Refused(400, {"message": "ttl"})
        unknown = set(metadata) - {
            "avsenderKontoId",
            "mottakerKontoId",
            "meldingType",
            "ttl",
            "svarPaMelding",
            "headere",
            "klientMeldingId",
        }
        if unknown:
            raise _Refused(400, {"message": f"unknown fields {sorted(unknown)}"})
        sender = fiksio.kontoer.get(avsender)
        if sender is None or sender.integration_id != integration.integration_id:
            raise _Refused(403, {"message": "Integrasjonen har ikke tilgang til avsenderkontoen"})
        if mottaker not in fiksio.kontoer:
            raise _Refused(400, {"message": "Ukjent mottakerkonto"})
        headere = metadata.get("headere") or {}
        klient = metadata.get("klientMeldingId") or headere.get("klientMeldingId")
        routed = fiksio.route(
            avsender,
            mottaker,
            meldingtype,
            parts.get("data", b""),
            klientmelding_id=klient,
            svar_til=metadata.get("svarPaMelding"),
            metadata=metadata,
        )
        return {
            "meldingId": str(routed.melding_id),
            "meldingType": meldingtype,
            "avsenderKontoId": str(avsender),
            "mottakerKontoId": str(mottaker),
            "ttl": ttl,
            "dokumentlagerId": None,
            "svarPaMelding": metadata.get("svarPaMelding"),
        }


class _Server(LoopbackServer):
    def __init__(self, fiksio: LocalFiksIo):
        super().__init__(_Handler)
        self.fiksio = fiksio
