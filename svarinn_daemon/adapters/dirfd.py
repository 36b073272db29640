"""Directory-descriptor helpers for the filesystem archive: look and write without following.

Every name is resolved relative to an open directory descriptor with ``O_NOFOLLOW``, so a
symlink someone plants or swaps in cannot send a look-up or a write elsewhere.
"""

from __future__ import annotations

import errno
import os
import stat

__all__ = ["DIR_FLAGS", "METADATA_FILE", "NOFOLLOW_DIR", "committed", "describe", "finish_file"]

METADATA_FILE = "forsendelse.json"
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
NOFOLLOW_DIR = DIR_FLAGS | os.O_NOFOLLOW


def finish_file(name: str, dir_fd: int, mode: int) -> int:
    """chmod, fsync and size of a file in ``dir_fd``, through its own descriptor."""
    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
        os.fchmod(fd, mode)
        os.fsync(fd)
        return os.fstat(fd).st_size
    finally:
        os.close(fd)


def committed(root_fd: int, forsendelse_id: str) -> bool:
    """Whether ``<root>/<id>`` is a real directory holding a regular forsendelse.json."""
    try:
        fd = os.open(forsendelse_id, NOFOLLOW_DIR, dir_fd=root_fd)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
            return False  # nothing there, a file, or a symlink: not our record
        raise
    try:
        info = os.stat(METADATA_FILE, dir_fd=fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    finally:
        os.close(fd)
    return stat.S_ISREG(info.st_mode)


def describe(root_fd: int, name: str) -> str:
    try:
        info = os.stat(name, dir_fd=root_fd, follow_symlinks=False)
    except OSError as exc:
        return exc.strerror or str(exc)
    if stat.S_ISLNK(info.st_mode):
        return "a symbolic link"
    if stat.S_ISDIR(info.st_mode):
        return f"a directory without {METADATA_FILE}"
    return "a file"
