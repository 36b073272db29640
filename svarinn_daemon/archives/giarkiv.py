"""A local GI-Arkiv 1.1 archive: the Oppdatering and Innsyn services on loopback.

Every request body is validated against the standard's own schema (the WSDL's types and
the eleven XSDs, shipped in ``svarinn_daemon/specs``) before anything happens: a request a
real GI-Arkiv would refuse as malformed gets a ``ValidationFault`` here too. Then the
archive does what an archive does with the operations an importer uses: cases
(``NySaksmappe``, ``FinnSaksmapper``, ``FinnSaksmapperGittNoekkel``), journalposts
(``NyJournalpost``, ``FinnJournalposterGittNoekkel``), documents with their files inline
(``NyDokument``, ``FinnDokumenterGittJournalpostnoekkel``) and the ``Arkivdel`` code list
(``HentKodeliste``). It refuses what an archive refuses: an unknown arkivdel, a case or
journalpost that does not exist, a journalpost whose first document is not its main one,
a MIME type it will not take. Answers are built by zeep on the same schema and validated
too. POST ``/oppdatering`` and ``/innsyn``.
"""

from __future__ import annotations

import itertools
import threading
from copy import deepcopy
from datetime import UTC, datetime
from typing import Any

import zeep
from lxml import etree

from svarinn_daemon.archives.giarkiv_records import (
    Refusal,
    StoredCase,
    StoredDocument,
    StoredJournalpost,
    _case,
    _case_matches,
    _document,
    _external,
    _get,
    _journalpost,
    _party,
    _post_matches,
)
from svarinn_daemon.archives.server import ArchiveServer, Injected, Reply
from svarinn_daemon.specs import GI_ARKIV, spec_directory, spec_file

__all__ = ["LocalGiArkiv", "StoredCase", "StoredDocument", "StoredJournalpost"]

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
XS = "http://www.w3.org/2001/XMLSchema"
TEKNISK = "http://rep.geointegrasjon.no/Felles/Teknisk/xml.schema/2012.01.31"
SERVICES = {
    "/oppdatering": "giArkivOppdatering20120131.wsdl",
    "/innsyn": "giArkivInnsyn20120131.wsdl",
}


class _Schemas(zeep.Transport):
    def load(self, url: str) -> bytes:
        return spec_file(GI_ARKIV, url).read_bytes()


def _compiled(wsdl_name: str) -> etree.XMLSchema:
    """The WSDL's own schema (the operations' wrapper elements) with its imports pointed at
    the shipped XSDs, compiled by lxml: the strict validator."""
    wsdl = etree.parse(str(spec_file(GI_ARKIV, wsdl_name)))
    schema = deepcopy(wsdl.find(f".//{{{XS}}}schema"))
    for imported in schema.iter(f"{{{XS}}}import"):
        imported.set("schemaLocation", spec_file(GI_ARKIV, imported.get("schemaLocation")).as_uri())
    return etree.XMLSchema(schema)


class LocalGiArkiv:
    """The archive; ``with LocalGiArkiv(...) as archive:`` serves ``archive.url`` and
    ``archive.innsyn_url``. State is kept in memory and readable by the tests."""

    def __init__(
        self,
        *,
        username: str | None = "svarinn",
        password: str | None = "arkiv-passord",  # noqa: S107 - a local test archive's
        arkivdeler: tuple[str, ...] = ("SAK",),
        refused_mime_types: tuple[str, ...] = ("application/x-msdownload",),
        year: int | None = None,
    ):
        settings = zeep.Settings(strict=True, forbid_dtd=True, forbid_entities=True)
        directory = spec_directory(GI_ARKIV)
        self._clients = {
            path: zeep.Client(str(directory / name), transport=_Schemas(), settings=settings)
            for path, name in SERVICES.items()
        }
        self._schemas = {path: _compiled(name) for path, name in SERVICES.items()}
        self.arkivdeler = arkivdeler
        self.refused_mime_types = frozenset(refused_mime_types)
        self.year = year or datetime.now(UTC).year
        self.cases: list[StoredCase] = []
        self.journalposts: list[StoredJournalpost] = []
        self._ids = itertools.count(1001)
        self._lock = threading.Lock()
        self.server = ArchiveServer(
            self._handle, username=username, password=password, operation_of=_operation_of
        )
        self.username, self.password = username, password

    # -- serving -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return self.server.base_url + "/oppdatering"

    @property
    def innsyn_url(self) -> str:
        return self.server.base_url + "/innsyn"

    def inject(self, fault: Injected) -> None:
        self.server.inject(fault)

    def __enter__(self) -> LocalGiArkiv:
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop()

    def _handle(
        self, method: str, path: str, headers: dict[str, str], body: bytes, fault: Injected | None
    ) -> tuple[str, Reply]:
        if path not in SERVICES:
            return "", Reply(404, b"no such service", "text/plain")
        try:
            operation, request = self._request(path, body)
            if fault is not None and fault.fault is not None:
                raise Refusal(fault.fault, "INJISERT", f"injected {fault.fault}")
            with self._lock:
                answer = getattr(self, f"_op_{operation}")(request)
            return operation, self._answer(path, operation, answer)
        except Refusal as refusal:
            return "", self._fault(refusal)

    def _request(self, path: str, body: bytes) -> tuple[str, Any]:
        parser = etree.XMLParser(
            resolve_entities=False, no_network=True, huge_tree=True, load_dtd=False
        )
        try:
            envelope = etree.fromstring(body, parser)
        except etree.XMLSyntaxError as exc:
            raise Refusal("ValidationFault", "UGYLDIG_XML", f"not XML: {exc}") from None
        content = (
            envelope.find(f"{{{SOAP_ENV}}}Body")
            if envelope.tag == f"{{{SOAP_ENV}}}Envelope"
            else None
        )
        if content is None or len(content) != 1:
            raise Refusal(
                "ValidationFault", "UGYLDIG_SOAP", "not a SOAP 1.1 envelope with one body element"
            )
        element = content[0]
        document = etree.ElementTree(deepcopy(element))
        schema = self._schemas[path]
        if not schema.validate(document):
            errors = "; ".join(str(e.message) for e in list(schema.error_log)[:3])
            raise Refusal(
                "ValidationFault", "SKJEMAFEIL", f"the request breaks the schema: {errors}"
            )
        operation = etree.QName(element).localname
        if not hasattr(self, f"_op_{operation}"):
            raise Refusal("ImplementationFault", "IKKE_STOTTET", f"{operation} is not offered here")
        client = self._clients[path]
        parsed = client.get_element(element.tag).parse(element, client.wsdl.types)
        return operation, parsed

    def _answer(self, path: str, operation: str, value: Any) -> Reply:
        client = self._clients[path]
        wrapper = client.get_element(f"{{{_tns(path)}}}{operation}Response")
        holder = etree.Element("holder")
        wrapper.render(holder, wrapper(**({"return": value} if value is not None else {})))
        answer = holder[0]
        if not self._schemas[path].validate(etree.ElementTree(deepcopy(answer))):
            raise AssertionError(
                f"the local GI-Arkiv built an invalid answer: {self._schemas[path].error_log}"
            )
        return Reply(200, _envelope(answer), 'text/xml; charset="utf-8"')

    @staticmethod
    def _fault(refusal: Refusal) -> Reply:
        fault = etree.Element(f"{{{SOAP_ENV}}}Fault")
        etree.SubElement(fault, "faultcode").text = "soap-env:Server"
        etree.SubElement(fault, "faultstring").text = refusal.text
        detail = etree.SubElement(fault, "detail")
        gi = etree.SubElement(detail, f"{{{TEKNISK}}}{refusal.kind}")
        etree.SubElement(gi, f"{{{TEKNISK}}}feilKode").text = refusal.code
        etree.SubElement(gi, f"{{{TEKNISK}}}feilBeskrivelse").text = refusal.text
        return Reply(500, _envelope(fault), 'text/xml; charset="utf-8"')

    # -- what the archive does -----------------------------------------------------------

    def _next_id(self) -> str:
        return str(next(self._ids))

    def _arkivdel(self, value: Any) -> str | None:
        code = _get(value, "kodeverdi")
        if code is not None and code not in self.arkivdeler:
            raise Refusal("ValidationFault", "UKJENT_ARKIVDEL", f"no arkivdel {code!r}")
        return None if code is None else str(code)

    def _op_HentKodeliste(self, request: Any) -> Any:
        if request.kodelistenavn != "Arkivdel":
            raise Refusal(
                "FinderFault", "UKJENT_KODELISTE", f"no code list {request.kodelistenavn!r}"
            )
        return {"liste": [{"kodeverdi": a} for a in self.arkivdeler]}

    def _op_NySaksmappe(self, request: Any) -> Any:
        mappe = request.mappe
        if mappe is None:
            raise Refusal("ValidationFault", "MANGLER_MAPPE", "no mappe")
        arkivdel = self._arkivdel(mappe.referanseArkivdel)
        number = 1 + sum(1 for c in self.cases if c.saksaar == self.year)
        case = StoredCase(
            self._next_id(),
            self.year,
            number,
            mappe.tittel,
            arkivdel,
            _external(mappe.referanseEksternNoekkel),
        )
        self.cases.append(case)
        return _case(case)

    def _op_FinnSaksmapperGittNoekkel(self, request: Any) -> Any:
        key = request.nokkel
        found = [c for c in self.cases if _case_matches(c, key)]
        return {"liste": [_case(c) for c in found]}

    def _op_FinnSaksmapper(self, request: Any) -> Any:
        found = list(self.cases)
        for criterion in _get(request.sok, "liste") or []:
            field_ = _get(criterion.Kriterie, "feltnavn")
            value = _get(criterion.Kriterie, "feltverdi")
            if field_ != "tittel" or criterion.operator != "EQ":
                raise Refusal(
                    "ValidationFault",
                    "UKJENT_SOEK",
                    f"cannot search {field_!r} {criterion.operator}",
                )
            found = [c for c in found if c.tittel == value]
        return {"liste": [_case(c) for c in found]}

    def _op_NyJournalpost(self, request: Any) -> Any:
        post = request.journalpost
        if post is None:
            raise Refusal("ValidationFault", "MANGLER_JOURNALPOST", "no journalpost")
        self._arkivdel(post.referanseArkivdel)
        case = self._case_of(post)
        external = _external(post.referanseEksternNoekkel)
        stored = StoredJournalpost(
            system_id=self._next_id(),
            case=case,
            number=1 + sum(1 for p in self.journalposts if p.case is case),
            tittel=post.tittel,
            journalposttype=_get(post.journalposttype, "kodeverdi") or "",
            journalstatus=_get(post.journalstatus, "kodeverdi") or "",
            attachments=post.antallVedlegg,
            external=external,
            parties=[_party(p) for p in (_get(post.korrespondansepart, "liste") or [])],
        )
        self.journalposts.append(stored)
        return _journalpost(stored)

    def _case_of(self, post: Any) -> StoredCase:
        saksnr, by_id = post.saksnr, post.referanseSakSystemID
        for case in self.cases:
            if saksnr is not None and (case.saksaar, case.sakssekvensnummer) == (
                saksnr.saksaar,
                saksnr.sakssekvensnummer,
            ):
                return case
            if saksnr is None and by_id is not None and case.system_id == by_id.systemID.id:
                return case
        raise Refusal("FinderFault", "UKJENT_SAK", "the journalpost's case does not exist")

    def _op_FinnJournalposterGittNoekkel(self, request: Any) -> Any:
        return {
            "liste": [
                _journalpost(p) for p in self.journalposts if _post_matches(p, request.nokkel)
            ]
        }

    def _op_NyDokument(self, request: Any) -> Any:
        doc = request.dokument
        post = next(
            (p for p in self.journalposts if p.system_id == doc.referanseJournalpostSystemID), None
        )
        if post is None:
            raise Refusal("FinderFault", "UKJENT_JOURNALPOST", "no such journalpost")
        role = _get(doc.tilknyttetRegistreringSom, "kodeverdi")
        if role != ("H" if not post.documents else "V"):
            raise Refusal(
                "ValidationFault",
                "FEIL_TILKNYTNING",
                f"document {len(post.documents) + 1} cannot be {role!r}",
            )
        fil = doc.Fil
        content = _get(fil, "base64")
        if content is None:
            raise Refusal("ValidationFault", "MANGLER_FIL", "the file is not inline (Filinnhold)")
        if fil.mimeType in self.refused_mime_types:
            raise Refusal("ValidationFault", "UGYLDIG_FILFORMAT", f"{fil.mimeType} is not accepted")
        stored = StoredDocument(
            self._next_id(),
            len(post.documents) + 1,
            role,
            doc.tittel or "",
            fil.filnavn,
            fil.mimeType,
            bytes(content),
        )
        post.documents.append(stored)
        return _document(stored, post)

    def _op_FinnDokumenterGittJournalpostnoekkel(self, request: Any) -> Any:
        posts = [p for p in self.journalposts if _post_matches(p, request.journpostnokkel)]
        return {"liste": [_document(d, p) for p in posts for d in p.documents]}


def _tns(path: str) -> str:
    name = "Oppdatering" if path == "/oppdatering" else "Innsyn"
    return f"http://rep.geointegrasjon.no/Arkiv/{name}/xml.wsdl/2012.01.31"


def _operation_of(path: str, headers: dict[str, str], body: bytes) -> str:
    """The operation a request names in its SOAPAction (for faults and the record)."""
    return headers.get("soapaction", "").strip('"').rpartition("#")[2]


def _envelope(element: Any) -> bytes:
    envelope = etree.Element(f"{{{SOAP_ENV}}}Envelope", nsmap={"soap-env": SOAP_ENV})
    etree.SubElement(envelope, f"{{{SOAP_ENV}}}Body").append(element)
    return bytes(etree.tostring(envelope, encoding="utf-8", xml_declaration=True))
