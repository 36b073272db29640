"""TLS end to end: the daemon against ``simulator --tls`` with verification on.

The happy path runs the whole daemon over HTTPS with the simulator's throwaway CA as the
account's ``ca_bundle``; a wrong CA, an expired server certificate and a certificate for
another host each fail with :class:`TlsVerificationError`, naming the account, before any
request (and so any credential) reaches the server. Downloads broken mid-body over TLS are
retried in tests/e2e/test_daemon.py, beside the same faults over plain HTTP.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from svarinn_daemon.errors import ServiceUnavailableError, TlsVerificationError
from svarinn_daemon.service.runtime import connect
from svarinn_daemon.simulator import Simulator, generate_identity
from svarinn_daemon.simulator.tls import ServerTls, make_server_tls
from tests.support.daemon_harness import harness
from tests.support.simhelpers import list_new, make_account


@pytest.mark.parametrize("api", ["v1", "v2"])
def test_the_daemon_imports_over_tls_with_verification(tmp_path: Path, api: str) -> None:
    with harness(tmp_path, tls=True, api=api) as h:
        assert h.sim.base_url.startswith("https://127.0.0.1:")
        assert "ca_bundle" in h.config_path.read_text()
        singles = h.sim.generate(3, 300_000)
        (zipped,) = h.sim.generate(1, 20_000, files_per_letter=3)
        code, lines = h.poll_once()
        assert code == 0, lines[-3:]
        every = [letter.id for letter in [*singles, zipped]]
        state = h.sim.state()
        assert dict(state.acknowledged) == dict.fromkeys(every, 1)
        assert h.archived_ids() == set(every)
        for letter in singles:
            (file,) = letter.files
            data = (h.archive / letter.id / file.filnavn).read_bytes()
            assert hashlib.sha256(data).hexdigest() == file.sha256
        online = h.cli("check-config", "--quiet", "--online")
        assert online.returncode == 0, online.stderr


def _serve(tmp_path: Path, tls: ServerTls) -> Simulator:
    sim = Simulator(generate_identity().certificate, tls=tls.server_context())
    sim.generate(1, 1_000)
    return sim.start()


BAD = {
    # name: (how the server's PKI is made, reason, what the message says)
    "wrong-ca": ({}, "untrusted", "not signed by a CA we trust"),
    "expired": ({"expired": True}, "expired", "has expired"),
    "other-host": ({"hosts": ("svarinn.example.invalid",)}, "hostname", "for another"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_server_certificates_fail_typed_and_send_nothing(tmp_path: Path, case: str) -> None:
    options, reason, said = BAD[case]
    served = make_server_tls(tmp_path / "server", **options)  # type: ignore[arg-type]
    ours = served if case != "wrong-ca" else make_server_tls(tmp_path / "other")
    sim = _serve(tmp_path, served)
    try:
        account = make_account(
            sim.base_url,
            username=sim.username,
            password=sim.password,
            name="bykommune",
            ca_bundle=ours.ca_certificate,
        )
        with connect(account) as client, pytest.raises(TlsVerificationError) as caught:
            list_new(client)
        error = caught.value
        assert isinstance(error, ServiceUnavailableError)  # temporary: nothing is touched
        assert error.reason == reason
        text = str(error)
        assert "account bykommune" in text
        assert said in text
        assert "nothing was sent" in text
        assert sim.password not in text
        # The handshake failed before any request: the server saw no request, no credential.
        assert sim.request_log() == ()
        assert sim.state().requests == {}
    finally:
        sim.stop()


def test_the_daemon_names_the_account_and_leaves_the_letter(tmp_path: Path) -> None:
    """poll-once and check-config --online against a server the CA bundle does not vouch for."""
    with harness(tmp_path, tls=True) as h:
        (letter,) = h.sim.generate(1, 1_000)
        other = make_server_tls(tmp_path / "other")
        text = h.config_path.read_text()
        bundle = str((tmp_path / "tls" / "simulator-ca.pem").resolve())
        assert bundle in text
        h.config_path.write_text(text.replace(bundle, str(other.ca_certificate)))
        code, lines = h.poll_once()
        assert code == 1
        failed = [line for line in lines if "TlsVerificationError" in str(line)]
        assert failed, lines
        assert "account simulator" in str(failed[0])
        assert h.sim.password not in str(lines)
        online = subprocess.run(
            [sys.executable, "-m", "svarinn_daemon", "check-config", "--online", "-q",
             "--config", str(h.config_path)],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert online.returncode == 1
        assert "TlsVerificationError" in online.stderr
        assert "not signed by a CA we trust" in online.stderr
        assert h.sim.password not in online.stderr
        assert h.sim.request_log() == ()
        assert h.sim.state().pending == (letter.id,)


def test_simulator_command_with_tls_writes_a_config_that_verifies(tmp_path: Path) -> None:
    """``simulator --tls --write-config DIR``: HTTPS, its CA beside config.toml, and a
    ``check-config --online`` that passes with verification on."""
    import re
    import signal

    config_dir = tmp_path / "sim"
    process = subprocess.Popen(
        [sys.executable, "-m", "svarinn_daemon", "simulator", "--tls", "--generate", "2",
         "--write-config", str(config_dir), "--duration", "60"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        text = ""
        while "Press Ctrl-C" not in text:
            line = process.stdout.readline()
            assert line, process.stderr.read() if process.stderr else ""
            text += line
        assert re.search(r"listening on https://127\.0\.0\.1:\d+", text), text
        ca = config_dir / "simulator-ca.pem"
        assert f"TLS CA:      {ca}" in text
        assert f'ca_bundle = "{ca.resolve()}"' in (config_dir / "config.toml").read_text()
        assert (config_dir / "simulator-tls-key.pem").stat().st_mode & 0o077 == 0
        online = subprocess.run(
            [sys.executable, "-m", "svarinn_daemon", "check-config", "--online", "-q",
             "--config", str(config_dir / "config.toml")],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert online.returncode == 0, online.stderr
        assert "accepted the credentials; 2 letter(s) waiting" in online.stderr
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0
