"""Tell an encrypted SvarInn body from a plain one by its first bytes.

SvarInn's ``kryptert`` flag has not always been reliable, so the pipeline looks at the
body itself: a ContentInfo SEQUENCE whose first element is the envelopedData OID.
"""

from __future__ import annotations

from svarinn_daemon.cms import der, oids

_ENVELOPED_DATA_OID = der.encode_oid(oids.ENVELOPED_DATA)


def looks_like_enveloped_data(prefix: bytes) -> bool:
    """True when ``prefix`` (the first ~64 bytes or fewer) starts a CMS EnvelopedData.

    Accepts indefinite and any definite length form of the outer SEQUENCE; never raises.
    """
    if len(prefix) < 2 or prefix[0] != der.SEQUENCE:
        return False
    first = prefix[1]
    if first in (0x80,) or first < 0x80:
        pos = 2
    elif 0x81 <= first <= 0x84:
        pos = 2 + (first & 0x7F)
    else:
        return False
    return bytes(prefix[pos : pos + len(_ENVELOPED_DATA_OID)]) == _ENVELOPED_DATA_OID
