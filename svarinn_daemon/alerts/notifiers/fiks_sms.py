"""The ``fiks-sms`` notifier: alerts as SMS through KS Fiks SMS API v2.

``POST {base}/varsling/api/v2/sms/{kontoId}/send`` per recipient (answers ``{"id": uuid}``)
or ``/sendBatch`` for up to 1000 recipients (answers with an empty body). Every call carries
a Maskinporten token (scope ``ks:fiks``) and the Fiks integration's id and password. Fiks
errors are JSON with an ``errorId``: it is logged and put into the error, because it is what
KS support asks for. The text is :meth:`AlertMessage.short_text`: GSM-7, 160 characters,
account, condition, counts and host only.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

import httpx

from svarinn_daemon.alerts.message import AlertMessage
from svarinn_daemon.alerts.notifiers.base import NotifierContext
from svarinn_daemon.alerts.notifiers.options import NotifierOptions
from svarinn_daemon.config.maskinporten import read_maskinporten
from svarinn_daemon.config.secrets import Secret
from svarinn_daemon.errors import NotifierError
from svarinn_daemon.logs import get_logger
from svarinn_daemon.maskinporten import MaskinportenClient, TokenSource

__all__ = ["BASE_URLS", "MAX_BATCH", "FiksSmsNotifier", "SmsAccount", "create_notifier"]

BASE_URLS = {"production": "https://api.fiks.ks.no", "test": "https://api.fiks.test.ks.no"}
MAX_BATCH = 1000
RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
PHONE = re.compile(r"\+?[0-9]{8,15}")


class SmsAccount:
    """The Fiks SMS konto and the integration allowed to send with it."""

    def __init__(self, base_url: str, konto_id: str, integrasjon_id: str, passord: Secret):
        self.base_url = base_url.rstrip("/")
        self.konto_id = konto_id
        self.integrasjon_id = integrasjon_id
        self._passord = passord

    def __repr__(self) -> str:
        return f"SmsAccount(konto_id={self.konto_id!r}, integrasjon_id={self.integrasjon_id!r})"

    def url(self, operation: str) -> str:
        return f"{self.base_url}/varsling/api/v2/sms/{self.konto_id}/{operation}"

    def headers(self, token: str) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {token}",
            "IntegrasjonId": self.integrasjon_id,
            "IntegrasjonPassord": self._passord.reveal(),
            "Accept": "application/json",
        }


class FiksSmsNotifier:
    def __init__(
        self,
        name: str,
        account: SmsAccount,
        maskinporten: MaskinportenClient,
        recipients: tuple[str, ...],
        *,
        mode: str = "auto",
        timeout: timedelta = timedelta(seconds=10),
        retries: int = 2,
        backoff: timedelta = timedelta(seconds=2),
        clock: Callable[[], float],
        sleep: Callable[[float], None],
        http: httpx.Client | None = None,
    ):
        self.name = name
        self.account = account
        self.recipients = recipients
        self.batch = mode == "batch" or (mode == "auto" and len(recipients) > 1)
        self.retries = retries
        self.backoff = backoff
        self._sleep = sleep
        # One client (and so one proxy) for Fiks SMS and Maskinporten alike.
        self._http = http or httpx.Client(
            timeout=timeout.total_seconds(), follow_redirects=False, trust_env=False
        )
        self.tokens = TokenSource(
            maskinporten,
            self._http,
            clock=clock,
            who=name,
            fail=lambda message, temporary, status: NotifierError(
                message, temporary=temporary, notifier=name, status_code=status
            ),
        )
        self._log = get_logger("svarinn_daemon.alerts.fiks_sms")
        self.sent_ids: list[str] = []

    def __repr__(self) -> str:
        return f"FiksSmsNotifier(name={self.name!r}, recipients={len(self.recipients)})"

    def send(self, alert: AlertMessage) -> None:
        text = alert.short_text()
        if self.batch:
            for start in range(0, len(self.recipients), MAX_BATCH):
                chunk = list(self.recipients[start : start + MAX_BATCH])
                self._call("sendBatch", {"telefonnummere": chunk, "tekst": text})
            return
        failures: list[NotifierError] = []
        for number, recipient in enumerate(self.recipients, 1):
            try:
                reply = self._call("send", {"tekst": text, "telefonnummer": recipient})
            except NotifierError as exc:
                failures.append(exc)
                self._log.warning(
                    "alert.sms_failed",
                    notifier=self.name,
                    recipient=f"{number} of {len(self.recipients)}",
                    error_id=exc.error_id,
                    status=exc.status_code,
                )
                continue
            sms_id = reply.get("id") if isinstance(reply, dict) else None
            if isinstance(sms_id, str):
                self.sent_ids.append(sms_id)
        if failures:
            first = failures[0]
            raise NotifierError(
                f"{len(failures)} of {len(self.recipients)} SMS not sent; first: {first}",
                temporary=all(f.temporary for f in failures),
                notifier=self.name,
                status_code=first.status_code,
                error_id=first.error_id,
            )

    def _call(self, operation: str, body: Mapping[str, Any]) -> Any:
        """POST with retries on 5xx/429/timeouts and one fresh token after a 401."""
        attempts = self.retries + 1
        refreshed = False
        attempt = 0
        while True:
            attempt += 1
            error = self._post_once(operation, body)
            if not isinstance(error, NotifierError):
                return error
            if error.status_code == 401 and not refreshed:
                # A token revoked or expired early: get a new one once, then believe Fiks.
                refreshed = True
                self.tokens.invalidate()
                attempt -= 1
                continue
            if not error.temporary or attempt >= attempts:
                raise error
            delay = self.backoff.total_seconds() * 2 ** (attempt - 1)
            self._log.warning(
                "alert.sms_retry", notifier=self.name, attempt=attempt, problem=str(error)
            )
            self._sleep(delay)

    def _post_once(self, operation: str, body: Mapping[str, Any]) -> Any:
        """The reply's JSON (None when empty), or the NotifierError to raise or retry."""
        headers = self.account.headers(self.tokens.token())
        try:
            response = self._http.post(self.account.url(operation), json=body, headers=headers)
        except httpx.TimeoutException:
            return self._error("Fiks SMS timed out", temporary=True)
        except httpx.HTTPError as exc:
            return self._error(f"Fiks SMS connection failed ({type(exc).__name__})", True)
        try:
            reply = response.json() if response.content else None
        except ValueError:
            reply = None
        status = response.status_code
        if 200 <= status < 300:
            return reply
        error_id = reply.get("errorId") if isinstance(reply, dict) else None
        message = reply.get("message") if isinstance(reply, dict) else None
        self._log.error(
            "alert.fiks_error",
            notifier=self.name,
            operation=operation,
            status=status,
            error_id=error_id,
            fiks_message=str(message)[:200] if message else None,
        )
        detail = f" ({str(message)[:200]})" if message else ""
        ref = f", errorId {error_id}" if error_id else ""
        return self._error(
            f"Fiks SMS {operation} refused with HTTP {status}{ref}{detail}",
            status in RETRY_STATUS,
            status=status,
            error_id=str(error_id) if error_id else None,
        )

    def _error(
        self,
        message: str,
        temporary: bool,
        *,
        status: int | None = None,
        error_id: str | None = None,
    ) -> NotifierError:
        return NotifierError(
            f"fiks-sms {self.name!r}: {message}",
            temporary=temporary,
            notifier=self.name,
            status_code=status,
            error_id=error_id,
        )

    def close(self) -> None:
        self._http.close()


def create_notifier(options: Mapping[str, Any], context: NotifierContext) -> FiksSmsNotifier:
    read = NotifierOptions(options, context)
    environment = read.choice("environment", "production", tuple(BASE_URLS))
    base_url = read.url("base_url", BASE_URLS[environment], path=False)
    passord = read.secret("integrasjon_passord", required=True)
    assert passord is not None
    maskinporten = read_maskinporten(read, environment)
    recipients = read.string_list("recipients", required=True)
    for i, number in enumerate(recipients):
        if not PHONE.fullmatch(number):
            raise read.error(f"recipients[{i}]", "must be a phone number: 8-15 digits, + allowed")
    account = SmsAccount(base_url, read.string("konto_id"), read.string("integrasjon_id"), passord)
    mode = read.choice("mode", "auto", ("auto", "single", "batch"))
    sending = read.sending(retries=2)
    read.finish()
    return FiksSmsNotifier(
        context.name,
        account,
        maskinporten,
        recipients,
        mode=mode,
        clock=context.clock,
        sleep=context.sleep,
        **sending,
    )
