"""Prometheus scrape configuration: each exporter, labelled with its server and stack."""
from __future__ import annotations

from .plan import MonitoringPlan

#: The labels the platform puts on every pod (pgfleet.components.platform.labels), as
#: Prometheus's Kubernetes discovery names them.
_POD_LABEL = "__meta_kubernetes_pod_label_"
EXPORTER_PORT_NAME = "metrics"


def job_name(plan: MonitoringPlan) -> str:
    return f"pgfleet-{plan.stack}"


def static_job(plan: MonitoringPlan) -> dict[str, object]:
    """Docker: the exporters' ports on the dev bind address (a server without one is not scraped)."""
    return {
        "job_name": job_name(plan),
        "scrape_interval": plan.scrape_interval,
        "static_configs": [
            {"targets": [f"{plan.bind_address}:{server.metrics_port}"],
             "labels": {"server": server.host, "stack": plan.stack}}
            for server in plan.servers if server.metrics_port is not None
        ],
    }


def server_relabelling(plan: MonitoringPlan) -> list[dict[str, object]]:
    """Kubernetes: `server` from the pod's pgfleet.io/server label, `stack` from the config."""
    return [
        {"source_labels": [f"{_POD_LABEL}pgfleet_io_server"], "target_label": "server"},
        {"target_label": "stack", "replacement": plan.stack},
        {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
    ]


def kubernetes_job(plan: MonitoringPlan) -> dict[str, object]:
    """Kubernetes, plain Prometheus: the exporter pods of the stack's namespace, found by the API."""
    return {
        "job_name": job_name(plan),
        "scrape_interval": plan.scrape_interval,
        "kubernetes_sd_configs": [{"role": "pod", "namespaces": {"names": [plan.namespace]}}],
        "relabel_configs": [
            {"source_labels": [f"{_POD_LABEL}app_kubernetes_io_name", f"{_POD_LABEL}app_kubernetes_io_part_of",
                               "__meta_kubernetes_pod_container_port_name"],
             "regex": f"exporter;pgfleet;{EXPORTER_PORT_NAME}", "action": "keep"},
            *server_relabelling(plan),
        ],
    }


def scrape_job(plan: MonitoringPlan) -> dict[str, object]:
    return kubernetes_job(plan) if plan.platform == "kubernetes" else static_job(plan)


def unscraped(plan: MonitoringPlan) -> list[str]:
    """Docker: monitored servers whose exporter has no host port, which Prometheus cannot reach."""
    if plan.platform == "kubernetes":
        return []
    return [server.name for server in plan.servers if server.metrics_port is None]
