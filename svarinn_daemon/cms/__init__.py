"""CMS EnvelopedData as SvarUt writes it: streaming encryption and decryption."""

from __future__ import annotations

from svarinn_daemon.cms.ber import CmsLimits
from svarinn_daemon.cms.decrypt import Decryptor
from svarinn_daemon.cms.encrypt import Encryptor, encrypt_bytes
from svarinn_daemon.cms.recipients import RecipientUsed
from svarinn_daemon.cms.sniff import looks_like_enveloped_data

__all__ = [
    "CmsLimits",
    "Decryptor",
    "Encryptor",
    "RecipientUsed",
    "encrypt_bytes",
    "looks_like_enveloped_data",
]
