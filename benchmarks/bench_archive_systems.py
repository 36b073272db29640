"""Letters per second and peak RSS of the archive-system adapters (gi-arkiv, p360, noark5)
against their local archives, beside a baseline from the same run: the same letters into
the ``filesystem`` adapter.

    .venv/bin/python benchmarks/bench_archive_systems.py [--letters 1000] [--size 50KiB]
        [--large 64MiB]

The archives run in their own process (checking every request, as in the tests); each
adapter runs in a process of its own, so each peak RSS is the adapter's side alone. Each
letter goes as the pipeline drives it: ``has``, ``begin``, one ``add_document`` per
document, ``commit``. Every fourth letter has three documents. Then one
letter of ``--large`` shows that a document is streamed (the sender's RSS stays flat).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

ARCHIVE = """
import sys
from svarinn_daemon.archives.giarkiv import LocalGiArkiv
from svarinn_daemon.archives.p360 import LocalP360
from svarinn_daemon.archives.noark5 import LocalNoark5
with LocalGiArkiv(username="bench", password="bench-pass") as arkiv, \\
        LocalP360(authkey="bench-pass") as p360, LocalNoark5(token="bench-pass") as n5:
    print(arkiv.url, arkiv.innsyn_url, p360.url, n5.url, flush=True)
    sys.stdin.read()
    print(len(arkiv.journalposts), sum(len(p.documents) for p in arkiv.journalposts),
          len(p360.documents), sum(len(d.files) for d in p360.documents),
          len(n5.all("journalpost")), len(n5.all("dokumentobjekt")), flush=True)
"""


def _size(text: str) -> int:
    units = {"KiB": 1024, "MiB": 1024**2, "GiB": 1024**3}
    for unit, factor in units.items():
        if text.endswith(unit):
            return int(float(text[: -len(unit)]) * factor)
    return int(text)


def sender(kind: str, work: Path, letters: int, size: int, urls: list[str]) -> None:
    """One adapter in this process: send the letters, print one JSON line."""
    from svarinn_daemon.adapters import AdapterContext, DocumentMetadata, VerificationRecord
    from svarinn_daemon.adapters.filesystem import create_adapter as filesystem
    from svarinn_daemon.adapters.giarkiv import create_adapter as gi_arkiv
    from svarinn_daemon.adapters.noark5 import create_adapter as noark5
    from svarinn_daemon.adapters.p360 import create_adapter as p360

    context = AdapterContext("bench", work / "state", work)
    (work / "pw").write_text("bench-pass")
    if kind == "filesystem":
        adapter = filesystem({"root": str(work / "archive")}, context)
    elif kind == "noark5":
        options = {"url": urls[3], "token_file": str(work / "pw"), "arkivdel": "Sakarkiv"}
        adapter = noark5(options, context)
    elif kind == "p360":
        options = {"url": urls[2], "authkey_file": str(work / "pw")}
        adapter = p360({**options, "external_key_field": "SvarUtForsendelseId"}, context)
    else:
        options = {"url": urls[0], "innsyn_url": urls[1], "username": "bench"}
        adapter = gi_arkiv(
            {**options, "password_file": str(work / "pw"), "arkivdel": "SAK"}, context
        )
    source = work / "doc.pdf"
    with source.open("wb") as out:
        block = os.urandom(1 << 20)
        left = size
        while left:
            out.write(block[: min(left, len(block))])
            left -= min(left, len(block))
    hashed = hashlib.sha256()
    with source.open("rb") as stream:
        while piece := stream.read(1 << 20):
            hashed.update(piece)
    digest = hashed.hexdigest()
    now = datetime.now(UTC)
    record = VerificationRecord(digest, size, True, "pdf", True, now, now)
    started = time.perf_counter()
    for n in range(letters):
        fid = f"bench-{work.name}-{n:06d}"
        if adapter.has(fid) is not None:
            continue
        tx = adapter.begin(fid, {"id": fid, "tittel": f"Brev {n}", "avsender": {"navn": "AS"}})
        for d in range(3 if n % 4 == 3 else 1):
            tx.add_document(
                f"dok-{d}.pdf", source, DocumentMetadata("application/pdf", digest, size, True)
            )
        tx.commit(record)
    elapsed = time.perf_counter() - started
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"kind": kind, "letters": letters, "seconds": elapsed, "rss_mb": rss}))


def run(kind: str, work: Path, letters: int, size: int, urls: list[str]) -> dict[str, float]:
    work.mkdir(mode=0o700, parents=True)
    done = subprocess.run(
        [sys.executable, __file__, "--sender", kind, "--dir", str(work), "--letters", str(letters),
         "--size", str(size), "--urls", *urls],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--letters", type=int, default=1000)
    parser.add_argument("--size", default="50KiB")
    parser.add_argument("--large", default="64MiB")
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument("--sender", default=None)
    parser.add_argument("--urls", nargs=4, default=None)
    args = parser.parse_args()
    if args.sender:
        sender(args.sender, args.dir, args.letters, _size(args.size), args.urls)
        return
    root = Path(args.dir or tempfile.mkdtemp(prefix="bench-giarkiv-"))
    archive = subprocess.Popen(
        [sys.executable, "-c", ARCHIVE], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert archive.stdout is not None
    assert archive.stdin is not None
    urls = archive.stdout.readline().split()
    size = _size(args.size)
    print(f"{args.letters} letters of {args.size} (every fourth with 3 documents), same run:")
    for kind in ("filesystem", "gi-arkiv", "p360", "noark5"):
        r = run(kind, root / kind, args.letters, size, urls)
        print(
            f"  {kind:10} {r['letters'] / r['seconds']:8.1f} letters/s  "
            f"{r['seconds']:6.1f} s  peak RSS {r['rss_mb']:.0f} MB"
        )
    large = _size(args.large)
    for kind in ("filesystem", "gi-arkiv", "p360", "noark5"):
        r = run(f"{kind}", root / f"{kind}-large", 1, large, urls)
        print(
            f"  one letter of {args.large} into {kind:10}: {large / 1e6 / r['seconds']:7.1f} MB/s"
            f"  peak RSS {r['rss_mb']:.0f} MB"
        )
    archive.stdin.close()
    held = archive.stdout.read().split()
    print(f"  the local GI-Arkiv holds {held[0]} journalposts, {held[1]} documents;", end=" ")
    print(f"the local 360 {held[2]} documents, {held[3]} files;", end=" ")
    print(f"the local Noark 5 {held[4]} journalposts, {held[5]} files")
    archive.wait()


if __name__ == "__main__":
    main()
