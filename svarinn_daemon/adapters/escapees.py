"""Processes that left a program's process group but still hold its output pipes.

A ``setsid`` grandchild is out of reach of the group kill that ends a program on timeout
(issue #24, item 16). One that still holds the program's stdout or stderr is found by the
pipe itself: every process of ours holding the pipe's *write* end is the program's
descendant, since the daemon keeps only the read end and the program gets the write end
alone. Only the write end counts: another worker's child between its fork and its exec
holds copies of the daemon's read ends for a moment, and is no escapee.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterable

__all__ = ["kill_pipe_holders"]

_PROC = "/proc"


def _holds(pid: str, targets: set[str]) -> bool:
    try:
        names = os.listdir(f"{_PROC}/{pid}/fd")
    except OSError:
        return False
    for name in names:
        with contextlib.suppress(OSError, ValueError):
            if os.readlink(f"{_PROC}/{pid}/fd/{name}") in targets and _writes(pid, name):
                return True
    return False


def _writes(pid: str, fd: str) -> bool:
    """Whether descriptor ``fd`` of ``pid`` is open for writing (``flags:`` in fdinfo)."""
    with open(f"{_PROC}/{pid}/fdinfo/{fd}") as info:
        for line in info:
            if line.startswith("flags:"):
                return int(line.split()[1], 8) & os.O_ACCMODE != os.O_RDONLY
    return False


def kill_pipe_holders(inodes: Iterable[int]) -> list[int]:
    """SIGKILL every process of this user but us holding one of the pipes ``inodes``;
    returns their ids. Only our own user's: another's process is not ours to end."""
    targets = {f"pipe:[{inode}]" for inode in inodes}
    me, uid = os.getpid(), os.geteuid()
    killed: list[int] = []
    try:
        pids = [p for p in os.listdir(_PROC) if p.isdigit() and int(p) != me]
    except OSError:
        return killed
    for pid in pids:
        try:
            if os.stat(f"{_PROC}/{pid}").st_uid != uid:
                continue
        except OSError:
            continue
        if _holds(pid, targets):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(int(pid), signal.SIGKILL)
                killed.append(int(pid))
    return killed
