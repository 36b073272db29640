"""Print the effective configuration as TOML, with every secret masked.

Driven by the configuration's own dataclasses: each field is written under its own name,
as its type says (durations, sizes, secrets masked), so a new key cannot be forgotten here.
A field whose TOML key differs says so in its metadata (``key``), a size says ``unit``, and
a field that is no key of the file (derived, or written by a rule below) says ``toml=False``;
``tests/config/test_render.py`` checks that every field is one or the other.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import Field, fields, is_dataclass
from datetime import timedelta
from typing import Any

from svarinn_daemon.config.model import (
    AccountConfig,
    ArchiveConfig,
    Config,
    KeyConfig,
    MetricsConfig,
    NotifierConfig,
)
from svarinn_daemon.config.secrets import Secret
from svarinn_daemon.config.units import format_duration, format_size
from svarinn_daemon.policies import VerifyPolicy

# Archive options that hold a secret when written inline (adapters read them as secrets).
_INLINE_SECRETS = ("authorization", "password", "token", "secret")


__all__ = ["render_config", "rendered", "toml_key", "toml_value"]


def toml_value(value: Any, unit: str | None = None) -> str:
    """A value as TOML; ``unit`` "size" writes bytes as a size, "int" a float as a whole."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if unit == "size" and isinstance(value, int):
        return json.dumps(format_size(value))
    if isinstance(value, float) and unit == "int":
        return str(int(value))
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, timedelta):
        return json.dumps(format_duration(value))
    if isinstance(value, Secret):
        return json.dumps(f"*** from {value.source}")
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        items = ", ".join(f"{json.dumps(str(k))} = {toml_value(v)}" for k, v in value.items())
        return "{ " + items + " }" if items else "{}"
    return json.dumps(str(value), ensure_ascii=False)


def rendered(field: Field[Any]) -> bool:
    """Whether the generic rule writes this field (a plain value, not a nested table)."""
    return field.metadata.get("toml", True) is not False


def toml_key(field: Field[Any]) -> str:
    return str(field.metadata.get("key", field.name))


def _lines(obj: Any) -> list[str]:
    """``key = value`` for each plain field; None (not set) and nested tables left out."""
    out: list[str] = []
    for f in fields(obj):
        value = getattr(obj, f.name)
        nested = is_dataclass(value) and not isinstance(value, Secret)  # a table of its own
        if not rendered(f) or value is None or nested:
            continue
        out.append(f"{toml_key(f)} = {toml_value(value, f.metadata.get('unit'))}")
    return out


def _table(name: str, obj: Any, *extra: str) -> list[str]:
    return ["", f"[{name}]", *_lines(obj), *extra]


def _listen(metrics: MetricsConfig) -> str:
    listen = metrics.listen
    return f"listen = {toml_value(f'{listen[0]}:{listen[1]}' if listen else '')}"


def _missing(verify: VerifyPolicy) -> str:
    missing = "import" if verify.allow_missing_documents else "fail"
    return f"missing_documents = {toml_value(missing)}"


def _notifier(notifier: NotifierConfig) -> list[str]:
    out = ["", "[[notifiers]]", *_lines(notifier)]
    out += [f"{k} = {toml_value(v)}" for k, v in notifier.options.items()]
    return out + [f"{k} = {toml_value(v)}" for k, v in notifier.secrets.items()]


def _archive(archive: ArchiveConfig) -> list[str]:
    out = ["", f"[archives.{archive.name}]", f"adapter = {toml_value(archive.adapter)}"]
    for key, value in archive.options.items():
        inline = key in _INLINE_SECRETS and isinstance(value, str)
        out.append(f"{key} = {json.dumps('*** (inline)') if inline else toml_value(value)}")
    return out


def _key(key: KeyConfig) -> list[str]:
    out = ["", "[[accounts.keys]]", f"private_key = {toml_value('*** from ' + key.pair.label)}"]
    if key.certificate_path:
        out.append(f"certificate_file = {toml_value(str(key.certificate_path))}")
    if cert := key.pair.describe_certificate():
        out.append(f"# certificate: {cert}")
    return out


def _account(account: AccountConfig) -> list[str]:
    shadow = "receipts = false"
    out = ["", "[[accounts]]"]
    out += [
        f"{x}  # shadow mode: imports, never acknowledges" if x == shadow else x
        for x in _lines(account)
    ]
    for key in account.keys:
        out += _key(key)
    out += _table("accounts.http", account.http)
    return out


def render_config(config: Config) -> str:
    """The configuration as the daemon will use it, defaults filled in, secrets masked."""
    out = [f"# effective configuration from {config.source}"]
    out.append(f"state_directory = {toml_value(str(config.state_directory))}")
    out += _table("logging", config.logging)
    out += _table("ledger", config.ledger)
    out += _table("daemon", config.daemon)
    out += _table("metrics", config.metrics, _listen(config.metrics))
    out += _table("retry", config.retry)
    out += _table("verify", config.verify.limits, _missing(config.verify))
    out += _table("alerts", config.alerts)
    for notifier in config.notifiers:
        out += _notifier(notifier)
    for archive in config.archives.values():
        out += _archive(archive)
    for n, route in enumerate(config.routes):
        out += ["", f"# routes[{n}]: first match wins; no match: the account's archive"]
        out += ["[[routes]]", *(x for x in _lines(route) if not x.endswith("= []"))]
    for account in config.accounts:
        out += _account(account)
    return "\n".join(out) + "\n"
