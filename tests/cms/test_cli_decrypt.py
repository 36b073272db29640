"""``svarinn-daemon decrypt``: files, pipes, several keys, and no OUT on failure."""

from __future__ import annotations

import hashlib
import io
import os
import stat
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from svarinn_daemon.cli import main
from svarinn_daemon.cms import encrypt_bytes
from tests.support.cmshelpers import Identity


def cli(*argv: str) -> tuple[int, str]:
    err = io.StringIO()
    code = main(["decrypt", *argv], environ={}, stdout=io.StringIO(), stderr=err)
    return code, err.getvalue()


def test_conformance_file_to_out(conformance_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "test.pdf"
    code, err = cli(
        "--key", str(conformance_dir / "privatekey.pem"),
        "--cert", str(conformance_dir / "certificate.pem"),
        str(conformance_dir / "test.crypt"), "-o", str(out),
    )  # fmt: skip
    assert code == 0, err
    assert out.read_bytes() == (conformance_dir / "test.pdf").read_bytes()
    assert "decrypted 3183789 bytes" in err
    assert "2c36b627f6160abe2ad5c625c90e24185055c6c1557adc4bb94922d5b6204868" in err
    assert oct(out.stat().st_mode & 0o777) == "0o600"
    assert not (tmp_path / "test.pdf.part").exists()


def test_stdin_to_stdout(conformance_dir: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "svarinn_daemon",
            "decrypt",
            "--key",
            str(conformance_dir / "privatekey.pem"),
        ],
        input=(conformance_dir / "dokumenter.crypt").read_bytes(),
        capture_output=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == (conformance_dir / "dokumenter.zip").read_bytes()
    assert b"9a71850e8f9e4e0269b37caf8640bca85d4f56147b9e3cae0e8b07b6f98d80a0" in result.stderr


@pytest.mark.parametrize("damage", ["truncate", "foreign"])
def test_failure_leaves_no_out(conformance_dir: Path, tmp_path: Path, damage: str) -> None:
    source = tmp_path / "in.crypt"
    if damage == "truncate":
        source.write_bytes((conformance_dir / "test.crypt").read_bytes()[:2_000_000])
    else:
        source.write_bytes((conformance_dir / "id.crypt").read_bytes())
    out = tmp_path / "out.pdf"
    code, err = cli("--key", str(conformance_dir / "privatekey.pem"), str(source), "-o", str(out))
    assert code == 1
    assert ("TruncatedCmsError" if damage == "truncate" else "3302B7BB") in err
    assert list(tmp_path.iterdir()) == [source]


def test_several_keys_with_passphrase_file(
    identities: Callable[[str], Identity], tmp_path: Path
) -> None:
    old, new = identities("cli-old"), identities("cli-new")
    encrypted = tmp_path / "old.key.pem"
    encrypted.write_bytes(
        old.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"passord"),
        )
    )
    passphrase = tmp_path / "passphrase"
    passphrase.write_bytes(b"passord\n")
    plaintext = os.urandom(70_000)
    letter = tmp_path / "letter.crypt"
    letter.write_bytes(encrypt_bytes(plaintext, old.cert))
    out = tmp_path / "letter.bin"
    code, err = cli(
        "--key", str(new.key_path), "--cert", str(new.cert_path),
        "--key", str(encrypted), "--cert", str(old.cert_path),
        "--passphrase-file", str(passphrase),
        str(letter), "-o", str(out),
    )  # fmt: skip
    assert code == 0, err
    assert out.read_bytes() == plaintext
    assert hashlib.sha256(plaintext).hexdigest() in err
    assert "CN=cli-old" in err


def test_usage_errors(conformance_dir: Path, tmp_path: Path) -> None:
    key = str(conformance_dir / "privatekey.pem")
    cert = str(conformance_dir / "certificate.pem")
    code, err = cli("--key", key, "--cert", cert, "--cert", cert, str(tmp_path / "x"))
    assert code == 2
    assert "2 --cert for 1 --key" in err
    code, err = cli("--key", key, str(tmp_path / "missing.crypt"), "-o", str(tmp_path / "o"))
    assert code == 2
    assert "missing.crypt" in err
    code, err = cli("--key", str(tmp_path / "nokey.pem"), str(tmp_path / "x"))
    assert code == 2
    assert "nokey.pem" in err


@pytest.mark.parametrize("damage", [None, "truncate"])
def test_a_planted_part_link_or_file_is_left_alone(
    conformance_dir: Path, tmp_path: Path, damage: str | None
) -> None:
    """A neighbour's symlink at OUT.part is not followed (its target neither overwritten
    nor truncated), and a world-writable OUT.part of theirs does not become the output."""
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"precious")
    out = tmp_path / "out.pdf"
    (tmp_path / "out.pdf.part").symlink_to(victim)
    planted = tmp_path / ".out.pdf.part"
    planted.write_bytes(b"theirs")
    planted.chmod(0o666)
    source = conformance_dir / "test.crypt"
    if damage == "truncate":
        source = tmp_path / "in.crypt"
        source.write_bytes((conformance_dir / "test.crypt").read_bytes()[:2_000_000])
    code, err = cli("--key", str(conformance_dir / "privatekey.pem"), str(source), "-o", str(out))
    assert victim.read_bytes() == b"precious"
    assert (tmp_path / "out.pdf.part").is_symlink()
    assert planted.read_bytes() == b"theirs"
    leftovers = {p.name for p in tmp_path.iterdir()} - {
        "victim.txt", "out.pdf.part", ".out.pdf.part", "in.crypt", "out.pdf"
    }  # fmt: skip
    assert leftovers == set()
    if damage is None:
        assert code == 0, err
        assert out.read_bytes() == (conformance_dir / "test.pdf").read_bytes()
        assert not out.is_symlink()
        assert oct(out.stat().st_mode & 0o777) == "0o600"
    else:
        assert code == 1
        assert not out.exists()


def test_an_existing_device_or_fifo_is_written_into_not_replaced(
    conformance_dir: Path, tmp_path: Path
) -> None:
    """``-o /dev/null`` must not turn /dev/null into a file: a character device (a null
    device node made here) and a FIFO take the plaintext in place."""
    key = str(conformance_dir / "privatekey.pem")
    source = str(conformance_dir / "test.crypt")
    expected = (conformance_dir / "test.pdf").read_bytes()
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
    reader.start()
    code, err = cli("--key", key, source, "-o", str(fifo))
    reader.join(timeout=30)
    assert code == 0, err
    assert received == [expected]
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    null = tmp_path / "null"
    try:
        os.mknod(null, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("making a device node needs root")
    code, err = cli("--key", key, source, "-o", str(null))
    assert code == 0, err
    assert stat.S_ISCHR(null.stat().st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["null", "pipe"]
