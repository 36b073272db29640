"""The registry finds adapters by entry-point name, lazily, and checks them on load."""

from __future__ import annotations

from collections.abc import Mapping
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any

import pytest

from svarinn_daemon.adapters import ENTRY_POINT_GROUP, AdapterContext, AdapterRegistry
from svarinn_daemon.adapters.filesystem import FilesystemArchive
from svarinn_daemon.adapters.memory import MemoryArchive
from svarinn_daemon.config import ArchiveConfig
from svarinn_daemon.errors import ConfigError, PluginError

NOT_CALLABLE = 42


class IncompleteAdapter:
    def has(self, forsendelse_id: str) -> str | None:
        return None


def returns_wrong_object(options: Mapping[str, Any], context: AdapterContext) -> object:
    return IncompleteAdapter()


def crashes(options: Mapping[str, Any], context: AdapterContext) -> object:
    raise RuntimeError("backend exploded")


def validates(options: Mapping[str, Any], context: AdapterContext) -> MemoryArchive:
    raise context.option_error("url", "is required")


def point(name: str, value: str) -> EntryPoint:
    return EntryPoint(name=name, value=value, group=ENTRY_POINT_GROUP)


def registry(*points: EntryPoint) -> AdapterRegistry:
    return AdapterRegistry(points)


def test_installed_built_ins_are_found() -> None:
    assert {"filesystem", "memory"} <= set(AdapterRegistry().names())


def test_create_filesystem_with_defaults(tmp_path: Path) -> None:
    adapter = AdapterRegistry().create(
        ArchiveConfig("default", "filesystem"), state_directory=tmp_path
    )
    assert isinstance(adapter, FilesystemArchive)
    assert adapter.root == tmp_path / "archive"
    assert (adapter.file_mode, adapter.dir_mode) == (0o640, 0o750)


def test_missing_name_lists_the_available_ones(tmp_path: Path) -> None:
    with pytest.raises(PluginError) as info:
        AdapterRegistry().create(ArchiveConfig("x", "filesytem"), state_directory=tmp_path)
    message = str(info.value)
    assert "'filesytem'" in message
    assert "filesystem" in message
    assert "memory" in message
    assert ENTRY_POINT_GROUP in message


def test_entry_points_are_imported_only_when_asked_for(tmp_path: Path) -> None:
    reg = registry(
        point("broken", "no_such_module_anywhere:factory"),
        point("memory", "svarinn_daemon.adapters.memory:create_adapter"),
    )
    assert reg.names() == ["broken", "memory"]
    reg.create(ArchiveConfig("a", "memory"), state_directory=tmp_path)  # broken is not loaded
    with pytest.raises(PluginError, match=r"'broken' \(no_such_module_anywhere:factory\) cannot"):
        reg.factory("broken")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("tests.adapters.test_registry:NOT_CALLABLE", "is not callable"),
        ("tests.adapters.test_registry:IncompleteAdapter", "lacks the method"),
        ("tests.adapters.test_registry:no_such_attribute", "cannot be loaded"),
    ],
)
def test_bad_entry_points_are_refused_on_load(value: str, message: str) -> None:
    with pytest.raises(PluginError, match=message):
        registry(point("bad", value)).factory("bad")


def test_factory_result_is_checked_against_the_protocol(tmp_path: Path) -> None:
    reg = registry(point("wrong", "tests.adapters.test_registry:returns_wrong_object"))
    with pytest.raises(PluginError, match=r"lacks begin, cleanup, close"):
        reg.create(ArchiveConfig("a", "wrong"), state_directory=tmp_path)


def test_factory_crash_becomes_plugin_error(tmp_path: Path) -> None:
    reg = registry(point("crash", "tests.adapters.test_registry:crashes"))
    with pytest.raises(PluginError, match=r"\[archives.a\]: RuntimeError: backend exploded"):
        reg.create(ArchiveConfig("a", "crash"), state_directory=tmp_path)


def test_factory_config_errors_name_file_and_key(tmp_path: Path) -> None:
    reg = registry(point("v", "tests.adapters.test_registry:validates"))
    source = tmp_path / "config.toml"
    with pytest.raises(ConfigError) as info:
        reg.create(ArchiveConfig("case", "v"), state_directory=tmp_path, source=source)
    assert info.value.key == "archives.case.url"
    assert str(info.value) == f"{source}: archives.case.url: is required"


def test_same_name_from_two_places_is_refused() -> None:
    reg = registry(
        point("dup", "svarinn_daemon.adapters.memory:create_adapter"),
        point("dup", "svarinn_daemon.adapters.filesystem:create_adapter"),
    )
    with pytest.raises(PluginError, match=r"installed twice"):
        reg.factory("dup")


def test_factories_are_loaded_once() -> None:
    reg = AdapterRegistry()
    assert reg.factory("memory") is reg.factory("memory")


def test_memory_adapter_refuses_options(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"archives.t.root: unknown option \(known: none\)"):
        AdapterRegistry().create(
            ArchiveConfig("t", "memory", {"root": "/x"}), state_directory=tmp_path
        )
