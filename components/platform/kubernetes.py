"""Kubernetes implementation of the platform seam: StatefulSets behind headless Services."""
from __future__ import annotations

import os
import posixpath
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pulumi
import pulumi_kubernetes as k8s
import yaml

from . import kube_forward
from .base import (
    ADMIN_LABEL,
    FILE_SET_GROUP,
    SERVER_LABEL,
    FileSetRef,
    JobSpec,
    ProcessSpec,
    RunningProcess,
    StorageRef,
    labels,
)

AdminAccess = Literal["auto", "forward", "direct"]


@dataclass(frozen=True)
class Monitoring:
    """A stack's monitoring, as Prometheus and Grafana on a cluster take it."""

    dashboards: Mapping[str, str]
    """File name -> Grafana dashboard JSON."""
    folder: str
    rule_groups: Sequence[Mapping[str, Any]]
    """A rule file's `groups`."""
    scrape_job: Mapping[str, Any]
    """A plain Prometheus's scrape job (kubernetes_sd) for the exporters."""
    relabelling: Sequence[Mapping[str, Any]]
    """The scrape job's target labels, which a PodMonitor repeats."""
    interval: str
    operator: bool


def _camel_keys(rule: Mapping[str, Any]) -> dict[str, Any]:
    """A Prometheus relabel_config as the Operator's RelabelConfig spells it (sourceLabels, ...)."""
    def camel(key: str) -> str:
        head, *rest = key.split("_")
        return head + "".join(word.title() for word in rest)
    return {camel(k): v for k, v in rule.items()}


@dataclass(frozen=True)
class KubernetesSettings:
    namespace: str = "databases"
    create_namespace: bool = True
    services_namespace: str | None = None
    """Where the service pods live; the NetworkPolicies admit them from there."""
    storage_class: str | None = None
    admin_endpoints: Mapping[str, str] = field(default_factory=dict)
    """Process name -> 'host:port' the Pulumi program dials instead (a LoadBalancer, a tunnel)."""
    admin_access: AdminAccess = "auto"
    """How the program reaches each PostgreSQL primary: 'forward' through a port-forward of the
    API server (a runner outside the cluster with a kubeconfig), 'direct' by the Service's DNS
    name (a runner inside the cluster); 'auto' picks 'direct' inside a pod, else 'forward'."""
    protect: bool = True

    @property
    def forwards(self) -> bool:
        if self.admin_access == "auto":
            return "KUBERNETES_SERVICE_HOST" not in os.environ
        return self.admin_access == "forward"


def _verbatim(value: pulumi.Input[str]) -> pulumi.Input[str]:
    """A command word or env value as the process must see it. The kubelet expands `$(NAME)` in
    command, args, probe commands and env values, and turns `$$` into `$`: a shell script's `$$`
    (its own PID) would reach it as a bare `$`. Every `$` doubled passes the text through as is,
    as Docker does."""
    if isinstance(value, str):
        return value.replace("$", "$$")
    return pulumi.Output.from_input(value).apply(lambda text: text.replace("$", "$$"))


def _verbatim_all(values: Sequence[pulumi.Input[str]] | None) -> list[pulumi.Input[str]]:
    return [_verbatim(v) for v in values or ()]


def _scrape_annotations(port: int | None) -> dict[str, str] | None:
    """What an annotation-driven Prometheus (the common kubernetes-pods job) looks for."""
    if port is None:
        return None
    return {"prometheus.io/scrape": "true", "prometheus.io/port": str(port), "prometheus.io/path": "/metrics"}


def _plain_env(env: Mapping[str, pulumi.Input[str]]) -> list[dict[str, Any]]:
    return [{"name": k, "value": _verbatim(v)} for k, v in sorted(env.items())]


def _file_key(path: str) -> str:
    return path.strip("/").replace("/", "__")


def _claim_mounts(claims: Sequence[tuple[StorageRef, str]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Pod volumes and container mounts for PVCs mounted at paths."""
    volumes = [{"name": f"storage-{i}", "persistent_volume_claim": {"claim_name": ref.claim}}
               for i, (ref, _) in enumerate(claims)]
    mounts = [{"name": f"storage-{i}", "mount_path": path} for i, (_, path) in enumerate(claims)]
    return volumes, mounts


def _file_set_mounts(file_sets: Sequence[tuple[FileSetRef, str]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Pod volumes and container mounts for file sets (Secrets). Mounted whole, never by
    subPath: the kubelet then swaps a changed Secret's files in place."""
    volumes = [{"name": f"files-{i}", "secret": {
        "secret_name": ref.source,
        "items": [{"key": f, "path": f, "mode": 0o640 if f in ref.private else 0o644} for f in ref.files],
    }} for i, (ref, _) in enumerate(file_sets)]
    mounts = [{"name": f"files-{i}", "mount_path": path, "read_only": True} for i, (_, path) in enumerate(file_sets)]
    return volumes, mounts


def _probes(spec: ProcessSpec) -> dict[str, dict[str, Any]]:
    """Docker's health check as Kubernetes probes. Docker runs its check from the start and lets
    failures pass for `start_period`; the Kubernetes way is a startup probe that allows that
    long, then readiness and liveness from the first second (an initial delay would hold every
    pod back by the whole period even when it is up at once)."""
    if spec.health is None:
        return {}
    h = spec.health
    check = {"exec_": {"command": _verbatim_all(h.command)}, "period_seconds": h.interval_s, "timeout_seconds": h.timeout_s}
    return {
        "startup_probe": {**check, "failure_threshold": -(-h.start_period_s // h.interval_s) + h.retries},
        "readiness_probe": {**check, "failure_threshold": h.retries},
        "liveness_probe": {**check, "failure_threshold": h.retries},
    }


class KubernetesPlatform:
    """Runs processes as StatefulSets with PVC templates, probes, PDBs and NetworkPolicies."""

    kind = "kubernetes"
    keeps_data = True  # every data claim is retained (persistentVolumeClaimRetentionPolicy)

    def __init__(
        self, name: str, settings: KubernetesSettings, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        self.settings = settings
        self.protect = settings.protect
        self.namespace: pulumi.Output[str]
        if settings.create_namespace:
            ns = k8s.core.v1.Namespace(
                f"{name}-namespace",
                metadata={"name": settings.namespace, "labels": {"app.kubernetes.io/part-of": "pgfleet"}},
                # Never deleted by Pulumi: it holds the data's claims, which outlive a destroy.
                opts=pulumi.ResourceOptions.merge(
                    opts, pulumi.ResourceOptions(protect=settings.protect, retain_on_delete=True)),
            )
            self.namespace = ns.metadata.name
        else:
            self.namespace = pulumi.Output.from_input(settings.namespace)

    def _meta(self, name: str, extra: Mapping[str, str], namespace: pulumi.Input[str] | None = None) -> dict[str, Any]:
        return {"name": name, "namespace": namespace or self.namespace, "labels": dict(extra)}

    def _secret(self, name: str, data: Mapping[str, pulumi.Input[str]], meta_labels: Mapping[str, str],
                opts: pulumi.ResourceOptions, namespace: pulumi.Input[str] | None = None) -> k8s.core.v1.Secret:
        return k8s.core.v1.Secret(
            name,
            metadata=self._meta(name, meta_labels, namespace),
            type="Opaque",
            string_data={k: pulumi.Output.secret(v) for k, v in data.items()},
            opts=opts,
        )

    def _network_policy(self, spec: ProcessSpec, selector: Mapping[str, str], opts: pulumi.ResourceOptions) -> None:
        restricted = [{"port": p.port, "protocol": "TCP"} for p in spec.ports if p.restricted]
        open_ports = [{"port": p.port, "protocol": "TCP"} for p in spec.ports if not p.restricted]
        peers: list[dict[str, Any]] = [
            {"pod_selector": {"match_labels": {SERVER_LABEL: spec.server}}},
            {"pod_selector": {"match_labels": {ADMIN_LABEL: "true"}}},
        ]
        for client in spec.clients:
            peer: dict[str, Any] = {"pod_selector": {"match_labels": dict(client)}}
            if self.settings.services_namespace:
                peer["namespace_selector"] = {
                    "match_labels": {"kubernetes.io/metadata.name": self.settings.services_namespace}
                }
            peers.append(peer)
        ingress: list[dict[str, Any]] = []
        if restricted:
            ingress.append({"from_": peers, "ports": restricted})
        if open_ports:
            ingress.append({"ports": open_ports})
        k8s.networking.v1.NetworkPolicy(
            f"{spec.name}-netpol",
            metadata=self._meta(spec.hostname, selector),
            spec={"pod_selector": {"match_labels": dict(selector)}, "policy_types": ["Ingress"], "ingress": ingress},
            opts=opts,
        )

    def run(self, spec: ProcessSpec, opts: pulumi.ResourceOptions) -> RunningProcess:
        selector = labels(spec.hostname, spec.role, spec.server)
        env = _plain_env(spec.env)
        volumes: list[dict[str, Any]] = []
        mounts: list[dict[str, Any]] = []
        if spec.secret_env or spec.files:
            secret = self._secret(
                f"{spec.name}-secret",
                {**spec.secret_env, **{_file_key(p): c for p, c in spec.files.items()}},
                selector,
                opts,
            )
            env += [
                {"name": k, "value_from": {"secret_key_ref": {"name": secret.metadata.name, "key": k}}}
                for k in sorted(spec.secret_env)
            ]
            for index, path in enumerate(sorted(spec.files)):
                volumes.append({
                    "name": f"file-{index}",
                    "secret": {"secret_name": secret.metadata.name, "items": [{"key": _file_key(path), "path": posixpath.basename(path)}]},
                })
                mounts.append({"name": f"file-{index}", "mount_path": path, "sub_path": posixpath.basename(path), "read_only": True})
        claim_volumes, claim_mounts = _claim_mounts(spec.mounts)
        set_volumes, set_mounts = _file_set_mounts(spec.file_sets)
        volumes += claim_volumes + set_volumes
        mounts += claim_mounts + set_mounts
        claims = []
        if spec.data is not None:
            mounts.insert(0, {"name": "data", "mount_path": spec.data.mount_path})
            claims.append({
                "metadata": {"name": "data", "labels": selector},
                "spec": {
                    "access_modes": ["ReadWriteOnce"],
                    "storage_class_name": self.settings.storage_class,
                    "resources": {"requests": {"storage": spec.data.size}},
                },
            })
        resources = {k: v for k, v in (("cpu", spec.cpu), ("memory", spec.memory)) if v}
        container = {
            "name": spec.role,
            "image": spec.image,
            "command": _verbatim_all(spec.command) or None,
            "args": _verbatim_all(spec.args) or None,
            "env": env or None,
            "ports": [{"name": p.name[:15], "container_port": p.port} for p in spec.ports],
            "volume_mounts": mounts or None,
            **_probes(spec),
            "resources": {"requests": resources, "limits": {"memory": spec.memory}} if resources else None,
        }
        service = k8s.core.v1.Service(
            f"{spec.name}-service",
            metadata=self._meta(spec.hostname, selector),
            spec={
                "cluster_ip": "None",  # headless: stable per-pod DNS names for the StatefulSet
                "selector": selector,
                "ports": [{"name": p.name[:15], "port": p.port, "target_port": p.port} for p in spec.ports],
            },
            opts=opts,
        )
        retain = spec.data is not None and spec.data.retain
        statefulset = k8s.apps.v1.StatefulSet(
            f"{spec.name}-statefulset",
            metadata=self._meta(spec.hostname, selector),
            spec={
                "service_name": service.metadata.name,
                "replicas": spec.instances,
                "selector": {"match_labels": selector},
                "template": {
                    "metadata": {"labels": selector, "annotations": _scrape_annotations(spec.scrape_port)},
                    "spec": {
                        "containers": [container],
                        "volumes": volumes or None,
                        # The data's and the file sets' group: the postgres user's in pgfleet's images.
                        "security_context": {"fs_group": FILE_SET_GROUP}
                        if spec.data is not None or spec.file_sets else None,
                        "termination_grace_period_seconds": 60,
                    },
                },
                "volume_claim_templates": claims or None,
                # Data outlives the StatefulSet: deleting or scaling it never deletes a PVC.
                "persistent_volume_claim_retention_policy": {"when_deleted": "Retain", "when_scaled": "Retain"}
                if claims
                else None,
            },
            opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(protect=retain)),
        )
        if spec.data is not None:
            # A database pod is never evicted voluntarily below its instance count less one.
            k8s.policy.v1.PodDisruptionBudget(
                f"{spec.name}-pdb",
                metadata=self._meta(spec.hostname, selector),
                spec={"selector": {"match_labels": selector}, "min_available": max(1, spec.instances - 1)},
                opts=opts,
            )
        self._network_policy(spec, selector, opts)
        dns = pulumi.Output.concat(service.metadata.name, ".", self.namespace, ".svc.cluster.local")
        admin_host, admin_ports = self._admin_endpoint(spec, statefulset, dns)
        return RunningProcess(
            name=spec.name,
            host=dns,
            ports={p.name: p.port for p in spec.ports},
            admin_host=admin_host,
            admin_ports=admin_ports,
            resources=[statefulset, service],
            # volumeClaimTemplates name each pod's claim <template>-<statefulset>-<ordinal>
            data=StorageRef(name="data", claim=pulumi.Output.concat("data-", statefulset.metadata.name, "-0"),
                            resource=statefulset) if spec.data is not None else None,
            selector=selector,
        )

    def _admin_endpoint(self, spec: ProcessSpec, statefulset: k8s.apps.v1.StatefulSet,
                        dns: pulumi.Output[str]) -> tuple[pulumi.Output[str], dict[str, int]]:
        """Where the program dials the process; resolves once its pods are ready (the
        StatefulSet's status is known only after Pulumi's readiness wait)."""
        ports = {p.name: p.port for p in spec.ports}
        override = self.settings.admin_endpoints.get(spec.hostname)
        if override:
            host, _, port = override.rpartition(":")
            return statefulset.status.apply(lambda _: host), {name: int(port) for name in ports}
        if spec.role == "postgres" and self.settings.forwards:
            # The PostgreSQL provider connects to pod 0 (the primary) through a forward whose
            # socket path depends only on the pod: the provider's inputs are the same every run.
            port = ports["postgres"]

            def forward(values: list[Any]) -> str:
                status, namespace, name = values
                pod = f"{name}-0"
                ready = status.get("ready_replicas") if isinstance(status, dict) else getattr(status, "ready_replicas", None)
                if not ready:  # under mocks, or no pod ready (yet): the path, and no forward
                    return str(kube_forward.socket_dir(namespace, pod, port))
                return kube_forward.ensure(namespace, pod, port)

            return pulumi.Output.all(statefulset.status, self.namespace, statefulset.metadata.name).apply(forward), ports
        return pulumi.Output.all(statefulset.status, dns).apply(lambda v: v[1]), ports

    def schedule(self, job: JobSpec, opts: pulumi.ResourceOptions) -> pulumi.Resource:
        job_labels = labels(job.name, "backup", job.server)
        env = _plain_env(job.env)
        if job.secret_env:
            secret = self._secret(f"{job.name}-secret", job.secret_env, job_labels, opts)
            env += [
                {"name": k, "value_from": {"secret_key_ref": {"name": secret.metadata.name, "key": k}}}
                for k in sorted(job.secret_env)
            ]
        claims = list(job.mounts)
        if job.data is not None and job.data.process.data is not None:
            claims.insert(0, (job.data.process.data, job.data.mount_path))
        near = job.data.process if job.data is not None else job.near
        affinity = None
        if near is not None:
            # The volumes are ReadWriteOnce: the job must run on the node that has them mounted.
            affinity = {"pod_affinity": {"required_during_scheduling_ignored_during_execution": [{
                "label_selector": {"match_labels": dict(near.selector)},
                "topology_key": "kubernetes.io/hostname",
            }]}}
        volumes, mounts = _claim_mounts(claims)
        set_volumes, set_mounts = _file_set_mounts(job.file_sets)
        volumes += set_volumes
        mounts += set_mounts

        def pod(command: list[pulumi.Input[str]], restart: str) -> dict[str, Any]:
            return {
                "metadata": {"labels": job_labels},
                # Starts as root: pgfleet-backup takes the repository's ownership, then runs as postgres.
                "spec": {
                    "restart_policy": restart,
                    "affinity": affinity,
                    "containers": [{
                        "name": "backup",
                        "image": job.image,
                        "command": _verbatim_all(command),
                        "env": env or None,
                        "volume_mounts": mounts or None,
                    }],
                    "volumes": volumes or None,
                    "security_context": {"fs_group": FILE_SET_GROUP} if job.file_sets else None,
                },
            }

        if job.at_start:
            # Pulumi waits for a Job to complete, so a failed first run fails the deployment.
            k8s.batch.v1.Job(
                f"{job.name}-init",
                metadata=self._meta(f"{job.name}-init", job_labels),
                spec={"backoff_limit": 2, "template": pod(list(job.at_start), "Never")},
                opts=opts,
            )
        return k8s.batch.v1.CronJob(
            f"{job.name}-cronjob",
            metadata=self._meta(job.name, job_labels),
            spec={
                "schedule": job.schedule,
                "time_zone": "Etc/UTC",
                "concurrency_policy": "Forbid",
                "successful_jobs_history_limit": 3,
                "failed_jobs_history_limit": 3,
                "job_template": {"spec": {"backoff_limit": 2, "template": pod(list(job.command), "OnFailure")}},
            },
            opts=opts,
        )

    def storage(self, name: str, size: str, retain: bool, opts: pulumi.ResourceOptions) -> StorageRef:
        claim = k8s.core.v1.PersistentVolumeClaim(
            name,
            metadata=self._meta(name, {"app.kubernetes.io/part-of": "pgfleet"}),
            spec={
                "access_modes": ["ReadWriteOnce"],
                "storage_class_name": self.settings.storage_class,
                "resources": {"requests": {"storage": size}},
            },
            opts=pulumi.ResourceOptions.merge(
                opts, pulumi.ResourceOptions(protect=retain, retain_on_delete=retain)
            ),
        )
        return StorageRef(name=name, claim=claim.metadata.name, resource=claim)

    def store_secret(
        self, name: str, data: Mapping[str, pulumi.Input[str]], opts: pulumi.ResourceOptions
    ) -> pulumi.Output[str] | None:
        # In the services' namespace, where their pods can mount it (the namespace is theirs:
        # it must exist; pgfleet does not create or delete it).
        namespace = self.settings.services_namespace or self.namespace
        secret = self._secret(name, data, {"app.kubernetes.io/part-of": "pgfleet"}, opts, namespace)
        return pulumi.Output.concat(secret.metadata.namespace, "/", secret.metadata.name)

    def file_set(
        self, name: str, files: Mapping[str, pulumi.Input[str]], private: Sequence[str], image: str,
        opts: pulumi.ResourceOptions,
    ) -> FileSetRef:
        # A Secret mounted as a directory: the kubelet rewrites the files of a changed Secret in
        # the running pods (within its sync period, about a minute), atomically.
        # Mounted by its fixed name, not its output, and nothing waits on it (the kubelet holds a
        # pod until the Secret exists): pulumi-kubernetes replaces a Secret whose data changes
        # (delete, then create, under a fixed name), and a workload tied to it would be replaced too.
        secret = self._secret(name, files, {"app.kubernetes.io/part-of": "pgfleet"}, opts)
        return FileSetRef(name=name, source=pulumi.Output.from_input(name), resources=[secret],
                          files=sorted(files), private=tuple(private))

    def publish_monitoring(self, name: str, monitoring: Monitoring, opts: pulumi.ResourceOptions) -> None:
        """Dashboards as ConfigMaps for Grafana's sidecar (label grafana_dashboard=1); the rules and
        scrape job as a ConfigMap for a plain Prometheus, or as a PrometheusRule and PodMonitor for
        the Prometheus Operator (whose CRDs must be installed)."""
        part_of = {"app.kubernetes.io/part-of": "pgfleet"}
        for file, body in sorted(monitoring.dashboards.items()):
            key = f"{name}-dashboard-{file.removesuffix('.json')}"
            k8s.core.v1.ConfigMap(
                key, metadata={**self._meta(key, {**part_of, "grafana_dashboard": "1"}),
                               "annotations": {"grafana_folder": monitoring.folder}},
                data={file: body}, opts=opts)
        if not monitoring.operator:
            k8s.core.v1.ConfigMap(
                f"{name}-prometheus", metadata=self._meta(f"{name}-prometheus", part_of),
                data={"pgfleet.rules.yml": yaml.safe_dump({"groups": list(monitoring.rule_groups)}, sort_keys=False),
                      "scrape.yml": yaml.safe_dump({"scrape_configs": [dict(monitoring.scrape_job)]}, sort_keys=False)},
                opts=opts)
            return
        k8s.apiextensions.CustomResource(
            f"{name}-rules", api_version="monitoring.coreos.com/v1", kind="PrometheusRule",
            metadata=self._meta(f"{name}-rules", part_of), spec={"groups": monitoring.rule_groups}, opts=opts)
        k8s.apiextensions.CustomResource(
            f"{name}-exporters", api_version="monitoring.coreos.com/v1", kind="PodMonitor",
            metadata=self._meta(f"{name}-exporters", part_of),
            spec={
                "selector": {"matchLabels": {"app.kubernetes.io/name": "exporter", **part_of}},
                "podMetricsEndpoints": [{
                    "port": "metrics", "interval": monitoring.interval,
                    "relabelings": [_camel_keys(r) for r in monitoring.relabelling],
                }],
            },
            opts=opts)

    def host_names(self, host: str, instances: int) -> list[str]:
        # The headless Service's names (short and qualified) and each pod's own.
        namespace = self.settings.namespace
        names = [host, f"{host}.{namespace}", f"{host}.{namespace}.svc", f"{host}.{namespace}.svc.cluster.local"]
        names += [f"{host}-{i}.{host}.{namespace}.svc.cluster.local" for i in range(instances)]
        return names
