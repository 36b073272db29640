"""Fiks IO's wire forms read from hostile input, and the payload's encryption: our CMS opened
by OpenSSL (``openssl cms -decrypt``), OpenSSL's opened by ours."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from svarinn_daemon.errors import FiksIoError
from svarinn_daemon.fiksio.crypto import decrypt_bytes, encrypt_file
from svarinn_daemon.fiksio.messages import (
    MessageSpec,
    parse_public_key,
    parse_sent,
    queue_name,
    received,
)
from svarinn_daemon.keys import KeyPair
from tests.support import keygen
from tests.support.cmshelpers import openssl_encrypt

M, A, S = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()


def test_the_metadata_part_in_ks_names() -> None:
    spec = MessageSpec(A, S, "no.ks.fiks.arkiv.v1.arkivering.arkivmelding.opprett", 3600, M)
    assert spec.to_json() == {
        "avsenderKontoId": str(A),
        "mottakerKontoId": str(S),
        "meldingType": "no.ks.fiks.arkiv.v1.arkivering.arkivmelding.opprett",
        "ttl": 3_600_000,
        "headere": {},
        "klientMeldingId": str(M),
    }
    assert queue_name(A) == f"fiksio.konto.{A}"


def test_headers_with_bytes_or_text() -> None:
    got = received(
        {"melding-id": str(M).encode(), "avsender-id": str(A), "type": b"t.x", "svar-til": str(S)},
        10,
    )
    assert (got.melding_id, got.avsender_konto_id, got.meldingtype, got.svar_til) == (
        M,
        A,
        "t.x",
        S,
    )
    assert got.has_payload
    alone = received({"melding-id": str(M), "avsender-id": str(A), "type": "t"}, 0)
    assert (alone.svar_til, alone.has_payload) == (None, False)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"melding-id": "x", "avsender-id": str(A), "type": "t"},
        {"melding-id": str(M), "avsender-id": str(A)},
        {"melding-id": str(M), "avsender-id": str(A), "type": "t\n"},
        {"melding-id": str(M), "avsender-id": str(A), "type": "t" * 500},
        {"melding-id": str(M), "avsender-id": b"\xff", "type": "t"},
        {"melding-id": str(M), "avsender-id": str(A), "type": "t", "svar-til": 7},
        {"melding-id": 12, "avsender-id": str(A), "type": "t"},
    ],
)
def test_malformed_headers_are_a_typed_error(headers: dict[str, Any]) -> None:
    with pytest.raises(FiksIoError):
        received(headers, 0)


@pytest.mark.parametrize("answer", [None, [], {}, {"meldingId": "nope"}, "text"])
def test_a_send_answer_without_an_id_is_temporary(answer: Any) -> None:
    with pytest.raises(FiksIoError) as caught:
        parse_sent(answer)
    assert caught.value.temporary


@pytest.mark.parametrize(
    "answer", [None, {}, {"nokkel": 5}, {"nokkel": "-----BEGIN CERTIFICATE-----\nx"}]
)
def test_a_catalogue_answer_without_a_certificate_is_refused(answer: Any) -> None:
    with pytest.raises(FiksIoError):
        parse_public_key(answer)


def test_our_payload_opens_with_openssl_and_theirs_with_ours(tmp_path: Path) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed")
    key = keygen.rsa_key(21)
    cert = keygen.certificate(key, cn="mottaker")
    (tmp_path / "key.pem").write_bytes(keygen.key_pem(key))
    (tmp_path / "cert.pem").write_bytes(keygen.cert_pem(cert))
    plain = tmp_path / "plain.asice"
    plain.write_bytes(b"PK\x03\x04" + bytes(range(256)) * 4000)
    with open(tmp_path / "ours.cms", "wb") as out:
        encrypt_file(plain, out, cert)
    opened = subprocess.run(
        [
            openssl,
            "cms",
            "-decrypt",
            "-inform",
            "DER",
            "-in",
            str(tmp_path / "ours.cms"),
            "-inkey",
            str(tmp_path / "key.pem"),
            "-recip",
            str(tmp_path / "cert.pem"),
            "-binary",
        ],
        capture_output=True,
        check=True,
    )
    assert opened.stdout == plain.read_bytes()
    theirs = openssl_encrypt(
        plain,
        tmp_path / "theirs.cms",
        tmp_path / "cert.pem",
        "-aes256",
        *("-keyopt", "rsa_padding_mode:oaep", "-keyopt", "rsa_oaep_md:sha256"),
    )
    pair = KeyPair("mottaker", key, cert)
    assert decrypt_bytes(theirs, [pair], limit=1 << 24) == plain.read_bytes()
    with pytest.raises(FiksIoError, match="larger"):
        decrypt_bytes(theirs, [pair], limit=1000)
    with pytest.raises(FiksIoError, match="cannot be decrypted") as caught:
        decrypt_bytes(b"\x30\x03\x02\x01\x00", [pair], limit=1000)
    assert not caught.value.temporary
