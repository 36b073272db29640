"""The ``webhook`` notifier: one JSON POST per alert, for Teams, Slack or anything else.

The body has ``text`` (what Slack and Teams incoming webhooks show) and the alert's fields;
``format = "text"`` sends ``{"text": ...}`` alone for receivers that refuse unknown fields.
Webhook URLs carry their access token in the path, so the URL is a secret: it is never
logged and never part of an error message.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

import httpx

from svarinn_daemon.alerts.message import AlertMessage
from svarinn_daemon.alerts.notifiers.base import NotifierContext
from svarinn_daemon.alerts.notifiers.options import NotifierOptions
from svarinn_daemon.config.secrets import Secret
from svarinn_daemon.errors import NotifierError
from svarinn_daemon.logs import get_logger

__all__ = ["WebhookNotifier", "create_notifier"]

FORMATS = ("json", "text")
RETRY_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


class WebhookNotifier:
    def __init__(
        self,
        name: str,
        url: Secret,
        *,
        headers: Mapping[str, str],
        authorization: Secret | None,
        body_format: str,
        timeout: timedelta,
        retries: int,
        backoff: timedelta,
        sleep: Callable[[float], None],
        http: httpx.Client | None = None,
    ):
        self.name = name
        self._url = url
        self._headers = {"User-Agent": "svarinn-daemon", **headers}
        self._authorization = authorization
        self.body_format = body_format
        self.retries = retries
        self.backoff = backoff
        self._sleep = sleep
        self._client = http or httpx.Client(
            timeout=timeout.total_seconds(), follow_redirects=False, trust_env=False
        )
        self._log = get_logger("svarinn_daemon.alerts.webhook")

    def __repr__(self) -> str:
        return f"WebhookNotifier(name={self.name!r}, url=***)"

    def body(self, alert: AlertMessage) -> dict[str, Any]:
        return {"text": alert.long_text()} if self.body_format == "text" else alert.to_json()

    def send(self, alert: AlertMessage) -> None:
        headers = dict(self._headers)
        if self._authorization is not None:
            headers["Authorization"] = self._authorization.reveal()
        body = self.body(alert)
        attempts = self.retries + 1
        problem = ""
        for attempt in range(1, attempts + 1):
            status: int | None = None
            try:
                response = self._client.post(self._url.reveal(), json=body, headers=headers)
                status = response.status_code
            except httpx.TimeoutException:
                problem = "timed out"
            except httpx.HTTPError as exc:
                # The exception's text may quote the URL: keep only its type.
                problem = f"connection failed ({type(exc).__name__})"
            else:
                if 200 <= status < 300:
                    return
                problem = f"HTTP {status}"
                if status not in RETRY_STATUS:
                    raise NotifierError(
                        f"webhook {self.name!r}: the receiver refused the alert ({problem})",
                        temporary=False,
                        notifier=self.name,
                        status_code=status,
                    )
            if attempt < attempts:
                delay = self.backoff.total_seconds() * 2 ** (attempt - 1)
                self._log.warning(
                    "alert.webhook_retry",
                    notifier=self.name,
                    attempt=attempt,
                    problem=problem,
                    retry_in_seconds=delay,
                )
                self._sleep(delay)
        raise NotifierError(
            f"webhook {self.name!r}: {problem} after {attempts} attempt(s)",
            temporary=True,
            notifier=self.name,
            status_code=status,
        )

    def close(self) -> None:
        self._client.close()


def create_notifier(options: Mapping[str, Any], context: NotifierContext) -> WebhookNotifier:
    read = NotifierOptions(options, context)
    url = read.secret("url", required=True)
    assert url is not None
    read.check_url("url", url.reveal(), show=False)
    headers = read.string_table("headers")
    if any(h.lower() == "authorization" for h in headers):
        raise read.error("headers", "put the Authorization header in authorization_file")
    authorization = read.secret("authorization", required=False)
    body_format = read.choice("format", "json", FORMATS)
    sending = read.sending(retries=3)
    read.finish()
    return WebhookNotifier(
        context.name,
        url,
        headers=headers,
        authorization=authorization,
        body_format=body_format,
        sleep=context.sleep,
        **sending,
    )
