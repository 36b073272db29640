"""The pipeline in shadow mode (an account with ``receipts = false``), against the in-memory
SvarInn: letters are archived, no receipt of any kind reaches SvarInn, nothing is claimed
again; with receipts on, the withheld receipts are sent and a 404 ends a letter."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from svarinn_daemon.ledger import State, Work
from svarinn_daemon.letter.results import Outcome
from tests.support.pipeline_world import ACCOUNT, POLICY, World, unavailable


def test_shadow_mode_withholds_every_receipt_and_sends_them_once_turned_on(world: World) -> None:
    shadow = replace(world.svarinn.account(world.archive, name=ACCOUNT), receipts=False)
    # mottakFeilet(permanent=false) would be due at the first failure
    policy = replace(POLICY, temporary_report_after=timedelta(0))
    pipeline = world.pipeline(account=shadow, policy=policy)
    kept = world.svarinn.add_letter()
    taken = world.svarinn.add_letter()  # the old importer acknowledges it before we download
    slow = world.svarinn.add_letter()
    assert pipeline.poll(ACCOUNT).new == 3
    world.svarinn.remove(taken.id)
    world.svarinn.fail("download", unavailable(), forsendelse_id=slow.id)

    outcomes = {c.letter.forsendelse_id: pipeline.process(c) for c in pipeline.claim(limit=3)}
    assert outcomes == {
        kept.id: Outcome.WITHHELD,
        taken.id: Outcome.WITHHELD,  # failed permanently (404); its report is withheld
        slow.id: Outcome.RETRY_SCHEDULED,
    }
    assert set(world.archive.letters) == {kept.id}
    assert world.svarinn.acknowledged == {}
    assert world.svarinn.reports == ()  # not even permanent=false for the slow one
    receipts = [(r["kind"], r["outcome"]) for r in world.events.named("receipt")]
    assert sorted(receipts) == [("kvitterMottak", "withheld"), ("mottakFeilet", "withheld")]
    letters = {x.forsendelse_id: x for x in world.ledger.list(account=ACCOUNT)}
    assert letters[kept.id].state is State.ARCHIVED
    assert letters[taken.id].state is State.FAILED_PERMANENTLY
    assert letters[kept.id].receipt_withheld
    assert letters[taken.id].receipt_withheld
    world.clock.advance(timedelta(hours=1))
    assert pipeline.poll(ACCOUNT).new == 0
    (retry,) = pipeline.claim(limit=3)  # only the import is due; no receipt is claimed
    assert retry.letter.forsendelse_id == slow.id
    assert pipeline.process(retry) is Outcome.WITHHELD
    assert world.svarinn.acknowledged == {}

    assert len(world.ledger.set_receipts(ACCOUNT, True)) == 3
    pipeline = world.pipeline(account=replace(shadow, receipts=True), policy=policy)
    claims = pipeline.claim(limit=5)
    assert {c.work for c in claims} == {Work.ACKNOWLEDGE, Work.REPORT}
    assert {pipeline.process(c) for c in claims} == {Outcome.ACKNOWLEDGED, Outcome.REPORTED}
    assert world.svarinn.acknowledged == {kept.id: 1, slow.id: 1}
    assert world.svarinn.pending == ()
    gone = world.ledger.list(state=State.REPORTED)
    assert [x.forsendelse_id for x in gone] == [taken.id]
    reasons = [e.reason or "" for e in world.ledger.events(gone[0].id)]
    assert "answered 404" in reasons[-1]
