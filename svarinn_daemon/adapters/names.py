"""Turn a document name from a letter into a safe file name, unique within the letter.

Names come from the sender (filnavn, zip entry paths), so they are untrusted. Archives are
often read over SMB by Windows clients, hence the Windows rules as well (reserved device
names, no trailing dots, case-insensitive uniqueness).
"""

from __future__ import annotations

import unicodedata

__all__ = ["MAX_NAME_BYTES", "NameAllocator", "sanitise_file_name"]

MAX_NAME_BYTES = 200
_FORBIDDEN = set('<>:"/\\|?*')
_WINDOWS_DEVICES = {"CON", "PRN", "AUX", "NUL"} | {
    f"{p}{n}" for p in ("COM", "LPT") for n in "123456789"
}


def _split_suffix(name: str) -> tuple[str, str]:
    stem, dot, suffix = name.rpartition(".")
    if not dot or not stem or len(suffix) > 16 or not suffix.isalnum():
        return name, ""
    return stem, "." + suffix


def _truncate(stem: str, suffix: str, limit: int = MAX_NAME_BYTES) -> str:
    budget = limit - len(suffix.encode("utf-8"))
    encoded = stem.encode("utf-8")
    if len(encoded) > budget:
        stem = encoded[:budget].decode("utf-8", errors="ignore").rstrip(" .")
    return stem + suffix


def sanitise_file_name(name: str, fallback: str = "dokument") -> str:
    """The last path component of ``name``, without control characters, line and paragraph
    separators (U+2028, U+2029), path separators, leading dots, a leading ``-`` (a program
    given ``*`` would take it for an option) or characters Windows refuses; ``fallback``
    when nothing is left."""
    name = unicodedata.normalize("NFC", name).replace("\\", "/")
    name = name.rstrip("/").rsplit("/", 1)[-1]
    out = []
    for char in name:
        category = unicodedata.category(char)
        if category.startswith("C") or category in ("Zl", "Zp"):
            continue  # control, format, surrogate, private-use, unassigned; line separators
        out.append("_" if char in _FORBIDDEN else char)
    cleaned = "".join(out).strip().lstrip(". ").rstrip(". ")
    if cleaned.startswith("-"):  # never an option to a program that gets it (``tar *``)
        cleaned = "_" + cleaned[1:]
    if not cleaned:
        cleaned = fallback
    stem, suffix = _split_suffix(cleaned)
    if stem.split(".")[0].upper() in _WINDOWS_DEVICES:
        stem = "_" + stem
    return _truncate(stem, suffix)


class NameAllocator:
    """Hands out sanitised names that differ from each other even ignoring case."""

    def __init__(self, reserved: tuple[str, ...] = ()):
        self._taken = {r.casefold() for r in reserved}

    def allocate(self, name: str) -> str:
        candidate = sanitise_file_name(name)
        stem, suffix = _split_suffix(candidate)
        number = 1
        while candidate.casefold() in self._taken:
            number += 1
            tag = f" ({number})"
            candidate = _truncate(stem, tag + suffix)
        self._taken.add(candidate.casefold())
        return candidate
