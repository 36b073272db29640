"""GI-Arkiv 1.1 over SOAP: zeep spells the requests and reads the answers from the standard's
own WSDL/XSD (shipped in ``svarinn_daemon/specs/gi-arkiv-1.1``); httpx carries them.

zeep builds each envelope (``Client.create_message``) and parses each reply
(``process_reply``), so no envelope is written by hand; the daemon's own httpx client sends
it, with the adapter's deadline, TLS and Basic credentials, and every third-party error is
converted here into an :class:`ArchiveError` saying whether retrying can help.

A document goes inline (``Filinnhold.base64``) but never whole in memory: the envelope is
built with a marker where the content belongs, and the file is base64-encoded into the body
piece by piece as it is sent, with an exact ``Content-Length``.
"""

from __future__ import annotations

import base64
import ssl
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import zeep
import zeep.exceptions
from lxml import etree

from svarinn_daemon.adapters.archive_http import ArchiveHttp
from svarinn_daemon.adapters.giarkiv.encode import Typed
from svarinn_daemon.adapters.inline import InlineFiles
from svarinn_daemon.config.secrets import Secret
from svarinn_daemon.errors import ArchiveError
from svarinn_daemon.logs import Redactor
from svarinn_daemon.specs import GI_ARKIV, spec_directory, spec_file

__all__ = [
    "INNSYN",
    "OPPDATERING",
    "Fault",
    "GiArkivSoap",
]

INNSYN = "giArkivInnsyn20120131.wsdl"
OPPDATERING = "giArkivOppdatering20120131.wsdl"
FELLES_TEKNISK = "http://rep.geointegrasjon.no/Felles/Teknisk/xml.schema/2012.01.31"
MAX_MESSAGE = 400


class _LocalSchemas(zeep.Transport):
    """zeep's transport for loading the WSDL and its schemas, from the package only."""

    def load(self, url: str) -> bytes:
        return spec_file(GI_ARKIV, url).read_bytes()


@dataclass(frozen=True)
class Fault:
    """A SOAP fault the archive answered: the GI fault's type (``ValidationFault``...),
    its ``feilKode`` and its description, as data."""

    kind: str
    code: str
    description: str


class SoapFault(Exception):
    """Raised by :meth:`GiArkivSoap.call` for a SOAP fault; the adapter decides."""

    def __init__(self, fault: Fault):
        super().__init__(f"{fault.kind} {fault.code}: {fault.description}")
        self.fault = fault


class GiArkivSoap:
    """The two GI-Arkiv services (Oppdatering and Innsyn) at the operator's addresses."""

    def __init__(
        self,
        *,
        oppdatering_url: str,
        innsyn_url: str,
        username: str | None,
        password: Secret | None,
        timeout: timedelta,
        tls: ssl.SSLContext | None = None,
    ):
        self.urls = {OPPDATERING: oppdatering_url, INNSYN: innsyn_url}
        self.timeout = timeout
        settings = zeep.Settings(strict=True, forbid_dtd=True, forbid_entities=True)
        transport = _LocalSchemas()
        wsdl = spec_directory(GI_ARKIV)
        self._clients = {
            name: zeep.Client(str(wsdl / name), transport=transport, settings=settings)
            for name in (OPPDATERING, INNSYN)
        }
        auth = None
        secret_values: tuple[str, ...] = ()
        if username is not None and password is not None:
            auth = httpx.BasicAuth(username, password.reveal())
            pair = f"{username}:{password.reveal()}".encode()
            secret_values = (password.reveal(), base64.b64encode(pair).decode())
        self.http = ArchiveHttp(
            timeout=timeout,
            tls=tls,
            auth=auth,
            secrets=secret_values,
            credentials_hint="check username and password",
        )
        self.redactor = self.http.redactor
        # The longest one exchange can take: after a request without an answer, the archive
        # may still be at work on it until then.
        self.deadline = self.http.deadline

    def build(self, service: str, value: Any) -> Any:
        """``value`` with each :class:`~encode.Typed` made the schema type zeep sends with
        ``xsi:type``."""
        if isinstance(value, Typed):
            kind = self._clients[service].get_type(f"{{{value.namespace}}}{value.name}")
            return kind(**{k: self.build(service, v) for k, v in value.fields.items()})
        if isinstance(value, dict):
            return {k: self.build(service, v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.build(service, v) for v in value]
        return value

    def _envelope(self, service: str, operation: str, arguments: Mapping[str, Any]) -> bytes:
        client = self._clients[service]
        values = {k: self.build(service, v) for k, v in arguments.items()}
        try:
            envelope = client.create_message(client.service, operation, **values)
        except (zeep.exceptions.Error, TypeError, ValueError) as exc:
            # A value the schema does not allow: the request is ours, so is the fault.
            raise ArchiveError(
                f"{operation}: cannot build the request: {type(exc).__name__}: "
                f"{' '.join(str(exc).split())[:MAX_MESSAGE]}",
                temporary=True,
                loud=True,
            ) from None
        return bytes(etree.tostring(envelope, encoding="utf-8", xml_declaration=True))

    def call(self, service: str, operation: str, **arguments: Any) -> Any:
        """One operation; its unwrapped answer. SoapFault for a SOAP fault, ArchiveError
        (temporary) for anything the transport or the archive's HTTP says."""
        body = self._envelope(service, operation, arguments)
        return self._exchange(service, operation, body)

    def call_with_files(
        self,
        service: str,
        operation: str,
        build: Callable[[InlineFiles], Mapping[str, Any]],
        **arguments: Any,
    ) -> Any:
        """As :meth:`call`, with the arguments ``build`` gives: each ``base64Binary`` value
        it took from :meth:`InlineFiles.marker` is streamed from its file as the body is
        sent."""
        files = InlineFiles()
        body = self._envelope(service, operation, {**build(files), **arguments})
        return self._exchange(service, operation, files.body(body))

    def _exchange(
        self,
        service: str,
        operation: str,
        body: bytes | tuple[int, Callable[[], Iterator[bytes]]],
    ) -> Any:
        client = self._clients[service]
        bound = client.service._binding.get(operation)
        headers = {
            "Content-Type": 'text/xml; charset="utf-8"',
            "SOAPAction": f'"{bound.soapaction or ""}"',
        }
        url = self.urls[service]
        answer = self.http.post(url, operation, headers, body)
        try:
            return client.service._binding.process_reply(client, bound, answer)
        except zeep.exceptions.Fault as exc:
            raise SoapFault(_fault(exc, self.redactor)) from None
        except (zeep.exceptions.Error, etree.LxmlError, ValueError, TypeError) as exc:
            raise ArchiveError(
                f"{operation}: {url} answered HTTP {answer.status_code} with no GI-Arkiv answer "
                f"we can read ({type(exc).__name__}: {self.http.scrub(str(exc))})",
                temporary=True,
            ) from None

    def close(self) -> None:
        self.http.close()


def _fault(exc: Any, redactor: Redactor) -> Fault:
    """The GI fault in a SOAP fault's detail (``ValidationFault`` with ``feilKode``...), or
    the fault's own code and text when the detail holds none."""
    kind, code = "Fault", str(exc.code or "")
    description = str(exc.message or "")
    detail = exc.detail
    if detail is not None:
        for element in detail.iter():
            if not isinstance(element.tag, str):
                continue
            qname = etree.QName(element)
            if qname.namespace == FELLES_TEKNISK and qname.localname.endswith("Fault"):
                kind = qname.localname
                code = element.findtext(f"{{{FELLES_TEKNISK}}}feilKode") or code
                description = (
                    element.findtext(f"{{{FELLES_TEKNISK}}}feilBeskrivelse") or description
                )
                break
    scrub = redactor.scrub
    return Fault(
        kind,
        scrub(" ".join(code.split()))[:100],
        scrub(" ".join(description.split()))[:MAX_MESSAGE],
    )
