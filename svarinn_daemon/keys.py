"""Private keys and their certificates: the receiver identities SvarUt encrypts for.

Several key pairs can be active at once (key rotation). A certificate is optional: it lets
the decryptor pick the right key by issuer and serial number instead of trying each key.
An expired certificate still decrypts; :func:`certificate_warnings` only reports it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from svarinn_daemon.errors import ConfigError


@dataclass(frozen=True)
class KeyPair:
    """An RSA private key and, when known, its certificate.

    ``label`` says where it came from (a path or credential name), never the key itself.
    """

    label: str
    private_key: rsa.RSAPrivateKey
    certificate: x509.Certificate | None = None

    def __repr__(self) -> str:
        return f"KeyPair(label={self.label!r}, certificate={self.describe_certificate()!r})"

    def describe_certificate(self) -> str | None:
        if self.certificate is None:
            return None
        return (
            f"issuer={self.certificate.issuer.rfc4514_string()} "
            f"serial={self.certificate.serial_number:X}"
        )


def load_key_pair(
    label: str,
    key_pem: bytes,
    *,
    passphrase: bytes | None = None,
    certificate_pem: bytes | None = None,
    key_name: str = "private_key",
    certificate_name: str = "certificate",
) -> KeyPair:
    """Parse a PKCS#1 or PKCS#8 PEM key (optionally encrypted) and its certificate.

    Raises :class:`ConfigError` naming the offending key for every problem.
    """
    try:
        key = serialization.load_pem_private_key(key_pem, password=passphrase)
    except TypeError as exc:
        text = str(exc)
        if "encrypted" in text and passphrase is None:
            raise ConfigError(
                "the private key is encrypted: set passphrase_file, passphrase_env or "
                "passphrase_credential",
                key=key_name,
            ) from None
        raise ConfigError(
            "a passphrase is set but the private key is not encrypted", key=key_name
        ) from None
    except ValueError as exc:
        if passphrase is not None and "password" in str(exc).lower():
            raise ConfigError(
                "the passphrase does not open the private key", key=key_name
            ) from None
        raise ConfigError(
            "not a PEM private key (expected PKCS#1 'RSA PRIVATE KEY' or PKCS#8 'PRIVATE KEY')",
            key=key_name,
        ) from None
    except Exception as exc:  # cryptography raises a few other types for odd input
        raise ConfigError(
            f"cannot load the private key: {type(exc).__name__}", key=key_name
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ConfigError(
            f"the private key is {type(key).__name__.lstrip('_')}, SvarUt uses RSA", key=key_name
        )
    cert: x509.Certificate | None = None
    if certificate_pem is not None:
        try:
            cert = x509.load_pem_x509_certificate(certificate_pem)
        except ValueError:
            raise ConfigError("not a PEM X.509 certificate", key=certificate_name) from None
        cert_key = cert.public_key()
        if (
            not isinstance(cert_key, rsa.RSAPublicKey)
            or cert_key.public_numbers() != key.public_key().public_numbers()
        ):
            raise ConfigError(
                "the certificate does not belong to the private key "
                f"(certificate serial {cert.serial_number:X})",
                key=certificate_name,
            )
    return KeyPair(label=label, private_key=key, certificate=cert)


def certificate_warnings(pair: KeyPair, now: datetime, *, within: timedelta) -> list[str]:
    """Say when a certificate has expired or expires within ``within``."""
    cert = pair.certificate
    if cert is None:
        return []
    expires = cert.not_valid_after_utc
    fingerprint = cert.fingerprint(hashes.SHA256()).hex()[:16]
    if expires <= now:
        return [
            f"{pair.label}: certificate {fingerprint} expired on {expires:%Y-%m-%d}; it still "
            "decrypts, but SvarUt may refuse it for new letters: upload a new one"
        ]
    if expires - now <= within:
        days = (expires - now).days
        return [
            f"{pair.label}: certificate {fingerprint} expires on {expires:%Y-%m-%d} "
            f"(in {days} days): make a new key pair and upload its certificate to SvarUt"
        ]
    return []
