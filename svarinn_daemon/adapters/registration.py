"""One registration for every archive system: what an incoming letter becomes in a sak/arkiv
system, before any protocol spells it. Pure, no I/O.

GI-Arkiv, Public 360 SIF, Noark 5 tjenestegrensesnitt and Fiks Arkiv each register the same
thing in their own words: an incoming journalpost (type I) with a status a person checks, a
title, a document date, the sender as correspondence party, the documents (the main one
first, then attachments, each with name, MIME type, size and sha256), the forsendelse id as
the external key that finds it again, and a case to put it in. :func:`registration` builds
that from the normalised forsendelse (``svarinn/normalised.py``, v1 and V2 alike) and the
documents the daemon verified; each adapter only encodes it.

The sender's and the receiver's words are hostile, and a person's national identity number
(fødselsnummer) must never land in a title or a free-text field: titles are cleaned of
control characters, clipped to the target's limit, and scrubbed of anything shaped like a
fødselsnummer (11 digits passing its two check digits) and of the sender's own number; the
number itself is kept only in :attr:`Party.person_id`, for a system's structured field.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from svarinn_daemon.errors import ArchiveError

__all__ = [
    "INCOMING",
    "CasePlacement",
    "Party",
    "RegisteredDocument",
    "Registration",
    "registration",
    "scrub_person_ids",
]

INCOMING = "I"  # journalposttype: inngående dokument
TEMPORARY = "M"  # journalstatus: midlertidig registrert, a person checks it
MAIN, ATTACHMENT = "H", "V"  # tilknyttetRegistreringSom: hoveddokument, vedlegg
HIDDEN = "***********"
_FNR = re.compile(r"(?<!\d)(\d{6})[ .-]?(\d{5})(?!\d)")
_W1 = (3, 7, 6, 1, 8, 9, 4, 5, 2)
_W2 = (5, 4, 3, 2, 7, 6, 5, 4, 3, 2)


@dataclass(frozen=True)
class Party:
    """A correspondence party: an organisation (``orgnr``) or a person (``person_id`` only
    for a structured field, never shown in free text)."""

    name: str | None
    address_lines: tuple[str, ...] = ()
    postal_code: str | None = None
    postal_place: str | None = None
    country: str | None = None
    orgnr: str | None = None
    person_id: str | None = field(default=None, repr=False)

    @property
    def is_person(self) -> bool:
        return self.orgnr is None and self.person_id is not None


@dataclass(frozen=True)
class RegisteredDocument:
    """One file of the letter as the archive gets it; ``role`` is H (the main document) or
    V (an attachment)."""

    file: str  # the name it is stored under in the staged letter
    title: str
    mimetype: str
    size: int
    sha256: str
    role: str


@dataclass(frozen=True)
class CasePlacement:
    """Where the journalpost goes: the case the sender named for import (saksår and
    sekvensnummer), else the collection case (samlesak) titled ``collection_title``."""

    saksaar: int | None = None
    sakssekvensnummer: int | None = None
    collection_title: str | None = None

    @property
    def named_case(self) -> bool:
        return self.saksaar is not None and self.sakssekvensnummer is not None


@dataclass(frozen=True)
class Registration:
    external_key: str  # the forsendelse id: finds the journalpost again
    title: str
    journalposttype: str
    journalstatus: str
    document_date: date | None
    sender: Party | None
    receiver: Party | None
    documents: tuple[RegisteredDocument, ...]
    case: CasePlacement


def registration(
    forsendelse: Mapping[str, Any],
    documents: Sequence[Mapping[str, Any]],
    *,
    journalstatus: str = TEMPORARY,
    title_limit: int = 255,
    samlesak: str | None = None,
    today: date,
) -> Registration:
    """The registration of one letter. ``forsendelse`` is the normalised JSON an adapter's
    ``begin`` gets; ``documents`` are ``forsendelse.json``'s ``documents`` (stored name,
    name, mimetype, size, sha256). ``samlesak`` is a title template with ``{year}`` for
    the collection case of letters that name no case. A letter that cannot be registered
    anywhere (no id, no document) is a permanent ArchiveError."""
    key = forsendelse.get("id")
    if not isinstance(key, str) or not key:
        raise ArchiveError("the letter has no forsendelse id to register it by", temporary=False)
    if not documents:
        raise ArchiveError(
            f"{key}: a letter without documents cannot be registered", temporary=False
        )
    sender = _party(forsendelse.get("avsender"))
    receiver = _party(forsendelse.get("mottaker"))
    hidden = [p.person_id for p in (sender, receiver) if p is not None and p.person_id]
    imported = _object(forsendelse.get("metadataForImport"))
    title = _title(forsendelse.get("tittel"), title_limit, hidden) or f"Forsendelse {key}"
    when = _date(imported.get("dokumentetsDato")) or _date(forsendelse.get("dato"))
    year = (when or today).year
    case = CasePlacement(
        saksaar=_number(imported.get("saksaar")),
        sakssekvensnummer=_number(imported.get("sakssekvensnummer")),
        collection_title=_title(samlesak.format(year=year), title_limit, hidden)
        if samlesak
        else None,
    )
    return Registration(
        external_key=key,
        title=title,
        journalposttype=INCOMING,
        journalstatus=journalstatus,
        document_date=when,
        sender=sender,
        receiver=receiver,
        documents=tuple(_documents(documents, title_limit, hidden)),
        case=case,
    )


def scrub_person_ids(text: str, also: Sequence[str] = ()) -> str:
    """``text`` with every fødselsnummer-shaped number (and each of ``also``) hidden."""
    for number in also:
        if number:
            text = text.replace(number, HIDDEN)

    def hide(match: re.Match[str]) -> str:
        digits = match.group(1) + match.group(2)
        return HIDDEN if _valid_fnr(digits) else match.group(0)

    return _FNR.sub(hide, text)


def _valid_fnr(digits: str) -> bool:
    """The two mod-11 check digits of a fødselsnummer (or D-number) hold."""
    numbers = [int(d) for d in digits]
    k1 = 11 - sum(w * n for w, n in zip(_W1, numbers, strict=False)) % 11
    k2 = 11 - sum(w * n for w, n in zip(_W2, numbers, strict=False)) % 11
    k1, k2 = (0 if k1 == 11 else k1), (0 if k2 == 11 else k2)
    return k1 == numbers[9] and k2 == numbers[10]


def _title(value: Any, limit: int, hidden: Sequence[str]) -> str:
    """A sender's words fit for a title: one line, no control characters, no person's
    number, at most ``limit`` characters."""
    if not isinstance(value, str):
        return ""
    text = "".join(" " if unicodedata.category(c)[0] in "CZ" else c for c in value)
    text = " ".join(scrub_person_ids(text, hidden).split())
    return text if len(text) <= limit else text[: max(limit - 1, 0)].rstrip() + "…"


def _documents(
    documents: Sequence[Mapping[str, Any]], limit: int, hidden: Sequence[str]
) -> list[RegisteredDocument]:
    out = []
    for n, doc in enumerate(documents):
        stored, size, sha = doc.get("file"), doc.get("size"), doc.get("sha256")
        if not isinstance(stored, str) or not isinstance(size, int) or not isinstance(sha, str):
            raise ArchiveError(  # the daemon wrote it: ours to fix, never the sender's
                f"document {n} of the letter lacks its file, size or sha256", temporary=True
            )
        name = doc.get("name") if isinstance(doc.get("name"), str) else stored
        mimetype = doc.get("mimetype")
        out.append(
            RegisteredDocument(
                file=stored,
                title=_title(name, limit, hidden) or stored,
                mimetype=mimetype if isinstance(mimetype, str) else "application/octet-stream",
                size=size,
                sha256=sha,
                role=MAIN if n == 0 else ATTACHMENT,
            )
        )
    return out


def _party(value: Any) -> Party | None:
    if not isinstance(value, dict):
        return None
    person = _text(value.get("fodselsnummer"))
    hidden = [person] if person else []
    lines = value.get("adresselinjer")
    return Party(
        name=_title(value.get("navn"), 255, hidden) or None,
        address_lines=tuple(
            _title(x, 255, hidden) for x in (lines if isinstance(lines, list) else []) if x
        ),
        postal_code=_text(value.get("postnummer")),
        postal_place=_title(value.get("poststed"), 100, hidden) or None,
        country=_text(value.get("land")),
        orgnr=_text(value.get("organisasjonsnummer")),
        person_id=person,
    )


def _object(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def _number(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _date(value: Any) -> date | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value).date()
    except ValueError:
        return None
