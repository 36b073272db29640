"""Fiks IO's REST side: sending a message and looking up an account's public certificate.

Every request carries the integration's id and password and a Maskinporten access token
(scope ``ks:fiks``); ``token()`` gives a current one and ``invalidate()`` drops it after a
401, so the next call fetches a fresh one. The payload is streamed from a file into the
multipart body (httpx reads it in chunks); a 202 answer carries the message id Fiks IO gave
the message, which is what replies name.

Errors are :class:`FiksIoError`: temporary for a transport failure, a timeout, 5xx and 429;
a refusal of our credentials or of the message (4xx) is temporary too (a person fixes the
configuration; the letter itself is not at fault) but ``loud``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
from cryptography import x509

from svarinn_daemon.errors import FiksIoError
from svarinn_daemon.fiksio.messages import MessageSpec, SentMessage, parse_public_key, parse_sent

__all__ = ["CATALOGUE_TTL", "FiksIoClient", "Integration"]

SEND_PATH = "/fiks-io/api/v1/send"
PUBLIC_KEY_PATH = "/fiks-io/katalog/api/v1/kontoer/{konto}/offentligNokkel"
# A receiver's certificate is looked up again after this long (a renewed one takes over).
CATALOGUE_TTL = 3600.0


@dataclass(frozen=True)
class Integration:
    """Who we are to Fiks: the integration's id and password (from KS's portal)."""

    integration_id: str
    password: str

    def __repr__(self) -> str:
        return f"Integration(integration_id={self.integration_id!r}, password=***)"


class FiksIoClient:
    """Sends messages and reads the catalogue; thread-safe."""

    def __init__(
        self,
        api_url: str,
        integration: Integration,
        http: httpx.Client,
        *,
        token: Callable[[], str],
        invalidate: Callable[[], None],
        clock: Callable[[], float] = time.monotonic,
    ):
        self.api_url = api_url.rstrip("/")
        self.integration = integration
        self._http = http
        self._token = token
        self._invalidate = invalidate
        self._clock = clock
        self._keys: dict[UUID, tuple[x509.Certificate, float]] = {}
        self._lock = threading.Lock()

    def _headers(self) -> dict[str, str]:
        return {
            "IntegrasjonId": self.integration.integration_id,
            "IntegrasjonPassord": self.integration.password,
            "Authorization": f"Bearer {self._token()}",
        }

    def public_key(self, konto_id: UUID) -> x509.Certificate:
        """The account's certificate from the catalogue (cached for ``CATALOGUE_TTL``)."""
        now = self._clock()
        with self._lock:
            cached = self._keys.get(konto_id)
        if cached is not None and now < cached[1]:
            return cached[0]
        url = self.api_url + PUBLIC_KEY_PATH.format(konto=konto_id)
        response = self._call("the catalogue", lambda: self._http.get(url, headers=self._headers()))
        if response.status_code == 404:
            raise FiksIoError(
                f"Fiks IO's catalogue knows no account {konto_id} (check mottaker_konto_id)",
                temporary=True,
                loud=True,
            )
        self._refused("the catalogue", response, expected=200)
        certificate = parse_public_key(_json(response, "the catalogue"))
        with self._lock:
            self._keys[konto_id] = (certificate, now + CATALOGUE_TTL)
        return certificate

    def forget_key(self, konto_id: UUID) -> None:
        """Drop a cached certificate (the receiver could not open our message)."""
        with self._lock:
            self._keys.pop(konto_id, None)

    def send(self, spec: MessageSpec, payload: Path | None) -> SentMessage:
        """POST the message; ``payload`` is the encrypted file (None: a message without)."""
        url = self.api_url + SEND_PATH
        metadata = json.dumps(spec.to_json(), ensure_ascii=False)

        def post() -> httpx.Response:
            files: dict[str, Any] = {"metadata": (None, metadata, "application/json")}
            if payload is None:
                return self._http.post(url, files=files, headers=self._headers())
            with open(payload, "rb") as stream:
                files["data"] = ("data", stream, "application/octet-stream")
                return self._http.post(url, files=files, headers=self._headers())

        response = self._call("sending", post)
        self._refused("sending", response, expected=202)
        return parse_sent(_json(response, "sending"))

    def _call(self, doing: str, request: Callable[[], httpx.Response]) -> httpx.Response:
        try:
            response = request()
        except httpx.TimeoutException:
            raise FiksIoError(f"Fiks IO timed out ({doing})", temporary=True) from None
        except httpx.HTTPError as exc:
            raise FiksIoError(
                f"Fiks IO could not be reached ({doing}: {type(exc).__name__})", temporary=True
            ) from None
        if response.status_code == 401:
            self._invalidate()  # a token refused now may only have expired: fetch a new one
        return response

    def _refused(self, doing: str, response: httpx.Response, *, expected: int) -> None:
        status = response.status_code
        if status == expected:
            return
        detail = _detail(response)
        if status >= 500 or status == 429:
            raise FiksIoError(f"Fiks IO answered {status} ({doing}){detail}", temporary=True)
        raise FiksIoError(
            f"Fiks IO refused the request with {status} ({doing}){detail}: check the "
            "integration id and password, the Maskinporten client and the accounts",
            temporary=True,
            loud=True,
        )


def _json(response: httpx.Response, doing: str) -> Any:
    try:
        return response.json()
    except ValueError:
        raise FiksIoError(f"Fiks IO's answer is not JSON ({doing})", temporary=True) from None


def _detail(response: httpx.Response) -> str:
    text = response.text[:300].strip()
    return f": {' '.join(text.split())}" if text else ""
