"""What to do after a letter failed: pure functions of the error, its history and a policy.

The one rule behind every row of the table: a letter goes to paper (mottakFeilet with
``permanent: true``) only when retrying can never help *and* the fault is not ours. Our own
configuration (a missing key, a wrong archive permission, an origin not allowed) is fixed
by the operator, so those errors retry loudly instead of giving up.

How each error is retried is not decided here: it is data on the error class (``retry`` and
``reported``, drawn in :mod:`svarinn_daemon.errors`). This module turns that data, the
letter's history and the operator's :class:`~svarinn_daemon.policies.RetryPolicy` into a
:class:`Decision`:

    error.retry       action
    stop_account      stop the account's cycle (alert)
    abandon, release  leave the letter alone (another worker owns it, or we are stopping)
    download_again    download again, up to max_download_attempts, then permanent
    key               retry loudly (permanent only with treat_key_errors_as_permanent)
    loudly            retry loudly: our configuration or our own bookkeeping
    backoff           retry with backoff and jitter
    never             permanent failure

A temporary failure reaches SvarUt (mottakFeilet with ``permanent: false``) only once the
letter has been failing for ``temporary_report_after`` (a real delay, not a hiccup), then at
most once per ``temporary_report_interval``; errors whose class says ``reported = False``
(our own bookkeeping) never do.
"""

from __future__ import annotations

import random as random_module
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from svarinn_daemon import errors as e
from svarinn_daemon.common import clip
from svarinn_daemon.errors import Retry
from svarinn_daemon.policies import RetryPolicy

__all__ = ["Action", "Decision", "backoff", "decide", "failure_message"]

MAX_MESSAGE_LENGTH = 500


class Action(StrEnum):
    RETRY = "retry"
    DOWNLOAD_AGAIN = "download_again"
    RETRY_LOUDLY = "retry_loudly"
    FAIL_PERMANENTLY = "fail_permanently"
    STOP_ACCOUNT = "stop_account"
    ABANDON = "abandon"


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


_ACTIONS = {
    Retry.BACKOFF: Action.RETRY,
    Retry.DOWNLOAD_AGAIN: Action.DOWNLOAD_AGAIN,
    Retry.LOUDLY: Action.RETRY_LOUDLY,
    Retry.KEY: Action.RETRY_LOUDLY,
}


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
    error: e.DaemonError,
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
    how = error.retry
    if how is Retry.STOP_ACCOUNT:
        message = failure_message(error, permanent=False)
        return Decision(Action.STOP_ACCOUNT, reason, message, alert=True)
    if how in (Retry.ABANDON, Retry.RELEASE):
        return Decision(Action.ABANDON, reason, failure_message(error, permanent=False))
    if how is Retry.KEY and policy.treat_key_errors_as_permanent:
        message = failure_message(error, permanent=True)
        return Decision(Action.FAIL_PERMANENTLY, reason, message, alert=True)
    if how is Retry.NEVER:
        return Decision(Action.FAIL_PERMANENTLY, reason, failure_message(error, permanent=True))
    count = attempts
    action = _ACTIONS[how]
    if how is Retry.DOWNLOAD_AGAIN:
        count = download_attempts if download_attempts is not None else attempts
        if count >= policy.max_download_attempts:
            message = failure_message(error, permanent=True, downloads=count)
            return Decision(Action.FAIL_PERMANENTLY, reason, message)

    retry_after = getattr(error, "retry_after", None)
    delay = backoff(
        count,
        policy,
        random=random,
        at_least=float(retry_after) if isinstance(retry_after, int | float) else 0.0,
    )
    report = (
        error.reported
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


_MESSAGES: tuple[tuple[type[e.DaemonError], str], ...] = (
    (e.ChecksumMismatchError, "Dokumentet stemmer ikke med sjekksum eller størrelse i filmetadata"),
    (e.NotAZipError, "Forsendelsen var ikke en zip-fil, slik SvarInn V2 alltid sender"),
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
    (e.DaemonError, "Mottaket feilet"),
)
# Only these messages are our own words about the letter's content: safe to pass on.
_DETAILED = (e.VerificationError,)


def failure_message(
    error: e.DaemonError, *, permanent: bool | None = None, downloads: int | None = None
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
    return clip(text, MAX_MESSAGE_LENGTH)
