"""SharedServer on both platforms: which children each option brings, and how they are wired."""
from __future__ import annotations

from typing import Any

import pytest

from pgfleet.components import BackupBucket, BackupBucketArgs, PoolerArgs, SharedServer, SharedServerArgs
from pgfleet.components.platform import kube_forward
from tests.support.platforms import make_platform
from tests.support.program import Run, run

CONTAINER = "docker:index/container:Container"
VOLUME = "docker:index/volume:Volume"
STATEFULSET = "kubernetes:apps/v1:StatefulSet"
CRONJOB = "kubernetes:batch/v1:CronJob"


def build(kind: str, protect: bool = False, backup: bool = False,
          platform_settings: dict[str, Any] | None = None, **options: Any) -> Run:
    def program() -> SharedServer:
        platform = make_platform(kind, protect, **(platform_settings or {}))
        bucket = BackupBucket("bk", BackupBucketArgs(platform=platform, archive_timeout_s=60)) if backup else None
        return SharedServer("main", SharedServerArgs(
            platform=platform, image="pg:15", host_port=5432, databases=["a_db", "b_db"],
            clients=[{"app": "a"}, {"app": "b"}], backup=bucket, backup_image="backup:1" if backup else None,
            **options,
        ))

    return run(program, lambda s: {"admin_password": s.admin_password, "read_host": s.read_host, "host": s.host})


def process_names(outcome: Run, kind: str) -> set[str]:
    if kind == "docker":
        return {c.inputs["name"] for c in outcome.mocks.of_type(CONTAINER)}
    return {s.inputs["metadata"]["name"] for s in outcome.mocks.of_type(STATEFULSET) + outcome.mocks.of_type(CRONJOB)}


# platform x options -> the processes (containers, StatefulSets, CronJobs) that must exist
CHILDREN = [
    ("docker", {}, {"main"}),
    ("docker", {"replicas": 2, "read_host_port": 5442}, {"main", "main-read-0", "main-read-1"}),
    ("docker", {"pooler": PoolerArgs(image="bouncer:1", host_port=6432)}, {"main", "main-pooler"}),
    ("docker", {"exporter_image": "exporter:1"}, {"main", "main-metrics"}),
    ("docker", {"backup": True}, {"main", "main-dump", "main-base"}),
    ("kubernetes", {}, {"main"}),
    ("kubernetes", {"replicas": 2}, {"main", "main-read"}),
    ("kubernetes", {"pooler": PoolerArgs(image="bouncer:1")}, {"main", "main-pooler"}),
    ("kubernetes", {"exporter_image": "exporter:1"}, {"main", "main-metrics"}),
    ("kubernetes", {"backup": True}, {"main", "main-dump", "main-base"}),
]


@pytest.mark.parametrize("kind,options,expected", CHILDREN, ids=[f"{c[0]}-{'+'.join(c[1]) or 'plain'}" for c in CHILDREN])
def test_options_bring_their_processes(kind: str, options: dict[str, Any], expected: set[str]) -> None:
    outcome = build(kind, **options)
    assert process_names(outcome, kind) == expected
    component = outcome.mocks.named("main", "pgfleet:postgres:SharedServer")
    for resource in outcome.mocks.registered:
        if resource.name.startswith("main-"):
            assert resource.parent == component.urn, f"{resource.urn} is not parented to the server"


@pytest.mark.parametrize("kind", ["docker", "kubernetes"])
def test_admin_password_is_generated_and_secret(kind: str) -> None:
    outcome = build(kind)
    assert outcome.values["admin_password"].secret
    assert outcome.mocks.named("main-admin-password").inputs["length"] == 32


def test_docker_primary_is_healthy_before_the_provider_connects() -> None:
    outcome = build("docker")
    container = outcome.mocks.named("main", CONTAINER)
    health = container.inputs["healthcheck"]["tests"]
    assert health[:3] == ["CMD", "pg_isready", "-h"] and "127.0.0.1" in health
    assert container.inputs["wait"] is True and container.inputs["waitTimeout"] > 0
    assert container.inputs["restart"] == "unless-stopped"
    assert container.inputs["ports"] == [{"internal": 5432, "external": 5432, "ip": "127.0.0.1"}]
    assert "POSTGRES_PASSWORD_FILE=/run/pgfleet/secrets/POSTGRES_PASSWORD" in container.inputs["envs"]
    assert container.is_secret("uploads"), "POSTGRES_PASSWORD must reach the container as a secret file"
    provider = outcome.mocks.named("main-provider")
    assert container.urn in provider.dependencies
    assert provider.inputs["host"] == "127.0.0.1" and provider.inputs["port"] == "5432"
    assert provider.is_secret("password")


def test_kubernetes_primary_statefulset() -> None:
    outcome = build("kubernetes", protect=True, storage="50Gi")
    statefulset = outcome.mocks.named("main-statefulset")
    spec = statefulset.inputs["spec"]
    assert statefulset.protect, "prod StatefulSets are protected"
    assert spec["serviceName"] == "main" and spec["replicas"] == 1
    claim = spec["volumeClaimTemplates"][0]["spec"]
    assert claim["resources"]["requests"]["storage"] == "50Gi" and claim["accessModes"] == ["ReadWriteOnce"]
    assert spec["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Retain", "whenScaled": "Retain"}
    container = spec["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["exec"]["command"][0] == "pg_isready"
    assert container["livenessProbe"]["exec"]["command"][0] == "pg_isready"
    # probed from the first second; the startup probe gives a slow start its time
    assert "initialDelaySeconds" not in container["readinessProbe"]
    assert container["startupProbe"]["failureThreshold"] * container["startupProbe"]["periodSeconds"] >= 60
    password_env = next(e for e in container["env"] if e["name"] == "POSTGRES_PASSWORD")
    assert password_env["valueFrom"]["secretKeyRef"]["name"] == "main-secret"
    secret = outcome.mocks.named("main-secret")
    assert secret.is_secret("stringData.POSTGRES_PASSWORD")
    assert outcome.mocks.named("main-service").inputs["spec"]["clusterIP"] == "None"
    assert outcome.mocks.named("main-pdb").inputs["spec"]["minAvailable"] == 1
    provider = outcome.mocks.named("main-provider")
    assert statefulset.urn in provider.dependencies


@pytest.mark.parametrize(("access", "host"), [
    ("direct", "main.db.svc.cluster.local"),
    # a Unix socket directory named after the pod alone: the same on every run and runner
    ("forward", str(kube_forward.socket_dir("db", "main-0", 5432))),
])
def test_kubernetes_provider_reaches_the_primary_directly_or_through_a_forward(access: str, host: str) -> None:
    outcome = build("kubernetes", platform_settings={"admin_access": access})
    provider = outcome.mocks.named("main-provider")
    assert (provider.inputs["host"], provider.inputs["port"]) == (host, "5432")  # the SDK sends a string


def test_kubernetes_network_policy_admits_only_clients_and_own_helpers() -> None:
    outcome = build("kubernetes")
    policy = outcome.mocks.named("main-netpol").inputs["spec"]
    assert policy["podSelector"]["matchLabels"]["app.kubernetes.io/instance"] == "main"
    assert policy["policyTypes"] == ["Ingress"]
    (rule,) = policy["ingress"]
    assert rule["ports"] == [{"port": 5432, "protocol": "TCP"}]
    selectors = [peer["podSelector"]["matchLabels"] for peer in rule["from"]]
    assert selectors == [{"pgfleet.io/server": "main"}, {"pgfleet.io/admin": "true"}, {"app": "a"}, {"app": "b"}]


def test_replicas_clone_from_the_primary_with_a_replication_role() -> None:
    outcome = build("docker", replicas=1, read_host_port=5442)
    replicator = outcome.mocks.named("main-replicator").inputs
    assert replicator["replication"] is True and replicator["login"] is True
    replica = outcome.mocks.named("main-read", CONTAINER)
    script = replica.inputs["command"][0]
    assert "pg_basebackup -h main -p 5432" in script and "-X stream --checkpoint=fast" in script
    # the connection at every start, the password only from the environment
    assert '"primary_conninfo=host=main port=5432 user=$REPLICATION_USER"' in script and "password=" not in script
    assert replica.inputs["ports"] == [{"internal": 5432, "external": 5442, "ip": "127.0.0.1"}]
    assert outcome.values["read_host"].value == "main-read"
    assert outcome.mocks.named("main-replicator").urn in replica.dependencies


def test_kubernetes_hands_the_replica_script_to_the_shell_as_docker_does() -> None:
    docker = build("docker", replicas=1, read_host_port=5442).mocks.named("main-read", CONTAINER).inputs
    kubernetes = build("kubernetes", replicas=1).mocks.named("main-read-statefulset").inputs
    (container,) = kubernetes["spec"]["template"]["spec"]["containers"]
    script = docker["command"][0]
    assert '"$(id -u)"' in script and "$PGDATA" in script
    # the kubelet turns `$$` into `$` (and expands `$(NAME)`): every `$` reaches it doubled
    assert container["command"] == ["bash", "-c"] and container["args"][0] == script.replace("$", "$$")


def test_no_replica_means_reads_go_to_the_primary() -> None:
    outcome = build("docker")
    assert outcome.values["read_host"].value == outcome.values["host"].value == "main"


def test_exporter_uses_a_pg_monitor_role_not_the_admin() -> None:
    outcome = build("docker", exporter_image="exporter:1")
    assert outcome.mocks.named("main-monitor").inputs["roles"] == ["pg_monitor"]
    exporter = outcome.mocks.named("main-metrics", CONTAINER)
    env = dict(e.split("=", 1) for e in exporter.inputs["envs"])
    assert env["DATA_SOURCE_USER"] == "pgfleet_monitor" and env["DATA_SOURCE_URI"] == "main:5432/postgres?sslmode=disable"
    assert env["DATA_SOURCE_PASS_FILE"] == "/run/pgfleet/secrets/DATA_SOURCE_PASS" and exporter.is_secret("uploads")


def test_pooler_config_reaches_the_primary_and_stays_secret() -> None:
    outcome = build("docker", pooler=PoolerArgs(image="bouncer:1", host_port=6432, pool_mode="transaction"))
    pooler = outcome.mocks.named("main-pooler", CONTAINER)
    uploads = {u["file"]: u["content"] for u in pooler.inputs["uploads"]}
    assert "* = host=main port=5432" in uploads["/etc/pgbouncer/pgbouncer.ini"]
    assert "pool_mode = transaction" in uploads["/etc/pgbouncer/pgbouncer.ini"]
    assert pooler.is_secret("uploads")


@pytest.mark.parametrize("kind", ["docker", "kubernetes"])
def test_backup_wiring_sets_wal_archiving(kind: str) -> None:
    outcome = build(kind, backup=True)
    if kind == "docker":
        args = outcome.mocks.named("main", CONTAINER).inputs["command"]
    else:
        args = outcome.mocks.named("main-statefulset").inputs["spec"]["template"]["spec"]["containers"][0]["args"]
    settings = dict(a.split("=", 1) for a in args if "=" in a)
    assert settings["archive_mode"] == "on"
    assert settings["archive_timeout"] == "60"
    assert settings["archive_command"] == "pgbackrest --stanza=main archive-push %p"


@pytest.mark.parametrize("kind,protect", [("docker", False), ("kubernetes", True)])
def test_data_volumes_protected_when_the_platform_protects(kind: str, protect: bool) -> None:
    outcome = build(kind, protect=protect)
    if kind == "docker":
        volume = outcome.mocks.named("main-data", VOLUME)
        assert volume.protect is protect and volume.retain_on_delete is protect
    else:
        assert outcome.mocks.named("main-statefulset").protect is protect


def test_from_existing_shares_the_connection_interface() -> None:
    outcome = run(lambda: SharedServer.from_existing("rds", "db.example", "admin", "pw", read_host="db-ro.example"),
                  lambda c: {"host": c.host, "read": c.read_host})
    assert (outcome.values["host"].value, outcome.values["read"].value) == ("db.example", "db-ro.example")
    provider = outcome.mocks.named("rds-provider")
    assert provider.inputs["sslmode"] == "require" and provider.is_secret("password")
