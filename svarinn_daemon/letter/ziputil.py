"""Read an untrusted zip safely: check the central directory first, then stream entries out.

Everything a zip can declare is checked before a single byte is extracted: entry names
(``..``, absolute paths, drive letters), links and other special files, encryption,
compression methods, the number of entries, the total uncompressed size and the
compression ratio. Extraction then never trusts the declared sizes either: it counts.
"""

from __future__ import annotations

import hashlib
import lzma
import os
import re
import secrets
import stat
import struct
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from svarinn_daemon.errors import StorageError, UnsafeArchiveError, VerificationError
from svarinn_daemon.letter.spool import SpoolFile
from svarinn_daemon.letter.zipdir import check_central_directory
from svarinn_daemon.policies import ZipLimits

__all__ = [
    "ZIP_MAGIC",
    "Extracted",
    "ZipEntry",
    "ZipLimits",
    "ZipReader",
    "check_entry_kind",
    "check_entry_name",
    "decode_entry_name",
]

ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
CHUNK = 1024 * 1024
_SUPPORTED_METHODS = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}
_DRIVE = re.compile(r"^[A-Za-z]:")
# What a broken zip makes zipfile and the decompressors raise.
_CORRUPT = (
    zipfile.BadZipFile,
    EOFError,
    ValueError,
    KeyError,
    NotImplementedError,
    struct.error,
    zlib.error,
    lzma.LZMAError,
)


@dataclass(frozen=True)
class ZipEntry:
    """One file in the zip's central directory, name normalised to forward slashes."""

    name: str
    size: int
    compressed_size: int
    info: zipfile.ZipInfo

    @property
    def basename(self) -> str:
        return self.name.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class Extracted:
    path: Path
    size: int
    sha256: str
    head: bytes


def _decoded_name(info: zipfile.ZipInfo) -> str:
    """Names without the UTF-8 flag are cp437 by the spec, but Norwegian senders' tools
    often wrote UTF-8 without setting the flag: prefer UTF-8 when it decodes."""
    if info.flag_bits & 0x800:
        return info.filename
    try:
        return info.filename.encode("cp437").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return info.filename


def decode_entry_name(raw: bytes, *, utf8_flag: bool) -> str:
    """An entry's name from its bytes, as :func:`_decoded_name` reads zipfile's: UTF-8 when
    flagged (a flagged name that is not UTF-8 is corrupt), else UTF-8 when it decodes,
    else cp437; backslashes as forward slashes."""
    try:
        name = raw.decode("utf-8")
    except UnicodeDecodeError:
        if utf8_flag:
            raise VerificationError(
                "the zip file is corrupt: an entry flagged UTF-8 has a name that is not"
            ) from None
        name = raw.decode("cp437")
    return name.replace("\\", "/")


def check_entry_name(name: str) -> None:
    """Refuse a name that could point anywhere but inside the letter."""
    if not name:
        raise UnsafeArchiveError("a zip entry has an empty name")
    if name.startswith("/") or _DRIVE.match(name):
        raise UnsafeArchiveError(f"zip entry {name!r} has an absolute path")
    if ".." in name.split("/"):
        raise UnsafeArchiveError(f"zip entry {name!r} points outside the archive ('..')")
    if any(ord(c) < 32 for c in name):
        raise UnsafeArchiveError(f"zip entry {name!r} has control characters in its name")


def check_entry_kind(
    name: str, *, system: int, external_attr: int, flags: int, method: int
) -> None:
    """Links and other special files, encryption and unknown methods are refused, from
    the entry's central-directory fields (``system``: the "made by" host, 3 for Unix)."""
    mode = external_attr >> 16
    if system == 3 and mode:  # Unix: the high 16 bits are st_mode
        kind = stat.S_IFMT(mode)
        if kind == stat.S_IFLNK:
            raise UnsafeArchiveError(f"zip entry {name!r} is a symbolic link")
        if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
            raise UnsafeArchiveError(f"zip entry {name!r} is not a regular file")
    if flags & 0x1:
        raise UnsafeArchiveError(f"zip entry {name!r} is encrypted")
    if method not in _SUPPORTED_METHODS:
        raise VerificationError(
            f"zip entry {name!r} uses compression method {method}, which is not supported"
        )


class ZipReader:
    """An opened, checked zip. Use as a context manager; entries are the files only."""

    def __init__(self, path: Path, limits: ZipLimits):
        self.path = path
        try:
            check_central_directory(path, limits)  # before zipfile builds a list of it
            self._zip = zipfile.ZipFile(path)
        except _CORRUPT as exc:
            raise VerificationError(f"the zip file is corrupt: {exc}") from exc
        except OSError as exc:
            raise StorageError(f"cannot read {path}: {exc.strerror or exc}") from exc
        try:
            self.entries, self.all_names = self._check(limits)
        except BaseException:
            self._zip.close()
            raise

    def _check(self, limits: ZipLimits) -> tuple[tuple[ZipEntry, ...], tuple[str, ...]]:
        infos = self._zip.infolist()
        if len(infos) > limits.max_entries:
            raise UnsafeArchiveError(
                f"the zip has {len(infos)} entries, more than the limit of {limits.max_entries}"
            )
        entries: list[ZipEntry] = []
        names: list[str] = []
        seen: set[str] = set()
        total = 0
        for info in infos:
            name = _decoded_name(info).replace("\\", "/")
            check_entry_name(name)
            check_entry_kind(
                name,
                system=info.create_system,
                external_attr=info.external_attr,
                flags=info.flag_bits,
                method=info.compress_type,
            )
            key = name.rstrip("/")
            if key in seen:
                raise UnsafeArchiveError(f"zip entry {name!r} occurs twice")
            seen.add(key)
            names.append(name)
            if info.is_dir() or name.endswith("/"):
                continue
            total += info.file_size
            if total > limits.max_total_size:
                raise UnsafeArchiveError(
                    f"the zip unpacks to more than the limit of {limits.max_total_size} bytes"
                )
            ratio = info.file_size / max(info.compress_size, 1)
            if info.file_size > limits.ratio_min_size and ratio > limits.max_ratio:
                raise UnsafeArchiveError(
                    f"zip entry {name!r} is compressed {ratio:.0f}:1, more than the limit "
                    f"of {limits.max_ratio:g}:1"
                )
            entries.append(ZipEntry(name, info.file_size, info.compress_size, info))
        self._check_total_ratio(total, limits)
        return tuple(entries), tuple(names)

    def _check_total_ratio(self, total: int, limits: ZipLimits) -> None:
        """The zip file's own size, not the entries' declared compressed sizes: those are
        the sender's word."""
        if total <= limits.ratio_min_size:
            return
        try:
            packed = os.stat(self.path).st_size
        except OSError as exc:
            raise StorageError(f"cannot read {self.path}: {exc.strerror or exc}") from exc
        ratio = total / max(packed, 1)
        if ratio > limits.max_ratio:
            raise UnsafeArchiveError(
                f"the zip's {len(self._zip.infolist())} entries unpack to {total} bytes from "
                f"{packed}, {ratio:.0f}:1, more than the limit of {limits.max_ratio:g}:1"
            )

    def __enter__(self) -> ZipReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._zip.close()

    def extract(self, entry: ZipEntry, work_dir: Path, max_size: int) -> Extracted:
        """Stream ``entry`` into a new 0600 file in ``work_dir``, hashing as it goes.

        Refuses an entry that produces more than ``max_size`` bytes or more than its header
        says. The caller owns (and removes) the returned file.
        """
        path = work_dir / f"zip-entry-{secrets.token_hex(8)}.part"
        # Written as the spool writes a letter (a writer thread, O_DIRECT where allowed): a
        # large entry costs no fresh page cache, which on some hosts is most of the time.
        with SpoolFile(path) as out:
            extracted = self._copy_out(entry, out, min(max_size, entry.size))
            out.finish()
        return extracted

    def _copy_out(self, entry: ZipEntry, out: SpoolFile, limit: int) -> Extracted:
        digest = hashlib.sha256()
        size = 0
        head = b""
        for chunk in self._chunks(entry):
            size += len(chunk)
            if size > limit:
                what = "its header" if limit == entry.size else "filmetadata"
                raise UnsafeArchiveError(
                    f"zip entry {entry.name!r} is larger than {what} says ({limit} bytes)"
                )
            if not head:
                head = chunk[:1024]
            digest.update(chunk)
            out.write(chunk)
        return Extracted(out.path, size, digest.hexdigest(), head)

    def _chunks(self, entry: ZipEntry) -> Iterator[bytes]:
        try:
            with self._zip.open(entry.info) as stream:
                while chunk := stream.read(CHUNK):
                    yield chunk
        except (*_CORRUPT, RuntimeError) as exc:
            raise VerificationError(f"zip entry {entry.name!r} is corrupt: {exc}") from exc
        except OSError as exc:
            if exc.errno is None:  # bz2 reports bad data as an OSError without errno
                raise VerificationError(f"zip entry {entry.name!r} is corrupt: {exc}") from exc
            raise StorageError(f"cannot read {self.path}: {exc.strerror}") from exc
