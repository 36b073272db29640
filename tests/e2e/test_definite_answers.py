"""Only a definite "the archive has it" gets a letter acknowledged without an upload (issue
#24, item 4): a status endpoint that answers 200 to anything, or a check_command that exits
0 without a reference, is a misconfiguration the operator hears of, and never a receipt."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.daemon_harness import harness
from tests.support.fakes.sakssystem import SakServer
from tests.support.loopback import ScriptedServer
from tests.support.programs import http_archive, use_archive


def test_a_status_url_that_answers_200_to_anything_gets_nothing_acknowledged(
    tmp_path: Path,
) -> None:
    with SakServer() as server, harness(tmp_path / "h") as h:
        server.state.catch_all = True
        use_archive(
            h,
            http_archive(server.url),
        )
        (letter,) = h.sim.generate(1, 10_000)
        for _ in range(3):
            code, lines = h.poll_once()
            assert code == 1
        assert h.sim.state().acknowledged == {}
        assert h.sim.state().reports == ()
        assert server.state.letters == {}
        errors = [
            str(x.get("error", "")) for x in lines if x["event"] == "forsendelse.retry_scheduled"
        ]
        assert any('"reference"' in e and "check status_url" in e for e in errors), lines
        online = h.cli("check-config", "--online", "--quiet")
        assert online.returncode == 1
        assert "archive default: ArchiveError: status_url answered 200" in online.stderr
        server.state.catch_all = False
        assert h.cli("check-config", "--online", "--quiet").returncode == 0
        for _ in range(3):
            if h.poll_once()[0] == 0:
                break
        assert set(h.sim.state().acknowledged) == {letter.id}
        assert set(server.state.letters) == {letter.id}


def test_a_check_command_that_exits_0_without_a_reference_gets_nothing_acknowledged(
    tmp_path: Path,
) -> None:
    with harness(tmp_path / "h") as h:
        store = h.root / "store"
        script = h.config_path.parent / "import.sh"
        script.write_text(f'#!/bin/sh\nmkdir -p "{store}/$SVARINN_FORSENDELSE_ID"\necho "sak:1"\n')
        use_archive(
            h,
            """[archives.default]
adapter = "command"
command = ["/bin/sh", "import.sh"]
check_command = ["/bin/true"]
timeout = "10s"
""",
        )
        h.sim.generate(1, 10_000)
        for _ in range(3):
            code, lines = h.poll_once()
            assert code == 1
        assert h.sim.state().acknowledged == {}
        assert not store.exists()
        errors = [
            str(x.get("error", "")) for x in lines if x["event"] == "forsendelse.retry_scheduled"
        ]
        assert any("exited 0" in e and "without printing a reference" in e for e in errors)
        online = h.cli("check-config", "--online", "--quiet")
        assert online.returncode == 1
        assert "archive default: ArchiveError: check_command /bin/true exited 0" in online.stderr


@pytest.mark.parametrize("api", ["v1", "v2"])
def test_a_mime_type_with_line_breaks_writes_no_header_of_its_own(tmp_path: Path, api: str) -> None:
    """Issue #24, item 2: a v1 ``mimetype`` / v2 ``mimeType`` carrying CR/LF and a part of
    its own reached the multipart body raw; under a Starlette receiver the sender's JSON
    became the metadata and the document vanished."""
    from svarinn_daemon.simulator.letters import LetterFile

    hostile = (
        "application/pdf\r\n\r\n--x\r\nContent-Disposition: form-data; "
        'name="metadata"\r\n\r\n{"forsendelse_id": "forged"}'
    )
    with SakServer() as server, harness(tmp_path, api=api) as h:
        use_archive(
            h,
            http_archive(server.url),
        )
        letter = h.sim.add_letter(LetterFile("brev.pdf", hostile, data=b"%PDF-1.4 x\n"))
        for _ in range(3):
            if h.poll_once()[0] == 0:
                break
        received = server.state.letters[letter.id]
        assert received.metadata["forsendelse_id"] == letter.id
        assert [(n, t) for n, t, _ in received.files] == [("brev.pdf", "application/octet-stream")]
        assert received.files[0][2] == b"%PDF-1.4 x\n"
        assert set(h.sim.state().acknowledged) == {letter.id}


def test_the_http_adapters_own_secrets_never_reach_the_log_or_the_ledger(tmp_path: Path) -> None:
    """Issue #24, item 7: an endpoint echoing the Authorization header put the token (and a
    basic password's base64) into the log and the ledger."""
    import base64

    with SakServer() as server, harness(tmp_path / "h") as h:
        secret = h.root / "sak-password"
        secret.write_text("correct-horse-battery\n")
        use_archive(
            h,
            http_archive(server.url, 'username = "svarinn"', f'password_file = "{secret}"'),
        )
        (letter,) = h.sim.generate(1, 10_000)
        server.state.status_faults[:] = ["echo"] * 3
        code, lines = h.poll_once()
        assert code == 1
        shown = h.cli("show", letter.id, "--json").stdout
        logged = "\n".join(str(line) for line in lines)
        b64 = base64.b64encode(b"svarinn:correct-horse-battery").decode()
        assert "unavailable" in shown  # the echo is there, the secrets are not
        for text in (logged, shown):
            assert "correct-horse-battery" not in text
            assert b64 not in text


def test_an_adapter_timeout_longer_than_the_lease_is_refused(tmp_path: Path) -> None:
    """Issue #24, item 12: a call that may outlive the lease would let another worker take
    the letter over while it still runs."""
    with harness(tmp_path / "h") as h:  # the harness's lease is 30s
        use_archive(h, '[archives.default]\nadapter = "command"\ncommand = ["/bin/true"]\n')
        checked = h.cli("check-config", "--quiet")
        assert checked.returncode == 2
        assert "archives.default.timeout: 10m is longer than [daemon] lease (30s)" in (
            " ".join(checked.stderr.split())
        )
        assert h.cli("poll-once").returncode == 2


def test_a_trickling_endpoint_cannot_hold_a_worker_past_its_deadline(tmp_path: Path) -> None:
    """Issue #24, item 12: ``timeout`` bounded each socket read only, so an endpoint sending a
    byte now and then held one POST for a minute with timeout = "3s"."""
    import socket
    import threading
    import time

    def trickle(conn: socket.socket, stop: threading.Event) -> None:
        conn.settimeout(1)
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 1000\r\n\r\n")
        while not stop.is_set():
            conn.sendall(b"x")
            time.sleep(0.3)

    with ScriptedServer(trickle) as server, harness(tmp_path / "h") as h:
        use_archive(
            h,
            http_archive(server.base_url, timeout="1s"),
        )
        h.sim.generate(1, 10_000)
        started = time.monotonic()
        code, lines = h.poll_once()
        took = time.monotonic() - started
        assert code == 1
        errors = [str(x.get("error")) for x in lines if x["event"] == "forsendelse.retry_scheduled"]
        assert any("timed out" in e for e in errors), errors
        print(f"\ntrickling endpoint, timeout 1s: poll-once ended after {took:.1f} s")


def test_api_key_headers_have_a_secret_form_and_plain_ones_are_warned_of(tmp_path: Path) -> None:
    """Issue #24, item 14: ``headers = {...}`` had no secret form and check-config printed
    them; secrets in ``command`` argv were printed too."""
    with SakServer() as server, harness(tmp_path / "h") as h:
        key_file = h.config_path.parent / "api-key"
        key_file.write_text("k3y-0f-the-sakssystem\n")
        use_archive(
            h,
            http_archive(
                server.url,
                'headers = { X-Kommune = "3801", X-Api-Token = "plain-and-printed" }',
                'secret_headers_file = { X-Api-Key = "api-key" }',
            ),
        )
        checked = h.cli("check-config")
        assert checked.returncode == 0, checked.stderr
        assert "k3y-0f-the-sakssystem" not in checked.stdout + checked.stderr
        assert "X-Api-Token looks like a secret" in checked.stderr
        (letter,) = h.sim.generate(1, 10_000)
        for _ in range(3):
            if h.poll_once()[0] == 0:
                break
        received = server.state.letters[letter.id]
        assert received.headers["X-Api-Key"] == "k3y-0f-the-sakssystem"
        assert received.headers["X-Kommune"] == "3801"
        use_archive(
            h,
            '[archives.default]\nadapter = "command"\ntimeout = "10s"\n'
            'command = ["/usr/bin/import", "--password=hunter2"]\n',
        )
        checked = h.cli("check-config", "--quiet")
        assert "looks like a secret" in checked.stderr
        use_archive(
            h,
            http_archive(server.url, 'headers = { X-Bad = "a\\r\\nX-Injected: 1" }'),
        )
        assert h.cli("check-config", "--quiet").returncode == 2
