"""Every built-in adapter keeps the same contract, checked through the registry."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from svarinn_daemon.adapters import (
    AdapterRegistry,
    ArchiveAdapter,
    ArchiveTransaction,
    DocumentMetadata,
    VerificationRecord,
)
from svarinn_daemon.config import ArchiveConfig
from svarinn_daemon.errors import ArchiveError

FORSENDELSE = {"id": "d1c6d795-f1a0-4a36-bce1-a4d9f26696db", "tittel": "Søknad om løyve"}
T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def record(**changes: object) -> VerificationRecord:
    values: dict[str, object] = {
        "sha256": "ab" * 32,
        "size": 5,
        "verified": True,
        "file_type": "pdf",
        "encrypted": True,
        "downloaded_at": T0,
        "verified_at": T0 + timedelta(seconds=1),
    }
    values.update(changes)
    return VerificationRecord(**values)  # type: ignore[arg-type]


def meta(data: bytes) -> DocumentMetadata:
    import hashlib

    return DocumentMetadata(
        mimetype="application/pdf",
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        verified=True,
        filmetadata_name="brev.pdf",
    )


@pytest.fixture(params=["filesystem", "memory"])
def adapter(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ArchiveAdapter]:
    config = ArchiveConfig("default", request.param)
    made = AdapterRegistry().create(config, state_directory=tmp_path)
    yield made
    made.close()


def test_built_in_adapters_satisfy_the_protocol(adapter: ArchiveAdapter) -> None:
    assert isinstance(adapter, ArchiveAdapter)
    tx = adapter.begin(FORSENDELSE["id"], FORSENDELSE)
    assert isinstance(tx, ArchiveTransaction)
    tx.abort()


def test_commit_then_has_returns_the_same_ref(adapter: ArchiveAdapter, tmp_path: Path) -> None:
    fid = FORSENDELSE["id"]
    assert adapter.has(fid) is None
    source = tmp_path / "spool"
    source.write_bytes(b"%PDF-")
    tx = adapter.begin(fid, FORSENDELSE)
    assert tx.add_document("brev.pdf", source, meta(b"%PDF-")) == "brev.pdf"
    assert tx.add_document("brev.pdf", io.BytesIO(b"%PDF-"), meta(b"%PDF-")) == "brev (2).pdf"
    ref = tx.commit(record())
    assert adapter.has(fid) == ref
    assert source.read_bytes() == b"%PDF-"  # the caller's file is left alone


def test_second_commit_of_same_letter_returns_existing_ref(adapter: ArchiveAdapter) -> None:
    fid = FORSENDELSE["id"]
    first = adapter.begin(fid, FORSENDELSE)
    second = adapter.begin(fid, FORSENDELSE)  # e.g. a crash after the first commit
    first.add_document("a.pdf", io.BytesIO(b"one"), meta(b"one"))
    second.add_document("b.pdf", io.BytesIO(b"two"), meta(b"two"))
    ref1 = first.commit(record(size=3))
    ref2 = second.commit(record(size=3))
    assert ref1 == ref2 == adapter.has(fid)


def test_abort_leaves_nothing(adapter: ArchiveAdapter) -> None:
    fid = FORSENDELSE["id"]
    tx = adapter.begin(fid, FORSENDELSE)
    tx.add_document("a.pdf", io.BytesIO(b"one"), meta(b"one"))
    tx.abort()
    tx.abort()  # twice is fine
    assert adapter.has(fid) is None
    with pytest.raises(ArchiveError):
        tx.commit(record())
    assert adapter.cleanup(timedelta(0)) == 0


def test_a_size_that_differs_from_the_metadata_is_refused_by_filesystem(tmp_path: Path) -> None:
    adapter = AdapterRegistry().create(
        ArchiveConfig("default", "filesystem"), state_directory=tmp_path
    )
    tx = adapter.begin("x1", {})
    with pytest.raises(ArchiveError, match=r"stored 3 bytes, but its metadata says 4") as info:
        tx.add_document("a.pdf", io.BytesIO(b"one"), meta(b"four"))
    assert info.value.temporary
    tx.abort()
