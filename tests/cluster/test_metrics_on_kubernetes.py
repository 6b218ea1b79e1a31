"""Monitoring on Kubernetes, live: a plain Prometheus (Debian's, on this machine) runs the scrape
job the stack publishes in its ConfigMap against the namespace's real pods and scrapes the
exporter pod; every service's metrics arrive labelled with their server and stack, the pod
carries the prometheus.io annotations, and the dashboards' ConfigMaps name only metrics it has. Then the
stack moves to `monitoring.kubernetes: operator` with the Prometheus Operator's own CRDs
installed: the API server takes its PodMonitor and PrometheusRule as they were written (no
Operator runs here to act on them).

Debian builds Prometheus without Kubernetes discovery, so the test discovers: it reads the pods
from the API server and hands Prometheus what `kubernetes_sd_configs` (role pod) would, a target
per container port with its `__meta_kubernetes_*` labels, through a file; the job's relabelling
runs as published."""
from __future__ import annotations

import json
import os
import re
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from kubernetes import client

from tests.support.cluster import Cluster, wait
from tests.support.engine import config_values, throwaway_stack, up_with_policies
from tests.support.prod import ClusterLive, ExternalVault, object_store, secret_config
from tests.support.prometheus import Prometheus, dashboard_metrics, running

PREFIX = f"mon-{secrets.token_hex(2)}-"
NAMESPACE = f"{PREFIX}db"
SERVICES = ("orders", "billing")
PROMETHEUS_PORT = 19191
#: Fetched by `setup/toolchain.sh --cluster` from the Operator's module (example/prometheus-operator-crd).
OPERATOR_CRDS = Path(os.environ.get("PGFLEET_CACHE", "/var/cache/pgfleet")) / "crds/prometheus-operator/current"
MONITORING = {"scrape_interval": "2s"}


@pytest.fixture(scope="module")
def live(cluster: Cluster, vault: ExternalVault, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterLive]:
    try:
        with object_store(cluster, f"{PREFIX}s3") as store:
            config = {
                "platform": "kubernetes",
                "servers": [{"name": "shared", "cpu": "100m", "memory": "512Mi"}],
                "services": [{"name": name, "connection_limit": 10} for name in SERVICES],
                "kubernetes": {"namespace": NAMESPACE},
                "vault": {"mode": "external", "address": vault.address},
                "backup": {"target": {"kind": "s3", "endpoint": store.endpoint, "bucket": store.bucket,
                                      "verify_tls": False}},
                "monitoring": MONITORING,
            }
            with throwaway_stack(tmp_path_factory.mktemp("metrics"), "metrics", config,
                                 secret_config(vault, store), protected=True) as stack:
                yield ClusterLive(stack, up_with_policies(stack), NAMESPACE)
    finally:
        cluster.core.delete_namespace(NAMESPACE)


def _label_name(key: str) -> str:
    return re.sub(r"[^a-zA-Z0-9_]", "_", key)


def pod_targets(cluster: Cluster, namespace: str) -> list[dict[str, object]]:
    """What Prometheus's Kubernetes discovery (role pod) finds in `namespace`: a target per
    container port of each running pod, with the pod's labels and port name as meta labels."""
    targets: list[dict[str, object]] = []
    for pod in cluster.core.list_namespaced_pod(namespace).items:
        if not pod.status.pod_ip:
            continue
        meta = {f"__meta_kubernetes_pod_label_{_label_name(k)}": v for k, v in (pod.metadata.labels or {}).items()}
        meta |= {"__meta_kubernetes_namespace": namespace, "__meta_kubernetes_pod_name": pod.metadata.name}
        for container in pod.spec.containers:
            for port in container.ports or []:
                targets.append({"targets": [f"{pod.status.pod_ip}:{port.container_port}"],
                                "labels": {**meta, "__meta_kubernetes_pod_container_port_name": port.name or ""}})
    return targets


@pytest.fixture(scope="module")
def prometheus(live: ClusterLive, cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    published = cluster.core.read_namespaced_config_map("pgfleet-monitoring-prometheus", NAMESPACE).data
    scrape = yaml.safe_load(published["scrape.yml"])["scrape_configs"]
    work = tmp_path_factory.mktemp("prometheus")
    for job in scrape:
        [discovery] = job.pop("kubernetes_sd_configs")
        assert discovery == {"role": "pod", "namespaces": {"names": [NAMESPACE]}}
        (work / "pods.json").write_text(json.dumps(pod_targets(cluster, NAMESPACE)))
        job["file_sd_configs"] = [{"files": [str(work / "pods.json")]}]
    (work / "pgfleet.rules.yml").write_text(published["pgfleet.rules.yml"])
    (work / "prometheus.yml").write_text(yaml.safe_dump(
        {"global": {"scrape_interval": "2s", "evaluation_interval": "2s"},
         "rule_files": ["pgfleet.rules.yml"], "scrape_configs": scrape}))
    data = work / "data"
    data.mkdir()
    with running(work / "prometheus.yml", data, PROMETHEUS_PORT) as server:
        wait(lambda: len(server.query("pg_up == 1")) == 1, 120, "Prometheus scrapes the exporter pod")
        yield server


def test_the_exporter_pod_is_found_and_scraped_with_its_server_and_stack(
        live: ClusterLive, cluster: Cluster, prometheus: Prometheus) -> None:
    pod = cluster.core.read_namespaced_pod("shared-metrics-0", NAMESPACE)
    assert pod.metadata.annotations["prometheus.io/scrape"] == "true"
    assert pod.metadata.annotations["prometheus.io/port"] == "9187"
    [(labels, _)] = prometheus.query("pg_up")
    assert (labels["server"], labels["stack"], labels["pod"]) == ("shared", live.stack.name, "shared-metrics-0")
    wait(lambda: len(prometheus.query("pgfleet:base_backup_age_seconds")) == 1, 60, "the base backup is recorded")
    for metric in ("pgfleet_role_connections", "pgfleet_database_size_bytes", "pgfleet_statements_slow",
                   "pgfleet_dump_last_success_timestamp_seconds"):
        assert {(s["service"], s["server"]) for s, _ in prometheus.query(metric)} == {
            (name, "shared") for name in SERVICES}, metric
    assert prometheus.value("pgfleet_wal_archive_enabled") == 1
    assert prometheus.value("pg_exporter_last_scrape_error") == 0


def test_a_dump_run_by_its_cronjob_shows_as_each_services_dump_age(
        cluster: Cluster, prometheus: Prometheus) -> None:
    assert not prometheus.query("pgfleet:dump_age_seconds")  # never dumped: no age yet
    cluster.fire_cronjob(NAMESPACE, "shared-dump")
    wait(lambda: sorted(s["service"] for s, age in prometheus.query("pgfleet:dump_age_seconds") if age < 300)
         == sorted(SERVICES), 60, "both dumps are recorded")


def test_the_dashboards_configmaps_name_only_metrics_prometheus_has(
        cluster: Cluster, prometheus: Prometheus) -> None:
    maps = cluster.core.list_namespaced_config_map(NAMESPACE, label_selector="grafana_dashboard=1").items
    boards = [json.loads(body) for m in maps for body in m.data.values()]
    assert sorted(b["title"].rsplit(" ", 1)[-1] for b in boards) == sorted([*SERVICES, "shared"])
    named = set().union(*(dashboard_metrics(b) for b in boards))
    missing = named - prometheus.names()
    assert not missing, f"named by a panel, never scraped: {sorted(missing)}"


def install_operator_crds(cluster: Cluster) -> None:
    """The PodMonitor and PrometheusRule CRDs, as the Operator's release ships them (left installed:
    cluster-wide, and what a cluster with the Operator has anyway)."""
    files = sorted(OPERATOR_CRDS.glob("*.yaml"))
    assert len(files) == 2, f"no CRDs in {OPERATOR_CRDS}: bash setup/toolchain.sh --cluster fetches them"
    extensions = client.ApiextensionsV1Api(cluster.api_client)
    for file in files:
        crd = yaml.safe_load(file.read_text())
        try:
            extensions.create_custom_resource_definition(crd)
        except client.ApiException as error:
            if error.status != 409:  # there already
                raise
        name = crd["metadata"]["name"]
        wait(lambda name=name: any(
            c.type == "Established" and c.status == "True"
            for c in extensions.read_custom_resource_definition(name).status.conditions or []),
             60, f"CRD {name} is established")


def test_with_the_operator_the_api_server_takes_the_pod_monitor_and_the_prometheus_rule(
        live: ClusterLive, cluster: Cluster) -> None:
    install_operator_crds(cluster)
    live.stack.set_all_config(config_values({"monitoring": {**MONITORING, "kubernetes": "operator"}}))
    up_with_policies(live.stack)
    custom = client.CustomObjectsApi(cluster.api_client)
    monitor = custom.get_namespaced_custom_object(
        "monitoring.coreos.com", "v1", NAMESPACE, "podmonitors", "pgfleet-monitoring-exporters")
    endpoint = monitor["spec"]["podMetricsEndpoints"][0]
    # read back whole: a field the CRD's schema did not know would have been pruned
    assert (endpoint["port"], endpoint["interval"]) == ("metrics", "2s")
    # (the CRD's schema fills in the default action)
    assert {"action": "replace", "sourceLabels": ["__meta_kubernetes_pod_label_pgfleet_io_server"],
            "targetLabel": "server"} in endpoint["relabelings"]
    assert monitor["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"] == "exporter"
    pods = cluster.core.list_namespaced_pod(
        NAMESPACE, label_selector=",".join(f"{k}={v}" for k, v in monitor["spec"]["selector"]["matchLabels"].items()))
    assert [p.metadata.name for p in pods.items] == ["shared-metrics-0"]
    rules = custom.get_namespaced_custom_object(
        "monitoring.coreos.com", "v1", NAMESPACE, "prometheusrules", "pgfleet-monitoring-rules")
    [group] = rules["spec"]["groups"]
    alerts = {r["alert"]: r for r in group["rules"] if "alert" in r}
    assert alerts["PgfleetWalArchivingFailing"]["for"] == "5m" and "expr" in alerts["PgfleetWalArchivingFailing"]
    assert {r["record"] for r in group["rules"] if "record" in r} == {
        "pgfleet:base_backup_age_seconds", "pgfleet:dump_age_seconds"}
    # the plain-Prometheus ConfigMap gives way; the dashboards stay
    names = {m.metadata.name for m in cluster.core.list_namespaced_config_map(NAMESPACE).items}
    assert "pgfleet-monitoring-prometheus" not in names
    assert "pgfleet-monitoring-dashboard-service-orders" in names
