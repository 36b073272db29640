"""The pipeline: the one place that puts the steps in order.

    poll -> ledger.record_seen -> ledger.claim -> client.download -> cms decrypt + sha256
         -> spool (0600, fsync) -> verify against filmetadata -> archive adapter
         -> ledger.mark_archived -> client.acknowledge (kvitterMottak) -> ledger.mark_acknowledged

Every step's result is in the ledger before the next step starts, so a crash at any instant
leaves a letter either claimable again (its lease expires) or archived-and-waiting-for-its-
receipt; the adapter gets the forsendelse id as its idempotency key, so nothing is archived
twice. Failures go through :func:`svarinn_daemon.retry.decide`, whose decision is written to
the ledger's events.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from svarinn_daemon.errors import (
    ArchiveError,
    AuthenticationError,
    ForsendelseGoneError,
    InternalError,
    LeaseLostError,
    LedgerError,
    LedgerUnavailableError,
    SvarinnError,
)
from svarinn_daemon.inflight import InFlight
from svarinn_daemon.ledger import Claim, Ledger, SeenAction, Trigger, Work
from svarinn_daemon.logs import get_logger
from svarinn_daemon.metrics import Metrics
from svarinn_daemon.retry import Action, RetryPolicy, decide
from svarinn_daemon.spool import Spool
from svarinn_daemon.stages import Downloaded, Stages
from svarinn_daemon.svarinn import Forsendelse
from svarinn_daemon.svarinn.models import parse_forsendelse
from svarinn_daemon.verify import VerifyPolicy
from svarinn_daemon.work import (
    AccountRuntime,
    Outcome,
    PollResult,
    ShutdownRequested,
    sighting,
)

log = get_logger(__name__)
T = TypeVar("T")
# How long a worker waits before writing a decision again while the ledger is down.
LEDGER_RETRY_FIRST = 0.5
LEDGER_RETRY_MAX = 5.0
# poll.item_rejected lines per poll; a listing of a million bad items must not flood the log.
MAX_REJECTED_LOG_LINES = 20


@dataclass
class Pipeline:
    ledger: Ledger
    accounts: Mapping[str, AccountRuntime]
    spool: Spool
    metrics: Metrics
    worker_id: str
    lease: timedelta
    retry_policy: RetryPolicy = field(default_factory=RetryPolicy)
    verify_policy: VerifyPolicy = field(default_factory=VerifyPolicy)
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    random: Callable[[], float] = random.random
    in_flight: InFlight = field(default_factory=InFlight)

    def __post_init__(self) -> None:
        self._stages = Stages(
            self.spool, self.in_flight, self.metrics, self.verify_policy, self.clock
        )

    def stop(self) -> None:
        """Make letters in flight stop now; every letter not yet archived is released."""
        self.in_flight.stop()

    # --- poll --------------------------------------------------------------------------

    def poll(self, account: str) -> PollResult:
        """hentNyeForsendelser, then write every id down before anything else happens.

        An item that cannot be read is logged and counted, and the others go on: SvarUt
        keeps listing it, so it is counted again at every poll until someone acts."""
        runtime = self.accounts[account]
        with self.metrics.stage(account, "poll"):
            try:
                listing = runtime.client.listing()
                letters = listing.letters
                results = self.ledger.record_seen_many(account, [sighting(f) for f in letters])
            except SvarinnError as exc:
                outcome = "auth_failed" if isinstance(exc, AuthenticationError) else "failed"
                self.metrics.polls.labels(account, outcome).inc()
                log.error("poll.failed", account=account, error_kind=exc.kind, error=str(exc))
                return PollResult(account, ok=False, error=exc)
        new = sum(1 for r in results if r.action is SeenAction.NEW)
        again = sum(
            1 for r in results if r.action in (SeenAction.REACKNOWLEDGE, SeenAction.REREPORT)
        )
        for item in listing.rejected[:MAX_REJECTED_LOG_LINES]:
            log.error(
                "poll.item_rejected",
                account=account,
                forsendelse_id=item.forsendelse_id,
                error=str(item.error)[:1000],
            )
        if len(listing.rejected) > MAX_REJECTED_LOG_LINES:
            log.error(
                "poll.items_rejected_not_logged",
                account=account,
                count=len(listing.rejected) - MAX_REJECTED_LOG_LINES,
            )
        self.metrics.rejected_items.labels(account).inc(len(listing.rejected))
        self.metrics.polls.labels(account, "ok").inc()
        self.metrics.last_successful_poll.labels(account).set(time.time())
        result = PollResult(account, True, len(letters), new, again, len(listing.rejected))
        log.info(
            "poll.finished",
            account=account,
            listed=result.listed,
            new=new,
            again=again,
            rejected=result.rejected,
        )
        return result

    def claim(
        self,
        account: str | None = None,
        limit: int = 1,
        due_by: datetime | None = None,
        imports: bool = True,
    ) -> tuple[Claim, ...]:
        return self.ledger.claim(
            self.worker_id, self.lease, account=account, limit=limit, due_by=due_by, imports=imports
        )

    # --- one claim -----------------------------------------------------------------------

    def process(self, claim: Claim) -> Outcome:
        """Do the claim's work; every failure ends in a ledger decision, never an exception.

        While the ledger does not answer, the decision waits for it (:meth:`_record`)."""
        letter = claim.letter
        bound = log.bind(
            account=letter.account,
            forsendelse_id=letter.forsendelse_id,
            letter_id=letter.id,
            work=claim.work.value,
        )
        with self.in_flight.working():
            try:
                try:
                    return self._work(claim)
                except ShutdownRequested:
                    raise
                except SvarinnError as exc:
                    return self._failed(claim, exc)
                except Exception as exc:  # a bug must not kill the worker or lose the letter
                    bound.exception("forsendelse.internal_error")
                    self.metrics.internal_errors.labels("pipeline").inc()
                    error = InternalError.wrap(exc, f"{claim.work.value} work")
                    return self._failed(claim, error)
            except ShutdownRequested:
                return self._release(claim, "daemon stopping")
            except LeaseLostError as exc:  # while writing the decision about a failure
                bound.warning("forsendelse.lease_lost", error=str(exc))
                return Outcome.LEASE_LOST

    def _work(self, claim: Claim) -> Outcome:
        if claim.work is Work.IMPORT:
            self._import(claim)
            return self._acknowledge(claim)
        if claim.work is Work.ACKNOWLEDGE:
            return self._acknowledge(claim)
        return self._report(claim, claim.letter.last_error_message or "mottak feilet")

    def _release(self, claim: Claim, reason: str) -> Outcome:
        letter = claim.letter
        try:
            self.ledger.release(letter.id, self.worker_id, reason)
        except LedgerError as exc:  # stopping: the lease runs out, or the restart frees it
            log.warning("forsendelse.not_released", letter_id=letter.id, error=str(exc))
        log.info("forsendelse.released", forsendelse_id=letter.forsendelse_id, reason=reason)
        return Outcome.RELEASED

    def _record(self, write: Callable[[], T]) -> T:
        """Write a decision to the ledger as soon as it answers: while the database is
        down the worker waits (beating, so it is not taken for wedged), retrying with a
        growing delay, until it answers, the lease is lost, or the daemon stops."""
        delay = LEDGER_RETRY_FIRST
        while True:
            try:
                return write()
            except LedgerUnavailableError:
                self.in_flight.beat()
                if self.in_flight.stopping.wait(delay):
                    raise ShutdownRequested from None
                delay = min(delay * 2, LEDGER_RETRY_MAX)

    def _import(self, claim: Claim) -> None:
        letter = claim.letter
        account = self.accounts[letter.account]
        forsendelse = parse_forsendelse(dict(letter.raw))
        existing = account.adapter.has(forsendelse.id)
        if existing is not None:
            # The archive has it but the ledger missed it (crash between the two): never twice.
            log.warning(
                "forsendelse.already_archived",
                account=letter.account,
                forsendelse_id=forsendelse.id,
                archive_ref=existing,
            )
            self._record(
                lambda: self.ledger.mark_archived(
                    letter.id,
                    self.worker_id,
                    archive_ref=existing,
                    actual_sha256=None,
                    actual_size=None,
                    verified=None,  # unknown here; the archive holds the verification record
                )
            )
            return
        downloaded = self._stages.download(account, forsendelse, self._lease_renewer(claim))
        try:
            self._archive(claim, account, forsendelse, downloaded)
        finally:
            downloaded.path.unlink(missing_ok=True)

    def _lease_renewer(self, claim: Claim) -> Callable[[], None]:
        """Extends the claim's lease every third of its length while a download runs."""
        renew_every = (self.lease / 3).total_seconds()
        renewed = time.monotonic()

        def renew() -> None:
            nonlocal renewed
            if time.monotonic() - renewed > renew_every:
                try:
                    self.ledger.extend_lease(claim.id, self.worker_id, self.lease)
                    renewed = time.monotonic()
                except LedgerUnavailableError:
                    pass  # the lease has time left; the next chunk tries again

        return renew

    def _archive(
        self,
        claim: Claim,
        account: AccountRuntime,
        forsendelse: Forsendelse,
        downloaded: Downloaded,
    ) -> None:
        ref, result = self._stages.archive(account, forsendelse, downloaded)
        if account.breaker.success():
            self.metrics.archive_available.labels(account.archive).set(1)
            log.info("archive.available", archive=account.archive)
        self._record(
            lambda: self.ledger.mark_archived(
                claim.id,
                self.worker_id,
                archive_ref=ref,
                actual_sha256=downloaded.sha256,
                actual_size=downloaded.size,
                verified=result.verified,
            )
        )
        if not result.verified:
            self.metrics.unverified.labels(account.name).inc()
        log.info(
            "forsendelse.archived",
            account=account.name,
            forsendelse_id=forsendelse.id,
            archive_ref=ref,
            size=downloaded.size,
            verified=result.verified,
            notes=list(result.notes),
        )

    def _acknowledge(self, claim: Claim) -> Outcome:
        letter = claim.letter
        account = self.accounts[letter.account]
        self._receipt(
            claim, "kvitterMottak", lambda: account.client.acknowledge(letter.forsendelse_id)
        )
        self._record(lambda: self.ledger.mark_acknowledged(letter.id, self.worker_id))
        self.metrics.letters.labels(account.name, "acknowledged").inc()
        log.info(
            "forsendelse.acknowledged", account=account.name, forsendelse_id=letter.forsendelse_id
        )
        return Outcome.ACKNOWLEDGED

    def _report(self, claim: Claim, message: str) -> Outcome:
        """mottakFeilet permanent=true: SvarUt sends the letter on by other channels."""
        letter = claim.letter
        account = self.accounts[letter.account]
        self._receipt(
            claim,
            "mottakFeilet",
            lambda: account.client.report_failure(letter.forsendelse_id, message, permanent=True),
        )
        self._record(
            lambda: self.ledger.mark_reported(
                letter.id, self.worker_id, "mottakFeilet permanent=true"
            )
        )
        self.metrics.letters.labels(account.name, "reported").inc()
        log.warning(
            "forsendelse.reported",
            account=account.name,
            forsendelse_id=letter.forsendelse_id,
            message=message,
        )
        return Outcome.REPORTED

    def _receipt(self, claim: Claim, kind: str, send: Callable[[], None]) -> None:
        """Send kvitterMottak or mottakFeilet, counting it. A 404 means SvarUt no longer
        lists the letter: an earlier receipt whose answer was lost, so it counts as sent."""
        account = claim.letter.account
        with self.metrics.stage(account, "receipt"):
            try:
                send()
            except ForsendelseGoneError:
                log.info(
                    "forsendelse.receipt_gone",
                    account=account,
                    kind=kind,
                    forsendelse_id=claim.letter.forsendelse_id,
                )
            except SvarinnError:
                self.metrics.receipts.labels(account, kind, "failed").inc()
                raise
        self.metrics.receipts.labels(account, kind, "ok").inc()

    # --- failures -----------------------------------------------------------------------

    def _failed(self, claim: Claim, error: SvarinnError) -> Outcome:
        letter = claim.letter
        account = self.accounts[letter.account]
        now = self.clock()
        decision = decide(
            error,
            attempts=letter.attempts,
            policy=self.retry_policy,
            now=now,
            last_temporary_report_at=letter.temporary_reported_at,
            failing_since=letter.failing_since,
            download_attempts=self._corrupt_downloads(letter.id) + 1,
            random=self.random,
        )
        fields = {
            "account": account.name,
            "forsendelse_id": letter.forsendelse_id,
            "letter_id": letter.id,
            "work": claim.work.value,
            "error_kind": error.kind,
            "error": str(error),
            "action": decision.action.value,
            "reason": decision.reason,
        }
        if decision.action is Action.ABANDON:
            log.warning("forsendelse.lease_lost", **fields)
            return Outcome.LEASE_LOST
        if isinstance(error, ArchiveError) and error.temporary and account.breaker.failure():
            self.metrics.archive_available.labels(account.archive).set(0)
            log.error(
                "archive.unavailable",
                archive=account.archive,
                consecutive_failures=account.breaker.failures,
                probe_in_seconds=account.breaker.delay,
                error=str(error),
            )
        if decision.action is Action.STOP_ACCOUNT:
            self._record(
                lambda: self.ledger.release(letter.id, self.worker_id, f"{error.kind}: {error}")
            )
            log.error("account.stopped", **fields)
            return Outcome.ACCOUNT_STOPPED
        if decision.action is Action.FAIL_PERMANENTLY and claim.work is Work.IMPORT:
            self._record(
                lambda: self.ledger.mark_failed_permanently(
                    letter.id, self.worker_id, error.kind, decision.message
                )
            )
            self.metrics.letters.labels(account.name, "failed_permanently").inc()
            log.error("forsendelse.failed_permanently", **fields)
            try:
                return self._report(claim, decision.message)
            except SvarinnError as exc:
                return self._failed(claim, exc)  # the report itself is retried later
        retry_at = decision.retry_at or now + self.retry_policy.base_delay
        self._record(
            lambda: self.ledger.schedule_retry(
                letter.id,
                self.worker_id,
                error.kind,
                f"{decision.action.value}: {decision.reason}: {error}",
                retry_at,
            )
        )
        self.metrics.retries.labels(account.name, error.kind).inc()
        self.metrics.letters.labels(account.name, "retry_scheduled").inc()
        emit = log.error if decision.alert else log.warning
        emit("forsendelse.retry_scheduled", retry_at=retry_at.isoformat(), **fields)
        if decision.report_temporary and claim.work is Work.IMPORT:
            self._report_temporary(account, letter.id, letter.forsendelse_id, decision.message)
        return Outcome.RETRY_SCHEDULED

    def _corrupt_downloads(self, letter_id: int) -> int:
        """Earlier downloads of this letter that came back corrupt, from its history: claims
        cut short by a restart or a shutdown must not count towards sending it to paper."""
        marker = f": {Action.DOWNLOAD_AGAIN.value}: "  # reasons read "Kind: action: ..."
        return sum(
            1
            for event in self._record(lambda: self.ledger.events(letter_id))
            if event.trigger is Trigger.SCHEDULE_RETRY and marker in (event.reason or "")
        )

    def _report_temporary(
        self, account: AccountRuntime, letter_id: int, forsendelse_id: str, message: str
    ) -> None:
        try:
            account.client.report_failure(forsendelse_id, message, permanent=False)
        except SvarinnError as exc:
            self.metrics.receipts.labels(account.name, "mottakFeilet", "failed").inc()
            log.warning(
                "forsendelse.temporary_report_failed",
                account=account.name,
                forsendelse_id=forsendelse_id,
                error=str(exc),
            )
            return
        self.metrics.receipts.labels(account.name, "mottakFeilet", "ok").inc()
        self._record(lambda: self.ledger.record_temporary_report(letter_id, self.clock()))
