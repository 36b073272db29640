"""The simulator itself: the operator command, letters from a directory, state, faults, stop."""

from __future__ import annotations

import io
import re
import signal
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import httpx
import pytest
from cryptography import x509

from svarinn_daemon.cli import main
from svarinn_daemon.cms import Decryptor
from svarinn_daemon.config import load_config
from svarinn_daemon.errors import CmsError
from svarinn_daemon.keys import KeyPair, load_key_pair
from svarinn_daemon.service.runtime import connect
from svarinn_daemon.simulator import Fault, LetterFile, Simulator, parse_fault
from svarinn_daemon.simulator.letters import pdf_chunks
from svarinn_daemon.svarinn import Forsendelse, SvarInnClient
from tests.support.simhelpers import list_new, make_account, openssl_decrypt


def test_operator_flow_through_the_command(tmp_path: Path) -> None:
    """Start the command, point a client at the written config, decrypt, stop with SIGTERM."""
    config_dir = tmp_path / "sim"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "svarinn_daemon",
            "simulator",
            "--generate",
            "3",
            "--size",
            "20KB",
            "--files-per-letter",
            "2",
            "--write-config",
            str(config_dir),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        banner = []
        for line in process.stdout:
            banner.append(line)
            if line.startswith("Press Ctrl-C"):
                break
        text = "".join(banner)
        url = re.search(r"listening on (http://127\.0\.0\.1:\d+)", text)
        assert url is not None, text
        assert "password:" in text
        assert "certificate:" in text
        assert "3 waiting" in text
        config = load_config(config_dir / "config.toml", environ={})
        (account,) = config.accounts
        assert (account.api, account.base_url) == ("v2", f"{url.group(1)}/api")  # the default
        assert f"v2 base_url: {url.group(1)}/api" in text
        assert (config_dir / "private-key.pem").stat().st_mode & 0o077 == 0
        with connect(account) as client:
            letters = list_new(client)
            assert len(letters) == 3
            with client.download(letters[0]) as download:
                ciphertext = b"".join(download)
            plain = openssl_decrypt(ciphertext, config_dir / "private-key.pem", tmp_path)
            names = zipfile.ZipFile(io.BytesIO(plain)).namelist()
            assert names == [f.filnavn for f in letters[0].filmetadata]
            client.acknowledge(letters[0].id)
        state = httpx.get(f"{url.group(1)}/_simulator/state").json()
        assert state["acknowledged"] == {letters[0].id: 1}
        assert len(state["pending"]) == 2
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    assert "stopped: 1 acknowledgement(s), 0 failure report(s), 2 letter(s) still waiting" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--fault", "explode"], "unknown fault 'explode'"),
        (["--fault", "http_503:rate=2"], "rate 2.0 is not between 0 and 1"),
        (["--fault", "redirect"], "needs location"),
        (["--size", "lots"], "--size"),
        (["--letters", "/nonexistent/dir"], "is not a directory"),
        (["--certificate", "/nonexistent.pem"], "cannot read"),
    ],
)
def test_command_usage_errors(argv: list[str], message: str) -> None:
    out, err = io.StringIO(), io.StringIO()
    assert main(["simulator", "--duration", "0", *argv], environ={}, stdout=out, stderr=err) == 2
    assert message in err.getvalue()


def test_command_with_a_given_certificate(conformance_dir: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    argv = [
        "simulator",
        "--duration",
        "0",
        "--generate",
        "1",
        "--fault",
        "http_503:rate=0.5",
        "--certificate",
        str(conformance_dir / "certificate.pem"),
    ]
    assert main(argv, environ={}, stdout=out, stderr=err) == 0, err.getvalue()
    text = out.getvalue()
    assert f"certificate: {conformance_dir / 'certificate.pem'} (serial FBCAEA76FC34BC6A)" in text
    assert "faults:      http_503:rate=0.5" in text
    assert "private key" not in text


def test_letters_from_a_directory(
    conformance_cert: x509.Certificate, conformance_dir: Path, tmp_path: Path
) -> None:
    source = tmp_path / "letters"
    (source / "sak-42").mkdir(parents=True)
    (source / "vedtak.pdf").write_bytes((conformance_dir / "small.pdf").read_bytes())
    (source / "sak-42" / "brev.txt").write_text("hei\n")
    (source / "sak-42" / "kart.png").write_bytes(b"\x89PNG fake")
    (source / ".hidden").write_text("ignored")
    with Simulator(conformance_cert) as sim:
        multi, single = sim.load_directory(source)  # sorted by name
    assert (single.tittel, single.content_type, single.filename) == (
        "vedtak",
        "application/pdf",
        "vedtak.pdf",
    )
    assert multi.content_type == "application/zip"
    assert [(f.filnavn, f.mimetype, f.size) for f in multi.files] == [
        ("brev.txt", "text/plain", 4),
        ("kart.png", "image/png", 9),
    ]


@pytest.mark.parametrize("size", [10, 3000, 1_000_000])
def test_generated_pdfs_are_well_formed(size: int) -> None:
    pdf = b"".join(pdf_chunks("Simulert (test)", size))
    assert pdf.startswith(b"%PDF-1.4")
    assert pdf.endswith(b"%%EOF\n")
    smallest = len(b"".join(pdf_chunks("Simulert (test)", 0)))
    assert len(pdf) == max(size, smallest)
    startxref = int(pdf.rsplit(b"startxref\n", 1)[1].split(b"\n")[0])
    assert pdf[startxref:].startswith(b"xref\n")
    offsets = re.findall(rb"(\d{10}) 00000 n", pdf)
    for number, offset in enumerate(offsets, start=1):
        assert pdf[int(offset) :].startswith(b"%d 0 obj" % number)


def test_state_api_and_reports(simulator: Simulator) -> None:
    (letter,) = simulator.generate(1, size=10)
    assert simulator.report(letter.id, "midlertidig", False)
    state = httpx.get(f"{simulator.base_url}/_simulator/state").json()
    assert state["pending"] == [letter.id]
    assert state["reports"][0]["feilmelding"] == "midlertidig"
    assert state["reports"][0]["permanent"] is False
    assert state["requests"] == {}  # counted as the answer goes out
    assert simulator.state().requests == {"state": 1}


def test_bad_requests(simulator: Simulator) -> None:
    (letter,) = simulator.generate(1, size=10)
    auth = (simulator.username, simulator.password)
    base = f"{simulator.base_url}/tjenester/svarinn"
    with httpx.Client(auth=auth) as http:
        assert http.get(f"{base}/nowhere").status_code == 404
        report = f"{base}/mottakFeilet/forsendelse/{letter.id}"
        assert http.post(report, json={"feilmelding": "", "permanent": True}).status_code == 400
        assert http.post(report, json={"feilmelding": "x"}).status_code == 400
        assert http.post(report, content=b"not json").status_code == 400
        no_auth = httpx.get(f"{base}/mottaker/hentNyeForsendelser")
        assert no_auth.status_code == 401
        assert no_auth.headers["WWW-Authenticate"].startswith("Basic")
    assert simulator.state().reports == ()
    assert simulator.state().rejected_credentials == 1


def test_faults_fire_times_and_clear(simulator: Simulator) -> None:
    simulator.add_fault(Fault("http_500", times=2))
    simulator.add_fault(Fault("http_503", rate=0.0))
    auth = (simulator.username, simulator.password)
    url = f"{simulator.base_url}/tjenester/svarinn/mottaker/hentNyeForsendelser"
    statuses = [httpx.get(url, auth=auth).status_code for _ in range(4)]
    assert statuses == [500, 500, 200, 200]
    simulator.add_fault(Fault("http_500"))
    simulator.clear_faults()
    assert httpx.get(url, auth=auth).status_code == 200
    assert simulator.state().faults_fired == {"http_500": 2}


@pytest.mark.parametrize(
    ("spec", "fault"),
    [
        ("http_503", Fault("http_503")),
        (
            "http_503:rate=0.25,retry_after=5,endpoints=list+download",
            Fault(
                "http_503",
                rate=0.25,
                retry_after="5",
                endpoints=frozenset({"list", "download"}),
            ),
        ),
        ("slow:delay=0.5,times=3", Fault("slow", delay=0.5, times=3)),
        ("corrupt:ids=a+b", Fault("corrupt", ids=frozenset({"a", "b"}))),
        ("redirect:location=http://127.0.0.1:9", Fault("redirect", location="http://127.0.0.1:9")),
    ],
)
def test_parse_fault(spec: str, fault: Fault) -> None:
    assert parse_fault(spec) == fault


@pytest.mark.parametrize("spec", ["nope", "slow:delay", "slow:speed=3", "http_500:endpoints=x"])
def test_parse_fault_errors(spec: str) -> None:
    with pytest.raises(ValueError, match=r"fault|endpoint|key=value|option"):
        parse_fault(spec)


def test_stop_is_prompt_with_open_and_slow_connections(conformance_cert: x509.Certificate) -> None:
    sim = Simulator(conformance_cert, faults=[Fault("slow", delay=30)]).start()
    auth = (sim.username, sim.password)
    url = f"{sim.base_url}/tjenester/svarinn/mottaker/hentNyeForsendelser"
    idle = httpx.Client(auth=auth)
    sim.clear_faults()
    idle.get(url)  # leaves a keep-alive connection open
    sim.add_fault(Fault("slow", delay=30))
    errors: list[BaseException] = []

    def slow_request() -> None:
        try:
            httpx.get(url, auth=auth, timeout=20)
        except httpx.HTTPError as exc:
            errors.append(exc)

    thread = threading.Thread(target=slow_request)
    thread.start()
    time.sleep(0.2)
    started = time.monotonic()
    sim.stop()
    thread.join(timeout=10)
    idle.close()
    assert time.monotonic() - started < 3
    assert not thread.is_alive()
    assert len(errors) == 1
    assert not sim.work_dir.exists()


def _decrypt(client: SvarInnClient, letter: Forsendelse, keys: list[KeyPair]) -> tuple[bytes, str]:
    decryptor = Decryptor(keys)
    out = bytearray()
    with client.download(letter) as download:
        for chunk in download.iter_chunks(chunk_size=7919):  # odd size: segments split anywhere
            out += decryptor.feed(chunk)
    out += decryptor.close()
    return bytes(out), decryptor.sha256


def test_served_files_open_with_our_decryptor(simulator: Simulator, conformance_dir: Path) -> None:
    keys = [
        load_key_pair(
            "conformance",
            (conformance_dir / "privatekey.pem").read_bytes(),
            certificate_pem=(conformance_dir / "certificate.pem").read_bytes(),
        )
    ]
    single = simulator.generate(1, size=250_000)[0]
    pdf = (conformance_dir / "small.pdf").read_bytes()
    multi = simulator.add_letter(
        [LetterFile("a.pdf", data=pdf), LetterFile("b.txt", "text/plain", data=b"hei")]
    )
    corrupt = simulator.generate(1, size=5000)[0]
    simulator.add_fault(Fault("corrupt", ids=frozenset({corrupt.id})))
    account = make_account(
        simulator.base_url, username=simulator.username, password=simulator.password
    )
    with connect(account) as client:
        listed = {f.id: f for f in list_new(client)}
        plain, digest = _decrypt(client, listed[single.id], keys)
        (meta,) = listed[single.id].filmetadata
        assert (digest, len(plain)) == (meta.sha256hash, meta.size)
        assert plain.startswith(b"%PDF-1.4")
        zipped, _ = _decrypt(client, listed[multi.id], keys)
        archive = zipfile.ZipFile(io.BytesIO(zipped))
        assert archive.read("a.pdf") == pdf
        assert archive.read("b.txt") == b"hei"
        try:
            _plain, digest = _decrypt(client, listed[corrupt.id], keys)
        except CmsError:
            pass  # the flipped byte broke the padding or the structure
        else:
            assert digest != listed[corrupt.id].filmetadata[0].sha256hash


@pytest.mark.parametrize(("api", "suffix"), [("v1", ""), ("v2", "/api")])
def test_write_config_takes_the_api(tmp_path: Path, api: str, suffix: str) -> None:
    out, err = io.StringIO(), io.StringIO()
    argv = ["simulator", "--duration", "0", "--write-config", str(tmp_path), "--api", api]
    assert main(argv, environ={}, stdout=out, stderr=err) == 0, err.getvalue()
    (account,) = load_config(tmp_path / "config.toml", environ={}).accounts
    url = re.search(r"listening on (http://127\.0\.0\.1:\d+)", out.getvalue())
    assert url is not None
    assert (account.api, account.base_url) == (api, url.group(1) + suffix)


def test_write_config_never_writes_through_a_planted_link(tmp_path: Path) -> None:
    """Issue #24, item 16: a symbolic link planted at config.toml (or the key's name) in the
    directory given to ``simulator --write-config`` was written through."""
    from svarinn_daemon.simulator.identity import generate_identity, write_operator_files

    target = tmp_path / "elsewhere"
    target.write_text("untouched\n")
    directory = tmp_path / "conf"
    directory.mkdir()
    for name in ("config.toml", "private-key.pem", "svarinn-password", "certificate.pem"):
        (directory / name).symlink_to(target)
    files = write_operator_files(
        directory,
        base_url="http://127.0.0.1:1",
        username="u",
        password="p",
        identity=generate_identity(),
    )
    assert target.read_text() == "untouched\n"
    assert not files.config.is_symlink()
    assert (directory / "private-key.pem").stat().st_mode & 0o777 == 0o600
