"""Key rotation, encrypted PEM keys, and keys without certificates."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives import serialization

from svarinn_daemon.cms import encrypt_bytes
from svarinn_daemon.errors import NoMatchingRecipientError
from svarinn_daemon.keys import load_key_pair
from tests.support.cmshelpers import Identity, decrypt_chunked


def test_rotation_letter_for_the_old_key(identities: Callable[[str], Identity]) -> None:
    old, new = identities("rotation-old"), identities("rotation-new")
    plaintext = os.urandom(5000)
    for target in (old, new):
        data = encrypt_bytes(plaintext, target.cert)
        for keys in ([new.pair, old.pair], [old.pair, new.pair]):
            out, decryptor = decrypt_chunked(data, keys, 1000)
            assert out == plaintext
            assert decryptor.recipient is not None
            assert decryptor.recipient.key_label == target.name


def test_rotation_with_keys_without_certificates(identities: Callable[[str], Identity]) -> None:
    old, new = identities("rotation-old"), identities("rotation-new")
    plaintext = os.urandom(100)
    out, decryptor = decrypt_chunked(encrypt_bytes(plaintext, old.cert), [new.bare, old.bare], 7)
    assert out == plaintext
    assert decryptor.recipient is not None
    assert decryptor.recipient.key_label == "rotation-old-bare"


def test_certificate_match_is_preferred_over_trial(identities: Callable[[str], Identity]) -> None:
    old, new = identities("rotation-old"), identities("rotation-new")
    data = encrypt_bytes(b"letter", old.cert)
    _, decryptor = decrypt_chunked(data, [new.bare, old.pair], 100)
    assert decryptor.recipient is not None
    assert decryptor.recipient.matched_by == "issuerAndSerialNumber"


@pytest.mark.parametrize(
    "fmt", [serialization.PrivateFormat.PKCS8, serialization.PrivateFormat.TraditionalOpenSSL]
)
def test_encrypted_pem_keys(alice: Identity, fmt: serialization.PrivateFormat) -> None:
    pem = alice.key.private_bytes(
        serialization.Encoding.PEM, fmt, serialization.BestAvailableEncryption(b"hemmelig")
    )
    assert b"ENCRYPTED" in pem
    pair = load_key_pair(
        "encrypted",
        pem,
        passphrase=b"hemmelig",
        certificate_pem=alice.cert_path.read_bytes(),
    )
    plaintext = os.urandom(2048)
    out, _ = decrypt_chunked(encrypt_bytes(plaintext, alice.cert), [pair], 1000)
    assert out == plaintext


def test_letter_for_nobody_we_know(identities: Callable[[str], Identity]) -> None:
    stranger = identities("stranger")
    data = encrypt_bytes(b"not for us", stranger.cert)
    with pytest.raises(NoMatchingRecipientError, match="CN=stranger"):
        decrypt_chunked(data, [identities("alice").pair, identities("bob").bare], 1000)
