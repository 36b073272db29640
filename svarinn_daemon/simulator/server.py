"""A SvarInn server on loopback (MottakService v1 and SvarInn V2), with fault injection.

Real HTTP (stdlib ``ThreadingHTTPServer`` in a thread), so the client is tested through the
same sockets, headers and broken connections it meets in production. Paging: each call
returns the next (up to) 200 unacknowledged letters after the previous call's, wrapping
around -- so a client that keeps calling sees every letter, and one that calls forever sees
pages of ids it has already seen. ``paging="repeat"`` always returns the first 200 instead.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import socket
import ssl
import tempfile
import threading
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from http.server import ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from cryptography import x509

from svarinn_daemon.simulator.faults import Fault, FaultPlan
from svarinn_daemon.simulator.handler import Handler
from svarinn_daemon.simulator.letters import LetterFile, SimLetter, build_letter, pdf_chunks
from svarinn_daemon.simulator.state import FailureReport, RequestRecord, SimulatorState

__all__ = ["PAGE_SIZE", "Simulator"]

PAGE_SIZE = 200
_MIMETYPES = {
    ".pdf": "application/pdf",
    ".txt": "text/plain",
    ".xml": "application/xml",
    ".json": "application/json",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".odt": "application/vnd.oasis.opendocument.text",
    ".zip": "application/zip",
}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # idle keep-alive connections must not hold up stop()

    def __init__(self, address: tuple[str, int], simulator: Simulator):
        self.simulator = simulator
        super().__init__(address, Handler)

    def get_request(self) -> tuple[socket.socket, Any]:
        """With TLS, wrap each accepted connection; the handshake runs on the handler's
        first read, in its own thread, so a client that fails it holds up nobody."""
        connection, address = super().get_request()
        tls = self.simulator.tls
        if tls is not None:
            connection = tls.wrap_socket(
                connection, server_side=True, do_handshake_on_connect=False
            )
        return connection, address

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients that hang up mid-body are part of the job, not news


class Simulator:
    """A SvarInn on ``http://127.0.0.1:<free port>`` (``https://`` with ``tls``, a server
    context such as :meth:`~svarinn_daemon.simulator.tls.ServerTls.server_context`); use as a
    context manager."""

    def __init__(
        self,
        certificate: x509.Certificate,
        *,
        username: str = "simulator",
        password: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        page_size: int = PAGE_SIZE,
        paging: Literal["rotate", "repeat"] = "rotate",
        seed: int = 0,
        work_dir: Path | None = None,
        faults: Iterable[Fault] = (),
        tls: ssl.SSLContext | None = None,
    ):
        self.certificate = certificate
        self.tls = tls  # a server context: HTTPS instead of HTTP
        self.username = username
        self.password = password or secrets.token_urlsafe(18)
        self.host = host
        self.page_size = page_size
        self.paging = paging
        self.faults = FaultPlan(seed=seed)
        for fault in faults:
            self.faults.add(fault)
        self._port = port
        self._own_dir: tempfile.TemporaryDirectory[str] | None = None
        if work_dir is None:
            self._own_dir = tempfile.TemporaryDirectory(prefix="svarinn-sim-")
            work_dir = Path(self._own_dir.name)
        self.work_dir: Path = work_dir
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.stopping = threading.Event()
        self._lock = threading.RLock()
        self._letters: dict[str, SimLetter] = {}  # every letter ever added, by id
        self._pending: list[str] = []
        self._cursor = 0
        self._acknowledged: Counter[str] = Counter()
        self._elsewhere: set[str] = set()  # acknowledged by another importer: receipts 404
        self._downloads: Counter[str] = Counter()
        self._requests: Counter[str] = Counter()
        self._reports: list[FailureReport] = []
        self._log: list[RequestRecord] = []
        self._rejected = 0
        self._raw_items: list[str] = []
        self._raw_listing: bytes | None = None
        self._connections: set[socket.socket] = set()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> Simulator:
        if self._server is None:
            self._server = _Server((self.host, self._port), self)
            self._port = self._server.server_address[1]
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"svarinn-simulator:{self._port}",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        if self._server is not None:
            self._server.shutdown()
            with self._lock:
                connections = list(self._connections)
            for connection in connections:  # wake handler threads waiting on keep-alive reads
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._own_dir is not None:
            self._own_dir.cleanup()

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._port

    @property
    def base_url(self) -> str:
        """``http(s)://host:port``: the account's ``base_url`` (known once started)."""
        if self._server is None and self._port == 0:
            raise RuntimeError("start the simulator first: the port is chosen on start")
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://{self.host}:{self._port}"

    def download_url(self, forsendelse_id: str) -> str:
        return f"{self.base_url}/tjenester/svarinn/forsendelse/{forsendelse_id}"

    def v2_base_url(self, base: str = "/api") -> str:
        """A SvarInn V2 account's ``base_url``: the simulator answers under ``/api`` (KS's
        documentation page) and ``/tjenester`` (KS's OpenAPI document)."""
        return f"{self.base_url}{base}"

    def v2_download_url(self, forsendelse_id: str, base: str = "/api") -> str:
        return f"{self.v2_base_url(base)}/svarinn/v2/forsendelser/{forsendelse_id}"

    # --- letters --------------------------------------------------------------------------

    def add_letter(
        self,
        files: LetterFile | Sequence[LetterFile],
        *,
        tittel: str | None = None,
        forsendelse_id: str | None = None,
        person: bool = False,
        download_url: str | None = None,
    ) -> SimLetter:
        """Encrypt and list a letter of one file, or of several (served as a zip)."""
        files = [files] if isinstance(files, LetterFile) else list(files)
        number = len(self._letters) + 1
        letter = build_letter(
            files,
            certificate=self.certificate,
            directory=self.work_dir,
            tittel=tittel or f"Simulert forsendelse {number}",
            avsender=_avsender(number, person=person),
            forsendelse_id=forsendelse_id,
            download_url=download_url,
        )
        with self._lock:
            if letter.id in self._letters:
                raise ValueError(f"a letter with id {letter.id} exists already")
            self._letters[letter.id] = letter
            self._pending.append(letter.id)
        return letter

    def add_bytes(
        self,
        data: bytes,
        filnavn: str = "dokument.pdf",
        mimetype: str = "application/pdf",
        **kw: Any,
    ) -> SimLetter:
        return self.add_letter(LetterFile(filnavn, mimetype, data=data), **kw)

    def load_directory(self, directory: Path) -> list[SimLetter]:
        """A letter per plain file in ``directory``; a letter of several files per subdirectory."""
        letters = []
        for entry in sorted(directory.iterdir()):
            if entry.name.startswith("."):
                continue
            if entry.is_dir():
                files = [_file(p) for p in sorted(entry.iterdir()) if p.is_file()]
                if files:
                    letters.append(self.add_letter(files, tittel=entry.name))
            elif entry.is_file():
                letters.append(self.add_letter(_file(entry), tittel=entry.stem))
        return letters

    def generate(
        self, count: int, size: int = 50_000, *, files_per_letter: int = 1
    ) -> list[SimLetter]:
        """``count`` letters of valid PDFs of about ``size`` bytes; every third from a person."""
        letters = []
        for _ in range(count):
            number = len(self._letters) + 1
            files = [
                LetterFile(
                    f"dokument-{number}-{k}.pdf"
                    if files_per_letter > 1
                    else f"dokument-{number}.pdf",
                    "application/pdf",
                    chunks=pdf_chunks(f"Simulert forsendelse {number}, dokument {k}", size),
                )
                for k in range(1, files_per_letter + 1)
            ]
            letters.append(self.add_letter(files, person=number % 3 == 0))
        return letters

    def add_raw_item(self, text: str) -> None:
        """List this exact JSON text as one more item on every page: for hostile items
        (``NaN``, huge numbers, deep nesting) that no Python object serialises to."""
        with self._lock:
            self._raw_items.append(text)

    def set_raw_listing(self, body: bytes | None) -> None:
        """Answer every hentNyeForsendelser call with exactly ``body`` (None: the letters)."""
        with self._lock:
            self._raw_listing = body

    def remove(self, forsendelse_id: str) -> None:
        """Withdraw a letter: no longer listed, and its download answers 404."""
        with self._lock:
            if forsendelse_id in self._pending:
                self._pending.remove(forsendelse_id)

    def acknowledge_elsewhere(self, forsendelse_id: str) -> None:
        """Another importer on the same account acknowledged the letter (the one a daemon in
        shadow mode runs beside): no longer listed, and receipts for it answer 404."""
        with self._lock:
            self._elsewhere.add(forsendelse_id)
            if forsendelse_id in self._pending:
                self._pending.remove(forsendelse_id)

    def relist(self, forsendelse_id: str) -> None:
        """List a letter again, as SvarUt does when it did not register a receipt."""
        with self._lock:
            if forsendelse_id not in self._letters:
                raise KeyError(f"no letter {forsendelse_id}")
            if forsendelse_id not in self._pending:
                self._pending.append(forsendelse_id)

    def letter(self, forsendelse_id: str) -> SimLetter:
        with self._lock:
            return self._letters[forsendelse_id]

    # --- faults and inspection -------------------------------------------------------------

    def add_fault(self, fault: Fault) -> None:
        self.faults.add(fault)

    def clear_faults(self) -> None:
        self.faults.clear()

    def state(self) -> SimulatorState:
        with self._lock:
            return SimulatorState(
                pending=tuple(self._pending),
                acknowledged=dict(self._acknowledged),
                reports=tuple(self._reports),
                downloads=dict(self._downloads),
                requests=dict(self._requests),
                faults_fired=dict(self.faults.fired),
                rejected_credentials=self._rejected,
            )

    def request_log(self) -> tuple[RequestRecord, ...]:
        with self._lock:
            return tuple(self._log)

    # --- used by the handler ----------------------------------------------------------------

    def next_page(self, *, v2_base: str | None = None) -> list[dict[str, Any]]:
        """The next page of items: v1's, or V2's when ``v2_base`` (the base path the
        listing was asked under) is given. Both versions share one cursor."""
        with self._lock:
            sequence = list(self._pending)
            sequence += [i for i in self._pending if self.faults.listing_flag("duplicate", i)]
            if self.paging == "repeat" or self._cursor >= len(sequence):
                self._cursor = 0
            page = sequence[self._cursor : self._cursor + self.page_size]
            self._cursor = 0 if len(page) < self.page_size else self._cursor + len(page)
            items = [self._item(i, v2_base) for i in page]
            link = "downloadUrl" if v2_base is None else "nedlastingslenke"
            for item in items:
                if self.faults.listing_flag("malformed", item["id"]):
                    del item[link]
            return items

    def _item(self, forsendelse_id: str, v2_base: str | None) -> dict[str, Any]:
        letter = self._letters[forsendelse_id]
        wrong = self.faults.listing_flag("wrong_sha256", forsendelse_id)
        unknown = self.faults.listing_flag("unknown_size", forsendelse_id)
        if v2_base is None:
            url = self.download_url(forsendelse_id)
            return letter.to_json(url, wrong_sha256=wrong, unknown_size=unknown)
        url = self.v2_download_url(forsendelse_id, v2_base)
        return letter.to_json_v2(url, wrong_sha256=wrong, unknown_size=unknown)

    def listing_body(self, *, v2_base: str | None = None) -> bytes:
        """The next page as the bytes to send, with the raw items appended."""
        with self._lock:
            if self._raw_listing is not None:
                return self._raw_listing
            raw = list(self._raw_items)
        page = self.next_page(v2_base=v2_base)
        items = [json.dumps(item, ensure_ascii=False) for item in page] + raw
        return ("[" + ",".join(items) + "]").encode("utf-8")

    def servable(self, forsendelse_id: str) -> SimLetter | None:
        with self._lock:
            self._downloads[forsendelse_id] += 1
            if forsendelse_id not in self._pending:
                return None
            return self._letters[forsendelse_id]

    def acknowledge(self, forsendelse_id: str) -> bool:
        with self._lock:
            if forsendelse_id not in self._letters or forsendelse_id in self._elsewhere:
                return False
            self._acknowledged[forsendelse_id] += 1
            if forsendelse_id in self._pending:
                self._pending.remove(forsendelse_id)
            return True

    def report(self, forsendelse_id: str, feilmelding: str, permanent: bool) -> bool:
        with self._lock:
            if forsendelse_id not in self._letters or forsendelse_id in self._elsewhere:
                return False
            self._reports.append(
                FailureReport(forsendelse_id, feilmelding, permanent, datetime.now(UTC))
            )
            if permanent and forsendelse_id in self._pending:
                self._pending.remove(forsendelse_id)
            return True

    def track(self, connection: socket.socket, *, open: bool) -> None:
        with self._lock:
            if open:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def record(self, entry: RequestRecord) -> None:
        with self._lock:
            self._log.append(entry)
            self._requests[entry.endpoint] += 1
            if entry.status == 401 and not entry.authenticated:
                self._rejected += 1


def _file(path: Path) -> LetterFile:
    mimetype = _MIMETYPES.get(path.suffix.lower(), "application/octet-stream")
    return LetterFile(path.name, mimetype, path=path)


def _avsender(number: int, *, person: bool) -> dict[str, Any]:
    base = {
        "adresselinje1": "Storgata 1",
        "adresselinje2": None,
        "adresselinje3": None,
        "postnr": "0155",
        "poststed": "Oslo",
    }
    if person:
        return {**base, "navn": f"Kari Nordmann {number}", "fnr": f"{10107000000 + number:011d}"}
    return {**base, "navn": f"Testbedrift {number} AS", "orgnr": f"{910000000 + number % 89999999}"}
