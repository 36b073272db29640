"""Reading one TOML table of the config file: the option reader, with errors that name the
file and the dotted key, nested tables, and inline secrets warned about."""

from __future__ import annotations

import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from svarinn_daemon.config.reader import OptionReader, toml_type
from svarinn_daemon.errors import ConfigError

__all__ = ["Context", "Table"]


class Table(OptionReader):
    """One TOML table being read; ``dotted`` is its place in the file (``accounts[0].http``)."""

    unknown = "unknown key"

    def __init__(self, data: Mapping[str, Any], dotted: str, ctx: Context):
        super().__init__(data, base_dir=ctx.base_dir, environ=ctx.environ, warnings=ctx.warnings)
        self.dotted = dotted
        self.ctx = ctx

    def key(self, name: str) -> str:
        return f"{self.dotted}.{name}" if self.dotted else name

    def where(self, key: str) -> str:
        return self.key(key)

    def error(self, key: str, message: str) -> ConfigError:
        return ConfigError(message, source=str(self.ctx.source), key=self.key(key))

    def table(self, name: str) -> Table:
        self.known.add(name)
        value = self.data.get(name, {})
        if not isinstance(value, dict):
            self.fail(name, f"must be a table ([{self.key(name)}]), not {toml_type(value)}")
        return Table(value, self.key(name), self.ctx)

    def tables(self, name: str) -> list[Table]:
        self.known.add(name)
        value = self.data.get(name, [])
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            self.fail(name, f"must be an array of tables ([[{self.key(name)}]])")
        return [Table(v, f"{self.key(name)}[{i}]", self.ctx) for i, v in enumerate(value)]


class Context:
    def __init__(self, source: Path, environ: Mapping[str, str], *, load_keys: bool = True):
        self.source = source
        self.load_keys = load_keys
        self.base_dir = source.parent
        self.environ = environ
        self.hostname = socket.gethostname()
        self.warnings: list[str] = []
