"""The contract between the pipeline and an archive: what an adapter must do, nothing more.

The pipeline drives one letter through an adapter like this::

    ref = adapter.has(forsendelse_id)          # already archived (a crash after commit)?
    if ref is None:
        tx = adapter.begin(forsendelse_id, forsendelse_json)
        try:
            for document in verified_documents:  # one at a time, streamed from the zip
                tx.add_document(document.name, document.path, document.metadata)
            ref = tx.commit(verification_record)
        except BaseException:
            tx.abort()
            raise

The forsendelse id is the idempotency key: ``has`` and ``commit`` must both return the
existing reference instead of storing a letter a second time, because the daemon can crash
after the archive has a letter but before the ledger says so.

Adapters raise only :class:`~svarinn_daemon.errors.ArchiveError` and say per error whether
retrying can help (``temporary``). A permanent error sends the letter on to paper, so use it
only when this letter can never be stored.

Beside the required methods, an adapter may have any of the optional ones, each a
runtime-checkable Protocol below that the daemon tests with ``isinstance`` and the shipped
contract checks (``svarinn_daemon.testing``) exercise: ``probe`` (:class:`ProbingAdapter`),
``has_from``/``begin_from`` (:class:`OriginLookup`, :class:`OriginBegin`), ``warnings``
(:class:`AdvisingAdapter`), ``secret_values`` (:class:`SecretHolder`) and ``timeout``
(:class:`TimedAdapter`), ``reply_timeout``/``listen`` (:class:`AnswersLater`: an archive
that registers a letter after the call, Fiks Arkiv). An adapter that hands a whole letter on
at commit subclasses
:class:`~svarinn_daemon.adapters.staged.StagedArchive` and writes only its delivery step.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO, Protocol, TypeGuard, runtime_checkable

from svarinn_daemon.errors import ArchiveError, ConfigError
from svarinn_daemon.replies import ArchiveReply

__all__ = [
    "AdapterContext",
    "AdapterFactory",
    "AdvisingAdapter",
    "AnswersLater",
    "ArchiveAdapter",
    "ArchiveTransaction",
    "DocumentMetadata",
    "LetterOrigin",
    "OriginBegin",
    "OriginLookup",
    "ProbingAdapter",
    "SecretHolder",
    "TimedAdapter",
    "VerificationRecord",
    "answers_later",
    "begin_letter",
    "has_letter",
    "probe_archive",
    "probe_by_lookup",
    "timeout_past_lease",
]


@dataclass(frozen=True)
class DocumentMetadata:
    """What the daemon knows about one document of a letter, beside its bytes.

    ``filmetadata_name`` is the filmetadata entry it was checked against (None when no entry
    matched); ``verified`` is true only when a declared sha256 matched.
    """

    mimetype: str | None
    sha256: str
    size: int
    verified: bool
    filmetadata_name: str | None = None
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "mimetype": self.mimetype,
            "sha256": self.sha256,
            "size": self.size,
            "verified": self.verified,
            "filmetadata_name": self.filmetadata_name,
            "note": self.note,
        }


@dataclass(frozen=True)
class LetterOrigin:
    """Where a letter came from: the account and the SvarInn API version it was read with."""

    account: str
    api: str = "v1"


@dataclass(frozen=True)
class VerificationRecord:
    """The daemon's account of a letter's download and checks, stored with the letter.
    ``sha256`` is the decrypted download's, or None for a SvarInn V2 ZIP unpacked as it
    streamed: filer[] describes only its files, and each document carries its own."""

    sha256: str | None
    size: int
    verified: bool
    file_type: str
    encrypted: bool
    downloaded_at: datetime
    verified_at: datetime
    notes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "sha256": self.sha256,
            "size": self.size,
            "verified": self.verified,
            "file_type": self.file_type,
            "encrypted": self.encrypted,
            "downloaded_at": self.downloaded_at.isoformat(),
            "verified_at": self.verified_at.isoformat(),
            "notes": list(self.notes),
        }


@runtime_checkable
class ArchiveTransaction(Protocol):
    """One letter on its way into the archive; invisible to archive users until commit."""

    def add_document(self, name: str, content: Path | BinaryIO, metadata: DocumentMetadata) -> str:
        """Store one document and return the name it is stored under.

        ``name`` is the name inside the letter (a zip entry path or a filnavn), unsanitised.
        ``content`` is a file path or a readable binary stream; read it in chunks, never
        whole. A path is only valid during the call: copy or hard-link it, never move or
        change it. Its data is not fsynced (the daemon's spool is temporary): an adapter
        that keeps the file itself (a hard link) fsyncs it before its commit returns, as
        it fsyncs a copy.
        """
        ...

    def commit(self, verification: VerificationRecord) -> str:
        """Make the letter visible in the archive and return its reference.

        If the letter is already there (another attempt got there first), return the
        existing reference and store nothing.
        """
        ...

    def abort(self) -> None:
        """Throw away everything this transaction stored. Safe to call twice or after commit
        (then it does nothing); it never raises for cleanup problems."""
        ...


@runtime_checkable
class ArchiveAdapter(Protocol):
    """An archive the daemon hands verified letters to. Must be safe to use from threads."""

    def has(self, forsendelse_id: str) -> str | None:
        """The reference of the already archived letter, or None."""
        ...

    def begin(self, forsendelse_id: str, metadata: Mapping[str, Any]) -> ArchiveTransaction:
        """Start storing a letter. ``metadata`` is the forsendelse as JSON, in one shape
        whichever SvarInn version listed it (``svarinn/normalised.py``; docs/svarinn.md,
        "SvarInn V2"), with the item exactly as SvarInn sent it under ``raw``."""
        ...

    def cleanup(self, older_than: timedelta) -> int:
        """Remove leftovers of interrupted transactions that are not in progress in this
        process; return how many were removed. Called at the daemon's start, when nothing
        of this worker (``AdapterContext.worker_id``) can be in progress any more: its own
        leftovers go whatever their age, other workers' only once older than
        ``older_than`` (they may still be writing)."""
        ...

    def close(self) -> None:
        """Release connections or handles; the adapter is not used afterwards."""
        ...


@dataclass(frozen=True)
class AdapterContext:
    """What an adapter factory gets beside its options.

    ``base_dir`` is where relative paths in options are resolved (the config file's
    directory), ``state_directory`` the daemon's own directory. ``worker_id`` is the
    daemon's ``[daemon] worker_id`` (None outside the daemon): an adapter can tag its
    temporary state with it, so that a restarted worker knows its leftovers at once.
    """

    archive_name: str
    state_directory: Path
    base_dir: Path
    source: Path | None = None
    worker_id: str | None = None

    def option_key(self, key: str) -> str:
        return f"archives.{self.archive_name}.{key}"

    def option_error(self, key: str, message: str) -> ConfigError:
        """A ConfigError naming the file and ``archives.NAME.KEY``."""
        return ConfigError(
            message, source=str(self.source) if self.source else None, key=self.option_key(key)
        )


@runtime_checkable
class ProbingAdapter(Protocol):
    """An adapter that can tell whether its archive works without a letter. While an
    archive's circuit breaker is open, the daemon probes it with this instead of risking a
    letter, so a letter that fails for reasons of its own never holds the archive paused."""

    def probe(self) -> bool:
        """True when the archive would take a letter now; False when this adapter cannot
        tell without a letter (a letter is the probe then). Raises a temporary
        :class:`~svarinn_daemon.errors.ArchiveError` when it would not. Stores nothing."""
        ...


@runtime_checkable
class OriginLookup(Protocol):
    """An adapter that wants to know where a letter came from when asked about it (the
    ``command`` adapter hands the account and API to its ``check_command``)."""

    def has_from(self, origin: LetterOrigin | None, forsendelse_id: str) -> str | None:
        """As :meth:`ArchiveAdapter.has`, told the letter's origin (None: not known)."""
        ...


@runtime_checkable
class OriginBegin(Protocol):
    """An adapter that wants to know where a letter came from when storing it."""

    def begin_from(
        self, origin: LetterOrigin | None, forsendelse_id: str, metadata: Mapping[str, Any]
    ) -> ArchiveTransaction:
        """As :meth:`ArchiveAdapter.begin`, told the letter's origin (None: not known)."""
        ...


@runtime_checkable
class AdvisingAdapter(Protocol):
    """An adapter with advice for the operator, printed by ``check-config``."""

    def warnings(self) -> list[str]:
        """What the operator should know about this archive's configuration."""
        ...


@runtime_checkable
class SecretHolder(Protocol):
    """An adapter holding credentials of its own: the daemon's log redactor hides them, in
    case the archive echoes one in an answer that reaches an error."""

    def secret_values(self) -> list[str]:
        """Every secret string, in every form it may appear in."""
        ...


@runtime_checkable
class TimedAdapter(Protocol):
    """An adapter whose calls have a ``timeout``: it must fit the daemon's lease."""

    timeout: timedelta


@runtime_checkable
class AnswersLater(Protocol):
    """An archive that registers a letter after the call and says so in a reply of its own
    (Fiks Arkiv over Fiks IO). Its ``commit`` returns the id of the message the letter went
    out as: the letter is *sent*, not archived, and SvarInn hears nothing until the reply
    that says the archive registered it. A letter with no reply within ``reply_timeout`` is
    sent again; the adapter must make the archive drop the second copy (the same message
    key for the same letter)."""

    reply_timeout: timedelta

    def listen(
        self,
        on_reply: Callable[[ArchiveReply], None],
        stopping: threading.Event,
        on_state: Callable[[bool, str | None], None],
    ) -> None:
        """Receive replies until ``stopping`` is set, reconnecting after any failure. Each
        reply is handed to ``on_reply`` and confirmed to its sender only after that returns;
        when it raises, the reply is left to come again. Never raises for a broken
        connection or a malformed reply (those are logged, and a malformed one confirmed).
        ``on_state(connected, why)`` is told each connect and disconnect."""
        ...


def timeout_past_lease(adapter: ArchiveAdapter, lease: timedelta) -> str | None:
    """Why an adapter's ``timeout`` does not fit the lease, or None. A call that may run
    past the lease would outlive it when the daemon dies mid-call: another worker could take
    the letter over while the first call still runs."""
    if not isinstance(adapter, TimedAdapter):
        return None
    timeout = adapter.timeout
    if isinstance(timeout, timedelta) and timeout > lease:
        from svarinn_daemon.config.units import format_duration

        return (
            f"{format_duration(timeout)} is longer than [daemon] lease "
            f"({format_duration(lease)}): make it shorter than the lease"
        )
    return None


def probe_by_lookup(lookup: Callable[[str], str | None], what: str) -> bool:
    """A probe through the archive's own "do you have it?" question, for an id no letter can
    have: a working archive answers "no". An archive that claims to have it is answering
    something else (a catch-all front end, a script that always exits 0): that is a
    temporary error naming the misconfiguration, never a working archive."""
    probe_id = f"svarinn-probe-{secrets.token_hex(8)}"
    ref = lookup(probe_id)
    if ref is not None:
        raise ArchiveError(
            f"{what} says it has {probe_id}, an id made up for the probe: it does not "
            "answer whether a letter is archived (check its configuration)",
            temporary=True,
        )
    return True


def probe_archive(adapter: ArchiveAdapter) -> bool:
    """``adapter.probe()`` where the adapter has one; False (ask a letter) otherwise."""
    if isinstance(adapter, ProbingAdapter):
        return adapter.probe()
    return False


class AdapterFactory(Protocol):
    """What an entry point in ``svarinn_daemon.archive_adapters`` must load to."""

    def __call__(self, options: Mapping[str, Any], context: AdapterContext) -> ArchiveAdapter: ...


# isinstance() against a runtime_checkable Protocol walks all of the protocol's members at
# every call (17 µs here). These run for every letter, so they look at the members they need;
# the answer is the same for adapters, whose members are methods and settings.


def _looks_up_origin(adapter: object) -> TypeGuard[OriginLookup]:
    return callable(getattr(adapter, "has_from", None))


def _begins_from_origin(adapter: object) -> TypeGuard[OriginBegin]:
    return callable(getattr(adapter, "begin_from", None))


def answers_later(adapter: object) -> TypeGuard[AnswersLater]:
    """``isinstance(adapter, AnswersLater)``, for every letter."""
    return callable(getattr(adapter, "listen", None)) and hasattr(adapter, "reply_timeout")


def has_letter(adapter: ArchiveAdapter, forsendelse_id: str, origin: LetterOrigin) -> str | None:
    """``adapter.has``, or ``adapter.has_from(origin, id)`` when the adapter wants to know
    where the letter came from (the ``command`` adapter hands it to its program)."""
    if _looks_up_origin(adapter):
        return adapter.has_from(origin, forsendelse_id)
    return adapter.has(forsendelse_id)


def begin_letter(
    adapter: ArchiveAdapter,
    forsendelse_id: str,
    metadata: Mapping[str, Any],
    origin: LetterOrigin,
) -> ArchiveTransaction:
    """``adapter.begin``, or ``adapter.begin_from(origin, id, metadata)`` when it has one."""
    if _begins_from_origin(adapter):
        return adapter.begin_from(origin, forsendelse_id, metadata)
    return adapter.begin(forsendelse_id, metadata)
