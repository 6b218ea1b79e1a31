"""A live Kubernetes cluster for the cluster tier: the one KUBECONFIG names (scripts/test.sh
points it at setup/cluster.sh's), reached with the official Python client."""
from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from kubernetes import client, config
from kubernetes.client.rest import ApiException
from kubernetes.stream import stream

#: Images the cluster runs without a registry (setup/cluster.sh loads them into containerd).
POSTGRES_IMAGE = os.environ.get("PGFLEET_POSTGRES_IMAGE", "pgfleet/postgres:15")

T = TypeVar("T")


def kubeconfig() -> str:
    path = os.environ.get("KUBECONFIG", "")
    if not path or not Path(path).is_file():
        raise RuntimeError(
            "the cluster tier needs a cluster: `bash setup/cluster.sh up` and "
            "`export KUBECONFIG=/var/cache/pgfleet/cluster/admin.kubeconfig`, or KUBECONFIG of your own"
        )
    return path


class Cluster:
    """Typed API clients for one kubeconfig."""

    def __init__(self, path: str) -> None:
        self.api_client = config.new_client_from_config(config_file=path)
        self.core = client.CoreV1Api(self.api_client)
        self.apps = client.AppsV1Api(self.api_client)
        self.batch = client.BatchV1Api(self.api_client)
        self.networking = client.NetworkingV1Api(self.api_client)
        self.policy = client.PolicyV1Api(self.api_client)
        self.storage = client.StorageV1Api(self.api_client)

    @contextmanager
    def namespace(self, prefix: str) -> Iterator[str]:
        """A fresh namespace, deleted (with everything in it) afterwards."""
        name = f"{prefix}-{secrets.token_hex(3)}"
        self.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
        try:
            yield name
        finally:
            self.core.delete_namespace(name, propagation_policy="Foreground", grace_period_seconds=0)

    def exec(self, namespace: str, pod: str, command: list[str], timeout: float = 120) -> tuple[int, str]:
        """Run a command in a pod's first container: (exit code, stdout and stderr)."""
        ws = stream(self.core.connect_get_namespaced_pod_exec, pod, namespace, command=command,
                    stdout=True, stderr=True, stdin=False, tty=False, _preload_content=False)
        ws.run_forever(timeout=timeout)
        code = ws.returncode  # before read_all(), which empties every channel, the exit status's too
        output = ws.read_all()
        ws.close()
        return code, output

    def pod_phase(self, namespace: str, name: str) -> str:
        return self.core.read_namespaced_pod(name, namespace).status.phase

    def run_pod(self, namespace: str, name: str, command: list[str], labels: dict[str, str] | None = None,
                timeout: float = 120, claims: dict[str, str] | None = None) -> tuple[str, str]:
        """A one-shot pod of the postgres image, with `claims` (PVC name -> path) mounted:
        (final phase, its log)."""
        self.start_pod(namespace, name, command, labels, claims)
        return self.finish_pod(namespace, name, timeout)

    def start_pod(self, namespace: str, name: str, command: list[str], labels: dict[str, str] | None = None,
                  claims: dict[str, str] | None = None, secrets: dict[str, str] | None = None,
                  env_secret: str | None = None) -> None:
        """A one-shot pod of the postgres image, started: `claims` (PVC name -> path) and
        `secrets` (Secret name -> directory) mounted, every key of `env_secret` in its env."""
        claims, secrets = claims or {}, secrets or {}
        volumes = [client.V1Volume(name=f"claim-{i}", persistent_volume_claim=(
            client.V1PersistentVolumeClaimVolumeSource(claim_name=claim))) for i, claim in enumerate(claims)]
        volumes += [client.V1Volume(name=f"secret-{i}", secret=client.V1SecretVolumeSource(secret_name=secret))
                    for i, secret in enumerate(secrets)]
        mounts = [client.V1VolumeMount(name=f"claim-{i}", mount_path=path) for i, path in enumerate(claims.values())]
        mounts += [client.V1VolumeMount(name=f"secret-{i}", mount_path=path, read_only=True)
                   for i, path in enumerate(secrets.values())]
        env_from = [client.V1EnvFromSource(secret_ref=client.V1SecretEnvSource(name=env_secret))] if env_secret else None
        self.core.create_namespaced_pod(namespace, client.V1Pod(
            metadata=client.V1ObjectMeta(name=name, labels=labels or {}),
            spec=client.V1PodSpec(
                restart_policy="Never",
                containers=[client.V1Container(name="main", image=POSTGRES_IMAGE, image_pull_policy="Never",
                                               command=command, volume_mounts=mounts, env_from=env_from)],
                volumes=volumes,
            ),
        ))

    def finish_pod(self, namespace: str, name: str, timeout: float = 120) -> tuple[str, str]:
        """Wait for a pod to end: (final phase, its log)."""
        phase = wait(lambda: (p := self.pod_phase(namespace, name)) in ("Succeeded", "Failed") and p,
                     timeout, f"pod {namespace}/{name} to finish")
        return phase, self.log(namespace, name)

    def fire_cronjob(self, namespace: str, name: str, timeout: float = 600) -> str:
        """A Job from a CronJob's template, as `kubectl create job --from=cronjob/NAME` makes it;
        waits for it to succeed and returns its pods' logs (AssertionError if it fails)."""
        cronjob = self.batch.read_namespaced_cron_job(name, namespace)
        job = f"{name[:45]}-now-{secrets.token_hex(3)}"
        self.batch.create_namespaced_job(namespace, client.V1Job(
            metadata=client.V1ObjectMeta(name=job, annotations={"cronjob.kubernetes.io/instantiate": "manual"},
                                         labels=cronjob.spec.job_template.spec.template.metadata.labels),
            spec=cronjob.spec.job_template.spec,
        ))
        status = wait(lambda: (s := self.batch.read_namespaced_job_status(job, namespace).status)
                      and (s.succeeded or s.failed and s.failed > (cronjob.spec.job_template.spec.backoff_limit or 0))
                      and s, timeout, f"job {namespace}/{job}")
        pods = self.core.list_namespaced_pod(namespace, label_selector=f"job-name={job}").items
        logs = "".join(self.log(namespace, p.metadata.name) for p in pods)
        self.batch.delete_namespaced_job(job, namespace, propagation_policy="Background")
        assert status.succeeded, f"job {job} failed:\n{logs}"
        return logs

    def log(self, namespace: str, pod: str) -> str:
        # the raw response: the client's own decoding of a log returns the repr of its bytes
        return self.core.read_namespaced_pod_log(pod, namespace, _preload_content=False).data.decode()


def wait(check: Callable[[], T], timeout: float, what: str, interval: float = 0.5,
         errors: tuple[type[Exception], ...] = (ApiException,)) -> T:
    """Poll until check() is truthy (one of `errors` counts as not yet); return its value."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            value = check()
        except errors as error:
            last = error
            value = None
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last})")


if __name__ == "__main__":  # `python -m tests.support.cluster`: exit 0 when KUBECONFIG's cluster answers
    Cluster(kubeconfig()).core.list_namespace(limit=1, _request_timeout=5)
