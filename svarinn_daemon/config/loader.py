"""Read the TOML file once and validate it into :class:`Config`.

Every problem becomes a :class:`ConfigError` naming the file and the dotted key.
"""

from __future__ import annotations

import difflib
import ipaddress
import socket
import stat
import tomllib
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any, NoReturn, TypeVar
from urllib.parse import urlsplit

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from svarinn_daemon.config.alerts import read_alerts, read_notifiers
from svarinn_daemon.config.model import (
    DEFAULT_BASE_URL,
    DEFAULT_STATE_DIRECTORY,
    AccountConfig,
    ArchiveConfig,
    Config,
    DaemonConfig,
    HttpConfig,
    KeyConfig,
    LedgerConfig,
    LoggingConfig,
    MetricsConfig,
)
from svarinn_daemon.config.policies import read_retry, read_verify
from svarinn_daemon.config.secrets import Secret, SecretSourceError, resolve_secret, secret_keys
from svarinn_daemon.config.units import parse_duration, parse_host_port, parse_size
from svarinn_daemon.errors import ConfigError
from svarinn_daemon.keys import load_key_pair

T = TypeVar("T")
_MISSING: Any = object()
LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("auto", "json", "console")


class _Table:
    """One TOML table being read: remembers which keys were asked for."""

    def __init__(self, data: Mapping[str, Any], path: str, ctx: _Context):
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
            if default is _MISSING:
                self.fail(name, "is required" + self._misspelt(name))
            return default  # type: ignore[no-any-return]
        value = self.data[name]
        if kind is int and isinstance(value, bool):
            self.fail(name, f"must be {kind_name}, not a boolean")
        if not isinstance(value, kind):
            self.fail(name, f"must be {kind_name}, not {_toml_type(value)} ({value!r})")
        return value

    def string(self, name: str, default: Any = _MISSING, choices: tuple[str, ...] = ()) -> str:
        value = self._get(name, default, str, "a string")
        if choices and value not in choices:
            self.fail(name, f"must be one of {', '.join(choices)}, not {value!r}")
        return value

    def boolean(self, name: str, default: Any = _MISSING) -> bool:
        return self._get(name, default, bool, "true or false")

    def integer(self, name: str, default: Any = _MISSING, minimum: int | None = None) -> int:
        value = self._get(name, default, int, "a whole number")
        if minimum is not None and value < minimum:
            self.fail(name, f"must be at least {minimum}, not {value}")
        return value

    def duration(
        self, name: str, default: Any = _MISSING, minimum: timedelta | None = None
    ) -> timedelta:
        self.known.add(name)
        if name not in self.data and default is not _MISSING:
            return default  # type: ignore[no-any-return]
        text = self.string(name)
        try:
            value = parse_duration(text)
        except ValueError as exc:
            self.fail(name, str(exc))
        if minimum is not None and value < minimum:
            self.fail(name, f"must be at least {minimum.total_seconds():g}s, not {text!r}")
        return value

    def size(self, name: str, default: Any = _MISSING) -> int:
        self.known.add(name)
        if name not in self.data and default is not _MISSING:
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

    def path_value(self, name: str, default: Any = _MISSING) -> Path:
        self.known.add(name)
        if name not in self.data and default is not _MISSING:
            return default  # type: ignore[no-any-return]
        raw = Path(self.string(name))
        return raw if raw.is_absolute() else self.ctx.base_dir / raw

    def string_list(self, name: str, default: tuple[str, ...] = ()) -> tuple[str, ...]:
        self.known.add(name)
        if name not in self.data:
            return default
        value = self.data[name]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.fail(name, f"must be a list of strings, not {_toml_type(value)}")
        return tuple(value)

    def table(self, name: str) -> _Table:
        self.known.add(name)
        value = self.data.get(name, {})
        if not isinstance(value, dict):
            self.fail(name, f"must be a table ([{self.key(name)}]), not {_toml_type(value)}")
        return _Table(value, self.key(name), self.ctx)

    def tables(self, name: str) -> list[_Table]:
        self.known.add(name)
        value = self.data.get(name, [])
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            self.fail(name, f"must be an array of tables ([[{self.key(name)}]])")
        return [_Table(v, f"{self.key(name)}[{i}]", self.ctx) for i, v in enumerate(value)]

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


class _Context:
    def __init__(self, source: Path, environ: Mapping[str, str]):
        self.source = source
        self.base_dir = source.parent
        self.environ = environ
        self.hostname = socket.gethostname()
        self.warnings: list[str] = []


def _toml_type(value: object) -> str:
    return {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "a table",
    }.get(type(value), type(value).__name__)


def load_config(path: Path, *, environ: Mapping[str, str]) -> Config:
    """Read and validate ``path``. ``environ`` is passed in: nothing reads os.environ here."""
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(
            "the configuration file does not exist (see config.example.toml)", source=str(path)
        ) from None
    except IsADirectoryError:
        raise ConfigError("is a directory, not a configuration file", source=str(path)) from None
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", source=str(path)) from None
    except UnicodeDecodeError:
        raise ConfigError("is not UTF-8 text", source=str(path)) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"invalid TOML: {exc}", source=str(path)) from None
    ctx = _Context(path, environ)
    return _build(_Table(data, "", ctx), ctx)


def _build(root: _Table, ctx: _Context) -> Config:
    state_default = environ_state_directory(ctx.environ)
    state_directory = root.path_value("state_directory", state_default)

    log = root.table("logging")
    logging_config = LoggingConfig(
        level=log.string("level", "info", LOG_LEVELS),
        format=log.string("format", "auto", LOG_FORMATS),
    )
    log.finish()

    ledger = _ledger(root.table("ledger"), state_directory)
    daemon = _daemon(root.table("daemon"), ctx)
    metrics = _metrics(root.table("metrics"))
    retry = read_retry(root.table("retry"))
    verify = read_verify(root.table("verify"))
    alerts = read_alerts(root.table("alerts"))
    notifiers = read_notifiers(root.tables("notifiers"))

    archives: dict[str, ArchiveConfig] = {}
    archives_table = root.table("archives")
    for name in list(archives_table.data):
        section = archives_table.table(name)
        adapter = section.string("adapter")
        options = {k: v for k, v in section.data.items() if k != "adapter"}
        archives[name] = ArchiveConfig(name, adapter, MappingProxyType(options))
    if not archives:
        archives["default"] = ArchiveConfig("default", "filesystem", MappingProxyType({}))

    accounts = tuple(_account(t, archives) for t in root.tables("accounts"))
    if not accounts:
        root.fail(
            "accounts", "at least one [[accounts]] table (a SvarInn mottakersystem) is needed"
        )
    seen: set[str] = set()
    for i, account in enumerate(accounts):
        if account.name in seen:
            raise ConfigError(
                f"duplicate account name {account.name!r}",
                source=str(ctx.source),
                key=f"accounts[{i}].name",
            )
        seen.add(account.name)
    root.finish()
    return Config(
        source=ctx.source,
        state_directory=state_directory,
        logging=logging_config,
        ledger=ledger,
        daemon=daemon,
        metrics=metrics,
        accounts=accounts,
        archives=MappingProxyType(archives),
        warnings=tuple(ctx.warnings),
        retry=retry,
        verify=verify,
        alerts=alerts,
        notifiers=notifiers,
    )


def environ_state_directory(environ: Mapping[str, str]) -> Path:
    """$STATE_DIRECTORY (systemd's StateDirectory=), else /var/lib/svarinn-daemon."""
    first = environ.get("STATE_DIRECTORY", "").split(":")[0]
    return Path(first) if first else DEFAULT_STATE_DIRECTORY


def _ledger(table: _Table, state_directory: Path) -> LedgerConfig:
    default_url = f"sqlite:///{state_directory / 'ledger.sqlite3'}"
    url_text = table.string("url", default_url)
    try:
        url = make_url(url_text)
    except ArgumentError:
        table.fail("url", f"{url_text!r} is not a database URL")
    if url.get_backend_name() not in ("sqlite", "postgresql"):
        table.fail(
            "url",
            f"database {url.get_backend_name()!r} is not supported; use sqlite:///PATH or "
            "postgresql+psycopg://USER@HOST/DB",
        )
    password = table.secret("password", required=False)
    if url.password is not None:
        if password is not None:
            table.fail("password", "the url already contains a password; remove one of them")
        table.ctx.warnings.append(
            f"{table.key('url')} contains a password; prefer password_file or password_env"
        )
        password = Secret(source="inline", _value=str(url.password).encode("utf-8"))
        url = url.set(password=None)
    migrate = table.boolean("migrate_on_start", True)
    table.finish()
    return LedgerConfig(
        url=url.render_as_string(hide_password=False), password=password, migrate_on_start=migrate
    )


def _daemon(table: _Table, ctx: _Context) -> DaemonConfig:
    d = DaemonConfig(worker_id="")
    second = timedelta(seconds=1)
    worker_id = table.string("worker_id", "") or ctx.hostname
    if len(worker_id) > 100:
        table.fail("worker_id", "must be at most 100 characters")
    daemon = DaemonConfig(
        worker_id=worker_id,
        poll_interval=table.duration("poll_interval", d.poll_interval, second),
        poll_jitter=table.duration("poll_jitter", d.poll_jitter),
        concurrency=table.integer("concurrency", d.concurrency, minimum=1),
        lease=table.duration("lease", d.lease, timedelta(seconds=30)),
        shutdown_grace=table.duration("shutdown_grace", d.shutdown_grace),
    )
    if daemon.concurrency > 64:
        table.fail("concurrency", f"must be at most 64, not {daemon.concurrency}")
    if daemon.poll_jitter >= daemon.poll_interval:
        table.fail("poll_jitter", "must be shorter than poll_interval")
    table.finish()
    return daemon


def _metrics(table: _Table) -> MetricsConfig:
    listen_text = table.string("listen", "")
    listen = None
    if listen_text:
        try:
            listen = parse_host_port(listen_text)
        except ValueError as exc:
            table.fail("listen", str(exc))
    metrics = MetricsConfig(
        listen=listen,
        ready_poll_age=table.duration(
            "ready_poll_age", MetricsConfig().ready_poll_age, timedelta(seconds=1)
        ),
    )
    table.finish()
    return metrics


def _account(table: _Table, archives: Mapping[str, ArchiveConfig]) -> AccountConfig:
    name = table.string("name")
    if not name or not all(c.isalnum() or c in "-_" for c in name) or not name.isascii():
        table.fail("name", f"{name!r} must be letters, digits, '-' or '_'")
    base_url = table.string("base_url", DEFAULT_BASE_URL).rstrip("/")
    _check_origin(table, "base_url", base_url, allow_path=True)
    username = table.string("username")
    password = table.secret("password", required=True)
    assert password is not None
    archive = table.string("archive", "default")
    if archive not in archives:
        close = difflib.get_close_matches(archive, list(archives), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        table.fail(
            "archive",
            f"no [archives.{archive}] is defined (defined: {', '.join(archives)}){hint}",
        )
    keys = tuple(_key(t) for t in table.tables("keys"))
    if not keys:
        table.fail("keys", "at least one [[accounts.keys]] (the private key SvarUt encrypts for)")
    http = _http(table.table("http"))
    table.finish()
    return AccountConfig(
        name=name,
        username=username,
        password=password,
        keys=keys,
        archive=archive,
        base_url=base_url,
        http=http,
    )


def _check_origin(table: _Table, key: str, url: str, *, allow_path: bool) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        table.fail(key, f"{url!r} must be an https:// URL")
    if parts.query or parts.fragment or parts.username or (parts.path and not allow_path):
        table.fail(key, f"{url!r} must be scheme://host[:port] only")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        table.fail(
            key,
            f"{url!r} uses plain http to a remote host; credentials would travel "
            "unencrypted: use https://",
        )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _http(table: _Table) -> HttpConfig:
    d = HttpConfig()
    positive = timedelta(milliseconds=1)
    origins = table.string_list("allowed_download_origins")
    for i, origin in enumerate(origins):
        _check_origin(table, f"allowed_download_origins[{i}]", origin.rstrip("/"), allow_path=False)
    ca_bundle = table.path_value("ca_bundle", None)
    if ca_bundle is not None and not ca_bundle.is_file():
        table.fail("ca_bundle", f"file {ca_bundle} does not exist")
    http = HttpConfig(
        connect_timeout=table.duration("connect_timeout", d.connect_timeout, positive),
        read_timeout=table.duration("read_timeout", d.read_timeout, positive),
        write_timeout=table.duration("write_timeout", d.write_timeout, positive),
        pool_timeout=table.duration("pool_timeout", d.pool_timeout, positive),
        verify_tls=table.boolean("verify_tls", True),
        ca_bundle=ca_bundle,
        max_download_size=table.size("max_download_size", d.max_download_size),
        allowed_download_origins=tuple(o.rstrip("/") for o in origins),
    )
    if not http.verify_tls:
        table.ctx.warnings.append(f"{table.key('verify_tls')} is false: TLS is not verified")
    table.finish()
    return http


def _key(table: _Table) -> KeyConfig:
    key_secret = table.secret("private_key", required=True, strip=False)
    assert key_secret is not None
    cert_secret = table.secret("certificate", required=False, strip=False)
    passphrase = table.secret("passphrase", required=False)
    table.finish()
    label = key_secret.source
    try:
        pair = load_key_pair(
            label,
            key_secret.reveal_bytes(),
            passphrase=passphrase.reveal_bytes() if passphrase else None,
            certificate_pem=cert_secret.reveal_bytes() if cert_secret else None,
            key_name=table.key(_set_variant(table, "private_key")),
            certificate_name=table.key(_set_variant(table, "certificate")),
        )
    except ConfigError as exc:
        raise ConfigError(str(exc), source=str(table.ctx.source)) from None
    mode = None
    if key_secret.path is not None:
        try:
            mode = stat.S_IMODE(key_secret.path.stat().st_mode)
        except OSError:
            mode = None
    return KeyConfig(
        pair=pair,
        key_path=key_secret.path,
        key_mode=mode,
        certificate_path=cert_secret.path if cert_secret else None,
    )


def _set_variant(table: _Table, name: str) -> str:
    for key in secret_keys(name):
        if key in table.data:
            return key
    return name
