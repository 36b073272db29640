"""Reading an adapter's options table, with errors that name ``archives.NAME.KEY``."""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from svarinn_daemon.adapters.base import AdapterContext
from svarinn_daemon.config.secrets import (
    Secret,
    SecretSourceError,
    resolve_secret,
    secret_keys,
)
from svarinn_daemon.config.units import parse_duration


class AdapterOptions:
    """One ``[archives.NAME]`` table being read; remembers which keys were asked for."""

    def __init__(self, options: Mapping[str, Any], context: AdapterContext):
        self.options = options
        self.context = context
        self.known: set[str] = set()

    def _raw(self, key: str) -> Any:
        self.known.add(key)
        return self.options.get(key)

    def string(self, key: str, default: str) -> str:
        value = self._raw(key)
        if value is None:
            return default
        if not isinstance(value, str):
            raise self.context.option_error(key, f"must be a string, not {value!r}")
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self._raw(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self.context.option_error(key, f"must be true or false, not {value!r}")
        return value

    def path(self, key: str, default: Path) -> Path:
        value = self._raw(key)
        if value is None:
            return default
        if not isinstance(value, str) or not value.strip():
            raise self.context.option_error(key, f"must be a path (a string), not {value!r}")
        path = Path(value)
        return path if path.is_absolute() else self.context.base_dir / path

    def argv(self, key: str, *, required: bool) -> tuple[str, ...] | None:
        """A program and its arguments as a list of strings (never a shell line)."""
        value = self._raw(key)
        if value is None:
            if required:
                raise self.context.option_error(
                    key, 'is required: the program and its arguments, e.g. ["/usr/bin/prog"]'
                )
            return None
        if isinstance(value, str):
            raise self.context.option_error(
                key,
                f"must be a list (argv, never run by a shell), e.g. {value.split()!r}",
            )
        if (
            not isinstance(value, list)
            or not value
            or not all(isinstance(part, str) for part in value)
            or not value[0].strip()
        ):
            raise self.context.option_error(
                key, f"must be a non-empty list of strings (the program first), not {value!r}"
            )
        return tuple(value)

    def duration(self, key: str, default: timedelta) -> timedelta:
        """A duration like "90s", "5m" or "1h30m"; more than zero."""
        value = self._raw(key)
        if value is None:
            return default
        if not isinstance(value, str):
            raise self.context.option_error(key, f'must be a duration like "5m", not {value!r}')
        try:
            parsed = parse_duration(value)
        except ValueError as exc:
            raise self.context.option_error(key, str(exc)) from None
        if parsed <= timedelta(0):
            raise self.context.option_error(key, f"must be longer than zero, not {value!r}")
        return parsed

    def optional_path(self, key: str) -> Path | None:
        if self.options.get(key) is None:
            self.known.add(key)
            return None
        return self.path(key, Path())

    def mode(self, key: str, default: int, *, required_bits: int) -> int:
        """A permission mode written as an octal string ("0640") or a TOML octal (0o640)."""
        value = self._raw(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise self.context.option_error(
                key, f'must be an octal mode like "0640", not {value!r}'
            )
        if isinstance(value, str):
            text = value.strip().removeprefix("0o")
            if not text or any(c not in "01234567" for c in text):
                raise self.context.option_error(
                    key, f'must be an octal mode like "0640", not {value!r}'
                )
            value = int(text, 8)
        if not 0 <= value <= 0o777:
            raise self.context.option_error(
                key, f"must be permission bits between 0000 and 0777, not {value:o}"
            )
        if value & required_bits != required_bits:
            raise self.context.option_error(
                key, f"{value:04o} must grant the owner at least {required_bits:04o}"
            )
        return value

    def secret(self, key: str, *, environ: Mapping[str, str] | None = None) -> Secret | None:
        """A secret written as ``KEY_file``, ``KEY_env``, ``KEY_credential`` (or inline)."""
        self.known.update(secret_keys(key))
        try:
            return resolve_secret(
                self.options,
                key,
                environ=os.environ if environ is None else environ,
                base_dir=self.context.base_dir,
            )
        except SecretSourceError as exc:
            raise self.context.option_error(exc.key, str(exc)) from None

    def string_table(self, key: str) -> dict[str, str]:
        """A table of strings (``headers = { X-Kommune = "3801" }``)."""
        value = self._raw(key)
        if value is None:
            return {}
        if not isinstance(value, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            raise self.context.option_error(key, f"must be a table of strings, not {value!r}")
        return dict(value)

    def finish(self) -> None:
        """Refuse keys the adapter does not know, with a did-you-mean hint."""
        for key in self.options:
            if key in self.known:
                continue
            close = difflib.get_close_matches(key, sorted(self.known), n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            known = ", ".join(sorted(self.known)) or "none"
            raise self.context.option_error(key, f"unknown option (known: {known}){hint}")
