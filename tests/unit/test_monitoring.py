"""Monitoring from a stack config: the exporter's queries and flags, the files a dev stack
writes, the objects a prod stack makes, and the refusals of bad monitoring settings."""
from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path

import pytest
import yaml

from pgfleet.components.shared_server import EXPORTER_QUERIES
from pgfleet.observability import plan
from pgfleet.observability.dashboards import dashboards
from pgfleet.observability.queries import queries
from pgfleet.observability.schedule import longest_gap_s
from pgfleet.stacks.config import ConfigError, parse_config
from tests.support.program import TEST_SECRETS, Run, exports, run_stack, stack_config

EXAMPLES = sorted(str(p.relative_to(Path(__file__).parents[2])) for p in Path(__file__).parents[2].glob("examples/*.yaml"))


@pytest.fixture(scope="module")
def dev() -> Run:
    return run_stack(stack_config("Pulumi.dev.yaml"), collect=lambda _: exports())


def exporter(run: Run, name: str) -> dict:
    return next(c.inputs for c in run.mocks.of_type("docker:index/container:Container") if c.inputs["name"] == name)


@pytest.mark.parametrize("path", ["Pulumi.dev.yaml", "Pulumi.prod.yaml", *EXAMPLES])
def test_every_monitored_server_gets_queries_naming_each_of_its_services(path: str) -> None:
    config = parse_config(stack_config(path))
    watched = plan("s", config)
    assert {s.name for s in watched.servers} == {
        name for name, settings, _ in config.resolved_servers() if settings.metrics.enabled}
    for server in watched.servers:
        found = queries(server, watched)
        assert {"pgfleet_role", "pgfleet_database", "pgfleet_server", "pgfleet_replication"} <= set(found)
        assert ("pgfleet_wal_archive" in found) == watched.wal_archiving
        assert ("pgfleet_statements" in found) == server.statements
        for service in server.services:
            named = service.provisioner or service.database
            assert f"'{service.name}', '{named}'" in found["pgfleet_database"]["query"]
        for definition in found.values():
            assert definition["master"] is True  # the postgres database only: it sees every database


def test_a_server_without_services_gets_queries_that_return_no_rows() -> None:
    # a server that holds only service stacks' databases
    watched = plan("dev", parse_config(stack_config("Pulumi.dev.yaml")))
    spare = dataclasses.replace(watched.servers[0], services=())
    assert "SELECT NULL::text, NULL::text WHERE false" in queries(spare, watched)["pgfleet_database"]["query"]


def test_service_stacks_services_are_found_by_their_provisioner_and_not_dumped() -> None:
    watched = plan("platform", parse_config(stack_config("examples/service-stacks/platform.yaml")))
    (server,) = watched.servers
    assert {(s.name, s.provisioner, s.database) for s in server.services} == {
        (name, f"{name}_provisioner", "") for name in ("orders", "billing", "inventory")}
    found = queries(server, watched)
    for name in ("pgfleet_role", "pgfleet_database", "pgfleet_statements"):
        assert "('orders', 'orders_provisioner')" in found[name]["query"]
    assert "provisioner" not in found["pgfleet_dump"]["query"]  # the platform's dumps skip them
    boards = dashboards(watched)
    orders = json.loads(boards["service-orders.json"])
    assert [p["title"] for p in orders["panels"] if "dump" in p["title"].lower()] == []
    assert all("dump" not in p["title"] for p in json.loads(boards["server-shared.json"])["panels"])


def test_the_exporter_runs_pgfleets_queries_and_knows_postgres_17(dev: Run) -> None:
    shared = exporter(dev, "shared-metrics")
    env = dict(item.split("=", 1) for item in shared["envs"])
    assert env["PG_EXPORTER_EXTEND_QUERY_PATH"] == EXPORTER_QUERIES
    assert "--no-collector.bgwriter" not in shared["command"]
    config = stack_config("Pulumi.dev.yaml")
    config["servers"][0]["version"] = config["services"][3]["dedicated"]["version"] = 17
    config["docker"] = {"images": {"postgres": "pgfleet/postgres:17", "backup": "pgfleet/postgres:17"}}
    newer = run_stack(config, collect=lambda _: exports())
    assert "--no-collector.bgwriter" in exporter(newer, "shared-metrics")["command"]
    extensions = newer.mocks.of_type("postgresql:index/extension:Extension")
    assert {(e.inputs["name"], e.inputs["database"]) for e in extensions} >= {("pg_stat_statements", "postgres")}


def test_up_writes_prometheus_rules_and_grafana_files(dev: Run) -> None:
    directory = Path(dev.values["monitoring_directory"].value)
    assert directory == Path.home() / ".pgfleet/pgfleet/dev/monitoring"
    config = yaml.safe_load((directory / "prometheus.yml").read_text())
    targets = {t for sc in config["scrape_configs"][0]["static_configs"] for t in sc["targets"]}
    assert targets == {"127.0.0.1:9187", "127.0.0.1:9188"}
    assert config["rule_files"] == ["rules/pgfleet.rules.yml"] and (directory / "rules/pgfleet.rules.yml").exists()
    boards = sorted(p.name for p in (directory / "grafana/dashboards").glob("*.json"))
    assert boards == ["server-payments.json", "server-shared.json", "service-auth.json", "service-catalog.json",
                      "service-orders.json", "service-payments.json"]
    for board in boards:
        json.loads((directory / "grafana/dashboards" / board).read_text())


def test_prod_publishes_dashboards_rules_and_a_scrape_job_for_plain_prometheus() -> None:
    prod = run_stack(stack_config("Pulumi.prod.yaml"), TEST_SECRETS, stack="prod")
    maps = {m.inputs["metadata"]["name"]: m.inputs for m in prod.mocks.of_type("kubernetes:core/v1:ConfigMap")}
    boards = [m for m in maps.values() if m["metadata"]["labels"].get("grafana_dashboard") == "1"]
    assert len(boards) >= 2 and all(json.loads(next(iter(m["data"].values())))["panels"] for m in boards)
    scrape = yaml.safe_load(maps["pgfleet-monitoring-prometheus"]["data"]["scrape.yml"])
    assert scrape["scrape_configs"][0]["kubernetes_sd_configs"][0]["namespaces"]["names"] == ["databases"]
    assert not prod.mocks.of_type("kubernetes:monitoring.coreos.com/v1:PrometheusRule")
    exporters = [s.inputs for s in prod.mocks.of_type("kubernetes:apps/v1:StatefulSet")
                 if s.inputs["metadata"]["name"].endswith("-metrics")]
    assert exporters and all(
        e["spec"]["template"]["metadata"]["annotations"]["prometheus.io/scrape"] == "true" for e in exporters)


def test_prod_with_the_operator_gets_a_pod_monitor_and_a_prometheus_rule() -> None:
    config = stack_config("Pulumi.prod.yaml")
    config["monitoring"] = {"kubernetes": "operator"}
    prod = run_stack(config, TEST_SECRETS, stack="prod")
    rules = prod.mocks.of_type("kubernetes:monitoring.coreos.com/v1:PrometheusRule")
    monitors = prod.mocks.of_type("kubernetes:monitoring.coreos.com/v1:PodMonitor")
    assert len(rules) == len(monitors) == 1
    assert any(r.get("alert") == "PgfleetWalArchivingFailing" for g in rules[0].inputs["spec"]["groups"] for r in g["rules"])
    endpoint = monitors[0].inputs["spec"]["podMetricsEndpoints"][0]
    assert {"sourceLabels": ["__meta_kubernetes_pod_label_pgfleet_io_server"], "targetLabel": "server"} in endpoint["relabelings"]


@pytest.mark.parametrize(("change", "key"), [
    ({"alerts": {"connection_usage": 1.5}}, "monitoring.alerts.connection_usage"),
    ({"kubernetes": "servicemonitor"}, "monitoring.kubernetes"),
    ({"slow_query": "fast"}, "monitoring.slow_query"),
    ({"scrape": "15s"}, "monitoring.scrape"),
])
def test_bad_monitoring_settings_are_refused_by_key(change: dict, key: str) -> None:
    config = copy.deepcopy(stack_config("Pulumi.dev.yaml"))
    config["monitoring"] = change
    with pytest.raises(ConfigError) as refused:
        parse_config(config)
    assert key in str(refused.value)


@pytest.mark.parametrize(("schedule", "hours"), [
    ("0 0 * * *", 24), ("0 1 * * 0", 168), ("*/15 * * * *", 0.25), ("30 2 * * 1-5", 72), ("0 0 1 * *", 31 * 24),
    ("0 3,15 * * *", 12),
])
def test_the_longest_gap_of_a_schedule(schedule: str, hours: float) -> None:
    assert longest_gap_s(schedule) == hours * 3600
