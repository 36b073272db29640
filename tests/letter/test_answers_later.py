"""An archive that answers later (Fiks Arkiv's shape) through the real pipeline and ledger:
the letter is *sent*, SvarInn hears nothing until the archive's reply says it registered it,
and every other reply (or none) leads where the rules say. The archive here is the memory
archive told to answer later; the Fiks IO tests drive the real adapter."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta

from svarinn_daemon.adapters.memory import MemoryArchive
from svarinn_daemon.ledger import ReplyOutcome, State, Trigger, Work
from svarinn_daemon.letter.replies import ReplyHandler
from svarinn_daemon.letter.results import Outcome
from svarinn_daemon.replies import ArchiveReply, ReplyKind
from tests.support.pipeline_world import ACCOUNT, POLICY, World

TIMEOUT = timedelta(minutes=20)


class LaterArchive(MemoryArchive):
    """Takes the letter, answers later: ``commit`` returns the message id it went out as
    (a new one each time, as Fiks IO gives), ``has`` never knows."""

    reply_timeout = TIMEOUT

    def __init__(self) -> None:
        super().__init__()
        self.sent = 0

    def has(self, forsendelse_id: str) -> str | None:
        return None

    def _store(self, letter: object) -> str:
        super()._store(letter)  # type: ignore[arg-type]
        self.sent += 1
        return f"message-{self.sent}"

    def listen(
        self,
        on_reply: Callable[[ArchiveReply], None],
        stopping: threading.Event,
        on_state: Callable[[bool, str | None], None],
    ) -> None:
        stopping.wait()


def _world(world: World) -> tuple[World, LaterArchive]:
    archive = LaterArchive()
    world.archive = archive
    return world, archive


def _sent(world: World) -> int:
    pipeline = world.pipeline()
    pipeline.poll(ACCOUNT)
    claim = world.claim(pipeline)
    assert pipeline.process(claim) is Outcome.SENT
    return claim.id


def _reply(world: World, kind: ReplyKind, to: str = "message-1", **fields: object) -> object:
    handler = ReplyHandler(
        world.ledger, "default", world.events, POLICY, world.clock, random=lambda: 0.0
    )
    return handler(ArchiveReply(in_reply_to=to, kind=kind, **fields))  # type: ignore[arg-type]


def test_sent_then_registered_then_acknowledged(world: World) -> None:
    world, archive = _world(world)
    letter = world.svarinn.add_letter()
    letter_id = _sent(world)
    recorded = world.ledger.get(letter_id)
    assert recorded is not None
    assert (recorded.state, recorded.next_attempt_at) == (State.SENT, world.clock.now + TIMEOUT)
    assert recorded.actual_sha256 == (letter.files[0].sha256,)  # what was checked is kept
    assert world.svarinn.acknowledged == {}  # SvarInn hears nothing yet
    assert world.events.named("sent")[0]["message_id"] == "message-1"

    result = _reply(world, ReplyKind.REGISTERED, reference="2026/17")
    assert result.outcome is ReplyOutcome.APPLIED  # type: ignore[attr-defined]
    pipeline = world.pipeline()
    claim = world.claim(pipeline, Work.ACKNOWLEDGE)
    assert pipeline.process(claim) is Outcome.ACKNOWLEDGED
    assert world.svarinn.acknowledged == {letter.id: 1}
    done = world.ledger.get(letter_id)
    assert done is not None
    assert (done.state, done.archive_ref) == (State.ACKNOWLEDGED, "2026/17")
    assert archive.sent == 1


def test_no_reply_in_time_sends_it_again(world: World) -> None:
    world, archive = _world(world)
    world.svarinn.add_letter()
    letter_id = _sent(world)
    pipeline = world.pipeline()
    assert pipeline.claim() == ()
    world.clock.advance(TIMEOUT)
    claim = world.claim(pipeline, Work.IMPORT)
    assert pipeline.process(claim) is Outcome.SENT
    assert archive.sent == 2
    # the first message's kvittering still counts
    _reply(world, ReplyKind.REGISTERED, to="message-1", reference="2026/18")
    letter = world.ledger.get(letter_id)
    assert letter is not None
    assert letter.state is State.ARCHIVED
    assert [m.message_id for m in world.ledger.archive_messages(letter_id)] == [
        "message-1",
        "message-2",
    ]


def test_a_server_failure_retries_and_a_refusal_goes_to_paper(world: World) -> None:
    world, _archive = _world(world)
    world.svarinn.add_letter()
    letter_id = _sent(world)
    _reply(world, ReplyKind.FAILED, message="serverfeil: database")
    letter = world.ledger.get(letter_id)
    assert letter is not None
    assert letter.state is State.RETRY_SCHEDULED
    assert letter.next_attempt_at == world.clock.now + POLICY.base_delay
    assert world.events.named("archive_refused")  # it counts for the archive's breaker

    world.clock.advance(POLICY.base_delay)
    pipeline = world.pipeline()
    assert pipeline.process(world.claim(pipeline, Work.IMPORT)) is Outcome.SENT
    _reply(world, ReplyKind.REFUSED, to="message-2", message="ugyldig", permanent=True)
    claim = world.claim(pipeline, Work.REPORT)
    assert pipeline.process(claim) is Outcome.REPORTED
    [report] = world.svarinn.reports
    assert report.permanent
    triggers = [e.trigger for e in world.ledger.events(letter_id)]
    assert Trigger.FAIL in triggers
    assert Trigger.SEND in triggers


def test_a_loud_refusal_is_retried_never_sent_to_paper(world: World) -> None:
    world, _archive = _world(world)
    world.svarinn.add_letter()
    letter_id = _sent(world)
    _reply(world, ReplyKind.REFUSED, message="ukjent arkivdel", loud=True)
    letter = world.ledger.get(letter_id)
    assert letter is not None
    assert letter.state is State.RETRY_SCHEDULED
    assert world.svarinn.reports == ()
