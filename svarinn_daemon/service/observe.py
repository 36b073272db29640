"""The pipeline's events as Prometheus metrics, structured log lines and circuit breakers.

:class:`Observer` is the one implementation of
:class:`~svarinn_daemon.letter.events.PipelineEvents` the daemon runs with: the pipeline
says what happened, this decides how it is counted and written down (and feeds each
archive's :class:`~svarinn_daemon.service.breaker.Breaker`).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from svarinn_daemon.common import clip
from svarinn_daemon.errors import ArchiveError, DaemonError, Retry
from svarinn_daemon.ledger import Claim, ReplyOutcome, ReplyResult
from svarinn_daemon.letter.results import Outcome, PollResult
from svarinn_daemon.letter.retry import Action, Decision
from svarinn_daemon.logs import get_logger
from svarinn_daemon.replies import ArchiveReply, ReplyKind
from svarinn_daemon.service.breaker import Breaker
from svarinn_daemon.service.metrics import Metrics
from svarinn_daemon.svarinn.records import RejectedItem

__all__ = ["MAX_REJECTED_LOG_LINES", "Observer"]

log = get_logger("svarinn_daemon.letter.pipeline")
# poll.item_rejected lines per poll; a listing of a million bad items must not flood the log.
MAX_REJECTED_LOG_LINES = 20


def _fields(claim: Claim) -> dict[str, Any]:
    letter = claim.letter
    return {
        "account": letter.account,
        "forsendelse_id": letter.forsendelse_id,
        "letter_id": letter.id,
        "work": claim.work.value,
    }


class Observer:
    def __init__(self, metrics: Metrics, breakers: Mapping[str, Breaker]):
        self.metrics = metrics
        self.breakers = breakers

    # --- timing and bytes -----------------------------------------------------------------

    @contextmanager
    def stage(self, account: str, stage: str) -> Iterator[None]:
        with self.metrics.stage(account, stage):
            yield

    def stage_took(self, account: str, stage: str, seconds: float) -> None:
        self.metrics.stage_seconds.labels(account, stage).observe(seconds)

    def downloaded(self, account: str, received: int) -> None:
        self.metrics.bytes_downloaded.labels(account).inc(received)

    # --- polls ----------------------------------------------------------------------------

    def polled(self, result: PollResult, rejected: Sequence[RejectedItem]) -> None:
        account = result.account
        for item in rejected[:MAX_REJECTED_LOG_LINES]:
            log.error(
                "poll.item_rejected",
                account=account,
                forsendelse_id=item.forsendelse_id,
                error=str(item.error)[:1000],
            )
        if len(rejected) > MAX_REJECTED_LOG_LINES:
            log.error(
                "poll.items_rejected_not_logged",
                account=account,
                count=len(rejected) - MAX_REJECTED_LOG_LINES,
            )
        self.metrics.rejected_items.labels(account).inc(len(rejected))
        self.metrics.polls.labels(account, "ok").inc()
        self.metrics.last_successful_poll.labels(account).set(time.time())
        log.info(
            "poll.finished",
            account=account,
            listed=result.listed,
            new=result.new,
            again=result.again,
            rejected=result.rejected,
        )

    def poll_failed(self, account: str, error: DaemonError) -> None:
        outcome = "auth_failed" if error.retry is Retry.STOP_ACCOUNT else "failed"
        self.metrics.polls.labels(account, outcome).inc()
        log.error("poll.failed", account=account, error_kind=error.kind, error=str(error))

    # --- the archive ----------------------------------------------------------------------

    def archived(
        self,
        claim: Claim,
        archive: str,
        ref: str,
        *,
        size: int | None,
        verified: bool | None,
        notes: Sequence[str],
        already: bool = False,
    ) -> None:
        fields = _fields(claim)
        if already:
            # The archive had it but the ledger missed it (a crash between the two).
            log.warning(
                "forsendelse.already_archived",
                account=fields["account"],
                forsendelse_id=fields["forsendelse_id"],
                archive_ref=ref,
            )
            return
        if not verified:
            self.metrics.unverified.labels(claim.letter.account).inc()
        log.info(
            "forsendelse.archived",
            account=fields["account"],
            forsendelse_id=fields["forsendelse_id"],
            archive_ref=ref,
            size=size,
            verified=verified,
            notes=list(notes),
        )

    def sent(self, claim: Claim, archive: str, message_id: str) -> None:
        fields = _fields(claim)
        self.metrics.letters.labels(fields["account"], "sent").inc()
        log.info(
            "forsendelse.sent_to_archive",
            account=fields["account"],
            forsendelse_id=fields["forsendelse_id"],
            archive=archive,
            message_id=message_id,
        )

    def replied(self, archive: str, reply: ArchiveReply, result: ReplyResult) -> None:
        self.metrics.archive_replies.labels(archive, reply.kind.value, result.outcome.value).inc()
        letter = result.letter
        fields = {
            "archive": archive,
            "in_reply_to": reply.in_reply_to,
            "reply_id": reply.reply_id,
            "kind": reply.kind.value,
            "outcome": result.outcome.value,
            "reason": result.reason,
            "account": letter.account if letter else None,
            "forsendelse_id": letter.forsendelse_id if letter else None,
            "state": letter.state.value if letter else None,
        }
        if reply.kind in (ReplyKind.REFUSED, ReplyKind.FAILED):
            log.warning("archive.reply", message=clip(reply.message, 300), **fields)
        elif result.outcome is ReplyOutcome.KEPT and letter is None:
            log.warning("archive.reply_unmatched", **fields)
        else:
            log.info("archive.reply", reference=reply.reference or None, **fields)

    def archive_answered(self, archive: str, *, probe: bool = False) -> None:
        breaker = self.breakers.get(archive)
        if breaker is not None and breaker.success(trial=probe):
            self.metrics.archive_available.labels(archive).set(1)
            log.info("archive.available", archive=archive, by="probe" if probe else "letter")

    def archive_refused(self, archive: str, error: ArchiveError) -> None:
        breaker = self.breakers.get(archive)
        if breaker is None:
            return
        if breaker.failure():
            self.metrics.archive_available.labels(archive).set(0)
            log.error(
                "archive.unavailable",
                archive=archive,
                consecutive_failures=breaker.failures,
                probe_in_seconds=breaker.delay,
                error=str(error),
            )
        elif not breaker.available:
            log.warning(
                "archive.still_unavailable",
                archive=archive,
                probe_in_seconds=breaker.delay,
                error=str(error),
            )

    # --- receipts -------------------------------------------------------------------------

    def receipt(self, claim: Claim, kind: str, outcome: str) -> None:
        account = claim.letter.account
        if outcome == "gone":
            log.info(
                "forsendelse.receipt_gone",
                account=account,
                kind=kind,
                forsendelse_id=claim.letter.forsendelse_id,
            )
            outcome = "ok"
        elif outcome == "withheld":
            log.info(
                "forsendelse.receipt_withheld",
                account=account,
                kind=kind,
                forsendelse_id=claim.letter.forsendelse_id,
                reason="shadow mode (receipts = false)",
            )
        self.metrics.receipts.labels(account, kind, outcome).inc()

    def acknowledged(self, claim: Claim) -> None:
        account = claim.letter.account
        self.metrics.letters.labels(account, "acknowledged").inc()
        log.info(
            "forsendelse.acknowledged", account=account, forsendelse_id=claim.letter.forsendelse_id
        )

    def reported(self, claim: Claim, message: str) -> None:
        account = claim.letter.account
        self.metrics.letters.labels(account, "reported").inc()
        log.warning(
            "forsendelse.reported",
            account=account,
            forsendelse_id=claim.letter.forsendelse_id,
            message=message,
        )

    def temporary_report(self, claim: Claim, error: DaemonError | None) -> None:
        account = claim.letter.account
        outcome = "ok" if error is None else "failed"
        self.metrics.receipts.labels(account, "mottakFeilet", outcome).inc()
        if error is not None:
            log.warning(
                "forsendelse.temporary_report_failed",
                account=account,
                forsendelse_id=claim.letter.forsendelse_id,
                error=str(error),
            )

    # --- failures -------------------------------------------------------------------------

    def decided(
        self, claim: Claim, error: DaemonError, decision: Decision, outcome: Outcome
    ) -> None:
        fields = {
            **_fields(claim),
            "error_kind": error.kind,
            "error": str(error),
            "action": decision.action.value,
            "reason": decision.reason,
        }
        account = claim.letter.account
        if outcome is Outcome.LEASE_LOST:
            log.warning("forsendelse.lease_lost", **fields)
        elif outcome is Outcome.ACCOUNT_STOPPED:
            log.error("account.stopped", **fields)
        elif decision.action is Action.FAIL_PERMANENTLY and outcome is Outcome.REPORTED:
            self.metrics.letters.labels(account, "failed_permanently").inc()
            log.error("forsendelse.failed_permanently", **fields)
        else:
            self.metrics.retries.labels(account, error.kind).inc()
            self.metrics.letters.labels(account, "retry_scheduled").inc()
            emit = log.error if decision.alert else log.warning
            retry_at = decision.retry_at.isoformat() if decision.retry_at else None
            emit("forsendelse.retry_scheduled", retry_at=retry_at, **fields)

    def internal_error(self, claim: Claim, exc: BaseException) -> None:
        self.metrics.internal_errors.labels("pipeline").inc()
        log.error("forsendelse.internal_error", exc_info=exc, **_fields(claim))

    def released(self, claim: Claim, reason: str, error: DaemonError | None) -> None:
        letter = claim.letter
        if error is not None:
            log.warning("forsendelse.not_released", letter_id=letter.id, error=str(error))
        log.info("forsendelse.released", forsendelse_id=letter.forsendelse_id, reason=reason)
