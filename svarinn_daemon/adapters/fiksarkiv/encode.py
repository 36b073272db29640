"""The registration spelled as Fiks Arkiv V1's ``arkivmelding.xml``, and the archive's
kvittering and feilmeldinger read back. Pure.

Structure from ks-no/fiks-arkiv-specification ``Schema/V1``
(``no.ks.fiks.arkiv.v1.arkivering.arkivmelding.opprett.xsd``): ``arkivmelding`` holds
``system``, ``antallFiler`` and one ``registrering`` of ``xsi:type="journalpost"``, placed in
the case the letter names (``referanseForelderMappe/saksnummer``) or, failing that, in the
``arkivdel`` (the schema allows one of the two; the archive files it there). Every element is
qualified: the message's own in its namespace, the children of the metadata catalogue's types
(``kode``, ``fagsystem``, ``noekkel``, ``saksaar`` ...) in the catalogue's.

The forsendelse id is ``referanseEksternNoekkel`` (fagsystem, noekkel), which lets the
archive recognise a letter sent twice. A person is a party by name and address only: the
fødselsnummer goes nowhere. Documents: the main one first (``H``), then attachments (``V``),
each with ``dokumentnummer`` and one ``dokumentobjekt`` naming its file in the container
(``referanseDokumentfil``), with SHA-256 and size.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from lxml import etree

from svarinn_daemon.adapters.registration import Party, Registration
from svarinn_daemon.errors import ArchiveError

__all__ = [
    "KVITTERING_NS",
    "N5",
    "NS",
    "Feilmelding",
    "Kvittering",
    "arkivmelding",
    "parse_feilmelding",
    "parse_kvittering",
]

BASE = "https://ks-no.github.io/standarder/fiks-protokoll/fiks-arkiv"
NS = f"{BASE}/arkivmelding/opprett/v1"
N5 = f"{BASE}/metadatakatalog/v1"
KVITTERING_NS = f"{BASE}/arkivmelding/opprett/kvittering/v1"
FEIL_NS = f"{BASE}/feil/feilmelding/v1"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
SENDER, RECEIVER = "EA", "EM"  # korrespondanseparttype: avsender, mottaker (Noark 5)
ARKIVFORMAT = "A"  # variantformat: arkivformat
MAX_REPLY = 4 * 1024 * 1024
MAX_INT = 2**31 - 1  # the schema's xs:int (filstoerrelse)
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _text(value: str) -> str:
    """Text XML 1.0 can carry (a sender's words may hold anything)."""
    return _NOT_XML.sub("", value)


def _el(parent: Any, name: str, text: str | None = None, ns: str = NS) -> Any:
    node = etree.SubElement(parent, f"{{{ns}}}{name}")
    if text is not None:
        node.text = _text(text)
    return node


def _code(parent: Any, name: str, value: str) -> Any:
    node = _el(parent, name)
    _el(node, "kode", value, N5)
    return node


def _party(parent: Any, party: Party, kind: str) -> None:
    node = _el(parent, "korrespondansepart")
    _code(node, "korrespondanseparttype", kind)
    _el(node, "korrespondansepartNavn", party.name or "(uten navn)")
    if party.orgnr:
        _el(node, "organisasjonid", party.orgnr)
    for line in party.address_lines:
        if line.strip():
            _el(node, "postadresse", line)
    if party.postal_code:
        _el(node, "postnummer", party.postal_code)
    if party.postal_place:
        _el(node, "poststed", party.postal_place)
    if party.country and len(party.country) == 2 and party.country.isalpha():
        _code(node, "landkode", party.country.upper())
    if party.is_person:
        _el(node, "erPersonnavn", "true")


def arkivmelding(
    reg: Registration,
    *,
    system: str,
    fagsystem: str,
    arkivdel: str | None,
    files: Sequence[str],
    regel: str | None = None,
) -> bytes:
    """``arkivmelding.xml`` for one letter; ``files[i]`` names document ``i`` in the
    container. A letter that names no case needs an ``arkivdel`` (the operator's setting)."""
    if len(files) != len(reg.documents):
        raise ValueError("one file name per document")
    if not reg.case.named_case and not arkivdel:
        raise ArchiveError(
            "fiks-arkiv: the letter names no case and no arkivdel is configured: Fiks Arkiv "
            "needs one of them to place the journalpost (set arkivdel)",
            temporary=True,
            loud=True,
        )
    root = etree.Element(f"{{{NS}}}arkivmelding", nsmap={None: NS, "n5mdk": N5, "xsi": XSI})
    _el(root, "system", system)
    if regel:
        _el(root, "regel", regel)
    _el(root, "antallFiler", str(len(files)))
    post = _el(root, "registrering")
    post.set(f"{{{XSI}}}type", "journalpost")
    if reg.case.named_case:
        parent = _el(post, "referanseForelderMappe")
        number = _el(parent, "saksnummer", ns=N5)
        _el(number, "saksaar", str(reg.case.saksaar), N5)
        _el(number, "sakssekvensnummer", str(reg.case.sakssekvensnummer), N5)
    else:
        assert arkivdel is not None
        _code(post, "arkivdel", arkivdel)
    for n, (doc, name) in enumerate(zip(reg.documents, files, strict=True), start=1):
        description = _el(post, "dokumentbeskrivelse")
        _el(description, "tittel", doc.title or name)
        _code(description, "tilknyttetRegistreringSom", doc.role)
        _el(description, "dokumentnummer", str(n))
        item = _el(description, "dokumentobjekt")
        _el(item, "versjonsnummer", "1")
        _code(item, "variantformat", ARKIVFORMAT)
        _el(item, "mimeType", doc.mimetype)
        _el(item, "filnavn", doc.title or name)
        _el(item, "referanseDokumentfil", name)
        _el(item, "sjekksum", doc.sha256)
        _el(item, "sjekksumAlgoritme", "SHA-256")
        if doc.size <= MAX_INT:
            _el(item, "filstoerrelse", str(doc.size))
    _el(post, "tittel", reg.title)
    for party, kind in ((reg.sender, SENDER), (reg.receiver, RECEIVER)):
        if party is not None:
            _party(post, party, kind)
    key = _el(post, "referanseEksternNoekkel")
    _el(key, "fagsystem", fagsystem, N5)
    _el(key, "noekkel", reg.external_key, N5)
    _code(post, "journalposttype", reg.journalposttype)
    _code(post, "journalstatus", reg.journalstatus)
    if reg.document_date is not None:
        _el(post, "dokumentetsDato", reg.document_date.isoformat())
    _el(post, "antallVedlegg", str(max(len(reg.documents) - 1, 0)))
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


# -- replies -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Kvittering:
    """What the archive says it registered."""

    system_id: str
    journalaar: str | None
    journalsekvensnummer: str | None
    journalpostnummer: str | None
    existing: bool  # "Eksisterende": the archive had it (a second send)

    @property
    def reference(self) -> str:
        if self.journalaar and self.journalsekvensnummer:
            return f"{self.journalaar}/{self.journalsekvensnummer} (systemID {self.system_id})"
        return f"systemID {self.system_id}"


@dataclass(frozen=True)
class Feilmelding:
    feil_id: str | None
    melding: str | None


def _parse(xml: bytes, what: str) -> Any:
    if len(xml) > MAX_REPLY:
        raise ArchiveError(f"fiks-arkiv: the {what} is too large", temporary=True, loud=True)
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, huge_tree=False, load_dtd=False
    )
    try:
        root = etree.fromstring(xml, parser)
    except etree.XMLSyntaxError:
        raise ArchiveError(
            f"fiks-arkiv: the {what} is not XML", temporary=True, loud=True
        ) from None
    if root.getroottree().docinfo.doctype:
        raise ArchiveError(f"fiks-arkiv: the {what} has a DTD", temporary=True, loud=True)
    return root


def _find(node: Any, *path: tuple[str, str]) -> str | None:
    for ns, name in path:
        node = node.find(f"{{{ns}}}{name}")
        if node is None:
            return None
    text = node.text
    return text.strip()[:200] if isinstance(text, str) and text.strip() else None


def parse_kvittering(xml: bytes) -> Kvittering:
    """``arkivmelding-kvittering.xml``: the registered journalpost's ids. A kvittering that
    says the registrering failed (``registreringFeilet``), or that cannot be read, is a loud
    temporary ArchiveError: only a readable registreringKvittering says the archive has it."""
    root = _parse(xml, "kvittering")
    if root.tag != f"{{{KVITTERING_NS}}}arkivmeldingKvittering":
        raise ArchiveError("fiks-arkiv: the kvittering's root is wrong", temporary=True, loud=True)
    post = root.find(f"{{{KVITTERING_NS}}}registreringKvittering")
    failed = root.find(f"{{{KVITTERING_NS}}}registreringFeilet")
    if post is None and failed is not None:
        said = _find(failed, (FEIL_NS, "feilmelding")) or "(no text)"
        feil_id = _find(failed, (FEIL_NS, "feilId"))
        raise ArchiveError(  # the archive did not register it: never acknowledged
            f"fiks-arkiv: the archive's kvittering says the registrering failed: {said}"
            + (f" (feilId {feil_id})" if feil_id else ""),
            temporary=True,
            loud=True,
        )
    if post is None:
        raise ArchiveError(
            "fiks-arkiv: the kvittering names no registrering", temporary=True, loud=True
        )
    system_id = _find(post, (KVITTERING_NS, "systemID"))
    if system_id is None:
        raise ArchiveError("fiks-arkiv: the kvittering has no systemID", temporary=True, loud=True)
    return Kvittering(
        system_id=system_id,
        journalaar=_find(post, (KVITTERING_NS, "journalaar")),
        journalsekvensnummer=_find(post, (KVITTERING_NS, "journalsekvensnummer")),
        journalpostnummer=_find(post, (KVITTERING_NS, "journalpostnummer")),
        existing=_find(post, (KVITTERING_NS, "opprettetEllerEksisterende")) == "Eksisterende",
    )


def parse_feilmelding(xml: bytes | None) -> Feilmelding:
    """A feilmelding's feilId and text; what cannot be read is left out, never raised."""
    if not xml:
        return Feilmelding(None, None)
    try:
        root = _parse(xml, "feilmelding")
    except ArchiveError:
        return Feilmelding(None, None)
    return Feilmelding(_find(root, (FEIL_NS, "feilId")), _find(root, (FEIL_NS, "feilmelding")))
