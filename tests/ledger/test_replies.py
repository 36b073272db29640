"""Letters sent to an archive that answers later (Fiks Arkiv), and the replies that decide
them: on SQLite and a real PostgreSQL alike. No reply is dropped, whenever it comes."""

from __future__ import annotations

from datetime import timedelta

import pytest

from svarinn_daemon.errors import LeaseLostError
from svarinn_daemon.ledger import Ledger, ReplyOutcome, State, Trigger, Work
from svarinn_daemon.replies import ArchiveReply, ReplyKind
from svarinn_daemon.testing import FakeClock
from tests.support.ledger_support import LEASE, W, bring

TIMEOUT = timedelta(minutes=30)


def _sent(ledger: Ledger, fid: str, message: str) -> int:
    letter_id = bring(ledger, fid, State.CLAIMED)
    letter = ledger.mark_sent(
        letter_id, W, message_id=message, archive="fiks", resend_at=ledger.clock() + TIMEOUT
    )
    assert letter.state is State.SENT
    assert letter.claimed_by is None
    assert letter.next_attempt_at == ledger.clock() + TIMEOUT
    assert letter.sent_at == ledger.clock()
    return letter_id


def _reply(to: str, kind: ReplyKind, **fields: object) -> ArchiveReply:
    return ArchiveReply(in_reply_to=to, kind=kind, **fields)  # type: ignore[arg-type]


def test_received_then_kvittering_archives_and_the_receipt_is_due(ledger: Ledger) -> None:
    letter_id = _sent(ledger, "f1", "m1")
    got = ledger.record_reply(_reply("m1", ReplyKind.RECEIVED, reply_id="r1"))
    assert got.outcome is ReplyOutcome.APPLIED
    assert got.letter is not None
    assert got.letter.state is State.SENT
    got = ledger.record_reply(_reply("m1", ReplyKind.REGISTERED, reply_id="r2", reference="2026/7"))
    assert got.outcome is ReplyOutcome.APPLIED
    assert got.letter is not None
    assert (got.letter.state, got.letter.archive_ref) == (State.ARCHIVED, "2026/7")
    [claim] = ledger.claim(W, LEASE, account="a-f1")
    assert (claim.id, claim.work) == (letter_id, Work.ACKNOWLEDGE)
    triggers = [e.trigger for e in ledger.events(letter_id)]
    assert triggers[-4:] == [Trigger.SEND, Trigger.ARCHIVE_RECEIVED, Trigger.ARCHIVE, Trigger.CLAIM]
    # the same kvittering delivered again, and one to a letter that moved on: nothing changes
    again = ledger.record_reply(_reply("m1", ReplyKind.REGISTERED, reply_id="r2"))
    assert again.outcome is ReplyOutcome.DUPLICATE
    other = ledger.record_reply(_reply("m1", ReplyKind.REGISTERED, reply_id="r3"))
    assert other.outcome is ReplyOutcome.DUPLICATE


def test_a_letter_without_a_reply_is_claimed_again_at_its_timeout(
    ledger: Ledger, clock: FakeClock
) -> None:
    letter_id = _sent(ledger, "f2", "m2")
    assert ledger.claim(W, LEASE, account="a-f2") == ()
    clock.advance(TIMEOUT)
    [claim] = ledger.claim(W, LEASE, account="a-f2")
    assert (claim.id, claim.work) == (letter_id, Work.IMPORT)


def test_a_refusal_about_the_content_fails_it_others_make_it_due_again(
    ledger: Ledger, clock: FakeClock
) -> None:
    refused = _sent(ledger, "f3", "m3")
    got = ledger.record_reply(
        _reply("m3", ReplyKind.REFUSED, message="arkivmelding.xml: tittel mangler", permanent=True)
    )
    assert got.letter is not None
    assert got.letter.state is State.FAILED_PERMANENTLY
    assert "tittel mangler" in (got.letter.last_error_message or "")
    [claim] = ledger.claim(W, LEASE, account="a-f3")
    assert (claim.id, claim.work) == (refused, Work.REPORT)

    failed = _sent(ledger, "f4", "m4")
    at = clock() + timedelta(minutes=2)
    got = ledger.record_reply(_reply("m4", ReplyKind.FAILED, message="serverfeil"), retry_at=at)
    assert got.letter is not None
    assert (got.letter.state, got.letter.next_attempt_at) == (State.RETRY_SCHEDULED, at)
    assert got.letter.failing_since == clock()
    # a kvittering that comes late (from the first send) still archives it
    late = ledger.record_reply(_reply("m4", ReplyKind.REGISTERED, reference="2026/9"))
    assert late.letter is not None
    assert late.letter.state is State.ARCHIVED
    assert ledger.get(failed).failing_since is None


def test_a_reply_before_its_send_is_recorded_is_kept_and_matched(ledger: Ledger) -> None:
    early = ledger.record_reply(_reply("m5", ReplyKind.REGISTERED, reference="2026/11"))
    assert early.outcome is ReplyOutcome.KEPT
    assert early.letter is None
    letter_id = bring(ledger, "f5", State.CLAIMED)
    letter = ledger.mark_sent(
        letter_id, W, message_id="m5", archive="fiks", resend_at=ledger.clock() + TIMEOUT
    )
    assert (letter.state, letter.archive_ref, letter.claimed_by) == (State.ARCHIVED, "2026/11", W)
    ledger.mark_acknowledged(letter_id, W)


def test_a_kvittering_while_the_letter_is_sent_again_archives_it_at_the_send(
    ledger: Ledger, clock: FakeClock
) -> None:
    letter_id = _sent(ledger, "f6", "m6")
    clock.advance(TIMEOUT)
    [claim] = ledger.claim(W, LEASE, account="a-f6")
    assert claim.work is Work.IMPORT
    kept = ledger.record_reply(_reply("m6", ReplyKind.REGISTERED, reference="2026/12"))
    assert kept.outcome is ReplyOutcome.KEPT
    assert ledger.get(letter_id).state is State.CLAIMED  # the worker's lease is respected
    letter = ledger.mark_sent(
        letter_id, W, message_id="m6b", archive="fiks", resend_at=clock() + TIMEOUT
    )
    assert (letter.state, letter.archive_ref) == (State.ARCHIVED, "2026/12")


def test_a_reply_to_a_letter_failed_but_not_reported_saves_it_from_paper(ledger: Ledger) -> None:
    letter_id = _sent(ledger, "f7", "m7")
    ledger.record_reply(_reply("m7", ReplyKind.REFUSED, permanent=True, message="nei"))
    got = ledger.record_reply(_reply("m7", ReplyKind.REGISTERED, reference="2026/13"))
    assert got.letter is not None
    assert got.letter.state is State.ARCHIVED
    assert ledger.get(letter_id).archive_ref == "2026/13"


def test_sending_needs_the_lease_and_a_message_id(ledger: Ledger) -> None:
    letter_id = bring(ledger, "f8", State.SEEN)
    with pytest.raises(LeaseLostError):
        ledger.mark_sent(letter_id, W, message_id="m8", archive="fiks", resend_at=ledger.clock())
    assert ledger.letter_for_message("m8") is None
    claimed = bring(ledger, "f9", State.CLAIMED)
    ledger.mark_sent(claimed, W, message_id="m9", archive="fiks", resend_at=ledger.clock())
    found = ledger.letter_for_message("m9")
    assert found is not None
    assert found.id == claimed


def test_an_operator_retry_sends_a_sent_letter_again_now(ledger: Ledger) -> None:
    letter_id = _sent(ledger, "f10", "m10")
    assert ledger.retry(letter_id, "the archive lost it").state is State.SEEN
