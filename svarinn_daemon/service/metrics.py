"""Prometheus metrics on an explicit registry: what an operator needs to trust the daemon.

Labels are bounded (account, stage, outcome, kind); a forsendelse id is never a label.
The ledger-derived gauges (letters per state, age of the oldest unacknowledged letter) are
read from the ledger at scrape time through a callback, so they are right after a restart.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from svarinn_daemon import __version__

STAGES = ("poll", "download", "decrypt", "verify", "archive", "receipt")
INTERNAL_ERROR_PLACES = (
    "pipeline",
    "worker",
    "probe",
    "drain",
    "cycle",
    "scheduler",
    "alerts",
)
_DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 1800, 3600)


@dataclass(frozen=True)
class LedgerSnapshot:
    """What the ledger says at scrape time."""

    counts: Mapping[tuple[str, str], int]  # (account, state) -> letters
    oldest_unacknowledged_age: Mapping[str, float]  # account -> seconds (not withheld)
    receipts_withheld: Mapping[str, int] = field(default_factory=dict)  # account -> letters


class _LedgerCollector(Collector):
    def __init__(self, snapshot: Callable[[], LedgerSnapshot | None]):
        self.snapshot = snapshot

    def collect(self) -> Iterator[GaugeMetricFamily]:
        counts = GaugeMetricFamily(
            "svarinn_ledger_letters",
            "Letters in the ledger by account and state.",
            labels=["account", "state"],
        )
        oldest = GaugeMetricFamily(
            "svarinn_oldest_unacknowledged_letter_age_seconds",
            "Age of the oldest letter not yet acknowledged to SvarUt (SvarUt warns at 2h); "
            "letters whose receipt shadow mode withholds are not counted.",
            labels=["account"],
        )
        withheld = GaugeMetricFamily(
            "svarinn_receipts_withheld_letters",
            "Letters archived (or failed) whose receipt is withheld: their account is in "
            "shadow mode (receipts = false).",
            labels=["account"],
        )
        up = GaugeMetricFamily("svarinn_ledger_up", "1 when the ledger answered this scrape.")
        snap = None
        try:
            snap = self.snapshot()
        except Exception:  # a scrape must not fail because the ledger did
            snap = None
        if snap is not None:
            for (account, state), n in sorted(snap.counts.items()):
                counts.add_metric([account, state], n)
            for account, age in sorted(snap.oldest_unacknowledged_age.items()):
                oldest.add_metric([account], age)
            for account, n in sorted(snap.receipts_withheld.items()):
                withheld.add_metric([account], n)
        up.add_metric([], 1 if snap is not None else 0)
        yield counts
        yield oldest
        yield withheld
        yield up


class Metrics:
    """All the daemon's metrics; one instance per process, passed down to whoever counts."""

    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.build_info = Info("svarinn_build", "Version of svarinn-daemon.", registry=r)
        self.build_info.info({"version": __version__})
        self.polls = Counter(
            "svarinn_polls_total",
            "hentNyeForsendelser cycles by outcome (ok, auth_failed, failed).",
            ["account", "outcome"],
            registry=r,
        )
        self.last_successful_poll = Gauge(
            "svarinn_last_successful_poll_timestamp_seconds",
            "Unix time of the last successful poll per account.",
            ["account"],
            registry=r,
        )
        self.letters = Counter(
            "svarinn_letters_total",
            "Letters by final or intermediate outcome (acknowledged, retry_scheduled, "
            "failed_permanently, reported, reacknowledged, sent: to an archive that answers "
            "later, waiting for its reply).",
            ["account", "outcome"],
            registry=r,
        )
        self.rejected_items = Counter(
            "svarinn_listing_items_rejected_total",
            "Items of hentNyeForsendelser the daemon could not read (no usable id, "
            "downloadUrl or filmetadata), counted at every poll that lists them; the others "
            "are imported.",
            ["account"],
            registry=r,
        )
        self.unverified = Counter(
            "svarinn_letters_unverified_total",
            "Letters imported without a sha256 to check them against (older letters).",
            ["account"],
            registry=r,
        )
        self.bytes_downloaded = Counter(
            "svarinn_downloaded_bytes_total",
            "Bytes downloaded from SvarInn (encrypted size).",
            ["account"],
            registry=r,
        )
        self.stage_seconds = Histogram(
            "svarinn_stage_duration_seconds",
            "Time spent per pipeline stage.",
            ["account", "stage"],
            buckets=_DURATION_BUCKETS,
            registry=r,
        )
        self.receipts = Counter(
            "svarinn_receipts_total",
            "Receipts to SvarUt by kind (kvitterMottak, mottakFeilet) and outcome (ok, "
            "failed, withheld: not sent, the account is in shadow mode).",
            ["account", "kind", "outcome"],
            registry=r,
        )
        self.ledger_rewound = Counter(
            "svarinn_ledger_rewound_total",
            "Times the ledger was found to have gone back in time (restored from a backup, or "
            "a failover that lost commits): logged as ledger.rewound.",
            registry=r,
        )
        # A time, not only the counter: a rewind is mostly found at start, in the first
        # sample of a new process, which increase() cannot see.
        self.ledger_rewound_at = Gauge(
            "svarinn_ledger_rewound_timestamp_seconds",
            "When the ledger was last found to have gone back in time (Unix time; 0: not "
            "since this process started).",
            registry=r,
        )
        self.internal_errors = Counter(
            "svarinn_internal_errors_total",
            "Exceptions nobody expected (bugs), by where they were caught: pipeline, worker, "
            "cycle, scheduler, alerts. Each is logged with its traceback.",
            ["where"],
            registry=r,
        )
        for where in INTERNAL_ERROR_PLACES:
            self.internal_errors.labels(where)
        self.archive_available = Gauge(
            "svarinn_archive_available",
            "0 while an archive's circuit breaker holds imports back after consecutive "
            "temporary failures, 1 otherwise.",
            ["archive"],
            registry=r,
        )
        self.shadow_mode = Gauge(
            "svarinn_account_shadow_mode",
            "1 while an account is in shadow mode (receipts = false): its letters are "
            "imported but neither kvitterMottak nor mottakFeilet is sent.",
            ["account"],
            registry=r,
        )
        self.retries = Counter(
            "svarinn_retries_scheduled_total",
            "Retries scheduled, by the kind of error that caused them.",
            ["account", "kind"],
            registry=r,
        )

        self.archive_replies = Counter(
            "svarinn_archive_replies_total",
            "Replies from archives that answer later (Fiks Arkiv), by kind (received, "
            "registered, refused, failed, malformed) and what they did (applied, kept, "
            "duplicate, unknown).",
            ["archive", "kind", "outcome"],
            registry=r,
        )
        self.archive_listening = Gauge(
            "svarinn_archive_replies_listening",
            "1 while the daemon is connected to an archive's reply queue (Fiks IO), else 0.",
            ["archive"],
            registry=r,
        )

    def watch_ledger(self, snapshot: Callable[[], LedgerSnapshot | None]) -> None:
        self.registry.register(_LedgerCollector(snapshot))

    @contextmanager
    def stage(self, account: str, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.stage_seconds.labels(account, stage).observe(time.perf_counter() - start)

    def init_archive(self, archive: str) -> None:
        self.archive_available.labels(archive).set(1)

    def init_account(self, account: str, *, shadow: bool = False) -> None:
        """Create every labelled series at zero so rates and alerts work from the start."""
        self.shadow_mode.labels(account).set(1 if shadow else 0)
        for outcome in ("ok", "auth_failed", "failed"):
            self.polls.labels(account, outcome)
        for outcome in (
            "acknowledged",
            "retry_scheduled",
            "failed_permanently",
            "reported",
            "sent",
        ):
            self.letters.labels(account, outcome)
        for kind in ("kvitterMottak", "mottakFeilet"):
            for outcome in ("ok", "failed", "withheld"):
                self.receipts.labels(account, kind, outcome)
        self.unverified.labels(account)
        self.rejected_items.labels(account)
        self.bytes_downloaded.labels(account)
