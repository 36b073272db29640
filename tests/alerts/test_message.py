"""Alert texts: GSM-7 and 160 characters for SMS, no personal data, readable long form."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from svarinn_daemon.alerts import AlertMessage, AlertStatus, Condition
from svarinn_daemon.alerts.gsm7 import GSM7_BASIC, is_gsm7, to_gsm7

T0 = datetime(2024, 5, 1, 8, 5, tzinfo=UTC)


def message(**changes: object) -> AlertMessage:
    fields: dict[str, object] = {
        "condition": Condition.PENDING_TOO_LONG,
        "subject": "kommune",
        "status": AlertStatus.FIRING,
        "account": "kommune",
        "host": "arkiv01",
        "first_seen": T0,
        "sent_at": T0,
        "counts": {"letters": 3, "oldest_minutes": 130},
    }
    fields.update(changes)
    return AlertMessage(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("«Brev» venter", '"Brev" venter'),
        ("Ærlig øl på Åsen", "Ærlig øl på Åsen"),
        ("alarm 🚨 nå", "alarm ? nå"),
        ("[x] {y} ~z | a^b \\ 5€", "(x) (y) -z / a'b / 5EUR"),
        ("“quoted” – dash…", '"quoted" - dash...'),
        ("Čáp naïve", "Cap naive"),
    ],
)
def test_sanitising(text: str, expected: str) -> None:
    assert to_gsm7(text) == expected
    assert is_gsm7(to_gsm7(text))


def test_truncation_marks_the_cut() -> None:
    out = to_gsm7("x" * 400)
    assert len(out) == 160
    assert out.endswith("...")


@given(st.text(max_size=500))
def test_any_text_becomes_one_plain_sms(text: str) -> None:
    out = to_gsm7(text)
    assert len(out) <= 160
    assert set(out) <= GSM7_BASIC


def test_short_text_is_exactly_account_condition_counts_host() -> None:
    assert message().short_text() == (
        "svarinn ALERT pending_too_long kommune letters=3 oldest_minutes=130 "
        "since 01.05 08:05Z host arkiv01"
    )
    resolved = message(status=AlertStatus.RESOLVED, counts={})
    assert resolved.short_text() == (
        "svarinn OK pending_too_long kommune since 01.05 08:05Z host arkiv01"
    )


@given(
    account=st.text(min_size=1, max_size=200),
    host=st.text(min_size=1, max_size=200),
    condition=st.sampled_from(list(Condition)),
    status=st.sampled_from(list(AlertStatus)),
)
def test_short_text_always_fits(
    account: str, host: str, condition: Condition, status: AlertStatus
) -> None:
    text = message(account=account, host=host, condition=condition, status=status).short_text()
    assert len(text) <= 160
    assert is_gsm7(text)


def test_no_field_for_personal_data() -> None:
    """The subject (which a caller might misuse) never reaches the SMS; counts are ints."""
    text = message(subject="Ola Nordmann 01017012345").short_text()
    assert "Ola" not in text
    assert "01017012345" not in text


def test_long_text_and_json() -> None:
    long = message().long_text()
    assert long.splitlines()[0] == "[FIRING] svarinn-daemon kommune: letters pending too long"
    assert "first seen: 2024-05-01 08:05 UTC" in long
    assert "paper" in long
    body = message(status=AlertStatus.RESOLVED).to_json()
    assert body["status"] == "resolved"
    assert body["counts"] == {"letters": 3, "oldest_minutes": 130}
    assert body["first_seen"] == "2024-05-01T08:05:00Z"
    assert body["text"].startswith("[RESOLVED]")


def test_message_is_immutable() -> None:
    msg = message()
    with pytest.raises(AttributeError):
        msg.subject = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        msg.counts["letters"] = 9  # type: ignore[index]
