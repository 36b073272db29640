"""Plugins found by name through an entry-point group, imported only when asked for.

Archive adapters and notifiers both use :class:`EntryPointRegistry`: a broken plugin breaks
only the archives or notifiers that name it, and every failure is a :class:`PluginError`
that says which entry point and what is wrong with it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from importlib.metadata import EntryPoint, entry_points
from typing import Generic, TypeVar, cast

from svarinn_daemon.errors import PluginError

__all__ = ["EntryPointRegistry", "missing_methods"]

F = TypeVar("F")


def missing_methods(obj: object, methods: Iterable[str]) -> list[str]:
    """The protocol methods ``obj`` (an instance or a class) does not have."""
    return [m for m in methods if not callable(getattr(obj, m, None))]


class EntryPointRegistry(Generic[F]):
    """The factories installed in one entry-point group.

    ``kind`` names the plugin in messages ("archive adapter"), ``protocol`` is the protocol
    the factory's products satisfy and ``methods`` its method names: when an entry point
    loads to a class, the class is checked for them. ``factory_signature`` says what the
    entry point must be ("factory(options, context) returning an ArchiveAdapter"). Pass
    ``entry_points`` to use others than the installed ones (tests, embedding).
    """

    def __init__(
        self,
        group: str,
        *,
        kind: str,
        protocol: str,
        methods: tuple[str, ...],
        factory_signature: str,
        entry_points: Iterable[EntryPoint] | None = None,
    ):
        self.group = group
        self.kind = kind
        self.protocol = protocol
        self.methods = methods
        self.factory_signature = factory_signature
        self._given = tuple(entry_points) if entry_points is not None else None
        self._points: dict[str, list[EntryPoint]] | None = None
        self._factories: dict[str, F] = {}
        self._lock = threading.Lock()

    def _entry_points(self) -> dict[str, list[EntryPoint]]:
        if self._points is None:
            found = self._given if self._given is not None else entry_points(group=self.group)
            points: dict[str, list[EntryPoint]] = {}
            for point in found:
                # The same distribution seen twice on sys.path is one plugin, not a clash.
                if point.value not in {p.value for p in points.get(point.name, [])}:
                    points.setdefault(point.name, []).append(point)
            self._points = points
        return self._points

    def names(self) -> list[str]:
        """The installed names (nothing is imported)."""
        return sorted(self._entry_points())

    def factory(self, name: str) -> F:
        """Import the entry point ``name`` (once) and check that it can make plugins."""
        with self._lock:
            if name in self._factories:
                return self._factories[name]
            points = self._entry_points().get(name)
            if not points:
                available = ", ".join(self.names()) or "none"
                raise PluginError(
                    f"no {self.kind} named {name!r} is installed (available: {available}; "
                    f"{self.kind}s are entry points in the group {self.group!r})"
                )
            if len(points) > 1:
                values = ", ".join(p.value for p in points)
                raise PluginError(f"{self.kind} {name!r} is installed twice: {values}")
            point = points[0]
            try:
                loaded = point.load()
            except Exception as exc:  # any import-time failure of a plugin is its fault
                raise PluginError(
                    f"{self.kind} {name!r} ({point.value}) cannot be loaded: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
            if not callable(loaded):
                raise PluginError(
                    f"{self.kind} {name!r} ({point.value}) is not callable; it must be a "
                    f"{self.factory_signature}"
                )
            if isinstance(loaded, type):
                missing = missing_methods(loaded, self.methods)
                if missing:
                    raise PluginError(
                        f"{self.kind} {name!r} ({point.value}) lacks the method(s) "
                        f"{', '.join(missing)} of the {self.protocol} protocol"
                    )
            factory = cast(F, loaded)
            self._factories[name] = factory
            return factory

    def check_product(self, name: str, product: object, protocol_type: type) -> None:
        """Refuse what a factory returned when it does not satisfy the protocol."""
        if not isinstance(product, protocol_type):
            missing = missing_methods(product, self.methods)
            raise PluginError(
                f"{self.kind} {name!r} returned {type(product).__name__}, which "
                f"lacks {', '.join(missing)} of the {self.protocol} protocol"
            )
