"""A ZIP read as it streams past, front to back: the sans-I/O half of V2's one pass.

SvarInn V2 serves every letter as a ZIP, and the daemon sees it as decrypted bytes arriving
in order. :class:`ZipStream` turns those bytes into events without a file and without
seeking: each local header, each entry's data (inflated), each entry's end (its CRC and
sizes, computed and checked against the header or data descriptor), each central-directory
record, and the end record. It keeps no more than one header or record in memory, checks
the ZIP's own consistency (CRCs, sizes, the descriptor, the end record's count, size and
offset), and leaves every rule about names, limits and filer[] to its caller
(:mod:`~svarinn_daemon.letter.unzip`), which can stop it at any event by raising.

An entry whose end cannot be found from the stream alone (stored, with its sizes only in a
data descriptor, and no size known from elsewhere; or compressed with a method other than
deflate) raises :class:`NotStreamable`: the caller then reads the ZIP from a file instead.

CRC-32 comes from zlib-ng (the same as ``zlib.crc32``: the tests' ZIPs, written by zipfile, check):
Debian's zlib computes it at ~4 GiB/s, a fifth of a 1 GiB letter's time on its thread;
zlib-ng's folding code is an order of magnitude faster.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable, Generator, Iterator
from typing import Literal

from zlib_ng.zlib_ng import crc32

from svarinn_daemon.errors import VerificationError
from svarinn_daemon.letter.zipevents import (
    CentralRecord,
    EndOfZip,
    EntryData,
    EntryEnd,
    Event,
    LocalHeader,
    NotStreamable,
)

__all__ = ["OUTPUT", "ZipStream"]  # its events: zipevents.py

_LOCAL = struct.Struct("<4s5H3L2H")  # local file header
_CENTRAL = struct.Struct("<4s2B5H3L5H2L")  # central directory file header
_EOCD = struct.Struct("<4s4H2LH")  # end of central directory
_EOCD64 = struct.Struct("<4sQ2H2L4Q")  # zip64 end of central directory
_LOCATOR = struct.Struct("<4sLQL")  # zip64 end-of-central-directory locator
_DESCRIPTOR_SIG = b"PK\x07\x08"
_STORED, _DEFLATED = 0, 8
_HAS_DESCRIPTOR = 0x08
_MAX32 = 0xFFFFFFFF
OUTPUT = 1 << 20  # the most one inflate call may produce: bombs stay bounded
HEADER_PIECE = 64 * 1024  # bytes moved into the header buffer at a time


def _corrupt(what: str) -> VerificationError:
    return VerificationError(f"the zip file is corrupt: {what}")


def _zip64_values(extra: bytes, wanted: int) -> list[int]:
    """The first ``wanted`` 8-byte values of the zip64 extra field (id 1), if present."""
    at = 0
    while at + 4 <= len(extra):
        kind, length = struct.unpack_from("<HH", extra, at)
        body = extra[at + 4 : at + 4 + length]
        if kind == 1:
            count = min(wanted, len(body) // 8)
            return list(struct.unpack_from(f"<{count}Q", body))
        at += 4 + length
    return []


class ZipStream:
    """Feed the ZIP's bytes in order (:meth:`feed`), iterate the events each feed yields,
    then :meth:`close`. ``stored_size`` answers, for a stored entry whose sizes come only
    after its data, how many bytes it has (None: unknown, :class:`NotStreamable`)."""

    def __init__(self, stored_size: Callable[[LocalHeader], int | None]):
        self._stored_size = stored_size
        self._buf = bytearray()
        self._pos = 0  # stream offset of self._buf[0]
        self._entry: LocalHeader | None = None
        self._left = 0  # stored: bytes of data still to come
        self._inflate: zlib._Decompress | None = None
        self._crc = 0
        self._size = 0
        self._consumed = 0  # compressed bytes of the current entry
        self._done: EntryEnd | None = None  # data ended, descriptor to check
        self._ended = False
        self._zip64_end: EndOfZip | None = None
        self._view_used = 0  # of the bytes _data is working through

    @property
    def position(self) -> int:
        """Bytes of the stream consumed so far (within a feed, up to the event just seen)."""
        return self._pos + self._view_used

    @property
    def entry_consumed(self) -> int:
        """Compressed bytes of the current entry consumed so far."""
        return self._consumed

    def feed(self, data: bytes | bytearray | memoryview) -> Iterator[Event]:
        """The events the next bytes complete; an EntryData is valid until the next one."""
        view = memoryview(data).cast("B")
        while True:
            if self._entry is not None and self._done is None:  # inside an entry's data
                if self._buf:  # what came after its header, before this feed
                    pending = bytes(self._buf)
                    self._buf.clear()
                    used = yield from self._data(memoryview(pending))
                    self._pos += used
                    self._view_used = 0
                    self._buf += pending[used:]
                    continue
                if not view:
                    return
                used = yield from self._data(view)
                self._pos += used
                self._view_used = 0
                view = view[used:]
                continue
            event = self._header()
            if event is None:
                if not view:
                    return
                # Headers are read from a small buffer, a piece at a time: what follows a
                # header is copied once at most, however many entries a chunk holds.
                self._buf += view[:HEADER_PIECE]
                view = view[HEADER_PIECE:]
                continue
            if event is not True:
                yield event

    def close(self) -> None:
        """The stream ended: it must have ended with the end record."""
        if not self._ended:
            raise _corrupt("it ends before its end-of-central-directory record")

    # --- entry data ------------------------------------------------------------------

    def _data(self, view: memoryview) -> Generator[Event, None, int]:
        """Pass the entry's data on; return how many bytes of ``view`` were its."""
        if not view:
            return 0
        if self._inflate is None:
            take = min(self._left, len(view))
            piece = view[:take]
            self._crc = crc32(piece, self._crc)
            self._size += take
            self._consumed += take
            self._left -= take
            self._view_used = take
            yield EntryData(piece)
            if self._left == 0:
                self._finish_data()
            return take
        inflate = self._inflate
        base = self._consumed
        try:
            out = inflate.decompress(view, OUTPUT)
            while True:
                # At the end, zlib keeps the rest in unused_data (and may leave an old
                # unconsumed_tail behind): only one of them says what was not used.
                left = inflate.unused_data if inflate.eof else inflate.unconsumed_tail
                used = len(view) - len(left)
                self._consumed = base + used
                self._view_used = used
                if out:
                    self._crc = crc32(out, self._crc)
                    self._size += len(out)
                    yield EntryData(out)
                if inflate.eof or (not inflate.unconsumed_tail and len(out) < OUTPUT):
                    break
                out = inflate.decompress(inflate.unconsumed_tail, OUTPUT)
        except zlib.error as exc:
            raise _corrupt(f"an entry does not inflate: {exc}") from None
        used = len(view) - len(inflate.unused_data)
        self._consumed = base + used
        if inflate.eof:
            self._finish_data()
        return used

    def _finish_data(self) -> None:
        assert self._entry is not None
        self._done = EntryEnd(self._entry, self._crc & _MAX32, self._consumed, self._size)
        self._inflate = None

    # --- headers and records -------------------------------------------------------------

    def _take(self, count: int) -> bytes:
        data = bytes(self._buf[:count])
        del self._buf[:count]
        self._pos += count
        return data

    def _header(self) -> Event | Literal[True] | None:
        """The next header-like thing in the buffer: an event, True (consumed, nothing to
        say), or None (more bytes needed)."""
        if self._done is not None:
            return self._descriptor()
        if self._ended:  # bytes after the end record belong to no entry (zipfile ignores
            self._pos += len(self._buf)  # them too): counted, never kept
            self._buf.clear()
            return None
        if len(self._buf) < 4:
            return None
        signature = bytes(self._buf[:4])
        if signature == b"PK\x03\x04":
            return self._local()
        if signature == b"PK\x01\x02":
            return self._central()
        if signature == b"PK\x06\x06":
            return self._end64()
        if signature == b"PK\x06\x07":
            if len(self._buf) < _LOCATOR.size:
                return None
            self._take(_LOCATOR.size)
            return True
        if signature == b"PK\x05\x06":
            return self._end()
        raise _corrupt(f"unexpected bytes at offset {self._pos} ({signature.hex()})")

    def _local(self) -> Event | None:
        if len(self._buf) < _LOCAL.size:
            return None
        fields = _LOCAL.unpack_from(self._buf)
        flags, method, crc, csize, usize, name_len, extra_len = (
            fields[2],
            fields[3],
            fields[6],
            fields[7],
            fields[8],
            fields[9],
            fields[10],
        )
        total = _LOCAL.size + name_len + extra_len
        if len(self._buf) < total:
            return None
        offset = self._pos
        record = self._take(total)
        name = record[_LOCAL.size : _LOCAL.size + name_len]
        extra = record[_LOCAL.size + name_len :]
        zip64 = _zip64_values(extra, 2)
        if zip64 and usize == _MAX32:
            usize = zip64[0]
        if len(zip64) > 1 and csize == _MAX32:
            csize = zip64[1]
        later = bool(flags & _HAS_DESCRIPTOR)
        header = LocalHeader(
            offset,
            name,
            flags,
            method,
            crc,
            None if later else csize,
            None if later else usize,
            bool(zip64),
        )
        self._start(header)
        return header

    def _start(self, header: LocalHeader) -> None:
        self._entry = header
        self._crc = self._size = self._consumed = 0
        if header.method == _DEFLATED:
            self._inflate = zlib.decompressobj(-15)
            return
        if header.method != _STORED:
            raise NotStreamable(f"compression method {header.method}")
        size = header.compressed_size
        if size is None:
            size = self._stored_size(header)
        if size is None:
            raise NotStreamable("a stored entry whose size comes after its data")
        self._left = size
        if size == 0:
            self._finish_data()

    def _descriptor(self) -> Event | None:
        done = self._done
        assert done is not None
        header = done.header
        if not header.flags & _HAS_DESCRIPTOR:
            if (header.crc, header.compressed_size, header.size) != (
                done.crc,
                done.compressed_size,
                done.size,
            ):
                raise _corrupt(self._mismatch(done, "its local header"))
            return self._entry_ended(done, 0)
        if len(self._buf) < 24:  # a descriptor is followed by at least a central record
            return None
        head = bytes(self._buf[:24])
        truth = (done.crc, done.compressed_size, done.size)
        layouts = [(4, "<3L"), (4, "<L2Q"), (0, "<3L"), (0, "<L2Q")]
        if header.zip64:  # the 8-byte sizes first, as the zip64 field announces
            layouts = [layouts[1], layouts[0], layouts[3], layouts[2]]
        for skip, layout in layouts:
            if skip and head[:4] != _DESCRIPTOR_SIG:
                continue
            length = skip + struct.calcsize(layout)
            if len(head) >= length and struct.unpack_from(layout, head, skip) == truth:
                return self._entry_ended(done, length)
        if header.method == _STORED:  # its size came from elsewhere (filer[]), wrongly
            raise NotStreamable("a stored entry does not end where its size said")
        raise _corrupt(self._mismatch(done, "its data descriptor"))

    def _mismatch(self, done: EntryEnd, where: str) -> str:
        name = done.header.raw_name.decode("utf-8", "replace")[:100]
        return (
            f"entry {name!r} ends with CRC {done.crc:08x}, {done.compressed_size} bytes "
            f"stored, {done.size} unpacked, which {where} does not say"
        )

    def _entry_ended(self, done: EntryEnd, descriptor: int) -> EntryEnd:
        self._take(descriptor)
        self._entry = None
        self._done = None
        return done

    def _central(self) -> Event | None:
        if len(self._buf) < _CENTRAL.size:
            return None
        f = _CENTRAL.unpack_from(self._buf)
        name_len, extra_len, comment_len = f[11], f[12], f[13]
        total = _CENTRAL.size + name_len + extra_len + comment_len
        if len(self._buf) < total:
            return None
        offset = self._pos
        record = self._take(total)
        name = record[_CENTRAL.size : _CENTRAL.size + name_len]
        extra = record[_CENTRAL.size + name_len : _CENTRAL.size + name_len + extra_len]
        csize, usize, local = f[9], f[10], f[17]
        wanted = [usize == _MAX32, csize == _MAX32, local == _MAX32]
        values = iter(_zip64_values(extra, sum(wanted)))
        try:
            usize = next(values) if wanted[0] else usize
            csize = next(values) if wanted[1] else csize
            local = next(values) if wanted[2] else local
        except StopIteration:
            raise _corrupt("a central record lacks its zip64 sizes") from None
        return CentralRecord(
            offset, total, name, f[2], f[4], f[5], f[8], csize, usize, local, f[16]
        )

    def _end64(self) -> Literal[True] | None:
        if len(self._buf) < _EOCD64.size:
            return None
        f = _EOCD64.unpack_from(self._buf)
        total = 12 + f[1]
        if not _EOCD64.size <= total <= 1 << 20:
            raise _corrupt(f"a zip64 end record of {total} bytes")
        if len(self._buf) < total:
            return None
        self._take(total)
        self._zip64_end = EndOfZip(entries=f[7], directory_size=f[8], directory_offset=f[9])
        return True

    def _end(self) -> Event | None:
        if len(self._buf) < _EOCD.size:
            return None
        f = _EOCD.unpack_from(self._buf)
        total = _EOCD.size + f[7]
        if len(self._buf) < total:
            return None
        self._take(total)
        self._ended = True
        end = EndOfZip(entries=f[4], directory_size=f[5], directory_offset=f[6])
        if 0xFFFF in (f[3], f[4]) or _MAX32 in (f[5], f[6]):
            if self._zip64_end is None:
                raise _corrupt("a zip64 count without its zip64 end record")
            return self._zip64_end
        return end
