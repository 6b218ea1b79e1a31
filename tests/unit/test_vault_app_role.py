"""VaultAppRole alone: a policy for one path, an AppRole with short tokens, secret_id apart."""
from __future__ import annotations

import json

import pulumi
import pytest

from pgfleet.components import VaultAppRole, VaultAppRoleArgs
from pgfleet.components.vault_app_role import read_policy
from tests.support.platforms import make_platform
from tests.support.program import Run, run


def build(cidrs: list[str] | None = None, platform_kind: str | None = None) -> Run:
    def program() -> VaultAppRole:
        return VaultAppRole("auth", VaultAppRoleArgs(
            service="auth", kv_mount="services", approle_backend="approle",
            secrets={"DB_USER": "auth_user", "DB_PASSWORD": pulumi.Output.secret("pw")},
            token_ttl_s=300, token_max_ttl_s=900, secret_id_ttl_s=3600, secret_id_num_uses=3,
            bind_cidrs=cidrs or [],
            secret_id_platform=make_platform(platform_kind) if platform_kind else None,
        ))

    return run(program, lambda r: {
        "path": r.secret_path, "role_id": r.role_id, "secret_id": r.secret_id,
        **({"ref": r.secret_id_reference} if r.secret_id_reference is not None else {}),
    })


@pytest.fixture(scope="module")
def auth() -> Run:
    return build()


def test_policy_reads_only_its_own_path(auth: Run) -> None:
    policy = auth.mocks.named("auth-policy").inputs
    assert policy["name"] == "auth-read"
    assert policy["policy"] == 'path "services/data/auth" {\n  capabilities = ["read"]\n}\n'
    assert "*" not in policy["policy"] and "list" not in policy["policy"]


@pytest.mark.parametrize("service", ["auth", "chat", "game"])
def test_policy_paths_differ_per_service(service: str) -> None:
    others = {"auth", "chat", "game"} - {service}
    policy = read_policy("services", service)
    assert f'"services/data/{service}"' in policy
    assert not any(f"/{other}" in policy for other in others)


def test_approle_has_short_tokens_and_bounded_secret_ids(auth: Run) -> None:
    role = auth.mocks.named("auth-role").inputs
    assert role["roleName"] == "auth" and role["backend"] == "approle"
    assert role["tokenPolicies"] == ["auth-read"]
    assert (role["tokenTtl"], role["tokenMaxTtl"]) == (300, 900)
    assert (role["secretIdTtl"], role["secretIdNumUses"]) == (3600, 3)
    assert "secretIdBoundCidrs" not in role
    secret_id = auth.mocks.named("auth-secret-id").inputs
    assert (secret_id["numUses"], secret_id["ttl"]) == (3, 3600)
    # logins spend uses; that must not read as drift that replaces (revokes) the secret_id
    assert auth.mocks.named("auth-secret-id").ignore_changes == ["numUses"]


def test_cidr_binding_applies_to_secret_id_and_tokens() -> None:
    outcome = build(cidrs=["10.1.0.0/16"])
    role = outcome.mocks.named("auth-role").inputs
    assert role["secretIdBoundCidrs"] == ["10.1.0.0/16"] and role["tokenBoundCidrs"] == ["10.1.0.0/16"]
    assert outcome.mocks.named("auth-secret-id").inputs["cidrLists"] == ["10.1.0.0/16"]


def test_credentials_written_to_the_service_path_as_secret(auth: Run) -> None:
    secret = auth.mocks.named("auth-secret")
    assert (secret.inputs["mount"], secret.inputs["name"]) == ("services", "auth")
    assert secret.is_secret("dataJson")
    assert json.loads(secret.inputs["dataJson"]) == {"DB_USER": "auth_user", "DB_PASSWORD": "pw"}
    assert auth.values["path"].value == "services/data/auth"


def test_role_id_plain_secret_id_secret(auth: Run) -> None:
    assert auth.values["role_id"].value == "role-id-auth-role" and not auth.values["role_id"].secret
    assert auth.values["secret_id"].secret
    assert "ref" not in auth.values, "without a platform the secret_id only leaves as a secret output"


def test_secret_id_delivered_to_a_kubernetes_secret_apart_from_role_id() -> None:
    outcome = build(platform_kind="kubernetes")
    secret = outcome.mocks.named("auth-vault-secret-id", "kubernetes:core/v1:Secret")
    assert secret.is_secret("stringData.VAULT_SECRET_ID")
    assert secret.inputs["stringData"]["VAULT_SECRET_ID"] == "secret-id-auth-secret-id"
    assert "role-id" not in json.dumps(secret.inputs)
    assert outcome.values["ref"].value == "db/auth-vault-secret-id"
