"""The shared deadline thread behind every download's time budget.

Deadlines already past run at once, in order; the assertions are on order and on what ran,
never on how fast the machine is (each wait allows 30 s for what takes milliseconds)."""

from __future__ import annotations

import threading
import time

from svarinn_daemon.svarinn.deadlines import Deadlines

WAIT = 30.0


class QuickIdle(Deadlines):
    IDLE = 0.05


def test_due_actions_run_in_deadline_order_and_a_cancelled_one_never() -> None:
    deadlines = Deadlines()
    ran: list[str] = []
    done = threading.Event()
    gate = threading.Event()
    now = time.monotonic()
    # The thread starts with the first deadline: hold it in a first action until all are set.
    deadlines.at(now - 10, lambda: gate.wait(WAIT))
    deadlines.at(now - 1, lambda: ran.append("second"))
    deadlines.at(now - 2, lambda: ran.append("first"))
    cancel = deadlines.at(now - 0.5, lambda: ran.append("cancelled"))
    cancel()
    cancel()  # twice: harmless
    deadlines.at(now, done.set)
    gate.set()
    assert done.wait(WAIT)
    assert ran == ["first", "second"]
    assert deadlines.pending() == 0


def test_an_earlier_deadline_wakes_the_thread_waiting_for_a_later_one() -> None:
    deadlines = Deadlines()
    late = threading.Event()
    early = threading.Event()
    cancel_late = deadlines.at(time.monotonic() + 3600, late.set)
    deadlines.at(time.monotonic(), early.set)
    assert early.wait(WAIT)  # not an hour
    assert not late.is_set()
    assert deadlines.pending() == 1
    cancel_late()
    assert deadlines.pending() == 0


def test_a_failing_action_does_not_stop_the_next() -> None:
    deadlines = Deadlines()
    done = threading.Event()

    def broken() -> None:
        raise RuntimeError("a bug in one download's interrupt")

    gate = threading.Event()
    now = time.monotonic()
    deadlines.at(now - 10, lambda: gate.wait(WAIT))  # both set before either runs
    deadlines.at(now - 1, broken)
    deadlines.at(now, done.set)
    gate.set()
    assert done.wait(WAIT)


def test_the_thread_ends_when_idle_and_starts_again_when_needed() -> None:
    deadlines = QuickIdle()
    first = threading.Event()
    deadlines.at(time.monotonic(), first.set)
    assert first.wait(WAIT)
    for _ in range(int(WAIT / 0.01)):
        if deadlines._thread is None:
            break
        time.sleep(0.01)
    assert deadlines._thread is None
    again = threading.Event()
    deadlines.at(time.monotonic(), again.set)
    assert again.wait(WAIT)


def test_cancelled_deadlines_do_not_pile_up() -> None:
    """A day of downloads, each finished long before its budget: the heap stays small."""
    deadlines = Deadlines()
    far = time.monotonic() + 3600
    for _ in range(10_000):
        deadlines.at(far, lambda: None)()
    assert deadlines.pending() == 0
    assert len(deadlines._heap) <= 64
