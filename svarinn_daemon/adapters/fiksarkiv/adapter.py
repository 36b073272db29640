"""The ``fiks-arkiv`` adapter: a letter sent to the kommune's archive as Fiks Arkiv's
``arkivmelding.opprett`` over Fiks IO, registered when the archive's kvittering says so.

At commit the one registration (``adapters/registration.py``) is spelled as
``arkivmelding.xml`` (``encode.py``), packed with the documents into an ASiC-E, encrypted to
the archive account's certificate from Fiks IO's catalogue and sent; the message id Fiks IO
gives it is what ``commit`` returns, and the letter waits (state ``sent``) for the reply. The
same letter always goes out with the same ``KlientMeldingId`` (a UUID derived from our account
and the forsendelse id), so an archive that got it before drops the copy.

Replies come on our own account's queue (:meth:`FiksArkivArchive.listen`): ``mottatt``,
then ``kvittering`` (registered) or a feilmelding. They are decrypted with our account's key
and become :class:`~svarinn_daemon.replies.ArchiveReply` facts; the ledger decides.
"""

from __future__ import annotations

import io
import tempfile
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TypeVar

import httpx

from svarinn_daemon.adapters.base import LetterOrigin
from svarinn_daemon.adapters.fiksarkiv import encode
from svarinn_daemon.adapters.registration import Registration
from svarinn_daemon.adapters.staging import StagedLetter
from svarinn_daemon.adapters.systems import RegisteringArchive, Rules
from svarinn_daemon.errors import ArchiveError, FiksIoError
from svarinn_daemon.fiksio.asice import AsiceWriter, read_asice
from svarinn_daemon.fiksio.client import FiksIoClient
from svarinn_daemon.fiksio.crypto import decrypt_bytes, encrypt_file
from svarinn_daemon.fiksio.messages import MessageSpec, ReceivedMessage
from svarinn_daemon.fiksio.receive import Receiver
from svarinn_daemon.keys import KeyPair
from svarinn_daemon.logs import get_logger
from svarinn_daemon.replies import ArchiveReply, ReplyKind

__all__ = ["MESSAGE_TYPES", "FiksArkivArchive", "FiksArkivSettings", "klientmelding_id"]

T = TypeVar("T")
log = get_logger(__name__)

OPPRETT = "no.ks.fiks.arkiv.v1.arkivering.arkivmelding.opprett"
MOTTATT = f"{OPPRETT}.mottatt"
KVITTERING = f"{OPPRETT}.kvittering"
UGYLDIG = "no.ks.fiks.arkiv.v1.feilmelding.ugyldigforespoersel"
SERVERFEIL = "no.ks.fiks.arkiv.v1.feilmelding.serverfeil"
IKKEFUNNET = "no.ks.fiks.arkiv.v1.feilmelding.ikkefunnet"
# Fiks IO's own: the message was given three times unacknowledged, or its TTL ran out.
FIKS_SERVERFEIL = "no.ks.fiks.kvittering.serverfeil.v1"
FIKS_TIDSAVBRUDD = "no.ks.fiks.kvittering.tidsavbrudd"
MESSAGE_TYPES = (MOTTATT, KVITTERING, UGYLDIG, SERVERFEIL, IKKEFUNNET)
PAYLOAD = "arkivmelding.xml"
KVITTERING_PAYLOAD = "arkivmelding-kvittering.xml"
REPLY_LIMIT = 16 * 1024 * 1024  # a reply is XML, never a document
NAMESPACE = uuid.UUID("6f1c3b1e-56a4-4b8e-9b0c-53a7c2f1d0aa")  # our KlientMeldingIds


@dataclass(frozen=True)
class FiksArkivSettings:
    konto_id: uuid.UUID
    mottaker_konto_id: uuid.UUID
    system: str
    fagsystem: str
    arkivdel: str | None
    ttl: timedelta
    reply_timeout: timedelta
    permanent_feil_ids: frozenset[str] = frozenset()


def klientmelding_id(konto_id: uuid.UUID, forsendelse_id: str) -> uuid.UUID:
    """The same letter from the same account always goes out under the same id."""
    return uuid.uuid5(NAMESPACE, f"{konto_id}/{forsendelse_id}")


class FiksArkivArchive(RegisteringArchive):
    """Sends letters as Fiks Arkiv messages; answers later (``AnswersLater``)."""

    def __init__(
        self,
        settings: FiksArkivSettings,
        client: FiksIoClient,
        receiver: Receiver,
        keys: Sequence[KeyPair],
        *,
        work_directory: Path,
        timeout: timedelta,
        rules: Rules,
        owner: str | None = None,
        secrets: Sequence[str] = (),
        http: httpx.Client | None = None,
    ):
        super().__init__(work_directory, timeout=timeout, rules=rules, deadline=0.0, owner=owner)
        self.settings = settings
        self.client = client
        self.receiver = receiver
        self.keys = tuple(keys)
        self.reply_timeout = settings.reply_timeout
        self._secrets = list(secrets)
        self._http = http

    def close(self) -> None:
        if self._http is not None:
            self._http.close()

    # -- the optional methods -----------------------------------------------------------

    def has(self, forsendelse_id: str) -> str | None:
        return None  # Fiks Arkiv answers later: the ledger knows what it said

    def has_from(self, origin: LetterOrigin | None, forsendelse_id: str) -> str | None:
        return None

    def probe(self) -> bool:
        """The catalogue answers us with the archive account's certificate."""
        self._fiks(lambda: self.client.public_key(self.settings.mottaker_konto_id))
        return True

    def secret_values(self) -> list[str]:
        return list(self._secrets)

    def warnings(self) -> list[str]:
        if self.settings.permanent_feil_ids:
            return []
        return [
            "fiks-arkiv has no permanent_feil_ids: a letter the archive refuses "
            "(ugyldigforespoersel) is retried loudly until an operator acts, never sent to paper"
        ]

    # -- sending ------------------------------------------------------------------------

    def register(self, reg: Registration, staged: StagedLetter) -> str:
        s = self.settings
        files = [doc.file for doc in reg.documents]
        xml = encode.arkivmelding(
            reg, system=s.system, fagsystem=s.fagsystem, arkivdel=s.arkivdel, files=files
        )
        asice = staged.home / "fiksio.asice"  # the letter's private directory
        sealed = staged.home / "fiksio.cms"
        try:
            with open(asice, "wb") as out, AsiceWriter(out) as writer:
                writer.add(PAYLOAD, io.BytesIO(xml), "application/xml")
                for doc in reg.documents:
                    with staged.open_file(doc.file) as stream:
                        writer.add(doc.file, stream, doc.mimetype)
            certificate = self._fiks(lambda: self.client.public_key(s.mottaker_konto_id))
            with open(sealed, "wb") as out:
                encrypt_file(asice, out, certificate)
            spec = MessageSpec(
                avsender_konto_id=s.konto_id,
                mottaker_konto_id=s.mottaker_konto_id,
                meldingtype=OPPRETT,
                ttl_seconds=int(s.ttl.total_seconds()),
                klientmelding_id=klientmelding_id(s.konto_id, reg.external_key),
                svar_pa_melding=None,
                headers={},
            )
            sent = self._fiks(lambda: self.client.send(spec, sealed))
        finally:
            asice.unlink(missing_ok=True)
            sealed.unlink(missing_ok=True)
        log.info(
            "archive.fiks_arkiv.sent",
            forsendelse_id=reg.external_key,
            melding_id=str(sent.melding_id),
            klientmelding_id=str(spec.klientmelding_id),
            documents=len(files),
        )
        return str(sent.melding_id)

    def _fiks(self, call: Callable[[], T]) -> T:
        try:
            return call()
        except FiksIoError as exc:
            raise ArchiveError(
                f"fiks-arkiv: {exc}", temporary=exc.temporary or exc.loud, loud=exc.loud
            ) from None

    # -- replies ------------------------------------------------------------------------

    def listen(
        self,
        on_reply: Callable[[ArchiveReply], None],
        stopping: threading.Event,
        on_state: Callable[[bool, str | None], None],
    ) -> None:
        def handle(message: ReceivedMessage, body: bytes) -> None:
            reply = self.reply(message, body)
            if reply is not None:
                on_reply(reply)

        self.receiver.run(handle, stopping, on_state)

    def reply(self, message: ReceivedMessage, body: bytes) -> ArchiveReply | None:
        """What a message on our queue says about a letter, or None (logged: nothing to do)."""
        kind = message.meldingtype
        if message.svar_til is None:
            log.warning("archive.fiks_arkiv.unanswered_type", meldingtype=kind[:200])
            return None
        to, reply_id = str(message.svar_til), str(message.melding_id)
        if kind == MOTTATT:
            return ArchiveReply(to, ReplyKind.RECEIVED, reply_id)
        if kind == KVITTERING:
            try:
                kvittering = encode.parse_kvittering(self._payload(body, KVITTERING_PAYLOAD))
            except (ArchiveError, FiksIoError) as exc:
                # Only a readable registreringKvittering says the archive has the letter: a
                # failed or unreadable one is retried (the archive answers Eksisterende if it
                # had it after all), loudly.
                return ArchiveReply(to, ReplyKind.FAILED, reply_id, message=str(exc), loud=True)
            return ArchiveReply(to, ReplyKind.REGISTERED, reply_id, kvittering.reference)
        if kind in (UGYLDIG, SERVERFEIL, IKKEFUNNET):
            try:
                xml: bytes | None = self._payload(body, None)
            except FiksIoError:
                xml = None
            feil = encode.parse_feilmelding(xml)
            said = f"{kind.rsplit('.', 1)[-1]}: {feil.melding or '(no text)'}"
            if feil.feil_id:
                said += f" (feilId {feil.feil_id})"
            if kind == UGYLDIG:
                permanent = bool(feil.feil_id) and feil.feil_id in self.settings.permanent_feil_ids
                return ArchiveReply(
                    to, ReplyKind.REFUSED, reply_id, message=said, permanent=permanent, loud=True
                )
            return ArchiveReply(
                to, ReplyKind.FAILED, reply_id, message=said, loud=kind == IKKEFUNNET
            )
        if kind in (FIKS_SERVERFEIL, FIKS_TIDSAVBRUDD):
            return ArchiveReply(
                to, ReplyKind.FAILED, reply_id, message=f"Fiks IO: {kind} (not delivered)"
            )
        log.warning("archive.fiks_arkiv.unknown_reply", meldingtype=kind[:200], in_reply_to=to)
        return None

    def _payload(self, body: bytes, name: str | None) -> bytes:
        """The one XML file of a reply's encrypted ASiC-E (``name``: that file, else the
        first that is not the manifest)."""
        if not body:
            raise FiksIoError("the reply has no payload", temporary=False)
        plain = decrypt_bytes(body, self.keys, limit=REPLY_LIMIT)
        return read_asice_file(plain, name, self.staging.root)


def read_asice_file(container: bytes, name: str | None, work: Path) -> bytes:
    """One file of a small ASiC-E held in memory, read through a private temporary directory."""
    with tempfile.TemporaryDirectory(dir=work, prefix=".reply-") as tmp:
        path = Path(tmp) / "reply.asice"
        path.write_bytes(container)
        entries = read_asice(path, Path(tmp), max_entries=20, max_size=REPLY_LIMIT)
        for entry in entries:
            if name is None or entry.name == name:
                return entry.path.read_bytes()
    raise FiksIoError(f"the reply's container has no {name or 'file'}", temporary=False)
