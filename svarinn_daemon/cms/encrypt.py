"""A streaming CMS encryptor that writes exactly what SvarUt writes.

SvarUt (BouncyCastle's streaming CMS generator) produces ContentInfo(envelopedData) in BER
with indefinite lengths, one KeyTransRecipientInfo (issuerAndSerialNumber, RSAES-OAEP with
SHA-256 and MGF1-SHA-256, parameters with explicit NULLs), AES-256-CBC with a random IV, and
the ciphertext as a constructed [0] of 1000-byte OCTET STRING segments. The SvarInn
simulator and the tests need such files of any size without holding them in memory, so this
is sans-I/O like the decryptor: ``feed`` plaintext, get ciphertext back.
"""

from __future__ import annotations

import os

from cryptography import x509
from cryptography.hazmat.primitives import hashes, padding
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.padding import MGF1, OAEP
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from svarinn_daemon.cms import der, oids
from svarinn_daemon.cms.certid import certificate_ids

_INDEFINITE_SEQUENCE = b"\x30\x80"
_INDEFINITE_CONTEXT_0 = b"\xa0\x80"
_END_OF_CONTENTS = b"\x00\x00"
_SHA256_ALG = der.tlv(der.SEQUENCE, der.encode_oid(oids.SHA256) + b"\x05\x00")
_OAEP_SHA256_ALG = der.tlv(
    der.SEQUENCE,
    der.encode_oid(oids.RSAES_OAEP)
    + der.tlv(
        der.SEQUENCE,
        der.tlv(0xA0, _SHA256_ALG)
        + der.tlv(0xA1, der.tlv(der.SEQUENCE, der.encode_oid(oids.MGF1) + _SHA256_ALG)),
    ),
)


class Encryptor:
    """Encrypts a plaintext stream for one certificate in SvarUt's exact shape."""

    def __init__(self, certificate: x509.Certificate, *, segment_size: int = 1000) -> None:
        if segment_size < 1:
            raise ValueError("segment_size must be at least 1")
        public_key = certificate.public_key()
        if not isinstance(public_key, rsa.RSAPublicKey):
            raise TypeError("SvarUt's key transport needs an RSA certificate")
        content_key = os.urandom(32)
        iv = os.urandom(16)
        encrypted_key = public_key.encrypt(
            content_key,
            OAEP(mgf=MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=None),
        )
        ids = certificate_ids(certificate)
        recipient = der.tlv(
            der.SEQUENCE,
            der.encode_integer(0)
            + der.tlv(der.SEQUENCE, ids.issuer_der + der.encode_integer(ids.serial))
            + _OAEP_SHA256_ALG
            + der.tlv(der.OCTET_STRING, encrypted_key),
        )
        self._header: bytes | None = (
            _INDEFINITE_SEQUENCE
            + der.encode_oid(oids.ENVELOPED_DATA)
            + _INDEFINITE_CONTEXT_0
            + _INDEFINITE_SEQUENCE
            + der.encode_integer(0)
            + der.tlv(der.SET, recipient)
            + _INDEFINITE_SEQUENCE
            + der.encode_oid(oids.DATA)
            + der.tlv(der.SEQUENCE, der.encode_oid(oids.AES256_CBC) + der.tlv(der.OCTET_STRING, iv))
            + _INDEFINITE_CONTEXT_0
        )
        self._segment_size = segment_size
        self._segment_header = bytes([der.OCTET_STRING]) + der.encode_length(segment_size)
        self._cipher = Cipher(algorithms.AES(content_key), modes.CBC(iv)).encryptor()
        self._padder = padding.PKCS7(128).padder()
        self._pending = bytearray()
        self._closed = False

    def feed(self, plaintext: bytes) -> bytes:
        """Encrypt more plaintext; returns the ciphertext ready so far (whole segments)."""
        if self._closed:
            raise RuntimeError("feed() after close()")
        self._pending += self._cipher.update(self._padder.update(plaintext))
        return self._take_header() + self._segments(final=False)

    def close(self) -> bytes:
        """Finish: the last segment and the five end-of-contents octet pairs."""
        if self._closed:
            raise RuntimeError("close() called twice")
        self._closed = True
        self._pending += self._cipher.update(self._padder.finalize()) + self._cipher.finalize()
        return self._take_header() + self._segments(final=True) + _END_OF_CONTENTS * 5

    def _take_header(self) -> bytes:
        header, self._header = self._header, None
        return header or b""

    def _segments(self, *, final: bool) -> bytes:
        size = self._segment_size
        pending = self._pending
        full = len(pending) // size * size
        end = len(pending) if final else full
        out = _join_segments(pending, size, full, end, self._segment_header)
        del pending[:end]
        return out


def _join_segments(data: bytearray, size: int, full: int, end: int, header: bytes) -> bytes:
    """``header + segment`` for each whole segment, then one short segment up to ``end``."""
    with memoryview(data) as view:
        parts: list[bytes | memoryview] = []
        for start in range(0, full, size):
            parts.append(header)
            parts.append(view[start : start + size])
        if full < end:
            parts.append(bytes([der.OCTET_STRING]) + der.encode_length(end - full))
            parts.append(view[full:end])
        out = b"".join(parts)
        for part in parts:
            if isinstance(part, memoryview):
                part.release()
    return out


def encrypt_bytes(
    plaintext: bytes, certificate: x509.Certificate, *, segment_size: int = 1000
) -> bytes:
    """Encrypt a whole plaintext in memory (tests, the simulator's small letters)."""
    encryptor = Encryptor(certificate, segment_size=segment_size)
    return encryptor.feed(plaintext) + encryptor.close()
