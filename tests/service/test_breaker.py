"""The circuit breaker per archive, as a table of steps against a hand-moved clock."""

from __future__ import annotations

import pytest

from svarinn_daemon.service.breaker import Breaker, BreakerPolicy, BreakerState

POLICY = BreakerPolicy(pause_after=3, probe_delay=10.0, probe_max_delay=40.0)
CLOSED, OPEN, HALF = BreakerState.CLOSED, BreakerState.OPEN, BreakerState.HALF_OPEN

# (step, what it returns, state after). Steps: "fail", "ok", "allow", "cancel", "+N" (clock).
SCENARIOS = {
    "two failures are not an outage": [
        ("fail", False, CLOSED),
        ("fail", False, CLOSED),
        ("allow", True, CLOSED),
        ("ok", False, CLOSED),
        ("fail", False, CLOSED),
        ("fail", False, CLOSED),
        ("allow", True, CLOSED),
    ],
    "the third in a row opens it; nothing until the probe delay": [
        ("fail", False, CLOSED),
        ("fail", False, CLOSED),
        ("fail", True, OPEN),
        ("allow", False, OPEN),
        ("+9.9", None, OPEN),
        ("allow", False, OPEN),
        ("+0.1", None, OPEN),
        ("allow", True, HALF),
        ("allow", False, HALF),  # one probe at a time
        ("ok", True, CLOSED),
        ("allow", True, CLOSED),
    ],
    "a failed probe doubles the delay up to the maximum": [
        ("fail", False, CLOSED),
        ("fail", False, CLOSED),
        ("fail", True, OPEN),
        ("+10", None, OPEN),
        ("allow", True, HALF),
        ("fail", False, OPEN),
        ("+19", None, OPEN),
        ("allow", False, OPEN),
        ("+1", None, OPEN),
        ("allow", True, HALF),
        ("fail", False, OPEN),
        ("+40", None, OPEN),
        ("allow", True, HALF),
        ("fail", False, OPEN),
        ("+40", None, OPEN),  # 80 would be past the maximum
        ("allow", True, HALF),
        ("ok", True, CLOSED),
        ("fail", False, CLOSED),  # and a new outage counts from zero again
    ],
    "an unused probe lets the next one go": [
        ("fail", False, CLOSED),
        ("fail", False, CLOSED),
        ("fail", True, OPEN),
        ("+10", None, OPEN),
        ("allow", True, HALF),
        ("cancel", None, OPEN),
        ("allow", True, HALF),
        ("ok", True, CLOSED),
        ("cancel", None, CLOSED),  # after a result, cancelling changes nothing
    ],
    "a letter probe that failed before the archive leaves the delay passed": [
        ("fail", False, CLOSED),
        ("fail", False, CLOSED),
        ("fail", True, OPEN),
        ("+10", None, OPEN),
        ("allow", True, HALF),
        ("cancel", None, OPEN),
        ("allow", True, HALF),  # another letter at once, no new delay
        ("cancel", None, OPEN),
        ("allow", True, HALF),
        ("fail", False, OPEN),  # this one reached the archive: the delay doubles
        ("+19", None, OPEN),
        ("allow", False, OPEN),
    ],
    "a probe without a letter closes it on trial: the next failure reopens at once": [
        ("fail", False, CLOSED),
        ("fail", False, CLOSED),
        ("fail", True, OPEN),
        ("+10", None, OPEN),
        ("allow", True, HALF),
        ("probe", True, CLOSED),
        ("allow", True, CLOSED),
        ("fail", True, OPEN),  # one failure is enough on trial
        ("+19", None, OPEN),
        ("allow", False, OPEN),  # and the delay doubled
        ("+1", None, OPEN),
        ("allow", True, HALF),
        ("probe", True, CLOSED),
        ("ok", False, CLOSED),  # a letter got through: trial over
        ("fail", False, CLOSED),
        ("fail", False, CLOSED),
        ("fail", True, OPEN),  # three again, and the delay is back to 10
        ("+10", None, OPEN),
        ("allow", True, HALF),
    ],
    "a probe's success after a letter's changes nothing": [
        ("ok", False, CLOSED),
        ("probe", False, CLOSED),
        ("fail", False, CLOSED),
        ("fail", False, CLOSED),
        ("fail", True, OPEN),
    ],
}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_breaker_steps(name: str) -> None:
    now = [0.0]
    breaker = Breaker(POLICY, clock=lambda: now[0])
    for step, returns, state in SCENARIOS[name]:
        if step.startswith("+"):
            now[0] += float(step[1:])
            got = None
        else:
            got = {
                "fail": breaker.failure,
                "ok": breaker.success,
                "probe": lambda: breaker.success(trial=True),
                "allow": breaker.allow,
                "cancel": breaker.cancel_probe,
            }[step]()
        assert (step, got, breaker.state) == (step, returns, state)
    assert breaker.available is (breaker.state is CLOSED)


def test_open_for_counts_from_the_first_opening() -> None:
    now = [100.0]
    breaker = Breaker(POLICY, clock=lambda: now[0])
    for _ in range(3):
        breaker.failure()
    now[0] += 25
    breaker.allow()
    breaker.failure()
    now[0] += 5
    assert breaker.open_for() == 30
    breaker.success()
    assert breaker.open_for() == 0
