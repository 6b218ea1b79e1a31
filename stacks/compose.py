"""Composes the components from a checked `StackConfig` on any platform."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pulumi
import pulumi_random as random
import pulumi_vault as vault

from pgfleet.components import (
    BackupBucket,
    BackupBucketArgs,
    CertificateAuthority,
    CertificateAuthorityArgs,
    IsolatedDatabase,
    IsolatedDatabaseArgs,
    PoolerArgs,
    RedisCache,
    RedisCacheArgs,
    ServerConnection,
    ServerTlsArgs,
    ServiceProvisioner,
    ServiceProvisionerArgs,
    SharedServer,
    SharedServerArgs,
    VaultAppRole,
    VaultAppRoleArgs,
)
from pgfleet.components.platform import HealthCheck, Platform, PortSpec, ProcessSpec
from pgfleet.observability import MonitoringPlan
from pgfleet.observability import plan as monitoring_plan
from pgfleet.observability.queries import queries_yaml

from . import outputs
from .config import ConfigError, Problem, ServerSettings, ServiceConfig, StackConfig
from .config.types import duration_ms, duration_s

VAULT_PORT = 8200


@dataclass
class Deployment:
    """What a stack built, by name: for exports and for tests."""

    servers: dict[str, SharedServer] = field(default_factory=dict)
    databases: dict[str, IsolatedDatabase] = field(default_factory=dict)
    approles: dict[str, VaultAppRole] = field(default_factory=dict)
    connections: dict[str, ServerConnection] = field(default_factory=dict)
    """Per service: the server its database is on."""
    redis_urls: dict[str, pulumi.Input[str]] = field(default_factory=dict)
    """Per service with a Redis database: its URL (secret)."""
    provisioners: dict[str, ServiceProvisioner] = field(default_factory=dict)
    """Per service stack: its provisioner on its server and in Vault."""
    backup: BackupBucket | None = None
    redis: RedisCache | None = None
    vault_address: pulumi.Output[str] | None = None
    vault_root_token: pulumi.Output[str] | None = None
    vault_token: pulumi.Output[str] | None = None
    """The token the stack writes to Vault with (the managed Vault's root token, or vaultToken)."""
    authority: CertificateAuthority | None = None
    ca_secret: pulumi.Output[str] | None = None
    """Kubernetes: '<namespace>/<name>' of the Secret that holds the CA for the service pods."""
    local_ca_path: str | None = None
    """Docker: the file on this machine that `local_url` names for the CA."""
    monitoring: MonitoringPlan | None = None
    """What the stack's Prometheus and Grafana watch: the platform's stack publishes it."""


def check_secrets(config: StackConfig, secrets: Mapping[str, object]) -> None:
    """Secret keys the config needs, checked with the rest before any resource exists."""
    problems = []
    if config.vault.mode == "external" and "vaultToken" not in secrets:
        problems.append(Problem("vaultToken", "required with vault.mode 'external': pulumi config set --secret vaultToken ..."))
    if config.backup.enabled and config.backup.target.kind == "s3" and not config.backup.target.managed:
        for key in ("backupS3AccessKey", "backupS3SecretKey"):
            if key not in secrets:
                problems.append(Problem(key, f"required with backup.target.kind 's3': pulumi config set --secret {key} ..."))
    if (config.platform == "kubernetes" and config.backup.enabled and config.backup.encryption
            and "backupPassphrase" not in secrets):
        problems.append(Problem("backupPassphrase", (
            "required on kubernetes with backup.encryption: the backups and the data outlive the stack, so the "
            "passphrase must too (a generated one would go with the state): pulumi config set --secret "
            "backupPassphrase ...")))
    if config.platform == "docker":
        for name, server, _ in config.resolved_servers():
            if server.port is None:
                problems.append(Problem(
                    f"server {name!r} port",
                    "required on docker: the program reaches the server through its 127.0.0.1 port",
                ))
    if problems:
        raise ConfigError(problems)


def _vault_provider(stack: str, config: StackConfig, platform: Platform,
                    secrets: Mapping[str, pulumi.Output[str]], deployment: Deployment) -> vault.Provider:
    if config.vault.mode == "external":
        deployment.vault_address = pulumi.Output.from_input(config.vault.address or "")
        deployment.vault_token = secrets["vaultToken"]
        return vault.Provider(f"{stack}-vault", address=config.vault.address, token=secrets["vaultToken"],
                              skip_child_token=True)
    token = pulumi.Output.secret(random.RandomPassword(f"{stack}-vault-root-token", length=32, special=False).result)
    server = platform.run(
        ProcessSpec(
            name=f"{stack}-vault",
            role="vault",
            server=f"{stack}-vault",
            image=config.images.vault,
            ports=[PortSpec("http", VAULT_PORT, config.vault.port)],
            # The dev server keeps its data in memory: right for a laptop, never for prod.
            env={"BAO_ADDR": f"http://127.0.0.1:{VAULT_PORT}", "VAULT_ADDR": f"http://127.0.0.1:{VAULT_PORT}"},
            secret_env={"BAO_DEV_ROOT_TOKEN_ID": token, "VAULT_DEV_ROOT_TOKEN_ID": token},
            health=HealthCheck(command=[config.vault.cli, "status"]),
            clients=[s.pod_selector for s in config.services],
        ),
        pulumi.ResourceOptions(),
    )
    assert server.admin_host is not None, "vault.port is always published"
    address = pulumi.Output.concat("http://", server.admin_host, ":", str(server.admin_ports["http"]))
    deployment.vault_address = address
    deployment.vault_root_token = deployment.vault_token = token
    return vault.Provider(f"{stack}-vault", address=address, token=token, skip_child_token=True,
                          opts=pulumi.ResourceOptions(depends_on=list(server.resources)))


def _authority(stack: str, config: StackConfig, opts: pulumi.ResourceOptions) -> CertificateAuthority | None:
    tls = config.tls
    if not tls.enabled:
        return None
    return CertificateAuthority(
        f"{stack}-ca",
        CertificateAuthorityArgs(
            mount_path=tls.pki_mount,
            common_name=f"{stack} {pulumi.get_stack()} CA",
            ca_ttl_s=duration_s(tls.ca_ttl),
            max_cert_ttl_s=duration_s(tls.cert_ttl),
        ),
        opts,
    )


def _server_tls(config: StackConfig, authority: CertificateAuthority | None) -> ServerTlsArgs | None:
    """Every server's TLS: the same CA, lifetimes and rotation token."""
    if authority is None:
        return None
    tls = config.tls
    return ServerTlsArgs(
        authority=authority,
        cert_ttl_s=duration_s(tls.cert_ttl),
        renew_before_s=duration_s(tls.renew_before),
        required=tls.require,
        rotation=tls.rotation,
    )


def _server_args(config: StackConfig, platform: Platform, name: str, settings: ServerSettings,
                 services: list, backup: BackupBucket | None, tls: ServerTlsArgs | None,
                 monitoring: MonitoringPlan) -> SharedServerArgs:
    images = config.images
    watched = monitoring.server(name)
    return SharedServerArgs(
        platform=platform,
        image=images.postgres,
        host_port=settings.port,
        host_name=settings.host,
        storage=settings.storage,
        replicas=settings.replicas,
        read_host_port=settings.read_port,
        max_connections=settings.max_connections,
        admin_username=settings.admin_user,
        extensions=tuple(settings.extensions),
        settings=dict(settings.settings),
        # service stacks' pods carry the default label, {'app': <name>}
        clients=[s.pod_selector for s in services]
        + [{"app": s.name.replace("_", "-")} for s in config.service_stacks if config.server_of_stack(s) == name],
        databases=[s.database_name for s in services],
        pooler=PoolerArgs(
            image=images.pgbouncer,
            host_port=settings.pooler.port,
            pool_mode=settings.pooler.pool_mode,
            default_pool_size=settings.pooler.default_pool_size,
            max_client_conn=settings.pooler.max_client_conn,
        ) if settings.pooler.enabled else None,
        exporter_image=images.exporter if settings.metrics.enabled else None,
        exporter_host_port=settings.metrics.port,
        exporter_queries=queries_yaml(watched, monitoring) if watched else None,
        # The 0.11 exporter's bgwriter collector reads columns PostgreSQL 17 moved to pg_stat_checkpointer.
        exporter_args=["--no-collector.bgwriter"] if settings.version >= 17 else [],
        backup=backup,
        backup_image=images.backup if backup else None,
        cpu=settings.cpu,
        memory=settings.memory,
        tls=tls,
    )


def _backup(stack: str, config: StackConfig, platform: Platform,
            secrets: Mapping[str, pulumi.Output[str]]) -> BackupBucket | None:
    policy = config.backup
    if not policy.enabled:
        return None
    return BackupBucket(
        f"{stack}-backup",
        BackupBucketArgs(
            platform=platform,
            target=policy.target.kind,
            size=policy.target.size,
            s3_endpoint=policy.target.endpoint,
            s3_bucket=policy.target.bucket or (f"{stack}-backups" if policy.target.managed else None),
            s3_verify_tls=policy.target.verify_tls,
            store_image=config.images.object_store if policy.target.managed else None,
            s3_region=policy.target.region,
            s3_prefix=policy.target.prefix,
            s3_access_key=secrets.get("backupS3AccessKey"),
            s3_secret_key=secrets.get("backupS3SecretKey"),
            passphrase=secrets.get("backupPassphrase"),
            dump_schedule=policy.dump_schedule,
            base_backup_schedule=policy.base_backup_schedule,
            retention_days=policy.retention_days,
            encryption=policy.encryption,
            wal_archiving=policy.wal_archiving,
            archive_timeout_s=duration_s(policy.archive_timeout),
        ),
    )


def local_directory(stack: str | None = None) -> Path:
    """Where a Docker stack (`stack`, this one by default) keeps files on this machine."""
    return Path.home() / ".pgfleet" / pulumi.get_project() / (stack or pulumi.get_stack())


def local_ca_path(config: StackConfig, stack: str | None = None) -> str:
    """Where a Docker stack (`stack`, this one by default) writes its CA for `local_url` on this machine."""
    return config.tls.local_ca_path or str(local_directory(stack) / "ca.crt")


def build(stack: str, config: StackConfig, platform: Platform,
          secrets: Mapping[str, pulumi.Output[str]]) -> Deployment:
    """Create every resource the config describes and export what services need.

    Call `check_secrets` first, before the platform registers anything."""
    deployment = Deployment()
    vault_provider = _vault_provider(stack, config, platform, secrets, deployment)
    with_vault = pulumi.ResourceOptions(provider=vault_provider)
    kv = vault.Mount(f"{stack}-kv", path=config.vault.kv_mount, type="kv", options={"version": "2"},
                     description="Per-service credentials written by pgfleet", opts=with_vault)
    approle = vault.AuthBackend(f"{stack}-approle", type="approle", path=config.vault.approle_path, opts=with_vault)
    authority = deployment.authority = _authority(stack, config, with_vault)
    if authority is not None and platform.kind == "docker":
        deployment.local_ca_path = local_ca_path(config)
    if authority is not None and platform.kind == "kubernetes":
        # The CA beside each service's credentials, for its pods to mount at tls.ca_path.
        deployment.ca_secret = platform.store_secret(
            f"{stack}-ca", {"ca.crt": authority.ca_certificate}, pulumi.ResourceOptions())

    deployment.backup = _backup(stack, config, platform, secrets)
    redis_services = [(s.name, s.redis.db) for s in config.services if s.redis is not None]
    if config.redis.enabled:
        deployment.redis = RedisCache(
            f"{stack}-redis",
            RedisCacheArgs(
                platform=platform,
                image=config.images.redis,
                services=redis_services,
                host_port=config.redis.port,
                clients=[s.pod_selector for s in config.services if s.redis is not None],
                maxmemory=config.redis.maxmemory,
                maxmemory_policy=config.redis.maxmemory_policy,
                appendonly=config.redis.appendonly,
                storage=config.redis.storage,
            ),
        )

    server_tls = _server_tls(config, authority)
    monitoring = deployment.monitoring = monitoring_plan(pulumi.get_stack(), config)
    for name, settings, services in config.resolved_servers():
        deployment.servers[name] = SharedServer(
            name, _server_args(config, platform, name, settings, services, deployment.backup, server_tls, monitoring)
        )

    if not config.service_groups:  # else the group stacks make them (stacks/group.py)
        targets = ServiceTargets(
            kv_mount=kv.path, approle_path=approle.path, vault=with_vault,
            ca_certificate=authority.ca_certificate if authority is not None else None,
            local_ca_path=deployment.local_ca_path,
            secret_id_platform=platform if platform.kind == "kubernetes" else None,
        )
        for service in config.services:
            redis_url = deployment.redis.urls.get(service.name) if deployment.redis is not None else None
            build_service(config, service, deployment.servers[config.server_of(service)].connection,
                          targets, deployment, redis_url)
    for entry in config.service_stacks:
        deployment.provisioners[entry.name] = ServiceProvisioner(
            f"{entry.name}-provisioner",
            ServiceProvisionerArgs(
                server=deployment.servers[config.server_of_stack(entry)].connection,
                service=entry.name,
                kv_mount=kv.path,
                approle_path=config.vault.approle_path,
                connection_limit=entry.connection_limit,
                token_ttl_s=duration_s(entry.token_ttl),
            ),
            opts=with_vault,
        )
    outputs.export(config, deployment)
    return deployment


@dataclass
class ServiceTargets:
    """Where every service's credentials go, and what its URLs name."""

    kv_mount: pulumi.Input[str]
    approle_path: pulumi.Input[str]
    vault: pulumi.ResourceOptions
    """Options with the Vault provider."""
    ca_certificate: pulumi.Input[str] | None
    local_ca_path: str | None
    secret_id_platform: Platform | None
    """Kubernetes: where each AppRole's secret_id is kept for the service's pods."""


def build_service(config: StackConfig, service: ServiceConfig, server: ServerConnection, targets: ServiceTargets,
                  deployment: Deployment, redis_url: pulumi.Input[str] | None = None) -> None:
    """One service's database and roles on `server`, and its AppRole and credentials in Vault."""
    database = IsolatedDatabase(
        service.name,
        IsolatedDatabaseArgs(
            server=server,
            service=service.name,
            database=service.database_name,
            schema=service.schema,
            app_username=service.app_role,
            connection_limit=service.connection_limit,
            statement_timeout_ms=duration_ms(service.statement_timeout),
            idle_in_transaction_timeout_ms=duration_ms(service.idle_in_transaction_timeout),
            protect=config.protect_stateful,
            ca_path=config.tls.ca_path,
            local_ca_path=targets.local_ca_path,
        ),
    )
    deployment.databases[service.name] = database
    deployment.connections[service.name] = server
    values = database.credentials()
    if targets.ca_certificate is not None:
        values["DATABASE_CA_CERT"] = pulumi.Output.from_input(targets.ca_certificate)
    if redis_url is not None:
        values["REDIS_URL"] = pulumi.Output.from_input(redis_url)
        deployment.redis_urls[service.name] = redis_url
    deployment.approles[service.name] = VaultAppRole(
        service.name,
        VaultAppRoleArgs(
            service=service.name,
            kv_mount=targets.kv_mount,
            approle_backend=targets.approle_path,
            secrets=values,
            token_ttl_s=duration_s(config.vault.token_ttl),
            token_max_ttl_s=duration_s(config.vault.token_max_ttl),
            secret_id_ttl_s=duration_s(config.vault.secret_id_ttl),
            secret_id_num_uses=config.vault.secret_id_num_uses,
            bind_cidrs=list(service.vault.bind_cidrs),
            secret_id_platform=targets.secret_id_platform,
        ),
        opts=targets.vault,
    )
