"""A local Noark 5 tjenestegrensesnitt (v1.1) archive: the part an importer uses, on loopback.

Everything is reached through ``_links`` keyed by the standard's relation URIs, from the
root (``GET {base}/``) to arkiv, arkivdel, saksmappe, journalpost, korrespondansepart,
dokumentbeskrivelse, dokumentobjekt and the file (``fil``). Listings answer
``{"results": [...], "count": N}`` and take the OData ``$filter`` forms an importer needs
(``field eq value`` joined by ``and``, ``virksomhetsspesifikkeMetadata/KEY eq 'x'``).

What it checks, as a server of the standard must: the ``application/vnd.noark5+json`` media
type, that each object carries only the standard's fields for its type (an unknown field, a
code that is not ``{"kode": ...}``, a missing title: 400), the code values of journalposttype,
korrespondanseparttype, tilknyttetRegistreringSom and variantformat, and that an uploaded
file has the size and SHA-256 its dokumentobjekt declared (400 otherwise, and nothing kept);
a file is uploaded once (409 after). Credentials: Bearer token or Basic.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import re
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from svarinn_daemon.archives.server import ArchiveServer, Injected, Reply

__all__ = ["Entity", "LocalNoark5", "odata_filter"]

REL = "https://rel.arkivverket.no/noark5/v5/api/"
MEDIA = "application/vnd.noark5+json"
CODE_FIELDS = {
    "journalposttype": {"I", "U", "N", "X", "S"},
    "journalstatus": {"M", "S", "F", "J", "E", "A", "U", "R"},
    "korrespondanseparttype": {"EA", "EM", "EK", "IA", "IM", "IK"},
    "dokumenttype": {"B", "F", "S", "R", "U"},
    "dokumentstatus": {"B", "F"},
    "tilknyttetRegistreringSom": {"H", "V"},
    "variantformat": {"P", "A", "O"},
    "saksstatus": {"B", "A", "U", "R", "F"},
}
FIELDS = {
    "saksmappe": {"tittel", "offentligTittel", "beskrivelse", "saksdato", "saksstatus",
                  "virksomhetsspesifikkeMetadata", "administrativEnhet", "saksansvarlig"},
    "journalpost": {"tittel", "offentligTittel", "journalposttype", "journalstatus",
                    "dokumentetsDato", "mottattDato", "virksomhetsspesifikkeMetadata",
                    "beskrivelse", "antallVedlegg"},
    "korrespondansepart": {"korrespondanseparttype", "navn", "enhetsidentifikator",
                           "forretningsadresse", "postadresse", "kontaktinformasjon",
                           "kontaktperson", "personidentifikator", "bostedsadresse"},
    "dokumentbeskrivelse": {"tittel", "dokumenttype", "dokumentstatus",
                            "tilknyttetRegistreringSom", "eksternReferanse", "beskrivelse"},
    "dokumentobjekt": {"versjonsnummer", "variantformat", "format", "mimeType", "filnavn",
                       "filstoerrelse", "sjekksum", "sjekksumAlgoritme"},
}  # fmt: skip
REQUIRED = {
    "saksmappe": {"tittel"},
    "journalpost": {"tittel", "journalposttype", "journalstatus"},
    "korrespondansepart": {"korrespondanseparttype", "navn"},
    "dokumentbeskrivelse": {"tittel", "dokumenttype", "dokumentstatus",
                            "tilknyttetRegistreringSom"},
    "dokumentobjekt": {"versjonsnummer", "variantformat", "filstoerrelse", "sjekksum",
                       "sjekksumAlgoritme"},
}  # fmt: skip
CHILD = {  # the new-object relation on a parent kind -> the kind it makes
    ("arkivdel", "sakarkiv/ny-saksmappe/"): "saksmappe",
    ("saksmappe", "sakarkiv/ny-journalpost/"): "journalpost",
    ("journalpost", "arkivstruktur/ny-korrespondansepartenhet/"): "korrespondansepart",
    ("journalpost", "arkivstruktur/ny-korrespondansepartperson/"): "korrespondansepart",
    ("journalpost", "arkivstruktur/ny-dokumentbeskrivelse/"): "dokumentbeskrivelse",
    ("dokumentbeskrivelse", "arkivstruktur/ny-dokumentobjekt/"): "dokumentobjekt",
}
LISTINGS = {  # a listing relation on a kind -> which objects it lists
    ("arkiv", "arkivstruktur/arkivdel/"): ("children", "arkivdel"),
    ("arkivdel", "sakarkiv/saksmappe/"): ("children", "saksmappe"),
    ("arkivdel", "sakarkiv/journalpost/"): ("descendants", "journalpost"),
    ("saksmappe", "sakarkiv/journalpost/"): ("children", "journalpost"),
    ("journalpost", "arkivstruktur/korrespondansepart/"): ("children", "korrespondansepart"),
    ("journalpost", "arkivstruktur/dokumentbeskrivelse/"): ("children", "dokumentbeskrivelse"),
    ("dokumentbeskrivelse", "arkivstruktur/dokumentobjekt/"): ("children", "dokumentobjekt"),
}
_CLAUSE = re.compile(r"\s*([A-Za-z][\w:/.-]*)\s+eq\s+('(?:[^']|'')*'|-?\d+)\s*$")


class _Refused(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@dataclass
class Entity:
    kind: str
    id: str
    parent: Entity | None
    fields: dict[str, Any]
    children: list[Entity] = field(default_factory=list)
    content: bytes | None = None  # a dokumentobjekt's file


def odata_filter(text: str) -> list[tuple[list[str], Any]]:
    """``a eq 1 and b/c eq 'x'`` as [(["a"], 1), (["b", "c"], "x")]; ValueError otherwise."""
    out = []
    for clause in re.split(r"\s+and\s+", text.strip()):
        match = _CLAUSE.match(clause)
        if not match:
            raise ValueError(f"unsupported $filter clause {clause!r}")
        name, literal = match.groups()
        value: Any = literal[1:-1].replace("''", "'") if literal.startswith("'") else int(literal)
        out.append((name.split("/"), value))
    return out


class LocalNoark5:
    """The archive: one arkiv with the arkivdeler given; ``with LocalNoark5() as n5:``
    serves ``n5.url``."""

    def __init__(
        self,
        *,
        token: str | None = "noark5-token",  # noqa: S107 - a local test archive's
        username: str | None = None,
        password: str | None = None,
        arkivdeler: tuple[str, ...] = ("Sakarkiv",),
        year: int = 2026,
        bulkgrense: int = 157_286_400,
    ):
        self.token, self.year, self.bulkgrense = token, year, bulkgrense
        self._sessions: dict[str, tuple[Entity, int, str, bytearray, int]] = {}
        self._basic = (username, password) if username is not None else None
        self._ids = itertools.count(1)
        self.arkiv = Entity("arkiv", self._id(), None, {"tittel": "Arkiv"})
        for title in arkivdeler:
            self.arkiv.children.append(
                Entity("arkivdel", self._id(), self.arkiv, {"tittel": title})
            )
        self._all = {e.id: e for e in [self.arkiv, *self.arkiv.children]}
        self._lock = threading.Lock()
        self.server = ArchiveServer(self._handle, operation_of=_operation_of)

    @property
    def url(self) -> str:
        return self.server.base_url + "/noark5v5/"

    def inject(self, fault: Injected) -> None:
        self.server.inject(fault)

    def __enter__(self) -> LocalNoark5:
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop()

    def _id(self) -> str:
        return f"{next(self._ids):08d}-0000-4000-8000-000000000000"

    def all(self, kind: str) -> list[Entity]:
        with self._lock:
            return [e for e in self._all.values() if e.kind == kind]

    def add_case(self, saksaar: int, sakssekvensnummer: int, title: str) -> Entity:
        """A case made in the archive by hand, in the first arkivdel."""
        arkivdel = self.arkiv.children[0]
        case = Entity("saksmappe", self._id(), arkivdel, {"tittel": title})
        case.fields.update(saksaar=saksaar, sakssekvensnummer=sakssekvensnummer)
        case.fields["mappeID"] = f"{saksaar}/{sakssekvensnummer}"
        arkivdel.children.append(case)
        self._all[case.id] = case
        return case

    # -- serving -------------------------------------------------------------------------

    def _authorised(self, header: str) -> bool:
        if self.token is not None and hmac.compare_digest(header, f"Bearer {self.token}"):
            return True
        if self._basic is not None:
            pair = base64.b64encode(f"{self._basic[0]}:{self._basic[1]}".encode()).decode()
            return hmac.compare_digest(header, f"Basic {pair}")
        return False

    def _handle(
        self, verb: str, path: str, headers: dict[str, str], body: bytes, fault: Injected | None
    ) -> tuple[str, Reply]:
        operation = _operation_of(path, headers, body)
        if not self._authorised(headers.get("authorization", "")):
            return operation, _json(401, {"message": "unauthorised"})
        try:
            if fault is not None and fault.fault is not None:
                raise _Refused(422, f"injected: {fault.fault}")
            with self._lock:
                return operation, self._route(verb, path, headers, body)
        except _Refused as refusal:
            return operation, _json(refusal.status, {"message": str(refusal)})

    def _route(self, verb: str, path: str, headers: dict[str, str], body: bytes) -> Reply:
        parts = urlsplit(path)
        segments = [unquote(s) for s in parts.path.split("/") if s]
        if segments == ["noark5v5"]:
            arkiv = {"href": self._href("arkivstruktur", "arkiv")}
            system = {"href": self._href("admin", "system")}
            links = {REL + "arkivstruktur/arkiv/": arkiv, REL + "admin/system/": system}
            return _json(200, {"_links": links})
        if segments == ["noark5v5", "api", "admin", "system"]:
            return _json(
                200,
                {
                    "bulkgrense": self.bulkgrense,
                    "produkt": "svarinn-daemon local Noark 5",
                    "protokollversjon": "1.1",
                },
            )
        if segments == ["noark5v5", "api", "arkivstruktur", "arkiv"]:
            return _json(200, self._listing([self.arkiv], None))
        if len(segments) < 4 or segments[:2] != ["noark5v5", "api"]:
            raise _Refused(404, "no such resource")
        entity = self._all.get(segments[2])
        if entity is None:
            raise _Refused(404, "no such object")
        rel = "/".join(segments[3:]) + "/"
        if rel == "self/" and verb == "GET":
            return _json(200, self._view(entity))
        if rel == "arkivstruktur/fil/" and entity.kind == "dokumentobjekt":
            return self._file(verb, entity, headers, body, parse_qs(parts.query))
        if verb == "GET" and (entity.kind, rel) in LISTINGS:
            how, kind = LISTINGS[(entity.kind, rel)]
            items = (
                self._descendants(entity, kind)
                if how == "descendants"
                else [c for c in entity.children if c.kind == kind]
            )
            wanted = parse_qs(parts.query).get("$filter", [None])[0]
            return _json(200, self._listing(items, wanted))
        if verb == "POST" and (entity.kind, rel) in CHILD:
            return self._create(entity, CHILD[(entity.kind, rel)], rel, headers, body)
        raise _Refused(
            405 if verb != "GET" else 404, f"{verb} {rel} is not offered on {entity.kind}"
        )

    def _descendants(self, entity: Entity, kind: str) -> list[Entity]:
        out = []
        for child in entity.children:
            if child.kind == kind:
                out.append(child)
            out += self._descendants(child, kind)
        return out

    def _listing(self, items: list[Entity], wanted: str | None) -> dict[str, Any]:
        if wanted is not None:
            try:
                clauses = odata_filter(wanted)
            except ValueError as exc:
                raise _Refused(400, str(exc)) from None
            items = [e for e in items if all(_value(e.fields, p) == v for p, v in clauses)]
        return {"results": [self._view(e) for e in items], "count": len(items)}

    def _create(
        self, parent: Entity, kind: str, rel: str, headers: dict[str, str], body: bytes
    ) -> Reply:
        if headers.get("content-type", "").split(";")[0].strip() != MEDIA:
            raise _Refused(415, f"Content-Type must be {MEDIA}")
        try:
            data = json.loads(body)
        except ValueError:
            raise _Refused(400, "the body is not JSON") from None
        if not isinstance(data, dict):
            raise _Refused(400, "the body is not an object")
        unknown = set(data) - FIELDS[kind]
        missing = REQUIRED[kind] - set(data)
        if unknown or missing:
            raise _Refused(400, f"{kind}: unknown {sorted(unknown)}, missing {sorted(missing)}")
        for name, allowed in CODE_FIELDS.items():
            if name in data:
                code = data[name]
                if not isinstance(code, dict) or code.get("kode") not in allowed:
                    raise _Refused(400, f"{name}: {code!r} is not one of {sorted(allowed)}")
        if kind == "korrespondansepart":
            _check_party(data, enhet=rel.endswith("enhet/"))
        if kind == "dokumentobjekt" and (
            data["sjekksumAlgoritme"] != "SHA-256" or not isinstance(data["filstoerrelse"], int)
        ):
            raise _Refused(400, "sjekksumAlgoritme must be SHA-256, filstoerrelse a number")
        entity = Entity(kind, self._id(), parent, dict(data))
        if kind == "saksmappe":
            number = 1 + sum(
                1
                for e in self._all.values()
                if e.kind == "saksmappe" and e.fields.get("saksaar") == self.year
            )
            entity.fields.update(saksaar=self.year, sakssekvensnummer=number)
            entity.fields["mappeID"] = f"{self.year}/{number}"
        if kind == "journalpost":
            entity.fields.update(journalaar=self.year, journalpostnummer=len(parent.children) + 1)
        parent.children.append(entity)
        self._all[entity.id] = entity
        return _json(201, self._view(entity))

    def _file(
        self,
        verb: str,
        obj: Entity,
        headers: dict[str, str],
        body: bytes,
        query: dict[str, list[str]],
    ) -> Reply:
        """A small file in one POST; a large one in a session: POST with
        X-Upload-Content-Length (200 + Location), then PUTs with Content-Range (200 +
        Location + Range each, 201 at the last)."""
        if verb == "GET":
            if obj.content is None:
                raise _Refused(404, "no file uploaded yet")
            return Reply(200, obj.content, obj.fields.get("mimeType") or "application/octet-stream")
        if obj.content is not None:
            raise _Refused(409, "the dokumentobjekt has its file already")
        mime = headers.get("content-type", "")
        if verb == "PUT":
            return self._chunk(obj, query.get("ref", [""])[0], headers, body)
        if verb != "POST":
            raise _Refused(405, "upload with POST, or PUT in a session")
        if "x-upload-content-length" in headers:
            total = int(headers["x-upload-content-length"])
            if total != obj.fields["filstoerrelse"]:
                raise _Refused(400, "X-Upload-Content-Length is not the dokumentobjekt's size")
            session = self._id()[:8]
            self._sessions[session] = (
                obj,
                total,
                headers.get("x-upload-content-type", ""),
                bytearray(),
                1,
            )
            return self._next_chunk(obj, session, 1, None)
        if self.bulkgrense and len(body) > self.bulkgrense:
            raise _Refused(403, f"larger than bulkgrense ({self.bulkgrense}): upload in parts")
        self._check_mime(obj, mime)
        return self._complete(obj, body)

    def _chunk(self, obj: Entity, ref: str, headers: dict[str, str], body: bytes) -> Reply:
        session, _, step = ref.rpartition("-")
        held = self._sessions.get(session)
        if held is None or held[0] is not obj or str(held[4]) != step:
            raise _Refused(404, "no such upload session (or an old step of it)")
        _, total, mime, received, number = held
        match = re.fullmatch(r"(?:bytes )?(\d+)-(\d+)/(\d+)", headers.get("content-range", ""))
        if match is None:
            raise _Refused(400, "Content-Range must be <lower>-<upper>/<total>")
        lower, upper, whole = map(int, match.groups())
        if (lower, whole, upper - lower + 1) != (len(received), total, len(body)):
            raise _Refused(400, f"Content-Range {lower}-{upper}/{whole} does not follow on")
        self._check_mime(obj, mime or headers.get("content-type", ""))
        received += body
        if len(received) < total:
            self._sessions[session] = (obj, total, mime, received, number + 1)
            return self._next_chunk(obj, session, number + 1, len(received) - 1)
        del self._sessions[session]
        return self._complete(obj, bytes(received))

    def _next_chunk(self, obj: Entity, session: str, number: int, upper: int | None) -> Reply:
        location = self._href(obj.id, "arkivstruktur", "fil") + f"?ref={session}-{number}"
        extra = (("Location", location),) + (
            (("Range", f"0-{upper}"),) if upper is not None else ()
        )
        return Reply(200, b"", MEDIA, extra)

    @staticmethod
    def _check_mime(obj: Entity, mime: str) -> None:
        declared = obj.fields.get("mimeType")
        if declared and mime.split(";")[0].strip() != declared:
            raise _Refused(400, f"Content-Type {mime!r} is not the dokumentobjekt's {declared!r}")

    def _complete(self, obj: Entity, content: bytes) -> Reply:
        declared = (obj.fields["filstoerrelse"], obj.fields["sjekksum"])
        if (len(content), hashlib.sha256(content).hexdigest()) != declared:
            raise _Refused(400, "the file's size or SHA-256 is not what the dokumentobjekt says")
        obj.content = content
        return _json(201, self._view(obj))

    # -- views ---------------------------------------------------------------------------

    def _href(self, *parts: str) -> str:
        return self.server.base_url + "/noark5v5/api/" + "/".join(parts)

    def _view(self, entity: Entity) -> dict[str, Any]:
        links = {"self": {"href": self._href(entity.id, "self")}}
        for (kind, rel), _ in [*CHILD.items(), *LISTINGS.items()]:
            if kind == entity.kind:
                links[REL + rel] = {"href": self._href(entity.id, *rel.strip("/").split("/"))}
        if entity.kind == "dokumentobjekt":
            links[REL + "arkivstruktur/fil/"] = {
                "href": self._href(entity.id, "arkivstruktur", "fil")
            }
        return {"systemID": entity.id, **entity.fields, "_links": links}


ADDRESS = {"adresselinje1", "adresselinje2", "adresselinje3", "postnr", "poststed", "landkode"}


def _check_party(data: dict[str, Any], *, enhet: bool) -> None:
    """An enhet's ``enhetsidentifikator`` ({"organisasjonsnummer": ...}), a person has none;
    addresses are EnkelAdresse (``postnr`` and ``landkode`` from code lists)."""
    ident = data.get("enhetsidentifikator")
    if enhet != (ident is not None) or (
        enhet and not (isinstance(ident, dict) and set(ident) == {"organisasjonsnummer"})
    ):
        raise _Refused(400, "enhetsidentifikator belongs to a korrespondansepartenhet, as an "
                            "object with organisasjonsnummer")  # fmt: skip
    for name in ("postadresse", "forretningsadresse", "bostedsadresse"):
        address = data.get(name)
        if address is None:
            continue
        if not isinstance(address, dict) or set(address) - ADDRESS:
            raise _Refused(400, f"{name} is not an EnkelAdresse")
        for code in ("postnr", "landkode"):
            if code in address and not (
                isinstance(address[code], dict) and isinstance(address[code].get("kode"), str)
            ):
                raise _Refused(400, f'{name}.{code} is a code: {{"kode": ...}}')


def _value(fields: dict[str, Any], path: list[str]) -> Any:
    value: Any = fields
    for name in path:
        value = value.get(name) if isinstance(value, dict) else None
    return value


def _operation_of(path: str, headers: dict[str, str], body: bytes) -> str:
    segments = [s for s in urlsplit(path).path.split("/") if s]
    return "/".join(segments[3:]) or "/".join(segments[-2:])


def _json(status: int, document: Any) -> Reply:
    return Reply(status, json.dumps(document, ensure_ascii=False).encode(), MEDIA)
