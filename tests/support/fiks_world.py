"""Our side of a Fiks Arkiv set-up on the local Fiks IO, as an operator makes it in KS's
portal: a Maskinporten client with its business certificate, an integration with its
password, a Fiks IO account with its own key pair; the files the adapter's options name; and
the archive's account (a :class:`LocalFiksArkiv`) as the receiver."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support import keygen
from tests.support.fakes.fiksarkiv import LocalFiksArkiv
from tests.support.fakes.fiksio import Konto, LocalFiksIo


@dataclass
class FiksSide:
    fiksio: LocalFiksIo
    archive: LocalFiksArkiv
    konto_id: uuid.UUID
    integration_id: str
    password: str
    client_id: str
    options: dict[str, Any]


def fiks_side(
    fiksio: LocalFiksIo, archive: LocalFiksArkiv, directory: Path, **extra: Any
) -> FiksSide:
    """Register our accounts at the local Fiks IO and write the files; ``options`` is the
    ``[archives.NAME]`` table for the ``fiks-arkiv`` adapter."""
    directory.mkdir(parents=True, exist_ok=True)
    business_key = keygen.rsa_key(11)
    business = keygen.certificate(business_key, cn="virksomhet")
    konto_key = keygen.rsa_key(12)
    konto_cert = keygen.certificate(konto_key, cn="fiksio-konto")
    client_id = f"client-{uuid.uuid4().hex[:8]}"
    integration_id = str(uuid.uuid4())
    password = f"Passord-{uuid.uuid4().hex}"
    konto_id = uuid.uuid4()
    fiksio.add_client(client_id, business)
    fiksio.add_integration(integration_id, password, client_id)
    fiksio.add_konto(Konto(konto_id, integration_id, konto_cert, "svarinn-daemon"))
    files = {
        "virksomhet-key.pem": keygen.key_pem(business_key),
        "virksomhet-chain.pem": keygen.cert_pem(business),
        "konto-key.pem": keygen.key_pem(konto_key),
        "konto-cert.pem": keygen.cert_pem(konto_cert),
        "integrasjon-passord": f"{password}\n".encode(),
    }
    for name, data in files.items():
        (directory / name).write_bytes(data)
        (directory / name).chmod(0o600)
    options: dict[str, Any] = {
        "adapter": "fiks-arkiv",
        "environment": "test",
        "fiks_io_url": fiksio.base_url,
        "amqp_url": fiksio.amqp_url,
        "maskinporten_issuer": fiksio.issuer.rstrip("/"),
        "konto_id": str(konto_id),
        "mottaker_konto_id": str(archive.konto_id),
        "integrasjon_id": integration_id,
        "integrasjon_passord_file": str(directory / "integrasjon-passord"),
        "client_id": client_id,
        "private_key_file": str(directory / "virksomhet-key.pem"),
        "certificate_file": str(directory / "virksomhet-chain.pem"),
        "konto_private_key_file": str(directory / "konto-key.pem"),
        "konto_certificate_file": str(directory / "konto-cert.pem"),
        "arkivdel": "SAK",
        "timeout": "5s",
        **extra,
    }
    return FiksSide(fiksio, archive, konto_id, integration_id, password, client_id, options)
