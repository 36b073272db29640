"""Adapters that hand a whole letter on at commit: gather it, then one delivery step.

A program (``command``), an endpoint (``http``) and the archive systems' interfaces all
take a letter in one go, with its record, once it is verified. What they share is written
once here: the letter is gathered in a private work directory (``adapters/staging.py``),
``forsendelse.json`` written at commit, the delivery step run, the directory removed
whatever the outcome. A new adapter of this kind subclasses :class:`StagedArchive` and
writes :meth:`StagedArchive.deliver` (and :meth:`StagedArchive.has_from` when its archive
can be asked about a letter), plus its options: its transactions, leftovers, probe and
contract come with the base.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any, BinaryIO

from svarinn_daemon.adapters.base import (
    DocumentMetadata,
    LetterOrigin,
    VerificationRecord,
    probe_by_lookup,
)
from svarinn_daemon.adapters.staging import StagedLetter, StagingArea
from svarinn_daemon.common import Clock, utc_now
from svarinn_daemon.errors import ArchiveError

__all__ = ["Deliver", "StagedArchive", "StagedTransaction"]

# The delivery step: hand the staged letter (its forsendelse.json written) to the archive
# and return the archive's reference; raise ArchiveError saying whether a retry can help.
Deliver = Callable[[StagedLetter], str]


class StagedTransaction:
    """One letter gathered in a work directory; ``commit`` writes its record and delivers
    it. The directory is removed at commit or abort, whatever the outcome."""

    def __init__(
        self,
        staged: StagedLetter,
        metadata: Mapping[str, Any],
        deliver: Deliver,
        now: Clock = utc_now,
    ):
        self.staged = staged
        self.forsendelse_id = staged.forsendelse_id
        self.metadata = dict(metadata)
        self._deliver = deliver
        self._now = now

    def _check_open(self) -> None:
        if self.staged.removed:
            raise ArchiveError(
                f"transaction for {self.forsendelse_id} is already finished", temporary=True
            )

    def add_document(self, name: str, content: Path | BinaryIO, metadata: DocumentMetadata) -> str:
        self._check_open()
        return self.staged.add(name, content, metadata)

    def commit(self, verification: VerificationRecord) -> str:
        self._check_open()
        try:
            self.staged.write_record(self.metadata, verification, self._now())
            return self._deliver(self.staged)
        finally:
            self.staged.remove()

    def abort(self) -> None:
        self.staged.remove()


class StagedArchive:
    """Base of the adapters that gather a letter and hand it on whole at commit.

    A subclass writes :meth:`deliver`; where its archive can answer "do you have this
    letter?", :meth:`has_from` and :attr:`lookup` too (then ``probe`` asks it about an id no
    letter has, and the contract checks that a committed letter is found). ``timeout``
    bounds each call to the archive and must fit the daemon's lease."""

    # What answers has(), named in the probe's error ("status_url"); None: nothing does.
    lookup: str | None = None

    def __init__(
        self,
        work_directory: Path,
        *,
        timeout: timedelta,
        owner: str | None = None,
        now: Clock = utc_now,
    ):
        self.staging = StagingArea(work_directory, owner=owner)
        self.timeout = timeout
        self._now = now

    def deliver(self, origin: LetterOrigin | None, staged: StagedLetter) -> str:
        """Hand the staged letter to the archive; return its reference. Called once per
        commit, after ``forsendelse.json`` is written; the letter is removed afterwards."""
        raise NotImplementedError

    def has(self, forsendelse_id: str) -> str | None:
        return self.has_from(None, forsendelse_id)

    def has_from(self, origin: LetterOrigin | None, forsendelse_id: str) -> str | None:
        """The archive's reference for the letter, or None; without a way to ask, None."""
        return None

    def probe(self) -> bool:
        """Ask about an id no letter has, expecting "not archived"; without a way to ask,
        only a letter can tell (False)."""
        if self.lookup is None:
            return False
        return probe_by_lookup(self.has, self.lookup)

    def begin(self, forsendelse_id: str, metadata: Mapping[str, Any]) -> StagedTransaction:
        return self.begin_from(None, forsendelse_id, metadata)

    def begin_from(
        self, origin: LetterOrigin | None, forsendelse_id: str, metadata: Mapping[str, Any]
    ) -> StagedTransaction:
        staged = self.staging.stage(forsendelse_id)
        return StagedTransaction(
            staged, metadata, lambda letter: self.deliver(origin, letter), self._now
        )

    def warnings(self) -> list[str]:
        """What ``check-config`` should tell the operator about this archive."""
        return []

    def cleanup(self, older_than: timedelta) -> int:
        return self.staging.cleanup(older_than)

    def close(self) -> None:
        """Nothing to release in the base: each letter ends with its transaction."""
