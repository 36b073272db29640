"""Throughput and peak memory of the archive adapter and zip verification, each beside a
baseline measured in the same run on the same disk.

    .venv/bin/python benchmarks/bench_blocks.py [--dir DIR] [--big-mib 1024]

Each scenario runs in its own process so that its peak RSS is its own.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from svarinn_daemon.adapters import DocumentMetadata, VerificationRecord
from svarinn_daemon.adapters.filesystem import FilesystemArchive
from svarinn_daemon.letter.verify import ExpectedFile, open_letter
from tests.support.cmshelpers import sha256_file

MiB = 2**20
NOW = datetime.now(UTC)


def record(sha: str, size: int) -> VerificationRecord:
    return VerificationRecord(sha, size, True, "pdf", True, NOW, NOW)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def random_file(path: Path, size: int) -> None:
    with open(path, "wb") as out:
        for _ in range(size // MiB):
            out.write(os.urandom(MiB))


def small_letters(work: Path, count: int = 1000, size: int = 50 * 1024) -> None:
    payload = os.urandom(size)
    meta = DocumentMetadata("application/pdf", hashlib.sha256(payload).hexdigest(), size, True)
    base = work / "baseline"
    base.mkdir()
    start = time.perf_counter()
    for i in range(count):  # baseline: write + fsync one file per letter, nothing else
        fd = os.open(base / f"{i}.pdf", os.O_WRONLY | os.O_CREAT, 0o640)
        os.write(fd, payload)
        os.fsync(fd)
        os.close(fd)
    baseline = time.perf_counter() - start
    archive = FilesystemArchive(work / "archive")
    start = time.perf_counter()
    for i in range(count):
        tx = archive.begin(f"letter-{i}", {"id": f"letter-{i}", "tittel": "t"})
        tx.add_document("brev.pdf", io.BytesIO(payload), meta)
        tx.commit(record(meta.sha256, size))
    elapsed = time.perf_counter() - start
    print(
        f"filesystem adapter, {count} letters of {size // 1024} KiB: {count / elapsed:,.0f} "
        f"letters/s ({elapsed:.2f} s); baseline write+fsync of one file each: "
        f"{count / baseline:,.0f} files/s; peak RSS {peak_rss_mb():.0f} MB"
    )


def big_letter(work: Path, size: int) -> None:
    source = work / "spool"
    random_file(source, size)
    start = time.perf_counter()
    digest, _ = sha256_file(source)
    hashing = time.perf_counter() - start
    start = time.perf_counter()
    shutil.copyfile(source, work / "copy")
    copying = time.perf_counter() - start
    (work / "copy").unlink()
    meta = DocumentMetadata("application/pdf", digest, size, True)
    for hardlink in (True, False):
        archive = FilesystemArchive(work / f"archive-{hardlink}", hardlink=hardlink)
        start = time.perf_counter()
        tx = archive.begin("big", {})
        tx.add_document("big.pdf", source, meta)
        tx.commit(record(digest, size))
        elapsed = time.perf_counter() - start
        mode = "hard link" if hardlink else "copy+fsync"
        print(
            f"filesystem adapter, one {size // MiB} MiB letter ({mode}): {elapsed:.2f} s, "
            f"{size / MiB / elapsed:,.0f} MB/s"
        )
    print(
        f"  baselines: sha256 {size / MiB / hashing:,.0f} MB/s, shutil.copyfile "
        f"{size / MiB / copying:,.0f} MB/s; peak RSS {peak_rss_mb():.0f} MB"
    )


def zip_letter(work: Path, size: int) -> None:
    parts = 4
    zpath = work / "letter.zip"
    expected = []
    with zipfile.ZipFile(zpath, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for n in range(parts):
            digest = hashlib.sha256()
            with zf.open(f"doc{n}.pdf", "w", force_zip64=True) as out:
                for _ in range(size // parts // MiB):
                    chunk = os.urandom(MiB)
                    digest.update(chunk)
                    out.write(chunk)
            expected.append(ExpectedFile(f"doc{n}.pdf", None, digest.hexdigest(), size // parts))
    start = time.perf_counter()
    sha, zsize = sha256_file(zpath)
    hashing = time.perf_counter() - start
    work_dir = work / "extract"
    work_dir.mkdir()
    start = time.perf_counter()
    letter = open_letter(zpath, sha256=sha, size=zsize, expected=expected, work_dir=work_dir)
    with letter:
        count = sum(1 for _ in letter.documents())
    elapsed = time.perf_counter() - start
    if count != parts or not letter.result.verified:
        raise SystemExit("zip verification did not verify every document")
    print(
        f"verify, zip of {parts} x {size // parts // MiB} MiB (deflate): {elapsed:.2f} s, "
        f"{size / MiB / elapsed:,.0f} MB/s unpacked+hashed+written; baseline sha256 of the "
        f"zip {zsize / MiB / hashing:,.0f} MB/s; peak RSS {peak_rss_mb():.0f} MB"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument("--big-mib", type=int, default=1024)
    parser.add_argument("--scenario", choices=("small", "big", "zip"))
    args = parser.parse_args()
    if args.scenario is None:
        for scenario in ("small", "big", "zip"):
            cmd = [sys.executable, __file__, "--scenario", scenario, "--big-mib", str(args.big_mib)]
            if args.dir:
                cmd += ["--dir", str(args.dir)]
            subprocess.run(cmd, check=True)
        return
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="bench-") as tmp:
        work = Path(tmp)
        if args.scenario == "small":
            small_letters(work)
        elif args.scenario == "big":
            big_letter(work, args.big_mib * MiB)
        else:
            zip_letter(work, min(args.big_mib, 512) * MiB)


if __name__ == "__main__":
    main()
