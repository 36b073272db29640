"""Human units in the config file: durations ("90s", "5m", "1h30m") and sizes ("4GiB")."""

from __future__ import annotations

import re
from datetime import timedelta

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}

_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)?", re.IGNORECASE)
_SIZE_UNITS = {
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}


def parse_duration(text: str) -> timedelta:
    """Parse ``"90s"``, ``"5m"``, ``"2h"``, ``"1h30m"``, ``"250ms"``; raise ValueError."""
    compact = text.strip().replace(" ", "")
    if not compact:
        raise ValueError("empty duration")
    total = 0.0
    pos = 0
    for match in _DURATION_PART.finditer(compact):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        pos = match.end()
    if pos != len(compact):
        raise ValueError(
            f"{text!r} is not a duration; write a number and a unit (ms, s, m, h, d), "
            'e.g. "90s", "5m", "2h" or "1h30m"'
        )
    return timedelta(seconds=total)


def format_duration(value: timedelta) -> str:
    """The shortest exact spelling of ``value`` in the units parse_duration reads."""
    ms = round(value.total_seconds() * 1000)
    if ms == 0:
        return "0s"
    if ms % 1000:
        return f"{ms}ms"
    seconds = ms // 1000
    out = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            out.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(out)


def parse_size(text: str) -> int:
    """Parse ``"4GiB"``, ``"500 MB"`` or ``"1024"`` (bytes); raise ValueError."""
    match = _SIZE.fullmatch(text.strip())
    if not match:
        raise ValueError(
            f"{text!r} is not a size; write a number and a unit (B, KB, MB, GB, KiB, MiB, "
            'GiB, ...), e.g. "500MB" or "4GiB"'
        )
    unit = (match.group(2) or "b").lower()
    return int(float(match.group(1)) * _SIZE_UNITS[unit])


def format_size(value: int) -> str:
    for unit, size in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if value >= size and value % size == 0:
            return f"{value // size}{unit}"
    return f"{value}B"


def parse_host_port(text: str) -> tuple[str, int]:
    """``"127.0.0.1:9464"`` or ``"[::1]:9464"`` -> (host, port); raise ValueError."""
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f'{text!r} must be HOST:PORT, e.g. "127.0.0.1:9464"')
    return host, int(port)
