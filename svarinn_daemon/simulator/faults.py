"""Fault injection for the simulator: what goes wrong, for which letters, how often.

A :class:`Fault` fires by letter id (``ids``), by rate (``rate``, a probability per
request), or both, at most ``times`` times. Faults on the listing's content
(``wrong_sha256``, ``duplicate``, ``malformed``) are decided once per letter, so a letter
does not change between calls.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Literal, get_args

__all__ = ["ENDPOINTS", "FAULT_KINDS", "Endpoint", "Fault", "FaultKind", "FaultPlan", "parse_fault"]

FaultKind = Literal[
    "http_400",  # 400 Bad Request: the server refuses the request (a receipt's body, say)
    "http_500",  # 500 Internal Server Error
    "http_503",  # 503 Service Unavailable (with Retry-After when retry_after is set)
    "http_429",  # 429 Too Many Requests (with Retry-After when retry_after is set)
    "unauthorized",  # 401 although the credentials are right
    "slow",  # wait `delay` seconds before answering
    "reset",  # download: send half the body, then reset the connection (RST)
    "truncate",  # download: send half the body, then close cleanly (short of Content-Length)
    "stall",  # download: send half the body, wait `delay` seconds, then send the rest
    "trickle",  # download: send the body one byte every `delay` seconds
    "echo_auth",  # 500 whose body echoes the Authorization header's credentials (base64)
    "corrupt",  # download: flip a ciphertext byte (decryption or sha256 check must fail)
    "redirect",  # download: 302 to `location` + the same path
    "wrong_sha256",  # listing: the first file's sha256hash is wrong
    "unknown_size",  # listing: every file's size is 0, SvarInn's word for unknown
    "duplicate",  # listing: the letter appears on two pages (or twice on one)
    "malformed",  # listing: the letter's item has no downloadUrl (v2: no nedlastingslenke)
]
# v1's four, and SvarInn V2's three (one PATCH for both receipts).
Endpoint = Literal[
    "list", "download", "acknowledge", "report", "v2_list", "v2_download", "v2_status"
]
FAULT_KINDS: tuple[str, ...] = get_args(FaultKind)
ENDPOINTS: tuple[str, ...] = get_args(Endpoint)

_DOWNLOAD_ONLY = frozenset({"reset", "truncate", "stall", "trickle", "corrupt", "redirect"})
_LISTING = frozenset({"wrong_sha256", "unknown_size", "duplicate", "malformed"})


@dataclass(frozen=True)
class Fault:
    kind: FaultKind
    ids: frozenset[str] = frozenset()  # empty: any letter
    rate: float = 1.0
    times: int | None = None  # None: no limit
    endpoints: frozenset[Endpoint] | None = None  # None: every endpoint the kind applies to
    delay: float = 2.0  # for "slow", "stall" and "trickle"
    retry_after: str | None = None  # Retry-After header for http_503 / http_429
    location: str | None = None  # origin to redirect downloads to, for "redirect"

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {self.kind!r}; known: {', '.join(FAULT_KINDS)}")
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"rate {self.rate} is not between 0 and 1")
        if self.kind == "redirect" and not self.location:
            raise ValueError("a redirect fault needs location=scheme://host:port")
        object.__setattr__(self, "ids", frozenset(self.ids))

    def applies_to(self, endpoint: Endpoint, letter_id: str | None) -> bool:
        if self.kind in _LISTING:
            return False
        if self.kind in _DOWNLOAD_ONLY and endpoint not in ("download", "v2_download"):
            return False
        if self.endpoints is not None and endpoint not in self.endpoints:
            return False
        return not self.ids or letter_id in self.ids


@dataclass
class FaultPlan:
    """The active faults; thread-safe, deterministic for a given seed."""

    seed: int = 0
    faults: list[Fault] = field(default_factory=list)
    fired: Counter[str] = field(default_factory=Counter)
    _fired_per_fault: Counter[int] = field(default_factory=Counter)
    _rng: random.Random = field(init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)  # noqa: S311 (test faults, not crypto)

    def add(self, fault: Fault) -> None:
        with self._lock:
            self.faults.append(fault)

    def clear(self) -> None:
        with self._lock:
            self.faults.clear()
            self._fired_per_fault.clear()

    def pick(self, endpoint: Endpoint, letter_id: str | None) -> Fault | None:
        """The fault (if any) that this request suffers; counts it as fired."""
        with self._lock:
            for index, fault in enumerate(self.faults):
                if not fault.applies_to(endpoint, letter_id):
                    continue
                if fault.times is not None and self._fired_per_fault[index] >= fault.times:
                    continue
                if fault.rate < 1.0 and self._rng.random() >= fault.rate:
                    continue
                self._fired_per_fault[index] += 1
                self.fired[fault.kind] += 1
                return fault
            return None

    def listing_flag(self, kind: FaultKind, letter_id: str) -> bool:
        """Whether a listing fault holds for this letter (stable across calls)."""
        with self._lock:
            for fault in self.faults:
                if fault.kind != kind or (fault.ids and letter_id not in fault.ids):
                    continue
                if (
                    fault.rate >= 1.0
                    or _stable_draw(f"{self.seed}:{kind}:{letter_id}") < fault.rate
                ):
                    self.fired[kind] += 1
                    return True
            return False


def _stable_draw(key: str) -> float:
    """A number in [0, 1) that depends only on ``key``."""
    return random.Random(key).random()  # noqa: S311 (test faults, not crypto)


def parse_fault(spec: str) -> Fault:
    """``KIND[:key=value,...]`` from the command line, e.g. ``http_503:rate=0.1,retry_after=5``.

    Keys: ``rate``, ``times``, ``ids`` (separated by ``+``), ``endpoints`` (``+``),
    ``delay``, ``retry_after``, ``location``. Raises ValueError with a readable message.
    """
    kind, _, rest = spec.partition(":")
    options: dict[str, str] = {}
    for part in filter(None, rest.split(",")):
        key, eq, value = part.partition("=")
        if not eq:
            raise ValueError(f"fault option {part!r} is not key=value")
        options[key.strip()] = value.strip()
    known = {"rate", "times", "ids", "endpoints", "delay", "retry_after", "location"}
    if unknown := set(options) - known:
        raise ValueError(f"unknown fault option(s) {', '.join(sorted(unknown))}")
    endpoints = None
    if "endpoints" in options:
        names = options["endpoints"].split("+")
        if bad := [n for n in names if n not in ENDPOINTS]:
            raise ValueError(f"unknown endpoint(s) {', '.join(bad)}; known: {', '.join(ENDPOINTS)}")
        endpoints = frozenset(names)
    try:
        return Fault(
            kind=kind.strip(),  # type: ignore[arg-type]  # checked in __post_init__
            ids=frozenset(filter(None, options.get("ids", "").split("+"))),
            rate=float(options.get("rate", "1")),
            times=int(options["times"]) if "times" in options else None,
            endpoints=endpoints,  # type: ignore[arg-type]
            delay=float(options.get("delay", "2")),
            retry_after=options.get("retry_after"),
            location=options.get("location"),
        )
    except ValueError as exc:
        raise ValueError(f"fault {spec!r}: {exc}") from None
