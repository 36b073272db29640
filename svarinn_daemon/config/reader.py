"""One reader for every table of options: the config file's own tables (``config/table.py``),
an archive's options (``adapters/options.py``) and a notifier's (``alerts/notifiers/options.py``).

Each getter marks its key as asked for, so ``finish`` can refuse the rest with a did-you-mean,
and refuses a wrong value with the same words wherever it stands. Only how a key is named in
an error (``accounts[0].http.proxy``, ``archives.NAME.KEY``, ``notifiers[i].KEY``) differs:
a subclass says it in ``error``. A secret's value is never part of a message.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, NoReturn, Protocol

from svarinn_daemon.config.secrets import Secret, SecretSourceError, resolve_secret, secret_keys
from svarinn_daemon.config.units import parse_duration, parse_size
from svarinn_daemon.config.urls import proxy_problem, url_problem
from svarinn_daemon.errors import ConfigError

__all__ = [
    "MISSING",
    "POSITIVE",
    "ContextOptions",
    "OptionContext",
    "OptionReader",
    "ProxySettings",
    "toml_type",
]

MISSING: Any = object()  # the default of a required key
POSITIVE = timedelta(milliseconds=1)  # a duration's minimum: longer than zero


@dataclass(frozen=True)
class ProxySettings:
    """A table's ``proxy``, ``proxy_username`` + ``proxy_password_*`` and ``trust_env``."""

    url: str | None = None
    username: str | None = None
    password: Secret | None = None
    trust_env: bool = False


class OptionReader:
    """One table of options being read; remembers which keys were asked for."""

    unknown = "unknown option"  # how ``finish`` calls a key nobody asked for

    def __init__(
        self,
        data: Mapping[str, Any],
        *,
        base_dir: Path,
        environ: Mapping[str, str],
        warnings: list[str] | None = None,
    ):
        self.data = data
        self.base_dir = base_dir
        self.environ = environ
        self.warnings = warnings  # where an inline secret is warned about (None: not)
        self.known: set[str] = set()

    def error(self, key: str, message: str) -> ConfigError:
        """The error about ``key``; a subclass names the key as the operator wrote it."""
        return ConfigError(message, key=self.where(key))

    def where(self, key: str) -> str:
        """``key`` as an error names it (a subclass adds its table's place)."""
        return key

    def fail(self, key: str, message: str) -> NoReturn:
        raise self.error(key, message)

    def _present(self, key: str, default: Any) -> bool:
        """Whether ``key`` is set (None counts as not); a required one must be."""
        self.known.add(key)
        if self.data.get(key) is not None:
            return True
        if default is MISSING:
            self.fail(key, "is required" + self._misspelt(key))
        return False

    def _typed(self, key: str, kind: type | tuple[type, ...], kind_name: str) -> Any:
        value = self.data[key]
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            self.fail(key, f"must be {kind_name}, not {describe(value)}")
        return value

    def string(
        self, key: str, default: Any = MISSING, choices: tuple[str, ...] = (), *, blank: bool = True
    ) -> str:
        """``blank=False``: surrounding white space dropped, and something must be left."""
        if not self._present(key, default):
            return default  # type: ignore[no-any-return]
        value: str = self._typed(key, str, "a string")
        if not blank:
            value = value.strip()
            if not value:
                self.fail(key, f"must be a non-empty string, not {self.data[key]!r}")
        if choices and value not in choices:
            self.fail(key, f"must be one of {', '.join(choices)}, not {value!r}")
        return value

    def boolean(self, key: str, default: Any = MISSING) -> bool:
        if not self._present(key, default):
            return default  # type: ignore[no-any-return]
        return self._typed(key, bool, "true or false")  # type: ignore[no-any-return]

    def integer(
        self,
        key: str,
        default: Any = MISSING,
        minimum: int | None = None,
        maximum: int | None = None,
    ) -> int:
        if not self._present(key, default):
            return default  # type: ignore[no-any-return]
        value: int = self._typed(key, int, "a whole number")
        low = minimum is not None and value < minimum
        high = maximum is not None and value > maximum
        if (low or high) and minimum is not None and maximum is not None:
            self.fail(key, f"must be from {minimum} to {maximum}, not {value}")
        if low:
            self.fail(key, f"must be at least {minimum}, not {value}")
        if high:
            self.fail(key, f"must be at most {maximum}, not {value}")
        return value

    def duration(
        self, key: str, default: Any = MISSING, minimum: timedelta | None = None
    ) -> timedelta:
        """A duration like "90s", "5m" or "1h30m"; ``POSITIVE``: longer than zero."""
        if not self._present(key, default):
            return default  # type: ignore[no-any-return]
        text: str = self._typed(key, str, 'a duration like "5m"')
        try:
            value = parse_duration(text)
        except ValueError as exc:
            self.fail(key, str(exc))
        if minimum is not None and value < minimum:
            least = (
                "longer than zero"
                if minimum == POSITIVE
                else f"at least {minimum.total_seconds():g}s"
            )
            self.fail(key, f"must be {least}, not {text!r}")
        return value

    def size(self, key: str, default: Any = MISSING) -> int:
        """Bytes, as a number or a size like "500MB"; more than zero."""
        if not self._present(key, default):
            return default  # type: ignore[no-any-return]
        value = self._typed(key, (int, str), 'a size like "500MB"')
        if isinstance(value, str):
            try:
                value = parse_size(value)
            except ValueError as exc:
                self.fail(key, str(exc))
        if value <= 0:
            self.fail(key, "must be larger than zero")
        return value  # type: ignore[no-any-return]

    def path(self, key: str, default: Any = MISSING) -> Path:
        """A path; a relative one is read from the configuration file's directory."""
        if not self._present(key, default):
            return default  # type: ignore[no-any-return]
        value: str = self._typed(key, str, "a path (a string)")
        if not value.strip():
            self.fail(key, f"must be a path (a string), not {value!r}")
        path = Path(value)
        return path if path.is_absolute() else self.base_dir / path

    def optional_path(self, key: str) -> Path | None:
        return self.path(key, None)

    def string_list(
        self, key: str, *, required: bool = False, blank: bool = True
    ) -> tuple[str, ...]:
        """``blank=False``: no empty string in it; ``required``: at least one."""
        if not self._present(key, MISSING if required else ()):
            return ()
        value = self.data[key]
        if not isinstance(value, list) or not all(
            isinstance(v, str) and (blank or v) for v in value
        ):
            kind = "strings" if blank else "non-empty strings"
            self.fail(key, f"must be a list of {kind}, not {describe(value)}")
        if required and not value:
            self.fail(key, "must not be empty")
        return tuple(value)

    def string_table(self, key: str) -> dict[str, str]:
        """A table of strings (``headers = { X-Kommune = "3801" }``)."""
        if not self._present(key, {}):
            return {}
        value = self.data[key]
        if not isinstance(value, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            self.fail(
                key, f'must be a table of strings, e.g. {{X-Source = "svarinn"}}, not {value!r}'
            )
        return dict(value)

    def argv(self, key: str, *, required: bool) -> tuple[str, ...] | None:
        """A program and its arguments as a list of strings (never a shell line)."""
        self.known.add(key)
        value = self.data.get(key)
        if value is None:
            if required:
                self.fail(key, 'is required: the program and its arguments, e.g. ["/usr/bin/prog"]')
            return None
        if isinstance(value, str):
            self.fail(key, f"must be a list (argv, never run by a shell), e.g. {value.split()!r}")
        if (
            not isinstance(value, list)
            or not value
            or not all(isinstance(part, str) for part in value)
            or not value[0].strip()
        ):
            self.fail(
                key, f"must be a non-empty list of strings (the program first), not {value!r}"
            )
        return tuple(value)

    def mode(self, key: str, default: int, *, required_bits: int) -> int:
        """A permission mode written as an octal string ("0640") or a TOML octal (0o640)."""
        if not self._present(key, default):
            return default
        value = self.data[key]
        wrong = f'must be an octal mode like "0640", not {value!r}'
        if isinstance(value, bool) or not isinstance(value, int | str):
            self.fail(key, wrong)
        if isinstance(value, str):
            text = value.strip().removeprefix("0o")
            if not text or any(c not in "01234567" for c in text):
                self.fail(key, wrong)
            value = int(text, 8)
        if not 0 <= value <= 0o777:
            self.fail(key, f"must be permission bits between 0000 and 0777, not {value:o}")
        if value & required_bits != required_bits:
            self.fail(key, f"{value:04o} must grant the owner at least {required_bits:04o}")
        return value

    def url(
        self, key: str, default: Any = MISSING, *, path: bool = True, query: bool = True
    ) -> str:
        """An https URL (plain http only to loopback), without a trailing slash."""
        text = self.string(key, default, blank=False).rstrip("/")
        self.check_url(key, text, path=path, query=query)
        return text

    def check_url(self, key: str, text: str, **rules: Any) -> None:
        """``url_problem``'s rules (``path``, ``query``, ``show``, ``credentials``)."""
        if problem := url_problem(text, **rules):
            self.fail(key, problem)

    def _secret(self, key: str, strip: bool) -> Secret | None:
        try:
            return resolve_secret(
                self.data, key, environ=self.environ, base_dir=self.base_dir, strip=strip
            )
        except SecretSourceError as exc:
            self.fail(exc.key, str(exc))

    def secret(self, key: str, *, required: bool = False, strip: bool = True) -> Secret | None:
        """A secret written as ``KEY_file``, ``KEY_env``, ``KEY_credential`` (or inline);
        ``strip=False`` keeps the bytes as they are (PEM keys)."""
        self.known.update(secret_keys(key))
        secret = self._secret(key, strip)
        if secret is None and required:
            self.fail(
                key,
                f"is required: set {key}_file, {key}_env or {key}_credential"
                + self._misspelt(*secret_keys(key)),
            )
        if secret is not None and secret.source == "inline" and self.warnings is not None:
            self.warnings.append(
                f"{self.where(key)} is written inline in the config file; prefer "
                f"{key}_file, {key}_env or {key}_credential"
            )
        return secret

    def proxy(self) -> ProxySettings:
        """``proxy`` (``http://host:port``), ``proxy_username`` + ``proxy_password_*`` (a
        secret) and ``trust_env`` (false: no HTTPS_PROXY/NO_PROXY from the environment)."""
        # Not self.string: NotifierOptions reads a None default there as "required".
        url: str | None = OptionReader.string(self, "proxy", None)
        if url is not None and (problem := proxy_problem(url)):
            self.fail("proxy", problem)
        username: str | None = OptionReader.string(self, "proxy_username", None)
        password = self.secret("proxy_password")
        if (username is None) != (password is None):
            self.fail("proxy_username", "proxy_username and proxy_password go together")
        if username is not None and url is None:
            self.fail("proxy_username", "proxy credentials without a proxy")
        trust_env = self.boolean("trust_env", False)
        return ProxySettings(url.rstrip("/") if url else None, username, password, trust_env)

    def _given(self) -> list[str]:
        """The keys the table sets."""
        return list(self.data)

    def _misspelt(self, *keys: str) -> str:
        """When a required key is missing, point at a key in the table that looks like it."""
        candidates = [k for k in self._given() if k not in self.known]
        for key in keys:
            close = difflib.get_close_matches(key, candidates, n=1, cutoff=0.75)
            if close:
                return f" (the file has {close[0]!r}: misspelt?)"
        return ""

    def finish(self) -> None:
        """Refuse keys nobody asked for, with a did-you-mean hint."""
        for key in self._given():
            if key in self.known:
                continue
            close = difflib.get_close_matches(key, sorted(self.known), n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            known = ", ".join(sorted(self.known)) or "none"
            self.fail(key, f"{self.unknown} (known: {known}){hint}")


class OptionContext(Protocol):
    """What a plugin's context (``AdapterContext``, ``NotifierContext``) tells its options."""

    @property
    def base_dir(self) -> Path: ...

    def option_key(self, key: str) -> str: ...

    def option_error(self, key: str, message: str) -> ConfigError: ...


class ContextOptions(OptionReader):
    """A plugin's options (an archive's, a notifier's): its context names the keys."""

    def __init__(
        self, options: Mapping[str, Any], context: OptionContext, environ: Mapping[str, str]
    ):
        super().__init__(options, base_dir=context.base_dir, environ=environ)
        self.context = context

    def where(self, key: str) -> str:
        return self.context.option_key(key)

    def error(self, key: str, message: str) -> ConfigError:
        return self.context.option_error(key, message)


def toml_type(value: object) -> str:
    return {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "a table",
    }.get(type(value), type(value).__name__)


def describe(value: object) -> str:
    """A wrong value in a message: its TOML type and itself."""
    return f"{toml_type(value)} ({value!r})"
