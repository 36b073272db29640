"""Files inline in a request body (base64 in XML or JSON) without ever holding one in memory.

Archive interfaces that take a document as a base64 string in the request (GI-Arkiv's
``Filinnhold``, Public 360's ``Base64Data``) would make the body as large as the letter
times 4/3. Instead the request is serialised with a unique marker where each file belongs,
and the body is sent as the pieces between the markers with each file base64-encoded from
disk as it goes, with an exact ``Content-Length``.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from svarinn_daemon.errors import ArchiveError, StorageError

__all__ = ["PIECE", "InlineFiles"]

PIECE = 3 * 64 * 1024  # bytes of a file base64-encoded at a time (a multiple of 3)


@dataclass(frozen=True)
class _File:
    marker: bytes  # what the serialiser writes: base64 of the raw marker, or the raw marker
    open: Callable[[], BinaryIO]
    size: int


class InlineFiles:
    """Collects the files of one request; :meth:`marker` gives the value to put where a
    file's base64 belongs, :meth:`body` the length and the pieces of the serialised body."""

    def __init__(self) -> None:
        self._files: list[_File] = []

    def marker(self, open_file: Callable[[], BinaryIO], size: int, *, encoded: bool) -> bytes:
        """The placeholder for one file. ``encoded``: the serialiser base64-encodes the
        value it is given (zeep's ``base64Binary``), so the body will hold the marker's
        base64; otherwise the serialiser writes the marker as it is (a JSON string)."""
        raw = b"svarinn-daemon-file-" + secrets.token_hex(16).encode()
        written = base64.b64encode(raw) if encoded else raw
        self._files.append(_File(written, open_file, size))
        return raw

    def body(self, serialised: bytes) -> tuple[int, Callable[[], Iterator[bytes]]]:
        """The exact length, and a generator of the body's pieces (each file opened, read
        and base64-encoded when its turn comes)."""
        pieces: list[bytes] = []
        rest = serialised
        for file in self._files:
            if rest.count(file.marker) != 1:
                raise ArchiveError("a file's place in the request is unclear", temporary=True)
            head, rest = rest.split(file.marker)
            pieces.append(head)
        pieces.append(rest)
        length = sum(map(len, pieces)) + sum(4 * ((f.size + 2) // 3) for f in self._files)

        def generate() -> Iterator[bytes]:
            for head, file in zip(pieces, self._files, strict=False):
                yield head
                sent = 0
                with file.open() as content:
                    content.seek(0)
                    while piece := content.read(PIECE):
                        sent += len(piece)
                        yield base64.b64encode(piece)
                if sent != file.size:
                    raise StorageError(
                        f"a staged document changed size ({sent} != {file.size} bytes)"
                    )
            yield pieces[-1]

        return length, generate
