"""Docker implementation of the platform seam: containers on one private bridge network."""
from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_docker as docker

from .base import FILE_SET_GROUP, FileSetRef, JobSpec, ProcessSpec, RunningProcess, StorageRef, labels

#: A job container's environment, for cron's jobs and for `docker exec` (restores).
JOB_ENV = "/etc/pgfleet/job.env"
#: The image's own environment (PATH above all), saved at start: cron gives jobs none of it.
IMAGE_ENV = "/run/pgfleet-image.env"
JOB_READY = "/run/pgfleet-job-ready"
#: Where each secret_env value lands as a file; the container's env names only the path
#: (`<NAME>_FILE`), so `docker inspect` shows no secret.
SECRETS_DIR = "/run/pgfleet/secrets"
#: Where a file set's writer container finds its uploads, and where it copies them.
FILE_SET_UPLOADS = "/run/pgfleet/file-set"
FILE_SET_VOLUME = "/file-set"
FILE_SET_READY = "/run/pgfleet-file-set-ready"
#: Uploads land as root; the image's entrypoint (root) gives each file to its service user
#: before it drops privileges, so only that user (and root) can read it.
SECRET_MODE = "0400"


@dataclass(frozen=True)
class DockerSettings:
    network: str = "pgfleet"
    bind_address: str = "127.0.0.1"
    """Every published port binds here; never 0.0.0.0 (a policy test holds this)."""
    protect: bool = False
    prefix: str = ""
    """Put before container and volume names, so stacks can share one engine; the network
    aliases (the host names in URLs) stay unprefixed."""
    extra_labels: Mapping[str, str] = field(default_factory=dict)


def _env_list(env: Mapping[str, pulumi.Input[str]]) -> list[pulumi.Output[str]]:
    return [pulumi.Output.concat(key, "=", value) for key, value in sorted(env.items())]


def _secret_files(
    secret_env: Mapping[str, pulumi.Input[str]],
) -> tuple[dict[str, str], list[docker.ContainerUploadArgs]]:
    """Secrets as files: `<NAME>_FILE` -> path for the env, and the uploads that hold them
    (content secret in state, never part of the container's config)."""
    paths = {name: f"{SECRETS_DIR}/{name}" for name in sorted(secret_env)}
    uploads = [
        docker.ContainerUploadArgs(file=path, content=pulumi.Output.secret(secret_env[name]), permissions=SECRET_MODE)
        for name, path in paths.items()
    ]
    return {f"{name}_FILE": path for name, path in paths.items()}, uploads


def _docker_labels(values: Mapping[str, str]) -> list[docker.ContainerLabelArgs]:
    return [docker.ContainerLabelArgs(label=k, value=v) for k, v in sorted(values.items())]


def _volume_args(mounts: Sequence[tuple[StorageRef, str]]) -> list[docker.ContainerVolumeArgs]:
    """Named volumes mounted at paths."""
    return [docker.ContainerVolumeArgs(volume_name=ref.claim, container_path=path) for ref, path in mounts]


def _file_set_volumes(file_sets: Sequence[tuple[FileSetRef, str]]) -> list[docker.ContainerVolumeArgs]:
    return [docker.ContainerVolumeArgs(volume_name=ref.source, container_path=path, read_only=True)
            for ref, path in file_sets]


def _after_file_sets(opts: pulumi.ResourceOptions, file_sets: Sequence[tuple[FileSetRef, str]]) -> pulumi.ResourceOptions:
    """A container starts once the files it mounts are written (its writer is healthy)."""
    writers = [r for ref, _ in file_sets for r in ref.resources]
    return pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=writers)) if writers else opts


def _file_set_script(private: Sequence[str]) -> str:
    # Each file is written beside its final name and renamed over it, so a reader never sees a
    # half-written file; private ones become root:FILE_SET_GROUP 0640 (PostgreSQL accepts a key
    # owned by root with group read), the rest 0644.
    return "\n".join([
        "set -eu",
        f"for f in {FILE_SET_UPLOADS}/*; do",
        '  n="$(basename "$f")"; mode=0644',
        f'  case " {" ".join(private)} " in *" $n "*) mode=0640 ;; esac',
        f'  install -o 0 -g {FILE_SET_GROUP} -m "$mode" "$f" "{FILE_SET_VOLUME}/.$n.new"',
        f'  mv -f "{FILE_SET_VOLUME}/.$n.new" "{FILE_SET_VOLUME}/$n"',
        "done",
        f"touch {FILE_SET_READY}",
        "trap 'exit 0' TERM INT",
        "while :; do sleep 3600 & wait $!; done",
    ])


def _replace_in_place(opts: pulumi.ResourceOptions) -> pulumi.ResourceOptions:
    # Container names are fixed, so a replacement cannot start before the old one is gone;
    # data lives in named volumes, which a container replacement leaves alone.
    return pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(delete_before_replace=True))


class DockerPlatform:
    """Runs processes as containers with named volumes, health checks and loopback-only ports."""

    kind = "docker"
    keeps_data = False  # a volume goes with its container unless protected, which blocks destroy

    def __init__(self, name: str, settings: DockerSettings, opts: pulumi.ResourceOptions | None = None) -> None:
        self.settings = settings
        self.protect = settings.protect
        self.network = docker.Network(
            f"{name}-network",
            name=settings.network,
            driver="bridge",
            labels=[docker.NetworkLabelArgs(label="app.kubernetes.io/part-of", value="pgfleet")],
            opts=opts,
        )

    def _volume(self, key: str, name: str, retain: bool, opts: pulumi.ResourceOptions) -> docker.Volume:
        return docker.Volume(
            key,
            name=f"{self.settings.prefix}{name}",
            labels=[docker.VolumeLabelArgs(label="app.kubernetes.io/part-of", value="pgfleet")],
            opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(protect=retain, retain_on_delete=retain)),
        )

    def _container(
        self,
        key: str,
        name: str,
        spec: ProcessSpec,
        volumes: Sequence[docker.ContainerVolumeArgs],
        opts: pulumi.ResourceOptions,
        publish: bool,
    ) -> docker.Container:
        secret_paths, secret_uploads = _secret_files(spec.secret_env)
        env = {**spec.env, **secret_paths}
        health = spec.health
        return docker.Container(
            key,
            name=f"{self.settings.prefix}{name}",
            image=spec.image,
            entrypoints=list(spec.command) if spec.command else None,
            command=list(spec.args) or None,
            envs=_env_list(env) or None,
            hostname=name,
            restart="unless-stopped",
            must_run=True,
            labels=_docker_labels({**labels(spec.hostname, spec.role, spec.server), **self.settings.extra_labels}),
            networks_advanced=[
                docker.ContainerNetworksAdvancedArgs(name=self.network.name, aliases=sorted({name, spec.hostname}))
            ],
            ports=[
                docker.ContainerPortArgs(internal=p.port, external=p.host_port, ip=self.settings.bind_address)
                for p in spec.ports
                if publish and p.host_port is not None
            ],
            volumes=[*volumes, *_file_set_volumes(spec.file_sets)] or None,
            uploads=[
                docker.ContainerUploadArgs(file=path, content=pulumi.Output.secret(content), permissions=SECRET_MODE)
                for path, content in sorted(spec.files.items())
            ]
            + secret_uploads
            or None,
            healthcheck=docker.ContainerHealthcheckArgs(
                tests=["CMD", *health.command],
                interval=f"{health.interval_s}s",
                timeout=f"{health.timeout_s}s",
                retries=health.retries,
                start_period=f"{health.start_period_s}s",
            )
            if health
            else None,
            # Wait for "healthy" so nothing downstream connects early (pulumi/pulumi#3166).
            wait=health is not None,
            wait_timeout=health.start_period_s + health.interval_s * health.retries + 60 if health else None,
            opts=_replace_in_place(_after_file_sets(opts, spec.file_sets)),
        )

    def run(self, spec: ProcessSpec, opts: pulumi.ResourceOptions) -> RunningProcess:
        containers: list[docker.Container] = []
        data: StorageRef | None = None
        for index in range(spec.instances):
            # resources keyed by the spec's name, platform objects named by its host name
            key, name = (spec.name, spec.hostname) if spec.instances == 1 else (
                f"{spec.name}-{index}", f"{spec.hostname}-{index}")
            mounts = list(spec.mounts)
            if spec.data is not None:
                volume = self._volume(f"{key}-data", f"{name}-data", spec.data.retain, opts)
                ref = StorageRef(name=f"{name}-data", claim=volume.name, resource=volume)
                mounts.insert(0, (ref, spec.data.mount_path))
                data = data or ref
            volumes = _volume_args(mounts)
            # Only the first instance publishes host ports: two cannot bind the same one.
            containers.append(self._container(key, name, spec, volumes, opts, publish=index == 0))
        first = containers[0]
        published = {p.name: p.host_port for p in spec.ports if p.host_port is not None}
        return RunningProcess(
            name=spec.name,
            # Every instance carries the spec name as a network alias: one name for all replicas.
            host=first.name.apply(lambda _: spec.hostname),
            ports={p.name: p.port for p in spec.ports},
            admin_host=first.id.apply(lambda _: self.settings.bind_address) if published else None,
            admin_ports=published,
            resources=containers,
            data=data,
            selector=labels(spec.hostname, spec.role, spec.server),
        )

    def schedule(self, job: JobSpec, opts: pulumi.ResourceOptions) -> pulumi.Resource:
        # Docker has no scheduler: a small container runs cron with one line. Env is written
        # to a file cron's job sources, because cron starts jobs with an empty environment.
        # Secrets are files (`<NAME>_FILE` in that env), which the image's entrypoint gives to
        # the user the job runs as when the container starts.
        secret_paths, secret_uploads = _secret_files(job.secret_env)
        env = {**job.env, **secret_paths}
        env_file = pulumi.Output.all(*[
            pulumi.Output.concat("export ", k, "=", pulumi.Output.from_input(v).apply(shlex.quote))
            for k, v in sorted(env.items())
        ])
        command = pulumi.Output.all(*job.command).apply(lambda parts: shlex.join(parts))
        crontab = command.apply(
            lambda cmd: f"{job.schedule} root . {IMAGE_ENV} && . {JOB_ENV} && {cmd} >> /proc/1/fd/1 2>&1\n"
        )
        # The start command runs before cron; the container turns healthy once it succeeded,
        # and `wait` makes the deployment fail if it does not.
        start = f". {JOB_ENV} && {shlex.join(job.at_start)} && " if job.at_start else ""
        mounts = list(job.mounts)
        if job.data is not None and job.data.process.data is not None:
            mounts.insert(0, (job.data.process.data, job.data.mount_path))
        volumes = [*_volume_args(mounts), *_file_set_volumes(job.file_sets)]
        return docker.Container(
            job.name,
            name=f"{self.settings.prefix}{job.name}",
            image=job.image,
            # The image's entrypoint runs first (as root) and prepares the secret files, which
            # it finds by their `<NAME>_FILE` paths (no secret) in the container's env.
            command=["sh", "-c", f"export -p > {IMAGE_ENV} && {start}touch {JOB_READY} && exec cron -f"],
            envs=_env_list(secret_paths) or None,
            restart="unless-stopped",
            must_run=True,
            labels=_docker_labels({**labels(job.name, "backup", job.server), **self.settings.extra_labels}),
            networks_advanced=[docker.ContainerNetworksAdvancedArgs(name=self.network.name)],
            volumes=volumes or None,
            # Replaces the image's own check (a server's). Durations as Docker reads them back
            # ("30s", not "600s" = "10m0s"), or every preview would show a change.
            healthcheck=docker.ContainerHealthcheckArgs(
                tests=["CMD", "test", "-f", JOB_READY], interval="2s", timeout="2s", retries=3, start_period="30s",
            ),
            wait=True,
            wait_timeout=900,  # a first full backup of a large server takes a while
            uploads=[
                docker.ContainerUploadArgs(file="/etc/cron.d/pgfleet", content=crontab),
                docker.ContainerUploadArgs(
                    file=JOB_ENV, content=pulumi.Output.secret(env_file.apply("\n".join))
                ),
                *secret_uploads,
            ],
            opts=_replace_in_place(_after_file_sets(opts, job.file_sets)),
        )

    def storage(self, name: str, size: str, retain: bool, opts: pulumi.ResourceOptions) -> StorageRef:
        volume = self._volume(name, name, retain, opts)
        return StorageRef(name=name, claim=volume.name, resource=volume)

    def store_secret(
        self, name: str, data: Mapping[str, pulumi.Input[str]], opts: pulumi.ResourceOptions
    ) -> pulumi.Output[str] | None:
        return None

    def file_set(
        self, name: str, files: Mapping[str, pulumi.Input[str]], private: Sequence[str], image: str,
        opts: pulumi.ResourceOptions,
    ) -> FileSetRef:
        # A volume the processes mount read-only, filled by a small writer container that holds
        # the files as uploads. New content replaces only the writer, which rewrites the files in
        # the volume; the processes mounting it keep running (they reload on their own).
        volume = self._volume(f"{name}-volume", name, False, opts)
        writer = docker.Container(
            name,
            name=f"{self.settings.prefix}{name}",
            image=image,
            entrypoints=["sh", "-c"],
            command=[_file_set_script(private)],
            network_mode="none",  # it only copies files
            restart="unless-stopped",
            must_run=True,
            labels=_docker_labels({"app.kubernetes.io/name": "file-set", "app.kubernetes.io/instance": name,
                                   "app.kubernetes.io/part-of": "pgfleet", **self.settings.extra_labels}),
            volumes=[docker.ContainerVolumeArgs(volume_name=volume.name, container_path=FILE_SET_VOLUME)],
            uploads=[
                docker.ContainerUploadArgs(file=f"{FILE_SET_UPLOADS}/{file}", content=pulumi.Output.secret(content),
                                           permissions=SECRET_MODE)
                for file, content in sorted(files.items())
            ],
            healthcheck=docker.ContainerHealthcheckArgs(
                tests=["CMD", "test", "-f", FILE_SET_READY], interval="2s", timeout="2s", retries=3, start_period="30s",
            ),
            wait=True,
            wait_timeout=120,
            opts=_replace_in_place(opts),
        )
        return FileSetRef(name=name, source=volume.name, resources=[writer], files=sorted(files), private=tuple(private))

    def host_names(self, host: str, instances: int) -> list[str]:
        # The network alias every instance carries, and each instance's own name.
        names = [host] if instances == 1 else [host, *(f"{host}-{i}" for i in range(instances))]
        return [*names, *(f"{self.settings.prefix}{n}" for n in names if self.settings.prefix)]
