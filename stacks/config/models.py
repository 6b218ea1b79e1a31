"""The stack config as pydantic models: one class per config section.

Field-level rules live here; rules that relate several sections live in `checks.py`.
"""
from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from .types import (
    Cidr,
    CronSchedule,
    DatabaseName,
    DnsLabel,
    DnsSubdomain,
    Duration,
    Identifier,
    LabelKey,
    LabelValue,
    LoopbackAddress,
    MemorySize,
    Port,
    Quantity,
    RoleName,
    S3Bucket,
    SchemaName,
    ServiceName,
    StorageSize,
    duration_ms,
)


class _Section(BaseModel):
    # Unknown keys are errors: a typo must not silently fall back to a default.
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class PoolerConfig(_Section):
    """PgBouncer in front of a server."""

    enabled: bool = False
    port: Port | None = Field(None, description="Host port on the dev bind address; unpublished when unset.")
    pool_mode: Literal["session", "transaction", "statement"] = "transaction"
    default_pool_size: int = Field(20, ge=1, le=1000)
    max_client_conn: int = Field(200, ge=1, le=100_000)


class MetricsConfig(_Section):
    """The Prometheus postgres exporter beside a server."""

    enabled: bool = True
    port: Port | None = Field(None, description="Host port on the dev bind address; unpublished when unset.")


class ServerSettings(_Section):
    """How one PostgreSQL server runs. A dedicated service carries these inline."""

    version: Literal[15, 16, 17] = 15
    host: DnsLabel | None = Field(
        None, description="Host name of the server (container, Service; its helpers add -read, -pooler, "
        "-metrics): what its URLs name. The server's name by default."
    )
    port: Port | None = Field(
        None, description="Host port on the dev bind address (the in-cluster port is always 5432)."
    )
    storage: StorageSize = "10Gi"
    replicas: int = Field(0, ge=0, le=5, description="Read replicas streaming from the primary.")
    read_port: Port | None = Field(None, description="Host port of the read endpoint (first replica).")
    max_connections: int = Field(100, ge=10, le=10_000)
    admin_user: RoleName = Field("postgres", description="The server's superuser; its password is generated.")
    extensions: list[Identifier] = Field(
        default_factory=lambda: ["pg_stat_statements"],
        description="shared_preload_libraries; checked against the libraries of the image (checks.py).",
    )
    settings: dict[str, str] = Field(
        default_factory=dict,
        description="Extra postgresql.conf settings; names and values checked against the image (checks.py).",
    )
    pooler: PoolerConfig = PoolerConfig()
    metrics: MetricsConfig = MetricsConfig()
    cpu: Quantity = "500m"
    memory: Quantity = "1Gi"

    @model_validator(mode="after")
    def _read_port_needs_replica(self) -> ServerSettings:
        if self.read_port is not None and self.replicas == 0:
            raise ValueError("read_port is set but replicas is 0: add a replica or drop read_port")
        return self


class ServerConfig(ServerSettings):
    """A named server that several services share."""

    name: Identifier


class ClientPoolConfig(_Section):
    """The service's own client-side pool (TypeORM, SQLAlchemy, ...), checked against the role limit."""

    min: int = Field(2, ge=0)
    max: int = Field(10, ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> ClientPoolConfig:
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) is above max ({self.max})")
        return self


class ServiceRedisConfig(_Section):
    """A service's slice of the shared Redis: an ACL user limited to keys '<service>:*'."""

    db: int = Field(0, ge=0, le=15, description="Database index in the URL (0-15); isolation is by ACL.")


class ServiceVaultConfig(_Section):
    bind_cidrs: list[Cidr] = Field(default_factory=list, description="CIDRs allowed to log in with the AppRole.")


class ServiceConfig(_Section):
    """One microservice and the database it owns."""

    name: ServiceName
    topology: Literal["shared", "dedicated"] = "shared"
    server: Identifier | None = Field(None, description="The shared server (required with several servers).")
    dedicated: ServerSettings | None = Field(None, description="Server settings when topology is dedicated.")
    database: DatabaseName | None = Field(None, description="Database name; '<name>_db' by default.")
    schema_name: SchemaName | None = Field(None, alias="schema", description="Schema; the service name by default.")
    app_user: RoleName | None = Field(None, description="Runtime login role; '<name>_user' by default.")
    connection_limit: int = Field(20, ge=1, le=10_000)
    statement_timeout: Duration = "30s"
    idle_in_transaction_timeout: Duration = "60s"
    pool: ClientPoolConfig = ClientPoolConfig()
    redis: ServiceRedisConfig | None = None
    vault: ServiceVaultConfig = ServiceVaultConfig()
    pod_labels: dict[LabelKey, LabelValue] = Field(
        default_factory=dict, description="Labels of the service's pods in prod; {'app': <name>} by default."
    )

    @property
    def database_name(self) -> str:
        return self.database or f"{self.name}_db"

    @property
    def schema(self) -> str:
        return self.schema_name or self.name

    @property
    def app_role(self) -> str:
        return self.app_user or f"{self.name}_user"

    @property
    def pod_selector(self) -> dict[str, str]:
        return self.pod_labels or {"app": self.name.replace("_", "-")}


class ServiceStackConfig(_Section):
    """A service whose own Pulumi stack declares its database and AppRole (`ServiceDatabase`):
    this stack gives it a provisioner on its server and a Vault policy and token role of its own."""

    name: ServiceName
    server: Identifier | None = Field(None, description="The shared server (required with several servers).")
    connection_limit: int = Field(4, ge=1, le=100, description="Sessions of the provisioner itself (deploys).")
    token_ttl: Duration = Field("1h", description="Lifetime of a deploy's Vault token from its token role.")


class VaultConfig(_Section):
    """Where credentials live and how services log in to read them."""

    cli: Literal["bao", "vault"] = Field("bao", description="The server image's CLI, for its health check.")
    mode: Literal["managed", "external"] = Field(
        "managed", description="managed: the stack runs a Vault-API server; external: use 'address'."
    )
    address: str | None = Field(None, description="URL of an external Vault or OpenBao.")
    port: Port = Field(8200, description="Host port of the managed server on the dev bind address.")
    kv_mount: str = Field("services", pattern=r"^[a-z][a-z0-9_-]{0,62}$")
    approle_path: str = Field("approle", pattern=r"^[a-z][a-z0-9_-]{0,62}$")
    token_ttl: Duration = "15m"
    token_max_ttl: Duration = "1h"
    secret_id_ttl: Duration = "24h"
    secret_id_num_uses: int = Field(10, ge=1, le=1000)

    @model_validator(mode="after")
    def _consistent(self) -> VaultConfig:
        if self.mode == "external" and not self.address:
            raise ValueError("mode 'external' needs 'address', e.g. 'https://vault.example:8200'")
        if self.address and not self.address.startswith(("http://", "https://")):
            raise ValueError(f"address {self.address!r} must start with http:// or https://")
        if duration_ms(self.token_ttl) > duration_ms(self.token_max_ttl):
            raise ValueError(f"token_ttl ({self.token_ttl}) is longer than token_max_ttl ({self.token_max_ttl})")
        return self


class BackupTargetConfig(_Section):
    """Where backups are stored: a volume of the platform, or any S3-compatible endpoint."""

    kind: Literal["filesystem", "s3"] = "filesystem"
    managed: bool = Field(False, description="kind 's3': the stack runs its own S3-compatible store "
                                             "(images.object_store) with generated keys; for dev.")
    size: StorageSize = Field("20Gi", description="The repository volume (filesystem, or the managed store's).")
    endpoint: str | None = Field(None, description="'host', 'host:port' or 'https://host[:port]'.")
    bucket: S3Bucket | None = None
    region: str = "us-east-1"
    prefix: str = Field("pgfleet", pattern=r"^[A-Za-z0-9][A-Za-z0-9_./-]*$")
    verify_tls: bool = True

    @model_validator(mode="after")
    def _s3_complete(self) -> BackupTargetConfig:
        if self.managed and self.kind != "s3":
            raise ValueError("'managed' is for kind 's3' (a filesystem repository is always the stack's own)")
        if self.managed and self.endpoint:
            raise ValueError("a managed store has no 'endpoint' to give: the stack runs it")
        if self.kind == "s3" and not self.managed and not (self.endpoint and self.bucket):
            raise ValueError("kind 's3' needs both 'endpoint' and 'bucket' (or managed: true on dev)")
        if self.endpoint and "://" in self.endpoint and not self.endpoint.startswith("https://"):
            raise ValueError(f"endpoint {self.endpoint!r}: pgBackRest reaches S3 over https only")
        if self.endpoint and not re.fullmatch(r"(https://)?[A-Za-z0-9.-]+(:\d{1,5})?/?", self.endpoint):
            raise ValueError(f"endpoint {self.endpoint!r} is not 'host', 'host:port' or 'https://host[:port]'")
        return self


class BackupConfig(_Section):
    """Backup policy: base backups plus WAL for PITR, per-database dumps, retention, encryption."""

    enabled: bool = True
    target: BackupTargetConfig = BackupTargetConfig()
    dump_schedule: CronSchedule = Field("0 0 * * *", description="Per-database pg_dump; daily 00:00 UTC.")
    base_backup_schedule: CronSchedule = Field("0 1 * * 0", description="Physical base backup; weekly.")
    retention_days: int = Field(30, ge=1, le=3650)
    encryption: bool = True
    wal_archiving: bool = True
    archive_timeout: Duration = "60s"
    rpo: Duration | None = Field("5m", description="Most data a crash may lose; checked against the WAL settings.")

    @model_validator(mode="after")
    def _rpo_reachable(self) -> BackupConfig:
        if not self.enabled or self.rpo is None:
            return self
        if not self.wal_archiving:
            raise ValueError(f"rpo {self.rpo} needs wal_archiving: dumps alone lose up to a whole schedule period")
        if duration_ms(self.archive_timeout) > duration_ms(self.rpo):
            raise ValueError(
                f"archive_timeout {self.archive_timeout} cannot meet rpo {self.rpo}: "
                "set archive_timeout at or below the rpo"
            )
        return self


class TlsConfig(_Section):
    """TLS on every database connection, with certificates from the stack's own CA (Vault's
    PKI engine in the stack's Vault)."""

    enabled: bool = Field(True, description="Serve TLS on every server, replica and pooler; URLs verify it.")
    require: bool = Field(True, description="Refuse plain connections from the network (hostssl); a dev stack may turn it off.")
    pki_mount: str = Field("pgfleet-pki", pattern=r"^[a-z][a-z0-9_-]{0,62}$",
                           description="Where the stack mounts its PKI secrets engine.")
    ca_ttl: Duration = Field("87600h", description="Lifetime of the stack's root CA.")
    cert_ttl: Duration = Field("720h", description="Lifetime of each server certificate.")
    renew_before: Duration = Field("168h", description="`pulumi up` renews a certificate this long before it expires.")
    rotation: str = Field("", max_length=64, pattern=r"^[A-Za-z0-9_.:-]*$",
                          description="A token: a new value renews every certificate at the next `pulumi up`.")
    ca_path: str = Field("/etc/pgfleet/ca.crt", pattern=r"^/[^\s?&#]*$",
                         description="Where the services find the CA certificate; the URLs name it.")
    local_ca_path: str | None = Field(
        None, pattern=r"^/[^\s?&#]*$",
        description="Docker: where the stack writes the CA for local_url; ~/.pgfleet/<project>/<stack>/ca.crt by default.")

    @model_validator(mode="after")
    def _lifetimes_fit(self) -> TlsConfig:
        if duration_ms(self.cert_ttl) > duration_ms(self.ca_ttl):
            raise ValueError(f"cert_ttl {self.cert_ttl} outlives ca_ttl {self.ca_ttl}: set cert_ttl at or below ca_ttl")
        if duration_ms(self.renew_before) >= duration_ms(self.cert_ttl):
            raise ValueError(f"renew_before {self.renew_before} is not below cert_ttl {self.cert_ttl}: a certificate "
                             "would be due the moment it is issued (to renew now, set a new tls.rotation)")
        return self


class RedisConfig(_Section):
    """One Redis shared by the stack's services, each an ACL user on its own key prefix."""

    enabled: bool = False
    port: Port | None = Field(6379, description="Host port on the dev bind address.")
    maxmemory: MemorySize = "256mb"
    maxmemory_policy: Literal[
        "noeviction", "allkeys-lru", "allkeys-lfu", "volatile-lru", "volatile-lfu", "allkeys-random", "volatile-ttl"
    ] = "allkeys-lru"
    appendonly: bool = True
    storage: StorageSize = "1Gi"


class AlertsConfig(_Section):
    """When the alert rules fire."""

    pending: Duration = Field("5m", description="How long a condition must hold before its alert fires ('for').")
    connection_usage: float = Field(
        0.8, gt=0, le=1, description="Share of a role's connection limit (or a server's max_connections) that alerts."
    )
    disk_usage: float = Field(0.85, gt=0, le=1, description="Share of a server's storage that alerts.")
    backup_grace: Duration = Field(
        "1h", description="How late a scheduled backup may be before it alerts (added to its schedule's longest gap)."
    )


class MonitoringConfig(_Section):
    """What Prometheus scrapes and alerts on, and Grafana shows: pgfleet's exporter queries, scrape
    configuration, alert rules and dashboards for every server whose exporter runs (metrics)."""

    enabled: bool = True
    scrape_interval: Duration = Field("15s", description="How often Prometheus scrapes and evaluates the rules.")
    slow_query: Duration = Field(
        "500ms", description="A statement whose mean execution time reaches this counts as slow (pg_stat_statements)."
    )
    directory: str | None = Field(
        None, description="Docker: where `pulumi up` writes prometheus.yml, the rules and Grafana's files; "
        "~/.pgfleet/<project>/<stack>/monitoring by default.",
    )
    kubernetes: Literal["annotations", "operator"] = Field(
        "annotations", description="Kubernetes: 'annotations' (prometheus.io/* on the exporter pods, the rules and "
        "a scrape job in a ConfigMap: plain Prometheus) or 'operator' (PodMonitor and PrometheusRule objects: "
        "the Prometheus Operator, whose CRDs must be installed). Dashboards are ConfigMaps for Grafana's sidecar.",
    )
    alerts: AlertsConfig = AlertsConfig()


class ImagesConfig(_Section):
    """Container images; point them at a registry's upstream images where one is reachable."""

    postgres: str = "pgfleet/postgres:15"
    pgbouncer: str = "pgfleet/pgbouncer:1.18"
    exporter: str = "pgfleet/postgres-exporter:0.11"
    redis: str = "pgfleet/redis:7"
    vault: str = "pgfleet/openbao:2.6"
    backup: str = "pgfleet/postgres:15"
    object_store: str = "pgfleet/versitygw:1.8"


class DockerConfig(_Section):
    network: DnsLabel = "pgfleet"
    prefix: str = Field("", pattern=r"^([a-z0-9][a-z0-9_.-]{0,30})?$",
                        description="Put before container and volume names (several stacks on one engine).")
    bind_address: LoopbackAddress = "127.0.0.1"
    images: ImagesConfig = ImagesConfig()


class KubernetesConfig(_Section):
    namespace: DnsLabel = "databases"
    create_namespace: bool = True
    services_namespace: DnsLabel | None = Field(
        None, description="Namespace of the service pods the NetworkPolicies admit; the same one by default."
    )
    storage_class: DnsSubdomain | None = None
    admin_endpoints: dict[str, str] = Field(
        default_factory=dict,
        description="Process name -> 'host:port' the program dials instead (a LoadBalancer, a tunnel).",
    )
    admin_access: Literal["auto", "forward", "direct"] = Field(
        "auto",
        description="How the program reaches each primary: 'forward' (a port-forward through the API "
        "server, for a runner outside the cluster), 'direct' (Service DNS, a runner in the cluster); "
        "'auto': direct inside a pod, else forward.",
    )

    @model_validator(mode="after")
    def _endpoints_have_ports(self) -> KubernetesConfig:
        for process, endpoint in self.admin_endpoints.items():
            host, _, port = endpoint.rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"admin_endpoints[{process!r}] = {endpoint!r} is not 'host:port'")
        return self
    images: ImagesConfig = ImagesConfig()


class StackConfig(_Section):
    """The whole stack: platform, servers, services, Vault, backups, Redis."""

    platform: Literal["docker", "kubernetes"] = "docker"
    protect: bool | Literal["auto"] = Field("auto", description="Protect stateful resources; 'auto': on for kubernetes.")
    servers: list[ServerConfig] = Field(default_factory=list)
    # before `services`, whose check reads it
    service_stacks: list[ServiceStackConfig] = Field(
        default_factory=list, description="Services whose teams declare their databases in stacks of their own."
    )
    services: list[ServiceConfig] = Field(default_factory=list, validate_default=True)
    service_groups: int = Field(
        0, ge=0, le=256,
        description="Keep `services` in this many stacks of their own ('<stack>-services-<k>', each "
                    "with its own state, brought up by pgfleet-fleet after this one); 0: in this stack.",
    )
    vault: VaultConfig = VaultConfig()
    backup: BackupConfig = BackupConfig()
    redis: RedisConfig = RedisConfig()
    tls: TlsConfig = TlsConfig()
    monitoring: MonitoringConfig = MonitoringConfig()
    docker: DockerConfig = DockerConfig()
    kubernetes: KubernetesConfig = KubernetesConfig()

    @field_validator("services")
    @classmethod
    def _has_services(cls, services: list[ServiceConfig], info: ValidationInfo) -> list[ServiceConfig]:
        if not services and not info.data.get("service_stacks"):
            raise ValueError("Field required: declare at least one service (or one under service_stacks)")
        return services

    def server_of_stack(self, entry: ServiceStackConfig) -> str:
        """The server a service stack's database goes on (the only one by default)."""
        if entry.server is not None:
            return entry.server
        if len(self.servers) == 1:
            return self.servers[0].name
        raise ValueError(f"service stack {entry.name!r} names no server and the stack has {len(self.servers)}")

    @property
    def images(self) -> ImagesConfig:
        """The images of the stack's platform."""
        return self.docker.images if self.platform == "docker" else self.kubernetes.images

    @property
    def protect_stateful(self) -> bool:
        return self.platform == "kubernetes" if self.protect == "auto" else self.protect

    def server_of(self, service: ServiceConfig) -> str:
        """The server a service's database lives on (its own when dedicated, the only one by default)."""
        if service.topology == "dedicated":
            return service.name
        if service.server is not None:
            return service.server
        if len(self.servers) == 1:
            return self.servers[0].name
        raise ValueError(f"service {service.name!r} names no server and the stack has {len(self.servers)}")

    def resolved_servers(self) -> list[tuple[str, ServerSettings, list[ServiceConfig]]]:
        """(server name, settings, services on it), shared servers first, in config order."""
        placed: list[tuple[str, ServerSettings, list[ServiceConfig]]] = [
            (server.name, server, [s for s in self.services if s.topology == "shared" and self.server_of(s) == server.name])
            for server in self.servers
        ]
        placed += [
            (service.name, service.dedicated or ServerSettings(), [service])
            for service in self.services
            if service.topology == "dedicated"
        ]
        return placed
