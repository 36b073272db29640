"""What the pipeline tells the world, as one interface: the pipeline decides, others observe.

The pipeline calls these at each step; :class:`svarinn_daemon.service.observe.Observer`
turns them into Prometheus metrics, log lines and the archives' circuit breakers (the way
dramatiq keeps Prometheus in a middleware), and a test can record them instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Protocol

from svarinn_daemon.errors import ArchiveError, DaemonError
from svarinn_daemon.ledger import Claim, ReplyResult
from svarinn_daemon.letter.results import Outcome, PollResult
from svarinn_daemon.letter.retry import Decision
from svarinn_daemon.replies import ArchiveReply
from svarinn_daemon.svarinn.records import RejectedItem

__all__ = ["PipelineEvents", "ReceiptKind"]

ReceiptKind = str  # "kvitterMottak" | "mottakFeilet"


class PipelineEvents(Protocol):
    def stage(self, account: str, stage: str) -> AbstractContextManager[None]:
        """Times one stage (poll, download, verify, archive, receipt) of one account."""
        ...

    def stage_took(self, account: str, stage: str, seconds: float) -> None:
        """A stage timed elsewhere (decrypt, measured inside the decoder)."""
        ...

    def polled(self, result: PollResult, rejected: Sequence[RejectedItem]) -> None: ...

    def poll_failed(self, account: str, error: DaemonError) -> None: ...

    def downloaded(self, account: str, received: int) -> None:
        """``received`` encrypted bytes came in."""
        ...

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
        """The archive has the letter (``already``: it had it before this claim)."""
        ...

    def sent(self, claim: Claim, archive: str, message_id: str) -> None:
        """The letter went to an archive that answers later; it waits for the reply."""
        ...

    def replied(self, archive: str, reply: ArchiveReply, result: ReplyResult) -> None:
        """An archive's reply is in the ledger; ``result`` says what it did."""
        ...

    def archive_refused(self, archive: str, error: ArchiveError) -> None:
        """The archive failed temporarily, on a letter or a probe (the breaker counts these)."""
        ...

    def archive_answered(self, archive: str, *, probe: bool = False) -> None:
        """The archive took a letter or said it has one (``probe``: passed a probe without a
        letter): it works, and its breaker closes. Failures before the archive stage are
        neither this nor :meth:`archive_refused`."""
        ...

    def receipt(self, claim: Claim, kind: ReceiptKind, outcome: str) -> None:
        """``outcome``: ok, failed, gone (404: no longer listed, an earlier receipt's answer
        was lost or another importer answered), or withheld (shadow mode: not sent)."""
        ...

    def acknowledged(self, claim: Claim) -> None: ...

    def reported(self, claim: Claim, message: str) -> None: ...

    def temporary_report(self, claim: Claim, error: DaemonError | None) -> None:
        """mottakFeilet(permanent=false) was sent (``error`` None) or failed."""
        ...

    def decided(
        self, claim: Claim, error: DaemonError, decision: Decision, outcome: Outcome
    ) -> None:
        """A failure's decision is in the ledger (or, for a lost lease, nowhere)."""
        ...

    def internal_error(self, claim: Claim, exc: BaseException) -> None:
        """An exception nobody converted reached the pipeline (a bug); logged with its
        traceback while it is being handled."""
        ...

    def released(self, claim: Claim, reason: str, error: DaemonError | None) -> None:
        """The lease was given back (``error``: it could not be, the lease runs out)."""
        ...
