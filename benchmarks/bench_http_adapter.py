"""Peak memory and throughput of the ``http`` archive adapter posting one large letter,
beside a baseline from the same run: the same file sent as a plain streamed HTTP body with
``http.client`` (no multipart, no adapter).

    .venv/bin/python benchmarks/bench_http_adapter.py [--dir DIR] [--size-mib 1024]

The receiver runs in its own process (it reads and hashes what arrives, then answers 201),
and so does each sender, so that a sender's peak RSS is its own. The issue's bar: a 1 GiB
letter keeps the daemon's side under 100 MB.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

MiB = 2**20


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class _Receiver(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        return None

    def do_POST(self) -> None:
        remaining = int(self.headers["Content-Length"])
        digest = hashlib.sha256()
        while remaining:
            chunk = self.rfile.read(min(remaining, MiB))
            digest.update(chunk)
            remaining -= len(chunk)
        body = json.dumps({"reference": digest.hexdigest()[:16]}).encode()
        self.send_response(201)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def serve(port_file: Path) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    port_file.write_text(str(server.server_address[1]))
    server.serve_forever()


def send_with_adapter(url: str, source: Path, work: Path) -> None:
    from svarinn_daemon.adapters import DocumentMetadata, VerificationRecord
    from svarinn_daemon.adapters.http_archive import HttpArchive

    size = source.stat().st_size
    before = peak_rss_mb()
    archive = HttpArchive(url, work_directory=work)
    now = datetime.now(UTC)
    started = time.perf_counter()
    tx = archive.begin("b3c1e0d2-0000-4000-8000-000000000001", {"tittel": "stor"})
    tx.add_document("stor.pdf", source, DocumentMetadata("application/pdf", "00", size, True))
    ref = tx.commit(VerificationRecord("00" * 32, size, True, "pdf", True, now, now))
    took = time.perf_counter() - started
    archive.close()
    print(json.dumps({"seconds": took, "rss_mb": peak_rss_mb(), "rss_before": before, "ref": ref}))


def send_baseline(url: str, source: Path) -> None:
    host, port = url.split("//")[1].split("/")[0].split(":")
    started = time.perf_counter()
    connection = http.client.HTTPConnection(host, int(port))
    with open(source, "rb") as body:
        connection.request(
            "POST", "/", body=body, headers={"Content-Length": str(source.stat().st_size)}
        )
    connection.getresponse().read()
    took = time.perf_counter() - started
    print(json.dumps({"seconds": took, "rss_mb": peak_rss_mb()}))


def run_child(*args: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, *args], capture_output=True, text=True, check=True
    ).stdout
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--adapter", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--baseline", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return
    if args.adapter:
        send_with_adapter(args.adapter[0], Path(args.adapter[1]), Path(args.adapter[2]))
        return
    if args.baseline:
        send_baseline(args.baseline[0], Path(args.baseline[1]))
        return
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        work = Path(tmp)
        source = work / "stor.pdf"
        with open(source, "wb") as out:
            for _ in range(args.size_mib):
                out.write(os.urandom(MiB))
        port_file = work / "port"
        receiver = subprocess.Popen([sys.executable, __file__, "--serve", str(port_file)])
        try:
            while not port_file.exists() or not port_file.read_text():
                time.sleep(0.05)
            url = f"http://127.0.0.1:{port_file.read_text()}/letters"
            base = run_child("--baseline", url, str(source))
            adapter = run_child("--adapter", url, str(source), str(work / "adapter"))
        finally:
            receiver.terminate()
            receiver.wait()
        size = args.size_mib
        print(f"one letter of {size} MiB over loopback to a receiver that hashes it:")
        print(
            f"  baseline http.client, plain body: {base['seconds']:6.2f} s "
            f"({size / base['seconds']:6.0f} MiB/s), peak RSS {base['rss_mb']:5.1f} MB"
        )
        print(
            f"  http adapter, multipart:          {adapter['seconds']:6.2f} s "
            f"({size / adapter['seconds']:6.0f} MiB/s), peak RSS {adapter['rss_mb']:5.1f} MB "
            f"(after imports {adapter['rss_before']:5.1f} MB)"
        )
        verdict = "under" if adapter["rss_mb"] < 100 else "OVER"
        print(f"  the adapter's process stayed {verdict} 100 MB")


if __name__ == "__main__":
    main()
