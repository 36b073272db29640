"""Migrating the ledger in a child interpreter, so the long-running daemon never loads alembic.

alembic and its migration scripts cost an interpreter about 12 MB that it keeps for as long
as it runs; ``run`` migrates once at start and then idles for months. So ``run`` asks a
short-lived child interpreter (:func:`_child`) to migrate, and opens a ledger that is
already at this code's revision (the check for that needs no alembic).

The child reads the ledger settings, password included, as JSON on standard input (never on
its command line, which ``ps`` shows) and answers with one JSON line on standard output: the
revision before and the head, or the error's kind and message, which the parent raises again
as the same typed error. Not imported by ``svarinn_daemon.ledger`` itself: the commands that
only read the ledger need none of this.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from svarinn_daemon.config import LedgerConfig
from svarinn_daemon.config.secrets import Secret
from svarinn_daemon.errors import (
    ConfigError,
    DaemonError,
    LedgerError,
    LedgerUnavailableError,
    SchemaMismatchError,
)
from svarinn_daemon.ledger.database import build_engine, describe_url
from svarinn_daemon.ledger.models import SCHEMA_REVISION
from svarinn_daemon.ledger.schema import SchemaState, migrate, needs_migration
from svarinn_daemon.logs import get_logger

log = get_logger("svarinn_daemon.ledger.schema")

# The errors a migration may end in, by the name the child reports.
_KINDS: dict[str, type[DaemonError]] = {
    cls.__name__: cls
    for cls in (ConfigError, LedgerError, LedgerUnavailableError, SchemaMismatchError)
}
_STDERR_TAIL = 2000
EXIT_PARENT_GONE = 3
# The child runs this, given the directory the parent imported svarinn_daemon from: with -P
# (no current directory on sys.path) it imports the very same code, never a svarinn_daemon
# that happens to lie in the directory the daemon was started in. That directory goes after
# the standard library (a json.py beside the package must not shadow the real one), but
# before the other entries, so it is our svarinn_daemon that is found.
_CHILD = (
    "import sys, sysconfig; "
    "std = {sysconfig.get_path('stdlib'), sysconfig.get_path('platstdlib')}; "
    "at = max((i + 1 for i, p in enumerate(sys.path) if p in std or "
    "p.endswith('lib-dynload') or p.endswith('.zip')), default=0); "
    "sys.path.insert(at, sys.argv[1]); "
    "from svarinn_daemon.ledger.isolated import _child; sys.exit(_child())"
)
# What the child gets of the daemon's environment: the locale, paths, the interpreter's own
# settings (so it imports what the parent imports), libpq's and TLS's settings (the ledger's
# password comes on its standard input, never in here).
_PASSED = re.compile(
    r"PATH|HOME|TMPDIR|TZ|LANG|LANGUAGE|LC_[A-Z_]+|PYTHON[A-Z_]*|PG[A-Z_]+|SSL_CERT_(FILE|DIR)"
)


def migrate_isolated(config: LedgerConfig, *, python: str = sys.executable) -> SchemaState:
    """Bring the ledger to this code's revision in a child process (nothing to do, and no
    child, when it is there already); raises the typed error the migration ended in."""
    engine = build_engine(config, busy_timeout=config.busy_timeout)
    try:
        if not needs_migration(engine):
            return SchemaState(SCHEMA_REVISION, SCHEMA_REVISION)
    finally:
        engine.dispose()
    request = {
        "url": config.url,
        "password": None if config.password is None else config.password.reveal(),
        "busy_timeout": config.busy_timeout.total_seconds(),
    }
    argv = [python, *interpreter_flags(), "-P", "-c", _CHILD, str(_package_root())]
    try:
        returncode, stdout, stderr = _run_child(argv, json.dumps(request) + "\n")
    except OSError as exc:
        raise LedgerError(f"cannot start the migration process {python}: {exc.strerror}") from None
    answer = _answer(stdout)
    if answer is None or returncode not in (0, 1):
        tail = stderr.strip()[-_STDERR_TAIL:] or "no output"
        raise LedgerError(
            f"the migration process for {describe_url(make_url(config.url))} exited "
            f"{returncode} without an answer: {tail}"
        )
    if "error" in answer:
        kind = _KINDS.get(str(answer["error"]), LedgerError)
        raise kind(str(answer.get("message", "")))
    state = SchemaState(answer.get("current"), str(answer["head"]))
    if stderr.strip():  # the child logs warnings and errors only
        log.warning("ledger.migration_output", output=stderr.strip()[-_STDERR_TAIL:])
    if state.current != state.head:
        log.info(
            "ledger.migrated",
            ledger=describe_url(make_url(config.url)),
            **{"from": state.current},
            to=state.head,
            process="child",
        )
    return state


def interpreter_flags(flags: Any = sys.flags) -> list[str]:
    """This interpreter's options that decide where modules come from (-I, -E, -s, -S) and
    -O, for the child: it must import the same svarinn_daemon as the parent."""
    out = []
    if flags.isolated:
        out.append("-I")
    else:
        out += [
            opt for opt, on in (("-E", flags.ignore_environment), ("-s", flags.no_user_site)) if on
        ]
    if flags.no_site:
        out.append("-S")
    if flags.optimize:
        out.append("-" + "O" * flags.optimize)
    return out


def _package_root() -> Path:
    import svarinn_daemon

    return Path(svarinn_daemon.__file__).resolve().parent.parent


def _run_child(argv: list[str], request: str) -> tuple[int, str, str]:
    """Run the child: its exit code, standard output and standard error. Its standard input
    stays open until it has exited, so that it can tell its parent's death (end of input)
    from the parent waiting for it, and stop (its transaction undone) instead of migrating
    on alone after a ``systemctl stop`` or a SIGKILL."""
    with tempfile.TemporaryFile("w+", encoding="utf-8") as errors:
        environ = {k: v for k, v in os.environ.items() if _PASSED.fullmatch(k)}
        child = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
            env=environ,
        )
        assert child.stdin is not None
        assert child.stdout is not None
        try:
            with contextlib.suppress(BrokenPipeError):  # it died first: its stderr says why
                child.stdin.write(request)
                child.stdin.flush()
            stdout = child.stdout.read()
            returncode = child.wait()
        finally:
            with contextlib.suppress(OSError):
                child.stdin.close()
            child.stdout.close()
            if child.poll() is None:
                child.kill()
                child.wait()
        errors.seek(0)
        return returncode, stdout, errors.read()


def _exit_with_parent() -> None:
    """In the child: end of standard input means the parent is gone (see _run_child)."""
    sys.stdin.read()
    os._exit(EXIT_PARENT_GONE)


def _answer(stdout: str) -> dict[str, Any] | None:
    lines = stdout.strip().splitlines()
    try:
        answer = json.loads(lines[-1]) if lines else None
    except ValueError:
        return None
    return answer if isinstance(answer, dict) else None


def _child() -> int:
    """The child's side: settings from standard input, one JSON answer on standard output."""
    from svarinn_daemon.logs import configure_logging

    configure_logging(level="warning", fmt="json", stream=sys.stderr)
    request = json.loads(sys.stdin.readline())
    threading.Thread(target=_exit_with_parent, name="parent-watch", daemon=True).start()
    password = request.get("password")
    config = LedgerConfig(
        url=request["url"],
        password=None if password is None else Secret("the parent", password.encode("utf-8")),
        busy_timeout=timedelta(seconds=float(request["busy_timeout"])),
    )
    try:
        engine = build_engine(config, busy_timeout=config.busy_timeout)
        try:
            state = migrate(engine)
        finally:
            engine.dispose()
    except tuple(_KINDS.values()) as exc:
        print(json.dumps({"error": type(exc).__name__, "message": str(exc)}))
        return 1
    print(json.dumps({"current": state.current, "head": state.head}))
    return 0
