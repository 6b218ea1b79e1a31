"""A Kubernetes stack's servers: `pgfleet-backup` runs in a Job made from the server's backup
CronJob (as `kubectl create job --from=cronjob/...` does, with the command replaced), so it has
the repository settings, the keys by reference and the primary's data claim; the primary and
its replicas are StatefulSets scaled to zero and back. The cluster is the one the kubeconfig
names (KUBECONFIG, ~/.kube/config), or the pod's own when run inside one.
"""
from __future__ import annotations

import copy
import os
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from kubernetes import client, config
from kubernetes.client.rest import ApiException
from kubernetes.stream import stream

from . import JobKind, RestoreError, ServerObjects

DATA_PATH = "/var/lib/postgresql/data"
#: Label on the Jobs and pods a restore makes, to tell them from the scheduled ones.
RESTORE_LABEL = "pgfleet.io/restore"
T = TypeVar("T")


def _api() -> client.ApiClient:
    if "KUBERNETES_SERVICE_HOST" in os.environ and not os.environ.get("KUBECONFIG"):
        config.load_incluster_config()
        return client.ApiClient()
    try:
        return config.new_client_from_config()
    except config.ConfigException as error:
        raise RestoreError(f"no cluster to reach: {error} (set KUBECONFIG to the stack's cluster)") from None


def _until(check: Callable[[], T | None], timeout_s: float, what: str, interval: float = 1) -> T:
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise RestoreError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(interval)


def _missing(call: Callable[[], Any]) -> bool:
    try:
        call()
    except ApiException as error:
        if error.status == 404:
            return True
        raise
    return False


class KubernetesServers:
    def __init__(self, servers: Mapping[str, ServerObjects], namespace: str, api: client.ApiClient | None = None) -> None:
        self.servers = servers
        self.namespace = namespace
        api = api or _api()
        self.core = client.CoreV1Api(api)
        self.apps = client.AppsV1Api(api)
        self.batch = client.BatchV1Api(api)
        self._nodes: dict[str, str] = {}
        """Primary StatefulSet -> the node its pod ran on (where its ReadWriteOnce claim is)."""
        self._instances: dict[str, int] = {}

    # -- backup jobs ---------------------------------------------------------------------------

    def _cronjob(self, name: str) -> client.V1CronJob:
        try:
            return self.batch.read_namespaced_cron_job(name, self.namespace)
        except ApiException as error:
            if error.status == 404:
                raise RestoreError(f"no CronJob {self.namespace}/{name}: is the stack deployed with backups enabled?") from None
            raise

    def backup(self, server: ServerObjects, kind: JobKind, args: Sequence[str], timeout_s: float,
               primary_stopped: bool = False) -> str:
        cronjob = self._cronjob(server.job(kind))
        template: client.V1PodTemplateSpec = copy.deepcopy(cronjob.spec.job_template.spec.template)
        template.spec.restart_policy = "Never"
        template.spec.containers[0].command = ["pgfleet-backup", *args]
        template.metadata.labels = {**(template.metadata.labels or {}), RESTORE_LABEL: "true"}
        if primary_stopped:
            # The job's affinity is to the primary's pod, which is gone: run on its node instead.
            template.spec.affinity = None
            template.spec.node_name = self._nodes.get(server.primary)
        name = f"{cronjob.metadata.name[:40]}-{args[0][:12]}-{secrets.token_hex(3)}"
        job = client.V1Job(
            metadata=client.V1ObjectMeta(name=name, labels=template.metadata.labels),
            # One attempt: a restore step is not retried behind the operator's back.
            spec=client.V1JobSpec(backoff_limit=0, ttl_seconds_after_finished=3600, template=template),
        )
        self.batch.create_namespaced_job(self.namespace, job)
        try:
            status = _until(lambda: self._finished(name), timeout_s, f"job {self.namespace}/{name}")
            output = self._job_log(name)
        except RestoreError as timeout:
            raise RestoreError(f"{timeout}; {self._pending_reason(name)}") from None
        finally:
            self.batch.delete_namespaced_job(name, self.namespace, propagation_policy="Background")
        if status != "Complete":
            raise RestoreError(output.strip() or f"pgfleet-backup {args[0]} failed (job {name})")
        return output

    def _finished(self, job: str) -> str | None:
        status = self.batch.read_namespaced_job_status(job, self.namespace).status
        for condition in status.conditions or []:
            if condition.type in ("Complete", "Failed") and condition.status == "True":
                return condition.type
        return None

    def _job_pods(self, job: str) -> list[client.V1Pod]:
        return self.core.list_namespaced_pod(self.namespace, label_selector=f"job-name={job}").items

    def _job_log(self, job: str) -> str:
        return "".join(self._log(pod.metadata.name) for pod in self._job_pods(job))

    def _pending_reason(self, job: str) -> str:
        reasons = [f"pod {p.metadata.name} {p.status.phase}: " + "; ".join(
            f"{c.reason}: {c.message}" for c in p.status.conditions or [] if c.status != "True")
            for p in self._job_pods(job)]
        return "; ".join(reasons) or "no pod was created"

    def _log(self, pod: str, previous: bool = False) -> str:
        try:
            response = self.core.read_namespaced_pod_log(pod, self.namespace, previous=previous, tail_lines=200,
                                                         _preload_content=False)
        except ApiException:
            return ""
        return response.data.decode(errors="replace")

    def databases(self, server: ServerObjects) -> list[str]:
        container = self._cronjob(server.job("dump")).spec.job_template.spec.template.spec.containers[0]
        return next((e.value or "" for e in container.env or [] if e.name == "PGFLEET_DATABASES"), "").split()

    # -- the primary ---------------------------------------------------------------------------

    def _scale(self, statefulset: str, replicas: int) -> None:
        self.apps.patch_namespaced_stateful_set_scale(statefulset, self.namespace, {"spec": {"replicas": replicas}})

    def _pods_gone(self, statefulset: str, count: int, timeout_s: float = 300) -> None:
        for ordinal in range(count):
            pod = f"{statefulset}-{ordinal}"
            _until(lambda pod=pod: _missing(lambda: self.core.read_namespaced_pod(pod, self.namespace)),
                   timeout_s, f"pod {self.namespace}/{pod} to stop")

    def _statefulset(self, name: str) -> client.V1StatefulSet | None:
        try:
            return self.apps.read_namespaced_stateful_set(name, self.namespace)
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    def stop_primary(self, server: ServerObjects) -> None:
        statefulset = self._statefulset(server.primary)
        if statefulset is None:
            raise RestoreError(f"no StatefulSet {self.namespace}/{server.primary}")
        try:
            node = self.core.read_namespaced_pod(f"{server.primary}-0", self.namespace).spec.node_name
        except ApiException:
            node = None  # the pod is lost: the scheduler places the job where the claim can be mounted
        if node:
            self._nodes[server.primary] = node
        self._instances[server.primary] = statefulset.spec.replicas or 1
        self._scale(server.primary, 0)
        self._pods_gone(server.primary, self._instances[server.primary])

    def start_primary(self, server: ServerObjects) -> None:
        self._scale(server.primary, self._instances.get(server.primary, 1))

    def wait_promoted(self, server: ServerObjects, timeout_s: float) -> None:
        pod = f"{server.primary}-0"

        def promoted() -> bool:
            try:
                state = self.core.read_namespaced_pod(pod, self.namespace).status
            except ApiException:
                return False
            for container in state.container_statuses or []:
                if container.restart_count > 0 or (container.state and container.state.terminated):
                    log = self._log(pod, previous=container.restart_count > 0)
                    raise RestoreError(f"{pod} stopped during recovery:\n{log.strip()[-4000:]}")
            # ready: its Service resolves to it, so clients (and the next Job) reach it
            statuses = state.container_statuses or []
            if not statuses or not all(container.ready for container in statuses):
                return False
            return self._exec(pod, "SELECT pg_is_in_recovery()") == "f"

        _until(promoted, timeout_s, f"{pod} to finish recovery and take writes")

    def _exec(self, pod: str, sql: str) -> str | None:
        """A query as the server's admin over its Unix socket in the pod; None when it fails."""
        command = ["sh", "-c", 'psql -X -qtA -h /var/run/postgresql -U "$POSTGRES_USER" -d postgres -c "$0"', sql]
        try:
            ws = stream(self.core.connect_get_namespaced_pod_exec, pod, self.namespace, command=command,
                        stdout=True, stderr=True, stdin=False, tty=False, _preload_content=False)
            ws.run_forever(timeout=30)
            code, output = ws.returncode, ws.read_stdout()
            ws.close()
        except (ApiException, OSError):
            return None
        return output.strip() if code == 0 else None

    def wait_ready(self, server: ServerObjects, timeout_s: float) -> None:
        self._wait_ready(server.primary, timeout_s)

    def _wait_ready(self, statefulset: str, timeout_s: float) -> None:
        def ready() -> bool:
            current = self._statefulset(statefulset)
            return current is not None and (current.status.ready_replicas or 0) >= (current.spec.replicas or 0)

        _until(ready, timeout_s, f"StatefulSet {self.namespace}/{statefulset} to be ready")

    # -- replicas ------------------------------------------------------------------------------

    def stop_replicas(self, server: ServerObjects) -> None:
        for name in server.replicas:
            statefulset = self._statefulset(name)
            if statefulset is None:
                continue
            self._instances[name] = statefulset.spec.replicas or 0
            self._scale(name, 0)
            self._pods_gone(name, self._instances[name])

    def start_replicas(self, server: ServerObjects, reclone: bool, timeout_s: float) -> None:
        for name in server.replicas:
            statefulset = self._statefulset(name)
            if statefulset is None or name not in self._instances:
                continue
            count = self._instances[name]
            if reclone:
                image = statefulset.spec.template.spec.containers[0].image
                for ordinal in range(count):
                    self._empty_claim(f"data-{name}-{ordinal}", image, statefulset.metadata.labels or {}, timeout_s)
            self._scale(name, count)
            self._wait_ready(name, timeout_s)

    def _empty_claim(self, claim: str, image: str, labels: Mapping[str, str], timeout_s: float) -> None:
        """Remove the data directory in a replica's claim, so the replica clones its primary."""
        if _missing(lambda: self.core.read_namespaced_persistent_volume_claim(claim, self.namespace)):
            return
        name = f"{claim[:45]}-reclone-{secrets.token_hex(3)}"
        self.core.create_namespaced_pod(self.namespace, client.V1Pod(
            metadata=client.V1ObjectMeta(name=name, labels={**labels, RESTORE_LABEL: "true"}),
            spec=client.V1PodSpec(
                restart_policy="Never",
                containers=[client.V1Container(name="empty", image=image, command=["rm", "-rf", f"{DATA_PATH}/pgdata"],
                                               volume_mounts=[client.V1VolumeMount(name="data", mount_path=DATA_PATH)])],
                volumes=[client.V1Volume(name="data", persistent_volume_claim=client.V1PersistentVolumeClaimVolumeSource(
                    claim_name=claim))],
            ),
        ))
        try:
            phase = _until(lambda: (p := self.core.read_namespaced_pod(name, self.namespace).status.phase)
                           in ("Succeeded", "Failed") and p, timeout_s, f"pod {name}")
            if phase != "Succeeded":
                raise RestoreError(f"could not empty {claim} for re-cloning: {self._log(name)}")
        finally:
            self.core.delete_namespaced_pod(name, self.namespace, grace_period_seconds=0)
