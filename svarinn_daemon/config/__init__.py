"""Configuration: one TOML file, read once, validated into frozen objects."""

from svarinn_daemon.config.loader import load_config
from svarinn_daemon.config.model import (
    DEFAULT_BASE_URL,
    DEFAULT_CONFIG_PATH,
    AccountConfig,
    AlertsConfig,
    ArchiveConfig,
    Config,
    DaemonConfig,
    HttpConfig,
    KeyConfig,
    LedgerConfig,
    LoggingConfig,
    MetricsConfig,
    NotifierConfig,
    RouteConfig,
)
from svarinn_daemon.config.render import render_config
from svarinn_daemon.config.secrets import Secret
from svarinn_daemon.config.units import format_duration, format_size, parse_duration, parse_size

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_CONFIG_PATH",
    "AccountConfig",
    "AlertsConfig",
    "ArchiveConfig",
    "Config",
    "DaemonConfig",
    "HttpConfig",
    "KeyConfig",
    "LedgerConfig",
    "LoggingConfig",
    "MetricsConfig",
    "NotifierConfig",
    "RouteConfig",
    "Secret",
    "format_duration",
    "format_size",
    "load_config",
    "parse_duration",
    "parse_size",
    "render_config",
]
