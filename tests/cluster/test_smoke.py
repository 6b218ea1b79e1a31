"""The cluster does what the prod stack relies on: StatefulSets on provisioned volumes keep their
data, headless Services resolve, NetworkPolicies are enforced both ways, CronJobs fire."""
from __future__ import annotations

from collections.abc import Iterator

import pytest
from kubernetes import client

from tests.support.cluster import POSTGRES_IMAGE, Cluster, wait

PASSWORD = "smoke-test-only"  # a throwaway server inside a namespace deleted after the test


def postgres_statefulset(name: str) -> client.V1StatefulSet:
    labels = {"app": name}
    container = client.V1Container(
        name="postgres",
        image=POSTGRES_IMAGE,
        image_pull_policy="Never",  # no registry: the image must come from the node
        env=[client.V1EnvVar(name="POSTGRES_PASSWORD", value=PASSWORD)],
        ports=[client.V1ContainerPort(name="postgres", container_port=5432)],
        readiness_probe=client.V1Probe(
            _exec=client.V1ExecAction(command=["pg_isready", "-q", "-h", "127.0.0.1"]),
            period_seconds=2, failure_threshold=60),
        volume_mounts=[client.V1VolumeMount(name="data", mount_path="/var/lib/postgresql/data")],
    )
    return client.V1StatefulSet(
        metadata=client.V1ObjectMeta(name=name, labels=labels),
        spec=client.V1StatefulSetSpec(
            service_name=name,
            replicas=1,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(containers=[container], termination_grace_period_seconds=10),
            ),
            volume_claim_templates=[client.V1PersistentVolumeClaim(
                metadata=client.V1ObjectMeta(name="data"),
                # no storage class named: the cluster's default must provision it
                spec=client.V1PersistentVolumeClaimSpec(
                    access_modes=["ReadWriteOnce"],
                    resources=client.V1VolumeResourceRequirements(requests={"storage": "1Gi"})),
            )],
        ),
    )


def headless_service(name: str) -> client.V1Service:
    return client.V1Service(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1ServiceSpec(cluster_ip="None", selector={"app": name},
                                  ports=[client.V1ServicePort(name="postgres", port=5432)]),
    )


@pytest.fixture(scope="module")
def server(cluster: Cluster) -> Iterator[tuple[str, str]]:
    """A one-pod PostgreSQL StatefulSet behind a headless Service: (namespace, name)."""
    with cluster.namespace("smoke") as ns:
        cluster.core.create_namespaced_service(ns, headless_service("pg"))
        cluster.apps.create_namespaced_stateful_set(ns, postgres_statefulset("pg"))
        wait(lambda: cluster.apps.read_namespaced_stateful_set("pg", ns).status.ready_replicas == 1,
             180, "StatefulSet pg to be ready")
        yield ns, "pg"


def psql(cluster: Cluster, ns: str, pod: str, sql: str) -> str:
    code, out = cluster.exec(ns, pod, ["env", f"PGPASSWORD={PASSWORD}", "psql", "-U", "postgres",
                                       "-h", "127.0.0.1", "-v", "ON_ERROR_STOP=1", "-tAc", sql])
    assert code == 0, out
    return out.strip()


def test_statefulset_keeps_its_rows_when_its_pod_is_deleted(cluster: Cluster, server: tuple[str, str]) -> None:
    ns, name = server
    claim = cluster.core.read_namespaced_persistent_volume_claim(f"data-{name}-0", ns)
    assert claim.status.phase == "Bound"
    assert claim.spec.storage_class_name == "standard"
    psql(cluster, ns, f"{name}-0", "CREATE TABLE kept (n int); INSERT INTO kept SELECT generate_series(1, 3)")
    old_uid = cluster.core.read_namespaced_pod(f"{name}-0", ns).metadata.uid
    cluster.core.delete_namespaced_pod(f"{name}-0", ns)
    wait(lambda: (p := cluster.core.read_namespaced_pod(f"{name}-0", ns)).metadata.uid != old_uid
         and any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or []),
         180, "the StatefulSet's new pod to be ready")
    assert psql(cluster, ns, f"{name}-0", "SELECT sum(n) FROM kept") == "6"


def test_headless_service_names_resolve_from_another_pod(cluster: Cluster, server: tuple[str, str]) -> None:
    ns, name = server
    pod_ip = cluster.core.read_namespaced_pod(f"{name}-0", ns).status.pod_ip
    service = f"{name}.{ns}.svc.cluster.local"
    phase, log = cluster.run_pod(ns, "resolver", ["sh", "-c", f"getent hosts {service} && getent hosts {name}-0.{service}"])
    assert phase == "Succeeded", log
    assert log.split() == [pod_ip, service, pod_ip, f"{name}-0.{service}"]
    phase, log = cluster.run_pod(ns, "resolver-missing", ["getent", "hosts", f"missing.{ns}.svc.cluster.local"])
    assert phase == "Failed", log


def test_network_policy_admits_the_labelled_pod_and_blocks_the_others(
        cluster: Cluster, server: tuple[str, str]) -> None:
    ns, name = server
    probe = ["pg_isready", "-h", f"{name}.{ns}.svc.cluster.local", "-t", "5"]
    # Before any policy the port is open to every pod: a refusal below is the policy's doing.
    assert cluster.run_pod(ns, "before", probe)[0] == "Succeeded"
    policy = client.V1NetworkPolicy(
        metadata=client.V1ObjectMeta(name="only-allowed"),
        spec=client.V1NetworkPolicySpec(
            pod_selector=client.V1LabelSelector(match_labels={"app": name}),
            policy_types=["Ingress"],
            ingress=[client.V1NetworkPolicyIngressRule(
                _from=[client.V1NetworkPolicyPeer(
                    pod_selector=client.V1LabelSelector(match_labels={"role": "allowed"}))],
                ports=[client.V1NetworkPolicyPort(port=5432, protocol="TCP")],
            )],
        ),
    )
    cluster.networking.create_namespaced_network_policy(ns, policy)
    try:
        phase, log = cluster.run_pod(ns, "allowed", probe, labels={"role": "allowed"})
        assert phase == "Succeeded", log
        phase, log = cluster.run_pod(ns, "denied", probe, labels={"role": "other"})
        assert phase == "Failed" and "no response" in log, log
        phase, log = cluster.run_pod(ns, "unlabelled", probe)
        assert phase == "Failed" and "no response" in log, log
    finally:
        cluster.networking.delete_namespaced_network_policy("only-allowed", ns)
    # and the port opens again once the policy is gone
    attempts = iter(range(100))
    wait(lambda: cluster.run_pod(ns, f"after-{next(attempts)}", probe)[0] == "Succeeded", 90,
         "the port to open again")


def test_cronjob_fires_a_job_that_completes(cluster: Cluster) -> None:
    with cluster.namespace("cron") as ns:
        cronjob = client.V1CronJob(
            metadata=client.V1ObjectMeta(name="tick"),
            spec=client.V1CronJobSpec(
                schedule="* * * * *",
                job_template=client.V1JobTemplateSpec(spec=client.V1JobSpec(
                    backoff_limit=0,
                    template=client.V1PodTemplateSpec(spec=client.V1PodSpec(
                        restart_policy="Never",
                        containers=[client.V1Container(name="tick", image=POSTGRES_IMAGE, image_pull_policy="Never",
                                                       command=["sh", "-c", "echo tick from $(hostname)"])],
                    )),
                )),
            ),
        )
        cluster.batch.create_namespaced_cron_job(ns, cronjob)
        jobs = wait(lambda: [j for j in cluster.batch.list_namespaced_job(ns).items if j.status.succeeded],
                    150, "a Job of the CronJob to complete")
        job = jobs[0]
        assert job.metadata.owner_references[0].name == "tick"
        pods = cluster.core.list_namespaced_pod(ns, label_selector=f"job-name={job.metadata.name}").items
        assert "tick from" in cluster.log(ns, pods[0].metadata.name)
        assert wait(lambda: cluster.batch.read_namespaced_cron_job("tick", ns).status.last_successful_time,
                    30, "the CronJob to record its success")
