"""The ``[alerts]`` table (thresholds) and the ``[[notifiers]]`` array.

A notifier table has ``name``, ``type`` (an entry point in ``svarinn_daemon.notifiers``),
optionally ``conditions``, and the type's own options. Any option written ``KEY_file``,
``KEY_env`` or ``KEY_credential`` is a secret named KEY (read here, so the log redactor
knows it); so are the known secret names written inline. The type's factory checks the
rest when the notifier is created.
"""

from __future__ import annotations

import re
from datetime import timedelta
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from svarinn_daemon.config.model import AlertsConfig, Condition, NotifierConfig
from svarinn_daemon.config.secrets import Secret

if TYPE_CHECKING:
    from svarinn_daemon.config.table import Table

# Options that are secrets even when written inline (check-config warns about those).
INLINE_SECRETS = ("url", "authorization", "integrasjon_passord", "private_key", "passphrase")
_SECRET_SUFFIXES = ("_file", "_env", "_credential")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
CONDITIONS = tuple(c.value for c in Condition if c is not Condition.TEST)


def read_alerts(table: Table) -> AlertsConfig:
    minute = timedelta(minutes=1)
    # Each threshold and its least value (zero: alert at once, or never repeat).
    least = {
        "pending_after": minute,
        "polls_failing_after": minute,
        "archive_unavailable_after": timedelta(0),
        "repeat_every": timedelta(0),
    }
    defaults = AlertsConfig()
    alerts = AlertsConfig(
        **{key: table.duration(key, getattr(defaults, key), low) for key, low in least.items()}
    )
    if timedelta(0) < alerts.repeat_every < minute:
        table.fail("repeat_every", 'must be "0s" (never repeat) or at least 1m')
    table.finish()
    return alerts


def read_notifiers(tables: list[Table]) -> tuple[NotifierConfig, ...]:
    if not tables:
        return (NotifierConfig(name="log", type="log"),)
    out: list[NotifierConfig] = []
    for index, table in enumerate(tables):
        notifier = _notifier(table, index)
        if any(n.name == notifier.name for n in out):
            table.fail("name", f"duplicate notifier name {notifier.name!r}")
        out.append(notifier)
    return tuple(out)


def _notifier(table: Table, index: int) -> NotifierConfig:
    name = table.string("name")
    if not _NAME.fullmatch(name):
        table.fail("name", f"{name!r} must be letters, digits, '-' or '_' (at most 64)")
    kind = table.string("type")
    conditions = table.string_list("conditions")
    for i, condition in enumerate(conditions):
        if condition not in CONDITIONS:
            table.fail(f"conditions[{i}]", f"must be one of {', '.join(CONDITIONS)}")
    secrets: dict[str, Secret] = {}
    options: dict[str, Any] = {}
    for key in list(table.data):
        if key in table.known:
            continue
        base = next((key.removesuffix(s) for s in _SECRET_SUFFIXES if key.endswith(s)), None)
        secret_name = base if base else key if key in INLINE_SECRETS else None
        if secret_name is None:
            table.known.add(key)
            options[key] = table.data[key]
        elif secret_name not in secrets:
            secret = table.secret(secret_name, required=False)
            if secret is not None:
                secrets[secret_name] = secret
    table.finish()
    return NotifierConfig(
        name=name,
        type=kind,
        conditions=conditions,
        options=MappingProxyType(options),
        secrets=MappingProxyType(secrets),
        index=index,
    )
