"""What to do after a letter failed: pure functions of the error, its history and a policy.

The one rule behind every row of the table: a letter goes to paper (mottakFeilet with
``permanent: true``) only when retrying can never help *and* the fault is not ours. Our own
configuration (a missing key, a wrong archive permission, an origin not allowed) is fixed
by the operator, so those errors retry loudly instead of giving up.

    error                                          action
    AuthenticationError                            stop the account's cycle (alert)
    LeaseLostError                                 abandon: another worker owns the letter
    TruncatedCmsError, ChecksumMismatchError,      download again, up to
      PaddingError, TrailingDataError,               max_download_attempts, then permanent
      NotEnvelopedDataError, MalformedCmsError
    NoMatchingRecipientError, KeyUnwrapError,      retry loudly (permanent only with
      UnsupportedAlgorithmError                      treat_key_errors_as_permanent)
    OriginNotAllowedError, ConfigError,            retry loudly: our configuration or our
      PluginError, LedgerError (but not              own bookkeeping, never the letter's
      LeaseLostError or LedgerUnavailableError),     fault
      InternalError
    any other temporary error                      retry with backoff and jitter
    any other permanent error                      permanent failure

A temporary failure reaches SvarUt (mottakFeilet with ``permanent: false``) only once the
letter has been failing for ``temporary_report_after`` (a real delay, not a hiccup), then at
most once per ``temporary_report_interval``; failures of our own bookkeeping never do.
"""

from __future__ import annotations

import random as random_module
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from svarinn_daemon import errors as e

__all__ = ["Action", "Decision", "RetryPolicy", "backoff", "decide", "failure_message"]

MAX_MESSAGE_LENGTH = 500


class Action(StrEnum):
    RETRY = "retry"
    DOWNLOAD_AGAIN = "download_again"
    RETRY_LOUDLY = "retry_loudly"
    FAIL_PERMANENTLY = "fail_permanently"
    STOP_ACCOUNT = "stop_account"
    ABANDON = "abandon"


@dataclass(frozen=True)
class RetryPolicy:
    """How patiently letters are retried. ``jitter`` is the fraction a delay may shrink by,
    so that letters failed together do not come back together."""

    base_delay: timedelta = timedelta(seconds=30)
    max_delay: timedelta = timedelta(hours=1)
    jitter: float = 0.2
    max_download_attempts: int = 3
    temporary_report_after: timedelta = timedelta(hours=1)
    temporary_report_interval: timedelta = timedelta(hours=6)
    treat_key_errors_as_permanent: bool = False
    # The circuit breaker per archive (see svarinn_daemon.breaker).
    archive_pause_after: int = 5
    archive_probe_delay: timedelta = timedelta(seconds=30)
    archive_probe_max_delay: timedelta = timedelta(minutes=10)


@dataclass(frozen=True)
class Decision:
    """The verdict for one failure. ``message`` is fit for mottakFeilet and the ledger."""

    action: Action
    reason: str
    message: str
    retry_at: datetime | None = None
    report_temporary: bool = False
    alert: bool = False

    @property
    def report_permanent(self) -> bool:
        return self.action is Action.FAIL_PERMANENTLY


_CORRUPT_DOWNLOAD = (
    e.TruncatedCmsError,
    e.ChecksumMismatchError,
    e.PaddingError,
    e.TrailingDataError,
    e.NotEnvelopedDataError,
)
_KEY_ERRORS = (e.NoMatchingRecipientError, e.KeyUnwrapError, e.UnsupportedAlgorithmError)
_OURS = (e.OriginNotAllowedError, e.ConfigError, e.PluginError, e.LedgerError, e.InternalError)
# ... except an outage of the ledger: temporary, and logged once as ledger.unavailable.
_OUTAGES = (e.LedgerUnavailableError,)
# Failures of our own bookkeeping: telling the sender about them would be noise.
_NOT_REPORTED = (e.LedgerError, e.ConfigError, e.PluginError)


def backoff(
    attempts: int,
    policy: RetryPolicy,
    *,
    random: Callable[[], float] = random_module.random,
    at_least: float = 0.0,
) -> timedelta:
    """``base * 2**(attempts-1)``, capped at ``max_delay``, shrunk by up to ``jitter``."""
    base = policy.base_delay.total_seconds()
    cap = policy.max_delay.total_seconds()
    delay = min(cap, base * 2 ** min(max(attempts - 1, 0), 62))
    delay *= 1.0 - policy.jitter * min(max(random(), 0.0), 1.0)
    return timedelta(seconds=min(cap, max(delay, at_least)))


def decide(
    error: e.SvarinnError,
    *,
    attempts: int,
    policy: RetryPolicy,
    now: datetime,
    last_temporary_report_at: datetime | None,
    failing_since: datetime | None = None,
    download_attempts: int | None = None,
    random: Callable[[], float] = random_module.random,
) -> Decision:
    """Classify ``error`` after the letter's ``attempts``-th failed attempt (counting this
    one). ``failing_since`` is when the letter's current run of failures began (None: with
    this one). ``download_attempts`` counts downloads that came back corrupt (this one
    included); it defaults to ``attempts``."""
    reason = error.kind
    if isinstance(error, e.AuthenticationError):
        message = failure_message(error, permanent=False)
        return Decision(Action.STOP_ACCOUNT, reason, message, alert=True)
    if isinstance(error, e.LeaseLostError):
        return Decision(Action.ABANDON, reason, failure_message(error, permanent=False))

    action = Action.RETRY
    count = attempts
    if isinstance(error, _CORRUPT_DOWNLOAD) or (
        type(error) is e.MalformedCmsError  # but not CmsLimitExceededError: our limits
    ):
        count = download_attempts if download_attempts is not None else attempts
        if count >= policy.max_download_attempts:
            message = failure_message(error, permanent=True, downloads=count)
            return Decision(Action.FAIL_PERMANENTLY, reason, message)
        action = Action.DOWNLOAD_AGAIN
    elif isinstance(error, _KEY_ERRORS):
        if policy.treat_key_errors_as_permanent:
            message = failure_message(error, permanent=True)
            return Decision(Action.FAIL_PERMANENTLY, reason, message, alert=True)
        action = Action.RETRY_LOUDLY
    elif isinstance(error, _OURS) and not isinstance(error, _OUTAGES):
        action = Action.RETRY_LOUDLY
    elif not error.temporary:
        message = failure_message(error, permanent=True)
        return Decision(Action.FAIL_PERMANENTLY, reason, message)

    retry_after = getattr(error, "retry_after", None)
    delay = backoff(
        count,
        policy,
        random=random,
        at_least=float(retry_after) if isinstance(retry_after, int | float) else 0.0,
    )
    report = (
        not isinstance(error, _NOT_REPORTED)
        and now - (failing_since or now) >= policy.temporary_report_after
        and (
            last_temporary_report_at is None
            or now - last_temporary_report_at >= policy.temporary_report_interval
        )
    )
    return Decision(
        action,
        reason,
        failure_message(error, permanent=False),
        retry_at=now + delay,
        report_temporary=report,
        alert=action is Action.RETRY_LOUDLY,
    )


_MESSAGES: tuple[tuple[type[e.SvarinnError], str], ...] = (
    (e.ChecksumMismatchError, "Dokumentet stemmer ikke med sjekksum eller størrelse i filmetadata"),
    (e.UnsafeArchiveError, "Zip-fila har filnavn, lenker eller størrelser som ikke tillates"),
    (e.VerificationError, "Innholdet stemmer ikke med filmetadata"),
    (e.TruncatedCmsError, "Den krypterte fila var ufullstendig"),
    (
        e.NoMatchingRecipientError,
        "Forsendelsen er kryptert for et sertifikat vi ikke har nøkkel til",
    ),
    (e.KeyUnwrapError, "Innholdsnøkkelen kunne ikke dekrypteres med mottakssystemets nøkkel"),
    (e.UnsupportedAlgorithmError, "Forsendelsen bruker en krypteringsalgoritme vi ikke støtter"),
    (e.NotEnvelopedDataError, "Fila er ikke kryptert som CMS EnvelopedData"),
    (e.CmsLimitExceededError, "Den krypterte fila overskrider mottakssystemets grenser"),
    (e.CmsError, "Den krypterte fila er skadet og kunne ikke dekrypteres"),
    (e.DownloadTooLargeError, "Fila er større enn mottakssystemet tillater"),
    (e.ForsendelseGoneError, "Forsendelsen finnes ikke lenger hos SvarInn"),
    (e.OriginNotAllowedError, "Nedlastingsadressen er ikke godkjent i mottakssystemet"),
    (e.SvarInnError, "Kommunikasjonen med SvarInn feilet"),
    (e.ArchiveError, "Arkivet kunne ikke ta imot forsendelsen"),
    (e.StorageError, "Mottakssystemet fikk ikke lagret forsendelsen midlertidig"),
    (e.InternalError, "Mottakssystemet fikk en intern feil"),
    (e.LedgerError, "Mottakssystemets database svarte ikke"),
    (e.SvarinnError, "Mottaket feilet"),
)
# Only these messages are our own words about the letter's content: safe to pass on.
_DETAILED = (e.VerificationError,)


def failure_message(
    error: e.SvarinnError, *, permanent: bool | None = None, downloads: int | None = None
) -> str:
    """A message a person at the sender or the municipality can act on: fixed Norwegian
    text per kind (never internal paths, response bodies or secrets), the letter-level
    detail for verification errors, and the error kind for support."""
    if permanent is None:
        permanent = error.permanent
    text = next(m for cls, m in _MESSAGES if isinstance(error, cls))
    if isinstance(error, _DETAILED):
        detail = "".join(c if c.isprintable() else " " for c in str(error))
        text += f": {detail}"
    if isinstance(error, e.UnsupportedAlgorithmError) and error.oid:
        text += f" (OID {error.oid})"
    if downloads:
        text += f" (etter {downloads} nedlastinger)"
    if permanent:
        text += ". Mottaket vil ikke lykkes; forsendelsen må sendes på annen måte"
    else:
        text += ". Mottakssystemet prøver igjen automatisk"
    text += f". [{error.kind}]"
    if len(text) > MAX_MESSAGE_LENGTH:
        text = text[: MAX_MESSAGE_LENGTH - 1] + "…"
    return text
