"""Incremental BER header reading with safety limits.

A header (identifier and length octets) is read from a buffer that may not yet hold all of
it: :func:`read_header` then returns ``None`` and the caller waits for more bytes. Limits
bound what a hostile file can make us buffer or recurse into, so a bad download fails with a
typed error instead of exhausting memory.
"""

from __future__ import annotations

from dataclasses import dataclass

from svarinn_daemon.errors import CmsLimitExceededError, MalformedCmsError

END_OF_CONTENTS = 0x00


@dataclass(frozen=True, slots=True)
class CmsLimits:
    """Safety limits for one decryption; defaults fit every real SvarUt file with room."""

    max_depth: int = 16
    """BER nesting below ContentInfo (SvarUt uses 5; constructed OCTET STRINGs add levels)."""
    max_length_octets: int = 8
    """Octets in a long-form length: 8 allows lengths up to 2**64 - 1."""
    max_header_bytes: int = 1 << 20
    """Bytes before the encrypted content (recipient infos, algorithms) we agree to buffer."""
    max_recipients: int = 256
    """RecipientInfo entries we look at."""


@dataclass(frozen=True, slots=True)
class Header:
    """One BER identifier + length. ``length`` is ``None`` for the indefinite form."""

    tag: int
    length: int | None
    header_length: int

    @property
    def constructed(self) -> bool:
        return bool(self.tag & 0x20)

    @property
    def is_end_of_contents(self) -> bool:
        return self.tag == END_OF_CONTENTS and self.length == 0

    def total(self) -> int | None:
        return None if self.length is None else self.header_length + self.length


def read_header(
    buf: bytes | bytearray | memoryview, pos: int, limits: CmsLimits, offset: int
) -> Header | None:
    """Parse the header at ``buf[pos:]``, or return ``None`` if it is not all there yet.

    ``offset`` is the absolute stream position of ``pos``, for error messages. Multi-byte
    tag numbers are refused: CMS never uses them, and refusing keeps headers bounded.
    """
    end = len(buf)
    if pos + 2 > end:
        return None
    tag = buf[pos]
    if tag & 0x1F == 0x1F:
        raise MalformedCmsError(f"offset {offset}: multi-byte tag numbers are not used in CMS")
    first = buf[pos + 1]
    if tag == END_OF_CONTENTS and first != 0:
        raise MalformedCmsError(f"offset {offset}: malformed end-of-contents octets")
    if first < 0x80:
        return Header(tag, first, 2)
    if first == 0x80:
        if not tag & 0x20:
            raise MalformedCmsError(
                f"offset {offset}: indefinite length on a primitive element (tag 0x{tag:02X})"
            )
        return Header(tag, None, 2)
    long_form = long_length(buf, pos, first, offset, limits)
    return None if long_form is None else Header(tag, *long_form)


def long_length(
    buf: bytes | bytearray | memoryview, pos: int, first: int, offset: int, limits: CmsLimits
) -> tuple[int, int] | None:
    """A long-form definite length whose first length octet ``first`` is at ``pos + 1``:
    (length, header length), or None while its octets have not all arrived."""
    count = first & 0x7F
    if count > limits.max_length_octets:
        raise CmsLimitExceededError(
            f"offset {offset}: a length field of {count} octets (limit {limits.max_length_octets})"
        )
    if pos + 2 + count > len(buf):
        return None
    return int.from_bytes(buf[pos + 2 : pos + 2 + count], "big"), 2 + count
