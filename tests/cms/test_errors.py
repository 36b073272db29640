"""Every bad input ends in a specific CmsError that says what and where."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from svarinn_daemon.cms import CmsLimits, Decryptor, der, encrypt_bytes
from svarinn_daemon.errors import (
    CmsError,
    CmsLimitExceededError,
    ConfigError,
    KeyUnwrapError,
    MalformedCmsError,
    NoMatchingRecipientError,
    NotEnvelopedDataError,
    PaddingError,
    Retry,
    TrailingDataError,
    TruncatedCmsError,
    UnsupportedAlgorithmError,
)
from svarinn_daemon.keys import KeyPair
from tests.support.cmshelpers import (
    Identity,
    decrypt_chunked,
    nested,
    openssl_encrypt,
    primitive,
    rebuild,
    segmented,
)

PLAINTEXT = bytes(range(256)) * 20


@pytest.fixture(scope="module")
def letter(alice: Identity) -> bytes:
    return encrypt_bytes(PLAINTEXT, alice.cert)


def run(
    data: bytes, keys: list[KeyPair], chunk: int = 1000, limits: CmsLimits | None = None
) -> bytes:
    decryptor = Decryptor(keys, limits=limits)
    out = [decryptor.feed(data[i : i + chunk]) for i in range(0, len(data), chunk)]
    return b"".join(out) + decryptor.close()


@pytest.mark.parametrize(
    "data",
    [b"%PDF-1.7\n" + bytes(100), b"PK\x03\x04" + bytes(100), b"\x04\x00", b"\x30\x03\x02\x01\x00"],
)
def test_not_cms(alice: Identity, data: bytes) -> None:
    with pytest.raises(NotEnvelopedDataError):
        run(data, [alice.pair])


def test_other_cms_content_type(alice: Identity) -> None:
    signed = der.tlv(0x30, der.encode_oid("1.2.840.113549.1.7.2") + der.tlv(0xA0, b"\x30\x00"))
    with pytest.raises(NotEnvelopedDataError, match="signedData"):
        run(signed, [alice.pair])


def test_empty_input_is_truncated(alice: Identity) -> None:
    with pytest.raises(TruncatedCmsError, match="offset 0"):
        run(b"", [alice.pair])


def test_unsupported_content_cipher(alice: Identity, tmp_path: Path) -> None:
    plain = tmp_path / "p"
    plain.write_bytes(PLAINTEXT)
    data = openssl_encrypt(plain, tmp_path / "x", alice.cert_path, "-des3")
    with pytest.raises(UnsupportedAlgorithmError) as caught:
        run(data, [alice.pair])
    assert caught.value.oid == "1.2.840.113549.3.7"
    assert "1.2.840.113549.3.7" in str(caught.value)


def test_unsupported_key_transport(alice: Identity, letter: bytes) -> None:
    oaep = der.encode_oid("1.2.840.113549.1.1.7")
    pss = der.encode_oid("1.2.840.113549.1.1.10")
    assert letter.count(oaep) == 1
    assert len(pss) == len(oaep)
    with pytest.raises(UnsupportedAlgorithmError) as caught:
        run(letter.replace(oaep, pss), [alice.pair])
    assert caught.value.oid == "1.2.840.113549.1.1.10"


@pytest.mark.parametrize("cut", [1, 2, 13, 200, 400, 450, 1500, -30, -10, -1])
def test_truncated(alice: Identity, letter: bytes, cut: int) -> None:
    with pytest.raises(TruncatedCmsError):
        run(letter[:cut], [alice.pair], chunk=7)


def test_trailing_garbage(alice: Identity, letter: bytes) -> None:
    with pytest.raises(TrailingDataError, match=f"offset {len(letter) + 3}"):
        run(letter + b"\x00\x00\x00garbage", [alice.pair])


def test_bad_padding(alice: Identity, letter: bytes) -> None:
    # The byte 17 before the end of the ciphertext is the last byte of the previous block:
    # flipping it flips the pad-length byte of the final plaintext block.
    position = len(letter) - 10 - 17
    corrupt = letter[:position] + bytes([letter[position] ^ 0xFF]) + letter[position + 1 :]
    with pytest.raises(PaddingError):
        run(corrupt, [alice.pair])


def test_ciphertext_not_whole_blocks(alice: Identity, letter: bytes) -> None:
    data = rebuild(letter, definite=False, content=lambda c: primitive(c[:-1]))
    with pytest.raises(MalformedCmsError, match="multiple of the 16-byte block"):
        run(data, [alice.pair])


def test_empty_content(alice: Identity, letter: bytes) -> None:
    data = rebuild(letter, definite=True, content=lambda c: primitive(b""))
    with pytest.raises(MalformedCmsError, match="empty"):
        run(data, [alice.pair])


def test_detached_content(alice: Identity, letter: bytes) -> None:
    data = rebuild(letter, definite=True, content=lambda c: b"")
    with pytest.raises(MalformedCmsError, match="detached"):
        run(data, [alice.pair])


def test_foreign_tag_inside_content(alice: Identity, letter: bytes) -> None:
    def second_segment_an_integer(ciphertext: bytes) -> bytes:
        # Changed where it is, not found by its bytes: "04 64" may also occur in the random
        # encrypted key before it (18 of 4,000 letters made), which then fails to unwrap.
        content = segmented([100], tag=0xA0)(ciphertext)
        second = 2 + 2 + 100  # after "a0 80" and the first segment's "04 64" and 100 bytes
        assert content[second : second + 2] == b"\x04\x64"
        return content[:second] + b"\x02" + content[second + 1 :]

    bad = rebuild(letter, definite=False, content=second_segment_an_integer)
    with pytest.raises(MalformedCmsError, match="tag 0x02"):
        run(bad, [alice.pair])


def test_segment_past_its_constructed_string(alice: Identity, letter: bytes) -> None:
    inner = segmented([64], definite=True)(b"x" * 64)  # a0 42 04 40 ...
    lying = b"\xa0\x42\x04\x41" + inner[4:]
    data = rebuild(letter, definite=False, content=lambda c: lying)
    with pytest.raises(MalformedCmsError, match="runs past"):
        run(data, [alice.pair])


def test_nesting_limit(alice: Identity, letter: bytes) -> None:
    assert run(rebuild(letter, definite=False, content=nested(10, definite=False)), [alice.pair])
    with pytest.raises(CmsLimitExceededError, match="nested deeper"):
        run(rebuild(letter, definite=False, content=nested(40, definite=False)), [alice.pair])


def test_length_field_limit(alice: Identity) -> None:
    with pytest.raises(CmsLimitExceededError, match="length field of 9 octets"):
        run(b"\x30\x89" + bytes(9), [alice.pair])


def test_header_size_limit(alice: Identity, letter: bytes) -> None:
    with pytest.raises(CmsLimitExceededError, match="before the encrypted content"):
        run(letter, [alice.pair], limits=CmsLimits(max_header_bytes=200))


def test_huge_declared_recipient_set_is_refused_before_buffering(alice: Identity) -> None:
    head = b"\x30\x80" + der.encode_oid("1.2.840.113549.1.7.3") + b"\xa0\x80\x30\x80\x02\x01\x00"
    with pytest.raises(CmsLimitExceededError):
        run(head + b"\x31\x84\x7f\xff\xff\xff", [alice.pair])


def test_recipient_limit(alice: Identity, letter: bytes) -> None:
    with pytest.raises(CmsLimitExceededError, match="recipients"):
        run(letter, [alice.pair], limits=CmsLimits(max_recipients=0))


def test_key_that_does_not_fit_its_certificate(
    alice: Identity, identities: Callable[[str], Identity], letter: bytes
) -> None:
    bob = identities("bob")
    liar = KeyPair(label="liar", private_key=bob.key, certificate=alice.cert)
    with pytest.raises(KeyUnwrapError, match="liar"):
        run(letter, [liar])


def test_wrong_keys(alice: Identity, identities: Callable[[str], Identity], letter: bytes) -> None:
    bob, carol = identities("bob"), identities("carol")
    with pytest.raises(NoMatchingRecipientError) as caught:
        run(letter, [bob.pair, carol.bare])
    message = str(caught.value)
    assert f"serial={alice.cert.serial_number:X}" in message
    assert "CN=alice" in message
    assert "CN=bob" in message
    assert "carol-bare: no certificate" in message


def test_failed_decryptor_keeps_failing(alice: Identity, letter: bytes) -> None:
    decryptor = Decryptor([alice.pair])
    with pytest.raises(TrailingDataError) as first:
        decryptor.feed(letter + b"\x01")
    for call in (lambda: decryptor.feed(b""), decryptor.close):
        with pytest.raises(TrailingDataError) as again:
            call()
        assert again.value is first.value


def test_api_misuse(alice: Identity, letter: bytes) -> None:
    with pytest.raises(ConfigError):
        Decryptor([])
    decryptor = Decryptor([alice.pair])
    decryptor.feed(letter)
    with pytest.raises(RuntimeError):
        _ = decryptor.sha256
    decryptor.close()
    with pytest.raises(RuntimeError):
        decryptor.feed(b"")


@pytest.mark.parametrize("definite", [True, False])
@pytest.mark.parametrize(
    "layout",
    [
        primitive,
        segmented([1]),
        segmented([1, 2, 3, 1000, 16]),
        segmented([1000], definite=True),
        nested(3, definite=True),
        nested(3, definite=False),
    ],
    ids=["primitive", "1-byte", "mixed", "definite-1000", "nested-definite", "nested-indef"],
)
def test_any_valid_layout(
    alice: Identity, letter: bytes, definite: bool, layout: Callable[[bytes], bytes]
) -> None:
    data = rebuild(letter, definite=definite, content=layout)
    for chunk in (1, 5, 4096):
        out, _ = decrypt_chunked(data, [alice.pair], chunk)
        assert out == PLAINTEXT


def test_all_errors_are_cms_errors() -> None:
    for error in (
        NotEnvelopedDataError, UnsupportedAlgorithmError, NoMatchingRecipientError,
        KeyUnwrapError, MalformedCmsError, CmsLimitExceededError, TruncatedCmsError,
        PaddingError, TrailingDataError,
    ):  # fmt: skip
        assert issubclass(error, CmsError)
    assert TruncatedCmsError.retry is Retry.DOWNLOAD_AGAIN
    assert PaddingError.retry is Retry.DOWNLOAD_AGAIN
    assert CmsLimitExceededError.retry is Retry.NEVER


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (bytes.fromhex("2a864886f70d010703"), "1.2.840.113549.1.7.3"),
        (bytes.fromhex("608648016503040102"), "2.16.840.1.101.3.4.1.2"),
        (bytes.fromhex("2a864886f70d0107"), "1.2.840.113549.1.7"),
        (bytes.fromhex("2a864886f70d0187"), MalformedCmsError),  # last arc cut short
        (bytes.fromhex("2a") * 65, CmsLimitExceededError),
    ],
)
def test_object_identifiers(content: bytes, expected: str | type[Exception]) -> None:
    """Dotted text, remembered per content: asked twice, the same answer or error."""
    element = der.Element(der.OBJECT_IDENTIFIER, False, b"", content, ())
    for _ in range(2):
        if isinstance(expected, str):
            assert der.decode_oid(element, "oid") == expected
        else:
            with pytest.raises(expected):
                der.decode_oid(element, "oid")
