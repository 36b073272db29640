"""The ``svarinn-daemon`` command line.

Each subcommand lives in its own module with ``register(subparsers)``; the module sets
``func`` (and, when its standard output carries data, ``logs_to_stderr``). Only the module of
the command that runs is imported (see ``commands.py``); the others appear in ``--help`` by
name and summary alone, and each module imports what its command needs inside the command.

Exit codes: 0 ok, 1 runtime failure, 2 configuration or usage error.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from svarinn_daemon import __version__
from svarinn_daemon.cli.commands import COMMANDS, command_in
from svarinn_daemon.common import LOG_LEVELS
from svarinn_daemon.errors import ConfigError, DaemonError

if TYPE_CHECKING:
    from svarinn_daemon.config import Config

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_CONFIG = 2

EPILOG = """\
exit codes: 0 ok, 1 runtime failure, 2 configuration or usage error.
The configuration file defaults to $CONFIGURATION_DIRECTORY/config.toml when systemd sets
CONFIGURATION_DIRECTORY, otherwise /etc/svarinn-daemon/config.toml."""


@dataclass
class Context:
    """What every command gets: parsed arguments, the environment and the config on demand."""

    args: argparse.Namespace
    environ: Mapping[str, str]
    stdout: TextIO
    stderr: TextIO
    _config: Config | None = field(default=None, repr=False)
    _config_has_keys: bool = field(default=False, repr=False)
    _log_stream: TextIO | None = field(default=None, repr=False)

    @property
    def config_path(self) -> Path:
        from svarinn_daemon.config import DEFAULT_CONFIG_PATH

        if self.args.config is not None:
            return Path(self.args.config)
        conf_dir = self.environ.get("CONFIGURATION_DIRECTORY", "").split(":")[0]
        return Path(conf_dir) / "config.toml" if conf_dir else DEFAULT_CONFIG_PATH

    def config(self, *, keys: bool = True) -> Config:
        """Load the config once, then log with its level and with its secrets redacted;
        ``keys=False`` for commands that never decrypt (see ``load_config``)."""
        from svarinn_daemon.config import load_config

        if self._config is None or (keys and not self._config_has_keys):
            self._config = load_config(self.config_path, environ=self.environ, keys=keys)
            self._config_has_keys = keys
            self.setup_logging(self._config)
        return self._config

    def setup_logging(self, config: Config | None = None, stream: TextIO | None = None) -> None:
        """Log with the config's (or the options') level and format to ``stream`` (kept for
        later calls), by default standard error or standard output (``logs_to_stderr``)."""
        from svarinn_daemon.logs import configure_logging

        self._log_stream = stream = stream or self._log_stream
        if stream is None:
            stream = self.stderr if getattr(self.args, "logs_to_stderr", False) else self.stdout
        level = self.args.log_level or (config.logging.level if config else "info")
        fmt = self.args.log_format or (config.logging.format if config else "auto")
        configure_logging(
            level=level, fmt=fmt, stream=stream, secrets=config.secret_values() if config else ()
        )


Command = Callable[[Context], int]


Register = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]


def _register(module: str) -> Register:
    register: Register = importlib.import_module(f"svarinn_daemon.cli.{module}").register
    return register


def _add_global_options(parser: argparse.ArgumentParser, *, default: object) -> None:
    """--config, --log-level, --log-format; a subcommand's copy defaults to SUPPRESS, so it
    sets the value only when given after the subcommand and never erases one given before."""
    group = parser.add_argument_group("global options (before or after the command)")
    group.add_argument(
        "-c", "--config", metavar="PATH", help="configuration file (TOML)", default=default
    )
    group.add_argument(
        "--log-level",
        choices=LOG_LEVELS,
        help="overrides [logging] level",
        default=default,
    )
    group.add_argument(
        "--log-format",
        choices=("auto", "json", "console"),
        help="overrides [logging] format (auto: readable on a terminal, JSON lines otherwise)",
        default=default,
    )


def _subparsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """Every subcommand's parser, nested ones (``alerts test``) included."""
    found: list[argparse.ArgumentParser] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):
                found.append(child)
                found.extend(_subparsers(child))
    return found


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole command line; with ``only``, that command in full and the others as a name
    and a summary (enough for ``--help`` and for parsing ``only``'s arguments); ``only=""``
    gives every command as a summary."""
    parser = argparse.ArgumentParser(
        prog="svarinn-daemon",
        description="Fetch letters from KS SvarInn, decrypt and verify them, hand them to the "
        "archive and acknowledge them before SvarUt sends them on paper.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _add_global_options(parser, default=None)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    registered: set[str] = set()
    for name, (module, summary) in COMMANDS.items():
        if only is None or COMMANDS.get(only, ("",))[0] == module:
            if module not in registered:
                _register(module)(sub)
                registered.add(module)
        else:
            sub.add_parser(name, help=summary)
    for subparser in _subparsers(parser):
        _add_global_options(subparser, default=argparse.SUPPRESS)
    return parser


def main(
    argv: Sequence[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    words = list(sys.argv[1:] if argv is None else argv)
    # No command named (--help, --version, a usage error): every command as a summary.
    parser = build_parser(only=command_in(words) or "")
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            args = parser.parse_args(words)
    except SystemExit as exc:  # argparse: --help/--version exit 0, usage errors exit 2
        return int(exc.code or 0)
    ctx = Context(
        args=args, environ=dict(os.environ) if environ is None else environ, stdout=out, stderr=err
    )
    ctx.setup_logging()
    func: Command = args.func
    try:
        return func(ctx)
    except ConfigError as exc:
        print(f"svarinn-daemon: configuration error: {exc}", file=err)
        return EXIT_CONFIG
    except DaemonError as exc:
        print(f"svarinn-daemon: {exc.kind}: {exc}", file=err)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print("svarinn-daemon: interrupted", file=err)
        return EXIT_FAILURE
    except BrokenPipeError:
        return EXIT_FAILURE
