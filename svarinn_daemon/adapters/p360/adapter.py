"""The ``p360`` archive: each letter becomes one incoming document in Public 360, through its
SIF JSON RPC (``POST {url}/{Service}/{Method}`` with ``{"parameter": {...}}``).

One letter: ``DocumentService.GetDocuments`` by the custom field that holds the forsendelse
id (``external_key_field``): found, it is archived. Otherwise the case: the one the letter
names for import (``CaseService.GetCases`` by its case number, spelled by
``case_number_format``) when 360 has it, else the year's collection case (``samlesak``: by
the external id the daemon gives it, then by exact title, else ``CreateCase``). Then one
``DocumentService.CreateDocument`` with the contacts and every file inline (each
``Base64Data`` streamed from disk): the document is registered whole or not at all, so there
is no half-registered letter to complete.

SIF answers HTTP 200 with ``Successful`` false for a refusal; its ``ErrorMessage`` is free
text, so nothing is decided from it: a refusal is loud (an operator reads it: an unknown
archive code, category or custom field), never paper. Transport errors, 5xx and timeouts
are temporary; refused credentials and a wrong address loud.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, BinaryIO

from svarinn_daemon.adapters.archive_http import ArchiveHttp
from svarinn_daemon.adapters.base import LetterOrigin
from svarinn_daemon.adapters.inline import InlineFiles
from svarinn_daemon.adapters.p360 import encode
from svarinn_daemon.adapters.registration import TEMPORARY, Registration
from svarinn_daemon.adapters.staging import StagedLetter
from svarinn_daemon.adapters.systems import DEFAULT_SAMLESAK, RegisteringArchive, Rules
from svarinn_daemon.common import Clock, utc_now
from svarinn_daemon.config.secrets import Secret
from svarinn_daemon.errors import ArchiveError
from svarinn_daemon.logs import get_logger

__all__ = ["P360Archive"]

DEFAULT_CASE_NUMBER = "{saksaar}/{sakssekvensnummer}"
JSON = "application/json; charset=utf-8"

log = get_logger(__name__)


class P360Archive(RegisteringArchive):
    """Archive letters as Public 360 documents over SIF; see the module docstring."""

    lookup = "DocumentService/GetDocuments"

    def __init__(
        self,
        url: str,
        *,
        authkey: Secret,
        settings: encode.Settings,
        work_directory: Path,
        timeout: timedelta,
        authkey_in: str = "header",
        client_id: str | None = None,
        journalstatus: str = TEMPORARY,
        samlesak: str = DEFAULT_SAMLESAK,
        case_number_format: str = DEFAULT_CASE_NUMBER,
        title_limit: int = 254,
        http: ArchiveHttp,
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
        self.settings = settings
        self.case_number_format = case_number_format
        self._authkey = authkey
        self._authkey_in = authkey_in
        self._client_id = client_id
        self.http = http
        self._cases: dict[str, str] = {}
        self._case_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"P360Archive(url={self.url!r})"

    def secret_values(self) -> list[str]:
        return list(self.http.redactor.secrets)

    # -- the daemon's questions ------------------------------------------------------

    def forget(self) -> None:
        with self._case_lock:
            self._cases.clear()

    def has_from(self, origin: LetterOrigin | None, forsendelse_id: str) -> str | None:
        found = self._documents(forsendelse_id)
        if not found:
            return None
        if len(found) > 1:
            log.warning("archive.p360.duplicates", forsendelse_id=forsendelse_id, count=len(found))
        return _reference(found[0])

    def _documents(self, key: str) -> list[Any]:
        answer = self._call(
            "DocumentService", "GetDocuments", encode.document_lookup(self.settings, key)
        )
        # The custom field is our key: a 360 that ignores an unknown field in a search
        # would answer with other documents, never "this one".
        return [
            d
            for d in encode.listed(answer, "Documents")
            if _carries(d, self.settings.external_key_field, key)
        ]

    # -- one letter --------------------------------------------------------------------

    def register(self, reg: Registration, staged: StagedLetter) -> str:
        found = self._documents(reg.external_key)
        if found:  # registered by an attempt whose answer was lost
            return _reference(found[0])
        case_number = self._case(reg)
        files = InlineFiles()
        markers = [
            files.marker(_opener(staged, doc.file), doc.size, encoded=False)
            for doc in reg.documents
        ]
        parameter = encode.create_document(
            reg, case_number, self.settings, [m.decode() for m in markers]
        )
        body = files.body(json.dumps({"parameter": parameter}, ensure_ascii=False).encode())
        answer = self._call("DocumentService", "CreateDocument", None, body=body)
        number = encode.text(answer.get("DocumentNumber")) or encode.text(answer.get("Recno"))
        log.info(
            "archive.p360.document",
            forsendelse_id=reg.external_key,
            case=case_number,
            document=number,
        )
        return number or reg.external_key

    def _case(self, reg: Registration) -> str:
        placement = reg.case
        if placement.named_case:
            year = placement.saksaar or 0
            number = self.case_number_format.format(
                saksaar=year,
                saksaar_short=year % 100,
                sakssekvensnummer=placement.sakssekvensnummer,
            )
            cases = encode.listed(
                self._call("CaseService", "GetCases", encode.case_lookup(number)), "Cases"
            )
            if any(encode.text(c.get("CaseNumber")) == number for c in cases):
                return number
            log.info("archive.p360.case_not_found", forsendelse_id=reg.external_key, case=number)
        title = placement.collection_title
        if not title:
            raise ArchiveError(
                f"{reg.external_key}: the letter names no case 360 has, and samlesak is empty",
                temporary=True,
                loud=True,
            )
        with self._case_lock:
            if title in self._cases:
                return self._cases[title]
            found = self._find_collection(title)
            if found is None:
                answer = self._call(
                    "CaseService", "CreateCase", encode.collection_case(title, self.settings)
                )
                found = encode.text(answer.get("CaseNumber"))
                if found is None:
                    raise ArchiveError(
                        f"CreateCase for {title!r} answered no CaseNumber", temporary=True
                    )
                log.info("archive.p360.collection_case", title=title, case=found)
            self._cases[title] = found
            return found

    def _find_collection(self, title: str) -> str | None:
        for by_title in (False, True):
            lookup = encode.collection_lookup(title, by_title=by_title)
            for case in encode.listed(self._call("CaseService", "GetCases", lookup), "Cases"):
                external = case.get("ExternalId")
                ours = isinstance(external, dict) and external.get("Id") == f"samlesak:{title}"
                number = encode.text(case.get("CaseNumber"))
                if number is not None and (ours or (by_title and case.get("Title") == title)):
                    return number
        return None

    # -- SIF ---------------------------------------------------------------------------

    def _call(
        self,
        service: str,
        method: str,
        parameter: dict[str, Any] | None,
        *,
        body: Any = None,
    ) -> dict[str, Any]:
        what = f"{service}.{method}"
        shown = f"{self.url}/{service}/{method}"
        url = shown
        headers = {"Content-Type": JSON, "Accept": "application/json"}
        if self._authkey_in == "query":
            url = f"{shown}?authkey={self._authkey.reveal()}"
        else:
            headers["Authorization"] = f"authkey {self._authkey.reveal()}"
        if self._client_id:
            headers["clientid"] = self._client_id
        if body is None:
            body = json.dumps({"parameter": parameter}, ensure_ascii=False).encode()
        answer = self.http.post(url, what, headers, body, shown_url=shown)
        if answer.status_code >= 500 or answer.status_code in (408, 429):
            raise ArchiveError(
                f"{what}: 360 answered HTTP {answer.status_code}: "
                f"{self.http.scrub(answer.content.decode('utf-8', 'replace'))}",
                temporary=True,
            )
        try:
            document = json.loads(answer.content)
        except (ValueError, UnicodeDecodeError):
            document = None
        if answer.status_code != 200 or not isinstance(document, dict):
            raise ArchiveError(
                f"{what}: 360 answered HTTP {answer.status_code} without a SIF answer: "
                f"{self.http.scrub(answer.content.decode('utf-8', 'replace'))}",
                temporary=True,
            )
        if document.get("Successful") is not True:
            message = " ".join(
                self.http.scrub(str(document.get(k) or ""))
                for k in ("ErrorMessage", "ErrorDetails")
            ).strip()
            raise ArchiveError(
                f"{what}: 360 refused it: {message or 'Successful is not true'}",
                temporary=True,
                loud=True,
            )
        return document

    def close(self) -> None:
        self.http.close()


def _opener(staged: StagedLetter, stored: str) -> Callable[[], BinaryIO]:
    return lambda: staged.open_file(stored)


def _carries(document: Any, field: str, key: str) -> bool:
    """The document's ``CustomFields`` (what GetDocuments answers) hold our key."""
    fields = document.get("CustomFields") if isinstance(document, dict) else None
    if not isinstance(fields, list):
        return False
    return any(
        isinstance(f, dict) and f.get("Name") == field and str(f.get("Value")) == key
        for f in fields
    )


def _reference(document: Any) -> str:
    number = encode.text(document.get("DocumentNumber")) or encode.text(document.get("Recno"))
    return number or "document"
