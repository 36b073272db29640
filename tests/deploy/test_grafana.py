"""deploy/grafana: the dashboard asks only for series the daemon exports, every PromQL
expression parses (promtool checks them as recording rules), and compose provisions it."""

from __future__ import annotations

import copy
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
GRAFANA = DEPLOY / "grafana"
DASHBOARD = GRAFANA / "svarinn-daemon.json"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
# Series Prometheus makes itself: the alerts it evaluates and whether a scrape worked.
PROMETHEUS_SERIES = {"ALERTS", "up"}
# What Grafana substitutes before a query reaches Prometheus.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "1m", "$__range": "1h"}
PROMQL_WORDS = {
    "sum", "min", "max", "avg", "count", "by", "without", "or", "and", "unless", "on",
    "rate", "increase", "irate", "histogram_quantile", "time", "vector", "le", "bool",
    "label_values",
}  # fmt: skip


def load() -> dict[str, Any]:
    dashboard: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return dashboard


def expressions(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(where, PromQL) for every panel target and every query variable."""
    found = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            found.append((f"panel {panel['title']!r} {target['refId']}", target["expr"]))
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            match = re.fullmatch(r"label_values\((\w+),\s*(\w+)\)", variable["definition"])
            assert match, variable["definition"]
            found.append((f"variable ${variable['name']}", match[1]))
    return found


def concrete(expr: str, dashboard: dict[str, Any]) -> str:
    """The query as Prometheus receives it: Grafana's variables filled in."""
    for name, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(name, value)
    for variable in dashboard["templating"]["list"]:
        expr = expr.replace(f"${variable['name']}", variable.get("allValue") or ".*")
    assert "$" not in expr, f"an unknown Grafana variable in {expr!r}"
    return expr


def exported_series(text: str) -> dict[str, set[tuple[str, str]]]:
    exported: dict[str, set[tuple[str, str]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            exported.setdefault(sample.name, set()).update(sample.labels.items())
    return exported


def problems(dashboard: dict[str, Any], exported: dict[str, set[tuple[str, str]]]) -> list[str]:
    """Every metric name or exact label value the dashboard asks for that nobody exports."""
    alerts = {r["alert"] for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"]}
    found = []
    for where, expr in expressions(dashboard):
        without_strings = re.sub(r'"[^"]*"', '""', expr)
        for name in re.findall(r"\b([A-Za-z_:][\w:]*)\b\s*(?=\{|\[|\)|$|\s)", without_strings):
            if name in PROMQL_WORDS or name in PROMETHEUS_SERIES or name.isdigit():
                continue
            if name not in exported and not re.search(rf"\b(by|without)\s*\([^)]*\b{name}\b", expr):
                found.append(f"{where}: {name} is not exported by the daemon")
        for name, selector in re.findall(r"\b(\w+)\{([^}]*)\}", expr):
            for label, op, value in re.findall(r'(\w+)\s*(=~|!=|=)\s*"([^"]*)"', selector):
                if name == "ALERTS" and label == "alertname":
                    if not any(re.fullmatch(value, alert) for alert in alerts):
                        found.append(f"{where}: no alert in alerts.yml matches {value!r}")
                elif op == "=" and name in exported and (label, value) not in exported[name]:
                    found.append(f"{where}: {name}{{{label}={value!r}}} is never exported")
    return found


def test_every_series_the_dashboard_uses_is_exported(exposition: str) -> None:
    assert problems(load(), exported_series(exposition)) == []


def test_a_renamed_metric_would_be_caught(exposition: str) -> None:
    dashboard = copy.deepcopy(load())
    target = dashboard["panels"][2]["targets"][0]
    target["expr"] = target["expr"].replace("svarinn_", "svarin_")
    found = problems(dashboard, exported_series(exposition))
    assert found
    assert "is not exported" in found[0]


def rules_file(dashboard: dict[str, Any], path: Path) -> Path:
    rules = [
        {"record": f"dashboard:expr_{i}", "expr": concrete(expr, dashboard)}
        for i, (_, expr) in enumerate(expressions(dashboard))
    ]
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    return path


def test_every_expression_parses(promtool: Path, tmp_path: Path) -> None:
    rules = rules_file(load(), tmp_path / "dashboard.rules.yml")
    done = subprocess.run(
        [str(promtool), "check", "rules", str(rules)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout + done.stderr


def test_a_broken_expression_would_be_caught(promtool: Path, tmp_path: Path) -> None:
    dashboard = copy.deepcopy(load())
    dashboard["panels"][2]["targets"][0]["expr"] += ")"
    rules = rules_file(dashboard, tmp_path / "broken.rules.yml")
    done = subprocess.run(
        [str(promtool), "check", "rules", str(rules)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode != 0


@pytest.mark.parametrize(
    "needle",
    [
        "svarinn_ledger_letters",  # letters per state and account
        "svarinn_oldest_unacknowledged_letter_age_seconds",  # against SvarUt's two hours
        "vector(7200)",
        "increase(svarinn_letters_total",  # imports and failures per hour
        "svarinn_stage_duration_seconds_bucket",  # stage latencies
        "svarinn_downloaded_bytes_total",
        "svarinn_receipts_total",
        "svarinn_retries_scheduled_total",
        'ALERTS{alertstate="firing"',
        "svarinn_ledger_up",
        "svarinn_last_successful_poll_timestamp_seconds",  # poll age
        "svarinn_archive_available",
        "svarinn_internal_errors_total",
    ],
)
def test_the_dashboard_shows_what_an_operator_needs(needle: str) -> None:
    assert any(needle in expr for _, expr in expressions(load())), needle


def test_compose_provisions_the_dashboard_and_its_data_source() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    grafana = compose["services"]["grafana"]
    mounts = {m.split(":")[0]: m.split(":")[1] for m in grafana["volumes"]}
    datasources = yaml.safe_load((GRAFANA / "datasource.yml").read_text())["datasources"]
    providers = yaml.safe_load((GRAFANA / "dashboards.yml").read_text())["providers"]
    assert mounts["./grafana/datasource.yml"].startswith("/etc/grafana/provisioning/datasources/")
    assert mounts["./grafana/dashboards.yml"].startswith("/etc/grafana/provisioning/dashboards/")
    dashboard_dir = str(Path(mounts["./grafana/svarinn-daemon.json"]).parent)
    assert [p["options"]["path"] for p in providers] == [dashboard_dir]
    # The data source is the Prometheus service, and every panel names its uid.
    (source,) = datasources
    prometheus_port = compose["services"]["prometheus"]["ports"][0].rsplit(":", 1)[1]
    assert source["url"] == f"http://prometheus:{prometheus_port}"
    uids = {
        target["datasource"]["uid"]
        for panel in load()["panels"]
        for target in panel.get("targets", [])
    }
    assert uids == {source["uid"]}
    assert grafana["ports"] == ["127.0.0.1:3000:3000"]
    assert "GF_SECURITY_ADMIN_PASSWORD__FILE" in grafana["environment"]
