"""A SvarInn in the process, a clock moved by hand, throwaway keys: see the package."""

from __future__ import annotations

import io
import json
import threading
import time
from collections import Counter, deque
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

from svarinn_daemon.adapters import (
    ArchiveAdapter,
)
from svarinn_daemon.errors import (
    DaemonError,
    ForsendelseGoneError,
    ProtocolError,
    ServiceUnavailableError,
)
from svarinn_daemon.keys import KeyPair, load_key_pair
from svarinn_daemon.letter.account import AccountRuntime
from svarinn_daemon.simulator.identity import generate_identity
from svarinn_daemon.simulator.letters import LetterFile, SimLetter, build_letter, pdf_chunks
from svarinn_daemon.simulator.state import FailureReport
from svarinn_daemon.svarinn.parsing import check_forsendelse_id
from svarinn_daemon.svarinn.records import Forsendelse, Listing
from svarinn_daemon.svarinn.v1 import parse_listing

__all__ = ["FakeClock", "InMemorySvarInn", "MemoryDownload", "Stall", "make_key_pair"]

Endpoint = Literal["listing", "download", "acknowledge", "report_failure"]
CHUNK = 64 * 1024
STALL_LIMIT = 60.0  # seconds a stalled download waits before it fails on its own


class FakeClock:
    """A clock the test moves by hand (the ledger's ``Clock``: a call returns now)."""

    def __init__(self, now: datetime = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)):
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> datetime:
        self.now += delta
        return self.now


def make_key_pair(label: str = "in-memory SvarInn") -> KeyPair:
    """A fresh RSA-2048 receiver key pair with a self-signed certificate."""
    identity = generate_identity(label)
    if identity.private_key_pem is None:  # pragma: no cover - generate_identity makes one
        raise RuntimeError("generate_identity returned no private key")
    return load_key_pair(label, identity.private_key_pem, certificate_pem=identity.certificate_pem)


# --- SvarInn in the process ----------------------------------------------------------------


class Stall:
    """A download that stops halfway: ``reached`` is set once it waits; it goes on after
    :meth:`release`, or fails as a broken connection once interrupted."""

    def __init__(self) -> None:
        self.reached = threading.Event()
        self.released = threading.Event()

    def release(self) -> None:
        self.released.set()


class MemoryDownload:
    """An open download from :class:`InMemorySvarInn` (a :class:`DownloadBody`)."""

    def __init__(self, letter: SimLetter, *, corrupt: bool, stall: Stall | None):
        self.forsendelse_id = letter.id
        self.filename: str | None = letter.filename
        self.bytes_received = 0
        self._letter = letter
        self._corrupt = corrupt
        self._stall = stall
        self._interrupted = threading.Event()
        self._started = False

    def iter_chunks(self) -> Iterator[bytes]:
        """The encrypted file from disk, in chunks; one ciphertext byte flipped if corrupt."""
        if self._started:
            raise ProtocolError(f"download {self.forsendelse_id}: the download was already read")
        self._started = True
        letter = self._letter
        half = letter.blob_size // 2 if self._stall is not None else letter.blob_size
        with letter.blob.open("rb") as blob:
            yield from self._read(blob, half)
            if self._stall is not None:
                self._stall.reached.set()
                deadline = time.monotonic() + STALL_LIMIT
                while not self._stall.released.wait(0.01):
                    if self._interrupted.is_set() or time.monotonic() > deadline:
                        raise self._broken("the connection was shut down mid-body")
                yield from self._read(blob, letter.blob_size - half)

    def _read(self, blob: io.BufferedReader, count: int) -> Iterator[bytes]:
        while count > 0:
            if self._interrupted.is_set():
                raise self._broken("the connection was shut down mid-body")
            start = blob.tell()
            chunk = blob.read(min(CHUNK, count))
            if not chunk:
                raise self._broken("the file ended early")
            offset = self._letter.content_offset
            if self._corrupt and start <= offset < start + len(chunk):
                at = offset - start
                chunk = chunk[:at] + bytes([chunk[at] ^ 0xFF]) + chunk[at + 1 :]
            count -= len(chunk)
            self.bytes_received += len(chunk)
            yield chunk

    def interrupt(self) -> None:
        self._interrupted.set()

    def _broken(self, what: str) -> ServiceUnavailableError:
        return ServiceUnavailableError(f"download {self.forsendelse_id}: {what}")


class InMemorySvarInn:
    """SvarInn in the process, for one account: lists what is neither acknowledged nor
    reported permanently, as SvarUt does; thread-safe.

    ``directory`` holds the encrypted files; ``key_pair`` is the receiver the letters are
    encrypted for (a fresh one when None; :meth:`account` gives it to the account)."""

    def __init__(self, directory: Path, *, key_pair: KeyPair | None = None):
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.key_pair = key_pair or make_key_pair()
        if self.key_pair.certificate is None:
            raise ValueError("the receiver key pair needs its certificate to encrypt for")
        self._certificate = self.key_pair.certificate
        self._lock = threading.Lock()
        self._letters: dict[str, SimLetter] = {}
        self._pending: list[str] = []
        self._wrong_sha256: set[str] = set()
        self._acknowledged: Counter[str] = Counter()
        self._downloads: Counter[str] = Counter()
        self._reports: list[FailureReport] = []
        self._faults: dict[Endpoint, deque[tuple[str | None, DaemonError]]] = {}
        self._corrupt: Counter[str] = Counter()
        self._stalls: dict[str, Stall] = {}

    def account(
        self, adapter: ArchiveAdapter, *, name: str = "kommune", archive: str = "default"
    ) -> AccountRuntime:
        """What the pipeline needs for an account served by this SvarInn."""
        return AccountRuntime(name, self, adapter, (self.key_pair,), archive)

    # --- letters ---------------------------------------------------------------------------

    def add_letter(
        self,
        files: LetterFile | Sequence[LetterFile] | None = None,
        *,
        tittel: str = "Brev",
        forsendelse_id: str | None = None,
        size: int = 4000,
        wrong_sha256: bool = False,
    ) -> SimLetter:
        """Encrypt and list a letter: ``files`` (several are zipped, as SvarUt does), or one
        valid PDF of about ``size`` bytes. ``wrong_sha256``: filmetadata lists another hash."""
        if files is None:
            files = LetterFile("brev.pdf", chunks=pdf_chunks(tittel, size))
        letter = build_letter(
            [files] if isinstance(files, LetterFile) else files,
            certificate=self._certificate,
            directory=self.directory,
            tittel=tittel,
            avsender={"navn": "Testbedrift AS", "orgnr": "910000001", "postnr": "0155"},
            forsendelse_id=forsendelse_id,
        )
        with self._lock:
            if letter.id in self._letters:
                raise ValueError(f"a letter with id {letter.id} exists already")
            self._letters[letter.id] = letter
            self._pending.append(letter.id)
            if wrong_sha256:
                self._wrong_sha256.add(letter.id)
        return letter

    def remove(self, forsendelse_id: str) -> None:
        """Withdraw a letter: no longer listed, and every call about it answers 404."""
        with self._lock:
            self._letters.pop(forsendelse_id, None)
            if forsendelse_id in self._pending:
                self._pending.remove(forsendelse_id)

    # --- faults ------------------------------------------------------------------------------

    def fail(
        self,
        endpoint: Endpoint,
        error: DaemonError,
        *,
        times: int = 1,
        forsendelse_id: str | None = None,
    ) -> None:
        """The next ``times`` calls of ``endpoint`` (about ``forsendelse_id``, or any) raise
        ``error`` (a download is counted in :attr:`downloads` first)."""
        with self._lock:
            queue = self._faults.setdefault(endpoint, deque())
            queue.extend([(forsendelse_id, error)] * times)

    def corrupt(self, forsendelse_id: str, *, times: int = 1) -> None:
        """The next ``times`` downloads of the letter flip its first ciphertext byte."""
        with self._lock:
            self._corrupt[forsendelse_id] += times

    def stall(self, forsendelse_id: str) -> Stall:
        """The letter's next download stops halfway until released or interrupted."""
        stall = Stall()
        with self._lock:
            self._stalls[forsendelse_id] = stall
        return stall

    def _maybe_fail(self, endpoint: Endpoint, forsendelse_id: str | None) -> None:
        with self._lock:
            queue = self._faults.get(endpoint, deque())
            fault = next((f for f in queue if f[0] in (None, forsendelse_id)), None)
            if fault is None:
                return
            queue.remove(fault)
        raise fault[1]

    # --- what it saw ---------------------------------------------------------------------------

    @property
    def pending(self) -> tuple[str, ...]:
        """The ids hentNyeForsendelser lists now."""
        with self._lock:
            return tuple(self._pending)

    @property
    def acknowledged(self) -> Mapping[str, int]:
        """Forsendelse id -> kvitterMottak calls."""
        with self._lock:
            return dict(self._acknowledged)

    @property
    def downloads(self) -> Mapping[str, int]:
        """Forsendelse id -> download calls (failed ones too)."""
        with self._lock:
            return dict(self._downloads)

    @property
    def reports(self) -> tuple[FailureReport, ...]:
        """Every mottakFeilet call, in order."""
        with self._lock:
            return tuple(self._reports)

    # --- SvarInnApi ---------------------------------------------------------------------------

    def listing(self) -> Listing:
        """Every pending letter, as JSON on the wire, read by the client's own parser."""
        self._maybe_fail("listing", None)
        with self._lock:
            items = [
                self._letters[i].to_json(self._url(i), wrong_sha256=i in self._wrong_sha256)
                for i in self._pending
            ]
        return parse_listing(json.loads(json.dumps(items)))

    @contextmanager
    def download(self, forsendelse: Forsendelse) -> Iterator[MemoryDownload]:
        letter_id = check_forsendelse_id(forsendelse.id)
        with self._lock:
            self._downloads[letter_id] += 1
        self._maybe_fail("download", letter_id)
        with self._lock:
            letter = self._letters.get(letter_id) if letter_id in self._pending else None
            corrupt = self._corrupt[letter_id] > 0
            if corrupt:
                self._corrupt[letter_id] -= 1
            stall = self._stalls.pop(letter_id, None)
        if letter is None:
            raise self._gone("download", letter_id)
        yield MemoryDownload(letter, corrupt=corrupt, stall=stall)

    def acknowledge(self, forsendelse_id: str) -> None:
        check_forsendelse_id(forsendelse_id)
        self._maybe_fail("acknowledge", forsendelse_id)
        with self._lock:
            if forsendelse_id not in self._letters:
                raise self._gone("kvitterMottak", forsendelse_id)
            self._acknowledged[forsendelse_id] += 1
            if forsendelse_id in self._pending:
                self._pending.remove(forsendelse_id)

    def report_failure(self, forsendelse_id: str, message: str, *, permanent: bool) -> None:
        check_forsendelse_id(forsendelse_id)
        self._maybe_fail("report_failure", forsendelse_id)
        with self._lock:
            if forsendelse_id not in self._letters:
                raise self._gone("mottakFeilet", forsendelse_id)
            text = message.strip() or "mottak feilet"
            self._reports.append(FailureReport(forsendelse_id, text, permanent, datetime.now(UTC)))
            if permanent and forsendelse_id in self._pending:
                self._pending.remove(forsendelse_id)

    @staticmethod
    def _url(forsendelse_id: str) -> str:
        return f"https://svarinn.invalid/tjenester/svarinn/forsendelse/{forsendelse_id}"

    @staticmethod
    def _gone(call: str, forsendelse_id: str) -> ForsendelseGoneError:
        return ForsendelseGoneError(
            f"in-memory SvarInn: {call} {forsendelse_id}: the forsendelse no longer exists",
            status_code=404,
        )
