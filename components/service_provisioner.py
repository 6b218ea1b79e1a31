"""ServiceProvisioner: what a platform stack gives one service team so that the team's own stack
can declare the service's database and AppRole, and nothing else.

- a PostgreSQL login `<service>_provisioner` with CREATEROLE and CREATEDB. On PostgreSQL 16 and
  newer a CREATEROLE role may alter, drop and grant only the roles it created (it holds ADMIN
  OPTION on them alone), so one team's provisioner cannot touch another team's roles, and each
  database refuses CONNECT to everyone but its own service's roles;
- its password, in Vault at `<kv_mount>/<PROVISIONERS>/<service>`;
- a Vault policy that reads that secret, writes the service's own credentials path, writes the
  service's read policy with exactly the text `VaultAppRole` gives it, and manages the
  service's AppRole bound to that policy alone;
- a token role naming only that policy, from which the team's deploy job gets its Vault token.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_postgresql as postgresql
import pulumi_vault as vault

from ._passwords import generated_password
from .shared_server import ServerConnection
from .vault_app_role import read_policy, read_policy_name

#: Folder of the KV mount holding the provisioners' logins (no service name starts with '_').
PROVISIONERS = "_provisioners"


def provisioner_role(service: str) -> str:
    """The service's provisioner login in PostgreSQL."""
    return f"{service}_provisioner"


def provisioner_name(service: str) -> str:
    """The Vault policy and token role of a service's provisioner."""
    return f"pgfleet-provisioner-{service}"


def provisioner_policy(kv_mount: str, approle_path: str, service: str) -> str:
    """The provisioner's Vault policy, as JSON (Vault reads JSON policies as it reads HCL)."""
    write = ["create", "update", "read", "delete"]
    role = f"auth/{approle_path}/role/{service}"
    read_name, read_text = read_policy_name(service), read_policy(kv_mount, service)
    # the read policy VaultAppRole writes, and no other text: a team cannot widen it
    own_read_policy = {"capabilities": write, "allowed_parameters": {"policy": [read_text], "rules": [read_text]}}
    paths: dict[str, dict[str, object]] = {
        f"{kv_mount}/data/{PROVISIONERS}/{service}": {"capabilities": ["read"]},
        f"{kv_mount}/data/{service}": {"capabilities": write},
        f"{kv_mount}/metadata/{service}": {"capabilities": ["read", "delete"]},
        f"sys/policies/acl/{read_name}": own_read_policy,
        f"sys/policy/{read_name}": own_read_policy,
        # its AppRole, whose tokens carry that read policy alone
        role: {
            "capabilities": write,
            "allowed_parameters": {"token_policies": [read_name], "*": []},
            "denied_parameters": {"policies": [], "token_no_default_policy": []},
        },
        f"{role}/role-id": {"capabilities": ["read"]},
        f"{role}/secret-id": {"capabilities": ["create", "update"]},
        f"{role}/secret-id/*": {"capabilities": ["create", "update"]},
        f"{role}/secret-id-accessor/*": {"capabilities": ["create", "update"]},
    }
    return json.dumps({"path": paths}, indent=2, sort_keys=True) + "\n"


@dataclass
class ServiceProvisionerArgs:
    server: ServerConnection
    """The server the service's database goes on, with the platform's admin connection."""
    service: str
    kv_mount: pulumi.Input[str]
    approle_path: str
    """Path of the AppRole auth backend the service's role goes in."""
    connection_limit: int = 4
    """The provisioner's own sessions (the team's deploys), not its service's."""
    token_ttl_s: int = 3600
    """Lifetime of a token from the provisioner's token role: one deploy."""


class ServiceProvisioner(pulumi.ComponentResource):
    """One service team's scoped credential on a platform stack's server and Vault.

    Outputs (plain): `username`, `secret_name` (its login, under `kv_mount`), `policy_name`,
    `token_role` (`vault token create -role=<token_role>` gives a deploy its token).
    """

    username: pulumi.Output[str]
    secret_name: pulumi.Output[str]
    policy_name: pulumi.Output[str]
    token_role: pulumi.Output[str]

    def __init__(self, name: str, args: ServiceProvisionerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("pgfleet:service:ServiceProvisioner", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        service = args.service
        password = generated_password(f"{name}-password", self)
        role = postgresql.Role(
            f"{name}-role", name=provisioner_role(service), login=True, create_role=True, create_database=True,
            connection_limit=args.connection_limit, password=password,
            opts=pulumi.ResourceOptions(parent=self, provider=args.server.provider),
        )
        login = vault.kv.SecretV2(
            f"{name}-login", mount=args.kv_mount, name=f"{PROVISIONERS}/{service}",
            data_json=pulumi.Output.secret(pulumi.Output.json_dumps({"username": role.name, "password": password})),
            opts=child,
        )
        policy = vault.Policy(
            f"{name}-policy", name=provisioner_name(service),
            policy=pulumi.Output.from_input(args.kv_mount).apply(
                lambda mount: provisioner_policy(mount, args.approle_path, service)),
            opts=child,
        )
        token_role = vault.tokenauth.AuthBackendRole(
            f"{name}-token-role", role_name=provisioner_name(service), allowed_policies=[policy.name],
            orphan=True, token_ttl=args.token_ttl_s, token_max_ttl=args.token_ttl_s, opts=child,
        )
        self.username = role.name
        self.secret_name = login.name
        self.policy_name = policy.name
        self.token_role = token_role.role_name
        self.register_outputs({
            "username": self.username,
            "secret_name": self.secret_name,
            "policy_name": self.policy_name,
            "token_role": self.token_role,
        })


#: The platform stack's output that service stacks read (`PlatformTopology`): per service, the
#: plain values `ServiceDatabase` needs. No secret goes in it.
TOPOLOGY_OUTPUT = "service_stacks"


def topology_entry(server: ServerConnection, provisioner: ServiceProvisioner, *, admin: Mapping[str, Any],
                   vault_address: pulumi.Input[str], kv_mount: pulumi.Input[str], approle_path: str,
                   ca_certificate: pulumi.Input[str]) -> dict[str, Any]:
    """One service's entry in `TOPOLOGY_OUTPUT`. `admin` says where a deploy dials the server:
    {"kind": "docker", "host", "port"} or {"kind": "kubernetes", "namespace", "pod", "port"}."""
    return {
        "server": server.name,
        "host": server.host,
        "port": server.port,
        "read_host": server.read_host,
        "read_port": server.read_port,
        "pooler_host": server.pooler_host,
        "pooler_port": server.pooler_port,
        "tls": server.tls,
        "admin": dict(admin),
        "ca_certificate": ca_certificate,
        "vault_address": vault_address,
        "kv_mount": kv_mount,
        "approle_path": approle_path,
        "provisioner": provisioner.username,
        "provisioner_secret": provisioner.secret_name,
        "provisioner_policy": provisioner.policy_name,
        "provisioner_token_role": provisioner.token_role,
    }
