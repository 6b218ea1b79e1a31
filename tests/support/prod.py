"""What a prod stack needs around it on the test cluster: an external Vault server (prod's
`vault.mode: external`), an S3 store the pods reach, and the stack config fitted to one node."""
from __future__ import annotations

import copy
import os
import secrets
import shutil
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import hvac
import requests
from kubernetes import client
from pulumi import automation as auto

from pgfleet.components.platform import kube_forward

from .cluster import Cluster, wait
from .live import Live

STORE_IMAGE = "pgfleet/versitygw:1.8"
STORE_PORT = 7070


@dataclass(frozen=True)
class ExternalVault:
    address: str
    token: str


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def external_vault() -> Iterator[ExternalVault]:
    """A Vault server of its own on loopback (the toolchain's, in dev mode: in memory), as an
    operator's existing Vault would be: the stack gets its address and a token, nothing else."""
    binary = shutil.which("vault") or shutil.which("bao")
    assert binary, "no Vault server binary: run setup/toolchain.sh"
    port, token = _free_port(), secrets.token_urlsafe(24)
    process = subprocess.Popen(
        [binary, "server", "-dev", f"-dev-listen-address=127.0.0.1:{port}", f"-dev-root-token-id={token}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    address = f"http://127.0.0.1:{port}"
    try:
        wait(lambda: hvac.Client(url=address, token=token).sys.is_initialized(), 30, "the Vault server",
             errors=(requests.ConnectionError,))
        yield ExternalVault(address, token)
    finally:
        process.terminate()
        process.wait(timeout=30)


@dataclass(frozen=True)
class ObjectStore:
    endpoint: str
    bucket: str
    access_key: str
    secret_key: str


@contextmanager
def object_store(cluster: Cluster, namespace: str) -> Iterator[ObjectStore]:
    """An S3 store in the cluster (the project's versitygw image), where an operator's S3 would
    be: the pods reach it by its Service name, over HTTPS with a certificate of its own."""
    host = f"s3.{namespace}.svc.cluster.local"
    store = ObjectStore(f"https://{host}:{STORE_PORT}", "pgfleet-backups", "pgfleet", secrets.token_urlsafe(24))
    labels = {"app": "s3"}
    env = {"ROOT_ACCESS_KEY": store.access_key, "ROOT_SECRET_KEY": store.secret_key, "S3_BUCKET": store.bucket,
           "TLS_HOSTNAMES": f"s3,s3.{namespace},s3.{namespace}.svc,{host}"}
    cluster.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    try:
        cluster.core.create_namespaced_service(namespace, client.V1Service(
            metadata=client.V1ObjectMeta(name="s3"),
            spec=client.V1ServiceSpec(selector=labels, ports=[client.V1ServicePort(port=STORE_PORT)])))
        cluster.apps.create_namespaced_stateful_set(namespace, client.V1StatefulSet(
            metadata=client.V1ObjectMeta(name="s3"),
            spec=client.V1StatefulSetSpec(
                service_name="s3", replicas=1, selector=client.V1LabelSelector(match_labels=labels),
                template=client.V1PodTemplateSpec(
                    metadata=client.V1ObjectMeta(labels=labels),
                    spec=client.V1PodSpec(containers=[client.V1Container(
                        name="s3", image=STORE_IMAGE, image_pull_policy="Never",
                        env=[client.V1EnvVar(name=k, value=v) for k, v in env.items()],
                        readiness_probe=client.V1Probe(
                            _exec=client.V1ExecAction(command=["versitygw-entrypoint.sh", "healthcheck"]),
                            period_seconds=2),
                    )]),
                ),
            )))
        wait(lambda: cluster.apps.read_namespaced_stateful_set("s3", namespace).status.ready_replicas == 1,
             120, "the S3 store")
        yield store
    finally:
        cluster.core.delete_namespace(namespace)


def for_cluster(config: dict[str, Any], prefix: str, vault: ExternalVault, store: ObjectStore,
                services_namespace: str | None = None) -> dict[str, Any]:
    """A shipped Kubernetes config on the test cluster: its own namespaces, the test's Vault and
    S3 store, and CPU and memory requests that fit one 2-core node (everything else as shipped).
    The services' namespace is replaced when given (a config without one keeps them beside the
    servers)."""
    config = copy.deepcopy(config)
    kube = config.setdefault("kubernetes", {})
    kube["namespace"] = f"{prefix}db"
    if services_namespace:
        kube["services_namespace"] = services_namespace
    config["vault"] = {**config.get("vault", {}), "mode": "external", "address": vault.address}
    target = config.setdefault("backup", {}).setdefault("target", {})
    target.update(kind="s3", endpoint=store.endpoint, bucket=store.bucket, region="us-east-1",
                  verify_tls=False)  # the store's certificate is its own, self-signed

    def fit(settings: dict[str, Any]) -> None:
        settings["cpu"], settings["memory"] = "100m", "512Mi"

    for server in config.get("servers", []):
        fit(server)
    for service in config["services"]:
        if service.get("topology") == "dedicated":
            fit(service.setdefault("dedicated", {}))
    return config


def secret_config(vault: ExternalVault, store: ObjectStore) -> dict[str, str]:
    return {"vaultToken": vault.token, "backupS3AccessKey": store.access_key, "backupS3SecretKey": store.secret_key,
            "backupPassphrase": secrets.token_urlsafe(36)}


class ClusterLive(Live):
    """A live Kubernetes stack: each server reached the way the program reaches it, through a
    port-forward of the API server to its pod (the read host: its first replica)."""

    def __init__(self, stack: auto.Stack, result: auto.UpResult, namespace: str) -> None:
        super().__init__(stack, result, prefix="")
        self.namespace = namespace

    def pod(self, server: str, read: bool = False) -> str:
        info = self.servers[server]
        return f"{(info['read_host'] if read else info['host']).split('.')[0]}-0"

    def dial(self, server: str, read: bool = False) -> tuple[str, str]:
        directory = kube_forward.ensure(self.namespace, self.pod(server, read), 5432, watch=os.getpid())
        return "", f"host={directory}&port=5432"


def probe(cluster: Cluster, namespace: str, who: dict[str, dict[str, str]],
          targets: list[str]) -> dict[str, dict[str, bool]]:
    """From one pod per entry of `who` (name -> pod labels), a TCP connect to each `host:port`
    target, all at once: {name: {target: connected}}. A policy drops what it refuses, so a
    refusal is a timeout (4 s)."""
    script = ('for t in "$@"; do ( if timeout 4 bash -c "</dev/tcp/${t%:*}/${t##*:}" 2>/dev/null; '
              'then echo "open $t"; else echo "closed $t"; fi ) & done; wait')
    names = {name: f"probe-{name}-{secrets.token_hex(2)}" for name in who}
    for name, labels in who.items():
        cluster.core.create_namespaced_pod(namespace, client.V1Pod(
            metadata=client.V1ObjectMeta(name=names[name], labels=labels),
            spec=client.V1PodSpec(restart_policy="Never", containers=[client.V1Container(
                name="probe", image="pgfleet/postgres:15", image_pull_policy="Never",
                command=["bash", "-c", script, "probe", *targets])]),
        ))
    results = {}
    for name, pod in names.items():
        wait(lambda pod=pod: cluster.pod_phase(namespace, pod) in ("Succeeded", "Failed"), 120, f"pod {pod}")
        lines = [line.split(" ", 1) for line in cluster.log(namespace, pod).splitlines() if line.strip()]
        results[name] = {target: state == "open" for state, target in lines}
        assert set(results[name]) == set(targets), cluster.log(namespace, pod)
        cluster.core.delete_namespaced_pod(pod, namespace, grace_period_seconds=0)
    return results
