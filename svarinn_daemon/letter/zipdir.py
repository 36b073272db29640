"""Count a zip's central directory before anything parses it.

:mod:`zipfile` builds a ``ZipInfo`` for every central-directory record before a caller can
look at one: a 54 MB download with a million records took the daemon to 532 MB. Here the
end-of-central-directory record (and its zip64 form) is read first, the declared count and
the directory's size are checked against the limits, and the records are walked in
constant memory, counting them, so ``zipfile`` only ever sees a directory within the limit.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import BinaryIO

from svarinn_daemon.errors import UnsafeArchiveError, VerificationError
from svarinn_daemon.policies import ZipLimits

__all__ = ["MAX_RECORD", "check_central_directory"]

_EOCD = struct.Struct("<4s4H2LH")  # signature, disks, entries here, entries, size, offset
_LOCATOR = struct.Struct("<4sLQL")  # zip64 end-of-central-directory locator
_EOCD64 = struct.Struct("<4sQ2H2L4Q")  # zip64 end of central directory
_RECORD = struct.Struct("<4s4s4H3L5H2L")  # central directory file header
_TAIL = _EOCD.size + 0xFFFF  # the record and the longest comment
# The most a record may take on average: the fixed part and 2 KiB of name, extra and comment.
MAX_RECORD = _RECORD.size + 2048


def _corrupt(what: str) -> VerificationError:
    return VerificationError(f"the zip file is corrupt: {what}")


def _end_records(f: BinaryIO, size: int) -> tuple[int, int, int]:
    """(declared entries, directory size, where the directory starts) from the end records,
    chosen as :mod:`zipfile` chooses them: a zip64 locator right before the end record means
    the zip64 record right before the locator counts, whatever the plain record says (a
    plain record claiming no entries must not hide a zip64 one declaring a million)."""
    start = max(0, size - _TAIL)
    f.seek(start)
    tail = f.read()
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) - at < _EOCD.size:
        raise _corrupt("no end-of-central-directory record")
    _sig, _disk, _cd_disk, here, entries, cd_size, _cd_offset, _comment = _EOCD.unpack_from(
        tail, at
    )
    end = start + at
    locator_at = end - _LOCATOR.size
    f.seek(max(0, locator_at))
    locator = f.read(_LOCATOR.size) if locator_at >= 0 else b""
    if locator[:4] == b"PK\x06\x07":
        end = locator_at - _EOCD64.size  # where zipfile reads it, whatever the locator says
        if end < 0 or _LOCATOR.unpack(locator)[2] != end:
            raise _corrupt("the zip64 locator does not point right before itself")
        f.seek(end)
        record = f.read(_EOCD64.size)
        if len(record) < _EOCD64.size or record[:4] != b"PK\x06\x06":
            raise _corrupt("the zip64 end-of-central-directory record is missing")
        fields = _EOCD64.unpack(record)
        here, entries, cd_size = fields[6], fields[7], fields[8]
    elif 0xFFFF in (entries, here) or cd_size == 0xFFFFFFFF:
        raise _corrupt("a zip64 count without its zip64 locator")
    return max(here, entries), cd_size, end - cd_size


def check_central_directory(path: Path, limits: ZipLimits) -> int:
    """Refuse a zip whose central directory declares or holds more entries than
    ``limits.max_entries``, or is larger than that many records can be; return the count.
    Reads the directory in constant memory."""
    with open(path, "rb") as f:
        size = f.seek(0, 2)
        declared, cd_size, cd_start = _end_records(f, size)
        if declared > limits.max_entries:
            raise UnsafeArchiveError(
                f"the zip declares {declared} entries, more than the limit of {limits.max_entries}"
            )
        if cd_size > limits.max_entries * MAX_RECORD:
            raise UnsafeArchiveError(
                f"the zip's central directory is {cd_size} bytes, more than "
                f"{limits.max_entries} entries can take"
            )
        if cd_start < 0 or cd_start + cd_size > size:
            raise _corrupt("the central directory lies outside the file")
        return _walk(f, cd_start, cd_size, limits.max_entries)


def _walk(f: BinaryIO, start: int, length: int, limit: int) -> int:
    """Count the records of the directory, skipping names, extras and comments."""
    f.seek(start)
    count, done = 0, 0
    while done < length:
        header = f.read(_RECORD.size)
        if len(header) < _RECORD.size or header[:4] != b"PK\x01\x02":
            raise _corrupt("a central directory record is broken")
        fields = _RECORD.unpack(header)
        skip = fields[9] + fields[10] + fields[11]  # name, extra, comment lengths
        f.seek(skip, 1)
        done += _RECORD.size + skip
        count += 1
        if count > limit:
            raise UnsafeArchiveError(f"the zip's central directory holds more than {limit} entries")
    return count
