"""The ``noark5`` archive: each letter becomes one incoming journalpost through Arkivverket's
Noark 5 tjenestegrensesnitt (v1.1, the REST API of the Nikita reference server).

Everything is reached through ``_links`` from the root: the configured arkivdel (by title
or systemID), its cases and journalposts. One letter:

1. the journalpost carrying the forsendelse id in ``virksomhetsspesifikkeMetadata``
   (``$filter`` on the arkivdel's journalposts): found, it is completed, never made twice;
2. otherwise the case: the one the letter names for import (``saksaar`` and
   ``sakssekvensnummer``) when the arkivdel has it, else the year's collection case (by
   title, created with ``ny-saksmappe`` when missing); ``ny-journalpost`` in it (type I,
   ``journalstatus``, the key and how many documents follow), then the parties;
3. per document, in order, whatever of it is missing: ``ny-dokumentbeskrivelse``
   (``eksternReferanse`` = id/file), ``ny-dokumentobjekt`` (size and SHA-256, which the
   server checks the upload against), and the file itself to the ``fil`` link.

``has`` says "archived" only when every declared document has its file. Transport errors,
5xx, 409 and 412 are temporary; refused credentials, a missing arkivdel or relation, 400 and
422 are loud (never paper).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

from svarinn_daemon.adapters.archive_http import Answer, ArchiveHttp
from svarinn_daemon.adapters.base import LetterOrigin
from svarinn_daemon.adapters.noark5 import encode, upload
from svarinn_daemon.adapters.registration import (
    TEMPORARY,
    RegisteredDocument,
    Registration,
)
from svarinn_daemon.adapters.staging import StagedLetter
from svarinn_daemon.adapters.systems import DEFAULT_SAMLESAK, RegisteringArchive, Rules
from svarinn_daemon.common import Clock, utc_now
from svarinn_daemon.errors import ArchiveError
from svarinn_daemon.logs import get_logger

__all__ = ["Noark5Archive"]

DEFAULT_BULKGRENSE = 157_286_400  # the standard's default when admin/system names none
DEFAULT_CHUNK = 8 * 1024 * 1024
TEMPORARY_STATUS = frozenset({408, 409, 412, 425, 429})

log = get_logger(__name__)


class Noark5Archive(RegisteringArchive):
    """Archive letters as Noark 5 journalposts; see the module docstring."""

    lookup = "the arkivdel's journalposts"

    def __init__(
        self,
        url: str,
        *,
        arkivdel: str,
        authorization: Callable[[], str | None],
        http: ArchiveHttp,
        work_directory: Path,
        timeout: timedelta,
        journalstatus: str = TEMPORARY,
        samlesak: str = DEFAULT_SAMLESAK,
        title_limit: int = 255,
        chunk_size: int = DEFAULT_CHUNK,
        owner: str | None = None,
        now: Clock = utc_now,
    ):
        rules = Rules(journalstatus, samlesak, title_limit)
        super().__init__(
            work_directory,
            timeout=timeout,
            rules=rules,
            deadline=http.deadline,
            owner=owner,
            now=now,
        )
        self.url = url
        self.arkivdel_name = arkivdel
        self.chunk_size = chunk_size
        self._bulkgrense: int | None = None
        self.http = http
        self._authorization = authorization
        self._arkivdel: Mapping[str, Any] | None = None
        self._cases: dict[str, Mapping[str, Any]] = {}
        self._lock = threading.Lock()
        self._case_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Noark5Archive(url={self.url!r})"

    def secret_values(self) -> list[str]:
        return list(self.http.redactor.secrets)

    # -- the daemon's questions ------------------------------------------------------

    def forget(self) -> None:
        with self._case_lock:
            self._cases.clear()
        with self._lock:
            self._arkivdel = None
            self._bulkgrense = None

    def has_from(self, origin: LetterOrigin | None, forsendelse_id: str) -> str | None:
        post = self._journalpost(forsendelse_id)
        if post is None:
            return None
        declared = encode.declared_documents(post)
        if declared is None:
            return None
        complete = sum(1 for d in self._descriptions(post) if self._has_file(d) is not None)
        return encode.reference(post) if complete >= declared else None

    def probe(self) -> bool:
        """Walks to the arkivdel (credentials, address, arkivdel) and asks about a made-up
        letter."""
        with self._lock:
            self._arkivdel = None
        self._arkivdel_entity()
        return super().probe()

    # -- one letter --------------------------------------------------------------------

    def register(self, reg: Registration, staged: StagedLetter) -> str:
        post = self._journalpost(reg.external_key)
        if post is None:
            case = self._case(reg)
            post = self._create(case, encode.NY_JOURNALPOST, encode.journalpost(reg), "journalpost")
            log.info(
                "archive.noark5.journalpost",
                forsendelse_id=reg.external_key,
                case=str(case.get("mappeID") or case.get("systemID")),
                journalpost=encode.reference(post),
            )
        self._parties(reg, post)
        existing = {str(d.get("eksternReferanse")): d for d in self._descriptions(post)}
        for doc in reg.documents:
            self._document(reg, post, doc, existing.get(f"{reg.external_key}/{doc.file}"), staged)
        return encode.reference(post)

    def _parties(self, reg: Registration, post: Mapping[str, Any]) -> None:
        listing = encode.link(post, encode.REL + "arkivstruktur/korrespondansepart/")
        if listing is not None and encode.results(self._get(listing, "korrespondansepart")):
            return  # added by an earlier attempt
        for party, kind in ((reg.sender, encode.SENDER), (reg.receiver, encode.RECEIVER)):
            if party is not None and party.name:
                rel, body = encode.korrespondansepart(party, kind)
                self._create(post, rel, body, "korrespondansepart")

    def _document(
        self,
        reg: Registration,
        post: Mapping[str, Any],
        doc: RegisteredDocument,
        description: Mapping[str, Any] | None,
        staged: StagedLetter,
    ) -> None:
        if description is None:
            body = encode.dokumentbeskrivelse(doc, reg.external_key)
            description = self._create(
                post, encode.NY_DOKUMENTBESKRIVELSE, body, "dokumentbeskrivelse"
            )
        objects = self._objects(description)
        if objects:
            obj = objects[0]
            if self._has_file(description) is not None:
                return
        else:
            obj = self._create(
                description, encode.NY_DOKUMENTOBJEKT, encode.dokumentobjekt(doc), "dokumentobjekt"
            )
        target = encode.link(obj, encode.FIL)
        if target is None:
            raise self._missing("dokumentobjekt", encode.FIL)
        self._upload(target, doc, staged)

    # -- look-ups ----------------------------------------------------------------------

    def _arkivdel_entity(self) -> Mapping[str, Any]:
        with self._lock:
            if self._arkivdel is not None:
                return self._arkivdel
        root = self._get(self.url, "the root")
        archives = self._follow(root, encode.ARKIV, "the root")
        for arkiv in encode.results(archives):
            for part in encode.results(self._follow(arkiv, encode.ARKIVDEL, "arkiv")):
                if self.arkivdel_name in (part.get("tittel"), part.get("systemID")):
                    with self._lock:
                        self._arkivdel = part
                    return part
        raise ArchiveError(
            f"the archive at {self.url} has no arkivdel titled {self.arkivdel_name!r}: check "
            "arkivdel",
            temporary=True,
            loud=True,
        )

    def _journalpost(self, key: str) -> Mapping[str, Any] | None:
        arkivdel = self._arkivdel_entity()
        found = [
            p
            for p in encode.results(
                self._follow(
                    arkivdel, encode.JOURNALPOST, "arkivdel", encode.filter_journalpost(key)
                )
            )
            if encode.carries(p, key)
        ]
        if len(found) > 1:
            log.warning("archive.noark5.duplicates", forsendelse_id=key, count=len(found))
        return found[0] if found else None

    def _case(self, reg: Registration) -> Mapping[str, Any]:
        arkivdel = self._arkivdel_entity()
        placement = reg.case
        if placement.saksaar is not None and placement.sakssekvensnummer is not None:
            wanted = encode.filter_case(placement.saksaar, placement.sakssekvensnummer)
            for case in encode.results(
                self._follow(arkivdel, encode.SAKSMAPPE, "arkivdel", wanted)
            ):
                if (case.get("saksaar"), case.get("sakssekvensnummer")) == (
                    placement.saksaar,
                    placement.sakssekvensnummer,
                ):
                    return case
            log.info("archive.noark5.case_not_found", forsendelse_id=reg.external_key)
        title = placement.collection_title
        if not title:
            raise ArchiveError(
                f"{reg.external_key}: the letter names no case the arkivdel has, and samlesak "
                "is empty",
                temporary=True,
                loud=True,
            )
        with self._case_lock:  # one worker finds or creates the collection case, the rest reuse it
            cached = self._cases.get(title)
            if cached is not None:
                return cached
            wanted = encode.filter_title(title)
            titled = self._follow(arkivdel, encode.SAKSMAPPE, "arkivdel", wanted)
            found = [c for c in encode.results(titled) if c.get("tittel") == title]
            if found:
                collection = found[0]
            else:
                body = encode.collection_case(title)
                collection = self._create(arkivdel, encode.NY_SAKSMAPPE, body, "saksmappe")
                log.info("archive.noark5.collection_case", title=title)
            self._cases[title] = collection
            return collection

    def _descriptions(self, post: Mapping[str, Any]) -> list[Mapping[str, Any]]:
        return encode.results(self._follow(post, encode.DOKUMENTBESKRIVELSE, "journalpost"))

    def _objects(self, description: Mapping[str, Any]) -> list[Mapping[str, Any]]:
        return encode.results(
            self._follow(description, encode.DOKUMENTOBJEKT, "dokumentbeskrivelse")
        )

    def _has_file(self, description: Mapping[str, Any]) -> str | None:
        """The href of the description's uploaded file, or None when it has none yet."""
        for obj in self._objects(description):
            target = encode.link(obj, encode.FIL)
            if target is None:
                continue
            answer = self.http.get(target, "the file", self._headers(), body=False)
            if answer.status_code == 200:
                return target
            if answer.status_code not in (204, 404):
                self._raise(answer, "the file")
        return None

    # -- HTTP ----------------------------------------------------------------------------

    def _headers(self, content_type: str | None = None) -> dict[str, str]:
        headers = {"Accept": encode.MEDIA_TYPE}
        if content_type:
            headers["Content-Type"] = content_type
        value = self._authorization()
        if value:
            headers["Authorization"] = value
        return headers

    def _follow(
        self, entity: Mapping[str, Any], rel: str, what: str, odata: str | None = None
    ) -> Any:
        target = encode.link(entity, rel)
        if target is None:
            raise self._missing(what, rel)
        if odata is not None:
            target += ("&" if "?" in target else "?") + "$filter=" + quote(odata, safe="")
        return self._get(target, rel.removeprefix(encode.REL))

    def _get(self, url: str, what: str) -> Any:
        answer = self.http.get(url, what, self._headers())
        if answer.status_code == 204:
            return {"results": []}
        if answer.status_code != 200:
            self._raise(answer, what)
        return _json(answer, what)

    def _create(
        self, parent: Mapping[str, Any], rel: str, body: Mapping[str, Any], what: str
    ) -> Mapping[str, Any]:
        target = encode.link(parent, rel)
        if target is None:
            raise self._missing(what, rel)
        data = json.dumps(body, ensure_ascii=False).encode()
        answer = self.http.post(target, what, self._headers(encode.MEDIA_TYPE), data)
        if answer.status_code not in (200, 201):
            self._raise(answer, what)
        created = _json(answer, what)
        if not isinstance(created, dict):
            raise ArchiveError(f"{what}: the archive answered no object", temporary=True)
        return created

    def _upload(self, target: str, doc: RegisteredDocument, staged: StagedLetter) -> None:
        upload.send_file(
            self.http,
            target,
            doc,
            staged,
            headers=self._headers,
            limit=self._bulk_limit(),
            chunk_size=self.chunk_size,
            fail=self._raise,
        )

    def _bulk_limit(self) -> int:
        """The server's ``bulkgrense`` (``admin/system``), 150 MiB when it names none, 0 for
        no limit; asked once."""
        with self._lock:
            if self._bulkgrense is not None:
                return self._bulkgrense
        limit = DEFAULT_BULKGRENSE
        root = self._get(self.url, "the root")
        system = encode.link(root, encode.REL + "admin/system/")
        if system is not None:
            value = self._get(system, "admin/system")
            named = value.get("bulkgrense") if isinstance(value, dict) else None
            if isinstance(named, int) and not isinstance(named, bool) and named >= 0:
                limit = named
        with self._lock:
            self._bulkgrense = limit
        return limit

    def _raise(self, answer: Answer, what: str) -> None:
        status = answer.status_code
        text = self.http.scrub(answer.content.decode("utf-8", "replace"))
        message = f"{what}: the archive answered HTTP {status}" + (f": {text}" if text else "")
        if status >= 500 or status in TEMPORARY_STATUS:
            raise ArchiveError(message, temporary=True)
        raise ArchiveError(message, temporary=True, loud=True)

    def _missing(self, what: str, rel: str) -> ArchiveError:
        return ArchiveError(
            f"{what} offers no link {rel}: the server does not offer what this adapter needs "
            "(or the user may not do it)",
            temporary=True,
            loud=True,
        )

    def close(self) -> None:
        self.http.close()


def _json(answer: Answer, what: str) -> Any:
    try:
        return json.loads(answer.content)
    except (ValueError, UnicodeDecodeError):
        raise ArchiveError(
            f"{what}: the archive answered something not JSON", temporary=True
        ) from None
