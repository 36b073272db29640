"""The built-in ``command`` archive: run a program per letter, the Unix way.

Like Postfix's ``pipe`` transport: the letter is gathered in a directory of the filesystem
adapter's shape (documents under their sanitised names and ``forsendelse.json``), named in
``SVARINN_LETTER_DIR``, and the program ``command`` (an argv, never a shell) runs with
``SVARINN_FORSENDELSE_ID`` (the idempotency key), ``SVARINN_ACCOUNT`` and ``SVARINN_API``,
and ``forsendelse.json`` on standard input. Every file is fsynced before the program runs,
so one that links or moves them into its own store keeps durable data.

The document names are the sender's words, so none of them is where the program might take
it for its own: the program starts in the letter directory's private parent, which holds
only ``letter/`` (never in the letter directory, where ``import.sh`` or ``json.py`` could be
a sender's), a relative program or script in ``command`` is resolved against the
configuration file's directory when the configuration is read, Python is told not to import
from the working directory (``PYTHONSAFEPATH=1``), and no stored name starts with ``-``.
Its environment is an allow-list (``PATH``, ``LANG``, ``LC_*``, ``TZ``, ``HOME``, ``TMPDIR``)
plus the option ``environment``: nothing of the daemon's own secrets reaches it.

Exit status (sysexits): 0 archived, the last non-empty line of standard output (at most 500
characters) is the reference; 75 (``EX_TEMPFAIL``), a signal or the timeout (the whole
process group is killed): temporary; anything else: permanent, with the end of standard
error as the message. ``check_command`` (optional, same environment, no input) answers
``has()``: 0 with a reference on standard output archived, 1 not, anything else (0 without
a reference included) temporary.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from svarinn_daemon.adapters.base import AdapterContext, LetterOrigin
from svarinn_daemon.adapters.options import AdapterOptions
from svarinn_daemon.adapters.process import OUTPUT_CAP, RunResult, run_program
from svarinn_daemon.adapters.staged import StagedArchive
from svarinn_daemon.adapters.staging import METADATA_FILE, StagedLetter
from svarinn_daemon.common import Clock, utc_now
from svarinn_daemon.errors import ArchiveError
from svarinn_daemon.logs import get_logger

__all__ = ["CommandArchive", "RunResult", "create_adapter", "safe_environ"]

EX_TEMPFAIL = 75
DEFAULT_TIMEOUT = timedelta(minutes=10)

# The daemon's variables a program may see; everything else (the SvarInn password under any
# name, DATABASE_URL, proxies with credentials, KRB5CCNAME...) stays with the daemon.
_PASSED = re.compile(r"PATH|LANG|LANGUAGE|LC_[A-Z_]+|TZ|HOME|TMPDIR")
_OWN = ("SVARINN_LETTER_DIR", "SVARINN_FORSENDELSE_ID", "SVARINN_ACCOUNT", "SVARINN_API")
_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SECRET_ARG = re.compile(r"(pass(word|wd)?|secret|token|api[-_]?key|auth)\w*[=:]", re.IGNORECASE)

log = get_logger(__name__)


def safe_environ(
    environ: Mapping[str, str], extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The allow-listed part of the daemon's environment, the operator's ``extra``, and
    ``PYTHONSAFEPATH=1`` (a Python program never imports from its working directory)."""
    env = {name: value for name, value in environ.items() if _PASSED.fullmatch(name)}
    env.update(extra or {})
    env["PYTHONSAFEPATH"] = "1"
    return env


class CommandArchive(StagedArchive):
    """Archive letters by running ``command`` on each; see the module docstring."""

    def __init__(
        self,
        command: Sequence[str],
        *,
        work_directory: Path,
        timeout: timedelta = DEFAULT_TIMEOUT,
        check_command: Sequence[str] | None = None,
        environ: Mapping[str, str] | None = None,
        environment: Mapping[str, str] | None = None,
        owner: str | None = None,
        now: Clock = utc_now,
    ):
        super().__init__(work_directory, timeout=timeout, owner=owner, now=now)
        self.command = tuple(command)
        self.check_command = tuple(check_command) if check_command else None
        self.lookup = f"check_command {self.check_command[0]}" if self.check_command else None
        self._environ = safe_environ(os.environ if environ is None else environ, environment)

    def __repr__(self) -> str:
        return f"CommandArchive(command={self.command[0]!r})"

    def environment(
        self, forsendelse_id: str, origin: LetterOrigin | None, letter_dir: Path | None
    ) -> dict[str, str]:
        env = dict(self._environ)
        env["SVARINN_FORSENDELSE_ID"] = forsendelse_id
        if origin is not None:
            env["SVARINN_ACCOUNT"] = origin.account
            env["SVARINN_API"] = origin.api
        if letter_dir is not None:
            env["SVARINN_LETTER_DIR"] = str(letter_dir)
        return env

    def warnings(self) -> list[str]:
        """What ``check-config`` should tell the operator about this archive."""
        argv = [*self.command, *(self.check_command or ())]
        out = [
            f"command: {arg[:40]!r} looks like a secret, and argv is printed and visible to "
            "every user in ps: give the program a file to read it from"
            for arg in argv
            if _SECRET_ARG.search(arg)
        ]
        if self.check_command is not None:
            return out
        return [
            *out,
            "command has no check_command: after a crash, a timeout or a restored ledger "
            "the daemon cannot know whether the program finished, and runs it again; it "
            "must be idempotent on SVARINN_FORSENDELSE_ID (or set check_command)",
        ]

    def has_from(self, origin: LetterOrigin | None, forsendelse_id: str) -> str | None:
        """Ask ``check_command``; without one the daemon cannot know (None)."""
        if self.check_command is None:
            return None
        with self.staging.pinned() as root:  # no sender's name is ever at its top
            result = run_program(
                self.check_command,
                env=self.environment(forsendelse_id, origin, None),
                cwd=root,
                stdin=None,
                timeout=self.timeout.total_seconds(),
            )
        if result.returncode == 0 and not result.timed_out:
            reference = result.reference()
            if reference is not None:
                return reference
            # A script that always exits 0 would get every letter acknowledged unarchived.
            raise ArchiveError(
                f"check_command {self.check_command[0]} exited 0 for {forsendelse_id} without "
                'printing a reference: only that means "archived" (exit 1 means not); check '
                "check_command",
                temporary=True,
            )
        if result.returncode == 1 and not result.timed_out:
            return None
        detail = f": {result.message()}" if result.message() else ""
        raise ArchiveError(
            f"check_command {self.check_command[0]} {result.ending()} for {forsendelse_id}{detail}",
            temporary=True,
        )

    def deliver(self, origin: LetterOrigin | None, staged: StagedLetter) -> str:
        """Run the program on the staged letter, unless ``check_command`` says another
        attempt got there first."""
        if self.check_command is not None:
            existing = self.has_from(origin, staged.forsendelse_id)
            if existing is not None:
                return existing
        staged.sync()  # the program may keep the very files: durable before it runs
        # Started in the pinned home, which holds only letter/: no name the sender chose.
        with staged.pinned() as home, staged.open_file(METADATA_FILE) as record:
            result = run_program(
                self.command,
                env=self.environment(staged.forsendelse_id, origin, staged.path),
                cwd=home,
                stdin=record,
                timeout=self.timeout.total_seconds(),
            )
        return self._answer(result, staged.forsendelse_id)

    def _answer(self, result: RunResult, forsendelse_id: str) -> str:
        program = self.command[0]
        if result.returncode == 0 and not result.timed_out:
            reference = result.reference()
            if reference is None:
                log.warning(
                    "archive.command_without_reference",
                    program=program,
                    forsendelse_id=forsendelse_id,
                )
            return reference or forsendelse_id
        detail = f": {result.message()}" if result.message() else ""
        if result.timed_out:
            raise ArchiveError(
                f"{program} {result.ending()} after {self.timeout} for {forsendelse_id}{detail}",
                temporary=True,
            )
        temporary = result.returncode < 0 or result.returncode == EX_TEMPFAIL
        raise ArchiveError(f"{program} {result.ending()}{detail}", temporary=temporary)


def resolve_argv(argv: Sequence[str], context: AdapterContext, key: str) -> tuple[str, ...]:
    """Relative paths in a program's argv, resolved against the configuration file's
    directory (as every other relative path in the file is), never the working directory:
    the program itself when it names a path (``./import.sh``, ``bin/import``), and each
    argument that names a file there (``["/bin/sh", "import.sh"]``). A relative program
    that is not there is refused; a bare name (``python3``) is looked up in ``PATH``."""
    program, *args = argv
    if "/" in program and not os.path.isabs(program):
        resolved = context.base_dir / program
        if not resolved.is_file():
            raise context.option_error(
                key,
                f"{program!r} is not a file in {context.base_dir} (relative paths are read "
                "from the configuration file's directory); give an absolute path",
            )
        program = str(resolved)
    out = [program]
    for arg in args:
        here = context.base_dir / arg
        relative = arg and not arg.startswith("-") and not os.path.isabs(arg)
        out.append(str(here) if relative and here.is_file() else arg)
    return tuple(out)


def _environment(reader: AdapterOptions, context: AdapterContext) -> dict[str, str]:
    extra = reader.string_table("environment")
    for name in extra:
        if not _VARIABLE.fullmatch(name) or name in _OWN or name == "PYTHONSAFEPATH":
            raise context.option_error(
                "environment", f"{name!r} cannot be set: a variable name of the program's own"
            )
    return extra


def create_adapter(options: Mapping[str, Any], context: AdapterContext) -> CommandArchive:
    """Entry point ``command``: options ``command``, ``check_command``, ``timeout``,
    ``work_directory``, ``environment``."""
    reader = AdapterOptions(options, context)
    command = resolve_argv(reader.argv("command", required=True) or (), context, "command")
    check = reader.argv("check_command", required=False)
    check_command = resolve_argv(check, context, "check_command") if check else None
    timeout = reader.duration("timeout", DEFAULT_TIMEOUT)
    work = reader.work_directory()
    environment = _environment(reader, context)
    reader.finish()
    return CommandArchive(
        command,
        work_directory=work,
        timeout=timeout,
        check_command=check_command,
        environment=environment,
        owner=context.worker_id,
    )


__all__ += ["EX_TEMPFAIL", "METADATA_FILE", "OUTPUT_CAP", "run_program"]
