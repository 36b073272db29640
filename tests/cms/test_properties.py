"""Property tests: any layout and chunking decrypts exactly; damage ends in a CmsError."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from svarinn_daemon.cms import Decryptor, encrypt_bytes
from svarinn_daemon.errors import CmsError
from tests.support.cmshelpers import Identity, nested, primitive, rebuild, segmented

SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

layouts = st.one_of(
    st.just(primitive),
    st.builds(
        segmented,
        st.lists(st.integers(1, 1200), min_size=1, max_size=6),
        definite=st.booleans(),
    ),
    st.builds(nested, st.integers(1, 5), definite=st.booleans()),
)


def chunked(data: bytes, sizes: list[int]) -> list[bytes]:
    out, pos, index = [], 0, 0
    while pos < len(data):
        size = sizes[index % len(sizes)]
        out.append(data[pos : pos + size])
        pos += size
        index += 1
    return out


def decrypt(decryptor: Decryptor, chunks: list[bytes]) -> bytes:
    parts = [decryptor.feed(chunk) for chunk in chunks]
    return b"".join(parts) + decryptor.close()


@SETTINGS
@given(
    plaintext=st.binary(max_size=5000),
    layout=layouts,
    definite=st.booleans(),
    sizes=st.lists(st.integers(1, 3000), min_size=1, max_size=8),
    trailing_zeros=st.integers(0, 20),
)
def test_any_plaintext_layout_and_chunking(
    alice: Identity,
    plaintext: bytes,
    layout: Callable[[bytes], bytes],
    definite: bool,
    sizes: list[int],
    trailing_zeros: int,
) -> None:
    data = rebuild(encrypt_bytes(plaintext, alice.cert), definite=definite, content=layout)
    decryptor = Decryptor([alice.pair])
    out = decrypt(decryptor, chunked(data + bytes(trailing_zeros), sizes))
    assert out == plaintext
    assert decryptor.sha256 == hashlib.sha256(plaintext).hexdigest()
    assert decryptor.size == len(plaintext)


@SETTINGS
@given(
    plaintext=st.binary(min_size=1, max_size=3000),
    cut=st.floats(0, 1, exclude_max=True),
    sizes=st.lists(st.integers(1, 2000), min_size=1, max_size=4),
)
def test_truncation_never_completes(
    alice: Identity, plaintext: bytes, cut: float, sizes: list[int]
) -> None:
    data = encrypt_bytes(plaintext, alice.cert, segment_size=100)
    decryptor = Decryptor([alice.pair])
    returned = []
    try:
        for chunk in chunked(data[: int(len(data) * cut)], sizes):
            returned.append(decryptor.feed(chunk))
        decryptor.close()
    except CmsError:
        assert plaintext.startswith(b"".join(returned))
        assert len(b"".join(returned)) < len(plaintext) or len(plaintext) % 16 == 0
        return
    raise AssertionError("a truncated stream was reported complete")


@SETTINGS
@given(
    plaintext=st.binary(min_size=1, max_size=3000),
    where=st.floats(0, 1, exclude_max=True),
    xor=st.integers(1, 255),
    sizes=st.lists(st.integers(1, 2000), min_size=1, max_size=4),
)
def test_byte_flips_fail_or_report_what_they_return(
    alice: Identity, plaintext: bytes, where: float, xor: int, sizes: list[int]
) -> None:
    """CMS has no integrity check: a flip inside the ciphertext may decrypt to other bytes.

    Then sha256 and size must describe exactly what was returned, so the comparison with
    SvarInn's filmetadata catches it. Everything else must be a CmsError.
    """
    data = bytearray(encrypt_bytes(plaintext, alice.cert, segment_size=500))
    position = int(len(data) * where)
    data[position] ^= xor
    decryptor = Decryptor([alice.pair])
    try:
        out = decrypt(decryptor, chunked(bytes(data), sizes))
    except CmsError:
        return
    assert decryptor.sha256 == hashlib.sha256(out).hexdigest()
    assert decryptor.size == len(out)


@SETTINGS
@given(garbage=st.binary(max_size=3000), sizes=st.lists(st.integers(1, 500), min_size=1))
def test_garbage_is_a_cms_error(alice: Identity, garbage: bytes, sizes: list[int]) -> None:
    decryptor = Decryptor([alice.pair])
    try:
        decrypt(decryptor, chunked(garbage, sizes))
    except CmsError:
        return
    raise AssertionError("garbage decrypted")


@SETTINGS
@given(
    keep=st.floats(0, 1),
    garbage=st.binary(min_size=1, max_size=2000),
    sizes=st.lists(st.integers(1, 700), min_size=1, max_size=4),
)
def test_real_start_then_garbage(
    alice: Identity, keep: float, garbage: bytes, sizes: list[int]
) -> None:
    data = encrypt_bytes(b"x" * 2000, alice.cert)
    spliced = data[: int(len(data) * keep)] + garbage
    decryptor = Decryptor([alice.pair])
    try:
        out = decrypt(decryptor, chunked(spliced, sizes))
    except CmsError:
        return
    # Only possible when the garbage completes the structure, e.g. zero padding after it.
    assert decryptor.sha256 == hashlib.sha256(out).hexdigest()
