"""Write deploy/kubernetes/base/prometheusrule.yaml from deploy/prometheus/alerts.yml.

alerts.yml is the one source: promtool checks and unit-tests it (tests/deploy/test_prometheus.py)
and this script wraps its groups, unchanged, in a Prometheus Operator PrometheusRule.
tests/deploy/test_kubernetes.py fails when the committed file no longer matches.

    python deploy/kubernetes/prometheusrule.py          # rewrite the file
    python deploy/kubernetes/prometheusrule.py --check  # exit 1 when it is stale
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
ALERTS = HERE.parent / "prometheus" / "alerts.yml"
TARGET = HERE / "base" / "prometheusrule.yaml"

HEADER = (
    "# GENERATED from deploy/prometheus/alerts.yml by deploy/kubernetes/prometheusrule.py;\n"
    "# do not edit: change alerts.yml (tested with promtool) and run the script again.\n"
)


def prometheus_rule(alerts: Path = ALERTS) -> dict[str, Any]:
    rules = yaml.safe_load(alerts.read_text(encoding="utf-8"))
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "svarinn-daemon"},
        "spec": {"groups": rules["groups"]},
    }


def render(alerts: Path = ALERTS) -> str:
    body = yaml.safe_dump(prometheus_rule(alerts), sort_keys=False, allow_unicode=True, width=100)
    return HEADER + body


def main(argv: list[str]) -> int:
    text = render()
    if argv[1:] == ["--check"]:
        current = TARGET.read_text(encoding="utf-8") if TARGET.exists() else ""
        if current != text:
            print(f"{TARGET} is stale: run python {Path(__file__).name}", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
