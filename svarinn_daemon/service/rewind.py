"""Noticing that the ledger went back in time: restored from an older backup, or a failover
that lost the last commits.

The newest row of the audit trail (its id, letter and time: an id alone may be handed out
again after a failover) is mirrored into ``<state_directory>/ledger-mark.json`` as the daemon
goes. A ledger that no longer holds the row the file names has forgotten what came after
it: that is logged loudly (``ledger.rewound``) and counted. Nothing is trusted blindly
meanwhile anyway: every import asks the archive first whether it has the letter (the
forgotten ones are found there and only acknowledged), and a receipt SvarUt answers with
404 counts as sent. A different ledger than the file names is the operator's choice.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from svarinn_daemon.errors import LedgerUnavailableError
from svarinn_daemon.ledger import Ledger
from svarinn_daemon.logs import get_logger
from svarinn_daemon.service.metrics import Metrics

__all__ = ["MARK_FILE", "RewindWatch"]

MARK_FILE = "ledger-mark.json"
log = get_logger(__name__)


@dataclass(frozen=True)
class _Mark:
    ledger: str
    event_id: int
    letter_id: int
    at: str  # ISO 8601, as the ledger returned it

    def time(self) -> datetime:
        return datetime.fromisoformat(self.at)


class RewindWatch:
    def __init__(self, ledger: Ledger, state_directory: Path, ledger_name: str, metrics: Metrics):
        self.ledger = ledger
        self.path = state_directory / MARK_FILE
        self.name = ledger_name
        self.metrics = metrics
        self._written: _Mark | None = None

    def check(self) -> bool:
        """Compare the ledger with the mark, then mark where it is now; True when it went
        back. A ledger that does not answer is checked at the next turn."""
        try:
            rewound = self._compare(self._read())
            newest = self.ledger.newest_event()
        except LedgerUnavailableError:
            return False
        if newest is not None:
            event_id, letter_id, at = newest
            self._write(_Mark(self.name, event_id, letter_id, at.isoformat()))
        return rewound

    def _compare(self, mark: _Mark | None) -> bool:
        if mark is None:
            return False
        if mark.ledger != self.name:
            log.info("ledger.changed", marked=mark.ledger, now=self.name)
            return False
        if self.ledger.has_event(mark.event_id, mark.letter_id, mark.time()):
            return False
        newest = self.ledger.newest_event()
        log.error(
            "ledger.rewound",
            marked_event=mark.event_id,
            marked_at=mark.at,
            newest_event=None if newest is None else newest[0],
            newest_at=None if newest is None else newest[2].isoformat(),
            note="the ledger forgot what happened after its newest event: letters are "
            "asked about in the archive before any import, nothing is imported twice",
        )
        self.metrics.ledger_rewound.inc()
        self.metrics.ledger_rewound_at.set_to_current_time()
        return True

    def _read(self) -> _Mark | None:
        try:
            data = json.loads(self.path.read_text("utf-8"))
            return _Mark(data["ledger"], data["event_id"], data["letter_id"], data["at"])
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("ledger.mark_unreadable", path=str(self.path), error=str(exc))
            return None

    def _write(self, mark: _Mark) -> None:
        """Atomically and durably, only when it moved."""
        if mark == self._written:
            return
        data = json.dumps(mark.__dict__).encode()
        try:
            fd, temp = tempfile.mkstemp(dir=self.path.parent, prefix=".ledger-mark-")
            try:
                os.write(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(temp, self.path)
        except OSError as exc:
            with contextlib.suppress(OSError, UnboundLocalError):
                os.unlink(temp)
            log.warning("ledger.mark_not_written", path=str(self.path), error=str(exc))
            return
        self._written = mark
