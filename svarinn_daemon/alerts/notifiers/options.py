"""Reading a ``[[notifiers]]`` table's options, with errors that name ``notifiers[i].KEY``."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx

from svarinn_daemon.alerts.notifiers.base import NotifierContext
from svarinn_daemon.common import is_loopback
from svarinn_daemon.config.secrets import Secret
from svarinn_daemon.config.units import parse_duration
from svarinn_daemon.errors import ConfigError

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


class NotifierOptions:
    """One notifier's options being read; remembers which keys were asked for."""

    def __init__(self, options: Mapping[str, Any], context: NotifierContext):
        self.options = options
        self.context = context
        self.known: set[str] = set()

    def fail(self, key: str, message: str) -> ConfigError:
        return self.context.option_error(key, message)

    def _raw(self, key: str) -> Any:
        self.known.add(key)
        return self.options.get(key)

    def string(self, key: str, default: str | None = None) -> str:
        value = self._raw(key)
        if value is None:
            if default is None:
                raise self.fail(key, "is required")
            return default
        if not isinstance(value, str) or not value.strip():
            raise self.fail(key, f"must be a non-empty string, not {value!r}")
        return value.strip()

    def choice(self, key: str, default: str, choices: tuple[str, ...]) -> str:
        value = self.string(key, default)
        if value not in choices:
            raise self.fail(key, f"must be one of {', '.join(choices)}, not {value!r}")
        return value

    def integer(self, key: str, default: int, *, minimum: int, maximum: int) -> int:
        value = self._raw(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(key, f"must be a whole number, not {value!r}")
        if not minimum <= value <= maximum:
            raise self.fail(key, f"must be from {minimum} to {maximum}, not {value}")
        return value

    def duration(self, key: str, default: timedelta, *, minimum: timedelta) -> timedelta:
        value = self._raw(key)
        if value is None:
            return default
        if not isinstance(value, str):
            raise self.fail(key, f'must be a duration such as "10s", not {value!r}')
        try:
            parsed = parse_duration(value)
        except ValueError as exc:
            raise self.fail(key, str(exc)) from None
        if parsed < minimum:
            raise self.fail(key, f"must be at least {minimum.total_seconds():g}s, not {value!r}")
        return parsed

    def string_list(self, key: str, *, required: bool) -> tuple[str, ...]:
        value = self._raw(key)
        if value is None:
            if required:
                raise self.fail(key, "is required (a list of strings)")
            return ()
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.fail(key, f"must be a list of non-empty strings, not {value!r}")
        if required and not value:
            raise self.fail(key, "must not be empty")
        return tuple(value)

    def string_table(self, key: str) -> dict[str, str]:
        value = self._raw(key)
        if value is None:
            return {}
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            raise self.fail(key, 'must be a table of strings, e.g. {X-Source = "svarinn"}')
        return dict(value)

    def url(self, key: str, default: str | None = None, *, allow_path: bool = True) -> str:
        """An https URL (plain http only to loopback, for test servers)."""
        text = self.string(key, default).rstrip("/")
        check_url(text, lambda message: self.fail(key, message), allow_path=allow_path)
        return text

    def secret(self, key: str, *, required: bool) -> Secret | None:
        """A secret given as ``KEY_file``/``KEY_env``/``KEY_credential`` (or inline)."""
        self.known.update(key + v for v in ("", "_file", "_env", "_credential"))
        secret = self.context.secrets.get(key)
        if secret is None and required:
            raise self.fail(key, f"is required: set {key}_file, {key}_env or {key}_credential")
        return secret

    def http_options(self) -> HttpOptions:
        """The table's ``proxy`` (``http://host:port``), ``proxy_username`` +
        ``proxy_password_*`` (a secret) and ``trust_env`` (false: no HTTPS_PROXY/NO_PROXY
        from the environment unless asked for)."""
        proxy_url = self._raw("proxy")
        username = self._raw("proxy_username")
        password = self.secret("proxy_password", required=False)
        trust_env = self._raw("trust_env")
        if trust_env is None:
            trust_env = False
        if not isinstance(trust_env, bool):
            raise self.fail("trust_env", f"must be true or false, not {trust_env!r}")
        proxy = None
        if proxy_url is not None:
            if not isinstance(proxy_url, str):
                raise self.fail("proxy", f"must be a string, not {proxy_url!r}")
            parts = urlsplit(proxy_url)
            if parts.username or parts.password:
                raise self.fail("proxy", "no credentials in the URL: set proxy_password_file")
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise self.fail("proxy", f"{proxy_url!r} must be an http://host:port proxy URL")
            if parts.path.strip("/") or parts.query or parts.fragment:
                raise self.fail("proxy", f"{proxy_url!r} must be scheme://host:port only")
        if (username is None) != (password is None):
            raise self.fail("proxy_username", "proxy_username and proxy_password go together")
        if username is not None:
            if proxy_url is None:
                raise self.fail("proxy_username", "proxy credentials without a proxy")
            if not isinstance(username, str):
                raise self.fail("proxy_username", f"must be a string, not {username!r}")
            assert password is not None
            proxy = httpx.Proxy(proxy_url.rstrip("/"), auth=(username, password.reveal()))
        elif proxy_url is not None:
            proxy = httpx.Proxy(proxy_url.rstrip("/"))
        return HttpOptions(proxy, trust_env)

    def secret_key(self, key: str) -> str:
        """The key the secret was given as (``KEY_file``, ...), for error messages."""
        secret = self.context.secrets.get(key)
        kind = secret.source.split(":", 1)[0] if secret else "inline"
        return key if kind == "inline" else f"{key}_{kind}"

    def finish(self) -> None:
        """Refuse keys the notifier does not know, with a did-you-mean hint."""
        for key in sorted(set(self.options) | set(self.context.secrets)):
            if key in self.known:
                continue
            close = difflib.get_close_matches(key, sorted(self.known), n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise self.fail(key, f"unknown option{hint}")


def check_url(text: str, fail: Any, *, allow_path: bool) -> None:
    """Refuse anything but https (http only to loopback); ``fail(message)`` makes the error."""
    parts = urlsplit(text)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise fail("must be an https:// URL")
    if parts.username or parts.password:
        raise fail("must not contain a user name or password")
    if not allow_path and parts.path not in ("", "/"):
        raise fail("must be scheme://host[:port] only")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise fail("uses plain http to a remote host; use https://")
