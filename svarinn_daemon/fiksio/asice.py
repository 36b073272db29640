"""ASiC-E containers as Fiks IO carries them: a ZIP whose first entry is ``mimetype``
(stored, ``application/vnd.etsi.asic-e+zip``), the files, and ``META-INF/manifest.xml``
(the OpenDocument manifest: each file's name and MIME type) at the end. KS's clients accept
the container unsigned.

Writing streams each file into the ZIP in chunks; reading extracts each entry to a file under
a name of ours (never the entry's), with the hostile-container rules: a bounded number of
entries and bytes, no name that could be a path, the manifest naming exactly the files there.
"""

from __future__ import annotations

import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO
from xml.sax.saxutils import quoteattr

from lxml import etree

from svarinn_daemon.errors import FiksIoError

__all__ = ["MANIFEST", "MIMETYPE", "AsiceEntry", "AsiceWriter", "read_asice", "safe_name"]

MIMETYPE = "application/vnd.etsi.asic-e+zip"
MANIFEST = "META-INF/manifest.xml"
MANIFEST_NS = "urn:oasis:names:tc:opendocument:xmlns:manifest:1.0"
CHUNK = 1 << 20
MAX_NAME = 255
MAX_RATIO = 200  # inflated / compressed, per entry


def safe_name(name: str) -> str:
    """``name`` as a container entry: one plain file name, or FiksIoError."""
    if (
        not name
        or len(name) > MAX_NAME
        or name in (".", "..", "mimetype")
        or name.startswith("META-INF")
        or any(c in name for c in "/\\:")
        or not name.isprintable()
    ):
        raise FiksIoError(f"{name[:80]!r} cannot be a file name in the container", temporary=False)
    return name


class AsiceWriter:
    """Writes one container to ``stream``; ``add`` each file, then ``close`` (or use it as a
    context manager: a container left by an exception is closed, for its caller to throw
    away)."""

    def __init__(self, stream: BinaryIO):
        self._zip = zipfile.ZipFile(stream, "w", compression=zipfile.ZIP_DEFLATED)
        self._zip.writestr(zipfile.ZipInfo("mimetype"), MIMETYPE, zipfile.ZIP_STORED)
        self._files: list[tuple[str, str]] = []

    def add(self, name: str, source: BinaryIO | Path, mimetype: str) -> None:
        safe_name(name)
        if any(name == n for n, _ in self._files):
            raise FiksIoError(f"{name!r} is in the container twice", temporary=False)
        info = zipfile.ZipInfo(name)
        info.compress_type = zipfile.ZIP_DEFLATED
        with self._zip.open(info, "w", force_zip64=True) as out:
            if isinstance(source, Path):
                with open(source, "rb") as stream:
                    shutil.copyfileobj(stream, out, CHUNK)
            else:
                shutil.copyfileobj(source, out, CHUNK)
        self._files.append((name, mimetype))

    def __enter__(self) -> AsiceWriter:
        return self

    def __exit__(self, kind: type[BaseException] | None, *rest: object) -> None:
        if kind is None:
            self.close()
        else:
            self._zip.close()

    def close(self) -> None:
        entries = "".join(
            f"<manifest:file-entry manifest:full-path={quoteattr(name)} "
            f"manifest:media-type={quoteattr(kind)}/>"
            for name, kind in self._files
        )
        manifest = (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            f'<manifest:manifest xmlns:manifest="{MANIFEST_NS}">'
            f'<manifest:file-entry manifest:full-path="/" manifest:media-type="{MIMETYPE}"/>'
            f"{entries}</manifest:manifest>"
        )
        self._zip.writestr(MANIFEST, manifest.encode("utf-8"))
        self._zip.close()


@dataclass(frozen=True)
class AsiceEntry:
    name: str
    path: Path
    size: int
    mimetype: str | None


def _manifest(data: bytes) -> dict[str, str | None]:
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError:
        raise FiksIoError("the container's manifest is not XML", temporary=False) from None
    files: dict[str, str | None] = {}
    for entry in root.iter(f"{{{MANIFEST_NS}}}file-entry"):
        path = entry.get(f"{{{MANIFEST_NS}}}full-path")
        if path and path != "/":
            files[path] = entry.get(f"{{{MANIFEST_NS}}}media-type")
    return files


def read_asice(path: Path, into: Path, *, max_entries: int, max_size: int) -> list[AsiceEntry]:
    """Every file of the container at ``path``, extracted under ``into`` as ``0``, ``1``...;
    FiksIoError (permanent: the same bytes never read otherwise) for anything hostile."""
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            if not infos or infos[0].filename != "mimetype":
                raise FiksIoError("the container does not start with mimetype", temporary=False)
            if archive.read(infos[0]).strip() != MIMETYPE.encode():
                raise FiksIoError("the container's mimetype is not ASiC-E", temporary=False)
            files = [i for i in infos[1:] if i.filename != MANIFEST]
            if len(files) > max_entries:
                raise FiksIoError("the container holds too many files", temporary=False)
            names = [safe_name(i.filename) for i in files]
            if len(set(names)) != len(names):
                raise FiksIoError("the container names a file twice", temporary=False)
            declared: dict[str, str | None] | None = None
            if any(i.filename == MANIFEST for i in infos):
                declared = _manifest(archive.read(MANIFEST)[:1_000_000])
                if set(declared) != set(names):
                    raise FiksIoError(
                        "the container's manifest does not name exactly its files", temporary=False
                    )
            total = 0
            out: list[AsiceEntry] = []
            for n, info in enumerate(files):
                total += info.file_size
                if total > max_size or info.file_size > MAX_RATIO * max(info.compress_size, 1):
                    raise FiksIoError("the container is too large to read", temporary=False)
                target = into / str(n)
                size = 0
                with archive.open(info) as source, open(target, "xb") as sink:
                    while chunk := source.read(CHUNK):
                        size += len(chunk)
                        if size > info.file_size:
                            raise FiksIoError("an entry is larger than it says", temporary=False)
                        sink.write(chunk)
                kind = declared.get(info.filename) if declared is not None else None
                out.append(AsiceEntry(info.filename, target, size, kind))
            return out
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError) as exc:
        if isinstance(exc, FileExistsError | PermissionError):
            raise
        raise FiksIoError(
            f"the container cannot be read ({type(exc).__name__})", temporary=False
        ) from None
