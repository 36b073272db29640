"""The archive-adapter contract as plain functions (see the package docstring)."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from svarinn_daemon.adapters import (
    ArchiveAdapter,
    ArchiveTransaction,
    DocumentMetadata,
    LetterOrigin,
    ProbingAdapter,
    VerificationRecord,
)
from svarinn_daemon.adapters.base import (
    AdvisingAdapter,
    AnswersLater,
    OriginBegin,
    OriginLookup,
    SecretHolder,
    TimedAdapter,
)
from svarinn_daemon.errors import (
    ArchiveError,
)

__all__ = [
    "ADAPTER_CHECKS",
    "AdapterCheck",
    "check_abort_leaves_nothing",
    "check_adapter_contract",
    "check_commit_then_has",
    "check_optional_methods",
    "check_probe_stores_nothing",
    "check_satisfies_protocol",
    "check_second_commit_returns_existing_ref",
]


_ID = "d1c6d795-f1a0-4a36-bce1-a4d9f26696db"
_METADATA = {"id": _ID, "tittel": "Søknad om løyve"}
_T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def _record(size: int) -> VerificationRecord:
    digest = "ab" * 32
    later = _T0 + timedelta(seconds=1)
    return VerificationRecord(digest, size, True, "pdf", True, _T0, later)


def _meta(data: bytes) -> DocumentMetadata:
    digest = hashlib.sha256(data).hexdigest()
    return DocumentMetadata("application/pdf", digest, len(data), True, "brev.pdf")


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise AssertionError(f"archive adapter contract: {message}")


def _finds(adapter: ArchiveAdapter, ref: str) -> bool:
    """has() finds the committed letter under ``ref``; an adapter that answers later never
    knows (its replies go to the ledger), so has() stays None and ``ref`` is the message id."""
    if isinstance(adapter, AnswersLater):
        return adapter.has(_ID) is None and isinstance(ref, str) and bool(ref)
    return adapter.has(_ID) == ref


def check_satisfies_protocol(adapter: ArchiveAdapter, work_dir: Path) -> None:
    """The adapter and its transactions have every method of the protocol."""
    _expect(isinstance(adapter, ArchiveAdapter), "the adapter lacks a method of ArchiveAdapter")
    tx = adapter.begin(_ID, _METADATA)
    try:
        _expect(isinstance(tx, ArchiveTransaction), "begin() returned no ArchiveTransaction")
    finally:
        tx.abort()


def check_commit_then_has(adapter: ArchiveAdapter, work_dir: Path) -> None:
    """A committed letter is found by has() under the ref commit() returned; the source
    file is left alone, and a second document of the same name gets a name of its own."""
    _expect(adapter.has(_ID) is None, "has() of a letter never stored must be None")
    source = work_dir / "contract-source.pdf"
    source.write_bytes(b"%PDF-")
    tx = adapter.begin(_ID, _METADATA)
    first = tx.add_document("brev.pdf", source, _meta(b"%PDF-"))
    second = tx.add_document("brev.pdf", io.BytesIO(b"%PDF-"), _meta(b"%PDF-"))
    _expect(first != second, f"two documents named brev.pdf were both stored as {first!r}")
    ref = tx.commit(_record(5))
    _expect(_finds(adapter, ref), f"has() returned {adapter.has(_ID)!r}, commit() {ref!r}")
    _expect(source.read_bytes() == b"%PDF-", "the caller's file was changed or moved")


def check_second_commit_returns_existing_ref(adapter: ArchiveAdapter, work_dir: Path) -> None:
    """Two transactions for one letter (a crash after the first commit): the second commit
    returns the first's reference and stores nothing (the forsendelse id is the key). An
    adapter that answers later sends it twice under one key for the archive to drop; each
    send has a message id of its own."""
    first = adapter.begin(_ID, _METADATA)
    second = adapter.begin(_ID, _METADATA)
    first.add_document("a.pdf", io.BytesIO(b"one"), _meta(b"one"))
    second.add_document("b.pdf", io.BytesIO(b"two"), _meta(b"two"))
    ref1 = first.commit(_record(3))
    ref2 = second.commit(_record(3))
    if isinstance(adapter, AnswersLater):
        _expect(bool(ref1) and bool(ref2), "commit() returned no message id")
        return
    _expect(ref1 == ref2, f"the letter was committed twice: {ref1!r} and {ref2!r}")
    _expect(adapter.has(_ID) == ref1, "has() does not return the first commit's reference")


def check_abort_leaves_nothing(adapter: ArchiveAdapter, work_dir: Path) -> None:
    """abort() removes what was added, may be called twice, and no commit follows it."""
    tx = adapter.begin(_ID, _METADATA)
    tx.add_document("a.pdf", io.BytesIO(b"one"), _meta(b"one"))
    tx.abort()
    tx.abort()
    _expect(adapter.has(_ID) is None, "an aborted letter is visible through has()")
    try:
        tx.commit(_record(3))
    except ArchiveError:
        pass
    else:
        raise AssertionError("archive adapter contract: commit() after abort() must raise")
    left = adapter.cleanup(timedelta(0))
    _expect(left == 0, f"cleanup() found {left} leftovers after an abort")


def check_probe_stores_nothing(adapter: ArchiveAdapter, work_dir: Path) -> None:
    """An adapter with ``probe()`` answers a bool, stores no letter and leaves nothing for
    cleanup(), before and after a letter is archived (adapters without one pass)."""
    if not isinstance(adapter, ProbingAdapter):
        return
    answer = adapter.probe()
    _expect(isinstance(answer, bool), f"probe() returned {answer!r}, not a bool")
    _expect(adapter.has(_ID) is None, "after probe() has() finds a letter never stored")
    tx = adapter.begin(_ID, _METADATA)
    tx.add_document("a.pdf", io.BytesIO(b"one"), _meta(b"one"))
    ref = tx.commit(_record(3))
    _expect(adapter.probe() is answer, "probe() answered otherwise once a letter was stored")
    _expect(_finds(adapter, ref), "probe() changed what has() finds")
    left = adapter.cleanup(timedelta(0))
    _expect(left == 0, f"cleanup() found {left} leftovers of probe()")


def check_optional_methods(adapter: ArchiveAdapter, work_dir: Path) -> None:
    """Each optional method the adapter has (``adapters/base.py``) behaves as its Protocol
    says: ``has_from``/``begin_from`` store and find a letter as ``has``/``begin`` do,
    ``warnings``/``secret_values`` answer lists of strings, ``timeout`` is a positive
    duration. An adapter without them passes."""
    origin = LetterOrigin("contract", "v2")
    if isinstance(adapter, OriginLookup):
        _expect(adapter.has_from(origin, _ID) is None, "has_from() found a letter never stored")
    if isinstance(adapter, OriginBegin):
        tx = adapter.begin_from(origin, _ID, _METADATA)
        _expect(isinstance(tx, ArchiveTransaction), "begin_from() returned no ArchiveTransaction")
        tx.add_document("a.pdf", io.BytesIO(b"one"), _meta(b"one"))
        ref = tx.commit(_record(3))
        _expect(_finds(adapter, ref), "has() does not find what begin_from() committed")
        if isinstance(adapter, OriginLookup) and not isinstance(adapter, AnswersLater):
            found = adapter.has_from(origin, _ID)
            _expect(found == ref, f"has_from() returned {found!r}, commit() {ref!r}")
    for holder, method in ((AdvisingAdapter, "warnings"), (SecretHolder, "secret_values")):
        if isinstance(adapter, holder):
            said = getattr(adapter, method)()
            _expect(
                isinstance(said, list) and all(isinstance(x, str) for x in said),
                f"{method}() returned {said!r}, not a list of strings",
            )
    if isinstance(adapter, AnswersLater):
        wait = adapter.reply_timeout
        _expect(
            isinstance(wait, timedelta) and wait > timedelta(0),
            f"reply_timeout is {wait!r}, not a positive timedelta",
        )
    if isinstance(adapter, TimedAdapter):
        timeout = adapter.timeout
        _expect(
            isinstance(timeout, timedelta) and timeout > timedelta(0),
            f"timeout is {timeout!r}, not a positive timedelta",
        )


AdapterCheck = Callable[[ArchiveAdapter, Path], None]
ADAPTER_CHECKS: tuple[AdapterCheck, ...] = (
    check_satisfies_protocol,
    check_commit_then_has,
    check_second_commit_returns_existing_ref,
    check_abort_leaves_nothing,
    check_probe_stores_nothing,
    check_optional_methods,
)


def check_adapter_contract(make_adapter: Callable[[Path], ArchiveAdapter], work_dir: Path) -> None:
    """Run every check in ``ADAPTER_CHECKS``, each on a fresh, empty adapter:
    ``make_adapter`` gets a new empty directory under ``work_dir`` for it (use it or not);
    the adapter is closed afterwards. A broken rule raises AssertionError naming it."""
    for check in ADAPTER_CHECKS:
        base = work_dir / f"contract-{check.__name__}"
        (base / "adapter").mkdir(parents=True)
        (base / "sources").mkdir()
        adapter = make_adapter(base / "adapter")
        try:
            check(adapter, base / "sources")
        finally:
            adapter.close()
