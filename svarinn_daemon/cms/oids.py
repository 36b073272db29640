"""The object identifiers CMS EnvelopedData needs, as dotted strings and DER contents.

Kept in one place so the encryptor, the decryptor and error messages agree on names.
"""

from __future__ import annotations

ENVELOPED_DATA = "1.2.840.113549.1.7.3"
DATA = "1.2.840.113549.1.7.1"

RSA_ENCRYPTION = "1.2.840.113549.1.1.1"  # key transport with PKCS#1 v1.5
RSAES_OAEP = "1.2.840.113549.1.1.7"
MGF1 = "1.2.840.113549.1.1.8"
P_SPECIFIED = "1.2.840.113549.1.1.9"

SHA1 = "1.3.14.3.2.26"
SHA224 = "2.16.840.1.101.3.4.2.4"
SHA256 = "2.16.840.1.101.3.4.2.1"
SHA384 = "2.16.840.1.101.3.4.2.2"
SHA512 = "2.16.840.1.101.3.4.2.3"

AES128_CBC = "2.16.840.1.101.3.4.1.2"
AES192_CBC = "2.16.840.1.101.3.4.1.22"
AES256_CBC = "2.16.840.1.101.3.4.1.42"

AES_CBC_KEY_SIZES = {AES128_CBC: 16, AES192_CBC: 24, AES256_CBC: 32}

NAMES = {
    ENVELOPED_DATA: "envelopedData",
    DATA: "data",
    RSA_ENCRYPTION: "rsaEncryption",
    RSAES_OAEP: "RSAES-OAEP",
    MGF1: "MGF1",
    SHA1: "SHA-1",
    SHA224: "SHA-224",
    SHA256: "SHA-256",
    SHA384: "SHA-384",
    SHA512: "SHA-512",
    AES128_CBC: "AES-128-CBC",
    AES192_CBC: "AES-192-CBC",
    AES256_CBC: "AES-256-CBC",
    "1.2.840.113549.1.7.2": "signedData",
    "1.2.840.113549.1.7.6": "encryptedData",
    "1.2.840.113549.1.9.16.1.23": "authEnvelopedData",
}


def describe(oid: str) -> str:
    """``OID (name)`` when we know a name, so errors are readable and still exact."""
    name = NAMES.get(oid)
    return f"{oid} ({name})" if name else oid
