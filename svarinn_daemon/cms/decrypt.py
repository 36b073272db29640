"""The sans-I/O streaming CMS EnvelopedData decryptor.

Like h11, it does no I/O: the caller feeds bytes as they arrive and writes out the
plaintext it gets back. The structure before and after the encrypted content (a few
hundred bytes) is parsed by a generator that pauses whenever it needs more input; the
encrypted content itself -- all but a few hundred bytes of every file -- goes through
:class:`~svarinn_daemon.cms.content.ContentReader`, which is built for speed.

Every failure is a :class:`~svarinn_daemon.errors.CmsError` subclass, and a decryptor that
failed keeps failing with the same error, so a caller cannot mistake a broken stream for a
complete one. The plaintext's last block is only released by :meth:`Decryptor.close`.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Generator, Sequence

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from svarinn_daemon.cms import der, oids
from svarinn_daemon.cms.ber import CmsLimits, Header, read_header
from svarinn_daemon.cms.content import ContentReader
from svarinn_daemon.cms.recipients import RecipientUsed, parse_recipient_infos, unwrap
from svarinn_daemon.cms.sink import PlaintextSink
from svarinn_daemon.errors import (
    CmsError,
    CmsLimitExceededError,
    ConfigError,
    KeyUnwrapError,
    MalformedCmsError,
    NotEnvelopedDataError,
    TrailingDataError,
    TruncatedCmsError,
    UnsupportedAlgorithmError,
)
from svarinn_daemon.keys import KeyPair

_CONTENT = "content"  # what the structure parser yields when the content reader takes over
_Steps = Generator[str | None, None, None]


class _Phase(enum.Enum):
    STRUCTURE = "structure"
    CONTENT = "content"
    DONE = "done"


class Decryptor:
    """Decrypts one CMS EnvelopedData stream for one of ``keys``.

    ``feed(chunk)`` returns the plaintext that is certain so far; ``close()`` checks the end
    (padding, end-of-contents octets, only zero bytes after the end) and returns the rest.
    ``sha256`` and ``size`` describe the whole plaintext once ``close()`` has succeeded.
    ``hash_in_thread`` lets SHA-256 of large outputs run beside the parsing (hashlib
    releases the GIL), which is what lets the daemon outrun a serial decrypt-then-hash.
    ``hash_plaintext`` false skips the SHA-256 (a caller that hashes the pieces it cares
    about itself, as a V2 ZIP's entries are); ``sha256`` then raises.
    """

    def __init__(
        self,
        keys: Sequence[KeyPair],
        *,
        limits: CmsLimits | None = None,
        hash_in_thread: bool = True,
        hash_plaintext: bool = True,
    ) -> None:
        if not keys:
            raise ConfigError("no private key to decrypt with")
        self._keys = tuple(keys)
        self._limits = limits or CmsLimits()
        self._buf = bytearray()
        self._pos = 0
        self._base = 0  # absolute offset of _buf[0]
        self._frames: list[tuple[int | None, str]] = []
        self._where = "ContentInfo"
        self._eof = False
        self._phase = _Phase.STRUCTURE
        self._steps = self._structure()
        self._content: ContentReader | None = None
        self._content_key = b""
        self._sink = PlaintextSink(threaded=hash_in_thread, hashing=hash_plaintext)
        self._failed: CmsError | None = None
        self._closed = False
        self._sha256: str | None = None
        self.recipient: RecipientUsed | None = None
        """Which key and recipient opened the file (set once the recipients are read)."""
        self.content_algorithm: str | None = None
        self.input_size = 0

    # -- public API ------------------------------------------------------------------------

    @property
    def size(self) -> int:
        """Plaintext bytes returned so far (the whole plaintext after ``close()``)."""
        return self._sink.size

    @property
    def sha256(self) -> str:
        """Hex SHA-256 of the whole plaintext; only known after a successful ``close()``."""
        if self._sha256 is None:
            raise RuntimeError(
                "sha256 is known only after close() succeeded, and with hash_plaintext"
            )
        return self._sha256

    def feed(self, chunk: bytes | bytearray | memoryview) -> bytes:
        """Take the next input bytes; returns plaintext that is certain (maybe ``b""``).

        Some certain plaintext may be held back to be hashed in bulk; ``close()`` returns it.
        """
        out: list[bytes] = []
        self.feed_to(chunk, lambda view: out.append(bytes(view)))
        return out[0] if out else b""

    def feed_to(
        self, chunk: bytes | bytearray | memoryview, write: Callable[[memoryview], object]
    ) -> None:
        """``feed``, but the plaintext goes to ``write`` as a view of the decryptor's own
        buffer, valid only during that call: one copy fewer for a caller that writes it
        somewhere at once. An error ``write`` raises is its own, passed through as it is."""
        self._check_usable()
        try:
            with memoryview(chunk) as view:
                self.input_size += len(view)
                self._advance(view.cast("B"))
        except CmsError as exc:
            self._fail(exc)
            raise
        except (ValueError, IndexError, KeyError, OverflowError, TypeError) as exc:
            raise self._fail(MalformedCmsError(f"unparsable input ({type(exc).__name__})")) from exc
        self._sink.give(write)

    def close(self) -> bytes:
        """End of input: check that the structure is complete; returns the last plaintext."""
        out: list[bytes] = []
        self.close_to(lambda view: out.append(bytes(view)))
        return out[0] if out else b""

    def close_to(self, write: Callable[[memoryview], object]) -> None:
        """``close``, the last plaintext given to ``write`` as ``feed_to`` gives it."""
        self._check_usable()
        self._eof = True
        try:
            self._advance(memoryview(b""))
            if self._phase is not _Phase.DONE or self._content is None:
                raise TruncatedCmsError(
                    f"the input ends at offset {self.input_size} inside {self._where}"
                )
            self._content.finish()
        except CmsError as exc:
            self._fail(exc)
            raise
        except (ValueError, IndexError, KeyError, OverflowError, TypeError) as exc:
            raise self._fail(MalformedCmsError(f"unparsable input ({type(exc).__name__})")) from exc
        try:
            self._sink.give(write, final=True)
        except BaseException:
            self._sink.abandon()
            raise
        self._sha256 = self._sink.hexdigest()  # also stops the hashing thread
        self._closed = True

    # -- driving ---------------------------------------------------------------------------

    def _check_usable(self) -> None:
        if self._failed is not None:
            raise self._failed
        if self._closed:
            raise RuntimeError("the decryptor is closed")

    def _fail(self, exc: CmsError) -> CmsError:
        self._failed = exc
        self._sink.abandon()
        return exc

    def _advance(self, data: memoryview) -> None:
        resume = True  # the structure parser runs at least once per call, even on no data
        while True:
            if self._phase is _Phase.CONTENT:
                assert self._content is not None
                if len(data) and not self._content.done:
                    data = data[self._content.feed(data) :]
                if not self._content.done:
                    return
                self._phase = _Phase.STRUCTURE
                self._base = self._content.offset
                self._where = "EncryptedContentInfo"
                resume = True
            elif self._phase is _Phase.STRUCTURE:
                if not (len(data) or resume):
                    return
                resume = False
                self._buf += data
                data = memoryview(b"")
                if self._resume():
                    data = memoryview(bytes(self._buf[self._pos :]))
                    self._base += self._pos
                    self._buf.clear()
                    self._pos = 0
            else:
                _check_zeros(data, self._base)
                self._base += len(data)
                return

    def _resume(self) -> bool:
        """Run the structure parser; True when it handed over (to content, or finished)."""
        try:
            signal = next(self._steps)
        except StopIteration:
            self._phase = _Phase.DONE
            self._where = "the end"
            return True
        if signal == _CONTENT:
            self._phase = _Phase.CONTENT
            self._where = "the encrypted content"
            return True
        return False

    # -- the structure around the content ----------------------------------------------------

    def _structure(self) -> _Steps:
        start = yield from self._header()
        if start.tag != der.SEQUENCE:
            raise NotEnvelopedDataError(
                f"not CMS: the input starts with 0x{start.tag:02X}, not a SEQUENCE"
            )
        self._open(start, "ContentInfo")
        content_type = yield from self._element("ContentInfo contentType")
        if content_type.tag != der.OBJECT_IDENTIFIER:
            raise NotEnvelopedDataError("not CMS: ContentInfo does not start with a content type")
        oid = der.decode_oid(content_type, "ContentInfo contentType")
        if oid != oids.ENVELOPED_DATA:
            raise NotEnvelopedDataError(
                f"the CMS content type is {oids.describe(oid)}, not envelopedData"
            )
        yield from self._open_expected(0xA0, "ContentInfo content [0]")
        yield from self._open_expected(der.SEQUENCE, "EnvelopedData")
        der.decode_integer((yield from self._element("EnvelopedData version")), "version")
        element = yield from self._element("EnvelopedData")
        if element.tag == 0xA0:  # originatorInfo: certificates we do not need
            element = yield from self._element("EnvelopedData recipientInfos")
        found, others = parse_recipient_infos(element, max_recipients=self._limits.max_recipients)
        self._content_key, self.recipient = unwrap(found, others, self._keys)
        yield from self._open_expected(der.SEQUENCE, "EncryptedContentInfo")
        der.decode_oid((yield from self._element("contentType")), "EncryptedContentInfo")
        cipher = self._content_cipher((yield from self._element("contentEncryptionAlgorithm")))
        if (yield from self._at_frame_end()):
            raise MalformedCmsError("no encrypted content: detached content is not supported")
        offset = self._base + self._pos
        header = yield from self._header()
        if header.tag not in (0x80, 0xA0):
            raise MalformedCmsError(
                f"offset {offset}: expected the encryptedContent [0], found tag 0x{header.tag:02X}"
            )
        self._content = ContentReader(
            cipher.decryptor(),
            self._sink,
            constructed=header.constructed,
            length=header.length,
            offset=self._base + self._pos,
            limits=self._limits,
        )
        yield _CONTENT
        yield from self._close("EncryptedContentInfo")
        if not (yield from self._at_frame_end()):
            attrs = yield from self._element("EnvelopedData unprotectedAttrs")
            if attrs.tag != 0xA1:
                raise MalformedCmsError(
                    f"unexpected element 0x{attrs.tag:02X} after EncryptedContentInfo"
                )
        yield from self._close("EnvelopedData")
        yield from self._close("ContentInfo content [0]")
        yield from self._close("ContentInfo")

    def _content_cipher(self, algorithm: der.Element) -> Cipher[modes.CBC]:
        what = "contentEncryptionAlgorithm"
        if algorithm.tag != der.SEQUENCE or not algorithm.children:
            raise MalformedCmsError(f"{what}: not an AlgorithmIdentifier")
        oid = der.decode_oid(algorithm.children[0], what)
        key_size = oids.AES_CBC_KEY_SIZES.get(oid)
        if key_size is None:
            raise UnsupportedAlgorithmError(
                f"content encryption {oids.describe(oid)} is not supported "
                "(AES-128/192/256-CBC are)",
                oid=oid,
            )
        params = algorithm.children[1:]
        if len(params) != 1 or params[0].tag != der.OCTET_STRING or len(params[0].content) != 16:
            raise MalformedCmsError(f"{what}: {oids.NAMES[oid]} needs a 16-byte IV")
        if len(self._content_key) != key_size:
            raise KeyUnwrapError(
                f"the unwrapped content key is {len(self._content_key)} bytes, "
                f"{oids.NAMES[oid]} needs {key_size}: wrong key or corrupt file"
            )
        self.content_algorithm = oids.NAMES[oid]
        return Cipher(algorithms.AES(self._content_key), modes.CBC(params[0].content))

    # -- structure helpers (generators: they pause until enough input is there) ---------------

    def _header(self) -> Generator[None, None, Header]:
        while True:
            offset = self._base + self._pos
            end, name = self._frames[-1] if self._frames else (None, "")
            if end is not None and offset >= end:
                raise MalformedCmsError(f"offset {offset}: {name} ended, but its content goes on")
            header = read_header(self._buf, self._pos, self._limits, offset)
            if header is not None:
                break
            yield from self._wait()
        total = header.total()
        if end is not None and total is not None and offset + total > end:
            raise MalformedCmsError(
                f"offset {offset}: an element of {total} bytes runs past the end of {name}"
            )
        if self._content is None and offset + header.header_length > self._limits.max_header_bytes:
            raise CmsLimitExceededError(
                f"offset {offset}: more than {self._limits.max_header_bytes} bytes before the "
                "encrypted content"
            )
        self._pos += header.header_length
        return header

    def _wait(self) -> Generator[None, None, None]:
        if self._eof:
            raise TruncatedCmsError(
                f"the input ends at offset {self._base + len(self._buf)} inside {self._where}"
            )
        yield None

    def _need(self, count: int) -> Generator[None, None, None]:
        while len(self._buf) - self._pos < count:
            yield from self._wait()

    def _element(self, what: str) -> Generator[None, None, der.Element]:
        """Read one whole element (buffered; bounded by the limits) and parse it."""
        self._where = what
        start = self._pos
        header = yield from self._header()
        depth = 0
        while True:
            if header.is_end_of_contents:
                depth -= 1
            elif header.length is None:
                depth += 1
                if len(self._frames) + depth > self._limits.max_depth:
                    raise CmsLimitExceededError(
                        f"{what}: nesting deeper than {self._limits.max_depth} levels"
                    )
            else:
                end = self._base + self._pos + header.length
                if self._content is None and end > self._limits.max_header_bytes:
                    raise CmsLimitExceededError(
                        f"{what}: more than {self._limits.max_header_bytes} bytes before the "
                        "encrypted content"
                    )
                if self._pos - start + header.length > self._limits.max_header_bytes:
                    raise CmsLimitExceededError(
                        f"{what}: longer than {self._limits.max_header_bytes} bytes"
                    )
                yield from self._need(header.length)
                self._pos += header.length
            if depth <= 0:
                break
            header = yield from self._header()
        return der.parse(bytes(self._buf[start : self._pos]), what=what)

    def _open(self, header: Header, name: str) -> None:
        if not header.constructed:
            raise MalformedCmsError(f"{name}: expected a constructed element")
        if len(self._frames) >= self._limits.max_depth:
            raise CmsLimitExceededError(f"{name}: nested too deep")
        end = None if header.length is None else self._base + self._pos + header.length
        self._frames.append((end, name))

    def _open_expected(self, tag: int, name: str) -> Generator[None, None, None]:
        self._where = name
        offset = self._base + self._pos
        header = yield from self._header()
        if header.tag != tag:
            raise MalformedCmsError(
                f"offset {offset}: expected {name} (tag 0x{tag:02X}), found tag 0x{header.tag:02X}"
            )
        self._open(header, name)

    def _at_frame_end(self) -> Generator[None, None, bool]:
        end, _ = self._frames[-1]
        if end is not None:
            return self._base + self._pos >= end
        yield from self._need(2)
        return self._buf[self._pos : self._pos + 2] == b"\x00\x00"

    def _close(self, name: str) -> Generator[None, None, None]:
        self._where = name
        end, _ = self._frames[-1]
        offset = self._base + self._pos
        if end is None:
            header = yield from self._header()
            if not header.is_end_of_contents:
                raise MalformedCmsError(
                    f"offset {offset}: expected the end-of-contents octets closing {name}, "
                    f"found tag 0x{header.tag:02X}"
                )
        elif offset != end:
            raise MalformedCmsError(f"offset {offset}: {name} should end at offset {end}")
        self._frames.pop()


def _check_zeros(data: memoryview, offset: int) -> None:
    """Real SvarUt files may end in zero padding; anything else after the end is an error."""
    raw = data.tobytes()
    rest = raw.lstrip(b"\x00")
    if rest:
        raise TrailingDataError(
            f"offset {offset + len(raw) - len(rest)}: {len(rest)} byte(s) other than zero "
            "padding after the end of the CMS structure"
        )
