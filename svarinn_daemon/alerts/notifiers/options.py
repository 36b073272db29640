"""Reading a ``[[notifiers]]`` table's options: the option reader, with errors that name
``notifiers[i].KEY`` (through ``NotifierContext.option_error``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypedDict

import httpx

from svarinn_daemon.alerts.notifiers.base import NotifierContext
from svarinn_daemon.config.reader import MISSING, ContextOptions
from svarinn_daemon.config.secrets import Secret

__all__ = ["HttpOptions", "NotifierOptions", "Sending"]


@dataclass(frozen=True)
class HttpOptions:
    """How a notifier reaches the network: proxy and environment."""

    proxy: httpx.Proxy | None = None
    trust_env: bool = False

    def client(self, timeout: timedelta) -> httpx.Client:
        return httpx.Client(
            timeout=timeout.total_seconds(),
            follow_redirects=False,
            proxy=self.proxy,
            trust_env=self.trust_env,
        )


class Sending(TypedDict):
    """A posting notifier's keyword arguments for how it sends."""

    timeout: timedelta
    retries: int
    backoff: timedelta
    http: httpx.Client


class NotifierOptions(ContextOptions):
    """One notifier's options being read. Its secrets were read with the config file
    (``NotifierContext.secrets``); a string option is required unless it has a default."""

    context: NotifierContext

    def __init__(self, options: Mapping[str, Any], context: NotifierContext):
        super().__init__(options, context, {})

    def string(
        self,
        key: str,
        default: Any = None,
        choices: tuple[str, ...] = (),
        *,
        blank: bool = False,
    ) -> str:
        return super().string(key, MISSING if default is None else default, choices, blank=blank)

    def choice(self, key: str, default: str, choices: tuple[str, ...]) -> str:
        return self.string(key, default, choices)

    def url(self, key: str, default: Any = None, *, path: bool = True, query: bool = True) -> str:
        return super().url(key, MISSING if default is None else default, path=path, query=query)

    def _secret(self, key: str, strip: bool) -> Secret | None:
        return self.context.secrets.get(key)

    def _given(self) -> list[str]:
        return sorted(set(self.data) | set(self.context.secrets))

    def http_options(self) -> HttpOptions:
        """The table's proxy settings (``OptionReader.proxy``) as httpx takes them."""
        proxy = self.proxy()
        if proxy.url is None:
            return HttpOptions(None, proxy.trust_env)
        auth = None
        if proxy.username is not None and proxy.password is not None:
            auth = (proxy.username, proxy.password.reveal())
        return HttpOptions(httpx.Proxy(proxy.url, auth=auth), proxy.trust_env)

    def sending(self, retries: int) -> Sending:
        """How a notifier that posts sends: ``timeout``, ``retries`` (default ``retries``),
        ``backoff`` and its ``http`` client (the proxy settings), as its keyword arguments."""
        timeout = self.duration("timeout", timedelta(seconds=10), minimum=timedelta(seconds=0.1))
        return {
            "timeout": timeout,
            "retries": self.integer("retries", retries, minimum=0, maximum=10),
            "backoff": self.duration("backoff", timedelta(seconds=2), minimum=timedelta(0)),
            "http": self.http_options().client(timeout),
        }

    def secret_key(self, key: str) -> str:
        """The key the secret was given as (``KEY_file``, ...), for error messages."""
        secret = self.context.secrets.get(key)
        kind = secret.source.split(":", 1)[0] if secret else "inline"
        return key if kind == "inline" else f"{key}_{kind}"
