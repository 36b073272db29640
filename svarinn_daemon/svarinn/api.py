"""What the pipeline needs from SvarInn, as a type: list, download, acknowledge, report.

The pipeline holds a :class:`SvarInnApi`, never a concrete client, so each protocol version
is one implementation: :class:`~svarinn_daemon.svarinn.v2.SvarInnV2Client` speaks SvarInn
V2 over HTTP, :class:`~svarinn_daemon.svarinn.v1.SvarInnClient` MottakService v1, and
:class:`svarinn_daemon.testing.InMemorySvarInn` keeps letters in the process. Every
implementation raises only the daemon's errors (:mod:`svarinn_daemon.errors`), since the
retry decisions read them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import Protocol

from svarinn_daemon.svarinn.records import Forsendelse, Listing

__all__ = ["DownloadBody", "SvarInnApi"]


class DownloadBody(Protocol):
    """One open download: the letter's file as it comes, valid only inside ``download()``."""

    @property
    def filename(self) -> str | None:
        """The file name the server gave (Content-Disposition), if any."""
        ...

    @property
    def bytes_received(self) -> int:
        """Bytes of the body read so far."""
        ...

    def iter_chunks(self) -> Iterator[bytes]:
        """The body in chunks, once; a broken transfer raises a :class:`DaemonError`."""
        ...

    def interrupt(self) -> None:
        """Make a read blocked in another thread end at once (the daemon is stopping);
        that read then raises a :class:`DaemonError`. Safe to call from any thread."""
        ...


class SvarInnApi(Protocol):
    """One account's SvarInn: the four calls of the mottak flow. Must be thread-safe."""

    def listing(self) -> Listing:
        """Every letter waiting for this account, each id once, and the listed items that
        could not be read (set aside, never raised)."""
        ...

    def download(self, forsendelse: Forsendelse) -> AbstractContextManager[DownloadBody]:
        """Open the letter's file as a stream: ``with api.download(f) as body: ...``."""
        ...

    def acknowledge(self, forsendelse_id: str) -> None:
        """kvitterMottak: the letter is archived; SvarUt stops listing it. Raises
        :class:`~svarinn_daemon.errors.ForsendelseGoneError` when SvarUt does not know it."""
        ...

    def report_failure(self, forsendelse_id: str, message: str, *, permanent: bool) -> None:
        """mottakFeilet: ``permanent=True`` makes SvarUt send the letter by other means."""
        ...
