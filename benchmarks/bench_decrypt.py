"""Benchmark: streaming CMS decryption + SHA-256 against the primitives' ceiling and openssl.

Makes a file in SvarUt's exact shape (our Encryptor: BER indefinite lengths, RSA-OAEP,
AES-256-CBC, 1000-byte segments) in a temporary directory, then measures, each in its own
subprocess so peak RSS is that run's alone:

- the ceiling: cryptography's AES-256-CBC decryptor (update_into a reused buffer) plus
  hashlib.sha256 over the same file in 1 MiB chunks, no parsing;
- our Decryptor fed 1 MiB chunks, computing sha256 (hash worker thread on, the default),
  and once more single-threaded (``hash_in_thread=False``);
- ``openssl cms -decrypt`` writing to /dev/null.

Throughput is input (ciphertext) bytes per second, 1 MB = 10**6 bytes; every run reads the
file from the page cache with ``readinto`` a reused 1 MiB buffer, the same way for every
run, so none pays for allocations the measured code does not make. Each figure is the best
of ``--repeat`` runs.

    .venv/bin/python benchmarks/bench_decrypt.py [--size 1GiB] [--repeat 2]
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from ceiling import decrypt_and_hash

CHUNK = 1 << 20
TARGET_RATIO = 0.90
TARGET_RSS_MB = 64.0
_UNITS = {"": 1, "b": 1, "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "mb": 10**6, "gb": 10**9}


def parse_size(text: str) -> int:
    match = re.fullmatch(r"\s*(\d+)\s*([a-zA-Z]*)\s*", text)
    if not match or match.group(2).lower() not in _UNITS:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 1GiB, 256MiB)")
    return int(match.group(1)) * _UNITS[match.group(2).lower()]


def peak_rss_mb() -> float:
    """This process's peak RSS (VmHWM), in MB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024 / 1e6
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6


# --- workers (run in subprocesses) ----------------------------------------------------------


def worker_ours(path: str, key: str, cert: str, threaded: bool) -> dict[str, object]:
    from svarinn_daemon.cms import Decryptor
    from svarinn_daemon.keys import load_key_pair

    pair = load_key_pair("bench", Path(key).read_bytes(), certificate_pem=Path(cert).read_bytes())
    start = time.perf_counter()
    decryptor = Decryptor([pair], hash_in_thread=threaded)
    buffer = bytearray(CHUNK)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as f:
        while count := f.readinto(buffer):
            decryptor.feed(view[:count])
    decryptor.close()
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "rss_mb": peak_rss_mb(), "sha256": decryptor.sha256}


def worker_ceiling(path: str) -> dict[str, object]:
    seconds, digest = decrypt_and_hash(path)
    return {"seconds": seconds, "rss_mb": peak_rss_mb(), "sha256": digest}


def worker_openssl(path: str, key: str, cert: str) -> dict[str, object]:
    command = ["openssl", "cms", "-decrypt", "-inform", "DER", "-binary"]
    command += ["-in", path, "-recip", cert, "-inkey", key, "-out", os.devnull]
    start = time.perf_counter()
    subprocess.run(command, check=True)
    seconds = time.perf_counter() - start
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024 / 1e6
    return {"seconds": seconds, "rss_mb": rss}


@dataclass(frozen=True)
class Result:
    seconds: float
    rss_mb: float
    sha256: str = ""


def run_worker(args: list[str]) -> Result:
    result = subprocess.run(
        [sys.executable, __file__, "--worker", *args], check=True, capture_output=True, text=True
    )
    return Result(**json.loads(result.stdout))


# --- setup ----------------------------------------------------------------------------------


def make_identity(directory: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench-receiver")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    key_path = directory / "key.pem"
    cert_path = directory / "cert.pem"
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


def make_file(path: Path, cert_path: Path, size: int) -> str:
    """Encrypt ``size`` pseudo-random bytes in SvarUt's shape; returns the plaintext sha256."""
    from cryptography import x509

    from svarinn_daemon.cms import Encryptor

    encryptor = Encryptor(x509.load_pem_x509_certificate(cert_path.read_bytes()))
    block = bytearray(os.urandom(CHUNK))
    sha = hashlib.sha256()
    with open(path, "wb") as f:
        written = 0
        counter = 0
        while written < size:
            block[:8] = counter.to_bytes(8, "big")  # no two chunks alike
            piece = bytes(block[: min(CHUNK, size - written)])
            sha.update(piece)
            f.write(encryptor.feed(piece))
            written += len(piece)
            counter += 1
        f.write(encryptor.close())
    return sha.hexdigest()


def best(runs: list[Result]) -> Result:
    return min(runs, key=lambda r: r.seconds)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=parse_size, default=1 << 30, help="plaintext size")
    parser.add_argument("--repeat", type=int, default=2, help="runs per measurement (best)")
    parser.add_argument("--no-openssl", action="store_true", help="skip openssl cms")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-cms-") as tmp:
        directory = Path(tmp)
        key, cert = make_identity(directory)
        path = directory / "letter.crypt"
        start = time.perf_counter()
        expected = make_file(path, cert, args.size)
        made = time.perf_counter() - start
        os.sync()  # no writeback of the fresh file during the measurements
        size = path.stat().st_size
        mb = size / 1e6
        print(f"file: {args.size / (1 << 20):.0f} MiB plaintext, {size:,} bytes of CMS in SvarUt's")
        print(f"      shape (BER indefinite, 1000-byte segments), made in {made:.1f} s")
        p, k, c = str(path), str(key), str(cert)
        ceiling = best([run_worker(["ceiling", p]) for _ in range(args.repeat)])
        threaded = best([run_worker(["ours", p, k, c, "1"]) for _ in range(args.repeat)])
        single = best([run_worker(["ours", p, k, c, "0"]) for _ in range(args.repeat)])
        if expected not in (threaded.sha256, single.sha256) or threaded.sha256 != single.sha256:
            print("ERROR: our sha256 does not match the plaintext's")
            return 1
        rows = [("ceiling: AES-256-CBC + sha256, 1 MiB chunks, no parsing", ceiling)]
        rows.append(("ours: Decryptor + sha256 (hash thread, default)", threaded))
        rows.append(("ours: Decryptor + sha256 (single thread)", single))
        openssl = None if args.no_openssl else run_worker(["openssl", p, k, c])
        if openssl is not None:
            rows.append(("openssl cms -decrypt", openssl))
        ceiling_rate = mb / ceiling.seconds
        print(f"{'measurement':58} {'seconds':>8} {'MB/s':>8} {'of ceiling':>10} {'peak RSS':>9}")
        for label, run in rows:
            rate = mb / run.seconds
            print(
                f"{label:58} {run.seconds:8.2f} {rate:8.0f} {rate / ceiling_rate:10.1%} "
                f"{run.rss_mb:6.1f} MB"
            )
        if openssl is not None:
            print(
                f"ratios: ours (default) is {openssl.seconds / threaded.seconds:.1f}x as fast as "
                f"openssl cms and uses 1/{openssl.rss_mb / threaded.rss_mb:.0f} of its peak RSS"
            )
        worst_rss = max(threaded.rss_mb, single.rss_mb)
        ok_speed = mb / threaded.seconds >= TARGET_RATIO * ceiling_rate
        ok_single = mb / single.seconds >= TARGET_RATIO * ceiling_rate
        ok_rss = worst_rss < TARGET_RSS_MB
        print(
            f"target >= {TARGET_RATIO:.0%} of ceiling: {'MET' if ok_speed else 'NOT MET'} "
            f"(default), {'MET' if ok_single else 'NOT MET'} (single thread)"
        )
        print(
            f"target peak RSS < {TARGET_RSS_MB:.0f} MB: {'MET' if ok_rss else 'NOT MET'} "
            f"(worst {worst_rss:.1f} MB)"
        )
    return 0 if ok_speed and ok_rss else 1


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--worker":
        kind, *rest = sys.argv[2:]
        if kind == "ours":
            result = worker_ours(rest[0], rest[1], rest[2], rest[3] == "1")
        elif kind == "ceiling":
            result = worker_ceiling(rest[0])
        else:
            result = worker_openssl(rest[0], rest[1], rest[2])
        print(json.dumps(result))
        sys.exit(0)
    sys.exit(main())
