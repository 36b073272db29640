"""deploy/container and deploy/compose.yaml: hadolint, the image's shape, the compose wiring.

Nothing here builds or runs an image (test_container_image.py does, where Podman can be
had); the HEALTHCHECK command itself is run against a real endpoint.
"""

from __future__ import annotations

import fnmatch
import re
import shlex
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from svarinn_daemon.service.health import Check, HealthServer
from svarinn_daemon.service.metrics import Metrics
from tests.support.cfg_helpers import PASSWORD, run_cli
from tests.support.keygen import cert_pem, certificate, key_pem, rsa_key

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
CONTAINERFILE = DEPLOY / "container" / "Containerfile"
CONTAINER_CONFIG = DEPLOY / "container" / "config.toml"
COMPOSE = DEPLOY / "compose.yaml"


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n", " ", CONTAINERFILE.read_text())
    result = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            result.append((word.upper(), rest.strip()))
    return result


def _final_stage() -> list[tuple[str, str]]:
    steps = _instructions()
    last_from = max(i for i, (word, _) in enumerate(steps) if word == "FROM")
    return steps[last_from:]


def _healthcheck_code() -> str:
    (args,) = [rest for word, rest in _final_stage() if word == "HEALTHCHECK"]
    exec_form = args[args.index("CMD") + len("CMD") :].strip()
    argv = yaml.safe_load(exec_form)  # a JSON array is YAML too
    assert argv[:2] == ["python", "-c"], argv
    return str(argv[2])


def test_hadolint_is_clean(hadolint: Path) -> None:
    result = subprocess.run(
        [str(hadolint), "--no-color", str(CONTAINERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""


def test_hadolint_catches_problems(hadolint: Path, tmp_path: Path) -> None:
    bad = tmp_path / "Containerfile"
    bad.write_text("FROM python:latest\nRUN apt-get update && apt-get install gcc\n")
    result = subprocess.run(
        [str(hadolint), "--no-color", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "DL3007" in result.stdout  # :latest


def test_image_is_multi_stage_slim_non_root_without_compilers() -> None:
    steps = _instructions()
    froms = [rest for word, rest in steps if word == "FROM"]
    assert len(froms) == 2
    assert froms[0].endswith("AS builder")
    (base,) = [rest for word, rest in steps if word == "ARG" and rest.startswith("PYTHON_IMAGE")]
    assert re.fullmatch(r"PYTHON_IMAGE=python:3\.1[1-9]-slim(-\w+)?", base)
    final = _final_stage()
    final_text = " ".join(rest for _, rest in final)
    for tool in ("gcc", "build-essential", "apt-get", "curl"):
        assert tool not in final_text
    (user,) = [rest for word, rest in final if word == "USER"]
    assert user.split(":")[0] not in ("0", "root")
    assert int(user.split(":")[0]) >= 1000
    copies = [rest for word, rest in final if word == "COPY"]
    assert copies == ["--from=builder /opt/svarinn-daemon /opt/svarinn-daemon"]
    (volume,) = [rest for word, rest in final if word == "VOLUME"]
    assert yaml.safe_load(volume) == ["/etc/svarinn-daemon", "/var/lib/svarinn-daemon"]
    (entrypoint,) = [rest for word, rest in final if word == "ENTRYPOINT"]
    (cmd,) = [rest for word, rest in final if word == "CMD"]
    assert yaml.safe_load(entrypoint) + yaml.safe_load(cmd) == ["svarinn-daemon", "run"]
    assert "127.0.0.1:9464/healthz" in _healthcheck_code()
    assert ("EXPOSE", "9464") in final


def test_build_context_holds_what_the_builder_copies() -> None:
    """.dockerignore (Docker) and .containerignore (Podman) are the same allow-list, and
    every COPY source of the builder exists and is let through."""
    ignore = (REPO / ".dockerignore").read_text()
    assert (REPO / ".containerignore").read_text() == ignore
    patterns = [p for p in ignore.splitlines() if p and not p.startswith("#")]
    assert patterns[0] == "*"
    allowed = {p[1:].rstrip("/") for p in patterns if p.startswith("!")}
    sources = []
    for word, rest in _instructions():
        if word == "COPY" and not rest.startswith("--from"):
            sources += shlex.split(rest)[:-1]
    # The locked dependencies first (a layer that changes only with the lock); setup.py maps
    # migrations/ into the package: without either, the image cannot migrate.
    assert sources == [
        "requirements/app.txt",
        "pyproject.toml",
        "setup.py",
        "README.md",
        "svarinn_daemon",
        "migrations",
    ]
    runs = " ".join(" ".join(rest.split()) for word, rest in _instructions() if word == "RUN")
    assert "--require-hashes -r requirements/app.txt" in runs
    assert "--no-deps ." in runs  # the package alone: its dependencies are the locked ones
    for source in sources:
        assert (REPO / source).exists(), source
        assert any(fnmatch.fnmatch(source, pattern) for pattern in allowed), source


@pytest.fixture
def health_server() -> Iterator[tuple[HealthServer, dict[str, bool]]]:
    state = {"alive": True}
    server = HealthServer(
        "127.0.0.1",
        0,
        Metrics(),
        liveness=lambda: Check(state["alive"]),
        readiness=lambda: Check(True),
    )
    server.start()
    yield server, state
    server.stop()


def test_healthcheck_command_follows_healthz(
    health_server: tuple[HealthServer, dict[str, bool]],
) -> None:
    server, state = health_server
    port = server.url.rsplit(":", 1)[1]
    code = _healthcheck_code().replace("127.0.0.1:9464", f"127.0.0.1:{port}")

    def healthcheck() -> int:
        argv = [sys.executable, "-c", code]
        return subprocess.run(argv, capture_output=True, timeout=30, check=False).returncode

    assert healthcheck() == 0
    state["alive"] = False  # /healthz answers 503
    assert healthcheck() != 0
    server.stop()  # nothing listens
    assert healthcheck() != 0


def _secret_files(tmp_path: Path) -> dict[str, Path]:
    key = rsa_key(0)
    contents = {
        "svarinn-password": (PASSWORD + "\n").encode(),
        "private-key.pem": key_pem(key),
        "certificate.pem": cert_pem(certificate(key)),
        "postgres-password": b"pg-Passw0rd\n",
    }
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    for name, data in contents.items():
        (secrets / name).write_bytes(data)
        (secrets / name).chmod(0o400)
    return {name: secrets / name for name in contents}


def test_container_config_loads_with_its_secrets(tmp_path: Path) -> None:
    secrets = _secret_files(tmp_path)
    text = CONTAINER_CONFIG.read_text()
    referenced = set(re.findall(r'"/run/secrets/([^"]+)"', text))
    assert referenced == set(secrets)
    config = tmp_path / "config.toml"
    config.write_text(text.replace("/run/secrets/", f"{tmp_path / 'secrets'}/"))
    environ = {"STATE_DIRECTORY": str(tmp_path / "state")}
    code, out, err = run_cli(
        "--config", str(config), "check-config", "--strict-permissions", environ=environ
    )
    assert code == 0, err
    assert PASSWORD not in out + err
    assert "pg-Passw0rd" not in out + err
    # Prometheus in compose and the HEALTHCHECK reach the endpoint on port 9464.
    assert tomllib.loads(text)["metrics"]["listen"] == "0.0.0.0:9464"


def test_compose_wiring() -> None:
    compose = yaml.safe_load(COMPOSE.read_text())
    services = compose["services"]
    assert set(services) == {"svarinn-daemon", "postgres", "prometheus", "grafana"}
    base = COMPOSE.parent

    daemon = services["svarinn-daemon"]
    context = (base / daemon["build"]["context"]).resolve()
    assert context == REPO
    assert context / daemon["build"]["dockerfile"] == CONTAINERFILE
    assert daemon["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert daemon["ports"] == ["127.0.0.1:9464:9464"]

    # Every file mounted from the repository exists; named volumes are declared.
    for name, service in services.items():
        for mount in service.get("volumes", []):
            source = mount.split(":")[0]
            if source.startswith("."):
                assert (base / source).is_file(), f"{name}: {source} does not exist"
            else:
                assert source in compose["volumes"], f"{name}: volume {source} is not declared"
        for secret in service.get("secrets", []):
            assert secret in compose["secrets"], f"{name}: secret {secret} is not declared"

    # Secrets are the operator's files in deploy/secrets/, which git ignores; the daemon's
    # are exactly the /run/secrets files its config reads.
    for secret in compose["secrets"].values():
        path = (base / secret["file"]).resolve()
        assert path.parent == DEPLOY / "secrets"
    assert (DEPLOY / "secrets" / ".gitignore").read_text().splitlines()[-2:] == ["*", "!.gitignore"]
    config_secrets = set(re.findall(r'"/run/secrets/([^"]+)"', CONTAINER_CONFIG.read_text()))
    assert set(daemon["secrets"]) == config_secrets
    config_mount = "./container/config.toml:/etc/svarinn-daemon/config.toml:ro"
    assert config_mount in daemon["volumes"]

    # PostgreSQL takes its password from the same secret; the config's URL names it.
    postgres = services["postgres"]
    env = postgres["environment"]
    assert env["POSTGRES_PASSWORD_FILE"] == "/run/secrets/postgres-password"
    assert "postgres-password" in postgres["secrets"]
    ledger_url = tomllib.loads(CONTAINER_CONFIG.read_text())["ledger"]["url"]
    assert (
        ledger_url
        == f"postgresql+psycopg://{env['POSTGRES_USER']}@postgres:5432/" + env["POSTGRES_DB"]
    )

    # Prometheus gets prometheus.yml with alerts.yml beside it and scrapes the daemon.
    prometheus = services["prometheus"]
    mounts = dict(m.split(":")[:2] for m in prometheus["volumes"])
    assert mounts["./prometheus/prometheus.yml"] == "/etc/prometheus/prometheus.yml"
    assert mounts["./prometheus/alerts.yml"] == "/etc/prometheus/alerts.yml"
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]
    scrape = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    (job,) = scrape["scrape_configs"]
    assert job["static_configs"][0]["targets"] == ["svarinn-daemon:9464"]
