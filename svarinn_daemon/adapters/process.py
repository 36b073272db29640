"""Running one program for the ``command`` adapter: in its own process group, its output
drained in threads (only the end kept), and killed whole on timeout.

Apart from the adapter because it knows nothing of letters: an argv, an environment, a
directory, standard input and a time limit in; how it ended and the ends of its output out.
A ``setsid`` descendant still holding its output is found by the pipe (``escapees.py``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from svarinn_daemon.adapters.escapees import kill_pipe_holders
from svarinn_daemon.errors import ArchiveError
from svarinn_daemon.logs import get_logger

__all__ = ["OUTPUT_CAP", "RunResult", "run_program"]

MAX_REFERENCE = 500
MAX_MESSAGE = 500
OUTPUT_CAP = 64 * 1024  # what we keep of each stream: its end; the rest is read and dropped
TAIL_WAIT = 0.5  # seconds to finish reading a stream once the program has ended

log = get_logger(__name__)


@dataclass(frozen=True)
class RunResult:
    """How a program ended: its exit status (negative: the signal), or a timeout."""

    returncode: int
    stdout_tail: bytes
    stderr_tail: bytes
    timed_out: bool = False

    def reference(self) -> str | None:
        """The last non-empty line of standard output, at most 500 characters."""
        text = self.stdout_tail.decode("utf-8", errors="replace")
        for line in reversed(text.splitlines()):
            if line.strip():
                return line.strip()[:MAX_REFERENCE]
        return None

    def message(self) -> str:
        """The end of standard error, on one line, for a person to act on."""
        text = self.stderr_tail.decode("utf-8", errors="replace")
        text = " ".join(text.split())
        return text[-MAX_MESSAGE:]

    def ending(self) -> str:
        if self.timed_out:
            return "timed out (its process group was killed)"
        if self.returncode < 0:
            try:
                name = signal.Signals(-self.returncode).name
            except ValueError:
                name = f"signal {-self.returncode}"
            return f"was killed by {name}"
        return f"exited with status {self.returncode}"


class _Tail:
    """Drains a pipe to its end in a thread, keeping only the last ``OUTPUT_CAP`` bytes, so
    the program never blocks on a full pipe and we never hold more than the cap. The thread
    closes the pipe itself at its end: a descendant that escaped the process group may hold
    it open longer than we wait, and closing it under a blocked read could let the loop
    read from a reused descriptor number."""

    def __init__(self, stream: IO[bytes]):
        self._stream = stream
        self._kept = bytearray()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._drain, daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        fd = self._stream.fileno()
        try:
            with contextlib.suppress(OSError, ValueError):
                while chunk := os.read(fd, 65536):
                    with self._lock:
                        self._kept += chunk
                        if len(self._kept) > 2 * OUTPUT_CAP:
                            del self._kept[:-OUTPUT_CAP]
        finally:
            self._stream.close()

    def ended(self, wait: float) -> bool:
        """Whether the pipe reached its end (every writer closed it) within ``wait``."""
        self._thread.join(wait)
        return not self._thread.is_alive()

    def result(self, timeout: float) -> bytes:
        self._thread.join(timeout)
        with self._lock:
            return bytes(self._kept[-OUTPUT_CAP:])


def run_program(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: Path,
    stdin: IO[bytes] | None,
    timeout: float,
) -> RunResult:
    """Run ``argv`` in its own process group; on timeout kill the whole group."""
    try:
        process = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=dict(env),
            stdin=stdin if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # its own process group, so that a kill reaches all
            close_fds=True,
        )
    except OSError as exc:
        raise ArchiveError(
            f"cannot start {argv[0]}: {exc.strerror or exc}", temporary=True
        ) from exc
    assert process.stdout is not None
    assert process.stderr is not None
    pipes = [os.fstat(stream.fileno()).st_ino for stream in (process.stdout, process.stderr)]
    out, err = _Tail(process.stdout), _Tail(process.stderr)
    try:
        timed_out = not _wait_unreaped(process.pid, timeout)
    finally:
        # Whatever it left behind (children holding our pipes, a hung run, a run we stop
        # waiting for) goes with it; the leader is not reaped yet, so its group id cannot
        # have been reused.
        _kill_group(process)
        returncode = process.wait()
        if not (out.ended(0.05) and err.ended(0.05)):
            # A descendant that left the group (setsid) still holds our pipes: it goes too.
            for pid in kill_pipe_holders(pipes):
                log.warning("killed a process that escaped the program's group", pid=pid)
    return RunResult(returncode, out.result(TAIL_WAIT), err.result(TAIL_WAIT), timed_out=timed_out)


def _wait_unreaped(pid: int, timeout: float) -> bool:
    """Wait until ``pid`` has ended, without reaping it; False when ``timeout`` passed."""
    deadline = time.monotonic() + timeout
    delay = 0.001
    while True:
        info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT | os.WNOHANG)
        if info is not None:
            return True
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        time.sleep(min(delay, remaining))
        delay = min(delay * 2, 0.05)


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
