"""The pipeline: the one place that puts the steps in order.

    poll -> ledger.record_seen -> ledger.claim -> client.download -> cms decrypt + sha256
         -> spool (0600) -> verify against filmetadata -> archive adapter
         -> ledger.mark_archived -> client.acknowledge (kvitterMottak) -> ledger.mark_acknowledged

Every step's result is in the ledger before the next step starts, so a crash at any instant
leaves a letter either claimable again (its lease expires) or archived-and-waiting-for-its-
receipt; the adapter gets the forsendelse id as its idempotency key, so nothing is archived
twice. Failures go through :func:`svarinn_daemon.letter.retry.decide`, whose decision is
written to the ledger's events. What happened is told to :class:`.events.PipelineEvents`;
metrics and log lines are the observer's business, not the pipeline's.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypeVar

from svarinn_daemon.adapters import has_letter
from svarinn_daemon.adapters.base import answers_later
from svarinn_daemon.common import Clock, utc_now
from svarinn_daemon.errors import (
    ArchiveError,
    DaemonError,
    ForsendelseGoneError,
    InternalError,
    LeaseLostError,
    LedgerError,
    ShutdownRequested,
)
from svarinn_daemon.ledger import Claim, Ledger, Letter, SeenAction, State, Work
from svarinn_daemon.letter import leases
from svarinn_daemon.letter.account import AccountRuntime
from svarinn_daemon.letter.durable import when_ledger_answers
from svarinn_daemon.letter.events import PipelineEvents
from svarinn_daemon.letter.inflight import InFlight
from svarinn_daemon.letter.results import Outcome, PollResult, sighting
from svarinn_daemon.letter.retry import Action, decide
from svarinn_daemon.letter.spool import Spool
from svarinn_daemon.letter.stages import Downloaded, Stages
from svarinn_daemon.policies import RetryPolicy, VerifyPolicy
from svarinn_daemon.svarinn import Forsendelse
from svarinn_daemon.svarinn.stored import parse_stored

T = TypeVar("T")
# A receipt answered 404: SvarUt no longer lists the letter.
GONE = "answered 404: no longer listed (acknowledged elsewhere, or an earlier answer was lost)"


@dataclass
class Pipeline:
    ledger: Ledger
    accounts: Mapping[str, AccountRuntime]
    spool: Spool
    events: PipelineEvents
    worker_id: str
    lease: timedelta
    retry_policy: RetryPolicy = field(default_factory=RetryPolicy)
    verify_policy: VerifyPolicy = field(default_factory=VerifyPolicy)
    clock: Clock = utc_now
    random: Callable[[], float] = random.random
    in_flight: InFlight = field(default_factory=InFlight)

    def __post_init__(self) -> None:
        self._stages = Stages(
            self.spool, self.in_flight, self.events, self.verify_policy, self.clock
        )
        self._keeper = leases.LeaseKeeper(self.ledger, self.worker_id, self.lease)

    def stop(self) -> None:
        """Make letters in flight stop now; every letter not yet archived is released."""
        self.in_flight.stop()  # leases in a blocking step are kept until it ends

    # --- poll --------------------------------------------------------------------------

    def poll(self, account: str) -> PollResult:
        """The listing, then every id written down before anything else happens.

        An item that cannot be read is set aside (told to the events) and the others go
        on: SvarUt keeps listing it, so it is counted again at every poll until someone
        acts."""
        runtime = self.accounts[account]
        with self.events.stage(account, "poll"):
            try:
                listed_at = self.clock()
                listing = runtime.client.listing()
                results = self.ledger.record_seen_many(
                    account,
                    [sighting(f, runtime.for_letter(f).archive) for f in listing.letters],
                    listed_at=listed_at,
                )
            except DaemonError as exc:
                self.events.poll_failed(account, exc)
                return PollResult(account, ok=False, error=exc)
        new = sum(1 for r in results if r.action is SeenAction.NEW)
        again = sum(
            1 for r in results if r.action in (SeenAction.REACKNOWLEDGE, SeenAction.REREPORT)
        )
        result = PollResult(account, True, len(listing.letters), new, again, len(listing.rejected))
        self.events.polled(result, listing.rejected)
        return result

    def archive_for(self, letter: Letter) -> str | None:
        """The archive ``[[routes]]`` chooses for a stored letter today (None: its account is
        no longer configured, or its stored item no longer reads: its import will say)."""
        account = self.accounts.get(letter.account)
        if account is None:
            return None
        try:
            return account.for_letter(parse_stored(letter.raw)).archive
        except DaemonError:
            return None

    def claim(
        self,
        account: str | None = None,
        limit: int = 1,
        due_by: datetime | None = None,
        imports: bool = True,
        *,
        skip_accounts: frozenset[str] = frozenset(),
        paused: frozenset[str] = frozenset(),
        archive: str | None = None,
    ) -> tuple[Claim, ...]:
        return self.ledger.claim(
            self.worker_id,
            self.lease,
            account=account,
            limit=limit,
            due_by=due_by,
            imports=imports,
            skip_accounts=skip_accounts,
            paused=paused,
            archive=archive,
        )

    # --- one claim -----------------------------------------------------------------------

    def process(self, claim: Claim) -> Outcome:
        """Do the claim's work; every failure ends in a ledger decision, never an exception.

        While the ledger does not answer, the decision waits for it (:meth:`_record`)."""
        with self.in_flight.working():
            try:
                try:
                    return self._work(claim)
                except ShutdownRequested:
                    raise
                except DaemonError as exc:
                    return self._failed(claim, exc)
                except Exception as exc:  # a bug must not kill the worker or lose the letter
                    self.events.internal_error(claim, exc)
                    error = InternalError.wrap(exc, f"{claim.work.value} work")
                    return self._failed(claim, error)
            except ShutdownRequested:
                return self._release(claim, "daemon stopping")
            except LeaseLostError as exc:  # while writing the decision about a failure
                return self._lease_lost(claim, exc)

    def _work(self, claim: Claim) -> Outcome:
        if claim.work is Work.IMPORT:
            if not self._import(claim):
                return Outcome.SENT  # the archive's reply decides (letter/replies.py)
            return self._acknowledge(claim)
        if claim.work is Work.ACKNOWLEDGE:
            return self._acknowledge(claim)
        return self._report(claim, claim.letter.last_error_message or "mottak feilet")

    def _release(self, claim: Claim, reason: str) -> Outcome:
        error: LedgerError | None = None
        try:
            self.ledger.release(claim.letter.id, self.worker_id, reason)
        except LedgerError as exc:  # stopping: the lease runs out, or the restart frees it
            error = exc
        self.events.released(claim, reason, error)
        return Outcome.RELEASED

    def _lease_lost(self, claim: Claim, error: LeaseLostError) -> Outcome:
        decision = decide(
            error,
            attempts=claim.letter.attempts,
            policy=self.retry_policy,
            now=self.clock(),
            last_temporary_report_at=None,
        )
        self.events.decided(claim, error, decision, Outcome.LEASE_LOST)
        return Outcome.LEASE_LOST

    def _record(self, write: Callable[[], T]) -> T:
        """Write a decision to the ledger as soon as it answers: while the database is
        down the worker waits (beating, so it is not taken for wedged), retrying with a
        growing delay, until it answers, the lease is lost, or the daemon stops."""
        return when_ledger_answers(write, self.in_flight.stopping, beat=self.in_flight.beat)

    def _import(self, claim: Claim) -> bool:
        """Into the archive; False when the letter was only sent (an archive that answers
        later) and waits for the reply."""
        letter = claim.letter
        account = self.accounts[letter.account]
        forsendelse = parse_stored(letter.raw)  # v1 or v2, as listed
        account = account.for_letter(forsendelse)
        with self._lease_kept(claim):
            existing = self._at_archive(
                account.archive,
                lambda: has_letter(account.adapter, forsendelse.id, account.origin),
            )
        if existing is not None:
            # The archive has it but the ledger missed it (crash between the two): never twice.
            self._record(
                lambda: self.ledger.mark_archived(
                    letter.id,
                    self.worker_id,
                    archive_ref=existing,
                    actual_sha256=None,
                    actual_size=None,
                    verified=None,  # unknown here; the archive holds the verification record
                    note=account.destination or None,
                    found_in_archive=True,
                )
            )
            self.events.archive_answered(account.archive)
            self.events.archived(
                claim, account.archive, existing, size=None, verified=None, notes=(), already=True
            )
            return True
        downloaded = self._stages.download(account, forsendelse, self._lease_renewer(claim))
        try:
            with self._lease_kept(claim):
                return self._archive(claim, account, forsendelse, downloaded)
        finally:
            downloaded.discard()

    def _at_archive(self, archive: str, call: Callable[[], T]) -> T:
        """A call into the letter's own archive (the one its route chose): only what the
        archive itself answers counts for that archive's circuit breaker, never a failure
        before it (download, decryption, verification) nor another archive's."""
        try:
            return call()
        except ArchiveError as exc:
            if exc.temporary:
                self.events.archive_refused(archive, exc)
            raise

    def _lease_renewer(self, claim: Claim) -> Callable[[], None]:
        return leases.renewer(self.ledger, claim, self.worker_id, self.lease)

    def _lease_kept(self, claim: Claim) -> AbstractContextManager[None]:
        return self._keeper.kept(claim)

    def _archive(
        self,
        claim: Claim,
        account: AccountRuntime,
        forsendelse: Forsendelse,
        downloaded: Downloaded,
    ) -> bool:
        ref, result = self._at_archive(
            account.archive, lambda: self._stages.archive(account, forsendelse, downloaded)
        )
        self.events.archive_answered(account.archive)
        adapter = account.adapter
        if answers_later(adapter):
            resend_at = self.clock() + adapter.reply_timeout
            sent = self._record(
                lambda: self.ledger.mark_sent(
                    claim.id,
                    self.worker_id,
                    message_id=ref,
                    archive=account.archive,
                    resend_at=resend_at,
                    actual_sha256=downloaded.hashes,
                    actual_size=downloaded.size,
                    verified=result.verified,
                )
            )
            if sent.state is not State.ARCHIVED:  # else: its kvittering came first
                self.events.sent(claim, account.archive, ref)
                return False
            ref = sent.archive_ref or ref
        else:
            self._record(
                lambda: self.ledger.mark_archived(
                    claim.id,
                    self.worker_id,
                    archive_ref=ref,
                    note=account.destination or None,
                    actual_sha256=downloaded.hashes,
                    actual_size=downloaded.size,
                    verified=result.verified,
                )
            )
        self.events.archived(
            claim,
            account.archive,
            ref,
            size=downloaded.size,
            verified=result.verified,
            notes=result.notes,
        )
        return True

    def _acknowledge(self, claim: Claim) -> Outcome:
        letter = claim.letter
        account = self.accounts[letter.account]
        if not account.receipts:
            return self._withhold(claim, "kvitterMottak")
        client = account.client
        gone = self._receipt(
            claim, "kvitterMottak", lambda: client.acknowledge(letter.forsendelse_id)
        )
        reason = f"kvitterMottak {GONE}" if gone else "kvitterMottak"
        self._record(
            lambda: self.ledger.mark_acknowledged(letter.id, self.worker_id, reason, gone=gone)
        )
        self.events.acknowledged(claim)
        return Outcome.ACKNOWLEDGED

    def _report(self, claim: Claim, message: str) -> Outcome:
        """mottakFeilet permanent=true: SvarUt sends the letter on by other channels."""
        letter = claim.letter
        account = self.accounts[letter.account]
        if not account.receipts:
            return self._withhold(claim, "mottakFeilet")
        client = account.client
        gone = self._receipt(
            claim,
            "mottakFeilet",
            lambda: client.report_failure(letter.forsendelse_id, message, permanent=True),
        )
        reason = f"mottakFeilet permanent=true {GONE}" if gone else "mottakFeilet permanent=true"
        self._record(
            lambda: self.ledger.mark_reported(letter.id, self.worker_id, reason, gone=gone)
        )
        self.events.reported(claim, message)
        return Outcome.REPORTED

    def _withhold(self, claim: Claim, kind: str) -> Outcome:
        """Shadow mode (``receipts = false``): the receipt is not sent and the letter is not
        claimed again until receipts are turned on; the importer being replaced answers."""
        reason = f"{kind} withheld (shadow mode: receipts = false)"
        self._record(lambda: self.ledger.withhold_receipt(claim.id, self.worker_id, reason))
        self.events.receipt(claim, kind, "withheld")
        return Outcome.WITHHELD

    def _receipt(self, claim: Claim, kind: str, send: Callable[[], None]) -> bool:
        """Send kvitterMottak or mottakFeilet; True when SvarUt answered 404. A 404 means
        SvarUt no longer lists the letter: an earlier receipt whose answer was lost, or
        another importer's (shadow mode ended), so it counts as sent."""
        with self.events.stage(claim.letter.account, "receipt"):
            try:
                send()
            except ForsendelseGoneError:
                self.events.receipt(claim, kind, "gone")
                return True
            except DaemonError:
                self.events.receipt(claim, kind, "failed")
                raise
        self.events.receipt(claim, kind, "ok")
        return False

    # --- failures -----------------------------------------------------------------------

    def _failed(self, claim: Claim, error: DaemonError) -> Outcome:
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
            download_attempts=letter.download_attempts + 1,
            random=self.random,
        )
        if decision.action is Action.ABANDON:
            outcome = Outcome.LEASE_LOST
        elif decision.action is Action.STOP_ACCOUNT:
            self._record(
                lambda: self.ledger.release(letter.id, self.worker_id, f"{error.kind}: {error}")
            )
            outcome = Outcome.ACCOUNT_STOPPED
        elif decision.action is Action.FAIL_PERMANENTLY and claim.work is Work.IMPORT:
            self._record(
                lambda: self.ledger.mark_failed_permanently(
                    letter.id, self.worker_id, error.kind, decision.message
                )
            )
            self.events.decided(claim, error, decision, Outcome.REPORTED)
            try:
                return self._report(claim, decision.message)
            except DaemonError as exc:
                return self._failed(claim, exc)  # the report itself is retried later
        else:
            retry_at = decision.retry_at or now + self.retry_policy.base_delay
            self._record(
                lambda: self.ledger.schedule_retry(
                    letter.id,
                    self.worker_id,
                    error.kind,
                    f"{decision.action.value}: {decision.reason}: {error}",
                    retry_at,
                    corrupt_download=decision.action is Action.DOWNLOAD_AGAIN,
                )
            )
            outcome = Outcome.RETRY_SCHEDULED
        self.events.decided(claim, error, decision, outcome)
        retried = outcome is Outcome.RETRY_SCHEDULED and claim.work is Work.IMPORT
        if retried and decision.report_temporary and account.receipts:
            self._report_temporary(claim, decision.message)
        return outcome

    def _report_temporary(self, claim: Claim, message: str) -> None:
        letter = claim.letter
        client = self.accounts[letter.account].client
        try:
            client.report_failure(letter.forsendelse_id, message, permanent=False)
        except DaemonError as exc:
            self.events.temporary_report(claim, exc)
            return
        self.events.temporary_report(claim, None)
        self._record(lambda: self.ledger.record_temporary_report(letter.id, self.clock()))
