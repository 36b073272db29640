"""Small things every layer shares: the clock type, clipping text, loopback hosts."""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable
from datetime import UTC, datetime
from ipaddress import ip_address
from pathlib import Path

__all__ = [
    "ELLIPSIS",
    "LOG_LEVELS",
    "MAX_WORKER_ID",
    "OCTET_STREAM",
    "Clock",
    "clip",
    "is_loopback",
    "media_type",
    "untrusted_directory",
    "utc_now",
]

Clock = Callable[[], datetime]  # aware UTC datetimes; tests pass a FakeClock
ELLIPSIS = "…"
LOG_LEVELS = ("debug", "info", "warning", "error")  # [logging] level and --log-level
MAX_WORKER_ID = 100  # characters in [daemon] worker_id, in leases and audit events


OCTET_STREAM = "application/octet-stream"
MAX_MEDIA_TYPE = 255
# RFC 6838 restricted names, and parameters whose values are tokens or quoted strings of
# printable ASCII: nothing that could end a header line or start another.
_NAME = r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}"
_VALUE = r'(?:[A-Za-z0-9!#$%&\'*+.^_`|~-]+|"[\x20\x21\x23-\x5b\x5d-\x7e]*")'
_MEDIA_TYPE = re.compile(rf"{_NAME}/{_NAME}(?:[ \t]*;[ \t]*{_NAME}={_VALUE})*")


def media_type(value: str | None) -> str | None:
    """A sender's MIME type if it has RFC 6838's shape (type/subtype, parameters), at most
    255 printable ASCII characters; ``application/octet-stream`` for anything else (CR, LF,
    NUL, quotes out of place: a value that could write a header of its own); None stays."""
    if value is None:
        return None
    return value if len(value) <= MAX_MEDIA_TYPE and _MEDIA_TYPE.fullmatch(value) else OCTET_STREAM


def utc_now() -> datetime:
    return datetime.now(UTC)


def clip(text: str, limit: int) -> str:
    """``text`` if it fits in ``limit`` characters, else its start ending in an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1] + ELLIPSIS


def is_loopback(host: str | None) -> bool:
    """Whether ``host`` (a URL's host name) is this machine: plain http is allowed there."""
    if host == "localhost":
        return True
    try:
        return ip_address(host or "").is_loopback
    except ValueError:
        return False


def untrusted_directory(path: Path) -> str | None:
    """Why another user could swap ``path`` or what is in it, or None when nobody can.

    As sshd's StrictModes: ``path`` (or, while it does not exist, the nearest directory that
    does) and every directory above it must be owned by root or by this process's user and
    writable by nobody else; a directory above writable by others is accepted only with the
    sticky bit (``/tmp``), where nobody may rename or remove what is not theirs."""
    me = os.geteuid()
    target = Path(os.path.abspath(path))
    current = target
    while not os.path.lexists(current) and current != current.parent:
        current = current.parent
    first = current == target  # the directory itself: no group/other write even if sticky
    for directory in [current, *current.parents]:
        try:
            info = os.lstat(directory)
        except OSError as exc:
            return f"{directory}: {exc.strerror}"
        if stat.S_ISLNK(info.st_mode) and first:
            return f"{directory} is a symbolic link"
        if info.st_uid not in (0, me):
            return f"{directory} belongs to uid {info.st_uid}, not to this daemon's user or root"
        loose = info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
        if loose and (first or not info.st_mode & stat.S_ISVTX):
            return (
                f"{directory} is writable by group or others (mode {stat.S_IMODE(info.st_mode):o})"
            )
        first = False
    return None
