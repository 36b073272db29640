"""Immutable records the ledger hands out and takes in. No SQL here."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any

from svarinn_daemon.ledger.states import SeenAction, State, Trigger, Work


@dataclass(frozen=True)
class Sighting:
    """One forsendelse as hentNyeForsendelser listed it; input to ``record_seen_many``.

    ``expected_sha256`` is filmetadata's sha256hash: None when SvarUt sent none, one string
    for one file, several for several files (then the download is a zip or a merged PDF and
    each hash is of a file inside it). Per-file hashes and sizes stay in ``raw`` as well.
    """

    forsendelse_id: str
    sender: str | None = None
    title: str | None = None
    declared_size: int | None = None
    expected_sha256: str | Sequence[str] | None = None
    raw: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class SeenResult:
    """What ``record_seen`` decided for one forsendelse id."""

    letter_id: int
    forsendelse_id: str
    action: SeenAction
    state: State


@dataclass(frozen=True)
class Letter:
    """One forsendelse as the ledger knows it."""

    id: int
    account: str
    forsendelse_id: str
    state: State
    sender: str | None
    title: str | None
    declared_size: int | None
    file_count: int
    expected_sha256: tuple[str, ...]
    actual_sha256: tuple[str, ...]
    actual_size: int | None
    verified: bool | None
    archive_ref: str | None
    attempts: int
    last_error_kind: str | None
    last_error_message: str | None
    claimed_by: str | None
    lease_expires_at: datetime | None
    next_attempt_at: datetime | None
    seen_at: datetime
    claimed_at: datetime | None
    archived_at: datetime | None
    acknowledged_at: datetime | None
    failed_at: datetime | None
    reported_at: datetime | None
    updated_at: datetime
    raw: Mapping[str, Any] = field(repr=False)
    failing_since: datetime | None = None  # the current run of failures began
    temporary_reported_at: datetime | None = None  # last mottakFeilet(permanent=false)

    def leased(self, now: datetime) -> bool:
        return (
            self.claimed_by is not None
            and self.lease_expires_at is not None
            and self.lease_expires_at > now
        )


@dataclass(frozen=True)
class Claim:
    """A lease on one letter. ``work`` says what the lease is for (see ``states``)."""

    letter: Letter
    work: Work
    worker_id: str
    lease_expires_at: datetime

    @property
    def id(self) -> int:
        return self.letter.id


@dataclass(frozen=True)
class LetterEvent:
    """One line of a letter's audit trail."""

    id: int
    letter_id: int
    at: datetime
    trigger: Trigger
    from_state: State | None
    to_state: State
    worker_id: str | None
    reason: str | None


@dataclass(frozen=True)
class StateCount:
    account: str
    state: State
    count: int


@dataclass(frozen=True)
class Backlog:
    """Counts per account and state, and the oldest letter not yet finished."""

    counts: tuple[StateCount, ...]
    oldest_unfinished: Letter | None
    oldest_age: timedelta | None
    now: datetime

    def total(self, state: State | None = None, account: str | None = None) -> int:
        return sum(
            c.count
            for c in self.counts
            if (state is None or c.state is state) and (account is None or c.account == account)
        )


@dataclass(frozen=True)
class AccountAlertFacts:
    """What the alert conditions need to know about one account's letters (counts only).

    ``pending`` counts letters neither acknowledged nor reported that were first seen at or
    before the pending cut-off; ``oldest_pending_seen_at`` is the first of them.
    ``reported_recently`` counts letters reported since the failure window's start;
    ``key_errors`` unfinished letters whose last error says no configured key fits;
    ``storage_errors`` those whose last error was our own disk (StorageError).
    """

    account: str
    pending: int = 0
    oldest_pending_seen_at: datetime | None = None
    failed_permanently: int = 0
    reported_recently: int = 0
    key_errors: int = 0
    storage_errors: int = 0


@dataclass(frozen=True)
class PollStatus:
    """One account's last poll. ``failing_since`` is the first failed poll after the last
    successful one (None while polls succeed); ``last_error_kind`` the last poll's error."""

    account: str
    last_polled_at: datetime
    last_ok_at: datetime | None
    failing_since: datetime | None
    last_error_kind: str | None

    @property
    def ok(self) -> bool:
        return self.failing_since is None
