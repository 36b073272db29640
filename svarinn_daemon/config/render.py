"""Print the effective configuration as TOML, with every secret masked."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from svarinn_daemon.config.model import Config
from svarinn_daemon.config.secrets import Secret
from svarinn_daemon.config.units import format_duration, format_size


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, Secret):
        return json.dumps(f"*** from {value.source}")
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        items = ", ".join(f"{json.dumps(str(k))} = {_value(v)}" for k, v in value.items())
        return "{ " + items + " }" if items else "{}"
    return json.dumps(str(value), ensure_ascii=False)


# Archive options that hold a secret when written inline (adapters read them as secrets).
_INLINE_SECRETS = ("authorization", "password", "token", "secret")


def _archive_option(key: str, value: Any) -> str:
    if key in _INLINE_SECRETS and isinstance(value, str):
        return json.dumps("*** (inline)")
    return _value(value)


def render_config(config: Config) -> str:
    """The configuration as the daemon will use it, defaults filled in, secrets masked."""
    out = [f"# effective configuration from {config.source}"]
    out.append(f"state_directory = {_value(str(config.state_directory))}")
    out += ["", "[logging]", f"level = {_value(config.logging.level)}"]
    out.append(f"format = {_value(config.logging.format)}")
    out += ["", "[ledger]", f"url = {_value(config.ledger.url)}"]
    if config.ledger.password:
        out.append(f"password = {_value(config.ledger.password)}")
    out.append(f"migrate_on_start = {_value(config.ledger.migrate_on_start)}")
    out.append(f"busy_timeout = {_value(format_duration(config.ledger.busy_timeout))}")
    d = config.daemon
    out += [
        "",
        "[daemon]",
        f"worker_id = {_value(d.worker_id)}",
        f"poll_interval = {_value(format_duration(d.poll_interval))}",
        f"poll_jitter = {_value(format_duration(d.poll_jitter))}",
        f"concurrency = {d.concurrency}",
        f"lease = {_value(format_duration(d.lease))}",
        f"shutdown_grace = {_value(format_duration(d.shutdown_grace))}",
        f"stall_timeout = {_value(format_duration(d.stall_timeout))}",
        "",
        "[metrics]",
    ]
    listen = config.metrics.listen
    out.append(f"listen = {_value(f'{listen[0]}:{listen[1]}' if listen else '')}")
    out.append(f"ready_poll_age = {_value(format_duration(config.metrics.ready_poll_age))}")
    retry = config.retry
    out += [
        "",
        "[retry]",
        f"base_delay = {_value(format_duration(retry.base_delay))}",
        f"max_delay = {_value(format_duration(retry.max_delay))}",
        f"jitter = {_value(retry.jitter)}",
        f"max_download_attempts = {_value(retry.max_download_attempts)}",
        f"temporary_report_after = {_value(format_duration(retry.temporary_report_after))}",
        f"temporary_report_interval = {_value(format_duration(retry.temporary_report_interval))}",
        f"treat_key_errors_as_permanent = {_value(retry.treat_key_errors_as_permanent)}",
        f"archive_pause_after = {_value(retry.archive_pause_after)}",
        f"archive_probe_delay = {_value(format_duration(retry.archive_probe_delay))}",
        f"archive_probe_max_delay = {_value(format_duration(retry.archive_probe_max_delay))}",
    ]
    limits = config.verify.limits
    missing = "import" if config.verify.allow_missing_documents else "fail"
    out += [
        "",
        "[verify]",
        f"max_zip_entries = {_value(limits.max_entries)}",
        f"max_unpacked_size = {_value(format_size(limits.max_total_size))}",
        f"max_compression_ratio = {_value(int(limits.max_ratio))}",
        f"missing_documents = {_value(missing)}",
    ]
    alerts = config.alerts
    out += [
        "",
        "[alerts]",
        f"pending_after = {_value(format_duration(alerts.pending_after))}",
        f"polls_failing_after = {_value(format_duration(alerts.polls_failing_after))}",
        f"archive_unavailable_after = {_value(format_duration(alerts.archive_unavailable_after))}",
        f"repeat_every = {_value(format_duration(alerts.repeat_every))}",
    ]
    for notifier in config.notifiers:
        out += [
            "",
            "[[notifiers]]",
            f"name = {_value(notifier.name)}",
            f"type = {_value(notifier.type)}",
            f"conditions = {_value(list(notifier.conditions))}",
        ]
        out += [f"{k} = {_value(v)}" for k, v in notifier.options.items()]
        out += [f"{k} = {_value(v)}" for k, v in notifier.secrets.items()]
    for archive in config.archives.values():
        out += ["", f"[archives.{archive.name}]", f"adapter = {_value(archive.adapter)}"]
        out += [f"{k} = {_archive_option(k, v)}" for k, v in archive.options.items()]
    for n, route in enumerate(config.routes):
        out += ["", f"# routes[{n}]: first match wins; no match: the account's archive"]
        out += ["[[routes]]", f"archive = {_value(route.archive)}"]
        for condition in ("account", "type", "mottaker_orgnr", "avsender"):
            if getattr(route, condition):
                out.append(f"{condition} = {_value(list(getattr(route, condition)))}")
    for account in config.accounts:
        http = account.http
        out += [
            "",
            "[[accounts]]",
            f"name = {_value(account.name)}",
            f"api = {_value(account.api)}",
            f"base_url = {_value(account.base_url)}",
            f"username = {_value(account.username)}",
            f"password = {_value(account.password)}",
            f"archive = {_value(account.archive)}",
            f"receipts = {_value(account.receipts)}"
            + ("" if account.receipts else "  # shadow mode: imports, never acknowledges"),
        ]
        for key in account.keys:
            out += [
                "",
                "[[accounts.keys]]",
                f"private_key = {_value('*** from ' + key.pair.label)}",
            ]
            if key.certificate_path:
                out.append(f"certificate_file = {_value(str(key.certificate_path))}")
            cert = key.pair.describe_certificate()
            if cert:
                out.append(f"# certificate: {cert}")
        out += [
            "",
            "[accounts.http]",
            f"connect_timeout = {_value(format_duration(http.connect_timeout))}",
            f"read_timeout = {_value(format_duration(http.read_timeout))}",
            f"write_timeout = {_value(format_duration(http.write_timeout))}",
            f"pool_timeout = {_value(format_duration(http.pool_timeout))}",
            f"verify_tls = {_value(http.verify_tls)}",
            f"max_download_size = {_value(format_size(http.max_download_size))}",
            f"allowed_download_origins = {_value(list(http.allowed_download_origins))}",
            f"download_min_rate = {_value(format_size(http.download_min_rate))}",
            f"download_deadline_base = {_value(format_duration(http.download_deadline_base))}",
            f"listing_deadline = {_value(format_duration(http.listing_deadline))}",
        ]
        if http.ca_bundle:
            out.append(f"ca_bundle = {_value(str(Path(http.ca_bundle)))}")
        out.append(f"trust_env = {_value(http.trust_env)}")
        if http.proxy:
            out.append(f"proxy = {_value(http.proxy)}")
        if http.proxy_username and http.proxy_password:
            out.append(f"proxy_username = {_value(http.proxy_username)}")
            out.append(f"proxy_password = {_value('*** from ' + http.proxy_password.source)}")
    return "\n".join(out) + "\n"
