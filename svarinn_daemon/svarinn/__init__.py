"""Talking to KS SvarInn, V2 and MottakService v1 as equals: the records both are read into
(``records.py``), the parsing they share (``parsing.py``), each version's keys, item parser
and endpoints (``v1.py``, ``v2.py``), and one HTTP client (``client.py``) with its error
mapping (``failures.py``)."""

from svarinn_daemon.svarinn.client import Download, SvarInnHttpClient
from svarinn_daemon.svarinn.records import (
    Adressat,
    Avsender,
    Filmetadata,
    Forsendelse,
    Listing,
    Metadata,
    Mottaker,
    RejectedItem,
)
from svarinn_daemon.svarinn.v1 import (
    SvarInnClient,
    parse_forsendelse,
    parse_forsendelser,
    parse_listing,
)
from svarinn_daemon.svarinn.v2 import SvarInnV2Client

__all__ = [
    "Adressat",
    "Avsender",
    "Download",
    "Filmetadata",
    "Forsendelse",
    "Listing",
    "Metadata",
    "Mottaker",
    "RejectedItem",
    "SvarInnClient",
    "SvarInnHttpClient",
    "SvarInnV2Client",
    "parse_forsendelse",
    "parse_forsendelser",
    "parse_listing",
]
