"""What an archive that answers later said about a letter it was sent: the facts passed from
an adapter's reply source (Fiks Arkiv over Fiks IO) to the ledger, as data.

An adapter that delivers asynchronously gets a message id for each letter it sends; its
replies name that id (``in_reply_to``). The ledger matches them to letters and decides; the
kinds are the outcomes a decision needs, not any protocol's words.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["ArchiveReply", "ReplyKind"]


class ReplyKind(enum.StrEnum):
    RECEIVED = "received"  # the archive has the message, not yet registered (mottatt)
    REGISTERED = "registered"  # registered: the archive has the letter (kvittering)
    REFUSED = "refused"  # the archive will not register it as sent (ugyldigforespoersel)
    FAILED = "failed"  # the archive failed (serverfeil) or could not find what it needed


@dataclass(frozen=True)
class ArchiveReply:
    """One reply. ``reference`` is the archive's own reference (REGISTERED); ``message`` what
    it said; ``permanent`` true only when sending the same letter again can never help (a
    refusal about this letter's content); ``loud`` when a person must act (configuration)."""

    in_reply_to: str  # the message id the letter was sent with
    kind: ReplyKind
    reply_id: str = ""  # the reply's own message id (for the log and duplicates)
    reference: str = ""
    message: str = ""
    permanent: bool = False
    loud: bool = False

    @property
    def final(self) -> bool:
        return self.kind is not ReplyKind.RECEIVED
