"""The two heavy stages of one letter, which the pipeline calls in order:

    download: client.download (stream) -> decode (CMS decrypt + sha256) -> spool (0600, fsync)
    archive:  verify (magic bytes, sha256, size, zip entries) -> adapter transaction -> commit

Each works in constant memory and beats :class:`~svarinn_daemon.letter.inflight.InFlight` as it
goes (a chunk, a document), so liveness can tell a large letter from a wedged one. Neither
touches the ledger: what a result means is the pipeline's to record.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from svarinn_daemon.adapters import begin_letter
from svarinn_daemon.common import Clock
from svarinn_daemon.letter.decode import decode
from svarinn_daemon.letter.events import PipelineEvents
from svarinn_daemon.letter.inflight import InFlight
from svarinn_daemon.letter.spool import Spool
from svarinn_daemon.letter.verify import ExpectedFile, VerificationResult, open_letter
from svarinn_daemon.letter.work import AccountRuntime
from svarinn_daemon.policies import VerifyPolicy
from svarinn_daemon.svarinn import Forsendelse
from svarinn_daemon.svarinn.normalised import normalised

__all__ = ["Downloaded", "Stages"]


@dataclass(frozen=True)
class Downloaded:
    """A letter's plaintext in the spool, with what decoding it measured."""

    path: Path
    sha256: str
    size: int
    encrypted: bool
    filename: str | None
    started: datetime


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
        """Stream, decrypt and hash into a spool file in one pass, in constant memory.
        ``between_chunks`` runs after every chunk (the pipeline renews the lease there)."""

        def tick() -> None:
            self.in_flight.check()
            between_chunks()

        started = self.clock()
        spool_file = self.spool.create(forsendelse.id)
        with (
            spool_file,
            self.events.stage(account.name, "download"),
            account.client.download(forsendelse) as body,
            self.in_flight.track(body),
        ):
            decoded = decode(
                body.iter_chunks(),
                keys=account.keys,
                plain_allowed=forsendelse.kryptert is False,
                write=spool_file.write,
                between_chunks=tick,
            )
            path = spool_file.finish()
            self.events.downloaded(account.name, body.bytes_received)
            filename = body.filename
        self.events.stage_took(account.name, "decrypt", decoded.decrypt_seconds)
        return Downloaded(path, decoded.sha256, decoded.size, decoded.encrypted, filename, started)

    def archive(
        self, account: AccountRuntime, forsendelse: Forsendelse, downloaded: Downloaded
    ) -> tuple[str, VerificationResult]:
        """Verify the plaintext against filmetadata and hand its documents to the adapter
        in one transaction; returns the archive's reference and the verification."""
        name = account.name
        expected = [
            ExpectedFile(f.filnavn or "dokument", f.mimetype, f.sha256hash, f.size)
            for f in forsendelse.filmetadata
        ]
        self.in_flight.check()
        work_dir = self.spool.workdir(forsendelse.id)
        try:
            with (
                self.events.stage(name, "verify"),
                open_letter(
                    downloaded.path,
                    sha256=downloaded.sha256,
                    size=downloaded.size,
                    expected=expected,
                    work_dir=work_dir,
                    policy=self.verify_policy,
                    fallback_name=downloaded.filename or "dokument",
                    container_zip=forsendelse.api == "v2",
                ) as contents,
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
            shutil.rmtree(work_dir, ignore_errors=True)
        return ref, result
