"""Reading one TOML table: typed getters that name the file and the dotted key on error,
and remember which keys were asked for so unknown ones can be refused with a suggestion."""

from __future__ import annotations

import difflib
import socket
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any, NoReturn, TypeVar

from svarinn_daemon.config.secrets import Secret, SecretSourceError, resolve_secret, secret_keys
from svarinn_daemon.config.units import parse_duration, parse_size
from svarinn_daemon.errors import ConfigError

T = TypeVar("T")
MISSING: Any = object()


class Table:
    """One TOML table being read: remembers which keys were asked for."""

    def __init__(self, data: Mapping[str, Any], path: str, ctx: Context):
        self.data = data
        self.path = path
        self.ctx = ctx
        self.known: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def fail(self, name: str, message: str) -> NoReturn:
        raise ConfigError(message, source=str(self.ctx.source), key=self.key(name))

    def _get(self, name: str, default: Any, kind: type[T], kind_name: str) -> T:
        self.known.add(name)
        if name not in self.data:
            if default is MISSING:
                self.fail(name, "is required" + self._misspelt(name))
            return default  # type: ignore[no-any-return]
        value = self.data[name]
        if kind is int and isinstance(value, bool):
            self.fail(name, f"must be {kind_name}, not a boolean")
        if not isinstance(value, kind):
            self.fail(name, f"must be {kind_name}, not {toml_type(value)} ({value!r})")
        return value

    def string(self, name: str, default: Any = MISSING, choices: tuple[str, ...] = ()) -> str:
        value = self._get(name, default, str, "a string")
        if choices and value not in choices:
            self.fail(name, f"must be one of {', '.join(choices)}, not {value!r}")
        return value

    def boolean(self, name: str, default: Any = MISSING) -> bool:
        return self._get(name, default, bool, "true or false")

    def integer(self, name: str, default: Any = MISSING, minimum: int | None = None) -> int:
        value = self._get(name, default, int, "a whole number")
        if minimum is not None and value < minimum:
            self.fail(name, f"must be at least {minimum}, not {value}")
        return value

    def duration(
        self, name: str, default: Any = MISSING, minimum: timedelta | None = None
    ) -> timedelta:
        self.known.add(name)
        if name not in self.data and default is not MISSING:
            return default  # type: ignore[no-any-return]
        text = self.string(name)
        try:
            value = parse_duration(text)
        except ValueError as exc:
            self.fail(name, str(exc))
        if minimum is not None and value < minimum:
            self.fail(name, f"must be at least {minimum.total_seconds():g}s, not {text!r}")
        return value

    def size(self, name: str, default: Any = MISSING) -> int:
        self.known.add(name)
        if name not in self.data and default is not MISSING:
            return default  # type: ignore[no-any-return]
        value = self.data.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
        try:
            size = parse_size(self.string(name))
        except ValueError as exc:
            self.fail(name, str(exc))
        if size <= 0:
            self.fail(name, "must be larger than zero")
        return size

    def path_value(self, name: str, default: Any = MISSING) -> Path:
        self.known.add(name)
        if name not in self.data and default is not MISSING:
            return default  # type: ignore[no-any-return]
        raw = Path(self.string(name))
        return raw if raw.is_absolute() else self.ctx.base_dir / raw

    def string_list(self, name: str, default: tuple[str, ...] = ()) -> tuple[str, ...]:
        self.known.add(name)
        if name not in self.data:
            return default
        value = self.data[name]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.fail(name, f"must be a list of strings, not {toml_type(value)}")
        return tuple(value)

    def table(self, name: str) -> Table:
        self.known.add(name)
        value = self.data.get(name, {})
        if not isinstance(value, dict):
            self.fail(name, f"must be a table ([{self.key(name)}]), not {toml_type(value)}")
        return Table(value, self.key(name), self.ctx)

    def tables(self, name: str) -> list[Table]:
        self.known.add(name)
        value = self.data.get(name, [])
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            self.fail(name, f"must be an array of tables ([[{self.key(name)}]])")
        return [Table(v, f"{self.key(name)}[{i}]", self.ctx) for i, v in enumerate(value)]

    def secret(self, name: str, *, required: bool, strip: bool = True) -> Secret | None:
        self.known.update(secret_keys(name))
        try:
            secret = resolve_secret(
                self.data, name, environ=self.ctx.environ, base_dir=self.ctx.base_dir, strip=strip
            )
        except SecretSourceError as exc:
            self.fail(exc.key, str(exc))
        if secret is None and required:
            self.fail(
                name,
                f"is required: set one of {', '.join(secret_keys(name)[1:])}"
                + self._misspelt(*secret_keys(name)),
            )
        if secret is not None and secret.source == "inline":
            self.ctx.warnings.append(
                f"{self.key(name)} is written inline in the config file; prefer "
                f"{name}_file, {name}_env or {name}_credential"
            )
        return secret

    def _misspelt(self, *names: str) -> str:
        """When a required key is missing, point at a key in the file that looks like it."""
        candidates = [k for k in self.data if k not in self.known]
        for name in names:
            close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.75)
            if close:
                return f" (the file has {close[0]!r}: misspelt?)"
        return ""

    def finish(self) -> None:
        """Refuse keys nobody asked for, with a did-you-mean suggestion."""
        for name in self.data:
            if name in self.known:
                continue
            close = difflib.get_close_matches(name, sorted(self.known), n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            self.fail(name, f"unknown key{hint}")


class Context:
    def __init__(self, source: Path, environ: Mapping[str, str], *, load_keys: bool = True):
        self.source = source
        self.load_keys = load_keys
        self.base_dir = source.parent
        self.environ = environ
        self.hostname = socket.gethostname()
        self.warnings: list[str] = []


def toml_type(value: object) -> str:
    return {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "a table",
    }.get(type(value), type(value).__name__)
