"""Shadow mode in the ledger, on SQLite and PostgreSQL: a withheld receipt is not claimable
(no lease, no attempt counted), shows in the backlog, and is due at once when receipts are
turned on again."""

from __future__ import annotations

import pytest

from svarinn_daemon.errors import IllegalTransitionError
from svarinn_daemon.ledger import Ledger, State, Trigger, Work
from svarinn_daemon.testing import FakeClock
from tests.support.ledger_support import LEASE, OTHER, W, bring

ACCOUNT = "kommune"


def test_a_withheld_receipt_is_never_claimed_until_receipts_are_turned_on(
    ledger: Ledger, clock: FakeClock
) -> None:
    letter_id = bring(ledger, "f1", State.ARCHIVED, account=ACCOUNT)
    withheld = ledger.withhold_receipt(letter_id, W, "kvitterMottak withheld (shadow mode)")
    assert withheld.state is State.ARCHIVED
    assert withheld.receipt_withheld
    assert withheld.claimed_by is None
    attempts = withheld.attempts
    for _ in range(3):
        clock.advance(LEASE * 2)
        assert ledger.claim(OTHER, LEASE, account=ACCOUNT, limit=5) == ()
    backlog = ledger.backlog()
    assert backlog.total(State.ARCHIVED, ACCOUNT) == 1
    assert backlog.total_withheld(ACCOUNT) == 1
    assert backlog.oldest_unfinished is None  # a withheld receipt is not waiting

    assert ledger.set_receipts(ACCOUNT, True) == (letter_id,)
    [claim] = ledger.claim(OTHER, LEASE, account=ACCOUNT)
    assert (claim.id, claim.work) == (letter_id, Work.ACKNOWLEDGE)
    assert claim.letter.attempts == attempts + 1
    assert not claim.letter.receipt_withheld
    reasons = [e.reason or "" for e in ledger.events(letter_id) if e.trigger is Trigger.RELEASE]
    assert any("withheld" in r for r in reasons)
    assert any("due" in r for r in reasons)


def test_turning_receipts_off_withholds_waiting_receipts_and_reports_but_not_imports(
    ledger: Ledger, clock: FakeClock
) -> None:
    archived = bring(ledger, "a", State.ARCHIVED, account=ACCOUNT)
    failed = bring(ledger, "b", State.FAILED_PERMANENTLY, account=ACCOUNT)
    seen = bring(ledger, "c", State.SEEN, account=ACCOUNT)
    other = bring(ledger, "d", State.ARCHIVED, account="annen")
    # W still holds the leases from bring(): a live lease is left to its worker
    assert ledger.set_receipts(ACCOUNT, False) == ()
    clock.advance(LEASE * 2)
    assert ledger.set_receipts(ACCOUNT, False) == (archived, failed)
    assert ledger.set_receipts(ACCOUNT, False) == ()  # idempotent
    [claim] = ledger.claim(OTHER, LEASE, account=ACCOUNT, limit=5)
    assert claim.id == seen  # imports go on in shadow mode
    letter = ledger.get(other)
    assert letter is not None
    assert not letter.receipt_withheld
    with pytest.raises(IllegalTransitionError, match="shadow mode"):
        ledger.retry(archived, "try it")
    assert ledger.set_receipts(ACCOUNT, True) == (archived, failed)
    works = {c.id: c.work for c in ledger.claim(OTHER, LEASE, account=ACCOUNT, limit=5)}
    assert works == {archived: Work.ACKNOWLEDGE, failed: Work.REPORT}


def test_only_a_receipt_can_be_withheld(ledger: Ledger) -> None:
    letter_id = bring(ledger, "x", State.CLAIMED, account=ACCOUNT)
    with pytest.raises(IllegalTransitionError, match="not allowed in state claimed"):
        ledger.withhold_receipt(letter_id, W, "no")
    letter = ledger.get(letter_id)
    assert letter is not None
    assert letter.state is State.CLAIMED
    assert not letter.receipt_withheld
