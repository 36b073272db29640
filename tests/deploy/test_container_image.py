"""The container image, built from deploy/container/Containerfile and run as its user.

image_tools.py builds it with Podman on a Debian base made by mmdebstrap (no image registry
needed) and exports its filesystem; these tests run the image's commands in it with chroot
as uid 10001, with the image's Env and WorkingDir: check-config on the image's config with
secrets under /run/secrets, migrate, run (with the HEALTHCHECK command from the image's
configuration) against a SvarInn simulator started from the image, and demo. One build
serves the module (about a minute); it needs root, podman and mmdebstrap, and is skipped
with the reason otherwise (CI=true fails instead; .ci/run installs them).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support import image_tools
from tests.support.image_tools import Image, NetworkNamespace

REPO = Path(__file__).resolve().parents[2]
IMAGE_CONFIG = REPO / "deploy" / "container" / "config.toml"
UID = 10001
LETTERS = 3

pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def image(podman: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Image]:
    work = tmp_path_factory.mktemp("image")
    started = time.monotonic()
    try:
        built = image_tools.build_image(work)
        image_tools.STATS["build_seconds"] = time.monotonic() - started
        image_tools.STATS["timings"] = built.timings
        image_tools.STATS["size"] = built.size
        yield built
    finally:
        image_tools.remove_store(work)


@pytest.fixture(scope="module")
def netns(image: Image) -> Iterator[int]:
    namespace = NetworkNamespace()
    try:
        yield namespace.pid
    finally:
        namespace.close()


@dataclass
class Simulator:
    url: str
    username: str
    password: str


@pytest.fixture(scope="module")
def simulator(
    image: Image, netns: int, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Simulator]:
    """``svarinn-daemon simulator`` from the image, in the namespace the daemon will use; its
    password, key and certificate become the image's /run/secrets."""
    log = tmp_path_factory.mktemp("simulator") / "simulator.log"
    argv = ["svarinn-daemon", "simulator", "--generate", str(LETTERS), "--write-config", "/tmp/sim"]
    with log.open("w") as out:
        process = subprocess.Popen(image.command(argv, netns=netns), stdout=out, stderr=out)
    try:
        written = image.root / "tmp" / "sim" / "config.toml"
        deadline = time.monotonic() + 60
        while not written.is_file() or "base_url" not in written.read_text():
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        url = re.search(r'base_url = "([^"]+)"', written.read_text())
        assert url is not None
        sim = image.root / "tmp" / "sim"
        secrets = image.root / "run" / "secrets"
        secrets.mkdir(parents=True, exist_ok=True)
        files = {
            "svarinn-password": (sim / "svarinn-password").read_bytes(),
            "private-key.pem": (sim / "private-key.pem").read_bytes(),
            "certificate.pem": (sim / "certificate.pem").read_bytes(),
            "postgres-password": b"pg-Passw0rd\n",
        }
        for name, data in files.items():
            (secrets / name).write_bytes(data)
            os.chown(secrets / name, UID, UID)
            (secrets / name).chmod(0o400)
        password = files["svarinn-password"].decode().strip()
        yield Simulator(url=url.group(1), username="simulator", password=password)
    finally:
        process.terminate()
        process.wait(timeout=30)


def _write_config(image: Image, text: str) -> None:
    """The config where the image looks for it, as a read-only mount would present it."""
    path = image.root / "etc" / "svarinn-daemon" / "config.toml"
    path.write_text(text)
    path.chmod(0o644)


def _healthcheck(image: Image, netns: int) -> int:
    test = image.healthcheck
    assert test[0] == "CMD", test
    return image.run(test[1:], netns=netns, timeout=30).returncode


def test_image_is_what_it_promises(image: Image) -> None:
    config = image.config
    assert image.user == f"{UID}:{UID}"
    passwd = (image.root / "etc" / "passwd").read_text()
    assert f"svarinn:x:{UID}:{UID}:" in passwd
    assert config["Entrypoint"] == ["svarinn-daemon"]
    assert config["Cmd"] == ["run"]
    assert "9464/tcp" in config["ExposedPorts"]  # type: ignore[operator]
    assert image.healthcheck[:3] == ["CMD", "python", "-c"]
    assert "127.0.0.1:9464/healthz" in image.healthcheck[3]

    state = (image.root / "var" / "lib" / "svarinn-daemon").stat()
    assert (state.st_uid, state.st_gid, state.st_mode & 0o7777) == (UID, UID, 0o700)

    # No compiler or build tool in the final stage, and nothing of the builder's sources.
    path = next(e.split("=", 1)[1] for e in image.env if e.startswith("PATH="))
    tools = ("cc", "gcc", "c++", "g++", "clang", "make", "ld", "as")
    found = [
        str(directory / name)
        for directory in (image.root / d.lstrip("/") for d in path.split(":"))
        for name in tools
        if os.path.lexists(directory / name) or any(directory.glob(f"{name}-[0-9]*"))
    ]
    assert found == []
    assert not (image.root / "usr" / "lib" / "gcc").exists()
    assert not (image.root / "src").exists()

    # Commands run as the image's user.
    who = image.run(["id", "-u"])
    assert who.stdout.strip() == str(UID), who.stderr


def test_check_config_reads_the_secrets_under_run_secrets(
    image: Image, simulator: Simulator
) -> None:
    text = IMAGE_CONFIG.read_text()
    _write_config(image, text)
    result = image.run(["svarinn-daemon", "check-config", "--strict-permissions"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "/etc/svarinn-daemon/config.toml" in result.stdout + result.stderr
    assert simulator.password not in result.stdout + result.stderr
    assert "pg-Passw0rd" not in result.stdout + result.stderr

    # The same check fails when uid 10001 cannot read a secret.
    secret = image.root / "run" / "secrets" / "svarinn-password"
    os.chown(secret, 0, 0)
    try:
        refused = image.run(["svarinn-daemon", "check-config"])
    finally:
        os.chown(secret, UID, UID)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "svarinn-password" in refused.stderr


def _run_config(simulator: Simulator) -> str:
    """The image's config with the SQLite ledger in the state volume, talking to the
    simulator; [metrics] listen stays 0.0.0.0:9464, the HEALTHCHECK's port."""
    text = IMAGE_CONFIG.read_text()
    without_ledger = re.sub(r"\[ledger\]\n(?:[^\[\n].*\n|\n)*", "", text)
    assert "[ledger]" not in without_ledger
    assert "[metrics]" in without_ledger
    replaced = without_ledger.replace('"https://svarut.ks.no/api"', f'"{simulator.url}"')
    replaced = re.sub(r'username = "[^"]*"', f'username = "{simulator.username}"', replaced)
    assert simulator.url in replaced
    assert 'username = "simulator"' in replaced
    return replaced


def _status(image: Image) -> dict[str, int]:
    result = image.run(["svarinn-daemon", "status", "--json"])
    assert result.returncode == 0, result.stderr
    totals: dict[str, int] = json.loads(result.stdout)["totals"]
    return totals


def test_migrate_then_run_imports_letters_and_answers_the_healthcheck(
    image: Image, simulator: Simulator, netns: int, tmp_path: Path
) -> None:
    _write_config(image, _run_config(simulator))
    state = image.root / "var" / "lib" / "svarinn-daemon"

    migrated = image.run(["svarinn-daemon", "migrate"])
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    ledger = (state / "ledger.sqlite3").stat()
    assert (ledger.st_uid, ledger.st_mode & 0o777) == (UID, 0o600)
    again = image.run(["svarinn-daemon", "migrate"])
    assert again.returncode == 0, again.stderr
    assert _status(image).get("acknowledged") == 0

    assert _healthcheck(image, netns) != 0  # nothing listens yet
    entrypoint = [*image.config["Entrypoint"], *image.config["Cmd"]]  # type: ignore[misc]
    log = tmp_path / "daemon.log"
    with log.open("w") as out:
        daemon = subprocess.Popen(image.command(entrypoint, netns=netns), stdout=out, stderr=out)
    try:
        deadline = time.monotonic() + 90
        while _healthcheck(image, netns) != 0:
            assert daemon.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.5)
        while _status(image).get("acknowledged") != LETTERS:
            assert daemon.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, (_status(image), log.read_text()[-3000:])
            time.sleep(0.5)
        assert _healthcheck(image, netns) == 0
    finally:
        daemon.send_signal(signal.SIGTERM)  # nsenter, chroot and env exec: this is the daemon
        code = daemon.wait(timeout=60)
    assert code == 0, log.read_text()[-3000:]
    archived = [p for p in (state / "archive").iterdir() if p.is_dir()]
    assert len(archived) == LETTERS
    assert all(p.stat().st_uid == UID for p in archived)
    assert _healthcheck(image, netns) != 0  # the daemon is gone


def test_demo_imports_its_letters(image: Image) -> None:
    result = image.run(["svarinn-daemon", "demo", "--letters", "8"], timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    (line,) = [line for line in result.stdout.splitlines() if line.startswith("imported:")]
    assert re.match(r"imported:\s+8 of 8 letters", line), line
    image_tools.STATS["demo"] = line
