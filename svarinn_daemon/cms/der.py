"""Small, strict DER/BER helpers for the parts of CMS that fit in memory.

The streaming reader in :mod:`.ber` handles the unbounded encrypted content; everything
before it (recipient infos, algorithm identifiers) is small and bounded by limits, so it is
buffered and parsed here in one go. Encoding helpers serve the encryptor and the tests.
Every problem raises :class:`MalformedCmsError` (or :class:`CmsLimitExceededError`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from svarinn_daemon.errors import CmsLimitExceededError, MalformedCmsError

# Tag bytes (class + constructed bit + number) used across the package.
SEQUENCE = 0x30
SET = 0x31
INTEGER = 0x02
OCTET_STRING = 0x04
OCTET_STRING_CONSTRUCTED = 0x24
OBJECT_IDENTIFIER = 0x06
NULL = 0x05


def encode_length(length: int) -> bytes:
    if length < 0x80:
        return bytes([length])
    body = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def tlv(tag: int, content: bytes) -> bytes:
    return bytes([tag]) + encode_length(len(content)) + content


def encode_oid(dotted: str) -> bytes:
    """DER OBJECT IDENTIFIER (tag and length included)."""
    arcs = [int(a) for a in dotted.split(".")]
    first = arcs[0] * 40 + arcs[1]
    body = bytearray()
    for arc in [first, *arcs[2:]]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        body += bytes(reversed(chunk))
    return tlv(OBJECT_IDENTIFIER, bytes(body))


def encode_integer(value: int) -> bytes:
    length = max(1, (value.bit_length() + 8) // 8)  # room for the sign bit
    return tlv(INTEGER, value.to_bytes(length, "big", signed=True))


@dataclass(frozen=True, slots=True)
class Element:
    """One parsed TLV: ``raw`` is the whole encoding, ``content`` the value octets."""

    tag: int
    constructed: bool
    raw: bytes
    content: bytes
    children: tuple[Element, ...]

    @property
    def tag_class(self) -> int:
        return self.tag >> 6


MAX_DEPTH = 32


def parse(data: bytes, *, what: str, max_depth: int = MAX_DEPTH) -> Element:
    """Parse exactly one BER element filling ``data``; ``what`` names it in errors."""
    element, end = _parse_at(data, 0, len(data), what, 0, max_depth)
    if end != len(data):
        raise MalformedCmsError(f"{what}: {len(data) - end} unexpected byte(s) after the element")
    return element


def parse_children(data: bytes, *, what: str) -> tuple[Element, ...]:
    """Parse a run of elements (the content of a constructed element)."""
    out = []
    pos = 0
    while pos < len(data):
        element, pos = _parse_at(data, pos, len(data), what, 0, MAX_DEPTH)
        out.append(element)
    return tuple(out)


def _parse_at(
    data: bytes, pos: int, end: int, what: str, depth: int, max_depth: int
) -> tuple[Element, int]:
    if depth > max_depth:
        raise CmsLimitExceededError(f"{what}: nesting deeper than {max_depth} levels")
    start = pos
    if pos + 2 > end:
        raise MalformedCmsError(f"{what}: element header cut short")
    tag = data[pos]
    if tag & 0x1F == 0x1F:
        raise MalformedCmsError(f"{what}: multi-byte tag numbers are not used in CMS")
    constructed = bool(tag & 0x20)
    first = data[pos + 1]
    pos += 2
    length: int | None
    if first < 0x80:
        length = first
    elif first == 0x80:
        if not constructed:
            raise MalformedCmsError(f"{what}: indefinite length on a primitive element")
        length = None
    else:
        count = first & 0x7F
        if count > 8 or first == 0xFF:
            raise CmsLimitExceededError(f"{what}: length field of {count} octets")
        if pos + count > end:
            raise MalformedCmsError(f"{what}: length field cut short")
        length = int.from_bytes(data[pos : pos + count], "big")
        pos += count
    children: list[Element] = []
    if length is None:
        content_start = pos
        while True:
            if pos + 2 <= end and data[pos] == 0 and data[pos + 1] == 0:
                content_end = pos
                pos += 2
                break
            if pos >= end:
                raise MalformedCmsError(f"{what}: missing end-of-contents octets")
            child, pos = _parse_at(data, pos, end, what, depth + 1, max_depth)
            children.append(child)
    else:
        content_start = pos
        content_end = pos + length
        if content_end > end:
            raise MalformedCmsError(f"{what}: length {length} runs past the enclosing element")
        if constructed:
            while pos < content_end:
                child, pos = _parse_at(data, pos, content_end, what, depth + 1, max_depth)
                children.append(child)
        pos = content_end
    return (
        Element(
            tag=tag,
            constructed=constructed,
            raw=bytes(data[start:pos]),
            content=bytes(data[content_start:content_end]),
            children=tuple(children),
        ),
        pos,
    )


def expect(element: Element, tag: int, what: str) -> Element:
    if element.tag != tag:
        raise MalformedCmsError(f"{what}: expected tag 0x{tag:02X}, found 0x{element.tag:02X}")
    return element


def octets(element: Element, what: str) -> bytes:
    """The value of an OCTET STRING in primitive or constructed (BER) form, any tag."""
    if not element.constructed:
        return element.content
    parts = []
    for child in element.children:
        if child.tag not in (OCTET_STRING, OCTET_STRING_CONSTRUCTED):
            raise MalformedCmsError(f"{what}: constructed OCTET STRING holds tag 0x{child.tag:02X}")
        parts.append(octets(child, what))
    return b"".join(parts)


def decode_oid(element: Element, what: str) -> str:
    if element.tag != OBJECT_IDENTIFIER or not element.content:
        raise MalformedCmsError(f"{what}: expected an OBJECT IDENTIFIER")
    content = element.content
    if len(content) > 64:
        raise CmsLimitExceededError(f"{what}: OBJECT IDENTIFIER longer than 64 octets")
    if content[-1] & 0x80:
        raise MalformedCmsError(f"{what}: OBJECT IDENTIFIER cut short")
    return _dotted(content)


@functools.lru_cache(maxsize=64)
def _dotted(content: bytes) -> str:
    """Complete base-128 arcs as dotted text. Remembered: a letter names the same half a
    dozen algorithms as every other (at most 64 entries of at most 64 octets)."""
    arcs: list[int] = []
    value = 0
    for byte in content:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    first = arcs[0]
    head = [min(first // 40, 2), first - 40 * min(first // 40, 2)]
    return ".".join(str(a) for a in head + arcs[1:])


def decode_integer(element: Element, what: str) -> int:
    if element.tag != INTEGER or not element.content:
        raise MalformedCmsError(f"{what}: expected an INTEGER")
    return int.from_bytes(element.content, "big", signed=True)
