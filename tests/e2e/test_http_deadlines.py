"""The ``http`` adapter's whole request has a deadline, whatever part of it a server drags
out (issue #24, item 12): ``timeout`` bounds each socket operation, so an endpoint sending its
status line and headers a byte at a time held a worker for as long as it kept sending."""

from __future__ import annotations

import json
import socket
import subprocess
import threading
from pathlib import Path

import pytest

from tests.support.daemon_harness import harness
from tests.support.loopback import ScriptedServer, Serve
from tests.support.programs import use_archive


def trickle_head(conn: socket.socket, stop: threading.Event) -> None:
    """Read the request, then send a status line and a header that never end: a byte a
    tenth of a second, each within any read timeout."""
    conn.recv(65536)
    conn.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
    while not stop.wait(0.1):
        conn.sendall(b"a")


def take_slowly(conn: socket.socket, stop: threading.Event) -> None:
    """Take the upload steadily, each bit well within any write timeout, but slowly (about
    5 MB/s, the whole letter in ten seconds or more); never answer."""
    while not stop.wait(0.05):
        chunk = conn.recv(262144)
        if not chunk:
            return
        RECEIVED.append(len(chunk))


RECEIVED: list[int] = []


@pytest.mark.parametrize(
    ("serve", "size"), [(trickle_head, 10_000), (take_slowly, 48_000_000)], ids=["head", "upload"]
)
def test_an_endpoint_dragging_out_any_part_of_a_request_is_cut_at_its_deadline(
    tmp_path: Path, serve: Serve, size: int
) -> None:
    with ScriptedServer(serve) as server, harness(tmp_path / "h") as h:
        url = server.base_url
        # No status_url: the POST itself is what is dragged out.
        use_archive(h, f'[archives.default]\nadapter = "http"\nurl = "{url}"\ntimeout = "1s"\n')
        h.sim.generate(1, size)
        RECEIVED.clear()
        daemon = h.spawn("poll-once")
        try:
            # The endpoint never stops: only the request's deadline can end it.
            out, _ = daemon.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.communicate()
            pytest.fail("poll-once was still held by the endpoint after 120 s")
        assert daemon.returncode == 1
        lines = [json.loads(x) for x in out.splitlines() if x.startswith("{")]
        errors = [str(x.get("error")) for x in lines if x["event"] == "forsendelse.retry_scheduled"]
        assert any("timed out" in e for e in errors), errors
        assert h.sim.state().acknowledged == {}
        if serve is take_slowly:  # cut before the upload ended, not by the answer's wait
            assert 0 < sum(RECEIVED) < size
