"""Plain records the pipeline and the daemon pass between them."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from svarinn_daemon.adapters import ArchiveAdapter, LetterOrigin
from svarinn_daemon.errors import AuthenticationError, DaemonError
from svarinn_daemon.keys import KeyPair
from svarinn_daemon.ledger import Sighting
from svarinn_daemon.svarinn import Forsendelse
from svarinn_daemon.svarinn.api import SvarInnApi


class Outcome(StrEnum):
    """What became of one claim."""

    ACKNOWLEDGED = "acknowledged"
    REPORTED = "reported"
    RETRY_SCHEDULED = "retry_scheduled"
    RELEASED = "released"
    ACCOUNT_STOPPED = "account_stopped"
    LEASE_LOST = "lease_lost"


@dataclass(frozen=True)
class AccountRuntime:
    """What the pipeline needs per account, built once at start."""

    name: str
    client: SvarInnApi  # SvarInn MottakService v1 over HTTP, or any other implementation
    adapter: ArchiveAdapter
    keys: tuple[KeyPair, ...]
    archive: str  # the [archives.NAME] its letters go to
    api: str = "v1"  # the SvarInn API version its client speaks (told to adapters)

    @property
    def origin(self) -> LetterOrigin:
        return LetterOrigin(self.name, self.api)


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


def sighting(forsendelse: Forsendelse) -> Sighting:
    """What the ledger writes down when a forsendelse is listed: only what SvarInn said."""
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
    )
