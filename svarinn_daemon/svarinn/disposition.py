"""Content-Disposition (RFC 6266 / RFC 8187) -> a file name that is safe to use.

The name comes from the remote side and ends up in archives and on file shares, so it is
parsed strictly and then sanitised: no directories, no control or bidi characters, no
leading dots (hidden files, ``..``), no characters Windows shares refuse, bounded length.
Pure functions, no I/O.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import unquote_to_bytes

__all__ = ["MAX_FILENAME_BYTES", "filename_from_header", "parse_disposition", "sanitize_filename"]

MAX_FILENAME_BYTES = 200
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"', re.DOTALL)
_EXT_VALUE = re.compile(r"([A-Za-z0-9!#$&+^_`{}~-]+)'([A-Za-z0-9-]*)'(.*)", re.DOTALL)
_WINDOWS_FORBIDDEN = re.compile(r'[<>:"|?*]')
_WINDOWS_RESERVED = re.compile(r"(CON|PRN|AUX|NUL|COM[0-9]|LPT[0-9])(\..*)?", re.IGNORECASE)


def parse_disposition(header: str) -> tuple[str, dict[str, str]]:
    """Split a Content-Disposition value into its type and parameters (names lower-cased).

    Parameters that do not parse are skipped rather than failing the download: the file
    name is a convenience, the content is what matters.
    """
    text = header.strip()
    match = _TOKEN.match(text)
    if match is None:
        return "", {}
    kind = match.group(0).lower()
    pos = match.end()
    params: dict[str, str] = {}
    while True:
        semi = text.find(";", pos)
        if semi < 0:
            break
        pos = semi + 1
        while pos < len(text) and text[pos] in " \t":
            pos += 1
        name_match = _TOKEN.match(text, pos)
        if name_match is None:
            continue
        name = name_match.group(0).lower()
        pos = name_match.end()
        while pos < len(text) and text[pos] in " \t":
            pos += 1
        if pos >= len(text) or text[pos] != "=":
            continue
        pos += 1
        while pos < len(text) and text[pos] in " \t":
            pos += 1
        quoted = _QUOTED.match(text, pos)
        if quoted is not None:
            value = re.sub(r"\\(.)", r"\1", quoted.group(1), flags=re.DOTALL)
            pos = quoted.end()
        else:
            end = text.find(";", pos)
            end = len(text) if end < 0 else end
            value = text[pos:end].strip()
            pos = end
        params.setdefault(name, value)
    return kind, params


def _decode_ext_value(value: str) -> str | None:
    """RFC 8187 ``charset'lang'percent-encoded``; None for charsets we do not know."""
    match = _EXT_VALUE.fullmatch(value)
    if match is None:
        return None
    charset = match.group(1).lower()
    if charset not in ("utf-8", "iso-8859-1"):
        return None
    raw = unquote_to_bytes(match.group(3))
    try:
        return raw.decode(charset)
    except UnicodeDecodeError:
        return None


def filename_from_header(header: str | None) -> str | None:
    """The sanitised file name of a Content-Disposition header, or None.

    ``filename*`` wins over ``filename`` (RFC 6266 section 4.3).
    """
    if not header:
        return None
    _kind, params = parse_disposition(header)
    name: str | None = None
    if "filename*" in params:
        name = _decode_ext_value(params["filename*"])
    if name is None and "filename" in params:
        name = params["filename"]
    return sanitize_filename(name) if name is not None else None


def sanitize_filename(name: str, *, max_bytes: int = MAX_FILENAME_BYTES) -> str | None:
    """Make a remote file name safe to use as one path component; None when nothing is left."""
    name = unicodedata.normalize("NFC", name)
    # Only the last path component counts, whichever separator the sender used.
    name = re.split(r"[/\\]", name.rstrip("/\\ \t"))[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch) not in ("Cc", "Cf", "Zl", "Zp"))
    name = _WINDOWS_FORBIDDEN.sub("_", name)
    name = name.strip().lstrip(".").strip().rstrip(". ")
    if not name:
        return None
    if _WINDOWS_RESERVED.fullmatch(name):
        name = "_" + name
    return _truncate(name, max_bytes)


def _truncate(name: str, max_bytes: int) -> str:
    """Shorten to ``max_bytes`` of UTF-8, keeping a short extension."""
    if len(name.encode("utf-8")) <= max_bytes:
        return name
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem or len(ext.encode("utf-8")) > 16:
        stem, ext = name, ""
    suffix = f".{ext}" if ext else ""
    budget = max_bytes - len(suffix.encode("utf-8"))
    cut = stem.encode("utf-8")[:budget].decode("utf-8", "ignore").rstrip(". ")
    return (cut + suffix) if cut else suffix.lstrip(".")[:max_bytes]
