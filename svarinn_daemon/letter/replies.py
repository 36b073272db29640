"""An archive's reply, into the ledger: the step after "sent" for an archive that answers
later (Fiks Arkiv over Fiks IO).

The adapter's listener hands each reply here and confirms it to the broker only after this
returns, so a reply is confirmed only once its result is in the ledger. A failure reply that
makes the letter due again is given its retry time by the same rules as any other failure
(:func:`.retry.decide`), and counts against the archive's circuit breaker like one.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from svarinn_daemon.common import Clock, utc_now
from svarinn_daemon.errors import ArchiveError
from svarinn_daemon.ledger import Ledger, ReplyResult
from svarinn_daemon.letter.events import PipelineEvents
from svarinn_daemon.letter.retry import decide
from svarinn_daemon.policies import RetryPolicy
from svarinn_daemon.replies import ArchiveReply, ReplyKind

__all__ = ["ReplyHandler"]


@dataclass
class ReplyHandler:
    """``handler(reply)`` for one archive's listener. Raises only when the ledger does not
    answer: the reply is then not confirmed, and comes again."""

    ledger: Ledger
    archive: str
    events: PipelineEvents
    retry_policy: RetryPolicy = field(default_factory=RetryPolicy)
    clock: Clock = utc_now
    random: Callable[[], float] = random.random

    def __call__(self, reply: ArchiveReply) -> ReplyResult:
        error = self._error(reply)
        retry_at = None
        if error is not None and error.temporary:
            letter = self.ledger.letter_for_message(reply.in_reply_to)
            decision = decide(
                error,
                attempts=letter.attempts if letter is not None else 1,
                policy=self.retry_policy,
                now=self.clock(),
                last_temporary_report_at=None,
                failing_since=letter.failing_since if letter is not None else None,
                random=self.random,
            )
            retry_at = decision.retry_at
        result = self.ledger.record_reply(reply, retry_at=retry_at)
        self.events.replied(self.archive, reply, result)
        if error is not None and error.temporary:
            self.events.archive_refused(self.archive, error)
        elif reply.kind is ReplyKind.REGISTERED:
            self.events.archive_answered(self.archive)
        return result

    def _error(self, reply: ArchiveReply) -> ArchiveError | None:
        if reply.kind not in (ReplyKind.REFUSED, ReplyKind.FAILED):
            return None
        said = reply.message or "(no message)"
        return ArchiveError(
            f"{self.archive} answered {reply.kind.value}: {said}",
            temporary=not reply.permanent,
            loud=reply.loud,
        )
