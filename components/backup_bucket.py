"""BackupBucket: where a server's backups go, and the policy that governs them."""
from __future__ import annotations

import posixpath
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import pulumi

from ._passwords import generated_password
from .platform import (
    DataMount,
    DataVolume,
    HealthCheck,
    JobSpec,
    Platform,
    PortSpec,
    ProcessSpec,
    RunningProcess,
    StorageRef,
    dns_name,
)

#: Where the repository is mounted in the server and backup containers.
REPOSITORY_PATH = "/var/lib/pgfleet/backups"
#: The command in the server image that takes and restores backups (setup/images/postgres/).
BACKUP_COMMAND = "pgfleet-backup"
#: The managed object store (setup/images/versitygw/): HTTPS port and data directory.
STORE_PORT = 7070
STORE_DATA = "/var/lib/versitygw"


@dataclass
class BackupBucketArgs:
    platform: Platform
    target: Literal["filesystem", "s3"] = "filesystem"
    size: str = "20Gi"
    """Size of the filesystem repository volume."""
    s3_endpoint: str | None = None
    """'host', 'host:port' or 'https://host[:port]'; pgBackRest speaks HTTPS only."""
    s3_bucket: str | None = None
    s3_region: str = "us-east-1"
    s3_prefix: str = "pgfleet"
    s3_access_key: pulumi.Input[str] | None = None
    s3_secret_key: pulumi.Input[str] | None = None
    s3_verify_tls: bool = True
    store_image: str | None = None
    """With target 's3': run an S3-compatible store (an image like setup/images/versitygw) on
    the platform as the target, with generated keys and a self-signed certificate; for dev
    stacks that have no object store at hand. Endpoint and keys are then not given."""
    dump_schedule: str = "0 0 * * *"
    """Per-database logical dumps: daily at 00:00 UTC."""
    base_backup_schedule: str = "0 1 * * 0"
    """Physical base backups: weekly; WAL archiving fills the time between them."""
    retention_days: int = 30
    encryption: bool = True
    """Every backup encrypted (AES-256) with `passphrase`."""
    passphrase: pulumi.Input[str] | None = None
    """The encryption passphrase: give one for a repository that outlives the stack (it must
    outlive the stack too); a generated 48-character one, kept only in the state, otherwise."""
    wal_archiving: bool = True
    archive_timeout_s: int = 60
    """Forces a WAL segment switch at least this often, bounding the data-loss window (RPO)."""
    parallelism: int = 2
    """pgBackRest processes compressing or restoring files at once (process-max)."""
    protect: bool | None = None
    """Keep the repository when the stack is destroyed; the platform's default when None."""


@dataclass(frozen=True)
class BackupWiring:
    """What a server needs to archive into the bucket and to schedule its backups."""

    settings: Mapping[str, str]
    env: Mapping[str, pulumi.Input[str]]
    secret_env: Mapping[str, pulumi.Input[str]]
    mounts: Sequence[tuple[StorageRef, str]] = field(default_factory=tuple)


class BackupBucket(pulumi.ComponentResource):
    """A backup repository (a platform volume or an S3 bucket) with its retention and encryption.

    Servers take it as `SharedServerArgs.backup`: it gives them their WAL-archiving settings
    (`wiring`) and their scheduled jobs (`jobs`). Outputs: `repository` (where backups go),
    `retention_days`, and `passphrase` (secret) when encryption is on.
    """

    repository: pulumi.Output[str]
    retention_days: int
    passphrase: pulumi.Output[str] | None

    def __init__(self, name: str, args: BackupBucketArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("pgfleet:backup:BackupBucket", name, None, opts)
        self.args = args
        child = pulumi.ResourceOptions(parent=self)
        protect = args.platform.protect if args.protect is None else args.protect
        self.storage: StorageRef | None = None
        self.store: RunningProcess | None = None
        """The managed object store, when `store_image` is set."""
        self._s3_host: pulumi.Input[str] | None = None
        self._s3_port: int | None = None
        self._s3_keys = (args.s3_access_key, args.s3_secret_key)
        self._verify_tls = args.s3_verify_tls
        if args.target == "filesystem":
            self.storage = args.platform.storage(f"{name}-repository", args.size, protect, child)
            self.repository = pulumi.Output.concat("volume:", self.storage.claim)
        else:
            if args.store_image:
                self.store = self._run_store(name, args.store_image, protect, child)
                self._s3_host, self._s3_port, self._verify_tls = self.store.host, STORE_PORT, False
            else:
                self._s3_host, self._s3_port = split_endpoint(args.s3_endpoint or "")
            self.repository = pulumi.Output.concat("s3://", args.s3_bucket or "", "/", args.s3_prefix)
        self.passphrase = None
        if args.encryption:
            self.passphrase = (pulumi.Output.secret(args.passphrase) if args.passphrase is not None
                               else generated_password(f"{name}-passphrase", self, length=48))
        self.retention_days = args.retention_days
        self.register_outputs({
            "repository": self.repository,
            "retention_days": self.retention_days,
            "passphrase": self.passphrase,
        })

    @property
    def ready(self) -> list[pulumi.Resource]:
        """What must run before a server archives into the bucket."""
        return list(self.store.resources) if self.store else []

    def _run_store(self, name: str, image: str, protect: bool, child: pulumi.ResourceOptions) -> RunningProcess:
        access_key = generated_password(f"{name}-store-access-key", self, length=20)
        secret_key = generated_password(f"{name}-store-secret-key", self, length=40)
        self._s3_keys = (access_key, secret_key)
        return self.args.platform.run(
            ProcessSpec(
                name=dns_name(f"{name}-store"),
                role="objectstore",
                server=dns_name(name),
                image=image,
                ports=[PortSpec("s3", STORE_PORT)],
                env={"S3_BUCKET": self.args.s3_bucket or "", "VGW_REGION": self.args.s3_region},
                secret_env={"ROOT_ACCESS_KEY": access_key, "ROOT_SECRET_KEY": secret_key},
                data=DataVolume(STORE_DATA, self.args.size, retain=protect),
                health=HealthCheck(command=["versitygw-entrypoint.sh", "healthcheck"]),
                clients=[{"app.kubernetes.io/part-of": "pgfleet"}],  # servers and their backup jobs
            ),
            child,
        )

    def _repository_env(self) -> dict[str, pulumi.Input[str]]:
        a = self.args
        env = {
            "PGBACKREST_REPO1_RETENTION_FULL_TYPE": "time",
            "PGBACKREST_REPO1_RETENTION_FULL": str(a.retention_days),
            "PGFLEET_RETENTION_DAYS": str(a.retention_days),
            "PGFLEET_REPOSITORY": REPOSITORY_PATH,
        }
        if a.target == "filesystem":
            env |= {"PGBACKREST_REPO1_TYPE": "posix", "PGBACKREST_REPO1_PATH": f"{REPOSITORY_PATH}/pgbackrest"}
        else:
            env |= {
                "PGBACKREST_REPO1_TYPE": "s3",
                "PGBACKREST_REPO1_PATH": f"/{a.s3_prefix}",
                "PGBACKREST_REPO1_S3_ENDPOINT": self._s3_host or "",
                "PGBACKREST_REPO1_S3_BUCKET": a.s3_bucket or "",
                "PGBACKREST_REPO1_S3_REGION": a.s3_region,
                "PGBACKREST_REPO1_S3_URI_STYLE": "path",
            }
            if self._s3_port is not None:
                env["PGBACKREST_REPO1_STORAGE_PORT"] = str(self._s3_port)
            if not self._verify_tls:
                env["PGBACKREST_REPO1_STORAGE_VERIFY_TLS"] = "n"
        if a.encryption:
            env["PGBACKREST_REPO1_CIPHER_TYPE"] = "aes-256-cbc"
        return env

    def _secret_env(self) -> dict[str, pulumi.Input[str]]:
        secrets: dict[str, pulumi.Input[str]] = {}
        if self.passphrase is not None:
            secrets["PGBACKREST_REPO1_CIPHER_PASS"] = self.passphrase
            secrets["PGFLEET_DUMP_PASSPHRASE"] = self.passphrase
        if self.args.target == "s3":
            for key, value in zip(("PGBACKREST_REPO1_S3_KEY", "PGBACKREST_REPO1_S3_KEY_SECRET"), self._s3_keys):
                if value is not None:
                    secrets[key] = value
        return secrets

    def wiring(self, stanza: str, pgdata: str) -> BackupWiring:
        """Server settings and environment that archive `stanza`'s WAL into this bucket."""
        settings: dict[str, str] = {}
        if self.args.wal_archiving:
            settings = {
                "wal_level": "replica",
                "archive_mode": "on",
                "archive_command": f"pgbackrest --stanza={stanza} archive-push %p",
                "archive_timeout": str(self.args.archive_timeout_s),
            }
        mounts = ((self.storage, REPOSITORY_PATH),) if self.storage else ()
        env = {**self._repository_env(), "PGBACKREST_STANZA": stanza, "PGBACKREST_PG1_PATH": pgdata}
        return BackupWiring(settings=settings, env=env, secret_env=self._secret_env(), mounts=mounts)

    def jobs(
        self,
        name: str,
        server: str,
        image: str,
        primary: RunningProcess,
        pgdata: str,
        admin_username: str,
        admin_password: pulumi.Input[str],
        databases: Sequence[str],
    ) -> list[JobSpec]:
        """The scheduled backups of one server: base backups (PITR) and per-database dumps.

        The base-backup job mounts the primary's data volume, because pgBackRest copies PGDATA
        from the file system; it creates the stanza and a first full backup when deployed, so
        WAL is archived and a restore point exists from the start. Both jobs hold everything
        a restore needs (`pgfleet-backup restore-dump|restore-pitr`).
        """
        wiring = self.wiring(server, pgdata)
        env = {
            **wiring.env,
            "PGHOST": primary.host,
            "PGPORT": str(primary.ports["postgres"]),
            "PGUSER": admin_username,
            "PGFLEET_DATABASES": " ".join(databases),
            "PGBACKREST_START_FAST": "y",  # checkpoint now rather than wait for the next one
            "PGBACKREST_COMPRESS_TYPE": "zst",
            "PGBACKREST_PROCESS_MAX": str(self.args.parallelism),
        }
        secret_env = {**wiring.secret_env, "PGPASSWORD": admin_password}
        jobs = [JobSpec(
            name=f"{name}-dump",
            server=server,
            image=image,
            schedule=self.args.dump_schedule,
            command=[BACKUP_COMMAND, "dump"],
            env=env,
            secret_env=secret_env,
            mounts=wiring.mounts,
            near=primary if wiring.mounts else None,  # a repository volume the primary holds too
            # Where successful backups are recorded (the base job's init makes it otherwise):
            # the exporter's queries read it from the start.
            at_start=None if self.args.wal_archiving else [BACKUP_COMMAND, "prepare"],
        )]
        if self.args.wal_archiving:
            jobs.append(JobSpec(
                name=f"{name}-base",
                server=server,
                image=image,
                schedule=self.args.base_backup_schedule,
                command=[BACKUP_COMMAND, "base", "full"],
                env=env,
                secret_env=secret_env,
                mounts=wiring.mounts,
                data=DataMount(primary, posixpath.dirname(pgdata)),
                at_start=[BACKUP_COMMAND, "init"],
            ))
        return jobs


def split_endpoint(endpoint: str) -> tuple[str, int | None]:
    """'https://host:port', 'host:port' or 'host' as pgBackRest's endpoint host and port."""
    rest = endpoint.removeprefix("https://").rstrip("/")
    host, _, port = rest.partition(":")
    return host, int(port) if port else None
