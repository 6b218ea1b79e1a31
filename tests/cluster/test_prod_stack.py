"""The prod stack (`Pulumi.prod.yaml`) for real on the cluster, from a runner outside it that
holds only a kubeconfig: every object read back from the API, isolation at the network and the
database layer, secrets only by reference, a primary that comes back with its rows, and data
that survives `destroy`."""
from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from kubernetes import client
from pulumi import automation as auto

from tests.support import live as checks
from tests.support import tls
from tests.support.cluster import Cluster, wait
from tests.support.engine import throwaway_stack, up_with_policies
from tests.support.live import connect
from tests.support.prod import (
    ClusterLive,
    external_vault,
    for_cluster,
    object_store,
    probe,
    secret_config,
)
from tests.support.program import stack_config

PREFIX = f"prod-{secrets.token_hex(2)}-"
APPS = f"{PREFIX}apps"
SHARED_SERVICES = ("auth", "orders", "catalog")


@pytest.fixture(scope="module")
def prod(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterLive]:
    cluster.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=APPS)))
    try:
        with external_vault() as vault, object_store(cluster, f"{PREFIX}s3") as store:
            config = for_cluster(stack_config("Pulumi.prod.yaml"), PREFIX, vault, store, APPS)
            with throwaway_stack(tmp_path_factory.mktemp("prod"), "prod", config, secret_config(vault, store),
                                 protected=True) as stack:
                yield ClusterLive(stack, up_with_policies(stack), f"{PREFIX}db")
    finally:
        cluster.core.delete_namespace(APPS)
        cluster.core.delete_namespace(f"{PREFIX}db")


def test_every_object_exists_with_the_intended_spec(cluster: Cluster, prod: ClusterLive) -> None:
    ns = prod.namespace
    statefulsets = {s.metadata.name: s for s in cluster.apps.list_namespaced_stateful_set(ns).items}
    assert set(statefulsets) == {"shared", "shared-read", "shared-pooler", "shared-metrics",
                                 "payments", "payments-read", "payments-metrics", "pgfleet-redis"}
    assert statefulsets["shared-read"].spec.replicas == 2 and statefulsets["payments-read"].spec.replicas == 1
    for name, sts in statefulsets.items():
        assert sts.status.ready_replicas == sts.spec.replicas, name
        labels = sts.spec.template.metadata.labels
        assert labels["app.kubernetes.io/part-of"] == "pgfleet" and labels["app.kubernetes.io/instance"] == name
        container = sts.spec.template.spec.containers[0]
        assert container.image.startswith("pgfleet/"), name
        if name in ("shared", "payments", "shared-read", "payments-read"):
            assert container.image == "pgfleet/postgres:15"
            assert container.readiness_probe._exec.command[0] == "pg_isready"
            assert container.liveness_probe._exec.command[0] == "pg_isready"
            assert container.resources.requests == {"cpu": "100m", "memory": "512Mi"}
            assert container.resources.limits == {"memory": "512Mi"}
            assert sts.spec.persistent_volume_claim_retention_policy.when_deleted == "Retain"
            assert sts.metadata.name in {p.metadata.name for p in cluster.networking.list_namespaced_network_policy(ns).items}
    services = {s.metadata.name: s for s in cluster.core.list_namespaced_service(ns).items}
    assert set(services) == set(statefulsets)
    assert all(s.spec.cluster_ip == "None" for s in services.values()), "headless"
    claims = {c.metadata.name: c for c in cluster.core.list_namespaced_persistent_volume_claim(ns).items}
    assert set(claims) == {"data-shared-0", "data-shared-read-0", "data-shared-read-1", "data-payments-0",
                           "data-payments-read-0", "data-pgfleet-redis-0"}
    assert all(c.status.phase == "Bound" and c.spec.storage_class_name == "standard" for c in claims.values())
    assert claims["data-shared-0"].spec.resources.requests["storage"] == "50Gi"
    assert claims["data-payments-0"].spec.resources.requests["storage"] == "100Gi"
    budgets = {b.metadata.name: b.spec.min_available for b in cluster.policy.list_namespaced_pod_disruption_budget(ns).items}
    assert budgets == {"shared": 1, "shared-read": 1, "payments": 1, "payments-read": 1, "pgfleet-redis": 1}
    cronjobs = {c.metadata.name: c.spec.schedule for c in cluster.batch.list_namespaced_cron_job(ns).items}
    assert cronjobs == {"shared-dump": "0 0 * * *", "shared-base": "0 1 * * 0",
                        "payments-dump": "0 0 * * *", "payments-base": "0 1 * * 0"}
    jobs = {j.metadata.name: j.status.succeeded for j in cluster.batch.list_namespaced_job(ns).items}
    assert jobs == {"shared-base-init": 1, "payments-base-init": 1}, "the first full backups ran at deploy"
    delivered = {s.metadata.name: s for s in cluster.core.list_namespaced_secret(APPS).items}
    for service in (*SHARED_SERVICES, "payments"):
        secret = delivered[f"{service}-vault-secret-id"]
        assert set(secret.data) == {"VAULT_SECRET_ID"}, "the role_id is delivered apart"


def test_each_service_reaches_only_its_own_servers_from_its_pods(cluster: Cluster, prod: ClusterLive) -> None:
    ns = prod.namespace
    host = f"{{}}.{ns}.svc.cluster.local"
    targets = {
        "shared": host.format("shared") + ":5432", "shared-read": host.format("shared-read") + ":5432",
        "shared-pooler": host.format("shared-pooler") + ":6432", "payments": host.format("payments") + ":5432",
        "payments-read": host.format("payments-read") + ":5432", "redis": host.format("pgfleet-redis") + ":6379",
    }
    own = {service: {"shared", "shared-read", "shared-pooler"} for service in SHARED_SERVICES}
    own["payments"] = {"payments", "payments-read"}
    own["auth"].add("redis")  # the only service with a Redis user
    results = probe(cluster, APPS, {service: {"app": service} for service in own} | {"unlabelled": {}},
                    list(targets.values()))
    admitted = refused = 0
    for who, open_targets in results.items():
        for name, target in targets.items():
            expected = name in own.get(who, set())
            assert open_targets[target] is expected, f"{who} -> {name}: {'open' if open_targets[target] else 'closed'}"
            admitted += expected
            refused += not expected
    assert (admitted, refused) == (12, 18)  # every target admitted by someone: a refusal is the policy's


def test_no_service_opens_another_services_database(prod: ClusterLive) -> None:
    checks.check_apps_use_what_their_migrators_create(prod)
    assert checks.check_no_service_reaches_another(prod) == 12
    checks.check_app_roles_are_least_privileged(prod)
    checks.check_public_has_no_connect(prod)


def test_each_approle_reads_only_its_own_path(prod: ClusterLive) -> None:
    checks.check_approles_read_only_their_own_path(prod)


def test_no_secret_in_plain_text_in_state_or_pod_specs(cluster: Cluster, prod: ClusterLive) -> None:
    """Every secret the stack holds (decrypted from its state: passwords, secret_ids, the backup
    passphrase, the S3 keys) is in no workload's spec: pods, StatefulSets, CronJobs, Jobs."""
    output_values = {v for v in checks.output_secrets(prod) if len(v) >= 16}
    assert len(output_values) >= 10
    state = prod.exported_state()
    assert "ciphertext" in state  # secrets are there, encrypted
    assert not [v for v in output_values if v in state], "a secret in the state in plain text"
    secret_values = checks.state_secrets(prod) | output_values
    ns = prod.namespace
    cron_jobs = cluster.batch.list_namespaced_cron_job(ns).items
    assert cron_jobs  # the backup jobs, whose env carries the repository's keys by reference
    workloads = [*cluster.core.list_namespaced_pod(ns).items, *cluster.apps.list_namespaced_stateful_set(ns).items,
                 *cron_jobs, *cluster.batch.list_namespaced_job(ns).items]
    specs = json.dumps([cluster.api_client.sanitize_for_serialization(w.spec) for w in workloads])
    leaked = [f"{v[:3]}..." for v in secret_values if v in specs]
    assert not leaked, f"{len(leaked)} secret(s) in a workload spec: {leaked}"
    pods = cluster.core.list_namespaced_pod(ns).items
    for pod in pods:
        for container in pod.spec.containers:
            for env in container.env or []:
                if any(word in env.name for word in ("PASSWORD", "SECRET", "KEY", "PASS")):
                    assert env.value is None and env.value_from.secret_key_ref, f"{pod.metadata.name}: {env.name}"


def test_a_second_preview_shows_no_change(prod: ClusterLive) -> None:
    checks.check_second_preview_is_empty(prod)


#: From a service's pod, with the stack's CA mounted where the URLs name it (tls.ca_path): each
#: connection's outcome as "<check> ok <answer>" or "<check> refused <error>".
TLS_CLIENT = r"""
set -u
check() {
  if out=$(psql "$2" -XtAc "$3" 2>&1); then echo "$1 ok $out"; else echo "$1 refused $(echo "$out" | tr '\n' ' ')"; fi
}
primary_ip=$(getent hosts "$PRIMARY" | awk '{print $1}')
check verified "$URL" "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
check plain "${URL/sslmode=verify-full/sslmode=disable}" "SELECT 1"
check wrong-host "${URL/$PRIMARY/$primary_ip}" "SELECT 1"
check pooled "$POOLED_URL" "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
check pooled-plain "${POOLED_URL/sslmode=verify-full/sslmode=disable}" "SELECT 1"
"""

#: One session held open across a rotation, and the serial each endpoint serves, every 3 s,
#: until the primary, a replica and PgBouncer all serve a new certificate.
ROTATION_CLIENT = r"""
set -u
served() {
  openssl s_client -starttls postgres -connect "$1" -verify_hostname "${1%:*}" -CAfile /etc/pgfleet/ca.crt \
    -verify_return_error </dev/null 2>/dev/null | openssl x509 -noout -serial | cut -d= -f2
}
coproc DB { psql "$URL" -XtAq 2>&1; }
ask() {
  echo "SELECT pg_backend_pid() || ' ' || ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid();" >&"${DB[1]}"
  read -r -t 10 line <&"${DB[0]}" && echo "session $line"
}
endpoints="$PRIMARY:5432 $READ:5432 $POOLER:6432"
declare -A first
for e in $endpoints; do first[$e]=$(served "$e"); echo "serving $e ${first[$e]}"; done
ask
# The read Service picks either replica: all three rotated on three samples in a row, and what
# was printed is what was sampled (a fresh look could land on the replica not yet rotated).
declare -A now
streak=0
for _ in $(seq 1 100); do
  sleep 3
  ask
  rotated=0
  for e in $endpoints; do now[$e]=$(served "$e"); [ -n "${now[$e]}" ] && [ "${now[$e]}" != "${first[$e]}" ] && rotated=$((rotated + 1)); done
  if [ "$rotated" = 3 ]; then streak=$((streak + 1)); else streak=0; fi
  if [ "$streak" = 3 ]; then
    for e in $endpoints; do echo "rotated $e ${now[$e]}"; done
    ask
    exit 0
  fi
done
exit 1
"""


def _client_pod(cluster: Cluster, prod: ClusterLive, name: str, script: str, service: str = "orders") -> str:
    """A pod of `service` (its labels, in its namespace) with the CA mounted at tls.ca_path's
    folder and its URLs in a Secret: started, its name returned."""
    urls = prod.urls[service]
    env = {"URL": urls["url"], "POOLED_URL": urls["pooled_url"],
           "PRIMARY": prod.servers["shared"]["host"], "READ": prod.servers["shared"]["read_host"],
           "POOLER": prod.servers["shared"]["pooler_host"]}
    pod = f"{name}-{secrets.token_hex(2)}"
    cluster.core.create_namespaced_secret(APPS, client.V1Secret(metadata=client.V1ObjectMeta(name=pod), string_data=env))
    ca_namespace, ca_secret = prod.tls["ca_secret"].split("/")
    assert ca_namespace == APPS and prod.tls["ca_path"] == "/etc/pgfleet/ca.crt"
    cluster.start_pod(APPS, pod, ["bash", "-c", script], labels={"app": service},
                      secrets={ca_secret: "/etc/pgfleet"}, env_secret=pod)
    return pod


def test_service_pods_connect_over_verified_tls_only(cluster: Cluster, prod: ClusterLive) -> None:
    pod = _client_pod(cluster, prod, "tls-client", TLS_CLIENT)
    phase, log = cluster.finish_pod(APPS, pod, timeout=120)
    outcomes = dict(line.split(" ", 1) for line in log.splitlines() if line.strip())
    assert phase == "Succeeded", log
    assert outcomes["verified"] == "ok t" and outcomes["pooled"] == "ok t", log  # both of PgBouncer's sides
    assert outcomes["plain"].startswith("refused") and "no encryption" in outcomes["plain"], log
    assert "does not match host name" in outcomes["wrong-host"], log
    assert outcomes["pooled-plain"].startswith("refused") and "SSL required" in outcomes["pooled-plain"], log


def test_replicas_stream_over_tls(prod: ClusterLive) -> None:
    with connect(prod.admin("orders")) as admin:
        streams = admin.execute("SELECT s.ssl FROM pg_stat_replication r JOIN pg_stat_ssl s USING (pid)").fetchall()
    assert streams == [(True,), (True,)]  # shared's two replicas


def test_a_rotation_through_up_reaches_every_pod_without_a_restart(cluster: Cluster, prod: ClusterLive) -> None:
    def pods() -> dict[str, tuple[str, int]]:
        listed = cluster.core.list_namespaced_pod(prod.namespace, label_selector="pgfleet.io/server=shared").items
        return {p.metadata.name: (p.metadata.uid, p.status.container_statuses[0].restart_count)
                for p in listed if p.status.container_statuses}

    before = tls.vault_serial(prod.servers["shared"]["certificate_serial"])
    running = pods()
    pod = _client_pod(cluster, prod, "tls-rotation", ROTATION_CLIENT)
    wait(lambda: "session" in cluster.log(APPS, pod), 60, "the client's session to open", errors=(Exception,))
    prod.stack.set_config("pgfleet:tls", auto.ConfigValue(value=json.dumps({"rotation": f"test-{time.time_ns()}"})))
    after = tls.vault_serial(up_with_policies(prod.stack).outputs["servers"].value["shared"]["certificate_serial"])
    assert after != before
    # the kubelet rewrites a changed Secret's files within its sync period (a minute or so)
    phase, log = cluster.finish_pod(APPS, pod, timeout=300)
    assert phase == "Succeeded", log
    served = [int(line.split()[2], 16) for line in log.splitlines() if line.startswith("serving")]
    rotated = [int(line.split()[2], 16) for line in log.splitlines() if line.startswith("rotated")]
    sessions = {line.split(" ", 1)[1] for line in log.splitlines() if line.startswith("session")}
    assert served == [before] * 3 and rotated == [after] * 3, log
    assert len(sessions) == 1 and next(iter(sessions)).endswith(" true"), f"one TLS session throughout: {sessions}"
    assert pods() == running, "no pod was restarted or replaced"
    checks.check_second_preview_is_empty(prod)  # in the same period, with the same token: nothing is due


def test_a_deleted_primary_comes_back_with_its_rows(cluster: Cluster, prod: ClusterLive) -> None:
    with connect(prod.url("orders", "migration_url")) as migrator:
        migrator.execute("CREATE TABLE IF NOT EXISTS kept (label text)")
        migrator.execute("INSERT INTO kept VALUES ('before the pod went')")
    pod = cluster.core.read_namespaced_pod("shared-0", prod.namespace)
    cluster.core.delete_namespaced_pod("shared-0", prod.namespace)
    wait(lambda: (p := cluster.core.read_namespaced_pod("shared-0", prod.namespace)).metadata.uid != pod.metadata.uid
         and any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or []),
         180, "shared-0 to come back")
    rows = wait(lambda: _rows(prod.url("orders")), 60, "the app URL to work again",
                errors=(psycopg.OperationalError,))
    assert ("before the pod went",) in rows


def _rows(url: str) -> list[tuple[Any, ...]]:
    with connect(url) as app:
        return app.execute("SELECT label FROM kept").fetchall()


def test_data_survives_destroy(cluster: Cluster, prod: ClusterLive) -> None:
    stack = prod.stack
    with pytest.raises(auto.CommandError, match="protected"):
        stack.destroy(run_program=True, on_output=print)
    # Protection lifted as the README tells an operator: protect false, up, destroy.
    stack.set_config("pgfleet:protect", auto.ConfigValue("false"))
    stack.up(on_output=print)
    stack.destroy(run_program=True, on_output=print)
    assert not cluster.apps.list_namespaced_stateful_set(prod.namespace).items
    claims = {c.metadata.name for c in cluster.core.list_namespaced_persistent_volume_claim(prod.namespace).items}
    assert {"data-shared-0", "data-payments-0"} <= claims, "destroy keeps the data"
    stack.remove_config("pgfleet:protect")
    again = ClusterLive(stack, stack.up(on_output=print), prod.namespace)
    assert ("before the pod went",) in _rows(again.url("orders"))
