"""decode(): CMS or plain is decided by the first bytes; plain only when the letter allows it."""

from __future__ import annotations

import hashlib

import pytest

from svarinn_daemon.cms import encrypt_bytes
from svarinn_daemon.errors import NotEnvelopedDataError, TruncatedCmsError
from svarinn_daemon.keys import KeyPair
from svarinn_daemon.letter.decode import decode
from tests.support.keygen import certificate, rsa_key

KEY = rsa_key(0)
PAIR = KeyPair("test", KEY, certificate(KEY))
PLAIN = b"%PDF-1.7 brev\n" * 5000


def _chunks(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


@pytest.mark.parametrize("chunk", [1, 7, 63, 64, 65, 4096])
def test_encrypted_body_is_decrypted_whatever_the_chunking(chunk: int) -> None:
    blob = encrypt_bytes(PLAIN, PAIR.certificate)  # type: ignore[arg-type]
    out = bytearray()
    ticks = []
    decoded = decode(
        iter(_chunks(blob, chunk)),
        keys=[PAIR],
        plain_allowed=False,
        write=out.extend,
        between_chunks=lambda: ticks.append(1),
    )
    assert bytes(out) == PLAIN
    assert decoded.encrypted
    assert decoded.sha256 == hashlib.sha256(PLAIN).hexdigest()
    assert decoded.size == len(PLAIN)
    assert ticks


@pytest.mark.parametrize(("allowed", "accepted"), [(True, True), (False, False)])
def test_plain_body_only_when_the_letter_says_kryptert_false(allowed: bool, accepted: bool) -> None:
    out = bytearray()
    if accepted:
        decoded = decode(
            iter(_chunks(PLAIN, 1000)), keys=[PAIR], plain_allowed=allowed, write=out.extend
        )
        assert bytes(out) == PLAIN
        assert not decoded.encrypted
        assert decoded.sha256 == hashlib.sha256(PLAIN).hexdigest()
    else:
        with pytest.raises(NotEnvelopedDataError, match="kryptert"):
            decode(iter(_chunks(PLAIN, 1000)), keys=[PAIR], plain_allowed=allowed, write=out.extend)
        assert out == b""


def test_truncated_body_is_a_typed_temporary_error() -> None:
    blob = encrypt_bytes(PLAIN, PAIR.certificate)  # type: ignore[arg-type]
    with pytest.raises(TruncatedCmsError) as info:
        decode(
            iter(_chunks(blob[:-100], 999)), keys=[PAIR], plain_allowed=False, write=lambda _b: None
        )
    assert info.value.temporary


def test_empty_body_is_refused() -> None:
    with pytest.raises(NotEnvelopedDataError):
        decode(iter([]), keys=[PAIR], plain_allowed=False, write=lambda _b: None)
