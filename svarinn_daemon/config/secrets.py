"""Secrets from a file, an environment variable or systemd's $CREDENTIALS_DIRECTORY.

A config key ``password`` may be written as one of ``password`` (inline, discouraged),
``password_file``, ``password_env`` or ``password_credential``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

VARIANTS = ("", "_file", "_env", "_credential")


@dataclass(frozen=True)
class Secret:
    """A secret value that never shows itself in repr, str or logs."""

    source: str
    _value: bytes = field(repr=False)
    path: Path | None = None

    def reveal(self) -> str:
        return self._value.decode("utf-8")

    def reveal_bytes(self) -> bytes:
        return self._value

    def __str__(self) -> str:
        return f"*** ({self.source})"

    def __repr__(self) -> str:
        return f"Secret(source={self.source!r}, value=***)"


class SecretSourceError(Exception):
    """A secret's source is missing or unreadable; the loader adds file and key."""

    def __init__(self, key: str, message: str):
        self.key = key
        super().__init__(message)


def secret_keys(name: str) -> tuple[str, ...]:
    return tuple(name + v for v in VARIANTS)


def resolve_secret(
    table: Mapping[str, object],
    name: str,
    *,
    environ: Mapping[str, str],
    base_dir: Path,
    strip: bool = True,
) -> Secret | None:
    """Read the one variant of ``name`` that ``table`` sets, or None when none is set.

    ``strip`` removes surrounding whitespace (a trailing newline in a password file);
    PEM keys keep their bytes as they are.
    """
    present = [name + v for v in VARIANTS if name + v in table]
    if not present:
        return None
    if len(present) > 1:
        raise SecretSourceError(present[1], f"set only one of {', '.join(present)}")
    key = present[0]
    raw = table[key]
    if not isinstance(raw, str) or not raw:
        raise SecretSourceError(key, "must be a non-empty string")
    path: Path | None = None
    if key == name:
        value = raw.encode("utf-8")
        source = "inline"
    elif key.endswith("_env"):
        if raw not in environ:
            raise SecretSourceError(key, f"environment variable {raw} is not set")
        value = environ[raw].encode("utf-8")
        source = f"env:{raw}"
    else:
        if key.endswith("_credential"):
            cred_dir = environ.get("CREDENTIALS_DIRECTORY")
            if not cred_dir:
                raise SecretSourceError(
                    key,
                    "$CREDENTIALS_DIRECTORY is not set (systemd sets it for units with "
                    "LoadCredential=)",
                )
            if "/" in raw or raw in (".", ".."):
                raise SecretSourceError(key, f"{raw!r} is not a credential name")
            path = Path(cred_dir) / raw
            source = f"credential:{raw}"
        else:
            path = Path(raw) if Path(raw).is_absolute() else base_dir / raw
            source = f"file:{path}"
        try:
            value = path.read_bytes()
        except FileNotFoundError:
            raise SecretSourceError(key, f"file {path} does not exist") from None
        except OSError as exc:
            raise SecretSourceError(key, f"cannot read {path}: {exc.strerror}") from None
    if strip:
        value = value.strip()
    if not value:
        raise SecretSourceError(key, f"the secret from {source} is empty")
    return Secret(source=source, _value=value, path=path)


def secret_masks(secret: Secret | None) -> list[str]:
    """The strings a log redactor must hide for this secret."""
    if secret is None:
        return []
    try:
        text = secret.reveal()
    except UnicodeDecodeError:
        return []
    return [text] if len(text) >= 4 else []


__all__ = [
    "Secret",
    "SecretSourceError",
    "resolve_secret",
    "secret_keys",
    "secret_masks",
]
