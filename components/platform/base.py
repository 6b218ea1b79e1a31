"""The seam between components and where processes run.

Components describe *what* runs (`ProcessSpec`, `JobSpec`) and get back where it can be
reached (`RunningProcess`). Docker and Kubernetes implement `Platform`; no component imports
pulumi_docker or pulumi_kubernetes.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

import pulumi

ProcessRole = Literal["postgres", "replica", "pooler", "exporter", "redis", "vault", "objectstore"]
#: Label every object carries, so a NetworkPolicy can admit a server's own helpers.
SERVER_LABEL = "pgfleet.io/server"
#: Label of pods (an operator's Pulumi runner, a migration job) admitted to every database port.
ADMIN_LABEL = "pgfleet.io/admin"


@dataclass(frozen=True)
class PortSpec:
    """A port a process listens on."""

    name: str
    port: int
    host_port: int | None = None
    """Published on the dev bind address (127.0.0.1); unpublished when None. Unused on Kubernetes."""
    restricted: bool = True
    """Only the process's clients may reach it (database ports); False for e.g. metrics."""


@dataclass(frozen=True)
class HealthCheck:
    """A command that exits 0 once the process serves."""

    command: Sequence[str]
    interval_s: int = 5
    timeout_s: int = 5
    retries: int = 12
    start_period_s: int = 10


@dataclass(frozen=True)
class DataVolume:
    """Persistent data: a named volume on Docker, a PVC template on Kubernetes."""

    mount_path: str
    size: str
    retain: bool
    """Keep (and protect) the data when the process is deleted."""


@dataclass(frozen=True)
class StorageRef:
    """Storage created by `Platform.storage`, mountable into processes and jobs."""

    name: str
    claim: pulumi.Output[str]
    resource: pulumi.Resource


@dataclass(frozen=True)
class FileSetRef:
    """Files created by `Platform.file_set` that processes and jobs mount read-only at a
    directory and that may change while they run (certificates): the platform swaps them in
    place, never restarting what mounts them."""

    name: str
    source: pulumi.Output[str]
    """The platform's name for it: a Docker volume, a Kubernetes Secret."""
    resources: Sequence[pulumi.Resource]
    """What holds the files. Docker waits for them before a container that mounts the set starts;
    Kubernetes does not (the kubelet holds the pod until its Secret exists)."""
    files: Sequence[str] = ()
    private: Sequence[str] = ()
    """Readable by `FILE_SET_GROUP` only (keys); the other files by all."""


#: Group that may read a file set's private files: the postgres user's in pgfleet's images.
FILE_SET_GROUP = 999


@dataclass
class ProcessSpec:
    """A long-running process: one container (or pod per instance)."""

    name: str
    """Unique in the stack and DNS-safe; keys the Pulumi resources of the process."""
    role: ProcessRole
    server: str
    """The server it belongs to (labels, NetworkPolicy peers)."""
    image: str
    ports: Sequence[PortSpec]
    args: Sequence[pulumi.Input[str]] = ()
    command: Sequence[str] | None = None
    """Replaces the image's entrypoint when set."""
    env: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    secret_env: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    """Kept in a platform secret on Kubernetes; marked secret in Pulumi state everywhere."""
    files: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    """Absolute path -> content, treated as secret (configs that embed passwords)."""
    data: DataVolume | None = None
    mounts: Sequence[tuple[StorageRef, str]] = ()
    file_sets: Sequence[tuple[FileSetRef, str]] = ()
    """File sets mounted read-only at directories."""
    health: HealthCheck | None = None
    clients: Sequence[Mapping[str, str]] = ()
    """Pod label selectors of the services allowed to reach the restricted ports."""
    instances: int = 1
    host: str | None = None
    """The name the platform gives it (container, Service) and other processes reach it by;
    `name` when None."""
    cpu: str | None = None
    memory: str | None = None
    scrape_port: int | None = None
    """Prometheus scrapes /metrics on this port (Kubernetes: the prometheus.io/* pod annotations)."""

    @property
    def hostname(self) -> str:
        return self.host or self.name


@dataclass
class RunningProcess:
    """Where a process can be reached, once its platform reports it healthy."""

    name: str
    host: pulumi.Output[str]
    """Name on the platform network (container name, Service DNS name)."""
    ports: Mapping[str, int]
    admin_host: pulumi.Output[str] | None
    """Address the Pulumi program dials; resolves only after the process is healthy."""
    admin_ports: Mapping[str, int]
    resources: Sequence[pulumi.Resource]
    data: StorageRef | None = None
    """The first instance's data volume (a named volume; the StatefulSet's PVC of pod 0)."""
    selector: Mapping[str, str] = field(default_factory=dict)
    """Labels of its containers or pods."""


@dataclass(frozen=True)
class DataMount:
    """A process's data volume mounted into a job beside it: pgBackRest reads (and on restore
    writes) PGDATA where the server keeps it. Kubernetes runs the job on the process's node."""

    process: RunningProcess
    mount_path: str


@dataclass
class JobSpec:
    """A scheduled command (backups): a CronJob, or a cron container on Docker."""

    name: str
    server: str
    image: str
    schedule: str
    command: Sequence[pulumi.Input[str]]
    env: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    secret_env: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    mounts: Sequence[tuple[StorageRef, str]] = ()
    file_sets: Sequence[tuple[FileSetRef, str]] = ()
    data: DataMount | None = None
    near: RunningProcess | None = None
    """A process whose node the job must run on, because both mount a ReadWriteOnce claim (a
    filesystem repository); implied by `data`."""
    at_start: Sequence[str] | None = None
    """Run once when the job is created, and the deployment waits for it (Docker: before cron
    starts; Kubernetes: a Job beside the CronJob). A failure fails `pulumi up`."""


class Platform(Protocol):
    """How processes, jobs, storage and secrets are created on one kind of platform."""

    kind: str
    protect: bool
    keeps_data: bool
    """Data volumes outlive the stack (a destroy, a process removed from the config), so what
    lives in them (databases, roles) is kept too: Pulumi forgets it instead of dropping it."""

    def run(self, spec: ProcessSpec, opts: pulumi.ResourceOptions) -> RunningProcess: ...

    def schedule(self, job: JobSpec, opts: pulumi.ResourceOptions) -> pulumi.Resource: ...

    def storage(self, name: str, size: str, retain: bool, opts: pulumi.ResourceOptions) -> StorageRef: ...

    def store_secret(
        self, name: str, data: Mapping[str, pulumi.Input[str]], opts: pulumi.ResourceOptions
    ) -> pulumi.Output[str] | None:
        """Put values where a service's pods can mount them; returns a reference, or None
        where the platform has no secret store (Docker: the stack exports them as secrets)."""
        ...

    def file_set(
        self, name: str, files: Mapping[str, pulumi.Input[str]], private: Sequence[str], image: str,
        opts: pulumi.ResourceOptions,
    ) -> FileSetRef:
        """Files (name -> content, kept secret in state) for processes to mount; `private` ones
        are readable by `FILE_SET_GROUP` only, the rest by all. A change of content reaches the
        running processes in place. `image` has a POSIX shell (Docker copies the files with it)."""
        ...

    def host_names(self, host: str, instances: int) -> list[str]:
        """Every DNS name a process called `host` is reached by, for its TLS certificate."""
        ...


def dns_name(name: str) -> str:
    """A config name as a DNS label (container, Service and host names): '_' becomes '-'."""
    return name.replace("_", "-")


def labels(spec_name: str, role: str, server: str) -> dict[str, str]:
    """The labels every platform object of a process carries."""
    return {
        "app.kubernetes.io/name": role,
        "app.kubernetes.io/instance": spec_name,
        "app.kubernetes.io/part-of": "pgfleet",
        SERVER_LABEL: server,
    }
