"""The policies the operator sets in ``[retry]`` and ``[verify]``: plain frozen values.

They live apart from the code that applies them (:mod:`svarinn_daemon.letter.retry`,
:mod:`svarinn_daemon.letter.verify`), so that the configuration can build them without
importing verification, adapters or anything else with behaviour.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

__all__ = ["RetryPolicy", "VerifyPolicy", "ZipLimits"]


@dataclass(frozen=True)
class RetryPolicy:
    """How patiently letters are retried. ``jitter`` is the fraction a delay may shrink by,
    so that letters failed together do not come back together."""

    base_delay: timedelta = timedelta(seconds=30)
    max_delay: timedelta = timedelta(hours=1)
    jitter: float = 0.2
    max_download_attempts: int = 3
    temporary_report_after: timedelta = timedelta(hours=1)
    temporary_report_interval: timedelta = timedelta(hours=6)
    treat_key_errors_as_permanent: bool = False
    # The circuit breaker per archive (see svarinn_daemon.service.breaker).
    archive_pause_after: int = 5
    archive_probe_delay: timedelta = timedelta(seconds=30)
    archive_probe_max_delay: timedelta = timedelta(minutes=10)


@dataclass(frozen=True)
class ZipLimits:
    """Limits against zip bombs. ``max_ratio`` applies to entries above ``ratio_min_size``
    only, because small text files legitimately compress very well -- and to the whole zip
    (all entries against the zip file's size) once it unpacks to more than that, because
    many small entries of zeros are a bomb too."""

    # The metadata names each field's key in [verify] (config/render.py writes it).
    max_entries: int = field(default=10_000, metadata={"key": "max_zip_entries"})
    max_total_size: int = field(
        default=20 * 2**30, metadata={"key": "max_unpacked_size", "unit": "size"}
    )
    max_ratio: float = field(
        default=200.0, metadata={"key": "max_compression_ratio", "unit": "int"}
    )
    ratio_min_size: int = field(default=2**20, metadata={"toml": False})  # not configurable


@dataclass(frozen=True)
class VerifyPolicy:
    limits: ZipLimits = field(default_factory=ZipLimits)
    allow_missing_documents: bool = field(default=False, metadata={"toml": False})
    # ``missing_documents = "import" | "fail"`` in [verify]
