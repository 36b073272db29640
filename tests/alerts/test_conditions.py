"""Which conditions hold, as a table: ledger facts and poll statuses in, alerts out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from svarinn_daemon.alerts import AlertDetails, AlertKey, Condition
from svarinn_daemon.alerts.conditions import (
    DEFAULT_FAILURE_WINDOW,
    KEY_ERROR_KINDS,
    cutoffs,
    holding,
)
from svarinn_daemon.alerts.watch import AccountAlertFacts, PollStatus
from svarinn_daemon.config.model import AlertsConfig

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
CONFIG = AlertsConfig()  # pending 90m, polls failing 15m, repeat 4h
ACCOUNTS = {"kommune", "skole"}


def minutes_ago(minutes: float) -> datetime:
    return NOW - timedelta(minutes=minutes)


def poll(account: str, failing_for: float | None, kind: str | None = None) -> PollStatus:
    failing = minutes_ago(failing_for) if failing_for is not None else None
    return PollStatus(
        account=account,
        last_polled_at=NOW,
        last_ok_at=None if failing else NOW,
        failing_since=failing,
        last_error_kind=kind if failing else None,
    )


def held(**details: int) -> dict[str, int]:
    return details


FACT_CASES = [
    pytest.param(AccountAlertFacts("kommune"), {}, id="nothing-to-say"),
    pytest.param(
        AccountAlertFacts("kommune", pending=2, oldest_pending_seen_at=minutes_ago(95.5)),
        {Condition.PENDING_TOO_LONG: held(letters=2, oldest_minutes=95)},
        id="pending",
    ),
    pytest.param(
        AccountAlertFacts("kommune", failed_permanently=1),
        {Condition.PERMANENT_FAILURE: held(letters=1, reported=0)},
        id="failed-report-pending",
    ),
    pytest.param(
        AccountAlertFacts("kommune", failed_permanently=1, reported_recently=2),
        {Condition.PERMANENT_FAILURE: held(letters=3, reported=2)},
        id="failed-and-reported",
    ),
    pytest.param(
        AccountAlertFacts("kommune", key_errors=4),
        {Condition.NO_MATCHING_KEY: held(letters=4)},
        id="no-key",
    ),
    pytest.param(
        AccountAlertFacts(
            "kommune",
            pending=1,
            oldest_pending_seen_at=minutes_ago(200),
            key_errors=1,
            reported_recently=1,
        ),
        {
            Condition.PENDING_TOO_LONG: held(letters=1, oldest_minutes=200),
            Condition.PERMANENT_FAILURE: held(letters=1, reported=1),
            Condition.NO_MATCHING_KEY: held(letters=1),
        },
        id="three-at-once",
    ),
    pytest.param(
        AccountAlertFacts("kommune", storage_errors=2),
        {Condition.STORAGE_FAILING: held(letters=2)},
        id="our-disk",
    ),
    pytest.param(AccountAlertFacts("removed", key_errors=1), {}, id="unconfigured-account"),
]


@pytest.mark.parametrize(("fact", "expected"), FACT_CASES)
def test_ledger_facts(fact: AccountAlertFacts, expected: dict[Condition, dict[str, int]]) -> None:
    got = holding([fact], [], accounts=ACCOUNTS, now=NOW, config=CONFIG)
    assert got == {
        AlertKey(c, fact.account): AlertDetails(account=fact.account, counts=counts)
        for c, counts in expected.items()
    }


POLL_CASES = [
    pytest.param(poll("kommune", None), {}, id="ok"),
    pytest.param(
        poll("kommune", 0, "AuthenticationError"),
        {Condition.AUTH_FAILING: 0},
        id="auth-at-once",
    ),
    pytest.param(
        poll("kommune", 240, "AuthenticationError"),
        {Condition.AUTH_FAILING: 240},
        id="auth-long-is-not-also-polls-failing",
    ),
    pytest.param(poll("kommune", 14.9, "ServiceUnavailableError"), {}, id="failing-not-yet"),
    pytest.param(
        poll("kommune", 15, "ServiceUnavailableError"),
        {Condition.POLLS_FAILING: 15},
        id="failing-at-threshold",
    ),
    pytest.param(
        poll("kommune", 30, "ProtocolError"), {Condition.POLLS_FAILING: 30}, id="any-error"
    ),
    pytest.param(poll("removed", 30, "ProtocolError"), {}, id="unconfigured-account"),
]


@pytest.mark.parametrize(("status", "expected"), POLL_CASES)
def test_poll_statuses(status: PollStatus, expected: dict[Condition, int]) -> None:
    got = holding([], [status], accounts=ACCOUNTS, now=NOW, config=CONFIG)
    assert got == {
        AlertKey(c, status.account): AlertDetails(
            account=status.account, counts={"failing_minutes": minutes}
        )
        for c, minutes in expected.items()
    }


def test_accounts_are_separate_subjects() -> None:
    facts = [
        AccountAlertFacts("kommune", key_errors=1),
        AccountAlertFacts("skole", key_errors=2),
    ]
    polls = [poll("skole", 1, "AuthenticationError")]
    got = holding(facts, polls, accounts=ACCOUNTS, now=NOW, config=CONFIG)
    assert sorted(got) == [
        AlertKey(Condition.AUTH_FAILING, "skole"),
        AlertKey(Condition.NO_MATCHING_KEY, "kommune"),
        AlertKey(Condition.NO_MATCHING_KEY, "skole"),
    ]
    assert all(key.subject == details.account for key, details in got.items())


@pytest.mark.parametrize(
    ("repeat_every", "window"),
    [(timedelta(hours=4), timedelta(hours=4)), (timedelta(0), DEFAULT_FAILURE_WINDOW)],
)
def test_cutoffs_follow_the_thresholds(repeat_every: timedelta, window: timedelta) -> None:
    config = AlertsConfig(pending_after=timedelta(minutes=30), repeat_every=repeat_every)
    cut = cutoffs(config, NOW)
    assert cut.pending_before == NOW - timedelta(minutes=30)
    assert cut.reported_since == NOW - window


def test_key_error_kinds_are_the_error_classes_names() -> None:
    assert {
        "NoMatchingRecipientError",
        "KeyUnwrapError",
        "UnsupportedAlgorithmError",
    } == KEY_ERROR_KINDS


@pytest.mark.parametrize(
    ("paused", "holds"),
    [
        (timedelta(0), False),
        (timedelta(minutes=4, seconds=59), False),
        (timedelta(minutes=5), True),
        (timedelta(hours=3), True),
    ],
)
def test_archive_unavailable_after_its_threshold(paused: timedelta, holds: bool) -> None:
    out = holding(
        [], [], accounts=ACCOUNTS, now=NOW, config=CONFIG, archives_unavailable={"sak": paused}
    )
    key = AlertKey(Condition.ARCHIVE_UNAVAILABLE, "sak")
    assert (key in out) is holds
    if holds:
        minutes = int(paused.total_seconds() // 60)
        assert out[key] == AlertDetails(account=None, counts={"paused_minutes": minutes})


def test_alerts_about_an_account_in_shadow_mode_say_so() -> None:
    facts = [
        AccountAlertFacts("kommune", failed_permanently=1),
        AccountAlertFacts("skole", failed_permanently=1),
    ]
    got = holding(facts, [], accounts=ACCOUNTS, now=NOW, config=CONFIG, shadow_accounts={"kommune"})
    counts = {key.subject: dict(details.counts) for key, details in got.items()}
    assert counts == {
        "kommune": {"letters": 1, "reported": 0, "shadow_mode": 1},
        "skole": {"letters": 1, "reported": 0},
    }
