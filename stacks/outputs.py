"""Stack output keys (a contract with service stacks that read them by StackReference)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pulumi

from pgfleet.components import ServerConnection
from pgfleet.components.service_provisioner import TOPOLOGY_OUTPUT, topology_entry

from .config.groups import group_stacks
from .config.names import JOB_SUFFIXES, placed_servers

if TYPE_CHECKING:
    from .compose import Deployment
    from .config import StackConfig

#: Per service, plain: database, server, hosts, Vault secret path, policy and role_id.
SERVICES = "services"
#: Per service, secret: URLs in each driver form, for the write and the read host.
CONNECTION_URLS = "connection_urls"
#: Per service, secret: the AppRole secret_id, kept apart from the role_id.
VAULT_SECRET_IDS = "vault_secret_ids"
#: Plain: Vault address, KV mount and AppRole path.
VAULT = "vault"
#: Secret: the managed (dev) Vault's root token.
VAULT_ROOT_TOKEN = "vault_root_token"
#: Per server, plain: hosts and the admin user; secret: admin passwords.
SERVERS = "servers"
SERVER_ADMIN_PASSWORDS = "server_admin_passwords"
#: Plain: where the stack runs and the names of each server's objects there (pgfleet-restore
#: finds a stack's servers and backup jobs from it, so no operator flag can point elsewhere).
PLATFORM = "platform"
#: Plain: the stack's CA certificate and where clients find it (TLS on, required).
TLS = "tls"
#: Per service stack, plain: what its `ServiceDatabase` reads (hosts, ports, Vault paths).
SERVICE_STACKS = TOPOLOGY_OUTPUT
#: Plain, with service_groups: each group stack's name and the services it holds.
SERVICE_GROUP_STACKS = "service_group_stacks"
#: Secret, with service_groups: what the group stacks provision with (servers and their admin
#: logins, Vault and its token, the CA, Redis URLs).
SERVICE_GROUPS = "service_groups"
#: A group stack's, plain: what its last `up` was made from (stacks/config/groups.py).
GROUP_FINGERPRINT = "group_fingerprint"


def export_services(deployment: Deployment) -> None:
    """Each service's plain facts, its URLs and its AppRole secret_id (the platform stack's, or
    a group stack's for the services it holds)."""
    services = {}
    urls = {}
    for name, database in deployment.databases.items():
        approle = deployment.approles[name]
        server = deployment.connections[name]
        services[name] = {
            "database": database.database_name,
            "server": server.name,
            "write_host": server.host,
            "read_host": server.read_host,
            "port": server.port,
            "pooler_host": server.pooler_host,
            "vault_secret_path": approle.secret_path,
            "vault_policy": approle.policy_name,
            "vault_role_id": approle.role_id,
            "vault_secret_id_ref": approle.secret_id_reference,
        }
        entry = {
            "url": database.url,
            "read_url": database.read_url,
            **{scheme: database.urls[scheme] for scheme in database.urls},
            **{f"read+{scheme}": database.read_urls[scheme] for scheme in database.read_urls},
            "migration_url": database.migration_url,
        }
        if database.pooled_url is not None:
            entry["pooled_url"] = database.pooled_url
        if database.local_url is not None:
            entry["local_url"] = database.local_url
        if name in deployment.redis_urls:
            entry["redis_url"] = deployment.redis_urls[name]
        urls[name] = entry
    pulumi.export(SERVICES, services)
    pulumi.export(CONNECTION_URLS, pulumi.Output.secret(urls))
    pulumi.export(VAULT_SECRET_IDS, pulumi.Output.secret(
        {name: approle.secret_id for name, approle in deployment.approles.items()}
    ))


def export(config: StackConfig, deployment: Deployment) -> None:
    export_services(deployment)
    pulumi.export(VAULT, {
        "address": deployment.vault_address,
        "kv_mount": config.vault.kv_mount,
        "approle_path": config.vault.approle_path,
    })
    if deployment.vault_root_token is not None:
        pulumi.export(VAULT_ROOT_TOKEN, pulumi.Output.secret(deployment.vault_root_token))
    pulumi.export(SERVERS, {
        name: {
            "host": server.host,
            "read_host": server.read_host,
            "pooler_host": server.pooler_host,
            "local_host": server.connection.local_host,
            "local_port": server.connection.local_port,
            "local_read_port": server.connection.local_read_port,
            "admin_username": server.admin_username,
            "certificate_serial": server.certificate_serial,
        }
        for name, server in deployment.servers.items()
    })
    if deployment.authority is not None:
        pulumi.export(TLS, {
            "ca_certificate": deployment.authority.ca_certificate,
            "required": config.tls.require,
            "ca_path": config.tls.ca_path,
            "ca_secret": deployment.ca_secret,
            "local_ca_path": deployment.local_ca_path,
        })
    objects = platform_objects(config)
    pulumi.export(PLATFORM, objects)
    if config.service_stacks:
        pulumi.export(SERVICE_STACKS, service_stacks(config, deployment, objects))
    pulumi.export(SERVER_ADMIN_PASSWORDS, pulumi.Output.secret(
        {name: server.admin_password for name, server in deployment.servers.items()}
    ))
    if config.service_groups:
        pulumi.export(SERVICE_GROUP_STACKS, group_stacks(config, pulumi.get_stack()))
        pulumi.export(SERVICE_GROUPS, pulumi.Output.secret(service_groups(config, deployment, objects)))


def platform_objects(config: StackConfig) -> dict[str, Any]:
    """{"kind", "namespace" (Kubernetes) | "prefix" (Docker), "servers": {name: objects}}: each
    server's primary, its replicas and its backup jobs as the platform names them (containers;
    StatefulSets and CronJobs)."""
    kubernetes = config.platform == "kubernetes"
    prefix = "" if kubernetes else config.docker.prefix
    backups = config.backup.enabled
    dump, base = JOB_SUFFIXES
    servers = {}
    for server in placed_servers(config):
        names = server.statefulset_names() if kubernetes else server.host_names()
        replicas = [n for n in names if n.startswith(f"{server.host}-read")]
        servers[server.name] = {
            "primary": prefix + server.host,
            "replicas": [prefix + n for n in replicas],
            "dump_job": prefix + server.key + dump if backups else None,
            "base_job": prefix + server.key + base if backups and config.backup.wal_archiving else None,
        }
    located = {"namespace": config.kubernetes.namespace} if kubernetes else {"prefix": prefix}
    return {"kind": config.platform, **located, "servers": servers}


def admin_endpoint(config: StackConfig, server: str, connection: ServerConnection,
                   objects: dict[str, Any]) -> dict[str, Any]:
    """Where another stack's deploy dials a server as its admin: the published port on Docker, a
    port-forward to the primary's pod on Kubernetes."""
    if config.platform == "kubernetes":
        return {"kind": "kubernetes", "namespace": config.kubernetes.namespace,
                "pod": f"{objects['servers'][server]['primary']}-0", "port": connection.port}
    return {"kind": "docker", "host": connection.local_host, "port": connection.local_port}


def service_stacks(config: StackConfig, deployment: Deployment, objects: dict[str, Any]) -> dict[str, Any]:
    """Per service stack, what its deploy needs to reach its server and Vault."""
    assert deployment.authority is not None  # cross-checks refuse service stacks without TLS
    entries = {}
    for entry in config.service_stacks:
        name = config.server_of_stack(entry)
        connection = deployment.servers[name].connection
        entries[entry.name] = topology_entry(
            connection, deployment.provisioners[entry.name], admin=admin_endpoint(config, name, connection, objects),
            vault_address=deployment.vault_address or "", kv_mount=config.vault.kv_mount,
            approle_path=config.vault.approle_path, ca_certificate=deployment.authority.ca_certificate,
        )
    return entries


def service_groups(config: StackConfig, deployment: Deployment, objects: dict[str, Any]) -> dict[str, Any]:
    """What every group stack reads (stacks/group.py): whole, as one secret."""
    servers = {}
    for name, server in deployment.servers.items():
        connection = server.connection
        servers[name] = {
            "admin": admin_endpoint(config, name, connection, objects),
            "admin_username": server.admin_username,
            "admin_password": server.admin_password,
            "host": connection.host,
            "port": connection.port,
            "read_host": connection.read_host,
            "read_port": connection.read_port,
            "local_host": connection.local_host,
            "local_port": connection.local_port,
            "local_read_port": connection.local_read_port,
            "pooler_host": connection.pooler_host,
            "pooler_port": connection.pooler_port,
        }
    return {
        "servers": servers,
        "vault": {"address": deployment.vault_address, "token": deployment.vault_token},
        "ca_certificate": deployment.authority.ca_certificate if deployment.authority is not None else None,
        "local_ca_path": deployment.local_ca_path,
        "redis_urls": dict(deployment.redis.urls) if deployment.redis is not None else {},
    }
