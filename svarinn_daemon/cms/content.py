"""The hot path: the encrypted content's OCTET STRING segments -> AES-CBC -> plaintext.

SvarUt cuts the ciphertext into 1000-byte segments, about a million per GiB, so per-segment
Python work decides throughput. Once two segments with identical headers have been seen,
whole runs of them are handled in bulk: the header bytes of up to ``_MAX_BATCH`` records
are checked with one strided slice per header octet, the payloads are picked out as
memoryviews by a cached ``itemgetter`` and joined with one copy, and AES runs once per
batch. Anything irregular (other lengths, nested constructed strings, a header split
across feeds) takes the general path, which handles any chunking down to single bytes.

The last 16 ciphertext bytes are never decrypted before :meth:`ContentReader.finish`, so
the final plaintext block -- which carries the padding -- cannot leak out of a truncated
stream.
"""

from __future__ import annotations

from operator import itemgetter
from typing import Any

from cryptography.hazmat.primitives.ciphers import CipherContext

from svarinn_daemon.cms.ber import CmsLimits, long_length
from svarinn_daemon.cms.sink import PlaintextSink
from svarinn_daemon.errors import (
    CmsLimitExceededError,
    MalformedCmsError,
    PaddingError,
)

BLOCK = 16
_MIN_RUN_PAYLOAD = 64  # shorter segments are not worth the batch machinery
_MIN_BATCH = 8
_MAX_BATCH = 128  # records per batch: 128 KB joins stay in L2 and below malloc's mmap size
_GROUP_BYTES = 1 << 16  # ciphertext gathered before AES runs
_INDEFINITE = -1

Buffer = bytes | bytearray | memoryview


class ContentReader:
    """Streams the encrypted content ``[0]`` element (primitive or constructed) through AES.

    Created after the structure parser has read the ``[0]`` header. ``feed`` returns how
    many bytes of the chunk belonged to the content; once :attr:`done`, the rest belongs to
    the enclosing structure.
    """

    def __init__(
        self,
        cipher: CipherContext,
        sink: PlaintextSink,
        *,
        constructed: bool,
        length: int | None,
        offset: int,
        limits: CmsLimits,
    ) -> None:
        self._cipher = cipher
        self._sink = sink
        self._limits = limits
        self._offset = offset  # absolute stream offset of the next byte fed
        self._frames: list[int] = []  # end offsets of open constructed strings, or _INDEFINITE
        self._remaining = 0  # payload bytes left in the current primitive segment
        if constructed:
            self._frames.append(_INDEFINITE if length is None else offset + length)
        else:
            self._remaining = length or 0
        self.ciphertext_size = self._remaining
        self._header_buf = bytearray()
        self._pieces: list[Buffer] = []
        self._pieces_len = 0
        self._carry = bytearray()  # ciphertext not yet given to AES (at least the last block)
        self._run_header = b""
        self._run_record = 0
        self._batch = _MIN_BATCH
        self._getters: dict[tuple[int, int, int], Any] = {}
        self.done = not self._frames and self._remaining == 0
        self._pop_finished_frames()

    @property
    def offset(self) -> int:
        """Absolute stream offset of the next byte (the end of the content once done)."""
        return self._offset

    # -- feeding -------------------------------------------------------------------------

    def feed(self, data: memoryview) -> int:
        """Consume content bytes from ``data``; returns how many belonged to the content.

        Plaintext goes to the sink; nothing here keeps a view of ``data`` after returning.
        """
        end = len(data)
        pos = 0
        while pos < end and not self.done:
            if self._remaining:
                take = min(self._remaining, end - pos)
                self._pieces.append(data[pos : pos + take])
                self._pieces_len += take
                self._remaining -= take
                pos += take
                self._offset += take
                if not self._remaining:
                    self._pop_finished_frames()
            elif (
                self._run_record
                and not self._header_buf
                and (taken := self._batch_run(data, pos, end))
            ):
                pos += taken
                self._offset += taken
                self._pop_finished_frames()
            else:
                pos = self._next_header(data, pos, end)
            if self._pieces_len >= _GROUP_BYTES:
                self._decrypt_group()
        for piece in self._pieces:  # keep the small rest; views into data must not outlive it
            self._carry += piece
        self._pieces.clear()
        self._pieces_len = 0
        if len(self._carry) >= _GROUP_BYTES:
            self._decrypt_group()
        return pos

    def _batch_run(self, data: memoryview, pos: int, end: int) -> int:
        """Take as many whole records equal in shape to the last one as the chunk holds."""
        record = self._run_record
        header = self._run_header
        count = min((end - pos) // record, self._batch)
        frame_end = self._frames[-1] if self._frames else _INDEFINITE
        if frame_end != _INDEFINITE:
            count = min(count, (frame_end - self._offset) // record)
        if count < 2:
            return 0
        stop = pos + count * record
        good = count
        if len(header) == 4 and not record % 4:  # SvarUt's shape: one strided compare
            with data[pos:stop].cast("I") as words:
                same = words[:: record // 4].tobytes() == header * count
        else:
            same = False
        if not same:
            for i, octet in enumerate(header):
                column = data[pos + i : stop : record].tobytes()
                if column.count(octet) != count:
                    good = min(good, len(column) - len(column.lstrip(header[i : i + 1])))
        if good < count:
            self._batch = _MIN_BATCH  # the run ends here: look closer next time
            if good == 0:
                self._run_record = 0  # not the same shape: let the general path decide
                return 0
        elif count == self._batch:
            self._batch = min(2 * count, _MAX_BATCH)
        taken = good * record
        key = (len(header), record, good)
        getter = self._getters.get(key)
        if getter is None:
            if len(self._getters) > 64:
                self._getters.clear()
            hl = len(header)
            getter = itemgetter(*[slice(i + hl, i + record) for i in range(0, taken, record)])
            self._getters[key] = getter
        window = data[pos : pos + taken]
        pieces = getter(window)
        if good == 1:
            self._pieces.append(pieces)
        else:
            self._pieces.extend(pieces)
        self._pieces_len += taken - good * len(header)
        self.ciphertext_size += taken - good * len(header)
        return taken

    def _next_header(self, data: memoryview, pos: int, end: int) -> int:
        """Parse one segment header the general way; returns the new position."""
        if self._header_buf:
            held = len(self._header_buf)
            source: Buffer = bytes(self._header_buf) + data[pos : pos + 10].tobytes()
            start = 0
        else:
            held = 0
            source = data
            start = pos
        parsed = _parse_header(source, start, self._offset - held, self._limits)
        if parsed is None:
            self._header_buf += data[pos:end]
            self._offset += end - pos
            return end
        tag, length, header_length = parsed
        used = header_length - held
        header_start = self._offset - held
        self._header_buf.clear()
        self._offset += used
        pos += used
        self._run_record = 0
        frame_end = self._frames[-1] if self._frames else _INDEFINITE
        if tag == 0x00:  # end-of-contents (the parser checked the length is 0)
            if frame_end != _INDEFINITE:
                raise MalformedCmsError(
                    f"offset {header_start}: end-of-contents inside a definite-length string"
                )
            self._frames.pop()
            self._pop_finished_frames()
            return pos
        if length is not None and frame_end != _INDEFINITE and self._offset + length > frame_end:
            raise MalformedCmsError(
                f"offset {header_start}: a segment of {length} bytes runs past its enclosing "
                "constructed OCTET STRING"
            )
        if tag == 0x04:
            assert length is not None  # primitive lengths are definite (checked by the parser)
            self._remaining = length
            self.ciphertext_size += length
            if length >= _MIN_RUN_PAYLOAD:
                self._run_header = bytes(source[start : start + header_length])
                self._run_record = header_length + length
            if not length:
                self._pop_finished_frames()
            return pos
        if tag == 0x24:
            if len(self._frames) >= self._limits.max_depth:
                raise CmsLimitExceededError(
                    f"offset {header_start}: constructed OCTET STRINGs nested deeper than "
                    f"{self._limits.max_depth} levels"
                )
            self._frames.append(_INDEFINITE if length is None else self._offset + length)
            self._pop_finished_frames()
            return pos
        raise MalformedCmsError(
            f"offset {header_start}: tag 0x{tag:02X} inside the encrypted content "
            "(only OCTET STRING segments belong there)"
        )

    def _pop_finished_frames(self) -> None:
        frames = self._frames
        while frames and frames[-1] == self._offset:
            frames.pop()
        if not frames and not self._remaining:
            self.done = True

    # -- decrypting ------------------------------------------------------------------------

    def _decrypt_group(self) -> None:
        """Decrypt what was gathered, except the last block; the plaintext goes to the sink."""
        pieces = self._pieces
        if self._carry:
            pieces.insert(0, self._carry)
        joined = b"".join(pieces)
        pieces.clear()
        self._pieces_len = 0
        cut = len(joined) - BLOCK
        if cut <= 0:
            self._carry = bytearray(joined)
            return
        self._carry = bytearray(joined[cut:])
        with memoryview(joined) as source, self._sink.reserve(cut + BLOCK) as target:
            count = self._cipher.update_into(source[:cut], target)
        self._sink.commit(count)

    def finish(self) -> None:
        """Decrypt the final block, check and strip the PKCS#7 padding (into the sink)."""
        if self.ciphertext_size == 0:
            raise MalformedCmsError("the encrypted content is empty (at least one block needed)")
        data = bytes(self._carry)
        self._carry.clear()
        with self._sink.reserve(len(data) + BLOCK) as target:
            count = self._cipher.update_into(data, target)
            try:
                self._cipher.finalize()
            except ValueError:
                raise MalformedCmsError(
                    f"the encrypted content is {self.ciphertext_size} bytes, not a multiple of "
                    f"the {BLOCK}-byte block size"
                ) from None
            pad = target[count - 1] if count else 0
            if not 1 <= pad <= BLOCK or target[count - pad : count] != bytes([pad]) * pad:
                raise PaddingError(
                    "the last block's PKCS#7 padding is invalid: wrong key, or the file is corrupt"
                )
        self._sink.commit(count - pad)


def _parse_header(
    buf: Buffer, pos: int, offset: int, limits: CmsLimits
) -> tuple[int, int | None, int] | None:
    """(tag, length, header length) of a segment header, or None if incomplete."""
    end = len(buf)
    if pos + 2 > end:
        return None
    tag = buf[pos]
    first = buf[pos + 1]
    if tag == 0x00 and first != 0x00:
        raise MalformedCmsError(f"offset {offset}: malformed end-of-contents octets")
    if first < 0x80:
        return tag, first, 2
    if first == 0x80:
        if tag != 0x24:
            raise MalformedCmsError(
                f"offset {offset}: indefinite length on tag 0x{tag:02X} in the encrypted content"
            )
        return tag, None, 2
    long_form = long_length(buf, pos, first, offset, limits)
    return None if long_form is None else (tag, *long_form)
