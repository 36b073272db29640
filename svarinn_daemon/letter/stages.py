"""The two heavy stages of one letter, which the pipeline calls in order:

    download: client.download (stream) -> decode (CMS decrypt + sha256) -> spool (0600)
    archive:  verify (magic bytes, sha256, size, zip entries) -> adapter transaction -> commit

A SvarInn V2 letter, always a ZIP, is unpacked while it downloads instead (``unzip.py``): its
entries are checked and written to their own files as the bytes stream, and the archive
stage hands them over. An entry that cannot be read that way (``NotStreamable``) sends the
letter down the spool path, downloaded again.

Each works in constant memory and beats :class:`~svarinn_daemon.letter.inflight.InFlight` as it
goes (a chunk, a document), so liveness can tell a large letter from a wedged one. Neither
touches the ledger: what a result means is the pipeline's to record.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from svarinn_daemon.adapters import begin_letter
from svarinn_daemon.common import Clock
from svarinn_daemon.letter.account import AccountRuntime
from svarinn_daemon.letter.decode import Decoded, decode
from svarinn_daemon.letter.events import PipelineEvents
from svarinn_daemon.letter.inflight import InFlight
from svarinn_daemon.letter.spool import Spool
from svarinn_daemon.letter.unzip import NotStreamable, StreamedLetter, StreamingUnzip
from svarinn_daemon.letter.verify import (
    ExpectedFile,
    LetterContents,
    VerificationResult,
    open_letter,
)
from svarinn_daemon.logs import get_logger
from svarinn_daemon.policies import VerifyPolicy
from svarinn_daemon.svarinn import Forsendelse
from svarinn_daemon.svarinn.normalised import normalised

__all__ = ["Downloaded", "Stages"]

log = get_logger(__name__)


@dataclass(frozen=True)
class Downloaded:
    """A letter's plaintext in the spool (``path``), or a V2 letter already unpacked and
    checked (``unpacked``), with what decoding it measured."""

    path: Path | None
    sha256: str | None  # the plaintext's; None for a V2 ZIP unpacked as it came (see hashes)
    size: int
    encrypted: bool
    filename: str | None
    started: datetime
    unpacked: StreamedLetter | None = None

    @property
    def hashes(self) -> tuple[str, ...]:
        """What was measured, as the ledger keeps it: the plaintext's sha256, or a streamed
        V2 ZIP's documents' (the container itself is not hashed: filer[] describes only its
        files)."""
        if self.sha256 is not None:
            return (self.sha256,)
        return self.unpacked.hashes if self.unpacked is not None else ()

    def discard(self) -> None:
        """Remove what the download left on our disk."""
        if self.path is not None:
            self.path.unlink(missing_ok=True)
        if self.unpacked is not None:
            shutil.rmtree(self.unpacked.work_dir, ignore_errors=True)


def expected_files(forsendelse: Forsendelse) -> list[ExpectedFile]:
    """filmetadata (v1) or filer[] (V2), as far as verification cares."""
    return [
        ExpectedFile(f.filnavn or "dokument", f.mimetype, f.sha256hash, f.size)
        for f in forsendelse.filmetadata
    ]


@dataclass(frozen=True)
class Stages:
    spool: Spool
    in_flight: InFlight
    events: PipelineEvents
    verify_policy: VerifyPolicy
    clock: Clock

    def download(
        self, account: AccountRuntime, forsendelse: Forsendelse, between_chunks: Callable[[], None]
    ) -> Downloaded:
        """Stream, decrypt and hash in one pass, in constant memory: into a spool file, or
        for V2 straight into the checked entries. ``between_chunks`` runs after every chunk
        (the pipeline renews the lease there)."""
        if forsendelse.api == "v2":
            try:
                return self._download_unpacked(account, forsendelse, between_chunks)
            except NotStreamable as why:
                log.info("download.spooled", forsendelse_id=forsendelse.id, reason=str(why))
        return self._download_spooled(account, forsendelse, between_chunks)

    def _download_spooled(
        self, account: AccountRuntime, forsendelse: Forsendelse, between_chunks: Callable[[], None]
    ) -> Downloaded:
        spool_file = self.spool.create(forsendelse.id)
        with spool_file:
            return self._download(
                account,
                forsendelse,
                between_chunks,
                spool_file.write,
                lambda _decoded: (spool_file.finish(), None),
            )

    def _download_unpacked(
        self, account: AccountRuntime, forsendelse: Forsendelse, between_chunks: Callable[[], None]
    ) -> Downloaded:
        unzip = StreamingUnzip(
            expected_files(forsendelse),
            self.verify_policy,
            self.spool.workdir(forsendelse.id),
        )
        try:
            return self._download(
                account,
                forsendelse,
                between_chunks,
                unzip.write,
                lambda decoded: (None, unzip.finish(size=decoded.size)),
                hash_plaintext=False,  # each entry is hashed as it is written
            )
        except BaseException:
            unzip.discard()
            raise

    def _download(
        self,
        account: AccountRuntime,
        forsendelse: Forsendelse,
        between_chunks: Callable[[], None],
        write: Callable[[memoryview], None],
        finish: Callable[[Decoded], tuple[Path | None, StreamedLetter | None]],
        *,
        hash_plaintext: bool = True,
    ) -> Downloaded:
        def tick() -> None:
            self.in_flight.check()
            between_chunks()

        started = self.clock()
        with (
            self.events.stage(account.name, "download"),
            account.client.download(forsendelse) as body,
            self.in_flight.track(body),
        ):
            decoded = decode(
                body.iter_chunks(),
                keys=account.keys,
                plain_allowed=forsendelse.kryptert is False,
                write=write,
                between_chunks=tick,
                hash_plaintext=hash_plaintext,
            )
            path, unpacked = finish(decoded)
            self.events.downloaded(account.name, body.bytes_received)
            filename = body.filename
        self.events.stage_took(account.name, "decrypt", decoded.decrypt_seconds)
        return Downloaded(
            path, decoded.sha256, decoded.size, decoded.encrypted, filename, started, unpacked
        )

    def archive(
        self, account: AccountRuntime, forsendelse: Forsendelse, downloaded: Downloaded
    ) -> tuple[str, VerificationResult]:
        """Verify the plaintext against filmetadata (a V2 letter unpacked while it downloaded
        is already) and hand its documents to the adapter in one transaction; returns the
        archive's reference and the verification."""
        name = account.name
        self.in_flight.check()
        made: list[Path] = []

        def work_dir() -> Path:
            """Made when a zip entry is first unpacked: most letters never need one."""
            if not made:
                made.append(self.spool.workdir(forsendelse.id))
            return made[0]

        try:
            with (
                self.events.stage(name, "verify"),
                self._contents(forsendelse, downloaded, work_dir) as contents,
                self.events.stage(name, "archive"),
            ):
                result = contents.result
                # One shape whichever SvarInn version listed it, the item as received in "raw".
                transaction = begin_letter(
                    account.adapter, forsendelse.id, normalised(forsendelse), account.origin
                )
                try:
                    for document in contents.documents():
                        transaction.add_document(document.name, document.path, document.metadata)
                        self.in_flight.beat()
                    ref = transaction.commit(
                        result.record(
                            encrypted=downloaded.encrypted,
                            downloaded_at=downloaded.started,
                            verified_at=self.clock(),
                        )
                    )
                except BaseException:
                    transaction.abort()
                    raise
        finally:
            for path in made:
                shutil.rmtree(path, ignore_errors=True)
        return ref, result

    def _contents(
        self, forsendelse: Forsendelse, downloaded: Downloaded, work_dir: Callable[[], Path]
    ) -> AbstractContextManager[LetterContents | StreamedLetter]:
        if downloaded.unpacked is not None:
            return downloaded.unpacked
        assert downloaded.path is not None  # spooled, so hashed whole
        assert downloaded.sha256 is not None
        return open_letter(
            downloaded.path,
            sha256=downloaded.sha256,
            size=downloaded.size,
            expected=expected_files(forsendelse),
            work_dir=work_dir,
            policy=self.verify_policy,
            fallback_name=downloaded.filename or "dokument",
            container_zip=forsendelse.api == "v2",
        )
