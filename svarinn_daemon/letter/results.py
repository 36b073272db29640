"""What the pipeline reports back: the outcome of a claim, the result of a poll, and the
sighting a listed letter becomes in the ledger."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from svarinn_daemon.errors import AuthenticationError, DaemonError
from svarinn_daemon.ledger import Sighting
from svarinn_daemon.svarinn import Forsendelse

__all__ = ["Outcome", "PollResult", "sighting"]


class Outcome(StrEnum):
    """What became of one claim."""

    ACKNOWLEDGED = "acknowledged"
    SENT = "sent"  # to an archive that answers later: its reply decides
    REPORTED = "reported"
    WITHHELD = "withheld"  # archived (or failed), receipt withheld: shadow mode
    RETRY_SCHEDULED = "retry_scheduled"
    RELEASED = "released"
    ACCOUNT_STOPPED = "account_stopped"
    LEASE_LOST = "lease_lost"


@dataclass(frozen=True)
class PollResult:
    account: str
    ok: bool
    listed: int = 0
    new: int = 0
    again: int = 0
    rejected: int = 0  # listed items that could not be read
    error: DaemonError | None = None

    @property
    def auth_failed(self) -> bool:
        return isinstance(self.error, AuthenticationError)


def sighting(forsendelse: Forsendelse, archive: str | None = None) -> Sighting:
    """What the ledger writes down when a forsendelse is listed: what SvarInn said, and the
    archive its route chose (so claims can pass over the letters of a paused archive)."""
    hashes = [f.sha256hash for f in forsendelse.filmetadata if f.sha256hash]
    sizes = [f.size for f in forsendelse.filmetadata if f.size]
    sender = forsendelse.avsender.navn if forsendelse.avsender else None
    return Sighting(
        forsendelse_id=forsendelse.id,
        sender=sender,
        title=forsendelse.tittel,
        declared_size=sum(sizes) if sizes else None,
        expected_sha256=hashes or None,
        file_count=len(forsendelse.filmetadata),
        raw_json=forsendelse.raw_json(),
        api=forsendelse.api,
        archive=archive,
    )
