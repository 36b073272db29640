"""Which alert conditions hold right now: a pure function of ledger facts and poll statuses.

Every condition is per account (the subject is the account name; the details are counts):

    condition           holds while                                         resolves when
    pending_too_long    letters waiting for import or receipt were first    none is that old
                        seen at least ``pending_after`` ago (a receipt      any more
                        withheld by shadow mode is not waiting); those
                        sent to an archive that answers later and still
                        waiting for its kvittering are counted apart
                        (``awaiting_archive``)
    permanent_failure   letters are failed_permanently (report pending) or  the window passes
                        were reported within the failure window             with no new one
    no_matching_key     unfinished letters failed last with                 they are imported
                        NoMatchingRecipientError, KeyUnwrapError or         (key added) or
                        UnsupportedAlgorithmError                           reported
    storage_failing     unfinished letters failed last with StorageError    they are imported
                        (our own spool disk: full, read-only, permissions)
    auth_failing        the account's last poll failed with                 a poll succeeds or
                        AuthenticationError                                 fails otherwise
    polls_failing       polls have failed (not with AuthenticationError)    a poll succeeds
                        since ``polls_failing_after`` or longer
    archive_unavailable an archive's circuit breaker has held imports back  the archive takes
                        for ``archive_unavailable_after`` (subject: the     a letter again
                        archive's name, not an account)

The failure window is ``repeat_every`` (so a permanent failure is announced once and then
resolves at about the time it would repeat), or 24 hours when ``repeat_every`` is zero.
Only configured accounts are considered: a removed account's rows could never resolve.
An alert about an account in shadow mode (``receipts = false``) carries ``shadow_mode=1``
among its counts, so whoever reads it knows SvarUt hears nothing from this daemon for it.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from svarinn_daemon import errors
from svarinn_daemon.alerts.engine import AlertDetails, AlertKey
from svarinn_daemon.alerts.message import Condition
from svarinn_daemon.alerts.watch import AccountAlertFacts, PollStatus
from svarinn_daemon.config.model import AlertsConfig

__all__ = [
    "AUTH_ERROR_KIND",
    "DEFAULT_FAILURE_WINDOW",
    "KEY_ERROR_KINDS",
    "STORAGE_ERROR_KINDS",
    "Cutoffs",
    "cutoffs",
    "failure_window",
    "holding",
]

KEY_ERROR_KINDS = frozenset(
    cls.__name__
    for cls in (
        errors.NoMatchingRecipientError,
        errors.KeyUnwrapError,
        errors.UnsupportedAlgorithmError,
    )
)
STORAGE_ERROR_KINDS = frozenset({errors.StorageError.__name__})
AUTH_ERROR_KIND = errors.AuthenticationError.__name__
DEFAULT_FAILURE_WINDOW = timedelta(hours=24)


def failure_window(config: AlertsConfig) -> timedelta:
    return config.repeat_every if config.repeat_every > timedelta(0) else DEFAULT_FAILURE_WINDOW


@dataclass(frozen=True)
class Cutoffs:
    """The times the ledger query needs: pending since, and reported since."""

    pending_before: datetime
    reported_since: datetime


def cutoffs(config: AlertsConfig, now: datetime) -> Cutoffs:
    return Cutoffs(now - config.pending_after, now - failure_window(config))


def _minutes(delta: timedelta) -> int:
    return max(0, int(delta.total_seconds() // 60))


def holding(
    facts: Iterable[AccountAlertFacts],
    polls: Iterable[PollStatus],
    *,
    accounts: Collection[str],
    now: datetime,
    config: AlertsConfig,
    archives_unavailable: Mapping[str, timedelta] | None = None,
    shadow_accounts: Collection[str] = (),
) -> dict[AlertKey, AlertDetails]:
    """The (condition, subject) pairs that hold ``now``, with their counts.

    ``facts`` must come from the ledger queried with :func:`cutoffs` for the same ``now``
    and ``config``; ``archives_unavailable`` says for how long each paused archive has
    been paused; ``shadow_accounts`` are those with ``receipts = false``.
    """
    out: dict[AlertKey, AlertDetails] = {}

    def hold(condition: Condition, account: str, **counts: int) -> None:
        if account in shadow_accounts:
            counts["shadow_mode"] = 1
        out[AlertKey(condition, account)] = AlertDetails(account=account, counts=counts)

    for fact in facts:
        account = fact.account
        if account not in accounts:
            continue
        if fact.pending and fact.oldest_pending_seen_at is not None:
            oldest = _minutes(now - fact.oldest_pending_seen_at)
            waiting = {"awaiting_archive": fact.awaiting_archive} if fact.awaiting_archive else {}
            hold(
                Condition.PENDING_TOO_LONG,
                account,
                letters=fact.pending,
                oldest_minutes=oldest,
                **waiting,
            )
        failed, reported = fact.failed_permanently, fact.reported_recently
        if failed or reported:
            hold(Condition.PERMANENT_FAILURE, account, letters=failed + reported, reported=reported)
        if fact.key_errors:
            hold(Condition.NO_MATCHING_KEY, account, letters=fact.key_errors)
        if fact.storage_errors:
            hold(Condition.STORAGE_FAILING, account, letters=fact.storage_errors)
    for status in polls:
        account = status.account
        if account not in accounts or status.failing_since is None:
            continue
        failing = now - status.failing_since
        if status.last_error_kind == AUTH_ERROR_KIND:
            hold(Condition.AUTH_FAILING, account, failing_minutes=_minutes(failing))
        elif failing >= config.polls_failing_after:
            hold(Condition.POLLS_FAILING, account, failing_minutes=_minutes(failing))
    for archive, paused in sorted((archives_unavailable or {}).items()):
        if paused >= config.archive_unavailable_after:
            key = AlertKey(Condition.ARCHIVE_UNAVAILABLE, archive)
            out[key] = AlertDetails(account=None, counts={"paused_minutes": _minutes(paused)})
    return out
