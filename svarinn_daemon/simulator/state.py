"""What the simulator saw and did, as frozen snapshots for tests and the JSON state API."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

__all__ = ["FailureReport", "RequestRecord", "SimulatorState"]


@dataclass(frozen=True)
class FailureReport:
    """One mottakFeilet call."""

    forsendelse_id: str
    feilmelding: str
    permanent: bool
    at: datetime


@dataclass(frozen=True)
class RequestRecord:
    """One request as the server saw it; ``authorization`` is whether the header was there."""

    method: str
    path: str
    endpoint: str  # list | download | acknowledge | report | v2_* | state | unknown
    forsendelse_id: str | None
    authorization: bool
    authenticated: bool
    user_agent: str | None
    status: int
    fault: str | None


@dataclass(frozen=True)
class SimulatorState:
    """A consistent snapshot of the simulator."""

    pending: tuple[str, ...]  # letters hentNyeForsendelser still lists
    acknowledged: Mapping[str, int]  # id -> number of kvitterMottak calls
    reports: tuple[FailureReport, ...]  # every mottakFeilet call, in order
    downloads: Mapping[str, int]  # id -> number of download requests
    requests: Mapping[str, int]  # endpoint -> number of requests
    faults_fired: Mapping[str, int]  # fault kind -> times it fired
    rejected_credentials: int  # requests answered 401 for missing or wrong credentials

    def reports_for(self, forsendelse_id: str) -> tuple[FailureReport, ...]:
        return tuple(r for r in self.reports if r.forsendelse_id == forsendelse_id)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["acknowledged"] = dict(self.acknowledged)
        data["downloads"] = dict(self.downloads)
        data["requests"] = dict(self.requests)
        data["faults_fired"] = dict(self.faults_fired)
        data["reports"] = [
            {**asdict(r), "at": r.at.isoformat(timespec="milliseconds")} for r in self.reports
        ]
        data["pending"] = list(self.pending)
        return data
