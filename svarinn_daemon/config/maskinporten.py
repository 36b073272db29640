"""The Maskinporten client in a table of options, read the same way for every user of Fiks
(the ``fiks-sms`` notifier, the ``fiks-arkiv`` adapter): ``client_id``, ``private_key_*``
(+ ``passphrase_*``), exactly one of ``certificate_*`` (the business certificate chain, sent
as x5c) and ``kid`` (a key registered with Maskinporten), ``scope`` and
``maskinporten_issuer``."""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from svarinn_daemon.config.reader import OptionReader
from svarinn_daemon.errors import ConfigError
from svarinn_daemon.keys import load_key_pair
from svarinn_daemon.maskinporten import ISSUERS, MaskinportenClient

__all__ = ["read_maskinporten"]


def read_maskinporten(read: OptionReader, environment: str) -> MaskinportenClient:
    issuer = read.url("maskinporten_issuer", ISSUERS[environment]) + "/"
    key_secret = read.secret("private_key", required=True)
    assert key_secret is not None
    passphrase = read.secret("passphrase", required=False)
    cert_secret = read.secret("certificate", required=False)
    kid = read.string("kid", "") or None
    if (cert_secret is None) == (kid is None):
        raise read.error(
            "certificate",
            "set exactly one of certificate_file (the business certificate chain, sent as "
            "x5c) and kid (a key id registered with Maskinporten)",
        )
    try:
        pair = load_key_pair(
            key_secret.source,
            key_secret.reveal_bytes(),
            passphrase=passphrase.reveal_bytes() if passphrase else None,
            key_name="",
        )
    except ConfigError as exc:
        kind = key_secret.source.split(":", 1)[0]
        raise read.error(
            "private_key" if kind == "inline" else f"private_key_{kind}", str(exc)
        ) from None
    chain = _chain(read, cert_secret.reveal_bytes(), pair.private_key) if cert_secret else ()
    return MaskinportenClient(
        issuer=issuer,
        client_id=read.string("client_id"),
        scope=read.string("scope", "ks:fiks"),
        key=pair.private_key,
        chain=chain,
        kid=kid,
    )


def _chain(read: OptionReader, pem: bytes, key: rsa.RSAPrivateKey) -> tuple[x509.Certificate, ...]:
    try:
        chain = tuple(x509.load_pem_x509_certificates(pem))
    except ValueError:
        raise read.error("certificate", "is not a PEM certificate chain") from None
    leaf_key = chain[0].public_key()
    if (
        not isinstance(leaf_key, rsa.RSAPublicKey)
        or leaf_key.public_numbers() != key.public_key().public_numbers()
    ):
        raise read.error(
            "certificate", "the first certificate is not the private key's (leaf first)"
        )
    return chain
