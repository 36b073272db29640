"""Find archive adapters by name through the entry-point group ``svarinn_daemon.archive_adapters``.

A third-party package adds an adapter by declaring, in its own pyproject.toml::

    [project.entry-points."svarinn_daemon.archive_adapters"]
    mycase = "mycase_archive:create_adapter"

where ``create_adapter(options, context)`` returns an object that satisfies
:class:`~svarinn_daemon.adapters.base.ArchiveAdapter`. Entry points are imported only when
their name is asked for, so a broken plugin breaks only the archives that use it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from svarinn_daemon.adapters.base import AdapterContext, AdapterFactory, ArchiveAdapter
from svarinn_daemon.errors import PluginError, SvarinnError

if TYPE_CHECKING:
    from svarinn_daemon.config.model import ArchiveConfig

__all__ = ["ENTRY_POINT_GROUP", "AdapterRegistry"]

ENTRY_POINT_GROUP = "svarinn_daemon.archive_adapters"

_PROTOCOL_METHODS = ("has", "begin", "cleanup", "close")


class AdapterRegistry:
    """The installed adapters. Pass ``entry_points`` to use others than the installed ones."""

    def __init__(self, entry_points: Iterable[EntryPoint] | None = None):
        self._given = tuple(entry_points) if entry_points is not None else None
        self._points: dict[str, list[EntryPoint]] | None = None
        self._factories: dict[str, AdapterFactory] = {}
        self._lock = threading.Lock()

    def _entry_points(self) -> dict[str, list[EntryPoint]]:
        if self._points is None:
            found = (
                self._given if self._given is not None else entry_points(group=ENTRY_POINT_GROUP)
            )
            points: dict[str, list[EntryPoint]] = {}
            for point in found:
                if point.value not in {p.value for p in points.get(point.name, [])}:
                    points.setdefault(point.name, []).append(point)
            self._points = points
        return self._points

    def names(self) -> list[str]:
        """The adapter names that are installed (nothing is imported)."""
        return sorted(self._entry_points())

    def factory(self, name: str) -> AdapterFactory:
        """Import the entry point ``name`` (once) and check that it can make adapters."""
        with self._lock:
            if name in self._factories:
                return self._factories[name]
            points = self._entry_points().get(name)
            if not points:
                available = ", ".join(self.names()) or "none"
                raise PluginError(
                    f"no archive adapter named {name!r} is installed (available: {available}; "
                    f"adapters are entry points in the group {ENTRY_POINT_GROUP!r})"
                )
            if len(points) > 1:
                values = ", ".join(p.value for p in points)
                raise PluginError(f"archive adapter {name!r} is installed twice: {values}")
            point = points[0]
            try:
                loaded = point.load()
            except Exception as exc:  # any import-time failure of a plugin is its fault
                raise PluginError(
                    f"archive adapter {name!r} ({point.value}) cannot be loaded: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
            if not callable(loaded):
                raise PluginError(
                    f"archive adapter {name!r} ({point.value}) is not callable; it must be a "
                    "factory(options, context) returning an ArchiveAdapter"
                )
            if isinstance(loaded, type):
                missing = [m for m in _PROTOCOL_METHODS if not callable(getattr(loaded, m, None))]
                if missing:
                    raise PluginError(
                        f"archive adapter {name!r} ({point.value}) lacks the method(s) "
                        f"{', '.join(missing)} of the ArchiveAdapter protocol"
                    )
            factory = cast(AdapterFactory, loaded)
            self._factories[name] = factory
            return factory

    def create(
        self,
        archive: ArchiveConfig,
        *,
        state_directory: Path,
        base_dir: Path | None = None,
        source: Path | None = None,
    ) -> ArchiveAdapter:
        """Make the adapter for ``[archives.NAME]``; its options are checked by its factory."""
        factory = self.factory(archive.adapter)
        context = AdapterContext(
            archive_name=archive.name,
            state_directory=state_directory,
            base_dir=base_dir if base_dir is not None else state_directory,
            source=source,
        )
        options: Mapping[str, Any] = archive.options
        try:
            adapter = factory(options, context)
        except SvarinnError:
            raise
        except Exception as exc:
            raise PluginError(
                f"archive adapter {archive.adapter!r} failed to start for "
                f"[archives.{archive.name}]: {type(exc).__name__}: {exc}"
            ) from exc
        if not isinstance(adapter, ArchiveAdapter):
            missing = [m for m in _PROTOCOL_METHODS if not callable(getattr(adapter, m, None))]
            raise PluginError(
                f"archive adapter {archive.adapter!r} returned {type(adapter).__name__}, which "
                f"lacks {', '.join(missing)} of the ArchiveAdapter protocol"
            )
        return adapter
