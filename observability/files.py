"""The monitoring of a stack as files: what Prometheus and Grafana read on a developer's machine."""
from __future__ import annotations

import yaml

from .dashboards import dashboard_folder, dashboards
from .plan import MonitoringPlan
from .rules import rule_groups
from .scrape import scrape_job, unscraped

RULES = "rules/pgfleet.rules.yml"
DASHBOARDS = "grafana/dashboards"
#: Grafana's provisioning file, pointing at DASHBOARDS (path relative to it, resolved by the writer).
DASHBOARD_PROVIDER = "grafana/provisioning/dashboards/pgfleet.yaml"


def _yaml(document: object) -> str:
    return yaml.safe_dump(document, sort_keys=False, width=10_000)


def prometheus_config(plan: MonitoringPlan) -> str:
    """A whole prometheus.yml: the stack's scrape job and its rule file (next to it)."""
    header = ""
    missing = unscraped(plan)
    if missing:
        header = (f"# Not scraped: {', '.join(missing)} (no metrics.port; give one to publish the exporter "
                  "on the dev bind address)\n")
    return header + _yaml({
        "global": {"scrape_interval": plan.scrape_interval, "evaluation_interval": plan.scrape_interval},
        "rule_files": [RULES],
        "scrape_configs": [scrape_job(plan)],
    })


def rules_file(plan: MonitoringPlan) -> str:
    return _yaml({"groups": rule_groups(plan)})


def monitoring_files(plan: MonitoringPlan, directory: str) -> dict[str, str]:
    """Relative path -> content; `directory` is where they will be written (Grafana's provider
    names the dashboards' folder by its absolute path)."""
    files = {"prometheus.yml": prometheus_config(plan), RULES: rules_file(plan)}
    files |= {f"{DASHBOARDS}/{name}": body for name, body in dashboards(plan).items()}
    files[DASHBOARD_PROVIDER] = _yaml({
        "apiVersion": 1,
        "providers": [{
            "name": f"pgfleet-{plan.stack}",
            "folder": dashboard_folder(plan),
            "type": "file",
            "disableDeletion": True,
            "options": {"path": f"{directory.rstrip('/')}/{DASHBOARDS}"},
        }],
    })
    return files
