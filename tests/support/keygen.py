"""Test key pairs and certificates made with ``cryptography`` (cached per process)."""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID


@functools.cache
def rsa_key(index: int = 0, bits: int = 2048) -> rsa.RSAPrivateKey:
    """A deterministic-per-index RSA key for the test run (generated once)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def certificate(
    key: rsa.RSAPrivateKey,
    *,
    cn: str = "svarinn-daemon-test",
    serial: int = 0x1234ABCD,
    not_after: datetime | None = None,
) -> x509.Certificate:
    now = datetime.now(UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(not_after or now + timedelta(days=365))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )


def key_pem(key: rsa.RSAPrivateKey, passphrase: bytes | None = None, pkcs8: bool = False) -> bytes:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase)
        if passphrase
        else serialization.NoEncryption()
    )
    fmt = (
        serialization.PrivateFormat.PKCS8
        if pkcs8 or passphrase
        else serialization.PrivateFormat.TraditionalOpenSSL
    )
    return key.private_bytes(serialization.Encoding.PEM, fmt, encryption)


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)
