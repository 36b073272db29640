"""The fiks-arkiv adapter against a local Fiks IO on a real RabbitMQ broker and a local
archive that validates every arkivmelding against KS's published XSD: send, replies, faults."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from svarinn_daemon.adapters import AdapterContext
from svarinn_daemon.adapters.fiksarkiv import FiksArkivArchive, create_adapter
from svarinn_daemon.errors import ArchiveError, ConfigError
from svarinn_daemon.replies import ArchiveReply, ReplyKind
from svarinn_daemon.testing import check_adapter_contract
from tests.conftest import SHARED, need_shared
from tests.support import archive_letters
from tests.support.fakes.fiksarkiv import LocalFiksArkiv
from tests.support.fakes.fiksio import LocalFiksIo
from tests.support.fiks_world import FiksSide, fiks_side
from tests.support.persons import fnr

pytestmark = pytest.mark.rabbitmq
SPECS = SHARED / "specs" / "fiks-arkiv" / "V1"


@pytest.fixture
def archive(fiksio: LocalFiksIo) -> Iterator[LocalFiksArkiv]:
    schemas = need_shared(SPECS, "Fiks Arkiv's XSDs")
    with LocalFiksArkiv(fiksio, schemas) as running:
        yield running


@pytest.fixture
def side(fiksio: LocalFiksIo, archive: LocalFiksArkiv, tmp_path: Path) -> FiksSide:
    return fiks_side(fiksio, archive, tmp_path / "etc")


_made: list[FiksArkivArchive] = []


@pytest.fixture(autouse=True)
def _close() -> Iterator[None]:
    yield
    while _made:
        _made.pop().close()


def make(side: FiksSide, tmp_path: Path, **options: Any) -> FiksArkivArchive:
    values = {k: v for k, v in {**side.options, **options}.items() if k != "adapter"}
    adapter = create_adapter(values, AdapterContext("fiks", tmp_path / "state", tmp_path))
    _made.append(adapter)
    return adapter


class Replies:
    """The adapter's listener in a thread, every reply collected."""

    def __init__(self, adapter: FiksArkivArchive):
        self.got: list[ArchiveReply] = []
        self.states: list[bool] = []
        self.stopping = threading.Event()
        self._thread = threading.Thread(
            target=adapter.listen, args=(self.got.append, self.stopping, self._state)
        )

    def _state(self, up: bool, why: str | None) -> None:
        self.states.append(up)

    def __enter__(self) -> Replies:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self._thread.join(20)
        assert not self._thread.is_alive()

    def wait(self, to: str, kind: ReplyKind, timeout: float = 30.0) -> ArchiveReply:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for reply in list(self.got):
                if reply.in_reply_to == to and reply.kind is kind:
                    return reply
            time.sleep(0.05)
        raise AssertionError(f"no {kind.value} reply to {to}; got {self.got}")


def test_the_shipped_contract(side: FiksSide, tmp_path: Path) -> None:
    check_adapter_contract(lambda d: make(side, d), tmp_path / "contract")


def test_a_letter_is_sent_received_and_registered_once(
    side: FiksSide, archive: LocalFiksArkiv, tmp_path: Path
) -> None:
    adapter = make(side, tmp_path)
    with Replies(adapter) as replies:
        message = archive_letters.send(adapter, "f-1")
        assert replies.wait(message, ReplyKind.RECEIVED).reply_id
        registered = replies.wait(message, ReplyKind.REGISTERED)
        assert registered.reference.startswith(f"{time.gmtime().tm_year}/1 (systemID ")
        [post] = archive.journalposter.values()
        assert post.key == ("svarinn-daemon", "f-1")
        assert post.title == "Søknad om løyve"
        assert [(role, content) for role, _, content in post.documents] == [
            ("H", archive_letters.DOCS[0][1]),
            ("V", archive_letters.DOCS[1][1]),
        ]
        assert post.parties == ["Byggmester AS"]
        assert archive.invalid == []
        # sent again (no kvittering in time, say): the archive drops the copy
        again = archive_letters.send(adapter, "f-1")
        assert again != message
        assert replies.wait(again, ReplyKind.REGISTERED).reference == registered.reference
    assert len(archive.journalposter) == 1
    sent = side.fiksio.messages_of("no.ks.fiks.arkiv.v1.arkivering.arkivmelding.opprett")
    keys = {m.klientmelding_id for m in sent if m.avsender == side.konto_id}
    assert len(keys) == 1  # the same KlientMeldingId both times
    assert adapter.has("f-1") is None  # the ledger knows, not the adapter


def test_a_persons_identity_number_is_sent_nowhere(
    side: FiksSide, archive: LocalFiksArkiv, tmp_path: Path
) -> None:
    number = fnr("030390200")
    adapter = make(side, tmp_path)
    person = {"navn": "Kari Nordmann", "fodselsnummer": number, "adresselinjer": ["Veien 2"]}
    with Replies(adapter) as replies:
        message = archive_letters.send(
            adapter, "f-2", {"tittel": f"Søknad fra {number}"}, sender=person
        )
        replies.wait(message, ReplyKind.REGISTERED)
    [post] = archive.journalposter.values()
    assert number.encode() not in post.xml
    assert number not in post.title


def test_lost_and_duplicated_messages(
    side: FiksSide, archive: LocalFiksArkiv, tmp_path: Path
) -> None:
    adapter = make(side, tmp_path)
    with Replies(adapter) as replies:
        archive.lose = 1
        lost = archive_letters.send(adapter, "f-3")
        time.sleep(1.0)
        assert [r for r in replies.got if r.in_reply_to == lost] == []  # never answered
        side.fiksio.duplicate = 1  # the next message reaches the archive twice
        again = archive_letters.send(adapter, "f-3")
        replies.wait(again, ReplyKind.REGISTERED)
        deadline = time.monotonic() + 10
        while (
            len([r for r in replies.got if r.in_reply_to == again]) < 4
        ):  # 2 x (mottatt, kvittering)
            assert time.monotonic() < deadline, replies.got
            time.sleep(0.05)
    assert len(archive.journalposter) == 1


def test_the_listener_outlives_a_broker_restart_and_refused_logins(
    side: FiksSide, archive: LocalFiksArkiv, tmp_path: Path
) -> None:
    adapter = make(side, tmp_path)
    adapter.receiver.settings = type(adapter.receiver.settings)(
        **{**adapter.receiver.settings.__dict__, "reconnect_first": 0.2, "reconnect_max": 1.0}
    )
    with Replies(adapter) as replies:
        archive_letters.send(adapter, "f-4")  # a first letter: the listener is connected
        deadline = time.monotonic() + 20
        while True not in replies.states:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert side.fiksio.broker is not None
        side.fiksio.refuse_logins = 2  # two logins after the restart are refused
        side.fiksio.broker.restart()
        message = archive_letters.send(adapter, "f-5")
        replies.wait(message, ReplyKind.REGISTERED, timeout=60)
    assert replies.states.count(True) >= 2  # connected, lost, connected again
    assert any("refused (injected)" in r for r in side.fiksio.refused)


def test_refusals_and_server_failures_become_facts(
    side: FiksSide, archive: LocalFiksArkiv, tmp_path: Path
) -> None:
    adapter = make(side, tmp_path, permanent_feil_ids=["UGYLDIG_FILFORMAT"])
    with Replies(adapter) as replies:
        archive.refuse = ["UGYLDIG_FILFORMAT", "UKJENT_ARKIVDEL"]
        first = replies.wait(archive_letters.send(adapter, "f-6"), ReplyKind.REFUSED)
        assert (first.permanent, first.loud) == (True, True)
        assert "UGYLDIG_FILFORMAT" in first.message
        second = replies.wait(archive_letters.send(adapter, "f-7"), ReplyKind.REFUSED)
        assert (second.permanent, second.loud) == (False, True)
        archive.serverfeil = 1
        failed = replies.wait(archive_letters.send(adapter, "f-8"), ReplyKind.FAILED)
        assert not failed.permanent
        assert "databasen" in failed.message
        archive.registrering_feilet = 1  # a kvittering, but one that says it failed
        feilet = replies.wait(archive_letters.send(adapter, "f-13"), ReplyKind.FAILED)
        assert (feilet.permanent, feilet.loud) == (False, True)
        assert "arkivdelen er lukket" in feilet.message
        assert [r for r in replies.got if r.kind is ReplyKind.REGISTERED] == []


def test_refused_credentials_are_loud_and_name_no_secret(side: FiksSide, tmp_path: Path) -> None:
    wrong = tmp_path / "wrong-passord"
    wrong.write_text("feil\n")
    adapter = make(side, tmp_path, integrasjon_passord_file=str(wrong))
    with pytest.raises(ArchiveError) as caught:
        archive_letters.send(adapter, "f-9")
    assert caught.value.retry.value == "loudly"
    assert side.password not in str(caught.value)
    assert "feil" not in str(caught.value).split(":")[-1]


def test_an_unknown_receiver_account_is_loud(side: FiksSide, tmp_path: Path) -> None:
    adapter = make(side, tmp_path, mottaker_konto_id="00000000-0000-0000-0000-0000000000ff")
    with pytest.raises(ArchiveError, match="knows no account") as caught:
        adapter.probe()
    assert caught.value.retry.value == "loudly"


@pytest.mark.parametrize(
    ("option", "value", "says"),
    [
        ("konto_id", "not-a-uuid", "UUID"),
        ("amqp_url", "amqp://io.fiks.ks.no:5671", "amqps"),
        ("amqp_url", "amqps://user:pw@io.fiks.ks.no:5671", "credentials"),
        ("ttl", "1m", "kvittering_timeout"),
        ("environment", "staging", "environment"),
    ],
)
def test_options_are_checked(
    side: FiksSide, tmp_path: Path, option: str, value: str, says: str
) -> None:
    with pytest.raises(ConfigError, match=says):
        make(side, tmp_path, **{option: value})


def test_a_connection_closed_as_at_token_expiry_is_opened_with_a_fresh_token(
    side: FiksSide, tmp_path: Path
) -> None:
    fiksio = side.fiksio
    lifetime, fiksio.token_lifetime = fiksio.token_lifetime, 31  # valid for us 1 s (30 s margin)
    try:
        adapter = make(side, tmp_path)
        settings = adapter.receiver.settings
        adapter.receiver.settings = type(settings)(**{**settings.__dict__, "reconnect_first": 0.2})
        with Replies(adapter) as replies:
            deadline = time.monotonic() + 20
            while adapter.receiver.connections < 1:
                assert time.monotonic() < deadline
                time.sleep(0.05)
            time.sleep(1.2)  # our token has expired for us
            assert fiksio.broker is not None
            fiksio.broker.close_connections("token expired")
            while adapter.receiver.connections < 2:
                assert time.monotonic() < deadline, fiksio.refused
                time.sleep(0.05)
            message = archive_letters.send(adapter, "f-10")
            replies.wait(message, ReplyKind.REGISTERED)
        with fiksio.lock:
            ours = [c for c, _ in fiksio.tokens.values() if c == side.client_id]
        assert len(ours) >= 2  # the reconnect asked Maskinporten for a new token
    finally:
        fiksio.token_lifetime = lifetime


def test_replies_over_tls_verified_against_the_ca_bundle(
    side: FiksSide, archive: LocalFiksArkiv, tmp_path: Path
) -> None:
    broker = side.fiksio.broker
    assert broker is not None
    assert broker.tls is not None
    adapter = make(
        side, tmp_path, amqp_url=side.fiksio.amqps_url, ca_bundle=str(broker.tls.ca_certificate)
    )
    with Replies(adapter) as replies:
        message = archive_letters.send(adapter, "f-11")
        replies.wait(message, ReplyKind.REGISTERED)
    # without the CA the broker's certificate is refused: no reply is ever read
    untrusting = make(side, tmp_path / "other", amqp_url=side.fiksio.amqps_url)
    with Replies(untrusting) as refused:
        message = archive_letters.send(untrusting, "f-12")
        time.sleep(2.0)
        assert refused.got == []
        assert True not in refused.states
