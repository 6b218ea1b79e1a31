"""The dev stack (Docker) and the prod stack (Kubernetes) from their shipped configs."""
from __future__ import annotations

from pathlib import Path

import pytest

from pgfleet.stacks import outputs
from tests.support.program import TEST_SECRETS, Run, exports, run_stack, stack_config

SERVICES = ["auth", "orders", "catalog", "payments"]


@pytest.fixture(scope="module")
def dev() -> Run:
    return run_stack(stack_config("Pulumi.dev.yaml"), collect=lambda _: exports())


@pytest.fixture(scope="module")
def prod() -> Run:
    return run_stack(stack_config("Pulumi.prod.yaml"), TEST_SECRETS, collect=lambda _: exports(), stack="prod")


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_exports_per_service(stack: str, request: pytest.FixtureRequest) -> None:
    outcome: Run = request.getfixturevalue(stack)
    services = outcome.values[outputs.SERVICES]
    assert not services.secret, "names, paths and role ids are plain so StackReferences can read them"
    assert sorted(services.value) == sorted(SERVICES)
    for name in SERVICES:
        entry = services.value[name]
        assert entry["vault_secret_path"] == f"services/data/{name}"
        assert entry["vault_role_id"] == f"role-id-{name}-role"
        assert entry["vault_policy"] == f"{name}-read"
    urls = outcome.values[outputs.CONNECTION_URLS]
    assert urls.secret
    for name in SERVICES:
        assert urls.value[name]["url"].startswith("postgresql://")
        assert urls.value[name]["postgresql+asyncpg"].startswith("postgresql+asyncpg://")
        assert urls.value[name]["read+postgresql+psycopg"].startswith("postgresql+psycopg://")
    assert outcome.values[outputs.VAULT_SECRET_IDS].secret
    assert outcome.values[outputs.SERVER_ADMIN_PASSWORDS].secret


def test_dev_read_host_is_the_replica_and_pooler_is_used(dev: Run) -> None:
    services = dev.values[outputs.SERVICES].value
    assert services["auth"]["write_host"] == "shared" and services["auth"]["read_host"] == "shared-read"
    assert services["payments"]["write_host"] == services["payments"]["read_host"] == "payments"
    urls = dev.values[outputs.CONNECTION_URLS].value
    verify = "?sslmode=verify-full&sslrootcert="
    assert urls["orders"]["read_url"].endswith(f"@shared-read:5432/orders_db{verify}/etc/pgfleet/ca.crt")
    assert urls["orders"]["pooled_url"].endswith(f"@shared-pooler:6432/orders_db{verify}/etc/pgfleet/ca.crt")
    assert urls["orders"]["local_url"].endswith(f"@127.0.0.1:5432/orders_db{verify}{Path.home()}/.pgfleet/pgfleet/dev/ca.crt")
    assert urls["auth"]["redis_url"].startswith("redis://auth:")
    assert "redis_url" not in urls["orders"]


def test_dev_runs_everything_as_containers_on_one_network(dev: Run) -> None:
    containers = {c.inputs["name"] for c in dev.mocks.of_type("docker:index/container:Container")}
    assert {"shared", "shared-read", "shared-pooler", "shared-metrics", "payments", "payments-metrics",
            "pgfleet-vault", "pgfleet-redis", "shared-dump", "shared-base", "payments-dump", "payments-base",
            "pgfleet-backup-store", "shared-tls", "payments-tls"} == containers
    network = dev.mocks.named("pgfleet-network").inputs["name"]
    for container in dev.mocks.of_type("docker:index/container:Container"):
        if container.inputs["name"].endswith("-tls"):  # the TLS files' writer needs no network
            assert container.inputs["networkMode"] == "none" and "networksAdvanced" not in container.inputs
            continue
        assert [n["name"] for n in container.inputs["networksAdvanced"]] == [network]
    assert not [r for r in dev.mocks.registered if r.typ.startswith("kubernetes:")]


def test_dev_vault_is_ready_before_it_is_configured(dev: Run) -> None:
    vault_container = dev.mocks.named("pgfleet-vault", "docker:index/container:Container")
    provider = dev.mocks.named("pgfleet-vault", "pulumi:providers:vault")
    assert vault_container.urn in provider.dependencies
    assert provider.is_secret("token")
    assert vault_container.inputs["healthcheck"]["tests"] == ["CMD", "bao", "status"]
    assert dev.values[outputs.VAULT_ROOT_TOKEN].secret
    assert dev.values[outputs.VAULT].value["address"] == "http://127.0.0.1:8200"


def test_dev_service_credentials_go_to_their_own_vault_path(dev: Run) -> None:
    import json

    for name in SERVICES:
        secret = dev.mocks.named(f"{name}-secret", "vault:kv/secretV2:SecretV2")
        assert secret.inputs["name"] == name and secret.is_secret("dataJson")
        data = json.loads(secret.inputs["dataJson"])
        assert data["DB_NAME"] == f"{name}_db" and data["DB_USER"] == f"{name}_user"
        assert data["DATABASE_URL"].startswith(f"postgresql://{name}_user:")
    assert "REDIS_URL" in json.loads(dev.mocks.named("auth-secret", "vault:kv/secretV2:SecretV2").inputs["dataJson"])


def test_dev_protects_nothing_by_default(dev: Run) -> None:
    assert not [r.urn for r in dev.mocks.registered if r.protect]


def test_prod_protects_stateful_resources(prod: Run) -> None:
    protected = {r.name for r in prod.mocks.registered if r.protect}
    statefulsets = {s.name for s in prod.mocks.of_type("kubernetes:apps/v1:StatefulSet")
                    if s.inputs["spec"].get("volumeClaimTemplates")}
    assert statefulsets == {"shared-statefulset", "shared-read-statefulset", "payments-statefulset",
                            "payments-read-statefulset", "pgfleet-redis-statefulset", }
    assert statefulsets <= protected
    assert "pgfleet-namespace" in protected
    for statefulset in prod.mocks.of_type("kubernetes:apps/v1:StatefulSet"):
        if statefulset.inputs["spec"].get("volumeClaimTemplates"):
            assert statefulset.inputs["spec"]["persistentVolumeClaimRetentionPolicy"]["whenDeleted"] == "Retain"


def test_prod_runs_on_kubernetes_only(prod: Run) -> None:
    assert not [r for r in prod.mocks.registered if r.typ.startswith("docker:")]
    kinds = {r.typ for r in prod.mocks.registered if r.typ.startswith("kubernetes:")}
    assert {"kubernetes:apps/v1:StatefulSet", "kubernetes:core/v1:Service", "kubernetes:policy/v1:PodDisruptionBudget",
            "kubernetes:networking.k8s.io/v1:NetworkPolicy", "kubernetes:core/v1:Secret", "kubernetes:batch/v1:CronJob",
            "kubernetes:core/v1:Namespace"} <= kinds
    replicas = prod.mocks.named("shared-read-statefulset").inputs["spec"]["replicas"]
    assert replicas == 2


def test_prod_network_policies_admit_services_from_their_namespace(prod: Run) -> None:
    policy = prod.mocks.named("payments-netpol").inputs["spec"]
    peers = policy["ingress"][0]["from"]
    service_peer = peers[-1]
    assert service_peer["podSelector"]["matchLabels"] == {"app": "payments"}
    assert service_peer["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "apps"}
    shared_peers = [p["podSelector"]["matchLabels"] for p in prod.mocks.named("shared-netpol").inputs["spec"]["ingress"][0]["from"]]
    assert {"app": "payments"} not in shared_peers and {"app": "auth"} in shared_peers


def test_prod_backups_are_cronjobs_to_s3(prod: Run) -> None:
    jobs = {j.inputs["metadata"]["name"]: j.inputs["spec"] for j in prod.mocks.of_type("kubernetes:batch/v1:CronJob")}
    assert set(jobs) == {"shared-dump", "shared-base", "payments-dump", "payments-base"}
    assert jobs["shared-dump"]["schedule"] == "0 0 * * *" and jobs["shared-base"]["schedule"] == "0 1 * * 0"
    assert jobs["shared-dump"]["concurrencyPolicy"] == "Forbid"
    env = {e["name"]: e for e in jobs["shared-dump"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["PGBACKREST_REPO1_TYPE"]["value"] == "s3"
    assert "secretKeyRef" in env["PGBACKREST_REPO1_S3_KEY_SECRET"]["valueFrom"]
    assert not prod.mocks.of_type("kubernetes:core/v1:PersistentVolumeClaim")


def test_dev_base_backups_share_the_servers_volumes_and_gate_the_deployment(dev: Run) -> None:
    base = dev.mocks.named("shared-base", "docker:index/container:Container").inputs
    mounts = {v["containerPath"]: v["volumeName"] for v in base["volumes"]}
    # the repository is the stack's S3 store; the TLS files verify the server it connects to
    assert mounts == {"/var/lib/postgresql/data": "shared-data", "/etc/pgfleet/tls": "shared-tls"}
    # stanza and first full backup before cron; `pulumi up` waits until that succeeded
    assert base["command"][:2] == ["sh", "-c"] and "pgfleet-backup init" in base["command"][2]
    assert base["wait"] is True and base["healthcheck"]["tests"] == ["CMD", "test", "-f", "/run/pgfleet-job-ready"]
    crontab = {u["file"]: u["content"] for u in base["uploads"]}["/etc/cron.d/pgfleet"]
    assert crontab.startswith("0 1 * * 0 root . /run/pgfleet-image.env && . /etc/pgfleet/job.env && "
                              "pgfleet-backup base full")
    primary = dev.mocks.named("shared", "docker:index/container:Container")
    assert "archive_command=pgbackrest --stanza=shared archive-push %p" in primary.inputs["command"]
    store = dev.mocks.named("pgfleet-backup-store", "docker:index/container:Container")
    assert store.urn in primary.dependencies  # archiving works from the first WAL segment
    env = dict(e.split("=", 1) for e in primary.inputs["envs"])
    assert (env["PGBACKREST_REPO1_TYPE"], env["PGBACKREST_REPO1_S3_ENDPOINT"]) == ("s3", "pgfleet-backup-store")
    assert env["PGBACKREST_REPO1_S3_BUCKET"] == "pgfleet-backups"


def test_prod_base_backups_run_beside_the_primary(prod: Run) -> None:
    cron = prod.mocks.named("shared-base-cronjob").inputs["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    claims = [v["persistentVolumeClaim"]["claimName"] for v in cron["volumes"] if "persistentVolumeClaim" in v]
    assert claims == ["data-shared-0"]  # the primary's own PVC; the repository is S3
    term = cron["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    assert term["labelSelector"]["matchLabels"]["app.kubernetes.io/instance"] == "shared"
    init = prod.mocks.named("shared-base-init", "kubernetes:batch/v1:Job").inputs["spec"]["template"]["spec"]
    assert init["containers"][0]["command"] == ["pgfleet-backup", "init"] and init["affinity"] == cron["affinity"]
    dump = prod.mocks.named("shared-dump-cronjob").inputs["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert "affinity" not in dump and [v["secret"]["secretName"] for v in dump["volumes"]] == ["shared-tls"]


def test_prod_jobs_sharing_a_repository_volume_run_beside_the_primary() -> None:
    config = stack_config("Pulumi.prod.yaml")
    config["backup"]["target"] = {"kind": "filesystem", "size": "50Gi"}
    config["services"] = [s for s in config["services"] if s.get("topology") != "dedicated"]  # one server
    run = run_stack(config, TEST_SECRETS, stack="prod")
    for job in ("shared-dump", "shared-base"):
        spec = run.mocks.named(f"{job}-cronjob").inputs["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        claims = [v["persistentVolumeClaim"]["claimName"] for v in spec["volumes"] if "persistentVolumeClaim" in v]
        assert claims[-1] == "pgfleet-backup-repository"
        term = spec["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0]
        assert term["labelSelector"]["matchLabels"]["app.kubernetes.io/instance"] == "shared", job


def test_prod_uses_the_external_vault_and_delivers_secret_ids_as_secrets(prod: Run) -> None:
    provider = prod.mocks.named("pgfleet-vault", "pulumi:providers:vault")
    assert provider.inputs["address"] == "https://vault.vault.svc.cluster.local:8200"
    assert provider.is_secret("token")
    for name in SERVICES:
        secret = prod.mocks.named(f"{name}-vault-secret-id", "kubernetes:core/v1:Secret")
        assert secret.is_secret("stringData.VAULT_SECRET_ID")
    refs = {s: e["vault_secret_id_ref"] for s, e in prod.values[outputs.SERVICES].value.items()}
    assert refs["auth"] == "apps/auth-vault-secret-id"  # the services' namespace, where their pods are


def test_docker_prefix_renames_containers_and_volumes_but_not_hosts() -> None:
    config = stack_config("Pulumi.dev.yaml") | {"docker": {"network": "it-net", "prefix": "it-"}}
    outcome = run_stack(config, collect=lambda _: exports())
    names = {c.inputs["name"] for c in outcome.mocks.of_type("docker:index/container:Container")}
    assert names and all(n.startswith("it-") for n in names)
    volumes = {v.inputs["name"] for v in outcome.mocks.of_type("docker:index/volume:Volume")}
    assert volumes and all(v.startswith("it-") for v in volumes)
    shared = outcome.mocks.named("shared", "docker:index/container:Container")
    assert shared.inputs["networksAdvanced"][0]["aliases"] == ["shared"]
    assert outcome.values[outputs.SERVICES].value["auth"]["write_host"] == "shared"


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_what_lives_in_a_kept_volume_is_kept_when_the_stack_forgets_it(stack: str, request: pytest.FixtureRequest) -> None:
    # On Kubernetes the data claims outlive the stack, so databases and roles are never dropped
    # by a destroy or a service removed from the config; on Docker the volume goes with them.
    outcome: Run = request.getfixturevalue(stack)
    in_server = [r for r in outcome.mocks.registered if r.typ.startswith("postgresql:")]
    assert {r.typ for r in in_server} >= {"postgresql:index/role:Role", "postgresql:index/database:Database"}
    assert {r.retain_on_delete for r in in_server} == {stack == "prod"}
    if stack == "prod":  # and the namespace that holds the claims
        assert outcome.mocks.named("pgfleet-namespace").retain_on_delete
