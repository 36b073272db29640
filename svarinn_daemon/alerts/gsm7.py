"""Make text fit one plain SMS: the GSM 03.38 default alphabet, at most 160 characters.

A single character outside the alphabet (« », an emoji, a curly quote) switches the whole
SMS to UCS-2 and its limit to 70 characters, or gets it garbled by the operator's gateway.
Characters of the extension table (``[ ] { } ~ | ^ \\ €``) cost two septets each, so they are
replaced too: every character of the result costs exactly one septet.
"""

from __future__ import annotations

import unicodedata

__all__ = ["GSM7_BASIC", "SMS_LENGTH", "is_gsm7", "to_gsm7"]

SMS_LENGTH = 160

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)

_REPLACEMENTS = {
    "«": '"',
    "»": '"',
    "“": '"',
    "”": '"',
    "„": '"',
    "‘": "'",
    "’": "'",
    "‚": "'",
    "–": "-",
    "—": "-",
    "…": "...",
    "[": "(",
    "]": ")",
    "{": "(",
    "}": ")",
    "~": "-",
    "|": "/",
    "^": "'",
    "\\": "/",
    "€": "EUR",
    "\t": " ",
    "\u00a0": " ",
}


def is_gsm7(text: str) -> bool:
    """True when every character is in the default alphabet (one septet each)."""
    return all(c in GSM7_BASIC for c in text)


def _one(char: str) -> str:
    if char in GSM7_BASIC:
        return char
    if char in _REPLACEMENTS:
        return _REPLACEMENTS[char]
    # "ó" -> "o", "Š" -> "S": keep the letter, drop the accent the alphabet lacks.
    base = "".join(c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c))
    if base and all(c in GSM7_BASIC for c in base):
        return base
    return "?"


def to_gsm7(text: str, *, limit: int = SMS_LENGTH) -> str:
    """``text`` in the default alphabet, cut to ``limit`` characters (ending in "..." if cut)."""
    out = "".join(_one(c) for c in text)
    if len(out) > limit:
        out = out[: limit - 3].rstrip() + "..."
    return out
