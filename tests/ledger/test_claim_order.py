"""Claims in due order, narrowed by archive, and an archive's letters woken when it is back;
on SQLite and a real PostgreSQL server alike."""

from __future__ import annotations

from datetime import timedelta

from svarinn_daemon.ledger import Ledger, State, Work
from svarinn_daemon.testing import FakeClock
from tests.support.ledger_support import record_seen

W = "host-a:1"
LEASE = timedelta(minutes=5)
SECOND = timedelta(seconds=1)


def _fail(
    ledger: Ledger, letter_id: int, retry_in: timedelta, kind: str = "OriginNotAllowedError"
) -> None:
    ledger.schedule_retry(letter_id, W, kind, "failed", ledger.clock() + retry_in)


def _order(ledger: Ledger, account: str | None = None) -> list[str]:
    """The order in which the due imports would be handed out, without changing them."""
    order = []
    taken = []
    while claims := ledger.claim(W, LEASE, account=account):
        (claim,) = claims
        order.append(claim.letter.forsendelse_id)
        taken.append(claim)
    for claim in taken:
        ledger.release(claim.id, W, "test: just looking")
    return order


def test_a_letter_failing_again_and_again_waits_behind_the_others(
    ledger: Ledger, clock: FakeClock
) -> None:
    ids = {f: record_seen(ledger, "k", f).letter_id for f in ("first", "second", "third")}
    clock.advance(SECOND)
    (claim,) = ledger.claim(W, LEASE, account="k")
    assert claim.letter.forsendelse_id == "first"  # listed first, due first
    _fail(ledger, ids["first"], 10 * SECOND)
    clock.advance(20 * SECOND)
    # "first" is due again, but only since its retry time: the others waited longer.
    assert _order(ledger, "k") == ["second", "third", "first"]


def test_due_order_holds_across_accounts(ledger: Ledger, clock: FakeClock) -> None:
    stuck = record_seen(ledger, "a", "stuck").letter_id
    clock.advance(SECOND)
    record_seen(ledger, "b", "waiting")
    for _ in range(3):  # fails at once each time it is claimed
        clock.advance(SECOND)
        (claim,) = ledger.claim(W, LEASE, account="a")
        assert claim.id == stuck
        _fail(ledger, stuck, SECOND)
        clock.advance(2 * SECOND)
        assert _order(ledger)[0] == "waiting"


def test_paused_archives_are_passed_over_and_probed_alone(ledger: Ledger, clock: FakeClock) -> None:
    receipt = record_seen(ledger, "k", "archived-before", archive="down").letter_id
    (claim,) = ledger.claim(W, LEASE, account="k", archive="down")
    assert claim.id == receipt
    ledger.mark_archived(
        receipt, W, archive_ref="r", actual_sha256=None, actual_size=1, verified=True
    )
    ledger.release(receipt, W, "receipt later")
    record_seen(ledger, "k", "to-down", archive="down")
    record_seen(ledger, "k", "to-up", archive="up")
    record_seen(ledger, "k", "unrouted")
    clock.advance(SECOND)

    taken = ledger.claim(W, LEASE, limit=10, paused=frozenset({"down"}))
    assert {(c.letter.forsendelse_id, c.work) for c in taken} == {
        ("archived-before", Work.ACKNOWLEDGE),  # receipts never wait for an archive
        ("to-up", Work.IMPORT),
        ("unrouted", Work.IMPORT),
    }
    for c in taken:
        ledger.release(c.id, W, "test")
    probe = ledger.claim(W, LEASE, limit=10, archive="down")
    assert [(c.letter.forsendelse_id, c.work) for c in probe] == [("to-down", Work.IMPORT)]


def test_an_archive_back_wakes_only_the_letters_that_waited_for_it(
    ledger: Ledger, clock: FakeClock
) -> None:
    letters = {}
    for fid, archive, kind in (
        ("full", "down", "ArchiveError"),
        ("other-archive", "up", "ArchiveError"),
        ("own-fault", "down", "OriginNotAllowedError"),
    ):
        letters[fid] = record_seen(ledger, "k", fid, archive=archive).letter_id
        ledger.claim(W, LEASE, account="k", archive=archive)
        _fail(ledger, letters[fid], timedelta(hours=1), kind)
    assert ledger.wake_archive("down") == (letters["full"],)
    woken = ledger.get(letters["full"])
    assert woken is not None
    assert woken.state is State.RETRY_SCHEDULED
    assert woken.next_attempt_at == clock()
    assert [c.letter.forsendelse_id for c in ledger.claim(W, LEASE, limit=10)] == ["full"]


def test_routes_are_stored_for_letters_still_to_import(ledger: Ledger) -> None:
    waiting = record_seen(ledger, "k", "waiting").letter_id
    done = record_seen(ledger, "k", "done", archive="old").letter_id
    (claim,) = ledger.claim(W, LEASE, account="k", archive="old")
    ledger.mark_archived(done, W, archive_ref="r", actual_sha256=None, actual_size=1, verified=True)
    assert claim.id == done
    assert [x.id for x in ledger.imports_waiting()] == [waiting]
    assert ledger.store_routes({waiting: "new", done: "new"}) == 1
    assert ledger.store_routes({waiting: "new"}) == 0  # already so
    stored = ledger.get(waiting)
    assert stored is not None
    assert stored.archive == "new"
    archived = ledger.get(done)
    assert archived is not None
    assert archived.archive == "old"
