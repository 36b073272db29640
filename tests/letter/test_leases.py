"""One thread keeps the lease of every claim in a blocking step (an adapter's call), on a
real ledger; it stops renewing a lease another worker took, and ends when idle."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta

from svarinn_daemon.ledger import Ledger, Sighting
from svarinn_daemon.letter.leases import LeaseKeeper
from svarinn_daemon.testing import FakeClock

LEASE = timedelta(seconds=0.3)


def eventually(condition: Callable[[], bool], what: str) -> None:
    """Wait for ``condition`` (the keeper renews every 0.1 s; this allows 10 s)."""
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def keepers() -> set[threading.Thread]:
    """The keeper threads alive now. Tests compare sets, not counts: an idle keeper another
    test left behind may end at any moment (after its ``IDLE``), which would upset a count."""
    return {thread for thread in threading.enumerate() if thread.name == "leases"}


def test_one_thread_keeps_every_claims_lease(ledger: Ledger, clock: FakeClock) -> None:
    ledger.record_seen_many("k", [Sighting("a"), Sighting("b")], listed_at=clock())
    claims = ledger.claim("w", LEASE, limit=2)
    assert len(claims) == 2
    keeper = LeaseKeeper(ledger, "w", LEASE)
    before = keepers()
    with keeper.kept(claims[0]), keeper.kept(claims[1]):
        for _ in range(3):  # each step alone would outlast the claim's lease but for renewals
            clock.advance(timedelta(seconds=0.2))

            def renewed() -> bool:
                letters = [ledger.get(c.id) for c in claims]
                return all(x is not None and x.lease_expires_at == clock() + LEASE for x in letters)

            eventually(renewed, "both leases renewed")
        assert len(keepers() - before) == 1
    clock.advance(timedelta(seconds=10))
    time.sleep(0.3)  # a renewal would be due twice over: none comes after the block
    assert not any((x := ledger.get(c.id)) is not None and x.leased(clock()) for c in claims)
    keeper.close()
    assert not keepers() - before


def test_a_lease_another_worker_took_is_not_renewed(ledger: Ledger, clock: FakeClock) -> None:
    ledger.record_seen_many("k", [Sighting("a")], listed_at=clock())
    (claim,) = ledger.claim("w", LEASE)
    keeper = LeaseKeeper(ledger, "w", LEASE)
    with keeper.kept(claim):
        clock.advance(timedelta(seconds=10))
        ledger.reap_expired_leases()
        (taken,) = ledger.claim("other", timedelta(minutes=5))
        time.sleep(0.4)
        letter = ledger.get(claim.id)
        assert letter is not None
        assert letter.claimed_by == "other"  # the keeper's renewals were refused
    keeper.close()
    assert taken.id == claim.id


def test_the_thread_ends_when_nothing_is_held(ledger: Ledger, clock: FakeClock) -> None:
    ledger.record_seen_many("k", [Sighting("a")], listed_at=clock())
    (claim,) = ledger.claim("w", LEASE)
    keeper = LeaseKeeper(ledger, "w", LEASE)
    keeper.IDLE = 0.1
    before = keepers()
    with keeper.kept(claim):
        (first,) = keepers() - before
    eventually(lambda: not first.is_alive(), "the idle keeper to end")
    with keeper.kept(claim):  # and a new one starts when needed
        (second,) = keepers() - before
        assert second is not first
    keeper.close()
    assert not second.is_alive()
