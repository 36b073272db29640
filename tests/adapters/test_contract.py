"""Every built-in adapter keeps the contract of svarinn_daemon.testing, through the registry;
and the contract checks catch an adapter that breaks it."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from svarinn_daemon.adapters import (
    AdapterRegistry,
    ArchiveAdapter,
    ArchiveTransaction,
    DocumentMetadata,
    LetterOrigin,
    VerificationRecord,
)
from svarinn_daemon.adapters.memory import MemoryArchive, StoredLetter
from svarinn_daemon.config import ArchiveConfig
from svarinn_daemon.errors import ArchiveError
from svarinn_daemon.testing import (
    ADAPTER_CHECKS,
    AdapterCheck,
    check_adapter_contract,
    check_commit_then_has,
    check_optional_methods,
    check_probe_stores_nothing,
    check_second_commit_returns_existing_ref,
)

BUILT_IN = ["filesystem", "memory"]


def factory(kind: str) -> Callable[[Path], ArchiveAdapter]:
    """An empty archive of ``kind`` in ``directory``, made through the registry."""

    def make(directory: Path) -> ArchiveAdapter:
        return AdapterRegistry().create(ArchiveConfig("default", kind), state_directory=directory)

    return make


@pytest.fixture(params=BUILT_IN)
def adapter(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ArchiveAdapter]:
    state = tmp_path / "state"
    state.mkdir()
    made = factory(request.param)(state)
    yield made
    made.close()


@pytest.mark.parametrize("check", ADAPTER_CHECKS, ids=lambda c: c.__name__)
def test_built_in_adapters_keep_each_rule(
    adapter: ArchiveAdapter, check: AdapterCheck, tmp_path: Path
) -> None:
    check(adapter, tmp_path)


@pytest.mark.parametrize("kind", BUILT_IN)
def test_check_adapter_contract_runs_every_rule(kind: str, tmp_path: Path) -> None:
    given: list[Path] = []
    make = factory(kind)

    def tracked(directory: Path) -> ArchiveAdapter:
        assert not any(directory.iterdir())  # fresh and empty
        given.append(directory)
        return make(directory)

    check_adapter_contract(tracked, tmp_path)
    assert len(set(given)) == len(ADAPTER_CHECKS)  # a fresh adapter for each rule


_RECORD = VerificationRecord(
    "ab" * 32,
    0,
    True,
    "pdf",
    True,
    datetime(2026, 1, 2, tzinfo=UTC),
    datetime(2026, 1, 2, tzinfo=UTC),
)


class StoresTwice(MemoryArchive):
    """Breaks the idempotency rule: every commit stores the letter anew."""

    def _store(self, letter: StoredLetter) -> str:
        self.commits += 1
        return f"{self.ref(letter.forsendelse_id)}#{self.commits}"


class ForgetsCommits(MemoryArchive):
    """Breaks the crash rule: has() never finds a committed letter."""

    def has(self, forsendelse_id: str) -> str | None:
        return None


class AsksWithoutOrigin(MemoryArchive):
    """Breaks an optional method: has_from() never finds what begin() committed."""

    def has_from(self, origin: LetterOrigin | None, forsendelse_id: str) -> str | None:
        return None

    def begin_from(
        self, origin: LetterOrigin | None, forsendelse_id: str, metadata: Mapping[str, Any]
    ) -> ArchiveTransaction:
        return self.begin(forsendelse_id, metadata)


class AdvisesInProse(MemoryArchive):
    """Breaks an optional method: warnings() answers one string, not a list of them."""

    def warnings(self) -> str:
        return "check your archive"


class ProbesWithALetter(MemoryArchive):
    """Breaks the probe rule: its probe stores a letter to see whether the archive works."""

    def probe(self) -> bool:
        tx = self.begin("d1c6d795-f1a0-4a36-bce1-a4d9f26696db", {})
        tx.commit(_RECORD)
        return True


@pytest.mark.parametrize(
    ("broken", "check", "message"),
    [
        (StoresTwice, check_second_commit_returns_existing_ref, "committed twice"),
        (ForgetsCommits, check_commit_then_has, "has\\(\\) returned None"),
        (ProbesWithALetter, check_probe_stores_nothing, "after probe\\(\\) has\\(\\) finds"),
        (AsksWithoutOrigin, check_optional_methods, "has_from\\(\\) returned None"),
        (AdvisesInProse, check_optional_methods, "warnings\\(\\) returned 'check"),
    ],
)
def test_the_checks_catch_a_broken_adapter(
    broken: Callable[[], ArchiveAdapter], check: AdapterCheck, message: str, tmp_path: Path
) -> None:
    with pytest.raises(AssertionError, match=message):
        check(broken(), tmp_path)
    with pytest.raises(AssertionError, match="archive adapter contract"):
        check_adapter_contract(lambda _directory: broken(), tmp_path / "all")


def test_a_size_that_differs_from_the_metadata_is_refused_by_filesystem(tmp_path: Path) -> None:
    adapter = AdapterRegistry().create(
        ArchiveConfig("default", "filesystem"), state_directory=tmp_path
    )
    tx = adapter.begin("x1", {})
    data = DocumentMetadata("application/pdf", "00" * 32, 4, True, "brev.pdf")
    with pytest.raises(ArchiveError, match=r"stored 3 bytes, but its metadata says 4") as info:
        tx.add_document("a.pdf", io.BytesIO(b"one"), data)
    assert info.value.temporary
    tx.abort()
    assert adapter.cleanup(timedelta(0)) == 0
