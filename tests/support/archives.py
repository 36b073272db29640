"""The three built-in archives, each able to answer "do you have it?", set up for a harness:
what the archive holds, and how often each letter really entered it.

``filesystem`` (the harness's own), ``command`` (tests/support/programs.py's importer with
its ``--status`` as check_command) and ``http`` (tests/support/fakes/sakssystem.py with its
status URL). The tests of a forgetting ledger compare what the archive held before the
ledger forgot with what the daemon handed it afterwards.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support.daemon_harness import Harness
from tests.support.fakes.sakssystem import SakServer
from tests.support.programs import command_table, use_archive, write_import_program

ADAPTERS = ("filesystem", "command", "http")


@dataclass
class Archive:
    adapter: str
    harness: Harness
    store: Path | None = None  # command: the importer's store
    server: SakServer | None = None  # http: the sakssystem endpoint

    def held(self) -> set[str]:
        """The forsendelse ids the archive holds now."""
        if self.server is not None:
            with self.server.state.lock:
                return set(self.server.state.letters)
        directory = self.store if self.store is not None else self.harness.archive
        if not directory.exists():
            return set()
        return {p.name for p in directory.iterdir() if not p.name.startswith(".")}

    def entries(self) -> Counter[str]:
        """How often each letter entered the archive (a second copy would count twice)."""
        if self.server is not None:
            with self.server.state.lock:
                return Counter(list(self.server.state.letters))  # once per key: see posts()
        if self.store is not None:
            log = self.store / ".imports.log"
            return Counter(log.read_text().split()) if log.exists() else Counter()
        return Counter(self.held())

    def posts(self) -> dict[str, int]:
        """http: the POSTs per Idempotency-Key (a letter handed over again shows here)."""
        if self.server is None:
            return {}
        with self.server.state.lock:
            return dict(self.server.state.posts_by_key)


@contextmanager
def archive_for(adapter: str, h: Harness, work: Path) -> Iterator[Archive]:
    """Point the harness's config at ``adapter``'s archive (running it, for http)."""
    if adapter == "filesystem":
        yield Archive(adapter, h)
    elif adapter == "command":
        program = write_import_program(work / "bin")
        store, script = work / "sak", work / "script"
        script.mkdir(parents=True)
        use_archive(h, command_table(program, store, script, timeout="10s"))
        yield Archive(adapter, h, store=store)
    elif adapter == "http":
        with SakServer() as server:
            use_archive(
                h,
                f"""[archives.default]
adapter = "http"
url = "{server.url}"
status_url = "{server.url}/{{forsendelse_id}}"
timeout = "10s"
""",
            )
            yield Archive(adapter, h, server=server)
    else:
        raise ValueError(adapter)
