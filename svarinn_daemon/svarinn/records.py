"""The records both SvarInn API versions are read into: one model for the pipeline.

v1 (MottakService) and V2 name and type their fields differently (``svarinn/v1.py``,
``svarinn/v2.py``); what the daemon keeps of a letter is the same :class:`Forsendelse`,
with ``api`` saying which version listed it and ``raw`` the item exactly as received.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any

from svarinn_daemon.errors import ProtocolError

__all__ = [
    "Adressat",
    "Avsender",
    "Filmetadata",
    "Forsendelse",
    "Lenke",
    "Listing",
    "Metadata",
    "Mottaker",
    "RejectedItem",
    "compact_json",
]


@dataclass(frozen=True)
class Adressat:
    """A party on a letter; an organisation has ``orgnr``, a person ``fnr``."""

    navn: str | None = None
    adresselinjer: tuple[str, ...] = ()
    postnr: str | None = None
    poststed: str | None = None
    land: str | None = None
    orgnr: str | None = None
    fnr: str | None = field(default=None, repr=False)  # a national id number: keep it out of logs

    @property
    def is_person(self) -> bool:
        return self.orgnr is None and self.fnr is not None


@dataclass(frozen=True)
class Avsender(Adressat):
    """The sender (``avsender``)."""


@dataclass(frozen=True)
class Mottaker(Adressat):
    """The receiver (``mottaker``) or the reply address (``svarSendesTil``)."""


@dataclass(frozen=True)
class Metadata:
    """``metadataFraAvleverendeSystem`` or ``metadataForImport``; ``0`` numbers are None.

    ``metadataForImport`` has only some of these fields; the others stay None.
    """

    sakssekvensnummer: int | None = None
    saksaar: int | None = None
    journalaar: int | None = None
    journalsekvensnummer: int | None = None
    journalpostnummer: int | None = None
    journalposttype: str | None = None
    journalstatus: str | None = None
    journaldato: datetime | None = None
    dokumentets_dato: datetime | None = None
    tittel: str | None = None
    saksbehandler: str | None = None
    ekstra_metadata: tuple[tuple[str, str | None], ...] = ()
    # v2's metadataForImport names the case and record in the receiving system:
    # mappeId.mappeId and journalpostId.registreringsId, each with its systemId.
    mappe_id: str | None = None
    mappe_system_id: str | None = None
    journalpost_id: str | None = None
    journalpost_system_id: str | None = None


@dataclass(frozen=True)
class Filmetadata:
    """One file of a letter (for a zip: one file inside it). ``size`` None means unknown."""

    filnavn: str | None
    mimetype: str | None = None
    sha256hash: str | None = None  # lower-case hex; None for older letters
    size: int | None = None
    dokument_type: str | None = None
    ekstra_metadata: tuple[tuple[str, str | None], ...] = ()  # v2's filer[].ekstraMetadata


@dataclass(frozen=True)
class Lenke:
    """A link attached to a v2 letter (``lenker``)."""

    lenke: str
    tekst: str | None = None
    ledetekst: str | None = None


@dataclass(frozen=True)
class Forsendelse:
    """One letter from either API version. ``raw`` is the JSON object as received (kept as
    compact JSON text, ``raw_text``), ``api`` the version that delivered it ("v1" or "v2");
    the fields mean the same for both."""

    id: str
    download_url: str
    tittel: str | None = None
    date: datetime | None = None
    status: str | None = None
    niva: str | None = None
    avsender: Avsender | None = None
    mottaker: Mottaker | None = None
    svar_sendes_til: Mottaker | None = None
    svar_pa_forsendelse: str | None = None
    forsendelse_type: str | None = None
    ekstern_ref: str | None = None
    metadata_fra_avleverende_system: Metadata | None = None
    metadata_for_import: Metadata | None = None
    filmetadata: tuple[Filmetadata, ...] = ()
    kryptert: bool | None = None  # false: SvarUt sends the file unencrypted
    api: str = "v1"
    lenker: tuple[Lenke, ...] = ()  # v2 only
    avgivende_system: str | None = None  # v2 only
    taushetsbelagt_post: bool | None = None  # v2 only
    raw_text: str = field(default="{}", repr=False, compare=False)

    @property
    def raw(self) -> Mapping[str, Any]:
        """The item as received, read again from ``raw_text`` at each use (once a letter):
        held as parsed objects, a listing of thousands of letters took five times the
        memory, all of it at once during the poll."""
        parsed: dict[str, Any] = json.loads(self.raw_text)
        return MappingProxyType(parsed)

    def raw_json(self) -> str:
        """``raw`` serialised, for the ledger."""
        return self.raw_text


def compact_json(item: Mapping[str, Any]) -> str:
    """A listed item as ``Forsendelse.raw_text`` keeps it (and the ledger stores it)."""
    return json.dumps(item, ensure_ascii=False, separators=(",", ":"))


@dataclass(frozen=True)
class RejectedItem:
    """A listed item the daemon cannot read; ``forsendelse_id`` when the item had one."""

    index: int
    forsendelse_id: str | None
    error: ProtocolError


@dataclass(frozen=True)
class Listing:
    letters: tuple[Forsendelse, ...]
    rejected: tuple[RejectedItem, ...] = ()
