"""The base of the adapters that register a letter in an archive system (GI-Arkiv, Public 360,
Noark 5): what their delivery has in common, written once.

At commit the letter's ``forsendelse.json`` is read back from its work directory, the wait
after an unanswered call is honoured (:class:`~archive_http.Settling`), the one registration
is built (``registration.py``) and the subclass's :meth:`RegisteringArchive.register` spells
it in its system's calls; any temporary failure starts the wait again for that letter and
makes the adapter look the archive's cases up again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from svarinn_daemon.adapters.archive_http import Settling
from svarinn_daemon.adapters.base import LetterOrigin
from svarinn_daemon.adapters.registration import TEMPORARY, Registration, registration
from svarinn_daemon.adapters.staged import StagedArchive
from svarinn_daemon.adapters.staging import METADATA_FILE, StagedLetter
from svarinn_daemon.common import Clock, utc_now
from svarinn_daemon.errors import ArchiveError

__all__ = ["DEFAULT_SAMLESAK", "RegisteringArchive", "Rules"]

DEFAULT_SAMLESAK = "SvarInn {year}"


@dataclass(frozen=True)
class Rules:
    """How a letter is registered, whatever the system: the journalpost's status, the
    collection case's title template, the system's title limit."""

    journalstatus: str = TEMPORARY
    samlesak: str = DEFAULT_SAMLESAK
    title_limit: int = 255


class RegisteringArchive(StagedArchive):
    """A :class:`StagedArchive` whose delivery is one registration; a subclass writes
    :meth:`register` (and ``has_from``, ``lookup``)."""

    def __init__(
        self,
        work_directory: Path,
        *,
        timeout: timedelta,
        rules: Rules,
        deadline: float,
        owner: str | None = None,
        now: Clock = utc_now,
    ):
        super().__init__(work_directory, timeout=timeout, owner=owner, now=now)
        self.rules = rules
        self.settling = Settling(deadline)

    def register(self, reg: Registration, staged: StagedLetter) -> str:
        """Register the letter (or complete what an earlier attempt began); return the
        archive's reference."""
        raise NotImplementedError

    def forget(self) -> None:
        """Drop what the adapter remembers of the archive (the arkivdel, collection cases):
        after a failure it is looked up again, so a case closed or renamed in the archive
        never needs a restart."""

    def deliver(self, origin: LetterOrigin | None, staged: StagedLetter) -> str:
        staged.check_in_place()
        with staged.open_file(METADATA_FILE) as stream:
            record = json.load(stream)
        key = staged.forsendelse_id
        self.settling.check(key)
        try:
            reg = registration(
                record.get("forsendelse") or {},
                record.get("documents") or [],
                journalstatus=self.rules.journalstatus,
                title_limit=self.rules.title_limit,
                samlesak=self.rules.samlesak,
                today=self._now().date(),
            )
            return self.register(reg, staged)
        except ArchiveError as exc:
            if exc.temporary:
                self.settling.failed(key)
                self.forget()
            raise
