"""CMS EnvelopedData as SvarUt writes it: streaming encryption and decryption."""

from __future__ import annotations

from svarinn_daemon.cms.encrypt import Encryptor, encrypt_bytes
from svarinn_daemon.cms.sniff import looks_like_enveloped_data

__all__ = ["Encryptor", "encrypt_bytes", "looks_like_enveloped_data"]
