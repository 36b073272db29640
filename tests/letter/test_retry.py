"""retry.decide: the classification table, backoff, report throttling and messages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from svarinn_daemon import errors as e
from svarinn_daemon.letter.retry import MAX_MESSAGE_LENGTH, Action, backoff, decide, failure_message
from svarinn_daemon.policies import RetryPolicy

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
POLICY = RetryPolicy()


def no_jitter() -> float:
    return 0.0


def run(error: e.DaemonError, attempts: int = 1, **kw: object):  # type: ignore[no-untyped-def]
    values: dict[str, object] = {
        "attempts": attempts,
        "policy": POLICY,
        "now": NOW,
        "last_temporary_report_at": None,
        "random": no_jitter,
    }
    values.update(kw)
    return decide(error, **values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("error", "action"),
    [
        (e.AuthenticationError("401", status_code=401), Action.STOP_ACCOUNT),
        (e.LeaseLostError("gone"), Action.ABANDON),
        (e.ServiceUnavailableError("503", status_code=503), Action.RETRY),
        (e.ProtocolError("not json"), Action.RETRY),
        (e.LedgerUnavailableError("db down"), Action.RETRY),
        (e.StorageError("disk full"), Action.RETRY),
        (e.ArchiveError("share offline", temporary=True), Action.RETRY),
        (e.TruncatedCmsError("short"), Action.DOWNLOAD_AGAIN),
        (e.ChecksumMismatchError("sha"), Action.DOWNLOAD_AGAIN),
        (e.PaddingError("pad"), Action.DOWNLOAD_AGAIN),
        (e.TrailingDataError("tail"), Action.DOWNLOAD_AGAIN),
        (e.NotEnvelopedDataError("html?"), Action.DOWNLOAD_AGAIN),
        (e.MalformedCmsError("ber"), Action.DOWNLOAD_AGAIN),
        (e.NoMatchingRecipientError("key"), Action.RETRY_LOUDLY),
        (e.KeyUnwrapError("unwrap"), Action.RETRY_LOUDLY),
        (e.UnsupportedAlgorithmError("alg", oid="1.2.3"), Action.RETRY_LOUDLY),
        (e.OriginNotAllowedError("origin"), Action.RETRY_LOUDLY),
        (e.ConfigError("bad"), Action.RETRY_LOUDLY),
        (e.PluginError("missing"), Action.RETRY_LOUDLY),
        (e.SchemaMismatchError("schema"), Action.RETRY_LOUDLY),
        (e.IllegalTransitionError("bug"), Action.RETRY_LOUDLY),
        (e.LetterNotFoundError("gone from the ledger"), Action.RETRY_LOUDLY),
        (e.LedgerError("integrity error"), Action.RETRY_LOUDLY),
        (e.InternalError("a bug"), Action.RETRY_LOUDLY),
        (e.CmsLimitExceededError("depth"), Action.FAIL_PERMANENTLY),
        (e.VerificationError("missing doc"), Action.FAIL_PERMANENTLY),
        (e.UnsafeArchiveError("../x"), Action.FAIL_PERMANENTLY),
        (e.ArchiveError("name refused", temporary=False), Action.FAIL_PERMANENTLY),
        (e.DownloadTooLargeError("big"), Action.FAIL_PERMANENTLY),
        (e.ForsendelseGoneError("404", status_code=404), Action.FAIL_PERMANENTLY),
    ],
)
def test_classification(error: e.DaemonError, action: Action) -> None:
    decision = run(error)
    assert decision.action is action
    assert decision.reason == error.kind
    assert decision.report_permanent is (action is Action.FAIL_PERMANENTLY)
    retrying = action in (Action.RETRY, Action.RETRY_LOUDLY, Action.DOWNLOAD_AGAIN)
    assert (decision.retry_at is not None) is retrying
    assert decision.alert is (action in (Action.RETRY_LOUDLY, Action.STOP_ACCOUNT))


def test_every_error_class_is_classified() -> None:
    def leaves(cls: type[e.DaemonError]) -> list[type[e.DaemonError]]:
        return [cls, *(c for sub in cls.__subclasses__() for c in leaves(sub))]

    for cls in leaves(e.DaemonError):
        error = e.ArchiveError("x", temporary=True) if cls is e.ArchiveError else cls("x")
        decision = run(error)
        assert decision.message.endswith(f"[{cls.__name__}]")
        assert ("annen måte" in decision.message) is decision.report_permanent


@pytest.mark.parametrize(
    ("downloads", "action"),
    [(1, Action.DOWNLOAD_AGAIN), (2, Action.DOWNLOAD_AGAIN), (3, Action.FAIL_PERMANENTLY)],
)
def test_corrupt_downloads_are_bounded(downloads: int, action: Action) -> None:
    decision = run(e.ChecksumMismatchError("sha"), attempts=7, download_attempts=downloads)
    assert decision.action is action
    if action is Action.FAIL_PERMANENTLY:
        assert "etter 3 nedlastinger" in decision.message
        assert "annen måte" in decision.message


def test_download_attempts_default_to_attempts() -> None:
    assert run(e.TruncatedCmsError("x"), attempts=3).action is Action.FAIL_PERMANENTLY
    assert run(e.TruncatedCmsError("x"), attempts=2).action is Action.DOWNLOAD_AGAIN


def test_key_errors_can_be_made_permanent() -> None:
    policy = RetryPolicy(treat_key_errors_as_permanent=True)
    decision = run(e.NoMatchingRecipientError("key"), policy=policy)
    assert (decision.action, decision.alert) == (Action.FAIL_PERMANENTLY, True)
    assert run(e.OriginNotAllowedError("o"), policy=policy).action is Action.RETRY_LOUDLY


@pytest.mark.parametrize(
    ("attempts", "seconds"),
    [(1, 30), (2, 60), (3, 120), (7, 1920), (8, 3600), (50, 3600), (10_000, 3600), (0, 30)],
)
def test_backoff_doubles_up_to_the_cap(attempts: int, seconds: float) -> None:
    assert backoff(attempts, POLICY, random=no_jitter) == timedelta(seconds=seconds)
    decision = run(e.ServiceUnavailableError("503"), attempts=attempts)
    assert decision.retry_at == NOW + timedelta(seconds=seconds)


@pytest.mark.parametrize(("r", "seconds"), [(0.0, 120), (0.5, 108), (0.999999, 96.00002)])
def test_jitter_shrinks_by_up_to_the_fraction(r: float, seconds: float) -> None:
    delay = backoff(3, POLICY, random=lambda: r)
    assert delay.total_seconds() == pytest.approx(seconds)


def test_retry_after_is_respected_within_the_cap() -> None:
    error = e.ServiceUnavailableError("429", status_code=429, retry_after=300)
    assert run(error).retry_at == NOW + timedelta(seconds=300)
    error = e.ServiceUnavailableError("429", status_code=429, retry_after=86400)
    assert run(error).retry_at == NOW + timedelta(hours=1)


@pytest.mark.parametrize(
    ("last_report", "expected"),
    [
        (None, True),
        (NOW - timedelta(hours=1), False),
        (NOW - timedelta(hours=6), True),
        (NOW - timedelta(days=3), True),
    ],
)
def test_temporary_reports_are_throttled(last_report: datetime | None, expected: bool) -> None:
    decision = run(
        e.ArchiveError("offline", temporary=True),
        last_temporary_report_at=last_report,
        failing_since=NOW - timedelta(days=4),
    )
    assert decision.report_temporary is expected
    assert "prøver igjen automatisk" in decision.message


@pytest.mark.parametrize(
    ("failing_for", "expected"),
    [
        (None, False),  # the first failure
        (timedelta(seconds=1), False),
        (timedelta(minutes=59, seconds=59), False),
        (timedelta(hours=1), True),
        (timedelta(hours=30), True),
    ],
)
def test_temporary_reports_wait_for_a_real_delay(
    failing_for: timedelta | None, expected: bool
) -> None:
    since = None if failing_for is None else NOW - failing_for
    decision = run(e.ArchiveError("full", temporary=True), failing_since=since)
    assert decision.report_temporary is expected


def test_own_bookkeeping_failures_are_not_reported_to_the_sender() -> None:
    long_ago = NOW - timedelta(days=1)
    for error in (
        e.LedgerUnavailableError("db"),
        e.LedgerError("integrity"),
        e.ConfigError("x"),
        e.AuthenticationError("401"),
    ):
        assert not run(error, failing_since=long_ago).report_temporary, error
    assert run(e.NoMatchingRecipientError("k"), failing_since=long_ago).report_temporary
    assert run(e.StorageError("disk full"), failing_since=long_ago).report_temporary
    assert run(e.InternalError("bug"), failing_since=long_ago).report_temporary


def test_messages_never_carry_internal_details() -> None:
    secret_bits = [
        e.ServiceUnavailableError("GET https://u:hunter2@svarut", body_start="<html>token=abc"),
        e.ArchiveError("cannot write /srv/arkiv/secret-path: EACCES", temporary=False),
        e.ConfigError("password_file /etc/x unreadable"),
        e.StorageError("cannot write /var/lib/svarinn-daemon/tmp"),
    ]
    for error in secret_bits:
        message = failure_message(error)
        for fragment in ("hunter2", "/srv", "/etc", "/var", "token", "Traceback"):
            assert fragment not in message


def test_verification_messages_name_the_problem() -> None:
    error = e.VerificationError("the zip lacks 1 document(s) listed in filmetadata: 'b.pdf'")
    message = failure_message(error)
    assert message == (
        "Innholdet stemmer ikke med filmetadata: the zip lacks 1 document(s) listed in "
        "filmetadata: 'b.pdf'. Mottaket vil ikke lykkes; forsendelsen må sendes på annen "
        "måte. [VerificationError]"
    )
    unsafe = e.UnsafeArchiveError("zip entry 'a\nb" + "x" * 1000 + "' is encrypted")
    long_message = failure_message(unsafe)
    assert len(long_message) == MAX_MESSAGE_LENGTH
    assert "\n" not in long_message
    alg = failure_message(e.UnsupportedAlgorithmError("x", oid="1.2.840.113549.1.1.1"))
    assert "(OID 1.2.840.113549.1.1.1)" in alg
