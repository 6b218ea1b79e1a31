"""VaultAppRole: one service's secret path, a policy that reads only it, and an AppRole."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_vault as vault

from .platform import Platform


@dataclass
class VaultAppRoleArgs:
    service: str
    kv_mount: pulumi.Input[str]
    """A KV version 2 mount."""
    approle_backend: pulumi.Input[str]
    """Path of the AppRole auth backend."""
    secrets: Mapping[str, pulumi.Input[str]]
    """Written to '<kv_mount>/<service>'; stored as one secret KV v2 version."""
    token_ttl_s: int = 900
    token_max_ttl_s: int = 3600
    secret_id_ttl_s: int = 86_400
    secret_id_num_uses: int = 10
    bind_cidrs: Sequence[str] = field(default_factory=list)
    """When set, both the secret_id and the tokens it yields work only from these CIDRs."""
    secret_id_platform: Platform | None = None
    """Delivers the secret_id into the platform's secret store (a Kubernetes Secret), apart
    from the role_id, which is a plain output; without it only the secret output carries it."""


def read_policy_name(service: str) -> str:
    """The name of the policy that reads a service's secret."""
    return f"{service}-read"


def read_policy(kv_mount: str, service: str) -> str:
    """HCL granting read on exactly one KV v2 secret: the service's own."""
    return f'path "{kv_mount}/data/{service}" {{\n  capabilities = ["read"]\n}}\n'


class VaultAppRole(pulumi.ComponentResource):
    """Credentials for one service in Vault, readable only through its own AppRole.

    Outputs: `secret_path` (the KV v2 API path), `policy_name`, `role_id` (not secret: it is an
    identifier, delivered with the service's config), `secret_id` (secret, delivered apart),
    `secret_id_reference` (where the platform stored it, if it did).
    """

    secret_path: pulumi.Output[str]
    policy_name: pulumi.Output[str]
    role_id: pulumi.Output[str]
    secret_id: pulumi.Output[str]
    secret_id_reference: pulumi.Output[str] | None

    def __init__(self, name: str, args: VaultAppRoleArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("pgfleet:vault:VaultAppRole", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        service = args.service
        secret = vault.kv.SecretV2(
            f"{name}-secret",
            mount=args.kv_mount,
            name=service,
            data_json=pulumi.Output.secret(pulumi.Output.json_dumps(dict(args.secrets))),
            opts=child,
        )
        policy = vault.Policy(
            f"{name}-policy",
            name=read_policy_name(service),
            policy=pulumi.Output.from_input(args.kv_mount).apply(lambda mount: read_policy(mount, service)),
            opts=child,
        )
        role = vault.approle.AuthBackendRole(
            f"{name}-role",
            backend=args.approle_backend,
            role_name=service,
            token_policies=[policy.name],
            token_ttl=args.token_ttl_s,
            token_max_ttl=args.token_max_ttl_s,
            secret_id_ttl=args.secret_id_ttl_s,
            secret_id_num_uses=args.secret_id_num_uses,
            secret_id_bound_cidrs=list(args.bind_cidrs) or None,
            token_bound_cidrs=list(args.bind_cidrs) or None,
            opts=child,
        )
        secret_id = vault.approle.AuthBackendRoleSecretId(
            f"{name}-secret-id",
            backend=args.approle_backend,
            role_name=role.role_name,
            cidr_lists=list(args.bind_cidrs) or None,
            # Stated, not inherited from the role: Vault reports both back, and leaving them
            # out would read as a change (and a new secret_id) on every later preview.
            num_uses=args.secret_id_num_uses,
            ttl=args.secret_id_ttl_s,
            # Each login spends one of num_uses; Vault reports the rest on refresh. Spending is
            # not drift: replacing the secret_id would revoke the credential the service holds.
            opts=pulumi.ResourceOptions(parent=self, additional_secret_outputs=["secret_id"],
                                        ignore_changes=["num_uses"]),
        )
        self.secret_path = pulumi.Output.concat(secret.mount, "/data/", secret.name)
        self.policy_name = policy.name
        self.role_id = role.role_id
        self.secret_id = pulumi.Output.secret(secret_id.secret_id)
        self.secret_id_reference = None
        if args.secret_id_platform is not None:
            self.secret_id_reference = args.secret_id_platform.store_secret(
                f"{name}-vault-secret-id", {"VAULT_SECRET_ID": self.secret_id}, child
            )
        self.register_outputs({
            "secret_path": self.secret_path,
            "policy_name": self.policy_name,
            "role_id": self.role_id,
            "secret_id": self.secret_id,
            "secret_id_reference": self.secret_id_reference,
        })
