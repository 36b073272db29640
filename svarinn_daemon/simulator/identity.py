"""A receiver identity for the simulator, and files that point the daemon at it.

Real letters are encrypted for the certificate the kommune uploaded to SvarUt; the
simulator needs one too. Without ``--certificate`` it makes a throwaway RSA-2048 key pair,
and ``--write-config DIR`` writes it with a password file and a config.toml that
``svarinn-daemon --config DIR/config.toml check-config`` accepts.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

__all__ = ["OperatorFiles", "ReceiverIdentity", "generate_identity", "write_operator_files"]


@dataclass(frozen=True)
class ReceiverIdentity:
    certificate: x509.Certificate
    private_key_pem: bytes | None  # None when only a certificate was given

    @property
    def certificate_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def __repr__(self) -> str:
        return f"ReceiverIdentity(serial={self.certificate.serial_number:X})"


@dataclass(frozen=True)
class OperatorFiles:
    config: Path
    password: Path
    certificate: Path
    private_key: Path | None


def generate_identity(common_name: str = "svarinn-simulator") -> ReceiverIdentity:
    """A fresh RSA-2048 key and a self-signed certificate valid for a year."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return ReceiverIdentity(certificate=certificate, private_key_pem=pem)


def _toml(text: str) -> str:
    """A TOML basic string (JSON's escapes are a subset TOML accepts)."""
    return json.dumps(text, ensure_ascii=False)


def _http_table(ca_bundle: Path | None) -> str:
    if ca_bundle is None:
        return ""
    return (
        "\n[accounts.http]\n"
        "# the simulator's throwaway CA (simulator --tls): verification stays on\n"
        f"ca_bundle = {_toml(str(ca_bundle.resolve()))}\n"
    )


def _write_private(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Write ``path`` anew, never through a symbolic link planted in its place (the
    directory may be shared, and a link would make us write a key or password elsewhere)."""
    with contextlib.suppress(FileNotFoundError):
        if path.is_symlink():
            path.unlink()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, mode)
    with os.fdopen(fd, "wb") as handle:
        os.fchmod(handle.fileno(), mode)
        handle.write(data)


def _filesystem_table(directory: Path) -> str:
    return f"""[archives.default]
adapter = "filesystem"
root = {_toml(str((directory / "archive").resolve()))}
"""


def write_operator_files(
    directory: Path,
    *,
    base_url: str,
    username: str,
    password: str,
    identity: ReceiverIdentity,
    account: str = "simulator",
    ca_bundle: Path | None = None,
    api: str = "v2",
    archive_table: str | None = None,
) -> OperatorFiles:
    """Key, certificate, password file and a config.toml for the daemon, in ``directory``;
    ``ca_bundle`` (the simulator's TLS CA) goes into the account's ``[accounts.http]``.
    ``base_url`` is the simulator's (``scheme://host:port``); for ``api = "v2"`` the
    account's is its V2 base under it (``<base_url>/api``). ``archive_table`` replaces the
    filesystem archive (``[archives.default]`` and its keys)."""
    if api == "v2":
        base_url = f"{base_url.rstrip('/')}/api"
    directory.mkdir(parents=True, exist_ok=True)
    password_path = directory / "svarinn-password"
    _write_private(password_path, password.encode("utf-8") + b"\n")
    certificate_path = directory / "certificate.pem"
    _write_private(certificate_path, identity.certificate_pem, 0o644)
    key_path: Path | None = None
    key_lines = ""
    if identity.private_key_pem is not None:
        key_path = directory / "private-key.pem"
        _write_private(key_path, identity.private_key_pem)
        key_lines = 'private_key_file = "private-key.pem"\n'
    else:
        key_lines = (
            "# the certificate came from --certificate: point this at its private key\n"
            'private_key_file = "/path/to/private-key.pem"\n'
        )
    config_path = directory / "config.toml"
    _write_private(
        config_path,
        f"""# Written by `svarinn-daemon simulator --write-config`: a daemon configuration
# that talks to the simulator at {base_url}. Relative paths are relative to this file.
state_directory = "state"

[ledger]
url = {_toml("sqlite:///" + str((directory / "state" / "ledger.sqlite3").resolve()))}

{archive_table or _filesystem_table(directory)}

[[accounts]]
name = {_toml(account)}
api = {_toml(api)}
base_url = {_toml(base_url)}
username = {_toml(username)}
password_file = "svarinn-password"
archive = "default"

{_http_table(ca_bundle)}
[[accounts.keys]]
{key_lines}certificate_file = "certificate.pem"
""".encode(),
        0o644,
    )
    (directory / "state").mkdir(exist_ok=True)
    (directory / "archive").mkdir(exist_ok=True)
    return OperatorFiles(
        config=config_path,
        password=password_path,
        certificate=certificate_path,
        private_key=key_path,
    )
