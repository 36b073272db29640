"""A local archive on Fiks Arkiv: an account of its own on the local Fiks IO, reading its
queue as a real archive does, strict about what it gets.

Each ``arkivmelding.opprett`` is decrypted with the archive's key, its container read with
``zipfile`` (mimetype first and stored, KS's ``META-INF/asicmanifest.xml`` naming exactly its
files with their SHA-256), ``arkivmelding.xml`` validated against KS's published V1 XSD
(``../shared/specs/fiks-arkiv``), every document's SHA-256 and size checked against its
``dokumentobjekt``. It answers as the protocol says: ``mottatt``, then ``kvittering`` (an
ASiC-E as KS's library writes it, manifest and a detached CAdES signature, holding
``arkivmelding-kvittering.xml``, itself valid against the XSD, encrypted to the sender's
certificate from the catalogue) or a feilmelding. A letter it has (by its external key) is not
registered again: the kvittering says ``Eksisterende``.

Faults: ``lose`` (take a message and never answer), ``serverfeil``, ``refuse`` (feilIds to
answer ugyldigforespoersel with), ``delay`` (seconds between mottatt and kvittering).
"""

from __future__ import annotations

import base64
import hashlib
import io
import threading
import time
import uuid
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pika
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs7
from lxml import etree

from svarinn_daemon.cms import Decryptor, encrypt_bytes
from svarinn_daemon.keys import KeyPair
from tests.support import keygen
from tests.support.fakes.fiksio import Konto, LocalFiksIo

OPPRETT = "no.ks.fiks.arkiv.v1.arkivering.arkivmelding.opprett"
BASE = "https://ks-no.github.io/standarder/fiks-protokoll/fiks-arkiv"
AM = f"{BASE}/arkivmelding/opprett/v1"
N5 = f"{BASE}/metadatakatalog/v1"
KV = f"{BASE}/arkivmelding/opprett/kvittering/v1"
FEIL = f"{BASE}/feil/feilmelding/v1"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
ASICE = "application/vnd.etsi.asic-e+zip"
CADES = "http://uri.etsi.org/02918/v1.2.1#"
DSIG = "http://www.w3.org/2000/09/xmldsig#"
SHA256_URI = "http://www.w3.org/2001/04/xmlenc#sha256"
SCHEMAS = {
    "opprett": "no.ks.fiks.arkiv.v1.arkivering.arkivmelding.opprett.xsd",
    "kvittering": "no.ks.fiks.arkiv.v1.arkivering.arkivmelding.opprett.kvittering.xsd",
    "ugyldigforespoersel": "no.ks.fiks.arkiv.v1.feilmelding.ugyldigforespoersel.xsd",
    "serverfeil": "no.ks.fiks.arkiv.v1.feilmelding.serverfeil.xsd",
}


@dataclass
class Journalpost:
    system_id: str
    sekvensnummer: int
    key: tuple[str, str]
    title: str
    documents: list[tuple[str, str, bytes]]  # (role, filnavn, content)
    parties: list[str]
    xml: bytes
    messages: list[str] = field(default_factory=list)  # the melding ids that carried it


def _q(ns: str, name: str) -> str:
    return f"{{{ns}}}{name}"


def _text(node: Any, *path: tuple[str, str]) -> str | None:
    for ns, name in path:
        node = node.find(_q(ns, name)) if node is not None else None
    return None if node is None or node.text is None else str(node.text)


class LocalFiksArkiv:
    def __init__(self, fiksio: LocalFiksIo, schemas: Path):
        self.fiksio = fiksio
        self.schemas = {
            kind: etree.XMLSchema(etree.parse(str(schemas / name)))
            for kind, name in SCHEMAS.items()
        }
        key = keygen.rsa_key(7)
        self.certificate = keygen.certificate(key, cn="arkiv")
        self.keys = (KeyPair("arkiv", key, self.certificate),)
        self.konto_id = uuid.uuid4()
        self.integration_id = f"arkiv-{uuid.uuid4().hex[:8]}"
        self.password = uuid.uuid4().hex
        self.client_id = f"arkiv-client-{uuid.uuid4().hex[:8]}"
        fiksio.add_client(self.client_id, self.certificate)
        fiksio.add_integration(self.integration_id, self.password, self.client_id)
        fiksio.add_konto(Konto(self.konto_id, self.integration_id, self.certificate, "arkiv"))
        self.lock = threading.RLock()
        self.journalposter: dict[tuple[str, str], Journalpost] = {}
        self.received: list[dict[str, Any]] = []  # every message taken: headers and outcome
        self.invalid: list[str] = []  # schema or content errors found in what we got
        self.lose = 0
        self.serverfeil = 0
        self.refuse: list[str] = []
        self.delay = 0.0
        self.registrering_feilet = 0  # kvitteringer that say the registrering failed
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="local-fiks-arkiv")
        self._timers: list[threading.Timer] = []

    def start(self) -> LocalFiksArkiv:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(20)
        for timer in self._timers:
            timer.cancel()

    def __enter__(self) -> LocalFiksArkiv:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the queue ---------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                params = pika.URLParameters(self.fiksio.amqp_url)
                token = self.fiksio.issue_token(self.client_id)
                params.credentials = pika.PlainCredentials(
                    self.integration_id, f"{self.password} {token}"
                )
                connection = pika.BlockingConnection(params)
                try:
                    channel = connection.channel()
                    channel.basic_qos(prefetch_count=5)
                    queue = f"fiksio.konto.{self.konto_id}"
                    for method, props, body in channel.consume(queue, inactivity_timeout=0.2):
                        if self._stop.is_set():
                            break
                        if method is None:
                            continue
                        self._take(dict(props.headers or {}), body)
                        channel.basic_ack(method.delivery_tag)
                finally:
                    if connection.is_open:
                        connection.close()
            except (pika.exceptions.AMQPError, OSError):
                self._stop.wait(0.5)  # the broker restarted, say: connect again

    def _take(self, headers: dict[str, Any], body: bytes) -> None:
        def header(name: str) -> str:
            value = headers.get(name)
            return value.decode() if isinstance(value, bytes) else str(value or "")

        kind, melding_id, avsender = header("type"), header("melding-id"), header("avsender-id")
        record: dict[str, Any] = {"type": kind, "melding_id": melding_id, "outcome": ""}
        with self.lock:
            self.received.append(record)
            if kind != OPPRETT:
                record["outcome"] = "ignored"
                return
            if self.lose > 0:
                self.lose -= 1
                record["outcome"] = "lost"
                return
        sender = uuid.UUID(avsender)
        self._reply(sender, f"{OPPRETT}.mottatt", melding_id, None)
        try:
            files, xml = self._open(body)
        except ValueError as exc:
            with self.lock:
                self.invalid.append(str(exc))
            record["outcome"] = "ugyldig"
            self._feil(sender, melding_id, "ugyldigforespoersel", "UGYLDIG", str(exc))
            return
        with self.lock:
            if self.serverfeil > 0:
                self.serverfeil -= 1
                record["outcome"] = "serverfeil"
                failing = True
            else:
                failing = False
            refused = self.refuse.pop(0) if self.refuse else None
        if failing:
            self._feil(sender, melding_id, "serverfeil", "SERVERFEIL", "databasen svarer ikke")
            return
        if refused is not None:
            record["outcome"] = "refused"
            self._feil(sender, melding_id, "ugyldigforespoersel", refused, "avvist av arkivet")
            return
        with self.lock:
            feilet = self.registrering_feilet > 0
            self.registrering_feilet = max(self.registrering_feilet - 1, 0)
        if feilet:
            record["outcome"] = "registreringFeilet"
            answer = self._feilet_kvittering()
            self._reply(
                sender,
                f"{OPPRETT}.kvittering",
                melding_id,
                self._container({"arkivmelding-kvittering.xml": answer}, sender),
            )
            return
        post, existing = self._register(files, xml, melding_id)
        record["outcome"] = "existing" if existing else "registered"
        answer = self._kvittering(post, existing)

        def send() -> None:
            self._reply(
                sender,
                f"{OPPRETT}.kvittering",
                melding_id,
                self._container({"arkivmelding-kvittering.xml": answer}, sender),
            )

        if self.delay > 0:
            timer = threading.Timer(self.delay, send)
            self._timers.append(timer)
            timer.start()
        else:
            send()

    # -- reading what came -------------------------------------------------------------------

    def _open(self, body: bytes) -> tuple[dict[str, bytes], Any]:
        decryptor = Decryptor(self.keys)
        plain = decryptor.feed(body) + decryptor.close()
        with zipfile.ZipFile(io.BytesIO(plain)) as container:
            infos = container.infolist()
            if not infos or infos[0].filename != "mimetype" or infos[0].compress_type != 0:
                raise ValueError("the container does not start with a stored mimetype")
            if container.read("mimetype") != ASICE.encode():
                raise ValueError("the container's mimetype is not ASiC-E")
            files = {
                i.filename: container.read(i)
                for i in infos[1:]
                if not i.filename.startswith("META-INF/")
            }
            manifest = etree.fromstring(container.read("META-INF/asicmanifest.xml"))
        listed = {}
        for ref in manifest.iter(_q(CADES, "DataObjectReference")):
            method = ref.find(_q(DSIG, "DigestMethod"))
            if method is None or method.get("Algorithm") != SHA256_URI:
                raise ValueError("a DataObjectReference without SHA-256")
            listed[ref.get("URI")] = ref.findtext(_q(DSIG, "DigestValue"))
        if set(listed) != set(files):
            raise ValueError(
                f"the manifest lists {sorted(listed)}, the container has {sorted(files)}"
            )
        for name, data in files.items():
            if listed[name] != base64.b64encode(hashlib.sha256(data).digest()).decode():
                raise ValueError(f"{name}: its digest in the manifest differs")
        xml_bytes = files.pop("arkivmelding.xml", None)
        if xml_bytes is None:
            raise ValueError("no arkivmelding.xml")
        root = etree.fromstring(xml_bytes)
        schema = self.schemas["opprett"]
        if not schema.validate(root):
            raise ValueError(f"arkivmelding.xml: {schema.error_log.last_error}")
        post = root.find(_q(AM, "registrering"))
        declared = int(_text(root, (AM, "antallFiler")) or -1)
        if declared != len(files):
            raise ValueError(f"antallFiler {declared}, the container has {len(files)}")
        for description in post.findall(_q(AM, "dokumentbeskrivelse")):
            obj = description.find(_q(AM, "dokumentobjekt"))
            name = _text(obj, (AM, "referanseDokumentfil"))
            if name not in files:
                raise ValueError(f"referanseDokumentfil {name!r} is not in the container")
            content = files[name]
            if _text(obj, (AM, "sjekksum")) != hashlib.sha256(content).hexdigest():
                raise ValueError(f"{name}: sjekksum differs")
            size = _text(obj, (AM, "filstoerrelse"))
            if size is not None and int(size) != len(content):
                raise ValueError(f"{name}: filstoerrelse differs")
        return files, root

    def _register(
        self, files: dict[str, bytes], root: Any, melding_id: str
    ) -> tuple[Journalpost, bool]:
        post = root.find(_q(AM, "registrering"))
        key = (
            _text(post, (AM, "referanseEksternNoekkel"), (N5, "fagsystem")) or "",
            _text(post, (AM, "referanseEksternNoekkel"), (N5, "noekkel")) or "",
        )
        with self.lock:
            existing = self.journalposter.get(key)
            if existing is not None:
                existing.messages.append(melding_id)
                return existing, True
            documents = []
            for description in post.findall(_q(AM, "dokumentbeskrivelse")):
                obj = description.find(_q(AM, "dokumentobjekt"))
                role = _text(description, (AM, "tilknyttetRegistreringSom"), (N5, "kode")) or ""
                documents.append(
                    (
                        role,
                        _text(obj, (AM, "filnavn")) or "",
                        files[_text(obj, (AM, "referanseDokumentfil")) or ""],
                    )
                )
            parties = [
                _text(p, (AM, "korrespondansepartNavn")) or ""
                for p in post.findall(_q(AM, "korrespondansepart"))
            ]
            created = Journalpost(
                system_id=str(uuid.uuid4()),
                sekvensnummer=len(self.journalposter) + 1,
                key=key,
                title=_text(post, (AM, "tittel")) or "",
                documents=documents,
                parties=parties,
                xml=etree.tostring(root),
                messages=[melding_id],
            )
            self.journalposter[key] = created
            return created, False

    # -- answering ---------------------------------------------------------------------------

    def _kvittering(self, post: Journalpost, existing: bool) -> bytes:
        root = etree.Element(
            _q(KV, "arkivmeldingKvittering"), nsmap={None: KV, "n5mdk": N5, "xsi": XSI}
        )
        reg = etree.SubElement(root, _q(KV, "registreringKvittering"))
        reg.set(_q(XSI, "type"), "journalpostKvittering")
        etree.SubElement(reg, _q(KV, "systemID")).text = post.system_id
        key = etree.SubElement(reg, _q(KV, "referanseEksternNoekkel"))
        etree.SubElement(key, _q(N5, "fagsystem")).text = post.key[0]
        etree.SubElement(key, _q(N5, "noekkel")).text = post.key[1]
        etree.SubElement(reg, _q(KV, "opprettetEllerEksisterende")).text = (
            "Eksisterende" if existing else "Opprettet"
        )
        etree.SubElement(reg, _q(KV, "journalaar")).text = str(datetime.now(UTC).year)
        etree.SubElement(reg, _q(KV, "journalsekvensnummer")).text = str(post.sekvensnummer)
        schema = self.schemas["kvittering"]
        if not schema.validate(root):  # the fake's own answer must be what the schema says
            raise AssertionError(f"the local archive's kvittering: {schema.error_log.last_error}")
        return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))

    def _feilet_kvittering(self) -> bytes:
        root = etree.Element(_q(KV, "arkivmeldingKvittering"), nsmap={None: KV, "feil": FEIL})
        failed = etree.SubElement(root, _q(KV, "registreringFeilet"))
        etree.SubElement(failed, _q(FEIL, "feilId")).text = "ARKIVDEL_LUKKET"
        etree.SubElement(failed, _q(FEIL, "feilmelding")).text = "arkivdelen er lukket"
        schema = self.schemas["kvittering"]
        assert schema.validate(root), schema.error_log.last_error
        return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))

    def _feil(self, sender: uuid.UUID, melding_id: str, kind: str, feil_id: str, text: str) -> None:
        ns = f"{BASE}/feil/{kind}/v1"
        root = etree.Element(_q(ns, kind), nsmap={None: ns, "feil": FEIL})
        etree.SubElement(root, _q(FEIL, "feilId")).text = feil_id
        etree.SubElement(root, _q(FEIL, "feilmelding")).text = text
        assert self.schemas[kind].validate(root), self.schemas[kind].error_log.last_error
        xml = bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))
        payload = self._container({"feilmelding.xml": xml}, sender)
        self._reply(sender, f"no.ks.fiks.arkiv.v1.feilmelding.{kind}", melding_id, payload)

    def _container(self, files: dict[str, bytes], to: uuid.UUID) -> bytes:
        """As KS's ASiC-E library writes one: mimetype, the files, META-INF/asicmanifest.xml
        (ETSI ASiCManifest with SHA-256) and its CAdES signature (detached, by our key)."""
        references = "".join(
            f'<cades:DataObjectReference URI="{name}" MimeType="application/xml">'
            f'<sig:DigestMethod Algorithm="{SHA256_URI}"/><sig:DigestValue>'
            f"{base64.b64encode(hashlib.sha256(data).digest()).decode()}</sig:DigestValue>"
            "</cades:DataObjectReference>"
            for name, data in files.items()
        )
        manifest = (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            f'<cades:ASiCManifest xmlns:cades="{CADES}" xmlns:sig="{DSIG}">'
            '<cades:SigReference URI="META-INF/signature.p7s" '
            'MimeType="application/x-pkcs7-signature"/>'
            f"{references}</cades:ASiCManifest>"
        ).encode()
        signature = (
            pkcs7.PKCS7SignatureBuilder()
            .set_data(manifest)
            .add_signer(self.certificate, self.keys[0].private_key, hashes.SHA256())
            .sign(serialization.Encoding.DER, [pkcs7.PKCS7Options.DetachedSignature])
        )
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as container:
            container.writestr(zipfile.ZipInfo("mimetype"), ASICE, zipfile.ZIP_STORED)
            for name, data in files.items():
                container.writestr(name, data)
            container.writestr("META-INF/asicmanifest.xml", manifest)
            container.writestr("META-INF/signature.p7s", signature)
        certificate = self.fiksio.kontoer[to].certificate
        return encrypt_bytes(out.getvalue(), certificate)

    def _reply(self, to: uuid.UUID, kind: str, melding_id: str, payload: bytes | None) -> None:
        self.fiksio.route(self.konto_id, to, kind, payload or b"", svar_til=melding_id)

    def wait_for(self, count: int, timeout: float = 30.0) -> None:
        """Until ``count`` journalposts are registered (or fail the test)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.journalposter) >= count:
                    return
            time.sleep(0.05)
        raise AssertionError(f"the local archive has {len(self.journalposter)} of {count}")
