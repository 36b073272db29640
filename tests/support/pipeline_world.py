"""The pipeline tests' world: an in-memory SvarInn, the memory archive, a real ledger and
a Recorder of every event, with the account, workers and retry policy they share."""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from svarinn_daemon.adapters.memory import MemoryArchive
from svarinn_daemon.errors import ArchiveError, DaemonError, ServiceUnavailableError
from svarinn_daemon.keys import KeyPair
from svarinn_daemon.ledger import Claim, Ledger, State, Work
from svarinn_daemon.letter.account import AccountRuntime
from svarinn_daemon.letter.pipeline import Pipeline
from svarinn_daemon.letter.results import Outcome, PollResult
from svarinn_daemon.letter.retry import Action, Decision
from svarinn_daemon.letter.spool import Spool
from svarinn_daemon.policies import RetryPolicy
from svarinn_daemon.testing import FakeClock, InMemorySvarInn, make_key_pair

ACCOUNT = "kommune"
W = "worker-a"
OTHER = "worker-b"
LEASE = timedelta(minutes=5)
POLICY = RetryPolicy(max_download_attempts=2)


@functools.cache
def receiver(label: str) -> KeyPair:
    return make_key_pair(label)


@dataclass(frozen=True)
class Event:
    name: str
    args: Mapping[str, Any]


@dataclass
class Recorder:
    """A PipelineEvents that writes down every call, in order."""

    events: list[Event] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def _add(self, name: str, **args: Any) -> None:
        with self.lock:
            self.events.append(Event(name, args))

    def named(self, name: str) -> list[Mapping[str, Any]]:
        with self.lock:
            return [e.args for e in self.events if e.name == name]

    def names(self) -> list[str]:
        with self.lock:
            return [e.name for e in self.events if e.name not in ("stage", "stage_took")]

    def decisions(self) -> list[tuple[str, Action, Outcome]]:
        return [
            (d["error"].kind, d["decision"].action, d["outcome"]) for d in self.named("decided")
        ]

    @contextmanager
    def stage(self, account: str, stage: str) -> Iterator[None]:
        self._add("stage", account=account, stage=stage)
        yield

    def stage_took(self, account: str, stage: str, seconds: float) -> None:
        self._add("stage_took", account=account, stage=stage, seconds=seconds)

    def polled(self, result: PollResult, rejected: Any) -> None:
        self._add("polled", result=result, rejected=tuple(rejected))

    def poll_failed(self, account: str, error: DaemonError) -> None:
        self._add("poll_failed", account=account, error=error)

    def downloaded(self, account: str, received: int) -> None:
        self._add("downloaded", account=account, received=received)

    def archived(self, claim: Claim, archive: str, ref: str, **facts: Any) -> None:
        self._add("archived", claim=claim, archive=archive, ref=ref, **facts)

    def sent(self, claim: Claim, archive: str, message_id: str) -> None:
        self._add("sent", claim=claim, archive=archive, message_id=message_id)

    def replied(self, archive: str, reply: Any, result: Any) -> None:
        self._add("replied", archive=archive, reply=reply, result=result)

    def archive_refused(self, archive: str, error: ArchiveError) -> None:
        self._add("archive_refused", archive=archive, error=error)

    def archive_answered(self, archive: str, *, probe: bool = False) -> None:
        self._add("archive_answered", archive=archive, probe=probe)

    def receipt(self, claim: Claim, kind: str, outcome: str) -> None:
        self._add("receipt", claim=claim, kind=kind, outcome=outcome)

    def acknowledged(self, claim: Claim) -> None:
        self._add("acknowledged", claim=claim)

    def reported(self, claim: Claim, message: str) -> None:
        self._add("reported", claim=claim, message=message)

    def temporary_report(self, claim: Claim, error: DaemonError | None) -> None:
        self._add("temporary_report", claim=claim, error=error)

    def decided(
        self, claim: Claim, error: DaemonError, decision: Decision, outcome: Outcome
    ) -> None:
        self._add("decided", claim=claim, error=error, decision=decision, outcome=outcome)

    def internal_error(self, claim: Claim, exc: BaseException) -> None:
        self._add("internal_error", claim=claim, exc=exc)

    def released(self, claim: Claim, reason: str, error: DaemonError | None) -> None:
        self._add("released", claim=claim, reason=reason, error=error)


@dataclass
class World:
    ledger: Ledger
    clock: FakeClock
    svarinn: InMemorySvarInn
    archive: MemoryArchive
    events: Recorder
    spool: Spool

    def pipeline(
        self,
        worker_id: str = W,
        policy: RetryPolicy = POLICY,
        account: AccountRuntime | None = None,
    ) -> Pipeline:
        return Pipeline(
            ledger=self.ledger,
            accounts={ACCOUNT: account or self.svarinn.account(self.archive, name=ACCOUNT)},
            spool=self.spool,
            events=self.events,
            worker_id=worker_id,
            lease=LEASE,
            retry_policy=policy,
            clock=self.clock,
            random=lambda: 0.0,  # no jitter: delays are exact
        )

    def claim(self, pipeline: Pipeline, work: Work = Work.IMPORT) -> Claim:
        (claim,) = pipeline.claim()
        assert claim.work is work
        return claim

    def state(self, claim: Claim) -> State:
        letter = self.ledger.get(claim.id)
        assert letter is not None
        return letter.state


def unavailable() -> ServiceUnavailableError:
    return ServiceUnavailableError("SvarInn answered 503", status_code=503)


def make_world(ledger: Ledger, clock: FakeClock, tmp_path: Path) -> World:
    """The in-memory SvarInn and archive, a fresh spool, a Recorder, around ``ledger``."""
    spool = Spool(tmp_path / "spool")
    spool.prepare()
    svarinn = InMemorySvarInn(tmp_path / "svarinn", key_pair=receiver("svarinn"))
    return World(ledger, clock, svarinn, MemoryArchive(), Recorder(), spool)
