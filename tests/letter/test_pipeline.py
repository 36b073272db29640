"""The pipeline on its own: the in-memory SvarInn, the memory archive and a real ledger.

Every action :func:`~svarinn_daemon.letter.retry.decide` can take is driven here through a real
failure, and each test checks all three sides: what the ledger recorded, what SvarInn was
told, what the archive holds; plus a ledger outage while a decision waits, and a shutdown.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from svarinn_daemon.adapters.memory import MemoryArchive, MemoryTransaction
from svarinn_daemon.errors import (
    ArchiveError,
    AuthenticationError,
    ForsendelseGoneError,
    ServiceUnavailableError,
)
from svarinn_daemon.ledger import State, Trigger, Work
from svarinn_daemon.letter.account import AccountRuntime
from svarinn_daemon.letter.results import Outcome
from svarinn_daemon.letter.retry import Action
from svarinn_daemon.simulator.letters import LetterFile, pdf_chunks
from tests.support.ledger_support import outage
from tests.support.pipeline_world import (
    ACCOUNT,
    LEASE,
    OTHER,
    POLICY,
    W,
    World,
    receiver,
    unavailable,
)

BASE = POLICY.base_delay


def pdf(title: str = "Vedtak", size: int = 5000) -> bytes:
    return b"".join(pdf_chunks(title, size))


# --- the way it should go --------------------------------------------------------------------


def test_a_letter_is_polled_archived_and_acknowledged(world: World) -> None:
    data = pdf()
    letter = world.svarinn.add_letter(LetterFile("vedtak.pdf", data=data))
    pipeline = world.pipeline()

    result = pipeline.poll(ACCOUNT)
    assert (result.ok, result.listed, result.new) == (True, 1, 1)
    claim = world.claim(pipeline)
    assert pipeline.process(claim) is Outcome.ACKNOWLEDGED

    stored = world.archive.letters[letter.id]
    assert [d.content for d in stored.documents] == [data]
    assert stored.verification.verified
    assert world.svarinn.acknowledged == {letter.id: 1}
    assert world.svarinn.pending == ()
    recorded = world.ledger.get(claim.id)
    assert recorded is not None
    assert recorded.state is State.ACKNOWLEDGED
    assert recorded.actual_sha256 == (letter.files[0].sha256,)
    assert world.events.names() == [
        "polled",
        "downloaded",
        "archive_answered",
        "archived",
        "receipt",
        "acknowledged",
    ]
    assert world.events.named("receipt")[0]["outcome"] == "ok"
    assert list(world.spool.directory.iterdir()) == []  # nothing left in the spool


def test_a_failed_listing_is_told_and_changes_nothing(world: World) -> None:
    world.svarinn.add_letter()
    world.svarinn.fail("listing", unavailable())
    pipeline = world.pipeline()
    result = pipeline.poll(ACCOUNT)
    assert not result.ok
    assert isinstance(result.error, ServiceUnavailableError)
    assert world.events.names() == ["poll_failed"]
    assert pipeline.claim() == ()
    assert pipeline.poll(ACCOUNT).new == 1  # the next poll sees it


# --- every decision ----------------------------------------------------------------------------


def test_retry_waits_its_backoff_then_the_letter_is_archived(world: World) -> None:
    letter = world.svarinn.add_letter()
    world.svarinn.fail("download", unavailable())
    pipeline = world.pipeline()
    pipeline.poll(ACCOUNT)
    claim = world.claim(pipeline)

    assert pipeline.process(claim) is Outcome.RETRY_SCHEDULED
    assert world.events.decisions() == [
        ("ServiceUnavailableError", Action.RETRY, Outcome.RETRY_SCHEDULED)
    ]
    recorded = world.ledger.get(claim.id)
    assert recorded is not None
    assert recorded.state is State.RETRY_SCHEDULED
    assert recorded.next_attempt_at == world.clock.now + BASE  # first attempt: the base delay
    assert world.svarinn.reports == ()  # a first failure is no news for the sender
    assert pipeline.claim() == ()  # not due yet

    world.clock.advance(BASE)
    assert pipeline.process(world.claim(pipeline)) is Outcome.ACKNOWLEDGED
    assert world.svarinn.downloads == {letter.id: 2}
    assert world.archive.commits == 1


def test_a_long_run_of_failures_is_reported_as_temporary(world: World) -> None:
    letter = world.svarinn.add_letter()
    world.svarinn.fail("download", unavailable())
    pipeline = world.pipeline(policy=replace(POLICY, temporary_report_after=timedelta(0)))
    pipeline.poll(ACCOUNT)
    assert pipeline.process(world.claim(pipeline)) is Outcome.RETRY_SCHEDULED

    (report,) = world.svarinn.reports
    assert (report.forsendelse_id, report.permanent) == (letter.id, False)
    assert "prøver igjen automatisk" in report.feilmelding
    assert world.svarinn.pending == (letter.id,)  # SvarUt keeps listing it
    assert world.events.named("temporary_report")[0]["error"] is None


def test_a_corrupt_download_is_downloaded_again(world: World) -> None:
    letter = world.svarinn.add_letter()
    world.svarinn.corrupt(letter.id)
    pipeline = world.pipeline()
    pipeline.poll(ACCOUNT)
    assert pipeline.process(world.claim(pipeline)) is Outcome.RETRY_SCHEDULED
    ((kind, action, _),) = world.events.decisions()
    assert action is Action.DOWNLOAD_AGAIN, kind

    world.clock.advance(BASE)
    assert pipeline.process(world.claim(pipeline)) is Outcome.ACKNOWLEDGED
    assert world.svarinn.downloads == {letter.id: 2}
    assert world.svarinn.reports == ()


def test_download_again_until_the_limit_then_the_letter_is_reported(world: World) -> None:
    world.svarinn.add_letter(wrong_sha256=True)  # every download "corrupt"
    pipeline = world.pipeline()
    pipeline.poll(ACCOUNT)
    claim = world.claim(pipeline)
    assert pipeline.process(claim) is Outcome.RETRY_SCHEDULED
    world.clock.advance(BASE)
    assert pipeline.process(world.claim(pipeline)) is Outcome.REPORTED  # max 2 downloads

    assert world.events.decisions() == [
        ("ChecksumMismatchError", Action.DOWNLOAD_AGAIN, Outcome.RETRY_SCHEDULED),
        ("ChecksumMismatchError", Action.FAIL_PERMANENTLY, Outcome.REPORTED),
    ]
    (report,) = world.svarinn.reports
    assert report.permanent
    assert "etter 2 nedlastinger" in report.feilmelding
    assert world.svarinn.pending == ()
    assert world.state(claim) is State.REPORTED
    assert world.archive.letters == {}


def _reword_history(world: World, letter_id: int, reason: str) -> None:
    """Every event of the letter gets ``reason``: what a change of wording would have done
    to the count. The trail is append-only, so the test lifts that guard for a moment."""
    with world.ledger.engine.begin() as conn:
        postgresql = conn.dialect.name == "postgresql"
        if postgresql:
            conn.execute(sa.text("ALTER TABLE forsendelse_events DISABLE TRIGGER USER"))
        else:
            conn.execute(sa.text("DROP TRIGGER forsendelse_events_no_update"))
        conn.execute(
            sa.text("UPDATE forsendelse_events SET reason = :r WHERE letter_id = :i"),
            {"r": reason, "i": letter_id},
        )
        if postgresql:
            conn.execute(sa.text("ALTER TABLE forsendelse_events ENABLE TRIGGER USER"))


def test_rewording_the_history_cannot_change_when_a_corrupt_letter_is_reported(
    world: World,
) -> None:
    """Corrupt downloads are counted in the ledger (``download_attempts``), not found again
    by searching event reasons: neither a history that no longer says "download_again" nor
    one that says it where nothing was corrupt changes when a letter goes to paper."""
    corrupt = world.svarinn.add_letter(wrong_sha256=True)  # every download "corrupt"
    pipeline = world.pipeline()
    pipeline.poll(ACCOUNT)
    claim = world.claim(pipeline)
    assert pipeline.process(claim) is Outcome.RETRY_SCHEDULED
    recorded = world.ledger.get(claim.id)
    assert recorded is not None
    assert recorded.download_attempts == 1
    _reword_history(world, claim.id, "Something else entirely")
    world.clock.advance(BASE)
    assert pipeline.process(world.claim(pipeline)) is Outcome.REPORTED  # max 2, as before
    assert [r.forsendelse_id for r in world.svarinn.reports] == [corrupt.id]

    # The other way round: a history full of the old marker, and one corrupt download.
    other = world.svarinn.add_letter()
    pipeline.poll(ACCOUNT)
    second = world.claim(pipeline)
    world.svarinn.corrupt(other.id)
    marker = "ChecksumMismatchError: download_again: x"
    with world.ledger.engine.begin() as conn:  # appended, as the old wording read
        for _ in range(3):
            conn.execute(
                sa.text(
                    "INSERT INTO forsendelse_events (letter_id, at, trigger, from_state, "
                    "to_state, worker_id, reason) VALUES (:i, CURRENT_TIMESTAMP, "
                    "'schedule_retry', 'claimed', 'retry_scheduled', 'w', :r)"
                ),
                {"i": second.id, "r": marker},
            )
    assert pipeline.process(second) is Outcome.RETRY_SCHEDULED  # the first corrupt one
    world.clock.advance(BASE)
    assert pipeline.process(world.claim(pipeline)) is Outcome.ACKNOWLEDGED
    assert [r.forsendelse_id for r in world.svarinn.reports] == [corrupt.id]


def test_an_operator_retry_gives_a_letter_its_downloads_again(world: World) -> None:
    world.svarinn.add_letter(wrong_sha256=True)
    pipeline = world.pipeline()
    pipeline.poll(ACCOUNT)
    claim = world.claim(pipeline)
    assert pipeline.process(claim) is Outcome.RETRY_SCHEDULED
    world.ledger.retry(claim.id, "the sender sent it again", operator="cli:test")
    recorded = world.ledger.get(claim.id)
    assert recorded is not None
    assert (recorded.state, recorded.download_attempts) == (State.SEEN, 0)


def test_a_missing_key_is_retried_loudly_and_never_reported(world: World) -> None:
    world.svarinn.add_letter()
    wrong = AccountRuntime(ACCOUNT, world.svarinn, world.archive, (receiver("other"),), "default")
    pipeline = world.pipeline(account=wrong, policy=replace(POLICY, temporary_report_after=BASE))
    pipeline.poll(ACCOUNT)
    claim = world.claim(pipeline)
    for _ in range(3):
        assert pipeline.process(claim) is Outcome.RETRY_SCHEDULED
        world.clock.advance(timedelta(hours=2))
        claim = world.claim(pipeline)

    ((kind, action, _),) = set(world.events.decisions())
    assert (kind, action) == ("NoMatchingRecipientError", Action.RETRY_LOUDLY)
    assert all(d["decision"].alert for d in world.events.named("decided"))
    assert not any(r.permanent for r in world.svarinn.reports)  # never sent to paper
    assert world.archive.letters == {}


def test_a_missing_key_goes_to_paper_when_the_operator_says_so(world: World) -> None:
    letter = world.svarinn.add_letter()
    wrong = AccountRuntime(ACCOUNT, world.svarinn, world.archive, (receiver("other"),), "default")
    policy = replace(POLICY, treat_key_errors_as_permanent=True)
    pipeline = world.pipeline(account=wrong, policy=policy)
    pipeline.poll(ACCOUNT)
    assert pipeline.process(world.claim(pipeline)) is Outcome.REPORTED
    assert [(r.forsendelse_id, r.permanent) for r in world.svarinn.reports] == [(letter.id, True)]


class BuggyArchive(MemoryArchive):
    """An adapter with a bug: begin raises an exception no adapter may raise."""

    def begin(self, forsendelse_id: str, metadata: Mapping[str, Any]) -> MemoryTransaction:
        raise KeyError("a bug in the adapter")


def test_a_bug_is_an_internal_error_retried_loudly(world: World) -> None:
    world.svarinn.add_letter()
    world.archive = BuggyArchive()
    pipeline = world.pipeline()
    pipeline.poll(ACCOUNT)
    claim = world.claim(pipeline)
    assert pipeline.process(claim) is Outcome.RETRY_SCHEDULED
    assert isinstance(world.events.named("internal_error")[0]["exc"], KeyError)
    assert world.events.decisions() == [
        ("InternalError", Action.RETRY_LOUDLY, Outcome.RETRY_SCHEDULED)
    ]
    recorded = world.ledger.get(claim.id)
    assert recorded is not None
    assert recorded.last_error_kind == "InternalError"
    assert world.svarinn.reports == ()


def test_an_archive_that_refuses_for_good_sends_the_letter_to_paper(world: World) -> None:
    letter = world.svarinn.add_letter()
    world.archive.fail_next("commit", ArchiveError("the archive refuses PDF/A-1", temporary=False))
    pipeline = world.pipeline()
    pipeline.poll(ACCOUNT)
    claim = world.claim(pipeline)

    assert pipeline.process(claim) is Outcome.REPORTED
    assert world.events.decisions() == [("ArchiveError", Action.FAIL_PERMANENTLY, Outcome.REPORTED)]
    assert world.events.names()[-3:] == ["decided", "receipt", "reported"]
    (report,) = world.svarinn.reports
    assert (report.forsendelse_id, report.permanent) == (letter.id, True)
    assert "Arkivet kunne ikke ta imot" in report.feilmelding
    assert world.state(claim) is State.REPORTED
    assert world.svarinn.pending == ()
    assert (world.archive.letters, world.archive.aborts) == ({}, 1)


def test_a_letter_withdrawn_by_svarut_fails_for_good_and_its_report_counts_as_sent(
    world: World,
) -> None:
    letter = world.svarinn.add_letter()
    pipeline = world.pipeline()
    pipeline.poll(ACCOUNT)
    claim = world.claim(pipeline)
    world.svarinn.remove(letter.id)  # the download, then mottakFeilet, answer 404

    assert pipeline.process(claim) is Outcome.REPORTED
    assert world.events.decisions() == [
        ("ForsendelseGoneError", Action.FAIL_PERMANENTLY, Outcome.REPORTED)
    ]
    assert world.events.named("receipt")[0]["outcome"] == "gone"
    assert world.state(claim) is State.REPORTED
    assert (world.svarinn.downloads, world.svarinn.reports) == ({letter.id: 1}, ())


def test_a_report_that_fails_is_sent_again_later_without_a_download(world: World) -> None:
    letter = world.svarinn.add_letter()
    world.archive.fail_next("commit", ArchiveError("refused", temporary=False))
    world.svarinn.fail("report_failure", unavailable())
    pipeline = world.pipeline()
    pipeline.poll(ACCOUNT)
    claim = world.claim(pipeline)

    assert pipeline.process(claim) is Outcome.RETRY_SCHEDULED  # the report's retry
    assert world.state(claim) is State.FAILED_PERMANENTLY
    assert world.svarinn.reports == ()
    world.clock.advance(BASE)
    again = world.claim(pipeline, Work.REPORT)
    assert pipeline.process(again) is Outcome.REPORTED
    assert [r.permanent for r in world.svarinn.reports] == [True]
    assert world.svarinn.downloads == {letter.id: 1}


def test_a_refused_receipt_is_sent_again_later_without_archiving_again(world: World) -> None:
    letter = world.svarinn.add_letter()
    world.svarinn.fail("acknowledge", unavailable())
    pipeline = world.pipeline()
    pipeline.poll(ACCOUNT)
    claim = world.claim(pipeline)

    assert pipeline.process(claim) is Outcome.RETRY_SCHEDULED
    assert world.state(claim) is State.ARCHIVED
    assert world.events.named("receipt")[0]["outcome"] == "failed"
    world.clock.advance(BASE)
    assert pipeline.process(world.claim(pipeline, Work.ACKNOWLEDGE)) is Outcome.ACKNOWLEDGED
    assert world.svarinn.acknowledged == {letter.id: 1}
    assert (world.svarinn.downloads, world.archive.commits) == ({letter.id: 1}, 1)


def test_a_receipt_answered_404_counts_as_sent(world: World) -> None:
    letter = world.svarinn.add_letter()
    world.svarinn.fail("acknowledge", ForsendelseGoneError("404", status_code=404))
    pipeline = world.pipeline()
    pipeline.poll(ACCOUNT)
    claim = world.claim(pipeline)
    assert pipeline.process(claim) is Outcome.ACKNOWLEDGED
    assert world.events.named("receipt")[0]["outcome"] == "gone"
    assert world.state(claim) is State.ACKNOWLEDGED
    assert letter.id in world.archive.letters


def test_refused_credentials_stop_the_account_and_release_the_letter(world: World) -> None:
    world.svarinn.add_letter()
    world.svarinn.fail("download", AuthenticationError("401", status_code=401))
    pipeline = world.pipeline()
    pipeline.poll(ACCOUNT)
    claim = world.claim(pipeline)

    assert pipeline.process(claim) is Outcome.ACCOUNT_STOPPED
    assert world.events.decisions() == [
        ("AuthenticationError", Action.STOP_ACCOUNT, Outcome.ACCOUNT_STOPPED)
    ]
    assert world.events.named("decided")[0]["decision"].alert
    recorded = world.ledger.get(claim.id)
    assert recorded is not None
    assert (recorded.state, recorded.claimed_by) == (State.SEEN, None)
    assert world.svarinn.reports == ()
    assert world.claim(pipeline).id == claim.id  # due at once, once the account runs again


def test_a_lease_lost_before_archiving_is_abandoned_and_archived_once(world: World) -> None:
    letter = world.svarinn.add_letter()
    mine, theirs = world.pipeline(W), world.pipeline(OTHER)
    mine.poll(ACCOUNT)
    claim = world.claim(mine)
    world.clock.advance(LEASE + timedelta(seconds=1))  # our lease ran out ...
    taken = world.claim(theirs)  # ... and another worker took the letter

    assert mine.process(claim) is Outcome.LEASE_LOST
    assert world.events.decisions() == [("LeaseLostError", Action.ABANDON, Outcome.LEASE_LOST)]
    recorded = world.ledger.get(claim.id)
    assert recorded is not None
    assert (recorded.state, recorded.claimed_by) == (State.CLAIMED, OTHER)
    assert world.svarinn.acknowledged == {}

    assert theirs.process(taken) is Outcome.ACKNOWLEDGED  # finds it in the archive
    assert world.events.named("archived")[-1]["already"] is True
    assert world.archive.commits == 1
    assert world.svarinn.acknowledged == {letter.id: 1}


def test_a_lease_lost_while_writing_a_decision_leaves_the_letter_alone(world: World) -> None:
    world.svarinn.add_letter()
    world.svarinn.fail("download", unavailable())
    mine, theirs = world.pipeline(W), world.pipeline(OTHER)
    mine.poll(ACCOUNT)
    claim = world.claim(mine)
    world.clock.advance(LEASE + timedelta(seconds=1))
    world.claim(theirs)

    assert mine.process(claim) is Outcome.LEASE_LOST
    assert world.events.decisions() == [("LeaseLostError", Action.ABANDON, Outcome.LEASE_LOST)]
    recorded = world.ledger.get(claim.id)
    assert recorded is not None
    assert (recorded.state, recorded.claimed_by) == (State.CLAIMED, OTHER)
    triggers = [e.trigger for e in world.ledger.events(claim.id)]
    assert Trigger.SCHEDULE_RETRY not in triggers  # the other worker's letter is untouched


# --- the ledger goes away, the daemon stops ------------------------------------------------------


def wait_for(condition: Any, timeout: float = 10.0) -> None:
    done = threading.Event()
    for _ in range(int(timeout / 0.02)):
        if condition():
            return
        done.wait(0.02)
    raise AssertionError("timed out")


@pytest.fixture
def background() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=1) as pool:
        yield pool


def test_a_decision_waits_for_the_ledger_to_come_back(
    world: World, ledger_url: str, background: ThreadPoolExecutor
) -> None:
    letter = world.svarinn.add_letter()
    world.svarinn.fail("download", unavailable())
    pipeline = world.pipeline()
    pipeline.poll(ACCOUNT)
    claim = world.claim(pipeline)

    with outage(ledger_url):
        outcome: Future[Outcome] = background.submit(pipeline.process, claim)
        wait_for(lambda: world.svarinn.downloads.get(letter.id) == 1)
        threading.Event().wait(1.5)  # the decision cannot be written meanwhile
        assert not outcome.done()
        assert world.events.decisions() == []
        assert pipeline.in_flight.busy() == 1
        assert pipeline.in_flight.stalled_for() < 1.5  # it beats while it waits
    assert outcome.result(timeout=15) is Outcome.RETRY_SCHEDULED

    assert world.events.decisions() == [
        ("ServiceUnavailableError", Action.RETRY, Outcome.RETRY_SCHEDULED)
    ]
    assert world.state(claim) is State.RETRY_SCHEDULED
    assert world.svarinn.downloads == {letter.id: 1}


def test_stopping_while_the_ledger_is_down_leaves_the_lease_to_run_out(
    world: World, ledger_url: str, background: ThreadPoolExecutor
) -> None:
    world.svarinn.add_letter()
    world.svarinn.fail("download", unavailable())
    pipeline = world.pipeline()
    pipeline.poll(ACCOUNT)
    claim = world.claim(pipeline)

    with outage(ledger_url):
        outcome = background.submit(pipeline.process, claim)
        wait_for(lambda: world.svarinn.downloads)
        threading.Event().wait(0.5)
        pipeline.stop()
        assert outcome.result(timeout=15) is Outcome.RELEASED
    (released,) = world.events.named("released")
    assert released["reason"] == "daemon stopping"
    assert released["error"] is not None  # the ledger could not take the lease back
    assert world.state(claim) is State.CLAIMED
    world.clock.advance(LEASE + timedelta(seconds=1))
    assert world.claim(world.pipeline(OTHER)).id == claim.id  # free once the lease ran out


def test_stop_interrupts_a_download_and_releases_the_letter(
    world: World, background: ThreadPoolExecutor
) -> None:
    letter = world.svarinn.add_letter(size=300_000)
    stall = world.svarinn.stall(letter.id)
    pipeline = world.pipeline()
    pipeline.poll(ACCOUNT)
    claim = world.claim(pipeline)

    outcome = background.submit(pipeline.process, claim)
    assert stall.reached.wait(10)
    pipeline.stop()
    assert outcome.result(timeout=10) is Outcome.RELEASED

    (released,) = world.events.named("released")
    assert (released["reason"], released["error"]) == ("daemon stopping", None)
    assert world.events.decisions() == []  # a stop is no failure
    recorded = world.ledger.get(claim.id)
    assert recorded is not None
    assert (recorded.state, recorded.claimed_by) == (State.SEEN, None)
    assert world.archive.letters == {}
    assert world.svarinn.reports == ()
    assert list(world.spool.directory.iterdir()) == []

    restarted = world.pipeline()  # the next start takes it up at once
    assert restarted.process(world.claim(restarted)) is Outcome.ACKNOWLEDGED
    assert world.svarinn.acknowledged == {letter.id: 1}
