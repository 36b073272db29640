"""The validated configuration: frozen objects, read once and passed down."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from svarinn_daemon.config.secrets import Secret
from svarinn_daemon.errors import InternalError
from svarinn_daemon.policies import RetryPolicy, VerifyPolicy

if TYPE_CHECKING:
    from svarinn_daemon.keys import KeyPair

DEFAULT_BASE_URL = "https://svarut.ks.no"
# SvarInn V2's base: the part before /svarinn/v2/..., as KS's documentation page gives it
# (the OpenAPI document names https://svarut.ks.no/tjenester instead).
DEFAULT_V2_BASE_URL = "https://svarut.ks.no/api"
ALTERNATIVE_V2_BASE_URL = "https://svarut.ks.no/tjenester"
API_VERSIONS = ("v1", "v2")
DEFAULT_CONFIG_PATH = Path("/etc/svarinn-daemon/config.toml")
DEFAULT_STATE_DIRECTORY = Path("/var/lib/svarinn-daemon")
# Field metadata for config/render.py: not a key of the file as it stands; a size in bytes.
NOT_A_KEY = MappingProxyType({"toml": False})
SIZE = MappingProxyType({"unit": "size"})


@dataclass(frozen=True)
class LoggingConfig:
    level: str = "info"
    format: str = "auto"  # auto | json | console


@dataclass(frozen=True)
class LedgerConfig:
    """Where the ledger lives. ``url`` never contains the password."""

    url: str
    password: Secret | None = None
    migrate_on_start: bool = True
    busy_timeout: timedelta = timedelta(seconds=30)  # SQLite: wait this long for a lock


@dataclass(frozen=True)
class DaemonConfig:
    """How ``run`` schedules work. ``worker_id`` must differ between daemons on one ledger."""

    worker_id: str
    poll_interval: timedelta = timedelta(seconds=60)
    poll_jitter: timedelta = timedelta(seconds=10)
    concurrency: int = 4
    lease: timedelta = timedelta(minutes=10)
    shutdown_grace: timedelta = timedelta(seconds=30)
    # No progress for this long (a poll cycle, a letter in flight) means the daemon is
    # wedged: the systemd watchdog lapses and /healthz fails, so it is restarted.
    stall_timeout: timedelta = timedelta(minutes=10)


@dataclass(frozen=True)
class MetricsConfig:
    """The /metrics, /healthz and /readyz endpoint; off when ``listen`` is None."""

    listen: tuple[str, int] | None = field(default=None, metadata=NOT_A_KEY)  # "host:port"
    ready_poll_age: timedelta = timedelta(minutes=5)


@dataclass(frozen=True)
class HttpConfig:
    connect_timeout: timedelta = timedelta(seconds=10)
    read_timeout: timedelta = timedelta(minutes=5)
    write_timeout: timedelta = timedelta(minutes=1)
    pool_timeout: timedelta = timedelta(seconds=30)
    verify_tls: bool = True
    ca_bundle: Path | None = None
    max_download_size: int = field(default=20 * 2**30, metadata=SIZE)
    allowed_download_origins: tuple[str, ...] = ()
    # Whole-response budgets, against a server that sends a byte now and then: a download
    # gets download_deadline_base plus its size at download_min_rate (bytes per second).
    download_min_rate: int = field(default=16 * 2**10, metadata=SIZE)
    download_deadline_base: timedelta = timedelta(minutes=2)
    listing_deadline: timedelta = timedelta(minutes=5)
    proxy: str | None = None
    """An HTTP proxy (``http://host:port``) for SvarInn and the download origins."""
    proxy_username: str | None = None
    proxy_password: Secret | None = None
    trust_env: bool = False
    """Take HTTPS_PROXY/NO_PROXY (and SSL_CERT_FILE) from the environment when no proxy is set."""
    # With trust_env: the environment's proxy passwords and their Basic values (redactor).
    environment_proxy_secrets: tuple[str, ...] = field(default=(), metadata=NOT_A_KEY)


@dataclass(frozen=True)
class KeyConfig:
    """One receiver key; ``key_path`` is None when it came from the environment.

    ``loaded`` is None only in a configuration read with ``keys=False``: the ledger commands,
    which never decrypt, start without parsing keys (and without importing cryptography).
    """

    loaded: KeyPair | None
    key_path: Path | None
    key_mode: int | None
    certificate_path: Path | None

    @property
    def pair(self) -> KeyPair:
        if self.loaded is None:
            raise InternalError("the configuration was read without its keys (keys=False)")
        return self.loaded


@dataclass(frozen=True)
class AccountConfig:
    """One SvarInn mottakersystem."""

    name: str
    username: str
    password: Secret
    keys: tuple[KeyConfig, ...] = field(metadata=NOT_A_KEY)  # [[accounts.keys]] tables
    archive: str
    base_url: str = DEFAULT_BASE_URL
    http: HttpConfig = field(default_factory=HttpConfig)
    # False: shadow mode. Letters are imported, but neither kvitterMottak nor mottakFeilet
    # is sent, so an importer being replaced keeps answering SvarUt for them.
    receipts: bool = True
    # "v1": MottakService (deprecated by KS; the default, so old configs keep their meaning);
    # "v2": SvarInn V2.
    api: str = "v1"


@dataclass(frozen=True)
class ArchiveConfig:
    """An archive target: the adapter's entry-point name and its own options."""

    name: str
    adapter: str
    options: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class RouteConfig:
    """One ``[[routes]]`` table: letters matching every given key go to ``archive``.

    An empty tuple means "any". ``type`` is forsendelseType (v1) / type (v2), exact but
    case-insensitive; ``avsender_orgnr`` exact organisation numbers of the sender (v1 only:
    V2 names none); ``avsender_navn`` case-insensitive globs on the sender's name, which is
    the sender's own words.
    """

    archive: str
    account: tuple[str, ...] = ()
    type: tuple[str, ...] = ()
    mottaker_orgnr: tuple[str, ...] = ()
    avsender_orgnr: tuple[str, ...] = ()
    avsender_navn: tuple[str, ...] = ()


class Condition(StrEnum):
    """The conditions the daemon alerts on: stable names, which notifier filters use (the
    alerts package decides when each holds)."""

    PENDING_TOO_LONG = "pending_too_long"
    PERMANENT_FAILURE = "permanent_failure"
    AUTH_FAILING = "auth_failing"
    POLLS_FAILING = "polls_failing"
    NO_MATCHING_KEY = "no_matching_key"
    STORAGE_FAILING = "storage_failing"
    ARCHIVE_UNAVAILABLE = "archive_unavailable"
    TEST = "test"


@dataclass(frozen=True)
class AlertsConfig:
    """Thresholds of the alert conditions; ``repeat_every`` of zero sends each alert once."""

    pending_after: timedelta = timedelta(minutes=90)
    polls_failing_after: timedelta = timedelta(minutes=15)
    repeat_every: timedelta = timedelta(hours=4)
    archive_unavailable_after: timedelta = timedelta(minutes=5)


@dataclass(frozen=True)
class NotifierConfig:
    """One ``[[notifiers]]`` table: the type's entry-point name, which conditions it gets
    (empty: all), its plain options and its secrets (by option name). ``index`` is the
    table's position, for error messages."""

    name: str
    type: str
    conditions: tuple[str, ...] = ()
    options: Mapping[str, Any] = field(
        default_factory=lambda: MappingProxyType({}), metadata=NOT_A_KEY
    )  # the type's own keys, beside these
    secrets: Mapping[str, Secret] = field(
        default_factory=lambda: MappingProxyType({}), metadata=NOT_A_KEY
    )
    index: int = field(default=0, metadata=NOT_A_KEY)

    def wants(self, condition: str) -> bool:
        """Whether this notifier gets alerts about ``condition`` ("test" always passes)."""
        return not self.conditions or condition == "test" or condition in self.conditions


def _default_notifiers() -> tuple[NotifierConfig, ...]:
    return (NotifierConfig(name="log", type="log"),)


@dataclass(frozen=True)
class Config:
    source: Path
    state_directory: Path
    logging: LoggingConfig
    ledger: LedgerConfig
    daemon: DaemonConfig
    metrics: MetricsConfig
    accounts: tuple[AccountConfig, ...]
    archives: Mapping[str, ArchiveConfig]
    warnings: tuple[str, ...] = ()
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    verify: VerifyPolicy = field(default_factory=VerifyPolicy)
    alerts: AlertsConfig = field(default_factory=AlertsConfig)
    notifiers: tuple[NotifierConfig, ...] = field(default_factory=_default_notifiers)
    routes: tuple[RouteConfig, ...] = ()  # first match wins; else the account's archive

    def account(self, name: str) -> AccountConfig:
        for account in self.accounts:
            if account.name == name:
                return account
        raise KeyError(name)

    def secret_values(self) -> list[str]:
        """Every secret string, for the log redactor."""
        from svarinn_daemon.config.secrets import secret_masks

        out: list[str] = []
        out += secret_masks(self.ledger.password)
        for account in self.accounts:
            masks = secret_masks(account.password)
            out += masks
            if masks:  # the Basic credentials as sent, which a careless server may echo
                token = f"{account.username}:{masks[0]}".encode()
                out.append(base64.b64encode(token).decode("ascii"))
            proxy = account.http.proxy_password
            if proxy is not None:
                masks = secret_masks(proxy)
                out += masks
                if masks:  # the Proxy-Authorization value as sent
                    token = f"{account.http.proxy_username}:{masks[0]}".encode()
                    out.append(base64.b64encode(token).decode("ascii"))
            out += account.http.environment_proxy_secrets
        for notifier in self.notifiers:
            for secret in notifier.secrets.values():
                out += secret_masks(secret)
        return out
