"""Grafana dashboards: one per service and one per server, as dashboard JSON models."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from . import metrics as m
from .plan import MonitoredServer, MonitoredService, MonitoringPlan

_DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}


@dataclass(frozen=True)
class Panel:
    title: str
    queries: tuple[tuple[str, str], ...]
    """(PromQL, legend) pairs."""
    unit: str = "short"
    kind: str = "timeseries"


def _uid(*parts: str) -> str:
    # Grafana's uids are at most 40 characters; names may be longer.
    return "pgfleet-" + hashlib.sha256("/".join(parts).encode()).hexdigest()[:24]


def _dashboard(title: str, uid: str, tags: list[str], panels: list[Panel]) -> dict[str, object]:
    laid_out = []
    for index, panel in enumerate(panels):
        laid_out.append({
            "id": index + 1,
            "type": panel.kind,
            "title": panel.title,
            "datasource": _DATASOURCE,
            "gridPos": {"x": (index % 2) * 12, "y": (index // 2) * 8, "w": 12, "h": 8},
            "fieldConfig": {"defaults": {"unit": panel.unit}, "overrides": []},
            "targets": [
                {"refId": chr(ord("A") + i), "expr": expr, "legendFormat": legend, "datasource": _DATASOURCE}
                for i, (expr, legend) in enumerate(panel.queries)
            ],
        })
    return {
        "uid": uid,
        "title": title,
        "tags": ["pgfleet", *tags],
        "schemaVersion": 39,
        "version": 1,
        "editable": False,
        "time": {"from": "now-6h", "to": "now"},
        "refresh": "30s",
        "templating": {"list": [{"name": "datasource", "type": "datasource", "query": "prometheus",
                                 "label": "Prometheus"}]},
        "panels": laid_out,
    }


def service_dashboard(plan: MonitoringPlan, server: MonitoredServer, service: MonitoredService) -> dict[str, object]:
    at = f'stack="{plan.stack}", service="{service.name}"'
    panels = [
        Panel("Connections by role", (
            (f"{m.ROLE_CONNECTIONS}{{{at}}}", "{{role}}"),
            (f"{m.ROLE_CONNECTION_LIMIT}{{{at}}} > 0", "{{role}} limit"),
        )),
        Panel("Transactions per second", (
            (f"rate({m.DATABASE_COMMITS}{{{at}}}[5m])", "commits"),
            (f"rate({m.DATABASE_ROLLBACKS}{{{at}}}[5m])", "rollbacks"),
        ), unit="ops"),
        Panel("Database size", ((f"{m.DATABASE_SIZE}{{{at}}}", "{{database}}"),), unit="bytes"),
    ]
    if service.provisioner is None:  # the platform's dumps cover its own services' databases only
        panels.append(Panel("Newest dump", ((f"{m.DUMP_AGE}{{{at}}}", "age"),), unit="s", kind="stat"))
    if server.statements:
        panels += [
            Panel(f"Slow statements (mean at or over {plan.slow_query_ms} ms)", (
                (f"{m.SLOW_STATEMENTS}{{{at}}}", "statements"),
                (f"rate({m.SLOW_CALLS}{{{at}}}[5m])", "calls per second"),
            )),
            Panel("Statement time", (
                (f"rate({m.STATEMENT_SECONDS}{{{at}}}[5m]) / rate({m.STATEMENT_CALLS}{{{at}}}[5m])", "mean"),
                (f"{m.STATEMENT_MAX_MEAN}{{{at}}}", "slowest statement's mean"),
            ), unit="s"),
        ]
    return _dashboard(f"pgfleet {plan.stack} / service {service.name}", _uid(plan.stack, "service", service.name),
                      ["service", plan.stack], panels)


def server_dashboard(plan: MonitoringPlan, server: MonitoredServer) -> dict[str, object]:
    at = f'stack="{plan.stack}", server="{server.host}"'
    panels = [
        Panel("Up", ((f"{m.UP}{{{at}}}", "pg_up"),), kind="stat"),
        Panel("Connections", (
            (f"{m.SERVER_CONNECTIONS}{{{at}}}", "open"),
            (f"{m.SERVER_MAX_CONNECTIONS}{{{at}}}", "max_connections"),
        )),
        Panel("Data on disk", (
            (f"{m.SERVER_DATA}{{{at}}}", "databases + WAL"),
            (f"{m.SERVER_STORAGE}{{{at}}}", "storage"),
        ), unit="bytes"),
        Panel("Databases by size", ((f"{m.DATABASE_SIZE}{{{at}}}", "{{service}}"),), unit="bytes"),
        Panel("Replicas streaming", (
            (f"{m.REPLICAS_STREAMING}{{{at}}}", "streaming"),
            (f"{m.REPLICAS_EXPECTED}{{{at}}}", "expected"),
        )),
    ]
    if server.replicas:
        panels.append(Panel("Replica lag", ((f"{m.REPLICA_LAG_SECONDS}{{{at}}}", "{{replica}}"),), unit="s"))
    if plan.wal_archiving:
        panels += [
            Panel("WAL archiving", (
                (f"rate({m.ARCHIVED}{{{at}}}[5m])", "archived per second"),
                (f"rate({m.ARCHIVE_FAILED}{{{at}}}[5m])", "failed per second"),
            ), unit="ops"),
            Panel("Newest base backup", ((f"{m.BASE_BACKUP_AGE}{{{at}}}", "age"),), unit="s", kind="stat"),
        ]
    if plan.backups and server.own_services:
        panels.append(Panel("Newest dump by service", ((f"{m.DUMP_AGE}{{{at}}}", "{{service}}"),), unit="s"))
    return _dashboard(f"pgfleet {plan.stack} / server {server.name}", _uid(plan.stack, "server", server.name),
                      ["server", plan.stack], panels)


def dashboard_folder(plan: MonitoringPlan) -> str:
    """The Grafana folder a stack's dashboards go in."""
    return f"pgfleet {plan.stack}"


def dashboards(plan: MonitoringPlan) -> dict[str, str]:
    """File name -> dashboard JSON, for every monitored server and each service on it."""
    found: dict[str, str] = {}
    for server in plan.servers:
        found[f"server-{server.name}.json"] = json.dumps(server_dashboard(plan, server), indent=1, sort_keys=True)
        for service in server.services:
            found[f"service-{service.name}.json"] = json.dumps(
                service_dashboard(plan, server, service), indent=1, sort_keys=True)
    return found
