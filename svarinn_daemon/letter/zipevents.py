"""What :class:`~svarinn_daemon.letter.zipstream.ZipStream` hands its caller: one record per
part of a ZIP as it streams past (its local headers, each entry's data and end, the central
directory's records and the end record), and :class:`NotStreamable` for an entry whose end
the stream alone cannot tell."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "CentralRecord",
    "EndOfZip",
    "EntryData",
    "EntryEnd",
    "Event",
    "LocalHeader",
    "NotStreamable",
]


class NotStreamable(Exception):
    """This entry's end cannot be found in the stream: read the ZIP from a file instead.
    Control flow inside ``letter/``; it never leaves the download stage."""


@dataclass(frozen=True)
class LocalHeader:
    offset: int  # of the header in the stream
    raw_name: bytes
    flags: int
    method: int
    crc: int
    compressed_size: int | None  # None: in the data descriptor
    size: int | None
    zip64: bool  # a zip64 extra field: the descriptor's sizes are 8 bytes


@dataclass(frozen=True)
class EntryData:
    data: bytes | memoryview  # valid only until the next event is asked for


@dataclass(frozen=True)
class EntryEnd:
    header: LocalHeader
    crc: int
    compressed_size: int
    size: int


@dataclass(frozen=True)
class CentralRecord:
    offset: int  # of the record in the stream
    record_size: int
    raw_name: bytes
    made_by_system: int
    flags: int
    method: int
    crc: int
    compressed_size: int
    size: int
    local_offset: int
    external_attr: int


@dataclass(frozen=True)
class EndOfZip:
    entries: int
    directory_size: int
    directory_offset: int


Event = LocalHeader | EntryData | EntryEnd | CentralRecord | EndOfZip
