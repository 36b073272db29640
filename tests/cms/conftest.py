"""Fixtures for the CMS tests: real RSA-2048 identities (made once per session) on disk."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from svarinn_daemon.keys import KeyPair, load_key_pair
from tests.support.cmshelpers import Identity


def _make(directory: Path, name: str, *, expired: bool = False, ski: bool = True) -> Identity:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "NO"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Testkommune"),
            x509.NameAttribute(NameOID.COMMON_NAME, name),
        ]
    )
    now = datetime.datetime.now(datetime.UTC)
    start = now - datetime.timedelta(days=800 if expired else 1)
    end = now - datetime.timedelta(days=400) if expired else now + datetime.timedelta(days=365)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
    )
    if ski:
        builder = builder.add_extension(
            x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
        )
    cert = builder.sign(key, hashes.SHA256())
    key_path = directory / f"{name}.key.pem"
    cert_path = directory / f"{name}.cert.pem"
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_path.write_bytes(key_pem)
    cert_path.write_bytes(cert_pem)
    pair = load_key_pair(name, key_pem, certificate_pem=cert_pem)
    return Identity(name, key, cert, key_path, cert_path, pair)


@pytest.fixture(scope="session")
def identities(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Identity]:
    """``identities("alice")``: the same identity for the same name, made once per session."""
    directory = tmp_path_factory.mktemp("identities")
    cache: dict[str, Identity] = {}

    def get(name: str) -> Identity:
        if name not in cache:
            cache[name] = _make(
                directory, name, expired=name.startswith("expired"), ski=not name.endswith("noski")
            )
        return cache[name]

    return get


@pytest.fixture(scope="session")
def alice(identities: Callable[[str], Identity]) -> Identity:
    return identities("alice")


@pytest.fixture(scope="session")
def conformance_pair(conformance_dir: Path) -> KeyPair:
    return load_key_pair(
        "conformance",
        (conformance_dir / "privatekey.pem").read_bytes(),
        certificate_pem=(conformance_dir / "certificate.pem").read_bytes(),
    )
