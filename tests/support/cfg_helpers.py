"""Build real configuration directories (keys, certificates, password files) for tests."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

from svarinn_daemon.cli import main
from tests.support.keygen import cert_pem, certificate, key_pem, rsa_key

PASSWORD = "s3cret-Passw0rd!"


@dataclass
class ConfigDir:
    root: Path

    @property
    def path(self) -> Path:
        return self.root / "config.toml"

    def write(self, text: str) -> Path:
        self.path.write_text(text)
        return self.path


def make_config_dir(root: Path, *, extra_account: str = "", top: str = "") -> ConfigDir:
    """A valid config with one account, its password file, key and certificate."""
    key = rsa_key(0)
    (root / "key.pem").write_bytes(key_pem(key))
    (root / "key.pem").chmod(0o600)
    (root / "cert.pem").write_bytes(cert_pem(certificate(key)))
    (root / "password").write_text(PASSWORD + "\n")
    cfg = ConfigDir(root)
    cfg.write(
        f"""{top}
state_directory = "{root / "state"}"

[[accounts]]
name = "kommune"
username = "mottaker-1"
password_file = "password"
{extra_account}

[[accounts.keys]]
private_key_file = "key.pem"
certificate_file = "cert.pem"
"""
    )
    return cfg


def run_cli(*argv: str, environ: dict[str, str] | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), environ=environ or {}, stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()
