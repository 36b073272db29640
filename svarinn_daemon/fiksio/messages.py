"""Fiks IO's message records and their wire forms: the send API's ``metadata`` part and its
202 answer, a delivered message's AMQP headers, the catalogue's public key. Pure.

Names as KS's clients spell them (ks-no/fiks-io-send-client-dotnet
``MeldingSpesifikasjonApiModel``/``SendtMeldingApiModel``, camelCase JSON; ks-no/fiks-amqp
``RabbitMqHeaders``). Everything read here comes from the network: any value missing or
malformed is a :class:`FiksIoError`, never another exception.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from cryptography import x509

from svarinn_daemon.errors import FiksIoError

__all__ = [
    "H_AVSENDER",
    "H_KLIENTMELDING_ID",
    "H_MELDING_ID",
    "H_SVAR_TIL",
    "H_TYPE",
    "QUEUE_PREFIX",
    "MessageSpec",
    "ReceivedMessage",
    "SentMessage",
    "parse_public_key",
    "parse_sent",
    "queue_name",
    "received",
]

QUEUE_PREFIX = "fiksio.konto."
H_MELDING_ID = "melding-id"
H_AVSENDER = "avsender-id"
H_TYPE = "type"
H_SVAR_TIL = "svar-til"
H_KLIENTMELDING_ID = "klientmelding-id"
H_CUSTOM = "egendefinert-header."
MAX_TYPE = 200


def queue_name(konto_id: UUID) -> str:
    return f"{QUEUE_PREFIX}{konto_id}"


@dataclass(frozen=True)
class MessageSpec:
    """What a message is, before it is sent: the ``metadata`` part."""

    avsender_konto_id: UUID
    mottaker_konto_id: UUID
    meldingtype: str
    ttl_seconds: int
    klientmelding_id: UUID | None = None
    svar_pa_melding: UUID | None = None
    headers: Mapping[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "avsenderKontoId": str(self.avsender_konto_id),
            "mottakerKontoId": str(self.mottaker_konto_id),
            "meldingType": self.meldingtype,
            "ttl": self.ttl_seconds * 1000,  # milliseconds, as KS's clients send it
            "headere": dict(self.headers),
        }
        if self.klientmelding_id is not None:
            out["klientMeldingId"] = str(self.klientmelding_id)
        if self.svar_pa_melding is not None:
            out["svarPaMelding"] = str(self.svar_pa_melding)
        return out


@dataclass(frozen=True)
class SentMessage:
    """The send API's 202 answer: the id Fiks IO gave the message (replies name it)."""

    melding_id: UUID
    meldingtype: str


@dataclass(frozen=True)
class ReceivedMessage:
    """A message from our queue, as its headers describe it."""

    melding_id: UUID
    meldingtype: str
    avsender_konto_id: UUID
    svar_til: UUID | None
    klientmelding_id: str | None
    has_payload: bool


def _uuid(value: Any, what: str) -> UUID:
    if isinstance(value, bytes | bytearray):
        try:
            value = bytes(value).decode("ascii")
        except UnicodeDecodeError:
            raise FiksIoError(f"{what} is not text", temporary=False) from None
    if not isinstance(value, str):
        raise FiksIoError(f"{what} is missing or not text", temporary=False)
    try:
        return UUID(value.strip())
    except ValueError:
        raise FiksIoError(f"{what} is not a UUID: {value[:60]!r}", temporary=False) from None


def _text(value: Any) -> str | None:
    if isinstance(value, bytes | bytearray):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            return None
    return value if isinstance(value, str) else None


def parse_sent(data: Any) -> SentMessage:
    if not isinstance(data, dict):
        raise FiksIoError("Fiks IO's answer to a send is not a JSON object", temporary=True)
    kind = data.get("meldingType")
    try:
        melding_id = _uuid(data.get("meldingId"), "the answer's meldingId")
    except FiksIoError as exc:  # the message may well have gone: send again, same key
        raise FiksIoError(str(exc), temporary=True) from None
    return SentMessage(melding_id, kind if isinstance(kind, str) else "")


def received(headers: Mapping[str, Any], body_size: int) -> ReceivedMessage:
    """A delivered message's description from its AMQP headers."""
    kind = _text(headers.get(H_TYPE))
    if not kind or len(kind) > MAX_TYPE or not kind.isprintable():
        raise FiksIoError("the message has no readable type header", temporary=False)
    svar_til = headers.get(H_SVAR_TIL)
    klient = _text(headers.get(H_KLIENTMELDING_ID) or headers.get(f"{H_CUSTOM}klientMeldingId"))
    return ReceivedMessage(
        melding_id=_uuid(headers.get(H_MELDING_ID), "the melding-id header"),
        meldingtype=kind,
        avsender_konto_id=_uuid(headers.get(H_AVSENDER), "the avsender-id header"),
        svar_til=None if svar_til in (None, b"", "") else _uuid(svar_til, "the svar-til header"),
        klientmelding_id=klient[:100] if klient else None,
        has_payload=body_size > 0,
    )


def parse_public_key(data: Any) -> x509.Certificate:
    """The catalogue's answer for an account's public key: its certificate (PEM in
    ``nokkel``)."""
    pem = data.get("nokkel") if isinstance(data, dict) else None
    if not isinstance(pem, str) or "BEGIN CERTIFICATE" not in pem:
        raise FiksIoError("Fiks IO's catalogue answered without a certificate", temporary=True)
    try:
        return x509.load_pem_x509_certificate(pem.encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        raise FiksIoError("the catalogue's certificate cannot be read", temporary=True) from None
