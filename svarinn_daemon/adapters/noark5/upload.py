"""A file into a Noark 5 dokumentobjekt, as the standard says (chapter 6, "Overføre små filer"
and "Overføre store filer"): one POST with the file up to the server's ``bulkgrense``; above
it, or when the server answers 403, an upload session: a POST with ``X-Upload-Content-Type``
and ``X-Upload-Content-Length`` answered 200 with a ``Location``, then PUTs of
``Content-Range: <lower>-<upper>/<total>`` to each new ``Location``, 200 for each part and
201 for the last. The file is read from the staged letter piece by piece, never whole; a
session's ``Location`` is followed only on the archive's own origin (the credentials go with
it)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from urllib.parse import urljoin, urlsplit

from svarinn_daemon.adapters.archive_http import Answer, ArchiveHttp
from svarinn_daemon.adapters.registration import RegisteredDocument
from svarinn_daemon.adapters.staging import StagedLetter
from svarinn_daemon.errors import ArchiveError

__all__ = ["send_file", "session_url"]

PIECE = 1024 * 1024

Headers = Callable[..., dict[str, str]]
Fail = Callable[[Answer, str], None]


def send_file(
    http: ArchiveHttp,
    target: str,
    doc: RegisteredDocument,
    staged: StagedLetter,
    *,
    headers: Headers,
    limit: int,
    chunk_size: int,
    fail: Fail,
) -> None:
    """Upload ``doc`` to the dokumentobjekt's ``fil`` link ``target``; ``fail`` raises the
    error an unexpected answer means."""
    if not limit or doc.size <= limit:
        body = (doc.size, _reader(staged, doc.file, 0, doc.size))
        answer = http.post(target, "the file", headers(doc.mimetype), body)
        if answer.status_code in (200, 201):
            return
        if answer.status_code != 403:
            fail(answer, "the file")
    _in_parts(http, target, doc, staged, headers=headers, chunk_size=chunk_size, fail=fail)


def _in_parts(
    http: ArchiveHttp,
    target: str,
    doc: RegisteredDocument,
    staged: StagedLetter,
    *,
    headers: Headers,
    chunk_size: int,
    fail: Fail,
) -> None:
    opening = headers()
    opening["X-Upload-Content-Type"] = doc.mimetype
    opening["X-Upload-Content-Length"] = str(doc.size)
    answer = http.post(target, "the file's upload session", opening, b"")
    lower = 0
    while lower < doc.size:
        if answer.status_code != 200:
            fail(answer, "the file's upload session")
        location = session_url(target, answer)
        upper = min(lower + chunk_size, doc.size) - 1
        part = headers(doc.mimetype)
        part["Content-Range"] = f"{lower}-{upper}/{doc.size}"
        length = upper - lower + 1
        body = (length, _reader(staged, doc.file, lower, length))
        answer = http.request("PUT", location, "a part of the file", part, body)
        lower = upper + 1
    if answer.status_code != 201:
        if answer.status_code == 200:
            raise ArchiveError(
                "the file's last part was answered 200, not 201: the upload is not complete",
                temporary=True,
            )
        fail(answer, "the file's last part")


def session_url(target: str, answer: Answer) -> str:
    """The session's next address (``Location``), resolved against ``target`` and on its
    origin only."""
    location = answer.headers.get("location")
    if not location:
        raise ArchiveError("the upload session answered no Location", temporary=True)
    resolved = urljoin(target, location)
    if urlsplit(resolved)[:2] != urlsplit(target)[:2]:
        raise ArchiveError(
            f"the upload session moved to another origin ({urlsplit(resolved).netloc}): "
            "not followed",
            temporary=True,
            loud=True,
        )
    return resolved


def _reader(
    staged: StagedLetter, stored: str, offset: int, length: int
) -> Callable[[], Iterator[bytes]]:
    """The pieces of ``length`` bytes of a staged file from ``offset``."""

    def pieces() -> Iterator[bytes]:
        with staged.open_file(stored) as content:
            content.seek(offset)
            left = length
            while left > 0 and (piece := content.read(min(PIECE, left))):
                left -= len(piece)
                yield piece

    return pieces
