"""A local Public 360 SIF: ``POST {base}/SI.Data.RPC/SI.Data.RPC/{Service}/{Method}`` with
``{"parameter": {...}}``, the authkey as ``Authorization: authkey KEY`` or ``?authkey=KEY``.

Tieto publishes no specification of SIF; the public shapes are FINTLabs' request and
response examples (MIT; ``../shared/specs/p360-sif-fintlabs/``). Given their directory
(``shapes``), every request's parameter is checked against its method's example: a field
the example does not have, or of another JSON type, is refused (and listed in
``shape_violations``). Without it the archive applies only its own rules, which hold
either way: the custom fields it knows (``custom_fields``), a case that exists, a document
with a title, category, archive and at least one file in valid base64, file formats it
takes. It keeps cases and documents and answers as 360 does (HTTP 200, ``Successful``).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import itertools
import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from svarinn_daemon.archives.server import ArchiveServer, Injected, Reply

__all__ = ["LocalP360", "StoredP360Case", "StoredP360Document", "shape_errors"]

BASE = "/SI.Data.RPC/SI.Data.RPC"
METHODS = {
    "CaseService.GetCases",
    "CaseService.CreateCase",
    "DocumentService.GetDocuments",
    "DocumentService.CreateDocument",
}


class _Refused(Exception):
    pass


@dataclass
class StoredP360Case:
    recno: int
    case_number: str
    title: str
    external: tuple[str, str] | None = None


@dataclass
class StoredP360Document:
    recno: int
    document_number: str
    case: StoredP360Case
    title: str
    status: str
    category: str
    custom: dict[str, str]
    contacts: list[dict[str, Any]]
    files: list[tuple[str, str, bytes, str]] = field(default_factory=list)  # title, fmt, data, rel


def shape_errors(value: Any, example: Any, where: str = "parameter") -> list[str]:
    """Where ``value`` leaves the example instance's shape: unknown keys, other JSON types."""
    if isinstance(example, dict):
        if not isinstance(value, dict):
            return [f"{where}: an object was expected"]
        errors = []
        for key, item in value.items():
            if key not in example:
                errors.append(f"{where}.{key}: no such field")
            elif item is not None and example[key] != {}:
                errors += shape_errors(item, example[key], f"{where}.{key}")
        return errors
    if isinstance(example, list):
        if not isinstance(value, list):
            return [f"{where}: a list was expected"]
        return [
            e for i, x in enumerate(value) for e in shape_errors(x, example[0], f"{where}[{i}]")
        ]
    kinds = {bool: (bool,), int: (int, float), float: (int, float), str: (str,)}
    wanted = kinds.get(type(example), (type(example),))
    if isinstance(value, bool) != isinstance(example, bool) or not isinstance(value, wanted):
        return [f"{where}: {type(example).__name__} expected, not {type(value).__name__}"]
    return []


class LocalP360:
    """The archive; ``with LocalP360(...) as p360:`` serves ``p360.url``."""

    def __init__(
        self,
        *,
        authkey: str = "p360-authkey",
        custom_fields: tuple[str, ...] = ("SvarUtForsendelseId",),
        refused_formats: tuple[str, ...] = ("exe",),
        shapes: Path | None = None,
        year: int = 2026,
    ):
        self.authkey = authkey
        self.custom_fields = frozenset(custom_fields)
        self.refused_formats = frozenset(refused_formats)
        self.year = year
        self.shapes = (
            {
                method: json.loads((shapes / f"{method.replace('.', '/')}Args.json").read_text())
                for method in METHODS
            }
            if shapes is not None
            else {}
        )
        self.shape_violations: list[str] = []
        self.cases: list[StoredP360Case] = []
        self.documents: list[StoredP360Document] = []
        self._recnos = itertools.count(200_001)
        self._lock = threading.Lock()
        self.server = ArchiveServer(self._handle, operation_of=_operation_of)

    @property
    def url(self) -> str:
        return self.server.base_url + BASE

    def inject(self, fault: Injected) -> None:
        self.server.inject(fault)

    def __enter__(self) -> LocalP360:
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop()

    def add_case(self, case_number: str, title: str) -> StoredP360Case:
        """A case made in 360 by hand."""
        case = StoredP360Case(next(self._recnos), case_number, title)
        self.cases.append(case)
        return case

    # -- serving -------------------------------------------------------------------------

    def _handle(
        self, verb: str, path: str, headers: dict[str, str], body: bytes, fault: Injected | None
    ) -> tuple[str, Reply]:
        method = _operation_of(path, headers, body)
        if method not in METHODS:
            return method, Reply(404, b"no such method", "text/plain")
        query = parse_qs(urlsplit(path).query).get("authkey", [""])[0]
        header = headers.get("authorization", "")
        if not (
            hmac.compare_digest(header, f"authkey {self.authkey}")
            or hmac.compare_digest(query, self.authkey)
        ):
            return method, Reply(401, b"Unauthorized", "text/plain")
        try:
            request = json.loads(body)
            parameter = request["parameter"]
            if not isinstance(parameter, dict) or set(request) != {"parameter"}:
                raise _Refused('the body must be {"parameter": {...}}')
            if method in self.shapes:
                errors = shape_errors(parameter, self.shapes[method])
                if errors:
                    self.shape_violations += errors
                    raise _Refused("; ".join(errors[:3]))
            if fault is not None and fault.fault is not None:
                raise _Refused(f"injected: {fault.fault}")
            with self._lock:
                answer = getattr(self, "_" + method.split(".")[1])(parameter)
            answer.update(Successful=True, ErrorMessage=None, ErrorDetails=None)
        except (ValueError, KeyError, TypeError) as exc:
            answer = _failed(f"Invalid request: {type(exc).__name__}: {exc}")
        except _Refused as exc:
            answer = _failed(str(exc))
        return method, Reply(200, json.dumps(answer).encode(), "application/json; charset=utf-8")

    # -- the methods ---------------------------------------------------------------------

    def _GetCases(self, p: dict[str, Any]) -> dict[str, Any]:
        found = list(self.cases)
        if "CaseNumber" in p:
            found = [c for c in found if c.case_number == p["CaseNumber"]]
        if "Title" in p:
            found = [c for c in found if c.title == p["Title"]]
        if "ExternalId" in p:
            wanted = (p["ExternalId"].get("Id"), p["ExternalId"].get("Type"))
            found = [c for c in found if c.external == wanted]
        return {"Cases": [_case(c) for c in found], "TotalCount": len(found)}

    def _CreateCase(self, p: dict[str, Any]) -> dict[str, Any]:
        if not p.get("Title"):
            raise _Refused("Title is required")
        number = f"{self.year % 100:02d}/{1 + len(self.cases):05d}"
        external = p.get("ExternalId")
        case = StoredP360Case(
            next(self._recnos),
            number,
            p["Title"],
            (external["Id"], external["Type"]) if isinstance(external, dict) else None,
        )
        self.cases.append(case)
        return {"Recno": case.recno, "CaseNumber": number}

    def _GetDocuments(self, p: dict[str, Any]) -> dict[str, Any]:
        found = list(self.documents)
        for wanted in p.get("AdditionalFields") or []:
            if wanted["Name"] not in self.custom_fields:
                raise _Refused(f"Unknown field: {wanted['Name']}")
            found = [d for d in found if d.custom.get(wanted["Name"]) == wanted["Value"]]
        if "DocumentNumber" in p:
            found = [d for d in found if d.document_number == p["DocumentNumber"]]
        return {"Documents": [_document(d, p) for d in found], "TotalCount": len(found)}

    def _CreateDocument(self, p: dict[str, Any]) -> dict[str, Any]:
        for key in ("Title", "Category", "Archive", "CaseNumber"):
            if not isinstance(p.get(key), str) or not p[key]:
                raise _Refused(f"{key} is required")
        case = next((c for c in self.cases if c.case_number == p["CaseNumber"]), None)
        if case is None:
            raise _Refused(f"Case {p['CaseNumber']} not found")
        custom = {}
        for entry in p.get("AdditionalFields") or []:
            if entry["Name"] not in self.custom_fields:
                raise _Refused(f"Unknown field: {entry['Name']}")
            custom[entry["Name"]] = str(entry["Value"])
        files = []
        for n, item in enumerate(p.get("Files") or []):
            fmt = str(item.get("Format") or "").lower()
            if fmt in self.refused_formats:
                raise _Refused(f"File format {fmt} is not allowed")
            try:
                data = base64.b64decode(item["Base64Data"], validate=True)
            except (binascii.Error, KeyError, TypeError):
                raise _Refused(f"Files[{n}].Base64Data is not base64") from None
            files.append((item.get("Title") or "", fmt, data, item.get("RelationType") or ""))
        if not files:
            raise _Refused("A document needs at least one file")
        recno = next(self._recnos)
        number = f"{case.case_number}-{1 + sum(1 for d in self.documents if d.case is case)}"
        self.documents.append(
            StoredP360Document(
                recno,
                number,
                case,
                p["Title"],
                str(p.get("Status") or ""),
                p["Category"],
                custom,
                list(p.get("UnregisteredContacts") or []),
                files,
            )
        )
        return {"Recno": recno, "DocumentNumber": number}


def _operation_of(path: str, headers: dict[str, str], body: bytes) -> str:
    parts = urlsplit(path).path.removeprefix(BASE).strip("/").split("/")
    return ".".join(parts[-2:]) if len(parts) >= 2 else ""


def _failed(message: str) -> dict[str, Any]:
    return {"Successful": False, "ErrorMessage": message, "ErrorDetails": None}


def _case(case: StoredP360Case) -> dict[str, Any]:
    external = {"Id": case.external[0], "Type": case.external[1]} if case.external else None
    return {
        "Recno": case.recno,
        "CaseNumber": case.case_number,
        "Title": case.title,
        "ExternalId": external,
    }


def _document(doc: StoredP360Document, p: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "Recno": doc.recno,
        "DocumentNumber": doc.document_number,
        "CaseNumber": doc.case.case_number,
        "Title": doc.title,
        "StatusCode": doc.status,
    }
    if p.get("IncludeCustomFields"):
        out["CustomFields"] = [{"Name": k, "Value": v} for k, v in doc.custom.items()]
    if p.get("IncludeFiles"):
        out["Files"] = [
            {"Title": t, "Format": f, "RelationTypeCode": r} for t, f, _, r in doc.files
        ]
    return out
