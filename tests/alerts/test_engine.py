"""The alert life cycle: fire once, repeat at the interval, resolve, survive a reload."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from svarinn_daemon.alerts import (
    AlertDetails,
    AlertKey,
    AlertState,
    AlertStatus,
    AlertStore,
    Condition,
    MemoryAlertStore,
    evaluate,
)

T0 = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
PENDING = AlertKey(Condition.PENDING_TOO_LONG, "kommune")
AUTH = AlertKey(Condition.AUTH_FAILING, "kommune")
DETAILS = AlertDetails(account="kommune", counts={"letters": 3})


def state(
    key: AlertKey,
    *,
    fired: datetime = T0,
    sent: datetime = T0,
    resolved: datetime | None = None,
    counts: dict[str, int] | None = None,
) -> AlertState:
    return AlertState(
        condition=key.condition,
        subject=key.subject,
        account="kommune",
        first_fired_at=fired,
        last_sent_at=sent,
        resolved_at=resolved,
        last_details={"letters": 3} if counts is None else counts,
    )


# (holding, previous, minutes after T0, expected messages as (condition, status))
CASES = [
    pytest.param({PENDING: DETAILS}, [], 0, [(PENDING, "firing")], id="new-fires"),
    pytest.param({PENDING: DETAILS}, [state(PENDING)], 30, [], id="holds-not-due"),
    pytest.param({PENDING: DETAILS}, [state(PENDING)], 240, [(PENDING, "repeating")], id="due"),
    pytest.param({PENDING: DETAILS}, [state(PENDING)], 239, [], id="one-minute-early"),
    pytest.param({}, [state(PENDING)], 10, [(PENDING, "resolved")], id="clears"),
    pytest.param({}, [state(PENDING, resolved=T0)], 10, [], id="already-resolved"),
    pytest.param(
        {PENDING: DETAILS},
        [state(PENDING, resolved=T0)],
        10,
        [(PENDING, "firing")],
        id="fires-again-after-resolve",
    ),
    pytest.param(
        {AUTH: DETAILS},
        [state(PENDING)],
        5,
        [(AUTH, "firing"), (PENDING, "resolved")],
        id="one-fires-other-resolves",
    ),
    pytest.param({}, [], 0, [], id="nothing"),
]


@pytest.mark.parametrize(("holding", "previous", "minutes", "expected"), CASES)
def test_life_cycle_table(
    holding: dict[AlertKey, AlertDetails],
    previous: list[AlertState],
    minutes: int,
    expected: list[tuple[AlertKey, str]],
) -> None:
    now = T0 + timedelta(minutes=minutes)
    result = evaluate(holding, previous, now=now, repeat_every=4 * HOUR, host="arkiv01")
    assert [(AlertKey(m.condition, m.subject), m.status.value) for m in result.messages] == expected
    for message, new in result.sends:
        assert message.sent_at == now
        assert message.host == "arkiv01"
        assert new.last_sent_at == now
        assert message.first_seen == new.first_fired_at
        if message.status is AlertStatus.RESOLVED:
            assert new.resolved_at == now
        else:
            assert new.resolved_at is None
        if message.status is AlertStatus.REPEATING:
            assert new.first_fired_at == T0


def test_zero_interval_never_repeats() -> None:
    result = evaluate(
        {PENDING: DETAILS},
        [state(PENDING)],
        now=T0 + 100 * HOUR,
        repeat_every=timedelta(0),
        host="h",
    )
    assert result.sends == ()


def test_changed_counts_are_stored_without_a_message() -> None:
    more = AlertDetails(account="kommune", counts={"letters": 5})
    result = evaluate(
        {PENDING: more}, [state(PENDING)], now=T0 + HOUR, repeat_every=4 * HOUR, host="h"
    )
    assert result.sends == ()
    assert [dict(s.last_details) for s in result.updates] == [{"letters": 5}]
    assert result.updates[0].last_sent_at == T0
    unchanged = evaluate(
        {PENDING: DETAILS}, [state(PENDING)], now=T0 + HOUR, repeat_every=4 * HOUR, host="h"
    )
    assert unchanged.updates == ()


def test_repeat_carries_the_current_counts_and_first_seen() -> None:
    more = AlertDetails(account="kommune", counts={"letters": 7})
    result = evaluate(
        {PENDING: more}, [state(PENDING)], now=T0 + 5 * HOUR, repeat_every=4 * HOUR, host="h"
    )
    (message,) = result.messages
    assert dict(message.counts) == {"letters": 7}
    assert message.first_seen == T0


def test_a_reloaded_store_neither_loses_nor_repeats() -> None:
    """Drive the cycle through a store, 'restart' by rebuilding it from its rows."""
    store = MemoryAlertStore()
    assert isinstance(store, AlertStore)
    sent: list[tuple[datetime, str]] = []

    def cycle(store: MemoryAlertStore, holding: dict[AlertKey, AlertDetails], at: datetime) -> None:
        result = evaluate(holding, store.load_active(), now=at, repeat_every=4 * HOUR, host="h")
        for message, new in result.sends:
            sent.append((at, message.status.value))
            store.save(new)
        for new in result.updates:
            store.save(new)

    cycle(store, {PENDING: DETAILS}, T0)
    store = MemoryAlertStore(store.rows.values())  # restart
    cycle(store, {PENDING: DETAILS}, T0 + HOUR)
    cycle(store, {PENDING: DETAILS}, T0 + 4 * HOUR)
    store = MemoryAlertStore(store.rows.values())  # restart
    cycle(store, {PENDING: DETAILS}, T0 + 5 * HOUR)
    cycle(store, {}, T0 + 6 * HOUR)
    store = MemoryAlertStore(store.rows.values())  # restart
    cycle(store, {}, T0 + 7 * HOUR)
    assert sent == [
        (T0, "firing"),
        (T0 + 4 * HOUR, "repeating"),
        (T0 + 6 * HOUR, "resolved"),
    ]
    assert store.load_active() == []
    (row,) = store.rows.values()
    assert (row.first_fired_at, row.resolved_at) == (T0, T0 + 6 * HOUR)
