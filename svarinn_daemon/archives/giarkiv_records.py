"""What the local GI-Arkiv keeps, and how it matches keys and spells its answers: plain data
and pure functions, apart from the server in ``giarkiv.py``."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Refusal", "StoredCase", "StoredDocument", "StoredJournalpost"]


class Refusal(Exception):
    """Answered as a SOAP fault carrying the GI fault ``kind`` (``ValidationFault``...)."""

    def __init__(self, kind: str, code: str, text: str):
        super().__init__(text)
        self.kind, self.code, self.text = kind, code, text


@dataclass
class StoredCase:
    system_id: str
    saksaar: int
    sakssekvensnummer: int
    tittel: str
    arkivdel: str | None
    external: tuple[str, str] | None


@dataclass
class StoredDocument:
    system_id: str
    number: int
    role: str
    tittel: str
    filnavn: str
    mime_type: str
    content: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


@dataclass
class StoredJournalpost:
    system_id: str
    case: StoredCase
    number: int
    tittel: str
    journalposttype: str
    journalstatus: str
    attachments: str | None
    external: tuple[str, str] | None
    parties: list[dict[str, Any]]
    documents: list[StoredDocument] = field(default_factory=list)


def _get(value: Any, name: str) -> Any:
    if value is None:
        return None
    try:
        return value[name]
    except (KeyError, TypeError, AttributeError, IndexError):
        return getattr(value, name, None)


def _external(value: Any) -> tuple[str, str] | None:
    if value is None:
        return None
    return (value.fagsystem, value.noekkel or "")


def _case_matches(case: StoredCase, key: Any) -> bool:
    if _get(key, "eksternnoekkel") is not None:
        return case.external == _external(key.eksternnoekkel)
    if _get(key, "saksaar") is not None:
        return (case.saksaar, case.sakssekvensnummer) == (
            int(key.saksaar),
            int(key.sakssekvensnummer),
        )
    if _get(key, "systemID") is not None:
        return case.system_id == str(key.systemID.id)
    raise Refusal("ValidationFault", "UKJENT_NOEKKEL", "a Saksnoekkel of no known kind")


def _post_matches(post: StoredJournalpost, key: Any) -> bool:
    if _get(key, "eksternnoekkel") is not None:
        return post.external == _external(key.eksternnoekkel)
    if _get(key, "systemID") is not None:
        return post.system_id == str(key.systemID.id)
    raise Refusal("ValidationFault", "UKJENT_NOEKKEL", "a Journpostnoekkel of no known kind")


def _party(value: Any) -> dict[str, Any]:
    kontakt = value.Kontakt
    return {
        "type": _get(value.korrespondanseparttype, "kodeverdi"),
        "navn": kontakt.navn,
        "kind": type(kontakt).__name__,
        "orgnr": _get(kontakt, "organisasjonsnummer"),
    }


def _case(case: StoredCase) -> dict[str, Any]:
    out: dict[str, Any] = {
        "systemID": case.system_id,
        "saksnr": {"saksaar": case.saksaar, "sakssekvensnummer": case.sakssekvensnummer},
        "tittel": case.tittel,
    }
    if case.arkivdel:
        out["referanseArkivdel"] = {"kodeverdi": case.arkivdel}
    if case.external:
        out["referanseEksternNoekkel"] = {
            "fagsystem": case.external[0],
            "noekkel": case.external[1],
        }
    return out


def _journalpost(post: StoredJournalpost) -> dict[str, Any]:
    out: dict[str, Any] = {
        "systemID": post.system_id,
        "journalpostnummer": str(post.number),
        "journalposttype": {"kodeverdi": post.journalposttype},
        "journalstatus": {"kodeverdi": post.journalstatus},
        "tittel": post.tittel,
        "antallVedlegg": post.attachments,
        "saksnr": {"saksaar": post.case.saksaar, "sakssekvensnummer": post.case.sakssekvensnummer},
    }
    if post.external:
        out["referanseEksternNoekkel"] = {
            "fagsystem": post.external[0],
            "noekkel": post.external[1],
        }
    return out


def _document(doc: StoredDocument, post: StoredJournalpost) -> dict[str, Any]:
    return {
        "systemID": doc.system_id,
        "dokumentnummer": str(doc.number),
        "tilknyttetRegistreringSom": {"kodeverdi": doc.role},
        "tittel": doc.tittel,
        "referanseJournalpostSystemID": post.system_id,
    }
