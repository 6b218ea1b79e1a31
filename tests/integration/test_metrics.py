"""Metrics, alerts and dashboards, live: Debian's Prometheus scrapes the dev stack with the files
its `up` wrote (prometheus.yml, the rules), and every number a team looks at is there.

One dev stack (the shared server with a replica, payments on its own, backups into the stack's
S3 store), scraped every 2 s, alerts pending 1 s, an RPO of 1 min. In order: every metric for
every service and server with its labels; the exporter's role kept to statistics; connections
counted by role, and the near-the-limit alert firing for one service alone; slow statements by
service; backup ages falling after the jobs run; the WAL-archiving alert firing while the store
is down and clearing once it is back; then the dashboards, which may name only metrics this
Prometheus has.
"""
from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import psycopg
import pytest

from tests.support.cluster import wait
from tests.support.live import Live, connect, docker_stack, isolated
from tests.support.program import stack_config
from tests.support.prometheus import Prometheus, dashboard_metrics, running

PREFIX = "pgfleet-mon-"
CONFIG = isolated(stack_config("Pulumi.dev.yaml"), PREFIX, port_offset=11700)
CONFIG["monitoring"] = {"scrape_interval": "2s", "alerts": {"pending": "1s"}}
# A segment unarchived for longer than the RPO counts as failing archiving: a minute here.
CONFIG["backup"] = {**CONFIG["backup"], "rpo": "1m"}
PROMETHEUS_PORT = 19190
#: service -> (server, its database, its roles)
SERVICES = {
    "auth": ("shared", "auth_db"), "orders": ("shared", "orders_db"),
    "catalog": ("shared", "catalog_db"), "payments": ("payments", "payments_db"),
}
PER_SERVICE = [
    "pgfleet_role_connections", "pgfleet_role_connection_limit", "pgfleet_database_xact_commit_total",
    "pgfleet_database_xact_rollback_total", "pgfleet_database_size_bytes", "pgfleet_statements_calls_total",
    "pgfleet_statements_slow", "pgfleet_statements_slow_calls_total", "pgfleet_statements_max_mean_seconds",
    "pgfleet_dump_last_success_timestamp_seconds",
]
PER_SERVER = [
    "pg_up", "pgfleet_server_connections", "pgfleet_server_max_connections", "pgfleet_server_data_bytes",
    "pgfleet_server_storage_bytes", "pgfleet_replication_streaming", "pgfleet_wal_archive_enabled",
    "pgfleet_wal_archive_archived_total", "pgfleet_wal_archive_failed_total",
    "pgfleet_wal_archive_last_archived_timestamp_seconds", "pgfleet_wal_archive_pending",
    "pgfleet_wal_archive_oldest_pending_seconds", "pgfleet_base_backup_last_success_timestamp_seconds",
    "pgfleet:base_backup_age_seconds",
]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    tmp = tmp_path_factory.mktemp("metrics")
    config = {**CONFIG, "monitoring": {**CONFIG["monitoring"], "directory": str(tmp / "monitoring")}}
    with docker_stack(tmp, "it-metrics", config, PREFIX) as live:
        yield live


@pytest.fixture(scope="module")
def directory(live: Live) -> Path:
    return Path(live.result.outputs["monitoring_directory"].value)


@pytest.fixture(scope="module")
def prometheus(live: Live, directory: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    with running(directory / "prometheus.yml", tmp_path_factory.mktemp("prometheus"), PROMETHEUS_PORT) as server:
        wait(lambda: len(server.query("up == 1")) == 2, 60, "Prometheus scrapes both exporters")
        yield server


def test_every_metric_is_there_for_every_service_and_server_with_its_labels(live: Live, prometheus: Prometheus) -> None:
    stack = live.stack.name
    wait(lambda: len(prometheus.query("pgfleet:base_backup_age_seconds")) == 2, 60,
         "the recording rules have run")
    for metric in PER_SERVICE:
        found = prometheus.query(metric)
        seen = {(s["service"], s["server"], s["database"], s["stack"]) for s, _ in found}
        assert seen == {(name, server, db, stack) for name, (server, db) in SERVICES.items()}, metric
    roles = {(s["service"], s["role"]) for s, _ in prometheus.query("pgfleet_role_connections")}
    assert roles == {(name, f"{name}_{kind}") for name in SERVICES for kind in ("migrator", "user", "readonly")}
    for metric in PER_SERVER:
        assert {(s["server"], s["stack"]) for s, _ in prometheus.query(metric)} == {
            ("shared", stack), ("payments", stack)}, metric
    # the replica streams from shared; payments runs none
    assert prometheus.value('pgfleet_replication_streaming{server="shared"}') == 1
    assert prometheus.value('pgfleet_replication_expected{server="payments"}') == 0
    assert {s["server"] for s, _ in prometheus.query("pgfleet_replica_lag_seconds")} == {"shared"}
    assert prometheus.value('pgfleet_wal_archive_enabled{server="shared"}') == 1
    # every query of the exporter ran: none failed on the server
    assert {v for _, v in prometheus.query("pg_exporter_last_scrape_error")} == {0.0}
    assert prometheus.value('pgfleet_role_connection_limit{role="catalog_user"}') == 30
    assert prometheus.value('pgfleet_server_max_connections{server="shared"}') == 120


def test_the_exporters_role_reads_statistics_and_nothing_of_a_service(live: Live) -> None:
    with connect(live.url("orders", "migration_url")) as migrator:
        migrator.execute("CREATE TABLE orders.ledger (amount int)")
    with connect(live.admin_url("shared")) as admin:
        attributes = admin.execute(
            "SELECT rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls, "
            "ARRAY(SELECT b.rolname FROM pg_auth_members m JOIN pg_roles b ON b.oid = m.roleid "
            "WHERE m.member = r.oid) FROM pg_roles r WHERE rolname = 'pgfleet_monitor'").fetchone()
        assert attributes == (False, False, False, False, False, ["pg_monitor"])
        admin.execute("SET ROLE pgfleet_monitor")
        # admitted: every statistic, the backups' record
        admin.execute("SELECT count(*) FROM pg_stat_statements WHERE query IS NOT NULL")
        admin.execute("SELECT count(*) FROM pgfleet.backup_runs")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            admin.execute("CREATE TABLE public.anything (a int)")
    with connect(live.admin_url("shared", "orders_db")) as admin:
        admin.execute("SET ROLE pgfleet_monitor")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            admin.execute("SELECT * FROM orders.ledger")


def test_connections_are_counted_by_role_and_near_the_limit_alert(live: Live, prometheus: Prometheus) -> None:
    alert = "PgfleetServiceNearConnectionLimit"
    limit = prometheus.value('pgfleet_role_connection_limit{role="orders_user"}')
    assert limit == 20
    with ExitStack() as held:
        opened = [held.enter_context(connect(live.url("orders"))) for _ in range(int(limit * 0.8))]
        for connection in opened:
            connection.execute("SELECT 1")
        wait(lambda: prometheus.value('pgfleet_role_connections{role="orders_user"}') == len(opened), 30,
             "the orders app role's connections are counted")
        wait(lambda: prometheus.firing(alert, role="orders_user"), 30, f"{alert} fires for orders")
        assert prometheus.value('pgfleet_role_connections{role="payments_user"}') == 0
        assert all(a["labels"].get("service") == "orders" for a in prometheus.alerts(alert))
    wait(lambda: prometheus.value('pgfleet_role_connections{role="orders_user"}') == 0, 30,
         "the closed connections are no longer counted")
    wait(lambda: not prometheus.alerts(alert), 30, f"{alert} clears")


def test_slow_statements_are_counted_for_their_service_only(live: Live, prometheus: Prometheus) -> None:
    assert prometheus.value('pgfleet_statements_slow{service="orders"}') == 0
    with connect(live.url("orders")) as orders:
        orders.execute("SELECT pg_sleep(0.7)")
    wait(lambda: (prometheus.value('pgfleet_statements_slow{service="orders"}') or 0) >= 1, 30,
         "orders has a slow statement")
    assert prometheus.value('pgfleet_statements_slow{service="auth"}') == 0
    assert (prometheus.value('pgfleet_statements_max_mean_seconds{service="orders"}') or 0) >= 0.7


def backup(container: str, *args: str) -> None:
    result = subprocess.run(["docker", "exec", PREFIX + container, "pgfleet-backup", *args],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr


def test_backup_ages_fall_after_the_jobs_run(live: Live, prometheus: Prometheus) -> None:
    # Never dumped: the timestamp is 0, the age (a recording rule) absent, not zero.
    assert prometheus.value('pgfleet_dump_last_success_timestamp_seconds{service="orders"}') == 0
    assert prometheus.value('pgfleet:dump_age_seconds{service="orders"}') is None
    backup("shared-dump", "dump")
    wait(lambda: (prometheus.value('pgfleet:dump_age_seconds{service="orders"}') or 1e9) < 120, 60,
         "the dump of orders is recorded")
    assert prometheus.value('pgfleet_dump_last_success_timestamp_seconds{service="payments"}') == 0

    before = prometheus.value('pgfleet:base_backup_age_seconds{server="shared"}')
    assert before is not None and before > 0
    time.sleep(3)
    backup("shared-base", "base", "full")
    wait(lambda: (prometheus.value('pgfleet:base_backup_age_seconds{server="shared"}') or 1e9) < before, 60,
         "the base backup's age falls")
    after = prometheus.value('pgfleet:base_backup_age_seconds{server="payments"}')
    assert after is not None and after > 0


def switch_wal(live: Live, server: str) -> None:
    with connect(live.admin_url(server)) as admin:
        admin.execute("CREATE TABLE IF NOT EXISTS pgfleet_probe (at timestamptz)")
        admin.execute("INSERT INTO pgfleet_probe VALUES (now())")
        admin.execute("SELECT pg_switch_wal()")


def test_the_wal_archiving_alert_fires_while_archiving_fails_and_clears_once_it_works(
        live: Live, prometheus: Prometheus) -> None:
    alert, store = "PgfleetWalArchivingFailing", PREFIX + "pgfleet-backup-store"
    assert not prometheus.firing(alert, server="shared")
    subprocess.run(["docker", "stop", store], check=True, capture_output=True)
    try:
        switch_wal(live, "shared")
        # pgBackRest's push waits for the store (nothing fails yet): the segment waits with it
        wait(lambda: prometheus.firing(alert, server="shared"), 300, f"{alert} fires for shared")
        assert (prometheus.value('pgfleet_wal_archive_pending{server="shared"}') or 0) >= 1
    finally:
        subprocess.run(["docker", "start", store], check=True, capture_output=True)
    wait(lambda: subprocess.run(
        ["docker", "inspect", "-f", "{{.State.Health.Status}}", store], capture_output=True, text=True
    ).stdout.strip() == "healthy", 120, "the store answers again")
    switch_wal(live, "shared")
    wait(lambda: not prometheus.firing(alert, server="shared"), 300, f"{alert} clears for shared")


def test_every_dashboard_is_valid_and_names_only_metrics_prometheus_has(
        live: Live, prometheus: Prometheus, directory: Path) -> None:
    boards = {path.name: json.loads(path.read_text()) for path in (directory / "grafana/dashboards").glob("*.json")}
    assert set(boards) == {f"service-{s}.json" for s in SERVICES} | {"server-shared.json", "server-payments.json"}
    provider = (directory / "grafana/provisioning/dashboards/pgfleet.yaml").read_text()
    assert str(directory / "grafana/dashboards") in provider
    seen = prometheus.names()
    named: set[str] = set()
    for name, board in boards.items():
        assert board["uid"] and len(board["uid"]) <= 40 and board["panels"], name
        named |= dashboard_metrics(board)
    assert named <= seen, f"named by a panel, never scraped: {sorted(named - seen)}"
    assert "pgfleet:dump_age_seconds" in named and "pgfleet_replica_lag_seconds" in named
