"""Benchmark: the daemon's instructions per small letter, counted by valgrind's callgrind.

CPU times on this shared two-core machine drift by several percent within the hour, more
than most changes to the small-letter path save. Instructions counted do not: two runs of
the same tree agree within a tenth of a percent. Each API's small workload (the simulator,
``poll-once`` with one worker, and the filesystem archive of ``bench_daemon.py``) runs
under ``valgrind --tool=callgrind`` twice, with one letter and with ``--letters``; the
difference, over the letters between the two, is what one letter costs the daemon beyond
start-up: its share of the listing, the claim, download, decryption, the archive, the
receipt and the ledger.

What this does not count: the kernel's work (the filesystem's above all) and time spent
waiting. Under valgrind there is no AVX-512, so RSA runs OpenSSL's AVX2 code (about 6.5
million instructions a letter), a larger share than it takes natively. It is for
comparing two trees on one machine, not for a rate: ``--compare TREE`` measures another
tree too (``git worktree add /tmp/before <commit>``) and prints both and the change, and
``--top N`` the C functions whose own instructions per letter changed most (without a
compare: cost most). Python's own functions show as the interpreter's (``ceval.c``).

    .venv/bin/python benchmarks/bench_instructions.py [--letters 200] [--api v1|v2|both]
        [--compare /tmp/before] [--top 15]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from bench_daemon import package_root, parse_size, run_workload

_TOTALS = re.compile(r"^totals:\s+(\d+)", re.MULTILINE)
_FUNCTION = re.compile(r"^\s*([\d,]+)\s+\([^)]*\)\s+(.+?)(?:\s+\[.*\])?$")


def callgrind(directory: Path) -> list[str]:
    out = directory / "callgrind.%p"
    return ["valgrind", "--tool=callgrind", "--quiet", f"--callgrind-out-file={out}"]


def profile_of(directory: Path) -> Path:
    """The daemon's callgrind output (the only process valgrind followed)."""
    (found,) = directory.glob("callgrind.*")
    return found


def total(profile: Path) -> int:
    match = _TOTALS.search(profile.read_text(errors="replace"))
    if match is None:
        raise SystemExit(f"{profile}: no totals line")
    return int(match.group(1))


def functions(profile: Path) -> dict[str, int]:
    """Each function's own instructions (callgrind_annotate's exclusive counts)."""
    text = subprocess.run(
        ["callgrind_annotate", "--threshold=100", str(profile)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    own: dict[str, int] = {}
    for line in text.splitlines():
        match = _FUNCTION.match(line)
        if match and "PROGRAM TOTALS" not in line:
            name = match.group(2).rsplit("/", 1)[-1]
            own[name] = own.get(name, 0) + int(match.group(1).replace(",", ""))
    return own


@dataclass(frozen=True)
class Measured:
    start_up: int  # instructions of the run with one letter
    per_letter: float  # beyond start-up
    functions: dict[str, float]  # each C function's own instructions per letter


def measure(root: Path, letters: int, size: int, api: str) -> Measured:
    """Instructions per letter beyond start-up, and per function, for the tree imported."""
    runs = {}
    for count in (1, letters):
        directory = root / f"{api}-{count}"
        directory.mkdir()
        # One worker: valgrind runs one thread at a time, fifty times slower, so workers that
        # wait for each other (the ledger's writer) wait that much longer; a run with four,
        # on a loaded machine, ended with a letter scheduled for a retry.
        run_workload(directory, count, size, 1, api=api, prefix=callgrind(directory))
        runs[count] = profile_of(directory)
    between = letters - 1
    one, many = (functions(runs[1]), functions(runs[letters]))
    return Measured(
        start_up=total(runs[1]),
        per_letter=(total(runs[letters]) - total(runs[1])) / between,
        functions={k: (many.get(k, 0) - one.get(k, 0)) / between for k in {*one, *many}},
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--letters", type=int, default=200, help="small letters (200)")
    parser.add_argument("--small", type=parse_size, default=50 * 1024, help="their size (50KiB)")
    parser.add_argument("--api", choices=("v1", "v2", "both"), default="both")
    parser.add_argument("--compare", type=Path, help="another tree to measure the same way")
    parser.add_argument("--top", type=int, default=15, help="C functions listed (15)")
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)  # --compare's
    args = parser.parse_args()
    if args.letters < 2:
        parser.error("--letters must be at least 2")
    if shutil.which("valgrind") is None or shutil.which("callgrind_annotate") is None:
        print("valgrind (with callgrind_annotate) is not installed", file=sys.stderr)
        return 2
    apis = ("v1", "v2") if args.api == "both" else (args.api,)
    with tempfile.TemporaryDirectory(prefix="bench-instructions-") as tmp:
        results = {api: measure(Path(tmp), args.letters, args.small, api) for api in apis}
    if args.json:
        print(json.dumps({api: asdict(m) for api, m in results.items()}))
        return 0
    other = _other_tree(args) if args.compare else None
    print(f"the daemon from {package_root()}; {args.letters} letters of {args.small // 1024} KiB")
    for api in apis:
        mine = results[api]
        line = f"[{api}] {mine.per_letter / 1e6:.2f} M instructions per letter"
        line += f" (start-up {mine.start_up / 1e9:.2f} G)"
        if other is not None:
            theirs = other[api]
            change = mine.per_letter / theirs.per_letter - 1
            line += f"; {args.compare}: {theirs.per_letter / 1e6:.2f} M, change {change:+.1%}"
        print(line)
        _top(mine, other[api] if other else None, args.top)
    return 0


def _other_tree(args: argparse.Namespace) -> dict[str, Measured]:
    """The same measurement of ``--compare``'s tree, in a process that imports it first."""
    env = {**os.environ, "PYTHONPATH": str(args.compare.resolve())}
    command = [sys.executable, __file__, "--json", "--letters", str(args.letters)]
    command += ["--small", str(args.small), "--api", args.api]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    found: dict[str, dict[str, object]] = json.loads(done.stdout.splitlines()[-1])
    return {api: Measured(**values) for api, values in found.items()}  # type: ignore[arg-type]


def _top(mine: Measured, theirs: Measured | None, count: int) -> None:
    own = mine.functions
    if theirs is None:
        rows = sorted(own.items(), key=lambda item: -item[1])[:count]
        for name, value in rows:
            print(f"    {value / 1e3:10.1f} k  {name}")
        return
    before = theirs.functions
    changes = {k: own.get(k, 0.0) - before.get(k, 0.0) for k in {*own, *before}}
    for name, value in sorted(changes.items(), key=lambda item: -abs(item[1]))[:count]:
        print(f"    {value / 1e3:+10.1f} k  {name}")


if __name__ == "__main__":
    sys.exit(main())
