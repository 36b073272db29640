"""The ledger's contract, run against SQLite and a real PostgreSQL server alike."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from svarinn_daemon.errors import (
    IllegalTransitionError,
    LeaseLostError,
    LedgerError,
    LedgerUnavailableError,
    LetterNotFoundError,
)
from svarinn_daemon.ledger import Ledger, SeenAction, Sighting, State, Trigger, Work
from svarinn_daemon.testing import FakeClock
from tests.support.ledger_support import HASH, LEASE, OTHER, W, bring, outage, record_seen

VERBS: dict[Trigger, Callable[[Ledger, int], Any]] = {
    Trigger.ARCHIVE: lambda led, i: led.mark_archived(
        i, W, archive_ref="r", actual_sha256=HASH, actual_size=1, verified=True
    ),
    Trigger.ACKNOWLEDGE: lambda led, i: led.mark_acknowledged(i, W),
    Trigger.SCHEDULE_RETRY: lambda led, i: led.schedule_retry(
        i, W, "E", "m", led.clock() + timedelta(minutes=1)
    ),
    Trigger.FAIL: lambda led, i: led.mark_failed_permanently(i, W, "E", "m"),
    Trigger.REPORT: lambda led, i: led.mark_reported(i, W),
    Trigger.RELEASE: lambda led, i: led.release(i, W, "shutdown"),
}
LEGAL = {
    (State.CLAIMED, Trigger.ARCHIVE): (State.ARCHIVED, True),
    (State.CLAIMED, Trigger.SCHEDULE_RETRY): (State.RETRY_SCHEDULED, False),
    (State.CLAIMED, Trigger.FAIL): (State.FAILED_PERMANENTLY, True),
    (State.CLAIMED, Trigger.RELEASE): (State.SEEN, False),
    (State.ARCHIVED, Trigger.ACKNOWLEDGE): (State.ACKNOWLEDGED, False),
    (State.ARCHIVED, Trigger.SCHEDULE_RETRY): (State.ARCHIVED, False),
    (State.ARCHIVED, Trigger.RELEASE): (State.ARCHIVED, False),
    (State.FAILED_PERMANENTLY, Trigger.REPORT): (State.REPORTED, False),
    (State.FAILED_PERMANENTLY, Trigger.SCHEDULE_RETRY): (State.FAILED_PERMANENTLY, False),
    (State.FAILED_PERMANENTLY, Trigger.RELEASE): (State.FAILED_PERMANENTLY, False),
}
LEASED_STATES = {State.CLAIMED, State.ARCHIVED, State.FAILED_PERMANENTLY}


@pytest.mark.parametrize("state", list(State))
def test_every_worker_verb_in_every_state(ledger: Ledger, state: State) -> None:
    for trigger, verb in VERBS.items():
        letter_id = bring(ledger, f"{state.value}-{trigger.value}", state)
        before = ledger.get(letter_id)
        events_before = ledger.events(letter_id)
        if (state, trigger) in LEGAL:
            to, keeps_lease = LEGAL[(state, trigger)]
            after = verb(ledger, letter_id)
            assert after.state is to
            assert (after.claimed_by == W) is keeps_lease
            trail = ledger.events(letter_id)
            assert len(trail) == len(events_before) + 1
            last = trail[-1]
            assert (last.trigger, last.from_state, last.to_state, last.worker_id) == (
                trigger,
                state,
                to,
                W,
            )
            continue
        expected = IllegalTransitionError if state in LEASED_STATES else LeaseLostError
        with pytest.raises(expected):
            verb(ledger, letter_id)
        assert ledger.get(letter_id) == before, (state, trigger)
        assert ledger.events(letter_id) == events_before


def test_full_import_cycle_records_every_step(ledger: Ledger, clock: FakeClock) -> None:
    raw = {"id": "f-1", "filmetadata": [{"sha256hash": HASH, "size": 3}], "tittel": "Søknad"}
    seen = record_seen(
        ledger,
        "kommune",
        "f-1",
        sender="Ola",
        title="Søknad",
        declared_size=3,
        expected_sha256=HASH,
        raw_json=json.dumps(raw),
    )
    assert seen.action is SeenAction.NEW
    [claim] = ledger.claim(W, LEASE)
    assert claim.work is Work.IMPORT
    assert claim.lease_expires_at == clock.now + LEASE
    clock.advance(timedelta(seconds=10))
    ledger.mark_archived(
        claim.id, W, archive_ref="arkiv/1", actual_sha256=HASH.upper(), actual_size=3, verified=True
    )
    clock.advance(timedelta(seconds=1))
    done = ledger.mark_acknowledged(claim.id, W)
    assert done.state is State.ACKNOWLEDGED
    assert done.claimed_by is None
    assert done.expected_sha256 == done.actual_sha256 == (HASH,)
    assert (done.declared_size, done.actual_size, done.verified, done.file_count) == (3, 3, True, 1)
    assert done.archive_ref == "arkiv/1"
    assert done.attempts == 1
    assert done.raw == raw
    assert done.sender == "Ola"
    assert done.title == "Søknad"
    assert done.seen_at < done.archived_at < done.acknowledged_at  # type: ignore[operator]
    assert [e.trigger for e in ledger.events(claim.id)] == [
        Trigger.SEE,
        Trigger.CLAIM,
        Trigger.ARCHIVE,
        Trigger.ACKNOWLEDGE,
    ]
    assert ledger.claim(W, LEASE) == ()


def test_record_seen_is_idempotent_in_pages(ledger: Ledger) -> None:
    page = [Sighting(f"id-{i}", expected_sha256=[HASH, HASH]) for i in range(200)]
    first = ledger.record_seen_many("kommune", page + page[:3])
    assert [r.action for r in first] == [SeenAction.NEW] * 203
    assert [r.forsendelse_id for r in first] == [s.forsendelse_id for s in page + page[:3]]
    assert first[200] == first[0]
    again = ledger.record_seen_many("kommune", page)
    assert {r.action for r in again} == {SeenAction.IN_PROGRESS}
    assert [r.letter_id for r in again] == [r.letter_id for r in first[:200]]
    # The same forsendelse id under another account is another letter.
    other = record_seen(ledger, "kommune-2", "id-0")
    assert other.action is SeenAction.NEW
    assert other.letter_id != first[0].letter_id
    assert ledger.backlog().total(State.SEEN) == 201
    assert ledger.get(first[0].letter_id).expected_sha256 == (HASH, HASH)  # type: ignore[union-attr]


def test_acknowledged_letter_listed_again_is_acknowledged_again_not_imported(
    ledger: Ledger,
) -> None:
    letter_id = bring(ledger, "f-ack", State.ACKNOWLEDGED)
    result = record_seen(ledger, "a-f-ack", "f-ack")
    assert (result.action, result.state) == (SeenAction.REACKNOWLEDGE, State.ARCHIVED)
    assert record_seen(ledger, "a-f-ack", "f-ack").action is SeenAction.IN_PROGRESS
    [claim] = ledger.claim(OTHER, LEASE)
    assert claim.work is Work.ACKNOWLEDGE
    assert claim.letter.archive_ref == "ref-f-ack"
    with pytest.raises(IllegalTransitionError):
        ledger.mark_archived(
            letter_id, OTHER, archive_ref="x", actual_sha256=None, actual_size=None, verified=False
        )
    assert ledger.mark_acknowledged(letter_id, OTHER).state is State.ACKNOWLEDGED

    reported = bring(ledger, "f-rep", State.REPORTED)
    result = record_seen(ledger, "a-f-rep", "f-rep")
    assert (result.action, result.state) == (SeenAction.REREPORT, State.FAILED_PERMANENTLY)
    [claim] = ledger.claim(OTHER, LEASE)
    assert (claim.id, claim.work) == (reported, Work.REPORT)


def test_retries_wait_for_their_time_and_keep_their_work(ledger: Ledger, clock: FakeClock) -> None:
    archived = bring(ledger, "f-a", State.ARCHIVED)
    ledger.schedule_retry(
        archived,
        W,
        "ServiceUnavailableError",
        "502 from kvitterMottak",
        clock.now + timedelta(minutes=10),
    )
    failed = bring(ledger, "f-b", State.RETRY_SCHEDULED)
    assert ledger.claim(W, LEASE, limit=10) == ()
    clock.advance(timedelta(minutes=10))
    claims = ledger.claim(W, LEASE, limit=10)
    assert [(c.id, c.work) for c in claims] == [(archived, Work.ACKNOWLEDGE), (failed, Work.IMPORT)]
    letter = ledger.get(archived)
    assert letter is not None
    assert (letter.last_error_kind, letter.last_error_message, letter.attempts) == (
        "ServiceUnavailableError",
        "502 from kvitterMottak",
        2,
    )


def test_claim_prefers_receipts_then_reports_then_oldest_imports(
    ledger: Ledger, clock: FakeClock
) -> None:
    imports = [record_seen(ledger, "kommune-2", f"new-{i}").letter_id for i in range(3)]
    clock.advance(timedelta(seconds=1))
    report = bring(ledger, "fail", State.FAILED_PERMANENTLY)
    receipt = bring(ledger, "arch", State.ARCHIVED)
    ledger.release(report, W, "test")
    ledger.release(receipt, W, "test")
    claims = ledger.claim(OTHER, LEASE, limit=10)
    assert [c.id for c in claims][:2] == [receipt, report]
    assert [c.id for c in claims][2:] == imports
    assert ledger.claim(OTHER, LEASE, account="nobody") == ()


def test_lease_expiry_reaping_and_lost_leases(ledger: Ledger, clock: FakeClock) -> None:
    letter_id = bring(ledger, "f-1", State.CLAIMED)
    assert ledger.claim(OTHER, LEASE) == ()  # the live lease protects it
    clock.advance(LEASE - timedelta(seconds=1))
    new_expiry = ledger.extend_lease(letter_id, W, LEASE)
    assert new_expiry == clock.now + LEASE
    clock.advance(LEASE)  # expired now
    with pytest.raises(LeaseLostError):
        ledger.extend_lease(letter_id, W, LEASE)
    with pytest.raises(LeaseLostError):
        VERBS[Trigger.ARCHIVE](ledger, letter_id)
    assert ledger.reap_expired_leases() == (letter_id,)
    assert ledger.reap_expired_leases() == ()
    letter = ledger.get(letter_id)
    assert letter is not None
    assert (letter.state, letter.claimed_by) == (State.SEEN, None)
    last = ledger.events(letter_id)[-1]
    assert (last.trigger, last.worker_id, last.to_state) == (Trigger.EXPIRE, W, State.SEEN)
    # An expired lease can also be claimed over directly, and the old worker has lost it.
    bring(ledger, "f-2", State.ARCHIVED)
    clock.advance(LEASE)
    claims = ledger.claim(OTHER, LEASE, limit=5)
    assert {c.work for c in claims} == {Work.ACKNOWLEDGE, Work.IMPORT}
    with pytest.raises(LeaseLostError, match=OTHER):
        ledger.mark_acknowledged(claims[0].id, W)


def test_release_worker_frees_what_a_restarted_worker_held(ledger: Ledger) -> None:
    a = bring(ledger, "a", State.CLAIMED)
    b = bring(ledger, "b", State.ARCHIVED)
    c = bring(ledger, "c", State.FAILED_PERMANENTLY)
    assert sorted(ledger.release_worker(W)) == [a, b, c]
    states = {i: ledger.get(i).state for i in (a, b, c)}  # type: ignore[union-attr]
    assert states == {a: State.SEEN, b: State.ARCHIVED, c: State.FAILED_PERMANENTLY}
    assert ledger.release_worker(W) == ()


def test_operator_retry(ledger: Ledger) -> None:
    failed = bring(ledger, "f", State.FAILED_PERMANENTLY)
    with pytest.raises(IllegalTransitionError, match="being worked on"):
        ledger.retry(failed, "new key installed")
    ledger.schedule_retry(failed, W, "E", "m", ledger.clock() + timedelta(hours=1))
    after = ledger.retry(failed, "new key installed", operator="cli:ola")
    assert (after.state, after.next_attempt_at) == (State.SEEN, None)
    last = ledger.events(failed)[-1]
    assert (last.trigger, last.worker_id, last.reason) == (
        Trigger.OPERATOR_RETRY,
        "cli:ola",
        "new key installed",
    )
    scheduled = bring(ledger, "r", State.RETRY_SCHEDULED)
    assert ledger.retry(scheduled, "now please").state is State.SEEN
    for state in (State.SEEN, State.ACKNOWLEDGED, State.REPORTED):
        with pytest.raises(IllegalTransitionError):
            ledger.retry(bring(ledger, f"x-{state.value}", state), "why")
    with pytest.raises(LedgerError, match="reason"):
        ledger.retry(scheduled, "  ")
    with pytest.raises(LetterNotFoundError):
        ledger.retry(99999, "missing")
    with pytest.raises(LetterNotFoundError):
        ledger.mark_acknowledged(99999, W)


def test_backlog_and_listing(ledger: Ledger, clock: FakeClock) -> None:
    old = bring(ledger, "old", State.ARCHIVED, account="kommune")
    clock.advance(timedelta(hours=1))
    bring(ledger, "done", State.ACKNOWLEDGED)
    record_seen(ledger, "other", "x")
    clock.advance(timedelta(minutes=30))
    backlog = ledger.backlog()
    assert backlog.oldest_unfinished is not None
    assert backlog.oldest_unfinished.id == old
    assert backlog.oldest_age == timedelta(hours=1, minutes=30)
    assert backlog.total() == 3
    assert backlog.total(account="kommune") == 1
    assert backlog.total(State.ACKNOWLEDGED) == 1
    assert [x.forsendelse_id for x in ledger.list(account="kommune")] == ["old"]
    assert [x.forsendelse_id for x in ledger.list(state=State.SEEN)] == ["x"]
    since = clock.now - timedelta(minutes=31)
    assert [x.forsendelse_id for x in ledger.list(since=since)] == ["done", "x"]
    assert [x.id for x in ledger.archived_unacknowledged()] == [old]
    assert [x.account for x in ledger.find("x")] == ["other"]
    assert ledger.get(424242) is None


def test_the_event_trail_is_append_only_in_the_database(ledger: Ledger) -> None:
    bring(ledger, "f", State.SEEN)
    for statement in (
        "UPDATE forsendelse_events SET reason = 'x'",
        "DELETE FROM forsendelse_events",
    ):
        with pytest.raises(sa.exc.DBAPIError, match="append-only"), ledger.engine.begin() as conn:
            conn.execute(sa.text(statement))


def test_two_threads_claiming_the_same_letter_exactly_one_wins(ledger: Ledger) -> None:
    for round_ in range(15):
        letter_id = record_seen(ledger, "kommune", f"race-{round_}").letter_id
        barrier = threading.Barrier(2)
        results: dict[str, tuple[int, ...]] = {}

        def worker(
            name: str, barrier: threading.Barrier, results: dict[str, tuple[int, ...]]
        ) -> None:
            barrier.wait()
            results[name] = tuple(c.id for c in ledger.claim(name, LEASE))

        threads = [
            threading.Thread(target=worker, args=(n, barrier, results)) for n in ("t1", "t2")
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        won = [name for name, ids in results.items() if ids]
        assert len(won) == 1, results
        assert results[won[0]] == (letter_id,)
        ledger.mark_archived(
            letter_id, won[0], archive_ref="r", actual_sha256=None, actual_size=None, verified=False
        )
        ledger.mark_acknowledged(letter_id, won[0])


def test_database_error_mid_run_leaves_the_letter_claimable_and_nothing_done(
    ledger: Ledger, ledger_url: str, clock: FakeClock
) -> None:
    letter_id = bring(ledger, "f", State.CLAIMED)
    with outage(ledger_url), pytest.raises(LedgerUnavailableError) as err:
        VERBS[Trigger.ARCHIVE](ledger, letter_id)
    assert err.value.temporary
    letter = ledger.get(letter_id)
    assert letter is not None
    assert letter.state is State.CLAIMED
    assert letter.archived_at is None
    assert Trigger.ARCHIVE not in [e.trigger for e in ledger.events(letter_id)]
    clock.advance(LEASE)
    [claim] = ledger.claim(OTHER, LEASE)
    assert (claim.id, claim.work, claim.letter.attempts) == (letter_id, Work.IMPORT, 2)


def test_bad_input_is_a_ledger_error(ledger: Ledger) -> None:
    with pytest.raises(LedgerError, match="64 hex"):
        record_seen(ledger, "kommune", "f", expected_sha256="not-a-hash")
    with pytest.raises(LedgerError, match="1-100"):
        record_seen(ledger, "kommune", "x" * 101)
    with pytest.raises(LedgerError, match="not JSON"):
        record_seen(ledger, "kommune", "f", raw_json="{not json")
    with pytest.raises(LedgerError, match="timezone"):
        ledger.claim(W, LEASE, now=ledger.clock().replace(tzinfo=None))
    assert ledger.backlog().total() == 0


def test_a_run_of_failures_is_timed_and_temporary_reports_remembered(
    ledger: Ledger, clock: FakeClock
) -> None:
    """failing_since: the first schedule_retry of a run, kept by later ones, cleared when
    the letter is archived; temporary_reported_at survives in the ledger (a restart)."""
    letter_id = bring(ledger, "f", State.CLAIMED)
    started = clock.now
    ledger.schedule_retry(letter_id, W, "ArchiveError", "full", clock.now)
    ledger.record_temporary_report(letter_id)
    for _ in range(2):
        clock.advance(timedelta(minutes=10))
        [claim] = ledger.claim(W, LEASE)
        assert (claim.letter.failing_since, claim.letter.temporary_reported_at) == (
            started,
            started,
        )
        ledger.schedule_retry(letter_id, W, "ArchiveError", "full", clock.now)
    [claim] = ledger.claim(W, LEASE)
    archived = ledger.mark_archived(
        letter_id, W, archive_ref="r", actual_sha256=None, actual_size=None, verified=False
    )
    assert archived.failing_since is None


def test_claim_without_imports_takes_only_receipts_and_reports(ledger: Ledger) -> None:
    """An archive paused by its breaker: its account's receipts still go."""
    receipt = bring(ledger, "arch", State.ARCHIVED)
    report = bring(ledger, "fail", State.FAILED_PERMANENTLY)
    ledger.release(receipt, W, "test")
    ledger.release(report, W, "test")
    waiting = record_seen(ledger, "kommune", "new").letter_id
    claims = ledger.claim(OTHER, LEASE, limit=10, imports=False)
    assert [(c.id, c.work) for c in claims] == [(receipt, Work.ACKNOWLEDGE), (report, Work.REPORT)]
    [claim] = ledger.claim(OTHER, LEASE, limit=10)
    assert (claim.id, claim.work) == (waiting, Work.IMPORT)


def test_availability_changes_once_per_outage_and_only_a_write_ends_it(
    ledger: Ledger, ledger_url: str
) -> None:
    assert ledger.availability.up
    with outage(ledger_url):
        for _ in range(3):
            with pytest.raises(LedgerUnavailableError):
                ledger.ping()
        assert not ledger.availability.up
    ledger.list()  # a read does not say that decisions can be written again
    assert not ledger.availability.up
    ledger.ping()
    assert ledger.availability.up


def test_a_listing_older_than_a_receipt_does_not_send_the_receipt_again(
    ledger: Ledger, clock: FakeClock
) -> None:
    """A poll asked for the listing, a worker acknowledged a letter, then the poll wrote
    down what it had listed: that listing predates the receipt and proves nothing. A
    listing asked for after the receipt does (SvarUt lost it: acknowledge again)."""
    asked = clock()
    clock.advance(timedelta(milliseconds=5))
    letter_id = bring(ledger, "raced", State.ACKNOWLEDGED, account="k")
    clock.advance(timedelta(seconds=1))
    (seen,) = ledger.record_seen_many("k", [Sighting("raced")], listed_at=asked)
    assert (seen.action, seen.state) == (SeenAction.IN_PROGRESS, State.ACKNOWLEDGED)
    (again,) = ledger.record_seen_many("k", [Sighting("raced")], listed_at=clock())
    assert (again.action, again.state) == (SeenAction.REACKNOWLEDGE, State.ARCHIVED)
    assert again.letter_id == letter_id
