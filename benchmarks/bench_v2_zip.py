"""A SvarInn V2 letter of many documents in a deflated ZIP: unpacked as it streams
(``letter/unzip.py``, what the daemon does) beside the old way in the same run (the ZIP
written to a spool file, then ``open_letter`` reading it back and extracting each entry).

    .venv/bin/python benchmarks/bench_v2_zip.py [--documents 50] [--size 2MiB] [--dir DIR]

Prints entries/s and MB/s (unpacked) for both, best of three, and the peak RSS of each in
its own process. The documents are PDF-like: a text stream that deflates about 4:1.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from svarinn_daemon.letter.filmetadata import ExpectedFile
from svarinn_daemon.letter.spool import SpoolFile
from svarinn_daemon.letter.unzip import StreamingUnzip
from svarinn_daemon.letter.verify import open_letter
from svarinn_daemon.policies import VerifyPolicy

FEED = 1 << 20  # what the decryptor hands on at a time


def document(n: int, size: int) -> bytes:
    rng = random.Random(n)
    words = [rng.choice(["søknad", "vedtak", "kommune", "løyve", "sak", "2026"]) for _ in range(64)]
    line = (" ".join(words) + f" {n}\n").encode()
    body = (line * (size // len(line) + 1))[:size]
    noise = rng.randbytes(size // 4)
    return (
        b"%PDF-1.7\n"
        + bytes(a ^ b for a, b in zip(body[: size // 4], noise, strict=True))
        + body[size // 4 :]
    )


def build(directory: Path, count: int, size: int) -> tuple[Path, list[ExpectedFile]]:
    buffer = io.BytesIO()
    expected = []
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for n in range(count):
            data = document(n, size)
            zf.writestr(f"dokument-{n:03d}.pdf", data)
            expected.append(
                ExpectedFile(
                    f"dokument-{n:03d}.pdf",
                    "application/pdf",
                    hashlib.sha256(data).hexdigest(),
                    len(data),
                )
            )
    path = directory / "letter.zip"
    path.write_bytes(buffer.getvalue())
    return path, expected


def streamed(path: Path, expected: list[ExpectedFile], work: Path) -> int:
    work.mkdir()
    unzip = StreamingUnzip(expected, VerifyPolicy(), work)
    size = 0
    with path.open("rb") as f:
        while chunk := f.read(FEED):  # the ZIP itself is not hashed, as in the daemon
            size += len(chunk)
            unzip.write(chunk)
    letter = unzip.finish(size=size)
    count = sum(1 for _ in letter.documents())
    unzip.discard()
    return count


def spooled(path: Path, expected: list[ExpectedFile], work: Path) -> int:
    work.mkdir()
    digest = hashlib.sha256()
    size = 0
    with SpoolFile(work / "letter.part") as out, path.open("rb") as f:
        while chunk := f.read(FEED):
            digest.update(chunk)
            size += len(chunk)
            out.write(chunk)
        spool = out.finish()
    count = 0
    letter = open_letter(
        spool,
        sha256=digest.hexdigest(),
        size=size,
        expected=expected,
        work_dir=work,
        container_zip=True,
    )
    with letter:
        for _document in letter.documents():
            count += 1
    shutil.rmtree(work)
    return count


def child(mode: str, directory: Path, count: int, size: int) -> None:
    path, expected = build(directory, count, size)
    run = streamed if mode == "streamed" else spooled
    best = float("inf")
    for attempt in range(3):
        started = time.perf_counter()
        assert run(path, expected, directory / f"{mode}-{attempt}") == count
        best = min(best, time.perf_counter() - started)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    unpacked = count * size / 1e6
    print(
        f"  {mode:9} {count / best:8.0f} entries/s {unpacked / best:8.0f} MB/s "
        f"({best:.3f} s, ZIP {path.stat().st_size / 1e6:.0f} MB, peak RSS {rss:.0f} MB)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--documents", type=int, default=50)
    parser.add_argument("--size", default="2MiB", help="each document's size (KiB/MiB)")
    parser.add_argument("--dir", type=Path)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    units = {"KiB": 1024, "MiB": 1024 * 1024}
    size = next(
        (int(args.size[: -len(u)]) * m for u, m in units.items() if args.size.endswith(u)),
        0,
    ) or int(args.size)
    if args.child:
        child(args.child[0], Path(args.child[1]), args.documents, size)
        return
    print(f"V2 letter of {args.documents} documents of {size / 1024:.0f} KiB, deflated:")
    for mode in ("spooled", "streamed"):
        with tempfile.TemporaryDirectory(dir=args.dir) as directory:
            subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--documents",
                    str(args.documents),
                    "--size",
                    str(size),
                    "--child",
                    mode,
                    directory,
                ],
                check=True,
            )


if __name__ == "__main__":
    main()
