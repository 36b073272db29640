"""Reading a ``[[notifiers]]`` table's options: the option reader, with errors that name
``notifiers[i].KEY`` (through ``NotifierContext.option_error``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx

from svarinn_daemon.alerts.notifiers.base import NotifierContext
from svarinn_daemon.config.reader import MISSING, ContextOptions
from svarinn_daemon.config.secrets import Secret

__all__ = ["HttpOptions", "NotifierOptions"]


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

    def secret_key(self, key: str) -> str:
        """The key the secret was given as (``KEY_file``, ...), for error messages."""
        secret = self.context.secrets.get(key)
        kind = secret.source.split(":", 1)[0] if secret else "inline"
        return key if kind == "inline" else f"{key}_{kind}"
