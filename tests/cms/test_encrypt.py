"""The encryptor writes SvarUt's exact shape, and openssl opens what it writes."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography import x509

from svarinn_daemon.cms import Encryptor, encrypt_bytes, looks_like_enveloped_data


def _asn1_shape(path: Path) -> list[str]:
    """openssl asn1parse lines without the hex dumps (values differ, structure must not)."""
    out = subprocess.run(
        ["openssl", "asn1parse", "-inform", "DER", "-i", "-in", str(path)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return [line.split("[HEX DUMP]")[0] for line in out.splitlines()]


@pytest.fixture(scope="module")
def conformance_cert(conformance_dir: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate((conformance_dir / "certificate.pem").read_bytes())


def test_same_shape_as_svarut(
    conformance_dir: Path, conformance_cert: x509.Certificate, tmp_path: Path
) -> None:
    plaintext = (conformance_dir / "small.pdf").read_bytes()
    ours = tmp_path / "ours.crypt"
    ours.write_bytes(encrypt_bytes(plaintext, conformance_cert))
    assert _asn1_shape(ours) == _asn1_shape(conformance_dir / "small.crypt")


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")
@pytest.mark.parametrize("size", [0, 1, 15, 16, 999, 1000, 1001, 70_000])
def test_openssl_decrypts_streamed_output(
    conformance_dir: Path, conformance_cert: x509.Certificate, tmp_path: Path, size: int
) -> None:
    plaintext = bytes(i * 7 % 251 for i in range(size))
    encryptor = Encryptor(conformance_cert, segment_size=1000)
    parts = [encryptor.feed(plaintext[i : i + 333]) for i in range(0, size, 333)]
    parts.append(encryptor.close())
    path = tmp_path / "x.crypt"
    path.write_bytes(b"".join(parts))
    out = subprocess.run(
        [
            "openssl", "cms", "-decrypt", "-inform", "DER", "-in", str(path),
            "-recip", str(conformance_dir / "certificate.pem"),
            "-inkey", str(conformance_dir / "privatekey.pem"),
        ],
        check=True,
        capture_output=True,
    ).stdout  # fmt: skip
    assert out == plaintext


def test_sniffer() -> None:
    assert not looks_like_enveloped_data(b"%PDF-1.7\n")
    assert not looks_like_enveloped_data(b"PK\x03\x04")
    assert not looks_like_enveloped_data(b"")
    assert not looks_like_enveloped_data(b"\x30\x80\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x07\x02")
    assert looks_like_enveloped_data(b"\x30\x80\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x07\x03\xa0")
    assert looks_like_enveloped_data(
        b"\x30\x82\x10\x00\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x07\x03"
    )
