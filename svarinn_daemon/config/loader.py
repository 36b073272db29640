"""Read the TOML file once and validate it into :class:`Config`.

Every problem becomes a :class:`ConfigError` naming the file and the dotted key.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from types import MappingProxyType

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from svarinn_daemon.common import LOG_LEVELS, MAX_WORKER_ID
from svarinn_daemon.config.accounts import read_account
from svarinn_daemon.config.alerts import read_alerts, read_notifiers
from svarinn_daemon.config.model import (
    DEFAULT_STATE_DIRECTORY,
    ArchiveConfig,
    Config,
    DaemonConfig,
    LedgerConfig,
    LoggingConfig,
    MetricsConfig,
)
from svarinn_daemon.config.policies import read_retry, read_verify
from svarinn_daemon.config.routes import read_routes
from svarinn_daemon.config.secrets import Secret
from svarinn_daemon.config.table import Context, Table
from svarinn_daemon.config.units import parse_host_port
from svarinn_daemon.errors import ConfigError

LOG_FORMATS = ("auto", "json", "console")


def load_config(path: Path, *, environ: Mapping[str, str], keys: bool = True) -> Config:
    """Read and validate ``path``. ``environ`` is passed in: nothing reads os.environ here.

    ``keys=False`` reads the key files but does not parse them (``KeyConfig.loaded`` is None):
    for commands that only read the ledger."""
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
    ctx = Context(path, environ, load_keys=keys)
    return _build(Table(data, "", ctx), ctx)


def _build(root: Table, ctx: Context) -> Config:
    state_default = environ_state_directory(ctx.environ)
    state_directory = root.path("state_directory", state_default)

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

    accounts = tuple(read_account(t, archives) for t in root.tables("accounts"))
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
    names = tuple(a.name for a in accounts)
    v2 = tuple(a.name for a in accounts if a.api == "v2")
    routes = read_routes(root.tables("routes"), archives, names, v2)
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
        routes=routes,
    )


def environ_state_directory(environ: Mapping[str, str]) -> Path:
    """$STATE_DIRECTORY (systemd's StateDirectory=), else /var/lib/svarinn-daemon."""
    first = environ.get("STATE_DIRECTORY", "").split(":")[0]
    return Path(first) if first else DEFAULT_STATE_DIRECTORY


def _ledger(table: Table, state_directory: Path) -> LedgerConfig:
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
        # Not url.set(password=None): SQLAlchemy 2 reads None there as "leave unchanged".
        url = URL.create(
            url.drivername,
            username=url.username,
            password=None,
            host=url.host,
            port=url.port,
            database=url.database,
            query=url.query,
        )
        if url.password is not None:  # never hand on a URL that still carries it
            table.fail("url", "the password could not be separated from the url")
    migrate = table.boolean("migrate_on_start", True)
    busy = table.duration("busy_timeout", LedgerConfig.busy_timeout, timedelta(milliseconds=1))
    table.finish()
    return LedgerConfig(
        url=url.render_as_string(hide_password=False),
        password=password,
        migrate_on_start=migrate,
        busy_timeout=busy,
    )


def _daemon(table: Table, ctx: Context) -> DaemonConfig:
    d = DaemonConfig(worker_id="")
    second = timedelta(seconds=1)
    worker_id = table.string("worker_id", "") or ctx.hostname
    if len(worker_id) > MAX_WORKER_ID:
        table.fail("worker_id", f"must be at most {MAX_WORKER_ID} characters")
    daemon = DaemonConfig(
        worker_id=worker_id,
        poll_interval=table.duration("poll_interval", d.poll_interval, second),
        poll_jitter=table.duration("poll_jitter", d.poll_jitter),
        concurrency=table.integer("concurrency", d.concurrency, minimum=1),
        lease=table.duration("lease", d.lease, timedelta(seconds=30)),
        shutdown_grace=table.duration("shutdown_grace", d.shutdown_grace),
        stall_timeout=table.duration("stall_timeout", d.stall_timeout, second),
    )
    if daemon.concurrency > 64:
        table.fail("concurrency", f"must be at most 64, not {daemon.concurrency}")
    if daemon.poll_jitter >= daemon.poll_interval:
        table.fail("poll_jitter", "must be shorter than poll_interval")
    table.finish()
    return daemon


def _metrics(table: Table) -> MetricsConfig:
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
