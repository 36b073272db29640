"""Talking to KS SvarInn (MottakService v1): records, the client and its error mapping."""

from svarinn_daemon.svarinn.client import Download, SvarInnClient
from svarinn_daemon.svarinn.models import (
    Adressat,
    Avsender,
    Filmetadata,
    Forsendelse,
    Metadata,
    Mottaker,
    parse_forsendelse,
    parse_forsendelser,
)

__all__ = [
    "Adressat",
    "Avsender",
    "Download",
    "Filmetadata",
    "Forsendelse",
    "Metadata",
    "Mottaker",
    "SvarInnClient",
    "parse_forsendelse",
    "parse_forsendelser",
]
