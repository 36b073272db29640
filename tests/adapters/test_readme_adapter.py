"""docs/adapters.md's "Writing an adapter" example is real: extracted, installed as an
entry point in a throwaway directory, loaded through the registry and held to the contract."""

from __future__ import annotations

import importlib
import sys
import textwrap
from collections.abc import Iterator
from importlib.metadata import EntryPoint
from pathlib import Path
from types import ModuleType

import pytest

from svarinn_daemon.adapters import ENTRY_POINT_GROUP, AdapterRegistry, ArchiveAdapter
from svarinn_daemon.config import ArchiveConfig
from svarinn_daemon.testing import check_adapter_contract

README = Path(__file__).resolve().parents[2] / "docs" / "adapters.md"


def readme_adapter_source() -> str:
    text = README.read_text("utf-8")
    section = text.split("## Writing an adapter", 1)[1]
    start = section.index("    # mycase_archive.py\n")
    lines = []
    for line in section[start:].splitlines():
        if line and not line.startswith("    "):
            break
        lines.append(line)
    return textwrap.dedent("\n".join(lines)).strip() + "\n"


@pytest.fixture
def mycase(tmp_path: Path) -> Iterator[ModuleType]:
    package = tmp_path / "site"
    package.mkdir()
    (package / "mycase_archive.py").write_text(readme_adapter_source(), "utf-8")
    sys.path.insert(0, str(package))
    try:
        yield importlib.import_module("mycase_archive")
    finally:
        sys.path.remove(str(package))
        sys.modules.pop("mycase_archive", None)


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
