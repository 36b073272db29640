"""How CMS names a recipient certificate: issuer + serial, or subject key identifier.

The issuer is taken as the exact DER octets from the certificate's TBS part (not a
re-encoding), because ``issuerAndSerialNumber`` matching compares encodings.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from cryptography import x509

from svarinn_daemon.cms import der
from svarinn_daemon.errors import CmsError

_SHORT_NAMES = {
    "2.5.4.3": "CN",
    "2.5.4.6": "C",
    "2.5.4.7": "L",
    "2.5.4.8": "ST",
    "2.5.4.10": "O",
    "2.5.4.11": "OU",
    "2.5.4.5": "serialNumber",
    "2.5.4.97": "organizationIdentifier",
    "1.2.840.113549.1.9.1": "emailAddress",
    "0.9.2342.19200300.100.1.25": "DC",
}


@dataclass(frozen=True, slots=True)
class CertificateIds:
    """The identifiers a KeyTransRecipientInfo may use for one certificate."""

    issuer_der: bytes
    serial: int
    subject_key_identifier: bytes

    def describe(self) -> str:
        return f"issuer={describe_name(self.issuer_der)} serial={self.serial:X}"


@functools.lru_cache(maxsize=64)  # per letter, for the same few certificates: parsed once
def certificate_ids(certificate: x509.Certificate) -> CertificateIds:
    try:
        tbs = der.parse(certificate.tbs_certificate_bytes, what="certificate")
        fields = list(tbs.children)
        if fields and fields[0].tag == 0xA0:  # explicit version
            fields = fields[1:]
        issuer_der = der.expect(fields[2], der.SEQUENCE, "certificate issuer").raw
    except (CmsError, IndexError):
        issuer_der = certificate.issuer.public_bytes()
    try:
        ski = certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    except x509.ExtensionNotFound:
        ski = x509.SubjectKeyIdentifier.from_public_key(certificate.public_key())
    return CertificateIds(
        issuer_der=issuer_der,
        serial=certificate.serial_number,
        subject_key_identifier=ski.digest,
    )


def describe_name(name_der: bytes) -> str:
    """An RFC 4514-style rendering of a DER Name, for messages; never raises."""
    if len(name_der) <= _CACHED_NAME:
        return _described(name_der)
    return _describe(name_der)  # a sender's outsized name is not kept


_CACHED_NAME = 1024  # bytes: real issuer names are a few hundred


@functools.lru_cache(maxsize=64)  # every letter names the same few issuers
def _described(name_der: bytes) -> str:
    return _describe(name_der)


def _describe(name_der: bytes) -> str:
    try:
        name = der.parse(name_der, what="name")
        parts = []
        for rdn in reversed(name.children):
            attrs = []
            for atv in rdn.children:
                oid = der.decode_oid(atv.children[0], "name")
                value = atv.children[1].content.decode("utf-8", "replace")
                attrs.append(f"{_SHORT_NAMES.get(oid, oid)}={value}")
            parts.append("+".join(attrs))
        return ",".join(parts)
    except (CmsError, IndexError):
        return "<unparsable name " + name_der[:32].hex() + ">"
