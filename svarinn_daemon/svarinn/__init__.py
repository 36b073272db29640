"""Talking to KS SvarInn (MottakService v1): records, the client and its error mapping."""

from svarinn_daemon.svarinn.client import Download, SvarInnClient
from svarinn_daemon.svarinn.models import (
    Adressat,
    Avsender,
    Filmetadata,
    Forsendelse,
    Listing,
    Metadata,
    Mottaker,
    RejectedItem,
    parse_forsendelse,
    parse_forsendelser,
    parse_listing,
)

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
    "parse_forsendelse",
    "parse_forsendelser",
    "parse_listing",
]
