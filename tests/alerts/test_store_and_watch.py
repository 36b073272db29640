"""Alert state and alert facts in the ledger, on SQLite and a real PostgreSQL alike."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from svarinn_daemon.alerts import AlertState, AlertStore, Condition, conditions, evaluate
from svarinn_daemon.alerts.conditions import KEY_ERROR_KINDS
from svarinn_daemon.alerts.store import LedgerAlertStore
from svarinn_daemon.alerts.watch import AccountAlertFacts, LedgerWatch
from svarinn_daemon.config import LedgerConfig
from svarinn_daemon.config.model import AlertsConfig
from svarinn_daemon.errors import LedgerError, SchemaMismatchError
from svarinn_daemon.ledger import Ledger, build_engine, migrate
from svarinn_daemon.ledger.models import alert_states
from svarinn_daemon.ledger.schema import downgrade
from svarinn_daemon.testing import FakeClock
from tests.support.ledger_support import record_seen

W = "worker-1"
LEASE = timedelta(minutes=5)
MINUTE = timedelta(minutes=1)


def state(clock: FakeClock, condition: Condition = Condition.AUTH_FAILING) -> AlertState:
    return AlertState(
        condition=condition,
        subject="kommune",
        account="kommune",
        first_fired_at=clock.now,
        last_sent_at=clock.now,
        last_details={"failing_minutes": 0},
    )


def test_alert_states_are_upserted_per_condition_and_subject(
    ledger: Ledger, clock: FakeClock
) -> None:
    store = LedgerAlertStore(ledger.engine, clock=clock)
    assert isinstance(store, AlertStore)
    assert store.load_active() == []
    first = state(clock)
    other = state(clock, Condition.POLLS_FAILING)
    store.save(first)
    store.save(other)
    assert store.load_active() == [first, other]
    clock.advance(MINUTE)
    resolved = AlertState(**{**first.__dict__, "resolved_at": clock.now, "last_sent_at": clock.now})
    store.save(resolved)
    assert store.load_active() == [other]
    assert store.load() == [resolved, other]
    with ledger.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(alert_states)).scalar() == 2


def test_a_restart_reloads_what_was_sent(ledger: Ledger, clock: FakeClock) -> None:
    from svarinn_daemon.alerts import AlertDetails, AlertKey

    holds = {
        AlertKey(Condition.NO_MATCHING_KEY, "kommune"): AlertDetails("kommune", {"letters": 1})
    }
    store = LedgerAlertStore(ledger.engine, clock=clock)
    first = evaluate(holds, store.load_active(), now=clock.now, repeat_every=LEASE, host="h")
    for _, saved in first.sends:
        store.save(saved)
    clock.advance(MINUTE)
    again = LedgerAlertStore(ledger.engine, clock=clock)  # a new process on the same ledger
    second = evaluate(holds, again.load_active(), now=clock.now, repeat_every=LEASE, host="h")
    assert len(first.sends) == 1
    assert second.sends == ()


def test_foreign_rows_are_typed_errors(ledger: Ledger, clock: FakeClock) -> None:
    store = LedgerAlertStore(ledger.engine, clock=clock)
    store.save(state(clock))
    with ledger.engine.begin() as conn:
        conn.execute(sa.update(alert_states).values(details="[1, 2]"))
    with pytest.raises(LedgerError, match="not a JSON object of counts"):
        store.load_active()
    with ledger.engine.begin() as conn:
        conn.execute(sa.update(alert_states).values(details="{}", condition="future_condition"))
    with pytest.raises(SchemaMismatchError, match="future_condition"):
        store.load_active()


def test_a_poll_record_keeps_the_first_failure_until_a_success(
    ledger: Ledger, clock: FakeClock
) -> None:
    watch = LedgerWatch(ledger.engine, clock=clock)
    t0 = clock.now
    watch.record_poll("kommune", ok=False, error_kind="ServiceUnavailableError")
    clock.advance(MINUTE)
    failing = watch.record_poll("kommune", ok=False, error_kind="AuthenticationError")
    assert (failing.failing_since, failing.last_ok_at) == (t0, None)
    (stored,) = watch.poll_statuses()
    assert stored == failing
    assert stored.last_error_kind == "AuthenticationError"
    assert not stored.ok
    clock.advance(MINUTE)
    ok_at = clock.now
    assert watch.record_poll("kommune", ok=True).ok
    clock.advance(MINUTE)
    watch.record_poll("skole", ok=True)
    again = watch.record_poll("kommune", ok=False, error_kind="ProtocolError")
    assert (again.failing_since, again.last_ok_at) == (clock.now, ok_at)
    assert [s.account for s in watch.poll_statuses()] == ["kommune", "skole"]


def _letter(ledger: Ledger, account: str, fid: str) -> int:
    return record_seen(ledger, account, fid, title="Personal title").letter_id


def test_account_facts_count_per_account(ledger: Ledger, clock: FakeClock) -> None:
    t0 = clock.now
    watch = LedgerWatch(ledger.engine, clock=clock)
    waiting = _letter(ledger, "kommune", "waiting")  # stays seen: pending since t0
    clock.advance(10 * MINUTE)
    no_key = _letter(ledger, "kommune", "no-key")
    assert {c.id for c in ledger.claim(W, LEASE, account="kommune", limit=5)} == {waiting, no_key}
    ledger.release(waiting, W, "test")
    ledger.schedule_retry(no_key, W, "NoMatchingRecipientError", "no key", clock.now + LEASE)
    done = _letter(ledger, "kommune", "done")
    assert {c.id for c in ledger.claim(W, LEASE, account="kommune", limit=5)} == {waiting, done}
    ledger.release(waiting, W, "test")
    ledger.mark_archived(done, W, archive_ref="r", actual_sha256=None, actual_size=1, verified=True)
    ledger.mark_acknowledged(done, W)
    failed = _letter(ledger, "skole", "failed")
    (claim,) = ledger.claim(W, LEASE, account="skole")
    assert claim.id == failed
    ledger.mark_failed_permanently(failed, W, "KeyUnwrapError", "unwrap")  # report pending
    reported = _letter(ledger, "skole", "reported")
    (claim,) = ledger.claim(W, LEASE, account="skole")
    assert claim.id == reported
    ledger.mark_failed_permanently(reported, W, "TruncatedCmsError", "short")
    ledger.mark_reported(reported, W)

    clock.advance(20 * MINUTE)
    facts = watch.account_facts(
        pending_before=clock.now - 25 * MINUTE,
        reported_since=clock.now - 30 * MINUTE,
        key_error_kinds=KEY_ERROR_KINDS,
    )
    assert facts == (
        AccountAlertFacts(
            "kommune", pending=1, oldest_pending_seen_at=t0, failed_permanently=0, key_errors=1
        ),
        AccountAlertFacts("skole", failed_permanently=1, reported_recently=1, key_errors=1),
    )
    later = watch.account_facts(
        pending_before=clock.now - 5 * MINUTE,
        reported_since=clock.now,
        key_error_kinds=KEY_ERROR_KINDS,
    )
    assert later == (
        AccountAlertFacts("kommune", pending=2, oldest_pending_seen_at=t0, key_errors=1),
        AccountAlertFacts("skole", failed_permanently=1, key_errors=1),
    )


def test_a_receipt_withheld_by_shadow_mode_is_not_pending(ledger: Ledger, clock: FakeClock) -> None:
    watch = LedgerWatch(ledger.engine, clock=clock)
    archived = _letter(ledger, "kommune", "archived")
    waiting = _letter(ledger, "kommune", "waiting")
    claims = ledger.claim(W, LEASE, account="kommune", limit=2)
    assert {c.id for c in claims} == {archived, waiting}
    ledger.release(waiting, W, "test")
    ledger.mark_archived(
        archived, W, archive_ref="r", actual_sha256=None, actual_size=1, verified=True
    )
    ledger.withhold_receipt(archived, W, "kvitterMottak withheld (shadow mode)")
    clock.advance(120 * MINUTE)

    def facts() -> tuple[AccountAlertFacts, ...]:
        return watch.account_facts(
            pending_before=clock.now - 90 * MINUTE,
            reported_since=clock.now,
            key_error_kinds=KEY_ERROR_KINDS,
        )

    t0 = clock.now - 120 * MINUTE
    assert facts() == (AccountAlertFacts("kommune", pending=1, oldest_pending_seen_at=t0),)
    assert ledger.set_receipts("kommune", True) == (archived,)  # due again: pending again
    assert facts() == (AccountAlertFacts("kommune", pending=2, oldest_pending_seen_at=t0),)


def test_naive_cutoffs_are_refused(ledger: Ledger) -> None:
    watch = LedgerWatch(ledger.engine)
    with pytest.raises(LedgerError, match="timezone-aware"):
        watch.account_facts(
            pending_before=ledger.clock().replace(tzinfo=None),
            reported_since=ledger.clock(),
            key_error_kinds=KEY_ERROR_KINDS,
        )


def test_downgrade_to_0001_keeps_the_letters(ledger_url: str) -> None:
    engine = build_engine(LedgerConfig(url=ledger_url))
    try:
        migrate(engine)
        record_seen(Ledger(engine), "kommune", "f-1")
        downgrade(engine, "0001")
        tables = set(sa.inspect(engine).get_table_names())
        assert {"alert_states", "account_polls"}.isdisjoint(tables)
        assert "forsendelser" in tables
        migrate(engine)
        assert len(Ledger(engine).find("f-1")) == 1
        assert LedgerAlertStore(engine).load() == []
    finally:
        engine.dispose()


def test_a_letter_waiting_for_the_archives_kvittering_is_pending_and_counted_apart(
    ledger: Ledger, clock: FakeClock
) -> None:
    watch = LedgerWatch(ledger.engine, clock=clock)
    sent = _letter(ledger, "kommune", "sent")
    [claim] = ledger.claim(W, LEASE, account="kommune")
    assert claim.id == sent
    ledger.mark_sent(sent, W, message_id="m-1", archive="fiks", resend_at=clock.now + 240 * MINUTE)
    clock.advance(120 * MINUTE)
    [fact] = watch.account_facts(
        pending_before=clock.now - 90 * MINUTE,
        reported_since=clock.now,
        key_error_kinds=KEY_ERROR_KINDS,
    )
    assert (fact.pending, fact.awaiting_archive) == (1, 1)
    holding = conditions.holding(
        [fact], [], accounts={"kommune"}, now=clock.now, config=AlertsConfig()
    )
    [details] = holding.values()
    assert details.counts["awaiting_archive"] == 1
