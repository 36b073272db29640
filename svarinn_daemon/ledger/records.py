"""Immutable records the ledger hands out and takes in. No SQL here."""

from __future__ import annotations

import enum
import functools
import json
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
    each hash is of a file inside it). ``raw_json`` is the item exactly as the parsed model
    kept it (per-file hashes and sizes included); the ledger stores it, it does not read it.
    """

    forsendelse_id: str
    sender: str | None = None
    title: str | None = None
    declared_size: int | None = None
    expected_sha256: str | Sequence[str] | None = None
    file_count: int | None = None
    raw_json: str = "{}"
    api: str = "v1"  # the SvarInn API version that listed it
    archive: str | None = None  # the archive [[routes]] chose for it


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
    raw_text: str = field(repr=False)  # the item as listed, JSON (see ``raw``)
    failing_since: datetime | None = None  # the current run of failures began
    temporary_reported_at: datetime | None = None  # last mottakFeilet(permanent=false)
    receipt_withheld_at: datetime | None = None  # shadow mode: receipt held back since
    api: str = "v1"  # the SvarInn API version that listed it (raw is in its shape)
    archive: str | None = None  # the archive [[routes]] chose (None: not routed yet)
    download_attempts: int = 0  # downloads that came back corrupt
    found_done: str | None = None  # "archive" | "svarut": done elsewhere, not by this ledger
    found_done_at: datetime | None = None
    due_at: datetime | None = None  # when its work fell (or falls) due; claims go in this order
    sent_at: datetime | None = None  # last sent to an archive that answers later

    @functools.cached_property
    def raw(self) -> Mapping[str, Any]:
        """The item as listed, read from ``raw_text`` when first asked for: a letter's
        record is handed out by every verb, and only the import reads its item."""
        return MappingProxyType(json.loads(self.raw_text))

    @property
    def receipt_withheld(self) -> bool:
        """Archived (or failed) and its receipt held back: its account is in shadow mode."""
        return self.receipt_withheld_at is not None

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


class ReplyOutcome(enum.StrEnum):
    """What a reply from an archive that answers later did (``Ledger.record_reply``)."""

    APPLIED = "applied"  # it decided its letter
    KEPT = "kept"  # written down; it decides when its send is recorded or the lease ends
    DUPLICATE = "duplicate"  # recorded before, or the letter has moved on: nothing to do


@dataclass(frozen=True)
class ArchiveMessage:
    """One message a letter went to an archive that answers later as, and its reply."""

    message_id: str
    archive: str | None
    sent_at: datetime | None
    reply: str | None  # replies.ReplyKind's value, the most decisive one seen
    reply_at: datetime | None
    reference: str | None
    detail: str | None


@dataclass(frozen=True)
class ReplyResult:
    outcome: ReplyOutcome
    letter: Letter | None  # the letter after the reply, when its message is known
    reason: str


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
    oldest_unfinished: Letter | None  # not counting withheld receipts (shadow mode)
    oldest_age: timedelta | None
    now: datetime
    withheld: tuple[StateCount, ...] = ()  # of ``counts``: letters with the receipt withheld

    def total(self, state: State | None = None, account: str | None = None) -> int:
        return sum(
            c.count
            for c in self.counts
            if (state is None or c.state is state) and (account is None or c.account == account)
        )

    def total_withheld(self, account: str | None = None) -> int:
        return sum(c.count for c in self.withheld if account is None or c.account == account)
