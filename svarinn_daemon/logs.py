"""Structured logging: JSON lines for machines, readable lines on a terminal, no secrets.

Event names are stable (``poll.finished``, ``forsendelse.archived``, ...): alert rules and
log searches depend on them, so rename one only with a note in the changelog.

structlog (and asyncio, which it imports) is loaded by the first line actually logged, not
here: ``status``, ``list`` and ``show`` usually log nothing and start faster without it.
"""

from __future__ import annotations

import functools
import logging
import re
import sys
import threading
from collections.abc import Iterable, MutableMapping
from typing import Any, NamedTuple, TextIO

REDACTED = "***"

# Keys whose values are secrets however they are spelled (password, Passphrase, api_token ...).
_SENSITIVE_KEY = re.compile(
    r"(pass(word|phrase|ord)?|secret|token|authori[sz]ation|private_?key|credential|api_?key|"
    r"assertion|cookie)",
    re.IGNORECASE,
)
# Secrets that travel inside free text: user:password@ in URLs, HTTP auth headers, PEM blocks.
_URL_PASSWORD = re.compile(r"(?<=://)([^/\s:@]+):([^/\s@]+)@")
_AUTH_HEADER = re.compile(r"\b(Basic|Bearer)\s+[A-Za-z0-9._~+/=-]{8,}", re.IGNORECASE)
_PEM_BLOCK = re.compile(
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(-----END [A-Z ]*PRIVATE KEY-----|$)", re.DOTALL
)


MAX_FIELD = 4000  # characters of one logged value: a sender's 900 KB file name is not a line


def _clipped(text: str) -> str:
    if len(text) <= MAX_FIELD:
        return text
    return f"{text[:MAX_FIELD]}… ({len(text) - MAX_FIELD} more characters)"


def _sensitive(key: str) -> bool:
    """Whether a key names a secret; our own keys, few and short, are remembered."""
    if len(key) > 64:
        return _SENSITIVE_KEY.search(key) is not None
    return _sensitive_short(key)


@functools.lru_cache(maxsize=1024)
def _sensitive_short(key: str) -> bool:
    return _SENSITIVE_KEY.search(key) is not None


class Redactor:
    """A structlog processor that removes secrets from every value, however nested."""

    def __init__(self, secrets: Iterable[str] = ()):
        # Longest first, so a secret that contains another is masked whole.
        self.secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def __call__(self, _logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> Any:
        return {key: self._clean(key, value) for key, value in event_dict.items()}

    def add(self, secrets: Iterable[str]) -> None:
        """More secrets (an adapter's, known once it is built); the list is replaced whole,
        so a line being written meanwhile sees the old or the new one."""
        self.secrets = sorted({*self.secrets, *(s for s in secrets if s)}, key=len, reverse=True)

    def scrub(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        # Each pattern only where its literal part is (a substring test costs far less than
        # a regex pass, and most values hold none): every line logged goes through here.
        if "://" in text:
            text = _URL_PASSWORD.sub(lambda m: f"{m.group(1)}:{REDACTED}@", text)
        text = _AUTH_HEADER.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
        if "-----BEGIN " in text:
            text = _PEM_BLOCK.sub(f"[private key {REDACTED}]", text)
        return text

    def _clean(self, key: str | None, value: Any) -> Any:
        if key is not None and key != "event" and _sensitive(key) and value:
            return REDACTED
        if isinstance(value, str):
            return _clipped(self.scrub(value))
        if isinstance(value, bytes):
            return _clipped(self.scrub(value.decode("utf-8", "replace")))
        if isinstance(value, dict):
            return {k: self._clean(str(k), v) for k, v in value.items()}
        if isinstance(value, list | tuple | set | frozenset):
            return [self._clean(None, v) for v in value]
        if isinstance(value, int | float | bool) or value is None:
            return value
        return self.scrub(repr(value) if isinstance(value, BaseException) else str(value))


class _Settings(NamedTuple):
    level: str
    fmt: str
    out: TextIO
    redactor: Redactor


# The settings of the last configure_logging() not yet given to structlog, because structlog
# was not imported then; the first logger used applies them.
_pending: list[_Settings] = []
_lock = threading.Lock()
_current: list[Redactor] = []  # the redactor of the last configure_logging()


def add_secrets(secrets: Iterable[str]) -> None:
    """Hide these too in every line logged from now on (and in the pending settings)."""
    for redactor in _current:
        redactor.add(secrets)


def configure_logging(
    *,
    level: str = "info",
    fmt: str = "auto",
    stream: TextIO | None = None,
    secrets: Iterable[str] = (),
) -> Redactor:
    """Set up structlog once per process (again after the config is read, with its secrets)."""
    out = stream if stream is not None else sys.stdout
    if fmt == "auto":
        fmt = "console" if out.isatty() else "json"
    redactor = Redactor(secrets)
    _current[:] = [redactor]
    root = logging.getLogger()
    if not any(isinstance(h, _LibraryRecords) for h in root.handlers):
        root.addHandler(_LibraryRecords())
    with _lock:
        _pending[:] = [_Settings(level, fmt, out, redactor)]
        if "structlog" in sys.modules:
            _apply_pending()
    return redactor


def _apply_pending() -> None:
    """Give the pending settings to structlog (the caller holds ``_lock``)."""
    import structlog
    from structlog.testing import LogCapture

    if not _pending or any(isinstance(p, LogCapture) for p in structlog.get_config()["processors"]):
        return  # structlog.testing.capture_logs() is on: the settings wait until it ends
    level, fmt, out, redactor = _pending.pop()
    renderer: Any
    if fmt == "json":
        renderer = structlog.processors.JSONRenderer(sort_keys=False)
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=out.isatty())
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        _name_logger,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        redactor,
        renderer,
    ]
    if fmt != "json":
        processors.remove(structlog.processors.format_exc_info)
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        # One write per line (print() writes the newline apart, and another thread's line
        # could land between the two).
        logger_factory=structlog.WriteLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )


class _LazyLogger:
    """Stands for ``structlog.get_logger(logger_name=name)`` until first used."""

    __slots__ = ("_name", "_proxy")

    def __init__(self, name: str) -> None:
        self._name = name
        self._proxy: Any = None

    def __getattr__(self, method: str) -> Any:
        if self._proxy is None or _pending:
            with _lock:
                _apply_pending()
                import structlog

                # "logger" itself is wrap_logger's argument, hence logger_name.
                self._proxy = structlog.get_logger(logger_name=self._name)
        return getattr(self._proxy, method)


_LEVEL_METHODS = {logging.CRITICAL: "critical", logging.ERROR: "error", logging.WARNING: "warning"}


class _LibraryRecords(logging.Handler):
    """The libraries' own log records (APScheduler, alembic, httpx ...), warnings and worse,
    as lines of ours: in the same format, redacted, on the same stream; their event is the
    library's message and ``logger`` its logger's name."""

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            method = _LEVEL_METHODS.get(record.levelno, "warning")
            fields: dict[str, Any] = {}
            if record.exc_info:
                fields["exc_info"] = record.exc_info
            getattr(_LazyLogger(record.name), method)(record.getMessage(), **fields)
        except Exception:  # a broken record must not take the daemon down
            self.handleError(record)


def get_logger(name: str) -> Any:
    """A lazy logger carrying the module name: safe to create at import time, because it
    takes its level and output from the configuration in force when it first logs."""
    return _LazyLogger(name)


def _name_logger(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> Any:
    if "logger_name" in event_dict:
        event_dict["logger"] = event_dict.pop("logger_name")
    return event_dict
