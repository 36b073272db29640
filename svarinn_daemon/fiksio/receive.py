"""Fiks IO's AMQP side: the account's queue, read with manual acknowledgements.

Fiks IO delivers an account's messages on ``fiksio.konto.<kontoId>`` (AMQP 0-9-1, TLS in
production). The user name is the integration id, the password the integration password and a
Maskinporten token joined by a space; the token lives a couple of minutes: when the broker
closes the connection (the token expired, the broker restarted), the receiver connects again
with a token that is valid now.

A message is acknowledged only after ``handle`` returned: a message whose handling failed is
left unacknowledged (the broker gives it again after the reconnect that follows). A message
whose headers are not Fiks IO's is acknowledged and logged: no attempt can read it. Every
failure of the connection (the broker restarting, a refused token, a network cut) ends in a
reconnect after a growing pause, until ``stopping`` is set.
"""

from __future__ import annotations

import contextlib
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

import pika
import pika.exceptions

from svarinn_daemon.errors import FiksIoError
from svarinn_daemon.fiksio.messages import ReceivedMessage, queue_name, received
from svarinn_daemon.logs import get_logger

__all__ = ["Receiver", "ReceiverSettings"]

log = get_logger(__name__)

Handler = Callable[[ReceivedMessage, bytes], None]


@dataclass(frozen=True)
class ReceiverSettings:
    """``url`` is ``amqps://host:5671/vhost`` (or ``amqp://`` on loopback in tests);
    credentials never go in it."""

    url: str
    konto_id: UUID
    integration_id: str
    prefetch: int = 10
    heartbeat: int = 30
    reconnect_first: float = 1.0
    reconnect_max: float = 30.0
    tls: ssl.SSLContext | None = None
    poll: float = 0.5  # how often the loop looks at ``stopping`` when no message comes


class Receiver:
    """Reads one account's queue. ``password()`` builds the AMQP password with a fresh token
    (it may raise FiksIoError: then the reconnect waits and asks again)."""

    def __init__(
        self,
        settings: ReceiverSettings,
        password: Callable[[], str],
    ):
        self.settings = settings
        self._password = password
        self.connections = 0

    def run(
        self,
        handle: Handler,
        stopping: threading.Event,
        on_state: Callable[[bool, str | None], None] = lambda up, why: None,
    ) -> None:
        """Consume until ``stopping`` is set; never raises for a connection failure.
        ``on_state(connected, why)`` is told each connect and disconnect."""
        delay = self.settings.reconnect_first
        while not stopping.is_set():
            try:
                self._session(handle, stopping, on_state)
                delay = self.settings.reconnect_first
            except (pika.exceptions.AMQPError, OSError, FiksIoError) as exc:
                why = _describe(exc)
                on_state(False, why)
                log.warning("fiksio.disconnected", konto_id=str(self.settings.konto_id), error=why)
                stopping.wait(delay)
                delay = min(delay * 2, self.settings.reconnect_max)
        on_state(False, None)

    def _parameters(self) -> pika.ConnectionParameters:
        s = self.settings
        params = pika.URLParameters(s.url)
        params.credentials = pika.PlainCredentials(s.integration_id, self._password())
        params.heartbeat = s.heartbeat
        params.blocked_connection_timeout = 60
        params.connection_attempts = 1
        params.socket_timeout = 10
        if urlsplit(s.url).scheme == "amqps":
            context = s.tls or ssl.create_default_context()
            params.ssl_options = pika.SSLOptions(context, urlsplit(s.url).hostname)
        return params

    def _session(
        self,
        handle: Handler,
        stopping: threading.Event,
        on_state: Callable[[bool, str | None], None],
    ) -> None:
        s = self.settings
        connection = pika.BlockingConnection(self._parameters())
        self.connections += 1
        try:
            channel = connection.channel()
            channel.basic_qos(prefetch_count=s.prefetch)
            queue = queue_name(s.konto_id)
            on_state(True, None)
            log.info("fiksio.connected", konto_id=str(s.konto_id), queue=queue)
            for method, properties, body in channel.consume(
                queue, auto_ack=False, inactivity_timeout=s.poll
            ):
                if stopping.is_set():
                    break
                if method is None:
                    continue
                if self._deliver(handle, properties, body):
                    channel.basic_ack(method.delivery_tag)
                else:
                    # Not acknowledged: closing the channel gives it back to the queue.
                    raise FiksIoError("a message could not be handled", temporary=True)
            channel.cancel()
        finally:
            if connection.is_open:
                with contextlib.suppress(pika.exceptions.AMQPError, OSError):
                    connection.close()

    def _deliver(self, handle: Handler, properties: Any, body: bytes) -> bool:
        """True when the message may be acknowledged."""
        try:
            message = received(dict(properties.headers or {}), len(body))
        except FiksIoError as exc:
            log.warning("fiksio.malformed_message", error=str(exc), size=len(body))
            return True
        try:
            handle(message, body)
        except Exception as exc:  # the handler's failure: leave the message for later
            log.warning(
                "fiksio.message_not_handled",
                melding_id=str(message.melding_id),
                error=_describe(exc),
            )
            return False
        return True


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text[:300]}" if text else type(exc).__name__
