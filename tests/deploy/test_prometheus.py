"""deploy/prometheus: promtool checks the rules, runs their unit tests, lints our metrics."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import yaml
from prometheus_client.parser import text_string_to_metric_families

PROMETHEUS = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
ALERTS = PROMETHEUS / "alerts.yml"
ALERT_TESTS = PROMETHEUS / "alerts.test.yml"


def _run(*argv: str | Path, stdin: str | None = None, cwd: Path = PROMETHEUS) -> str:
    result = subprocess.run(
        [str(a) for a in argv],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"{argv}:\n{result.stdout}{result.stderr}"
    return result.stdout + result.stderr


def test_alert_rules_are_valid(promtool: Path) -> None:
    out = _run(promtool, "check", "rules", ALERTS)
    assert "SUCCESS" in out


def test_alert_rule_unit_tests_pass(promtool: Path) -> None:
    out = _run(promtool, "test", "rules", ALERT_TESTS.name)
    assert "SUCCESS" in out


def test_every_alert_is_tested_firing_and_silent() -> None:
    alerts = {r["alert"] for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"]}
    fired: set[str] = set()
    silent: set[str] = set()
    for case in yaml.safe_load(ALERT_TESTS.read_text())["tests"]:
        for check in case["alert_rule_test"]:
            (fired if check["exp_alerts"] else silent).add(check["alertname"])
    assert alerts == fired, "alerts never shown firing: " + ", ".join(sorted(alerts - fired))
    assert alerts == silent, "alerts never shown silent: " + ", ".join(sorted(alerts - silent))


def test_every_alert_tells_an_operator_what_to_do() -> None:
    for group in yaml.safe_load(ALERTS.read_text())["groups"]:
        for rule in group["rules"]:
            assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
            assert rule["annotations"]["summary"], rule["alert"]
            assert len(rule["annotations"]["description"]) > 100, rule["alert"]


def test_prometheus_config_is_valid_and_loads_the_rules(promtool: Path) -> None:
    out = _run(promtool, "check", "config", "prometheus.yml")
    assert "1 rule files found" in out
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    assert config["rule_files"] == ["alerts.yml"]
    # The alert rules select up{job="svarinn-daemon"}.
    assert [job["job_name"] for job in config["scrape_configs"]] == ["svarinn-daemon"]


def test_metrics_pass_promtool_lint(promtool: Path, exposition: str) -> None:
    result = subprocess.run(
        [str(promtool), "check", "metrics"],
        input=exposition,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout + result.stderr == ""


def test_promtool_lint_would_catch_a_bad_name(promtool: Path) -> None:
    bad = "# HELP svarinn_polls Polls.\n# TYPE svarinn_polls counter\nsvarinn_polls 1\n"
    result = subprocess.run(
        [str(promtool), "check", "metrics"],
        input=bad,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "_total" in result.stdout + result.stderr


def test_alerts_use_only_metrics_and_label_values_the_daemon_exports(exposition: str) -> None:
    """A renamed metric or outcome would silence an alert without any error: catch it here."""
    exported: dict[str, set[tuple[str, str]]] = {}
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            exported.setdefault(sample.name, set()).update(sample.labels.items())
    rules = yaml.safe_load(ALERTS.read_text())["groups"][0]["rules"]
    for rule in rules:
        expr = rule["expr"]
        for name, selector in re.findall(r"(svarinn_\w+)(?:\{([^}]*)\})?", expr):
            assert name in exported, f"{rule['alert']}: {name} is not exported"
            for label, op, value in re.findall(r'(\w+)\s*(=~|!=|=)\s*"([^"]*)"', selector):
                if op == "!=":
                    continue
                if label == "kind" and name == "svarinn_retries_scheduled_total":
                    continue  # error class names, created when a retry happens
                for one in value.split("|"):
                    assert (label, one) in exported[name], (
                        f"{rule['alert']}: {name}{{{label}={one!r}}} is never exported"
                    )
