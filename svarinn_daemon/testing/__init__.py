"""Test doubles that are real implementations, shipped for this project's tests and yours.

As procrastinate ships an in-memory connector and httpx a ``MockTransport``:

- :class:`InMemorySvarInn` implements :class:`~svarinn_daemon.svarinn.api.SvarInnApi` in the
  process. Its letters are what SvarUt serves (real CMS EnvelopedData files, built by the
  simulator's letter builder), it records every receipt, and it fails on demand.
- :class:`FakeClock`, a clock a test moves by hand (the ledger's and the pipeline's clock).
- :func:`check_adapter_contract`: the archive-adapter contract as plain functions, so a
  third-party adapter's own tests can call them (``ADAPTER_CHECKS`` one at a time).
"""

from svarinn_daemon.testing.contract import (
    ADAPTER_CHECKS,
    AdapterCheck,
    check_abort_leaves_nothing,
    check_adapter_contract,
    check_commit_then_has,
    check_optional_methods,
    check_probe_stores_nothing,
    check_satisfies_protocol,
    check_second_commit_returns_existing_ref,
)
from svarinn_daemon.testing.fakes import (
    FakeClock,
    InMemorySvarInn,
    MemoryDownload,
    Stall,
    make_key_pair,
)

__all__ = [
    "ADAPTER_CHECKS",
    "AdapterCheck",
    "FakeClock",
    "InMemorySvarInn",
    "MemoryDownload",
    "Stall",
    "check_abort_leaves_nothing",
    "check_adapter_contract",
    "check_commit_then_has",
    "check_optional_methods",
    "check_probe_stores_nothing",
    "check_satisfies_protocol",
    "check_second_commit_returns_existing_ref",
    "make_key_pair",
]
