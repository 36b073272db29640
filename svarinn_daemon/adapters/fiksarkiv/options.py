"""The ``fiks-arkiv`` adapter's options, read once into the adapter and its Fiks IO parts."""

from __future__ import annotations

import ssl
import time
import uuid
from collections.abc import Mapping
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx

from svarinn_daemon.adapters import http_options
from svarinn_daemon.adapters.base import AdapterContext
from svarinn_daemon.adapters.fiksarkiv.adapter import FiksArkivArchive, FiksArkivSettings
from svarinn_daemon.adapters.options import AdapterOptions
from svarinn_daemon.adapters.registration import TEMPORARY
from svarinn_daemon.adapters.systems import DEFAULT_SAMLESAK, Rules
from svarinn_daemon.config.maskinporten import read_maskinporten
from svarinn_daemon.errors import ConfigError, FiksIoError
from svarinn_daemon.fiksio.client import FiksIoClient, Integration
from svarinn_daemon.fiksio.receive import Receiver, ReceiverSettings
from svarinn_daemon.keys import KeyPair, load_key_pair
from svarinn_daemon.maskinporten import TokenSource

__all__ = ["ENVIRONMENTS", "create_adapter"]

# Fiks IO's addresses per environment (KS: "Fiks IO", "Integrasjoner").
ENVIRONMENTS = {
    "production": ("https://api.fiks.ks.no", "amqps://io.fiks.ks.no:5671"),
    "test": ("https://api.fiks.test.ks.no", "amqps://io.fiks.test.ks.no:5671"),
}
DEFAULT_TIMEOUT = timedelta(minutes=2)
DEFAULT_KVITTERING_TIMEOUT = timedelta(minutes=20)
DEFAULT_TTL = timedelta(days=2)
DEFAULT_SYSTEM = "svarinn-daemon"


def _uuid(reader: AdapterOptions, key: str) -> uuid.UUID:
    text = reader.string(key)
    try:
        return uuid.UUID(text)
    except ValueError:
        raise reader.error(
            key, f"must be a Fiks IO account id (a UUID), not {text[:60]!r}"
        ) from None


def _amqp_url(reader: AdapterOptions, default: str) -> str:
    text = reader.string("amqp_url", default, blank=False).rstrip("/")
    parts = urlsplit(text)
    loopback = parts.hostname in ("127.0.0.1", "::1", "localhost")
    if parts.scheme not in ("amqps", "amqp") or not parts.hostname:
        raise reader.error("amqp_url", "must be amqps://host:port (Fiks IO's AMQP address)")
    if parts.scheme == "amqp" and not loopback:
        raise reader.error("amqp_url", "must use amqps:// (TLS) except on loopback")
    if parts.username or parts.password:
        raise reader.error("amqp_url", "must not hold credentials: the integration's are used")
    if any(c in text for c in "\r\n\t "):
        raise reader.error("amqp_url", "must not contain blanks or line breaks")
    return text


def _account_keys(reader: AdapterOptions) -> tuple[KeyPair, ...]:
    key = reader.secret("konto_private_key", required=True, strip=False)
    assert key is not None
    certificate = reader.secret("konto_certificate", strip=False)
    try:
        pair = load_key_pair(
            key.source,
            key.reveal_bytes(),
            certificate_pem=certificate.reveal_bytes() if certificate else None,
            key_name="konto_private_key",
            certificate_name="konto_certificate",
        )
    except ConfigError as exc:
        raise reader.error("konto_private_key", str(exc)) from None
    return (pair,)


def create_adapter(options: Mapping[str, Any], context: AdapterContext) -> FiksArkivArchive:
    """Entry point ``fiks-arkiv``; docs/archive-systems.md lists and explains every option."""
    reader = AdapterOptions(options, context)
    environment = reader.string("environment", "production", tuple(ENVIRONMENTS))
    api_default, amqp_default = ENVIRONMENTS[environment]
    api_url = reader.url("fiks_io_url", api_default, path=False)
    amqp_url = _amqp_url(reader, amqp_default)
    konto_id = _uuid(reader, "konto_id")
    mottaker = _uuid(reader, "mottaker_konto_id")
    integrasjon_id = reader.string("integrasjon_id")
    passord = reader.secret("integrasjon_passord", required=True)
    assert passord is not None
    maskinporten = read_maskinporten(reader, environment)
    keys = _account_keys(reader)
    kvittering_timeout = reader.duration("kvittering_timeout", DEFAULT_KVITTERING_TIMEOUT)
    ttl = reader.duration("ttl", DEFAULT_TTL)
    if ttl < kvittering_timeout:
        raise reader.error(
            "ttl", "must be at least kvittering_timeout (a message outlives its wait)"
        )
    settings = FiksArkivSettings(
        konto_id=konto_id,
        mottaker_konto_id=mottaker,
        system=reader.string("system", DEFAULT_SYSTEM, blank=False),
        fagsystem=reader.string("fagsystem", DEFAULT_SYSTEM, blank=False),
        arkivdel=reader.string("arkivdel", "") or None,
        ttl=ttl,
        reply_timeout=kvittering_timeout,
        permanent_feil_ids=frozenset(reader.string_list("permanent_feil_ids", blank=False)),
    )
    rules = Rules(
        journalstatus=reader.string("journalstatus", TEMPORARY, blank=False),
        samlesak=DEFAULT_SAMLESAK,
        title_limit=reader.integer("title_limit", 255, minimum=20, maximum=4000),
    )
    timeout = reader.duration("timeout", DEFAULT_TIMEOUT)
    tls = http_options.tls_context(reader)
    work = reader.work_directory()
    reader.finish()
    return _build(
        settings,
        api_url,
        amqp_url,
        integrasjon_id,
        passord.reveal(),
        maskinporten,
        keys,
        rules=rules,
        timeout=timeout,
        tls=tls,
        work=work,
        context=context,
    )


def _build(
    settings: FiksArkivSettings,
    api_url: str,
    amqp_url: str,
    integrasjon_id: str,
    passord: str,
    maskinporten: Any,
    keys: tuple[KeyPair, ...],
    *,
    rules: Rules,
    timeout: timedelta,
    tls: ssl.SSLContext,
    work: Any,
    context: AdapterContext,
) -> FiksArkivArchive:
    http = httpx.Client(
        timeout=timeout.total_seconds(), follow_redirects=False, trust_env=False, verify=tls
    )
    tokens = TokenSource(
        maskinporten,
        http,
        clock=time.time,
        who=f"archives.{context.archive_name}",
        fail=lambda message, temporary, status: FiksIoError(
            message, temporary=True, loud=not temporary
        ),
    )
    integration = Integration(integrasjon_id, passord)
    client = FiksIoClient(
        api_url, integration, http, token=tokens.token, invalidate=tokens.invalidate
    )
    receiver = Receiver(
        ReceiverSettings(
            url=amqp_url,
            konto_id=settings.konto_id,
            integration_id=integrasjon_id,
            tls=tls if urlsplit(amqp_url).scheme == "amqps" else None,
        ),
        lambda: f"{passord} {tokens.token()}",
    )
    return FiksArkivArchive(
        settings,
        client,
        receiver,
        keys,
        work_directory=work,
        timeout=timeout,
        rules=rules,
        owner=context.worker_id,
        secrets=(passord,),
        http=http,
    )
