"""Find archive adapters by name through the entry-point group ``svarinn_daemon.archive_adapters``.

A third-party package adds an adapter by declaring, in its own pyproject.toml::

    [project.entry-points."svarinn_daemon.archive_adapters"]
    mycase = "mycase_archive:create_adapter"

where ``create_adapter(options, context)`` returns an object that satisfies
:class:`~svarinn_daemon.adapters.base.ArchiveAdapter`. Entry points are imported only when
their name is asked for, so a broken plugin breaks only the archives that use it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import TYPE_CHECKING, Any

from svarinn_daemon.adapters.base import AdapterContext, AdapterFactory, ArchiveAdapter
from svarinn_daemon.errors import DaemonError, PluginError
from svarinn_daemon.plugins import EntryPointRegistry

if TYPE_CHECKING:
    from svarinn_daemon.config.model import ArchiveConfig

__all__ = ["ENTRY_POINT_GROUP", "AdapterRegistry"]

ENTRY_POINT_GROUP = "svarinn_daemon.archive_adapters"

_PROTOCOL_METHODS = ("has", "begin", "cleanup", "close")


class AdapterRegistry:
    """The installed adapters. Pass ``entry_points`` to use others than the installed ones."""

    def __init__(self, entry_points: Iterable[EntryPoint] | None = None):
        self._registry: EntryPointRegistry[AdapterFactory] = EntryPointRegistry(
            ENTRY_POINT_GROUP,
            kind="archive adapter",
            protocol="ArchiveAdapter",
            methods=_PROTOCOL_METHODS,
            factory_signature="factory(options, context) returning an ArchiveAdapter",
            entry_points=entry_points,
        )

    def names(self) -> list[str]:
        """The adapter names that are installed (nothing is imported)."""
        return self._registry.names()

    def factory(self, name: str) -> AdapterFactory:
        """Import the entry point ``name`` (once) and check that it can make adapters."""
        return self._registry.factory(name)

    def create(
        self,
        archive: ArchiveConfig,
        *,
        state_directory: Path,
        base_dir: Path | None = None,
        source: Path | None = None,
        worker_id: str | None = None,
    ) -> ArchiveAdapter:
        """Make the adapter for ``[archives.NAME]``; its options are checked by its factory."""
        factory = self.factory(archive.adapter)
        context = AdapterContext(
            archive_name=archive.name,
            state_directory=state_directory,
            base_dir=base_dir if base_dir is not None else state_directory,
            source=source,
            worker_id=worker_id,
        )
        options: Mapping[str, Any] = archive.options
        try:
            adapter = factory(options, context)
        except DaemonError:
            raise
        except Exception as exc:
            raise PluginError(
                f"archive adapter {archive.adapter!r} failed to start for "
                f"[archives.{archive.name}]: {type(exc).__name__}: {exc}"
            ) from exc
        self._registry.check_product(archive.adapter, adapter, ArchiveAdapter)
        return adapter
