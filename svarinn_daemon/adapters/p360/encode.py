"""A registration in Public 360 SIF's words (JSON RPC), and SIF's answers read back. Pure.

The field names are SIF's own, as FINTLabs' published request and response examples show
them (``DocumentService/CreateDocumentArgs.json``, ``CaseService/GetCasesArgs.json``...):
``CreateDocument`` takes the document, its contacts and its files in one call, so a letter
is registered whole or not at all. SIF documents have no external id: the forsendelse id
goes into a site-specific custom field (``AdditionalFields``), named by the operator.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from svarinn_daemon.adapters.registration import Party, RegisteredDocument, Registration

__all__ = [
    "COLLECTION_TYPE",
    "Settings",
    "case_lookup",
    "collection_case",
    "collection_lookup",
    "create_document",
    "document_lookup",
    "file_format",
]

SENDER, RECEIVER = "Avsender", "Mottaker"  # UnregisteredContacts' Role
MAIN, ATTACHMENT = "H", "V"  # Files' RelationType: hoveddokument, vedlegg
COLLECTION_TYPE = "svarinn-daemon"  # the ExternalId Type of the collection cases we create
MAX_FORMAT = 10


@dataclass(frozen=True)
class Settings:
    """The site's words: which archive, category and status an incoming document gets."""

    archive: str
    category: str
    external_key_field: str
    access_code: str | None = None
    paragraph: str | None = None
    responsible_enterprise_number: str | None = None
    sub_archive: str | None = None
    case_type: str | None = None


def file_format(doc: RegisteredDocument) -> str:
    """SIF's ``Format``: the file name's extension ("pdf"), else "dat"."""
    extension = posixpath.splitext(doc.file)[1].lstrip(".").lower()
    if extension.isalnum() and len(extension) <= MAX_FORMAT:
        return extension
    return "dat"


def create_document(
    reg: Registration,
    case_number: str,
    settings: Settings,
    files: list[str],
) -> dict[str, Any]:
    """``DocumentService.CreateDocument``'s parameter. ``files`` are the markers each
    file's ``Base64Data`` is streamed in place of, in the registration's order."""
    document: dict[str, Any] = {
        "CaseNumber": case_number,
        "Archive": settings.archive,
        "Category": settings.category,
        "Status": reg.journalstatus,
        "Title": reg.title,
        "AdditionalFields": [{"Name": settings.external_key_field, "Value": reg.external_key}],
        "UnregisteredContacts": [
            _contact(party, role)
            for party, role in ((reg.sender, SENDER), (reg.receiver, RECEIVER))
            if party is not None and party.name
        ],
        "Files": [_file(doc, marker) for doc, marker in zip(reg.documents, files, strict=True)],
    }
    if reg.document_date is not None:
        document["DocumentDate"] = reg.document_date.isoformat()
    for key, value in (
        ("AccessCode", settings.access_code),
        ("Paragraph", settings.paragraph),
        ("ResponsibleEnterpriseNumber", settings.responsible_enterprise_number),
        ("SubArchive", settings.sub_archive),
    ):
        if value:
            document[key] = value
    return document


def _file(doc: RegisteredDocument, marker: str) -> dict[str, Any]:
    return {
        "Title": doc.title,
        "Format": file_format(doc),
        "Base64Data": marker,
        "RelationType": doc.role,
        "VersionFormat": "A",
        "Status": "F",
    }


def _contact(party: Party, role: str) -> dict[str, Any]:
    """An unregistered contact: name and postal address; an organisation's number as its
    ``ReferenceNumber``; a person's national identity number never."""
    contact: dict[str, Any] = {"Role": role, "ContactName": party.name}
    if party.orgnr is not None:
        contact["ContactCompanyName"] = party.name
        contact["ReferenceNumber"] = party.orgnr
    if party.address_lines:
        contact["Address"] = ", ".join(party.address_lines)
    for key, value in (
        ("ZipCode", party.postal_code),
        ("ZipPlace", party.postal_place),
        ("Country", party.country),
    ):
        if value:
            contact[key] = value
    return contact


def document_lookup(settings: Settings, key: str) -> dict[str, Any]:
    """``DocumentService.GetDocuments``: the document carrying our key in its custom field."""
    return {
        "AdditionalFields": [{"Name": settings.external_key_field, "Value": key}],
        "IncludeCustomFields": True,
        "IncludeFiles": False,
        "MaxReturnedDocuments": 10,
    }


def case_lookup(case_number: str) -> dict[str, Any]:
    return {"CaseNumber": case_number, "MaxReturnedCases": 10}


def collection_lookup(title: str, *, by_title: bool) -> dict[str, Any]:
    """The collection case: by the external id we gave it, or (an operator's) by title."""
    if by_title:
        return {"Title": title, "MaxReturnedCases": 50}
    return {"ExternalId": {"Id": f"samlesak:{title}", "Type": COLLECTION_TYPE}}


def collection_case(title: str, settings: Settings) -> dict[str, Any]:
    """``CaseService.CreateCase``'s parameter for the collection case."""
    case: dict[str, Any] = {
        "Title": title,
        "ExternalId": {"Id": f"samlesak:{title}", "Type": COLLECTION_TYPE},
    }
    if settings.case_type:
        case["CaseType"] = settings.case_type
    if settings.sub_archive:
        case["SubArchive"] = settings.sub_archive
    if settings.responsible_enterprise_number:
        case["ResponsibleEnterpriseNumber"] = settings.responsible_enterprise_number
    if settings.access_code:
        case["AccessCode"] = settings.access_code
    return case


def listed(answer: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    """The objects of an answer's list (``Cases``, ``Documents``), whatever else it holds."""
    items = answer.get(key)
    return [x for x in items if isinstance(x, dict)] if isinstance(items, list) else []


def text(value: Any) -> str | None:
    if isinstance(value, str | int) and not isinstance(value, bool) and str(value).strip():
        return str(value).strip()
    return None
