"""The ``[retry]`` and ``[verify]`` tables: policies the pipeline passes to retry.decide and
verify.open_letter."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from svarinn_daemon.policies import RetryPolicy, VerifyPolicy, ZipLimits

if TYPE_CHECKING:
    from svarinn_daemon.config.table import Table

MISSING_DOCUMENTS = ("fail", "import")


def _fraction(table: Table, name: str, default: float) -> float:
    table.known.add(name)
    value = table.data.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        table.fail(name, f"must be a number from 0 to 1, not {value!r}")
    return float(value)


def read_retry(table: Table) -> RetryPolicy:
    d = RetryPolicy()
    positive = timedelta(milliseconds=1)
    policy = RetryPolicy(
        base_delay=table.duration("base_delay", d.base_delay, positive),
        max_delay=table.duration("max_delay", d.max_delay, positive),
        jitter=_fraction(table, "jitter", d.jitter),
        max_download_attempts=table.integer("max_download_attempts", d.max_download_attempts, 1),
        temporary_report_after=table.duration(
            "temporary_report_after", d.temporary_report_after, timedelta(0)
        ),
        temporary_report_interval=table.duration(
            "temporary_report_interval", d.temporary_report_interval, timedelta(0)
        ),
        treat_key_errors_as_permanent=table.boolean(
            "treat_key_errors_as_permanent", d.treat_key_errors_as_permanent
        ),
        archive_pause_after=table.integer("archive_pause_after", d.archive_pause_after, 1),
        archive_probe_delay=table.duration("archive_probe_delay", d.archive_probe_delay, positive),
        archive_probe_max_delay=table.duration(
            "archive_probe_max_delay", d.archive_probe_max_delay, positive
        ),
    )
    if policy.max_delay < policy.base_delay:
        table.fail("max_delay", "must not be shorter than base_delay")
    if policy.archive_probe_max_delay < policy.archive_probe_delay:
        table.fail("archive_probe_max_delay", "must not be shorter than archive_probe_delay")
    table.finish()
    return policy


def read_verify(table: Table) -> VerifyPolicy:
    d = ZipLimits()
    ratio = table.integer("max_compression_ratio", int(d.max_ratio), 1)
    limits = ZipLimits(
        max_entries=table.integer("max_zip_entries", d.max_entries, 1),
        max_total_size=table.size("max_unpacked_size", d.max_total_size),
        max_ratio=float(ratio),
    )
    missing = table.string("missing_documents", "fail", MISSING_DOCUMENTS)
    table.finish()
    return VerifyPolicy(limits=limits, allow_missing_documents=missing == "import")
