"""docs/adapters.md's "Writing an adapter" examples are real: extracted, installed as entry
points in a throwaway directory, loaded through the registry and held to the contract. The
second one proves that an adapter handing a letter on writes only its delivery step and its
options (issue #25, item 1)."""

from __future__ import annotations

import contextlib
import importlib
import sys
import textwrap
from collections.abc import Iterator
from importlib.metadata import EntryPoint
from pathlib import Path
from types import ModuleType

import pytest

from svarinn_daemon.adapters import (
    ENTRY_POINT_GROUP,
    AdapterRegistry,
    ArchiveAdapter,
    ProbingAdapter,
)
from svarinn_daemon.config import ArchiveConfig
from svarinn_daemon.testing import check_adapter_contract

README = Path(__file__).resolve().parents[2] / "docs" / "adapters.md"


def readme_adapter_source(module: str = "mycase_archive") -> str:
    text = README.read_text("utf-8")
    section = text.split("## Writing an adapter", 1)[1]
    start = section.index(f"    # {module}.py\n")
    lines = []
    for line in section[start:].splitlines():
        if line and not line.startswith("    "):
            break
        lines.append(line)
    return textwrap.dedent("\n".join(lines)).strip() + "\n"


@contextlib.contextmanager
def installed(module: str, tmp_path: Path) -> Iterator[ModuleType]:
    package = tmp_path / "site"
    package.mkdir()
    (package / f"{module}.py").write_text(readme_adapter_source(module), "utf-8")
    sys.path.insert(0, str(package))
    try:
        yield importlib.import_module(module)
    finally:
        sys.path.remove(str(package))
        sys.modules.pop(module, None)


@pytest.fixture
def mycase(tmp_path: Path) -> Iterator[ModuleType]:
    with installed("mycase_archive", tmp_path) as module:
        yield module


def test_the_readme_example_is_about_thirty_lines_of_code() -> None:
    code = [line for line in readme_adapter_source().splitlines() if line.strip()]
    assert 30 <= len(code) <= 80


def test_the_readme_adapter_keeps_the_contract_through_its_entry_point(
    mycase: ModuleType, tmp_path: Path
) -> None:
    entry = EntryPoint("mycase", "mycase_archive:create_adapter", ENTRY_POINT_GROUP)
    registry = AdapterRegistry([entry])

    def make(directory: Path) -> ArchiveAdapter:
        archive = ArchiveConfig("sak", "mycase", {"root": str(directory / "zips")})
        return registry.create(archive, state_directory=directory)

    check_adapter_contract(make, tmp_path / "contract")
    assert mycase.ZipArchive is type(make(tmp_path))


def test_an_adapter_handing_letters_on_writes_only_its_delivery_and_options(
    tmp_path: Path,
) -> None:
    source = readme_adapter_source("mydrop_archive")
    code = [line for line in source.splitlines() if line.strip()]
    assert len(code) <= 40
    assert "def begin" not in source
    assert "def cleanup" not in source
    entry = EntryPoint("mydrop", "mydrop_archive:create_adapter", ENTRY_POINT_GROUP)
    registry = AdapterRegistry([entry])
    with installed("mydrop_archive", tmp_path) as mydrop:

        def make(directory: Path) -> ArchiveAdapter:
            archive = ArchiveConfig("sak", "mydrop", {"drop": str(directory / "drop")})
            return registry.create(archive, state_directory=directory)

        check_adapter_contract(make, tmp_path / "contract")
        adapter = make(tmp_path / "one")
        assert type(adapter) is mydrop.DropArchive
        assert isinstance(adapter, ProbingAdapter)
        assert adapter.probe() is True
