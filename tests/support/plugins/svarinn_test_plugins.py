"""An archive adapter with faults of its own, installed for the tests through a real entry point.

Put this directory on ``sys.path`` (``PYTHONPATH`` for a child process) and the daemon finds
``adapter = "troubled"`` the way it finds any third-party adapter. It is the filesystem
adapter (option ``root``) with two switches, each a file whose existence turns it on, so a
test can turn a fault on and off while the daemon runs:

- ``raise_while``: commit raises ``RuntimeError`` (a type no adapter may raise) while the file
  exists: a bug in an adapter.
- ``wedge_while``: commit blocks while the file exists, without any progress: a stuck
  archive call (an NFS mount that hangs, say).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any, BinaryIO

from svarinn_daemon.adapters.base import (
    AdapterContext,
    ArchiveTransaction,
    DocumentMetadata,
    VerificationRecord,
)
from svarinn_daemon.adapters.filesystem import FilesystemArchive
from svarinn_daemon.adapters.filesystem import create_adapter as create_filesystem

SWITCHES = ("raise_while", "wedge_while")


class TroubledTransaction:
    def __init__(self, inner: ArchiveTransaction, switches: Mapping[str, Path]):
        self.inner = inner
        self.switches = switches

    def add_document(self, name: str, content: Path | BinaryIO, metadata: DocumentMetadata) -> str:
        return self.inner.add_document(name, content, metadata)

    def commit(self, verification: VerificationRecord) -> str:
        wedge = self.switches.get("wedge_while")
        while wedge is not None and wedge.exists():
            time.sleep(0.05)
        fault = self.switches.get("raise_while")
        if fault is not None and fault.exists():
            raise RuntimeError(f"the troubled adapter fails while {fault.name} exists")
        return self.inner.commit(verification)

    def abort(self) -> None:
        self.inner.abort()


class TroubledArchive:
    def __init__(self, inner: FilesystemArchive, switches: Mapping[str, Path]):
        self.inner = inner
        self.switches = switches

    def has(self, forsendelse_id: str) -> str | None:
        return self.inner.has(forsendelse_id)

    def begin(self, forsendelse_id: str, metadata: Mapping[str, Any]) -> TroubledTransaction:
        return TroubledTransaction(self.inner.begin(forsendelse_id, metadata), self.switches)

    def cleanup(self, older_than: timedelta) -> int:
        return self.inner.cleanup(older_than)

    def close(self) -> None:
        self.inner.close()


def create_adapter(options: Mapping[str, Any], context: AdapterContext) -> TroubledArchive:
    switches = {k: Path(str(options[k])) for k in SWITCHES if k in options}
    rest = {k: v for k, v in options.items() if k not in SWITCHES}
    return TroubledArchive(create_filesystem(rest, context), switches)
