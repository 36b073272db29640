"""Letters for the archive-system adapters' tests: one sender, two documents, and the way the
pipeline hands a letter to an adapter (begin, add each document, commit; abort on failure)."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from svarinn_daemon.adapters import ArchiveAdapter, DocumentMetadata, VerificationRecord

T0 = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
VERIFICATION = VerificationRecord("9a" * 32, 6, True, "zip", True, T0, T0)
ORG = {"navn": "Byggmester AS", "organisasjonsnummer": "987654321", "adresselinjer": ["Gata 1"]}
DOCS = (
    ("vedtak.pdf", b"%PDF-1.7 vedtak", "application/pdf"),
    ("kart.png", b"\x89PNG", "image/png"),
)
Docs = tuple[tuple[str, bytes, str], ...]


def send(
    adapter: ArchiveAdapter,
    fid: str,
    forsendelse: Mapping[str, Any] | None = None,
    docs: Docs = DOCS,
    *,
    sender: Mapping[str, Any] = ORG,
) -> str:
    """One letter ``fid`` (title "Søknad om løyve", from ``sender``) through ``adapter``."""
    record = {"id": fid, "tittel": "Søknad om løyve", "avsender": dict(sender)}
    record.update(forsendelse or {})
    tx = adapter.begin(fid, record)
    try:
        for name, data, mimetype in docs:
            meta = DocumentMetadata(mimetype, hashlib.sha256(data).hexdigest(), len(data), True)
            tx.add_document(name, io.BytesIO(data), meta)
        return tx.commit(VERIFICATION)
    except BaseException:
        tx.abort()
        raise
