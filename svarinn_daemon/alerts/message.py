"""What an alert says: the condition, its subject, the status and counts -- never a letter.

An alert goes to phones and chat rooms outside the archive's access control, so the record
holds only the account name, the condition, whole-number counts and the host name. Titles,
names, fødselsnumre and forsendelse contents have no field to go in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from svarinn_daemon.alerts.gsm7 import SMS_LENGTH, to_gsm7
from svarinn_daemon.config.model import Condition

__all__ = ["AlertMessage", "AlertStatus", "Condition"]


class AlertStatus(StrEnum):
    FIRING = "firing"
    REPEATING = "repeating"
    RESOLVED = "resolved"


_SUMMARY = {
    Condition.PENDING_TOO_LONG: "letters pending too long",
    Condition.PERMANENT_FAILURE: "letters failed permanently",
    Condition.AUTH_FAILING: "SvarInn login failing",
    Condition.POLLS_FAILING: "polls to SvarInn failing",
    Condition.NO_MATCHING_KEY: "letters no configured key can decrypt",
    Condition.STORAGE_FAILING: "the daemon cannot write its own temporary files",
    Condition.ARCHIVE_UNAVAILABLE: "an archive refuses letters; imports paused",
    Condition.TEST: "test message",
}

_ADVICE = {
    Condition.PENDING_TOO_LONG: "SvarUt sends unacknowledged letters on paper: check the "
    "daemon's log and the archive (awaiting_archive: sent to the archive over Fiks Arkiv, "
    "its kvittering has not come).",
    Condition.PERMANENT_FAILURE: "These letters were reported to SvarUt as failed and go by "
    "post; see the daemon's log for the reason.",
    Condition.AUTH_FAILING: "Check the account's username and password (SvarUt "
    "mottakersystem page).",
    Condition.POLLS_FAILING: "SvarInn cannot be reached or answers with errors.",
    Condition.NO_MATCHING_KEY: "A letter is encrypted for a certificate whose private key is "
    "not configured: add the key (key rotation?).",
    Condition.STORAGE_FAILING: "The state directory's disk is full, read-only or not "
    "writable: free space or fix its permissions; letters are retried meanwhile.",
    Condition.ARCHIVE_UNAVAILABLE: "The archive failed several letters in a row; the daemon "
    "probes it with growing delays and resumes by itself. Check the archive.",
    Condition.TEST: "Sent by 'svarinn-daemon alerts test'; no action needed.",
}


def _frozen_counts(counts: Mapping[str, int]) -> Mapping[str, int]:
    return MappingProxyType(dict(sorted(counts.items())))


@dataclass(frozen=True)
class AlertMessage:
    """One notification about one (condition, subject).

    ``subject`` identifies what the alert is about -- the account name, or a name the
    daemon chose (``"kommune"``, ``"all"``) -- and must never be personal data.
    ``counts`` are whole numbers such as ``{"letters": 3, "oldest_minutes": 130}``.
    """

    condition: Condition
    subject: str
    status: AlertStatus
    account: str | None
    host: str
    first_seen: datetime
    sent_at: datetime
    counts: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        object.__setattr__(self, "condition", Condition(self.condition))
        object.__setattr__(self, "status", AlertStatus(self.status))
        object.__setattr__(self, "counts", _frozen_counts(self.counts))

    @property
    def key(self) -> tuple[Condition, str]:
        return (self.condition, self.subject)

    def _counts_text(self) -> str:
        return ", ".join(f"{name}={value}" for name, value in self.counts.items())

    def title(self) -> str:
        where = f" {self.account}" if self.account else ""
        return f"[{self.status.upper()}] svarinn-daemon{where}: {_SUMMARY[self.condition]}"

    def long_text(self) -> str:
        """Several lines for chat and mail: what, where, since when, what to do."""
        lines = [self.title()]
        details = [f"condition: {self.condition}", f"subject: {self.subject}"]
        if self.account:
            details.append(f"account: {self.account}")
        if self.counts:
            details.append(f"counts: {self._counts_text()}")
        details.append(f"host: {self.host}")
        details.append(f"first seen: {_utc(self.first_seen)}")
        if self.status is AlertStatus.RESOLVED:
            details.append(f"resolved: {_utc(self.sent_at)}")
        lines.append("; ".join(details))
        if self.status is not AlertStatus.RESOLVED:
            lines.append(_ADVICE[self.condition])
        return "\n".join(lines)

    def short_text(self) -> str:
        """One SMS: GSM-7 only, at most 160 characters; account, condition, counts, host."""
        status = {"firing": "ALERT", "repeating": "STILL", "resolved": "OK"}[self.status]
        parts = [f"svarinn {status}", self.condition.value]
        if self.account:
            parts.append(self.account)
        if self.counts:
            parts.append(" ".join(f"{k}={v}" for k, v in self.counts.items()))
        parts.append(f"since {self.first_seen.astimezone(UTC):%d.%m %H:%M}Z")
        parts.append(f"host {self.host}")
        return to_gsm7(" ".join(parts), limit=SMS_LENGTH)

    def to_json(self) -> dict[str, Any]:
        """The webhook body's structured part (``text`` is what chat tools show)."""
        return {
            "text": self.long_text(),
            "summary": self.title(),
            "condition": self.condition.value,
            "status": self.status.value,
            "subject": self.subject,
            "account": self.account,
            "counts": dict(self.counts),
            "host": self.host,
            "first_seen": _iso(self.first_seen),
            "sent_at": _iso(self.sent_at),
        }


def _utc(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
