"""Archive adapters: the protocol, the entry-point registry and the built-in adapters."""

from svarinn_daemon.adapters.base import (
    AdapterContext,
    AdapterFactory,
    ArchiveAdapter,
    ArchiveTransaction,
    DocumentMetadata,
    LetterOrigin,
    ProbingAdapter,
    VerificationRecord,
    begin_letter,
    has_letter,
    probe_archive,
)
from svarinn_daemon.adapters.registry import ENTRY_POINT_GROUP, AdapterRegistry

__all__ = [
    "ENTRY_POINT_GROUP",
    "AdapterContext",
    "AdapterFactory",
    "AdapterRegistry",
    "ArchiveAdapter",
    "ArchiveTransaction",
    "DocumentMetadata",
    "LetterOrigin",
    "ProbingAdapter",
    "VerificationRecord",
    "begin_letter",
    "has_letter",
    "probe_archive",
]
