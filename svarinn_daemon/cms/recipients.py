"""Pick the RecipientInfo meant for one of our keys and unwrap the content key.

SvarUt writes one KeyTransRecipientInfo naming our certificate by issuer and serial
number; other senders may use the subject key identifier. During key rotation several keys
are active, and a key configured without its certificate is tried against every recipient
(OAEP fails reliably with the wrong key, so trying is safe).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.padding import (
    MGF1,
    OAEP,
    AsymmetricPadding,
    PKCS1v15,
)

from svarinn_daemon.cms import der, oids
from svarinn_daemon.cms.certid import CertificateIds, certificate_ids, describe_name
from svarinn_daemon.errors import (
    CmsLimitExceededError,
    KeyUnwrapError,
    MalformedCmsError,
    NoMatchingRecipientError,
    UnsupportedAlgorithmError,
)
from svarinn_daemon.keys import KeyPair

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    oids.SHA1: hashes.SHA1,
    oids.SHA224: hashes.SHA224,
    oids.SHA256: hashes.SHA256,
    oids.SHA384: hashes.SHA384,
    oids.SHA512: hashes.SHA512,
}


@dataclass(frozen=True, slots=True)
class KeyTransRecipient:
    """One KeyTransRecipientInfo: who it is for, how the key was wrapped, the wrapped key."""

    issuer_der: bytes | None
    serial: int | None
    subject_key_identifier: bytes | None
    algorithm_oid: str
    algorithm_params: der.Element | None
    encrypted_key: bytes

    def describe(self) -> str:
        if self.issuer_der is not None and self.serial is not None:
            return f"issuer={describe_name(self.issuer_der)} serial={self.serial:X}"
        return f"subjectKeyIdentifier={(self.subject_key_identifier or b'').hex()}"

    def matches(self, ids: CertificateIds) -> bool:
        if self.subject_key_identifier is not None:
            return self.subject_key_identifier == ids.subject_key_identifier
        return self.serial == ids.serial and self.issuer_der == ids.issuer_der


@dataclass(frozen=True, slots=True)
class RecipientUsed:
    """Which of our keys opened the file, and how it was chosen (for logs and the CLI)."""

    key_label: str
    recipient: str
    matched_by: str  # "issuerAndSerialNumber", "subjectKeyIdentifier" or "trial"
    key_transport: str

    def describe(self) -> str:
        return (
            f"key {self.key_label} ({self.recipient}; matched by {self.matched_by}; "
            f"{self.key_transport})"
        )


def parse_recipient_infos(
    element: der.Element, *, max_recipients: int
) -> tuple[list[KeyTransRecipient], list[str]]:
    """The key-transport recipients, plus a note for each other kind we cannot use."""
    if element.tag != der.SET:
        raise MalformedCmsError("EnvelopedData: expected the recipientInfos SET")
    if len(element.children) > max_recipients:
        raise CmsLimitExceededError(
            f"EnvelopedData: {len(element.children)} recipients (limit {max_recipients})"
        )
    found: list[KeyTransRecipient] = []
    others: list[str] = []
    kinds = {0xA1: "KeyAgreeRecipientInfo", 0xA2: "KEKRecipientInfo", 0xA3: "PasswordRecipientInfo"}
    for info in element.children:
        if info.tag == der.SEQUENCE:
            found.append(_parse_ktri(info))
        else:
            others.append(kinds.get(info.tag, f"RecipientInfo with tag 0x{info.tag:02X}"))
    return found, others


def _parse_ktri(info: der.Element) -> KeyTransRecipient:
    what = "KeyTransRecipientInfo"
    fields = info.children
    if len(fields) != 4:
        raise MalformedCmsError(f"{what}: expected 4 fields, found {len(fields)}")
    der.decode_integer(fields[0], what)
    rid = fields[1]
    issuer = serial = ski = None
    if rid.tag == der.SEQUENCE and len(rid.children) == 2:
        issuer = der.expect(rid.children[0], der.SEQUENCE, f"{what} issuer").raw
        serial = der.decode_integer(rid.children[1], f"{what} serial number")
    elif rid.tag in (0x80, 0xA0):
        ski = der.octets(rid, f"{what} subjectKeyIdentifier")
    else:
        raise MalformedCmsError(f"{what}: unknown recipient identifier (tag 0x{rid.tag:02X})")
    algorithm = der.expect(fields[2], der.SEQUENCE, f"{what} keyEncryptionAlgorithm")
    if not algorithm.children or len(algorithm.children) > 2:
        raise MalformedCmsError(f"{what}: malformed keyEncryptionAlgorithm")
    oid = der.decode_oid(algorithm.children[0], f"{what} keyEncryptionAlgorithm")
    params = algorithm.children[1] if len(algorithm.children) == 2 else None
    if fields[3].tag not in (der.OCTET_STRING, der.OCTET_STRING_CONSTRUCTED):
        raise MalformedCmsError(f"{what}: encryptedKey is not an OCTET STRING")
    encrypted_key = der.octets(fields[3], f"{what} encryptedKey")
    return KeyTransRecipient(issuer, serial, ski, oid, params, encrypted_key)


def key_transport_padding(recipient: KeyTransRecipient) -> tuple[AsymmetricPadding, str]:
    """The RSA padding named by the recipient's algorithm, and a short description."""
    oid = recipient.algorithm_oid
    if oid == oids.RSA_ENCRYPTION:
        return PKCS1v15(), "RSA PKCS#1 v1.5"
    if oid != oids.RSAES_OAEP:
        raise UnsupportedAlgorithmError(
            f"key transport algorithm {oids.describe(oid)} is not supported "
            "(RSAES-OAEP and rsaEncryption are)",
            oid=oid,
        )
    hash_oid = mgf_hash_oid = oids.SHA1
    label: bytes | None = None
    params = recipient.algorithm_params
    what = "RSAES-OAEP parameters"
    if params is not None and params.tag != der.NULL:
        for field in der.expect(params, der.SEQUENCE, what).children:
            if len(field.children) != 1:
                raise MalformedCmsError(f"{what}: malformed field 0x{field.tag:02X}")
            inner = der.expect(field.children[0], der.SEQUENCE, what).children
            if not inner:
                raise MalformedCmsError(f"{what}: empty AlgorithmIdentifier")
            inner_oid = der.decode_oid(inner[0], what)
            if field.tag == 0xA0:
                hash_oid = inner_oid
            elif field.tag == 0xA1:
                if inner_oid != oids.MGF1:
                    raise UnsupportedAlgorithmError(
                        f"OAEP mask generation {oids.describe(inner_oid)} is not supported",
                        oid=inner_oid,
                    )
                if len(inner) != 2 or not inner[1].children:
                    raise MalformedCmsError(f"{what}: MGF1 without its hash algorithm")
                mgf_hash_oid = der.decode_oid(inner[1].children[0], what)
            elif field.tag == 0xA2:
                if inner_oid != oids.P_SPECIFIED or len(inner) != 2:
                    raise UnsupportedAlgorithmError(
                        f"OAEP label source {oids.describe(inner_oid)} is not supported",
                        oid=inner_oid,
                    )
                label = der.octets(inner[1], what) or None
            else:
                raise MalformedCmsError(f"{what}: unknown field 0x{field.tag:02X}")
    for digest_oid in (hash_oid, mgf_hash_oid):
        if digest_oid not in _HASHES:
            raise UnsupportedAlgorithmError(
                f"OAEP hash {oids.describe(digest_oid)} is not supported", oid=digest_oid
            )
    padding = OAEP(
        mgf=MGF1(algorithm=_HASHES[mgf_hash_oid]()), algorithm=_HASHES[hash_oid](), label=label
    )
    name = f"RSAES-OAEP {oids.NAMES[hash_oid]}, MGF1 {oids.NAMES[mgf_hash_oid]}"
    return padding, name


def unwrap(
    recipients: Sequence[KeyTransRecipient], others: Sequence[str], keys: Sequence[KeyPair]
) -> tuple[bytes, RecipientUsed]:
    """Find our recipient and decrypt the content-encryption key."""
    for key in keys:
        if key.certificate is None:
            continue
        ids = certificate_ids(key.certificate)
        for recipient in recipients:
            if recipient.matches(ids):
                how = (
                    "subjectKeyIdentifier" if recipient.serial is None else "issuerAndSerialNumber"
                )
                padding, name = key_transport_padding(recipient)
                try:
                    content_key = key.private_key.decrypt(recipient.encrypted_key, padding)
                except ValueError:
                    raise KeyUnwrapError(
                        f"the content key for {recipient.describe()} does not decrypt with key "
                        f"{key.label} ({name}): the file is corrupt or was encrypted with a "
                        "different key for the same certificate"
                    ) from None
                return content_key, RecipientUsed(key.label, recipient.describe(), how, name)
    for key in keys:
        if key.certificate is not None:
            continue
        for recipient in recipients:
            try:
                padding, name = key_transport_padding(recipient)
                content_key = key.private_key.decrypt(recipient.encrypted_key, padding)
            except (ValueError, UnsupportedAlgorithmError, MalformedCmsError):
                continue
            return content_key, RecipientUsed(key.label, recipient.describe(), "trial", name)
    found = [r.describe() for r in recipients] + list(others)
    ours = [
        f"{key.label}: {key.describe_certificate() or 'no certificate (tried, did not open)'}"
        for key in keys
    ]
    raise NoMatchingRecipientError(
        "no recipient matches our keys: the file is encrypted for "
        f"[{'; '.join(found) or 'no recipients'}], our keys are [{'; '.join(ours) or 'none'}]"
    )
