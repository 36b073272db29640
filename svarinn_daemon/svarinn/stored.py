"""A letter as the ledger stored it, read back as what it is: the listing item of either
API version (the shapes do not overlap: v1 has ``downloadUrl``, V2 ``nedlastingslenke``), so
letters listed before an account switched version are still read as they were listed."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from svarinn_daemon.svarinn.records import Forsendelse
from svarinn_daemon.svarinn.v1 import parse_forsendelse
from svarinn_daemon.svarinn.v2 import parse_forsendelse_v2

__all__ = ["api_of", "parse_stored"]


def api_of(raw: Mapping[str, Any]) -> str:
    """The API version a stored item came from: v2 items have ``nedlastingslenke``."""
    return "v2" if "nedlastingslenke" in raw and "downloadUrl" not in raw else "v1"


def parse_stored(raw: Mapping[str, Any]) -> Forsendelse:
    """A ledger's raw item, of whichever version delivered it."""
    if api_of(raw) == "v2":
        return parse_forsendelse_v2(dict(raw))
    return parse_forsendelse(dict(raw))
