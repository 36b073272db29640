"""ASiC-E containers as Fiks IO carries them: a ZIP whose first entry is ``mimetype``
(stored, ``application/vnd.etsi.asic-e+zip``), the files, and at the end the manifest KS's
ASiC-E library writes, ``META-INF/asicmanifest.xml`` (ETSI ASiCManifest: each file's name,
MIME type and SHA-256; ks-no/fiks-asice-dotnet ``CadesManifestCreator``), unsigned.

Writing streams each file into the ZIP in chunks, hashing it on the way; reading extracts each
entry to a file under a name of ours (never the entry's), with the hostile-container rules: a
bounded number of entries and bytes, no name that could be a path, the manifest (KS's CAdES
one, or an OpenDocument ``META-INF/manifest.xml``) naming exactly the files there, with the
right digests. Other ``META-INF/`` entries (a sender's signature) are not files of the letter.
"""

from __future__ import annotations

import base64
import hashlib
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO
from xml.sax.saxutils import quoteattr

from lxml import etree

from svarinn_daemon.errors import FiksIoError

__all__ = [
    "CADES_MANIFEST",
    "MIMETYPE",
    "ODF_MANIFEST",
    "AsiceEntry",
    "AsiceWriter",
    "read_asice",
    "safe_name",
]

MIMETYPE = "application/vnd.etsi.asic-e+zip"
CADES_MANIFEST = "META-INF/asicmanifest.xml"
CADES_NS = "http://uri.etsi.org/02918/v1.2.1#"
CADES_OLD_NS = "http://uri.etsi.org/02918/v1.1.1#"
DSIG_NS = "http://www.w3.org/2000/09/xmldsig#"
SHA256_URI = "http://www.w3.org/2001/04/xmlenc#sha256"
ODF_MANIFEST = "META-INF/manifest.xml"
MANIFEST_NS = "urn:oasis:names:tc:opendocument:xmlns:manifest:1.0"
META = "META-INF/"
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
        self._files: list[tuple[str, str, str]] = []  # name, MIME type, base64 SHA-256

    def add(self, name: str, source: BinaryIO | Path, mimetype: str) -> None:
        safe_name(name)
        if any(name == n for n, _, _ in self._files):
            raise FiksIoError(f"{name!r} is in the container twice", temporary=False)
        info = zipfile.ZipInfo(name)
        info.compress_type = zipfile.ZIP_DEFLATED
        digest = hashlib.sha256()
        with self._zip.open(info, "w", force_zip64=True) as out:
            stream = open(source, "rb") if isinstance(source, Path) else source  # noqa: SIM115
            try:
                while chunk := stream.read(CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
            finally:
                if isinstance(source, Path):
                    stream.close()
        self._files.append((name, mimetype, base64.b64encode(digest.digest()).decode()))

    def __enter__(self) -> AsiceWriter:
        return self

    def __exit__(self, kind: type[BaseException] | None, *rest: object) -> None:
        if kind is None:
            self.close()
        else:
            self._zip.close()

    def close(self) -> None:
        entries = "".join(
            f"<cades:DataObjectReference URI={quoteattr(name)} MimeType={quoteattr(kind)}>"
            f'<sig:DigestMethod Algorithm="{SHA256_URI}"/>'
            f"<sig:DigestValue>{digest}</sig:DigestValue></cades:DataObjectReference>"
            for name, kind, digest in self._files
        )
        manifest = (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            f'<cades:ASiCManifest xmlns:cades="{CADES_NS}" xmlns:sig="{DSIG_NS}">'
            f"{entries}</cades:ASiCManifest>"
        )
        self._zip.writestr(CADES_MANIFEST, manifest.encode("utf-8"))
        self._zip.close()


@dataclass(frozen=True)
class AsiceEntry:
    name: str
    path: Path
    size: int
    mimetype: str | None
    sha256: str  # hex


@dataclass(frozen=True)
class _Declared:
    mimetype: str | None
    digest: bytes | None  # SHA-256, when the manifest gives one


def _xml(data: bytes) -> Any:
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, huge_tree=False, load_dtd=False
    )
    try:
        return etree.fromstring(data, parser)
    except etree.XMLSyntaxError:
        raise FiksIoError("the container's manifest is not XML", temporary=False) from None


def _cades(data: bytes) -> dict[str, _Declared]:
    files: dict[str, _Declared] = {}
    root = _xml(data)
    for ns in (CADES_NS, CADES_OLD_NS):
        for ref in root.iter(f"{{{ns}}}DataObjectReference"):
            uri, method = ref.get("URI"), ref.find(f"{{{DSIG_NS}}}DigestMethod")
            value = ref.findtext(f"{{{DSIG_NS}}}DigestValue")
            if not uri or method is None or method.get("Algorithm") != SHA256_URI or not value:
                raise FiksIoError(
                    "the container's manifest names a file without a SHA-256", temporary=False
                )
            try:
                digest = base64.b64decode(value.strip(), validate=True)
            except ValueError:
                raise FiksIoError(
                    "a digest in the manifest is not base64", temporary=False
                ) from None
            files[uri] = _Declared(ref.get("MimeType"), digest)
    return files


def _odf(data: bytes) -> dict[str, _Declared]:
    files: dict[str, _Declared] = {}
    for entry in _xml(data).iter(f"{{{MANIFEST_NS}}}file-entry"):
        path = entry.get(f"{{{MANIFEST_NS}}}full-path")
        if path and path != "/":
            files[path] = _Declared(entry.get(f"{{{MANIFEST_NS}}}media-type"), None)
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
            if len(infos) > max_entries + 4:
                raise FiksIoError("the container holds too many files", temporary=False)
            files = [i for i in infos[1:] if not i.filename.startswith(META)]
            if len(files) > max_entries:
                raise FiksIoError("the container holds too many files", temporary=False)
            names = [safe_name(i.filename) for i in files]
            if len(set(names)) != len(names):
                raise FiksIoError("the container names a file twice", temporary=False)
            present = {i.filename for i in infos}
            declared: dict[str, _Declared] | None = None
            for manifest, read in ((CADES_MANIFEST, _cades), (ODF_MANIFEST, _odf)):
                if manifest in present and declared is None:
                    declared = read(archive.read(manifest)[:1_000_000])
            if declared is not None and set(declared) != set(names):
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
                size, digest = 0, hashlib.sha256()
                with archive.open(info) as source, open(target, "xb") as sink:
                    while chunk := source.read(CHUNK):
                        size += len(chunk)
                        if size > info.file_size:
                            raise FiksIoError("an entry is larger than it says", temporary=False)
                        digest.update(chunk)
                        sink.write(chunk)
                said = declared.get(info.filename) if declared is not None else None
                if said is not None and said.digest is not None and said.digest != digest.digest():
                    raise FiksIoError(
                        f"{info.filename[:80]!r} differs from its digest in the manifest",
                        temporary=False,
                    )
                kind = said.mimetype if said is not None else None
                out.append(AsiceEntry(info.filename, target, size, kind, digest.hexdigest()))
            return out
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError) as exc:
        if isinstance(exc, FileExistsError | PermissionError):
            raise
        raise FiksIoError(
            f"the container cannot be read ({type(exc).__name__})", temporary=False
        ) from None
